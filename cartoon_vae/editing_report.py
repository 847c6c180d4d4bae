"""docs/editing.md: the paper's editing claim judged against the true counterfactual faces, from each run's
``metrics.json`` (``python scripts/editing_report.py``), and each edit's verdict on the bar it must clear.

Like :mod:`cartoon_vae.reports`, it formats numbers it is given (the edits are scored in
:mod:`cartoon_vae.counterfactual`); a verdict is read off the Wilson interval it is given.
"""

from __future__ import annotations


EDIT_TARGET = 0.95  # the share of faces an edit must work on (issue 31's bar; issue 20's was 0.9)


def edit_verdict(interval, target=EDIT_TARGET) -> str:
    """Whether an edit works on at least ``target`` of faces, from its Wilson interval: *met* when the whole
    interval is at or above it, *not met* when the whole interval is below, *inconclusive* otherwise."""
    lo, hi = interval
    return "met" if lo >= target else "not met" if hi < target else "inconclusive"


def editing_markdown(runs, target=EDIT_TARGET) -> str:
    """docs/editing.md: the paper's editing claim judged against the true counterfactual, one column per run
    and editing method, from each run's metrics.json (``runs``: {label: metrics}); per edit, the share of
    faces that worked with its Wilson 95% interval, and each method's verdict on the bar ``target``."""
    columns = [(label, method) for label, m in runs.items() for method in m["counterfactual"]["methods"]]
    edits = list(dict.fromkeys(e for m in runs.values() for e in m["counterfactual"]["edits"]))
    first = next(iter(runs.values()))["counterfactual"]
    lines = ["# The paper's editing claim, judged against the truth", "",
             "The paper says that moving a face along a latent direction edits one attribute \"while other attributes "
             "stay largely unaffected\". The embedded generator draws the true counterfactual of every edit (the same "
             "18 attributes, one changed), so each edit of each held-out face is judged against it "
             "(`cartoon_vae/counterfactual.py`). Rule: " + first["rule"] + ". Cells: faces that worked / faces "
             "edited, the share and its Wilson 95% interval. Produced by `python scripts/editing_report.py` from "
             "each run's `metrics.json` (`cartoon-vae evaluate --run RUN --probe probes/orig`; a probe trained on "
             "original faces only).", "",
             "Methods: " + "; ".join(f"`{m}`: {what}" for m, what in dict(
                 (m, w) for r in runs.values() for m, w in r["counterfactual"]["methods"].items()).items()) + ".", "",
             "| edit | " + " | ".join(f"{label}: {method}" for label, method in columns) + " |",
             "|---|" + "---|" * len(columns)]
    for edit in edits:
        cells = []
        for label, method in columns:
            r = runs[label]["counterfactual"]["edits"].get(edit, {}).get(method)
            if r is None:
                cells.append("")
                continue
            lo, hi = r["success_interval"]
            whole = r.get("success_rate_whole_image")  # the rule of earlier releases, beside for one release
            cells.append(f"{r['worked']}/{r['faces']} = {r['success_rate']:.2f} [{lo:.2f}, {hi:.2f}]"
                         + ("" if whole is None else f" (whole-image rule {whole:.2f})"))
        lines.append(f"| {edit} | " + " | ".join(cells) + " |")
    lines.append("| all faces, all edits | " + " | ".join(
        f"{runs[label]['counterfactual']['success_rate'][method]:.3f}" for label, method in columns) + " |")
    lines.append("| probe agrees with the rule | " + " | ".join(
        f"{runs[label]['counterfactual']['agreement_with_probe'][method]:.2f}" for label, method in columns) + " |")
    lines += ["", f"## Verdicts: does each edit work on at least {target:.0%} of faces?", "",
              f"Per edit, from its Wilson interval: **met** (the interval is at or above {target:.0%}), **not met** "
              f"(below), **inconclusive** (it straddles). A method supports the paper's claim when every edit it makes "
              f"is met.", "",
              "| run: method | met | inconclusive | not met | the paper's claim |", "|---|---|---|---|---|"]
    for label, method in columns:
        verdicts = {edit: edit_verdict(r[method]["success_interval"], target)
                    for edit, r in runs[label]["counterfactual"]["edits"].items() if method in r}
        counts = {v: sorted(e for e, w in verdicts.items() if w == v) for v in ("met", "inconclusive", "not met")}
        claim = ("supported" if len(counts["met"]) == len(verdicts) else
                 "not supported" if counts["not met"] else "inconclusive")
        lines.append(f"| {label}: {method} | " + " | ".join(
            f"{len(counts[v])}" + (f" ({', '.join(counts[v])})" if counts[v] and len(counts[v]) < 6 else "")
            for v in ("met", "inconclusive", "not met")) + f" | {claim} |")
    return "\n".join(lines) + "\n"
