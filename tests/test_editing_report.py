"""editing.md judges each edit against the true counterfactual, its verdict read off its Wilson interval."""

from cartoon_vae.editing_report import edit_verdict, editing_markdown


def test_the_editing_report_reads_each_edits_verdict_off_its_wilson_interval():
    assert edit_verdict([0.96, 0.99]) == "met" and edit_verdict([0.5, 0.94]) == "not met"  # the bar: 95%
    assert edit_verdict([0.91, 0.99]) == "inconclusive" and edit_verdict([0.91, 0.99], 0.9) == "met"

    def run(method, rows):
        edits = {e: {method: {"worked": w, "faces": n, "success_rate": w / n, "success_interval": iv}}
                 for e, (w, n, iv) in rows.items()}
        return {"counterfactual": {"methods": {method: "what it does"}, "edits": edits, "rule": "the rule",
                                   "success_rate": {method: 0.5}, "agreement_with_probe": {method: 0.75}}}

    md = editing_markdown({"a": run("class_mean", {"glasses->5": (1, 100, [0.0, 0.05])}),
                           "b": run("label_swap", {"glasses->5": (99, 100, [0.96, 1.0]),
                                                   "hair_color->1": (95, 100, [0.89, 0.98])})})
    assert "| glasses->5 | 1/100 = 0.01 [0.00, 0.05] | 99/100 = 0.99 [0.96, 1.00] |" in md
    assert "| hair_color->1 |  | 95/100 = 0.95 [0.89, 0.98] |" in md
    assert "| a: class_mean | 0 | 0 | 1 (glasses->5) | not supported |" in md
    assert "| b: label_swap | 1 (glasses->5) | 1 (hair_color->1) | 0 | inconclusive |" in md
    whole = run("label_swap", {"glasses->5": (80, 100, [0.71, 0.87])})
    whole["counterfactual"]["edits"]["glasses->5"]["label_swap"]["success_rate_whole_image"] = 0.93
    assert "80/100 = 0.80 [0.71, 0.87] (whole-image rule 0.93)" in editing_markdown({"c": whole})
