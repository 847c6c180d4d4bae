"""docs/editing.md: the paper's editing claim judged against the true counterfactual, side by side for runs
already evaluated (their metrics.json).

    python scripts/editing_report.py --run paper=runs/demo-paper --run recommended=runs/demo \
        --run conditional=runs/demo-conditional --out docs/editing.md
"""

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cartoon_vae.reports import editing_markdown  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run", action="append", required=True, help="LABEL=RUN_FOLDER (repeat)")
    p.add_argument("--out", required=True)
    args = p.parse_args()
    runs = {}
    for item in args.run:
        label, _, folder = item.partition("=")
        metrics = json.loads((Path(folder) / "metrics.json").read_text())
        if "edits" not in metrics.get("counterfactual", {}):
            sys.exit(f"{folder}/metrics.json: no counterfactual evaluation (evaluate it on the embedded set)")
        runs[label] = metrics
    Path(args.out).write_text(editing_markdown(runs))
    print(f"written: {args.out}")


if __name__ == "__main__":
    main()
