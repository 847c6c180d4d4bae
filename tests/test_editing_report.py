"""editing.md judges each edit against the true counterfactual, its verdict read off its Wilson interval."""

from cartoon_vae.editing_report import edit_verdict, editing_markdown


def test_the_editing_report_reads_each_edits_verdict_off_its_wilson_interval():
    assert edit_verdict([0.91, 0.99]) == "met" and edit_verdict([0.5, 0.89]) == "not met"
    assert edit_verdict([0.85, 0.95]) == "inconclusive"

    def run(method, rows):
        edits = {e: {method: {"worked": w, "faces": n, "success_rate": w / n, "success_interval": iv}}
                 for e, (w, n, iv) in rows.items()}
        return {"counterfactual": {"methods": {method: "what it does"}, "edits": edits, "rule": "the rule",
                                   "success_rate": {method: 0.5}, "agreement_with_probe": {method: 0.75}}}

    md = editing_markdown({"a": run("class_mean", {"glasses->5": (1, 100, [0.0, 0.05])}),
                           "b": run("label_swap", {"glasses->5": (97, 100, [0.92, 0.99]),
                                                   "hair_color->1": (90, 100, [0.83, 0.94])})})
    assert "| glasses->5 | 1/100 = 0.01 [0.00, 0.05] | 97/100 = 0.97 [0.92, 0.99] |" in md
    assert "| hair_color->1 |  | 90/100 = 0.90 [0.83, 0.94] |" in md
    assert "| a: class_mean | 0 | 0 | 1 (glasses->5) | not supported |" in md
    assert "| b: label_swap | 1 (glasses->5) | 1 (hair_color->1) | 0 | inconclusive |" in md
