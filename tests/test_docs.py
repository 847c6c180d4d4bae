"""The README is a front door and the docs pages say what their JSON says.

- README.md has at most 300 lines; every relative link and image in README.md and docs/*.md exists.
- The pages scripts/docs_tables.py generates (docs/performance.md's tables from docs/benchmark.json, docs/results.md
  from docs/results.json and docs/kl_step.json) are what it would write now.
- The numbers the hand-written prose quotes from those JSON files equal the JSON's, rounded as the prose rounds them:
  docs/performance.md and docs/explorer.md against docs/benchmark.json, the claims in docs/measurements.md against
  docs/results.json (through its rendered tables).
- Where the demo runs exist (runs/ is not committed), the demo tables of docs/demo.md equal their metrics.json and
  every figure copied from a run into docs/figures/ is that run's current file.
"""

import importlib.util
import json
import re
from decimal import ROUND_HALF_UP, Decimal

import pytest
import yaml

from .conftest import ROOT

DOCS = ROOT / "docs"
PAGES = [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HTML_SRC = re.compile(r"""(?:src|href)=["']([^"']+)["']""")


def _docs_tables():
    spec = importlib.util.spec_from_file_location("docs_tables", ROOT / "scripts" / "docs_tables.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _text(path) -> str:
    """A page's text with runs of white space as one space (prose is wrapped anywhere)."""
    return re.sub(r"\s+", " ", path.read_text())


def _json(name):
    return json.loads((DOCS / name).read_text())


def r(x, places=2) -> str:
    """x rounded half up as the prose rounds (from its decimal form, so 2.845 gives 2.85)."""
    q = Decimal(1).scaleb(-places)
    return str(Decimal(str(x)).quantize(q, rounding=ROUND_HALF_UP))


def _without_code(text) -> str:
    text = re.sub(r"```.*?```", "", text, flags=re.S)
    return re.sub(r"`[^`\n]*`", "", text)


def test_the_readme_is_a_front_door():
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= 300, f"README.md has {len(lines)} lines; move detail to a page under docs/"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_and_image_exists(page):
    text = _without_code(page.read_text())
    targets = LINK.findall(text) + HTML_SRC.findall(text)
    broken = []
    for target in targets:
        if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
            continue  # a URL (https:, mailto:) or an anchor on the same page
        path = (page.parent / target.split("#")[0]).resolve()
        if ROOT.resolve() not in path.parents or not path.exists():
            broken.append(target)
    assert not broken, f"{page.relative_to(ROOT)}: links to missing files: {broken}"


def test_the_generated_pages_are_what_their_json_gives():
    stale = _docs_tables().stale()
    assert not stale, f"{stale} differ from their JSON: run python scripts/docs_tables.py"


def _benchmark():
    b = _json("benchmark.json")
    train = {t["image_size"]: t for t in b["training"]}
    steps = {(s["image_size"], s["variant"]): s for s in b["step_variants"]}
    return b, train, steps


def _x(value, interval) -> str:
    return f"{r(value)}x [{r(interval[0])}, {r(interval[1])}]"


def test_the_performance_prose_quotes_the_benchmark():
    b, train, steps = _benchmark()
    t = b["time_to_quality"]
    merged = {name for name, v in b.items() if isinstance(v, dict) and "machine" in v}  # races run on their own
    full_run_seconds = sum(p["seconds"] for name, p in b["phases"].items() if name not in merged)
    lr = yaml.safe_load((ROOT / "configs" / "recommended.yaml").read_text())["train"]["learning_rate"]
    pipeline = {p["image_size"]: p for p in b["input_pipeline"]}
    expected = [
        f"`cartoon-vae benchmark --out docs/benchmark.json` ({full_run_seconds / 60:.0f} minutes)",
        # the targets
        f"256x256 at >= 1.5x the reference loop: **met**, {_x(train[256]['speedup'], train[256]['speedup_interval'])}",
        f"**met**, {_x(train[256]['auto_vs_float32'], train[256]['auto_vs_float32_interval'])}",
        f"**not met** in float32, {_x(train[64]['speedup'], train[64]['speedup_interval'])}",
        f"with `train.precision: auto` {_x(train[64]['auto_speedup'], train[64]['auto_speedup_interval'])}",
        f"Time to quality >= 5x: **met**, {t['speedup']}x",
        f"**not met**, {100 * train[256]['fraction_of_matmul']:.0f}% of {b['matmul_gflop_s']:.0f} GFLOP/s",
        # what made it faster
        f"At 256x256 it trains {_x(train[256]['auto_vs_float32'], train[256]['auto_vs_float32_interval'])} faster",
        f"at 64x64 {_x(train[64]['auto_vs_float32'], train[64]['auto_vs_float32_interval'])} in the loop comparison",
        f"and {_x(steps[64, 'mixed_bfloat16']['relative'], steps[64, 'mixed_bfloat16']['interval'])} on the step alone",
        f"One inter-op thread: {_x(steps[64, 'one_inter_op_thread']['relative'], steps[64, 'one_inter_op_thread']['interval'])}"
        f" at 64x64 and {_x(steps[256, 'one_inter_op_thread']['relative'], steps[256, 'one_inter_op_thread']['interval'])}"
        " at 256x256",
        # what bounds the 64x64 speedup
        f"the reference loop's step runs at {_x(steps[64, 'reference_step']['relative'], steps[64, 'reference_step']['interval'])}"
        " the project's",
        f"are worth about {r(1 / steps[64, 'reference_step']['relative'])}x",
        f"The rest of the {r(train[64]['speedup'])}x",
        f"its step alone runs {r(steps[64, 'reference_step']['img_s'], 0)} img/s, its loop "
        f"{r(train[64]['reference_img_s'], 0)} img/s",
        f"with TensorFlow's defaults, {r(train[64]['reference_tf_defaults_img_s'], 0)} img/s",
        f"{r(steps[64, 'project']['img_s'], 0)} img/s on a fixed batch against {r(train[64]['project_img_s'], 0)} img/s in "
        f"`fit`, so 3x the reference loop ({r(3 * train[64]['reference_img_s'], 0)} img/s)",
        f"the interval ({r(train[64]['speedup_interval'][0])} to {r(train[64]['speedup_interval'][1])} over",
        f"at {100 * train[64]['fraction_of_matmul']:.0f}% of the float32 matmul rate ({b['matmul_gflop_s']:.0f}",
        f"a batch of 128 ({r(steps[64, 'batch_128']['relative'])}x per image on the step)",
        f"and mixed_bfloat16 ({_x(train[64]['auto_speedup'], train[64]['auto_speedup_interval'])} the reference loop here)",
        # time to quality
        f"trained {t['paper_epochs']} epochs; its final held-out MSE, {t['target_mse']}, is the target, which its curve "
        f"first reached after {t['paper_reference_seconds']} s of training",
        f"with `train.precision: auto` ({b['machine']['auto_precision']} here) reached it after {t['recommended_epochs']} "
        f"epochs, {t['recommended_seconds']} s",
        f"its rate then at {r(t['recommended_final_learning_rate'] / lr)} of the peak: **{t['speedup']}x**",
        f"about {round(pipeline[64]['cold_img_s'], -1):.0f} img/s cold here",
        f"steal was {100 * max(t['cpu_steal'].values()):.0f}% during both",
    ]
    text = _text(DOCS / "performance.md")
    missing = [e for e in expected if e not in text]
    assert not missing, f"docs/performance.md does not say what docs/benchmark.json says: {missing}"


def test_the_performance_prose_quotes_the_profile():
    b = _json("benchmark.json")
    p = next(p for p in b["op_profiles"] if p["image_size"] == 64)
    g, total = p["groups_ms"], p["op_ms_per_step"]
    share = {k: 100 * v / total for k, v in g.items()}
    expected = (f"oneDNN convolutions ({share['convolution']:.0f}% of op time), batch norm ({share['batch norm']:.0f}%), "
                f"bias and activation kernels ({share['bias'] + share['activation']:.0f}%) and the optimizer's and the "
                f"loss's small element-wise ops ({share['other'] + share['dense']:.0f}%)")
    assert expected in _text(DOCS / "performance.md")


def test_the_performance_prose_quotes_the_peak_memory():
    peak = _json("benchmark.json")["phases"]["train_256"]["peak_rss_mb"]
    assert f"`train_256` phase holds three models at once, {peak:,} MiB" in _text(DOCS / "performance.md")


def test_the_configs_page_quotes_the_benchmark():
    _, train, _ = _benchmark()
    expected = (f"{_x(train[256]['auto_vs_float32'], train[256]['auto_vs_float32_interval'])} at 256x256, "
                f"{_x(train[64]['auto_vs_float32'], train[64]['auto_vs_float32_interval'])} at 64x64")
    assert expected in _text(DOCS / "configs.md")


def test_the_explorer_page_quotes_the_benchmark():
    e = _json("benchmark.json")["explore"]
    d, v = e["decode"], e["edit"]
    expected = (f"{e['clients']} clients at once, request to PNG bytes, a decode takes **{d['p50_ms']} ms at the median "
                f"and {d['p95_ms']} ms at p95** ({r(d['requests_per_s'], 0)} requests/s); an attribute edit with a "
                f"principal-direction move {v['p50_ms']} / {v['p95_ms']} ms ({r(v['requests_per_s'], 0)} requests/s)")
    assert expected in _text(DOCS / "explorer.md")


def _tables(markdown):
    """Every Markdown table as (header, rows), each row a dict from header cell to cell."""
    out, block = [], []
    for line in markdown.splitlines() + [""]:
        if line.startswith("|"):
            block.append([c.strip() for c in line.strip().strip("|").split("|")])
        elif block:
            header, *rows = block
            out.append((header, [dict(zip(header, row)) for row in rows if not set(row[0]) <= set("-")]))
            block = []
    return out


def _mean(cell) -> str:
    return cell.split(" +- ")[0]


def test_the_claims_summary_quotes_the_ablation():
    md = _docs_tables().results_page()  # docs/results.md as results.json renders it (checked above to be the page)
    tables = _tables(md)
    comparisons = {row["comparison (a vs b)"]: row for h, rows in tables if h[0] == "comparison (a vs b)" for row in rows}
    runs = {row["variant"]: row for h, rows in tables if "diverged" in h for row in rows}
    fd_attr = {row["variant"]: row for h, rows in tables if "bootstrap half-width (min-max)" in h for row in rows}
    fid = {row["variant"]: row for h, rows in tables
           if h == ["variant", "minmax", "normal", "gmm", "reconstructions", "real_train"] for row in rows}
    verdicts = dict(re.findall(r"^### \((\w)\) .* — (.+)$", md, flags=re.M))

    def c(label):
        row = comparisons[label]
        return row, row["mean a - b"], row["95% interval"]

    def pct(s) -> str:
        v = 100 * float(s)
        return f"{v:+.0f}%" if abs(v) >= 1 else f"{v:+.1f}%"

    def pcts(interval) -> str:
        lo, hi = interval.strip("[]").split(", ")
        return f"[{pct(lo)}, {pct(hi)}]"

    s_epoch, m1, i1 = c("s/epoch: bound vs exact (same head) (relative)")
    to_mse = next(k for k in comparisons if k.startswith("seconds to val MSE <= "))
    _, m2, i2 = c(to_mse)
    interp, m3, i3 = c("interpolation unevenness")
    mid, m4, i4 = c("midpoint FD_attr")
    _, m5, _ = c("dci_disentanglement (higher = more disentangled; not voted)")
    _, m6, i6 = c("rise of val MSE at epoch 6 with lr x3")
    _, m7, i7 = c("rise of val MSE at epoch 6 with lr x10")
    bound, _, _ = c("eq. 5 vs exact KL, held-out (nats/image)")
    _, m8, i8 = c("paper: fd_attr min-max vs normal")
    _, m9, i9 = c("paper: fid min-max vs normal")
    _, m10, i10 = c("paper: fid min-max vs gmm")
    _, m11, _ = c("paper: fd_attr min-max vs gmm")
    eq6, _, i12 = c("eq. 6 as printed vs std reparameterisation (bound): active_units")
    mse, _, _ = c("recommended recipe vs paper recipe: final_val_mse")
    units, _, _ = c("recommended recipe vs paper recipe: active_units")
    spread = re.search(r"bound sd ([\d.]+), exact sd ([\d.]+) \(Brown-Forsythe test of equal spread: p = ([\d.]+)\)", md)
    above = re.search(r"models ([\d.]+)% of posterior variances exceed 1", md)
    ranks = re.search(r"Over (\d+) sample sets \(.*?\): Spearman rho = ([-\d.]+) \(p = ([\d.e-]+)\)", md)
    header = re.search(r": (\d+) runs, (\d+) min of training in all", md)
    fid_images = re.search(r"Standard Inception FID \((\d+) generated", md)
    expected = [
        f"{header[1]} runs",
        f"{header[2]} min are the epochs in the runs' histories",
        f"(a) \"much faster training\": **{verdicts['a']}** — bound vs exact KL (same head) {pct(m1)} s/epoch, 95% "
        f"interval {pcts(i1)}; time to a fixed held-out MSE {pct(m2)} {pcts(i2)}",
        f"(b) \"smoother latent space\": **{verdicts['b']}** by both measures — interpolation unevenness "
        f"{_mean(interp['a'])} vs {_mean(interp['b'])} (difference {m3} {i3}) and FD_attr of midpoints between "
        f"training codes {float(_mean(mid['a'])):.0f} vs {float(_mean(mid['b'])):.0f} ({m4} {i4})",
        f"the bound keeps {_mean(runs['paper']['active units'])} of 64 units active against "
        f"{_mean(runs['exact_bounded']['active units'])}",
        f"DCI disentanglement is {m5.lstrip('+')} higher",
        f"(c) \"more stable training\": **{verdicts['c']}**",
        f"the rise of validation MSE at 3x ({m6} {i6}) and 10x ({m7} {i7})",
        f"spread across seeds {spread[1]} vs {spread[2]} (Brown-Forsythe p = {spread[3]})",
        f"(d) \"eq. 5 is a lower bound of the KL\": **{verdicts['d']}**",
        f"in the bound-trained models {float(above[1]):.0f}% of posterior variances are above 1",
        f"In aggregate it sits far below: {_mean(bound['a'])} vs {_mean(bound['b'])} nats",
        f"(e) \"min-max uniform sampling gives realistic faces\": **{verdicts['e'].split(' for ')[0]} against N(0, I)**",
        f"FD_attr {m8} {i8}, FID {m9} {i9}",
        f"(FID {float(_mean(fid['paper']['minmax'])):.0f} against a real-vs-real floor of "
        f"{float(_mean(fid['paper']['real_train'])):.0f} at {fid_images[1]} images",
        f"({m10} {i10}: the mixture is better), while FD_attr says the opposite ({m11})",
        f"({_mean(eq6['a'])} vs {_mean(eq6['b'])}, interval {i12})",
        f"held-out MSE {_mean(mse['a'])} vs {_mean(mse['b'])}, {float(_mean(units['a'])):g} vs {_mean(units['b'])} "
        "active units",
        f"Over the {ranks[1]} sample sets with both metrics",
        f"Spearman rho = **{ranks[2]}** (p = {ranks[3]})",
        f"recommended min-max samples ({float(_mean(fd_attr['recommended']['minmax'])):.0f}) *better than the decoder's "
        f"own reconstructions* ({float(_mean(fd_attr['recommended']['reconstructions'])):.0f})",
        f"(FID {float(_mean(fid['recommended']['gmm'])):.0f} vs {float(_mean(fid['recommended']['minmax'])):.0f}, "
        f"FD_attr {float(_mean(fd_attr['recommended']['gmm'])):.0f} vs "
        f"{float(_mean(fd_attr['recommended']['minmax'])):.0f})",
    ]
    text = _text(DOCS / "measurements.md")
    missing = [e for e in expected if e not in text]
    assert not missing, f"docs/measurements.md does not say what docs/results.json says: {missing}"


def test_the_readme_quotes_the_demo_page():
    demo_time = re.search(r"\*\*(\d+) s\*\* in all", _text(DOCS / "demo.md"))[1]
    assert f"`make demo` took **{demo_time} s** in all" in _text(ROOT / "README.md")


def _run_metrics(run):
    path = ROOT / "runs" / run / "metrics.json"
    if not path.exists():
        pytest.skip(f"runs/{run} is not here (runs are not committed): the demo tables are checked where it is")
    return json.loads(path.read_text())


def test_the_demo_table_is_the_demo_runs_metrics():
    cells = {}
    for run in ("demo-paper", "demo"):
        m = _run_metrics(run)
        rec, lat, f, s, col = m["reconstruction"], m["latent"], m["fid"], m["samples"], m["colour"]
        samplers = {k: v["fid"] for k, v in f.items() if k not in ("note", "reconstructions", "real_train")}
        best = min(samplers, key=samplers.get)
        cells[run] = [f"{rec['mse']:.5f} / {rec['psnr']:.1f} dB / {rec['ssim']:.3f}",
                      f"{lat['kl_exact_nats_per_image']:.1f}; {lat['active_units']} of {lat['latent_dim']}",
                      f"{m['probe_accuracy']['relative_mean']:.3f}",
                      f"{col['worst']['above_share']:.0%} / {col['worst_main']['above_share']:.0%}",
                      f"{f['reconstructions']['fid']:.1f} / {samplers[best]:.1f} ({best.replace('_', '-')}) / "
                      f"{f['real_train']['fid']:.1f}",
                      " / ".join(f"{s[k]['fd_attr']:.1f}" for k in ("minmax", "gmm", "two_stage", "reconstructions"))]
    header, rows = next(t for t in _tables((DOCS / "demo.md").read_text()) if t[0][0] == "64x64, same faces")
    shown = {run: [row[h].replace("**", "") for row in rows] for run, h in zip(("demo-paper", "demo"), header[1:])}
    assert shown == cells


def test_the_colour_table_is_the_demo_runs_metrics():
    col = _run_metrics("demo")["colour"]
    names = {"skin": "skin", "hair": "hair", "facial hair": "facial_hair", "glasses": "glasses", "eyes (iris)": "eyes",
             "eyebrows (the thick ones; thin ones erode away)": "eyebrows"}
    header, rows = next(t for t in _tables((DOCS / "demo.md").read_text()) if t[0][0] == "region")
    for row in rows:
        key = names.get(row["region"])
        region = col["regions"][key] if key else col["worst_main" if row["region"].startswith("worst of") else "worst"]
        assert [row["faces with it"], row["median distance"], row["faces above 10"].replace("**", "")] == [
            str(region["faces"]), f"{region['median']:.1f}", f"{region['above_share']:.0%}"], row["region"]


def test_every_figure_copied_from_a_run_is_its_current_output():
    shown = set()
    for page in PAGES:
        shown |= {(page.parent / t).resolve() for t in LINK.findall(_without_code(page.read_text())) if t.endswith(".png")}
    compared = 0
    for figure in sorted(shown):
        run, _, name = figure.name.partition("_")
        source = ROOT / "runs" / run / name
        if figure.parent == (DOCS / "figures").resolve() and source.exists():
            assert figure.read_bytes() == source.read_bytes(), f"docs/figures/{figure.name} is not {source}'s output"
            compared += 1
    if not compared:
        pytest.skip("no run folder here to compare the figures with (runs are not committed)")


def test_the_256_table_is_generated_from_the_evaluations_in_docs():
    import importlib.util

    spec = importlib.util.spec_from_file_location("scale_256_report", ROOT / "scripts" / "scale_256_report.py")
    report = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(report)
    text = (DOCS / "scale-256.md").read_text()
    block = text.split(report.START, 1)[1].split(report.END, 1)[0].strip()
    labels = [line.split("|")[2:-2] for line in block.splitlines()[:1]][0]
    runs = [(label.strip(), DOCS / f"{name}_metrics.json")
            for label, name in zip(labels, ("cand256-e140", "cand256-kl16", "paper256-28"), strict=True)]
    assert block == report.table(runs)
