"""docs/fidelity.md: decoder and likelihood candidates side by side, from runs already trained and evaluated (their
config.yaml, history.csv and metrics.json from ``cartoon-vae evaluate --fid --fid-images 200``).

    python scripts/fidelity_report.py --run "recommended (transposed conv.)=runs/cand-base" \
        --run "palette likelihood=runs/cand-palette32" --out docs/fidelity.md
"""

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cartoon_vae.reports import fidelity_markdown  # noqa: E402
from cartoon_vae.runs import read_history  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run", action="append", required=True, help="LABEL=RUN_FOLDER (repeat)")
    p.add_argument("--out", required=True)
    p.add_argument("--note", action="append", default=[], help="a paragraph after the table (repeat)")
    args = p.parse_args()
    runs = {}
    for item in args.run:
        label, _, folder = item.rpartition("=")
        metrics = json.loads((Path(folder) / "metrics.json").read_text())
        if "fid" not in metrics or "regions" not in metrics.get("colour", {}):
            sys.exit(f"{folder}/metrics.json: evaluate it with --fid on the embedded set first")
        seconds = sum(r.get("seconds", 0.0) for r in read_history(Path(folder) / "history.csv"))
        runs[label] = {"folder": folder, "metrics": metrics, "train_seconds": seconds,
                       "config": (Path(folder) / "config.yaml").read_text()}
    Path(args.out).write_text(fidelity_markdown(runs) + "".join(f"\n{note}\n" for note in args.note))
    print(f"written: {args.out}")


if __name__ == "__main__":
    main()
