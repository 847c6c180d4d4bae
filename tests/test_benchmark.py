"""The whole benchmark on a tiny plan: every phase runs and the results carry the keys docs/benchmark.json
and the README's tables are made from. The child processes run in this one (tests/test_bench_children.py
starts a real one). No test times anything."""

import json

import pytest
import yaml

from cartoon_vae import load_config
from cartoon_vae.bench_report import format_table
from cartoon_vae.benchmark import run_benchmark

from .conftest import ROOT

TINY = ["data.image_size=32", "data.load_size=64", "data.batch_size=4", "model.latent_dim=4",
        "model.encoder_filters=[4,4,4,4,4]", "model.decoder_filters=[4,4,4,4]"]


def _in_process(function, env, log=None, **kwargs):
    """in_child, without the fresh process: the entry point of the same table, its result through JSON."""
    from cartoon_vae.bench_children import CHILDREN

    return json.loads(json.dumps(CHILDREN[function](**kwargs, **({"log": log} if log else {}))))


def test_a_tiny_benchmark_runs_every_phase(tmp_path, monkeypatch):
    import cartoon_vae.bench_size
    import cartoon_vae.benchmark

    for module in (cartoon_vae.benchmark, cartoon_vae.bench_size):
        monkeypatch.setattr(module, "in_child", _in_process)
    monkeypatch.setattr("cartoon_vae.hardware.resolve_precision", lambda p: "float32")  # two loops, not three
    configs = _tiny_configs(tmp_path)
    plan = {"images": {256: 12, "demo": 12}, "rounds": 1, "variant_rounds": 1, "generation_reps": 1,
            "time_to_quality": (0, 0), "matmul_seconds": 0.05, "explore_requests": 2, "kl_rounds": 2}
    r = run_benchmark(quick=True, paper_config=configs["paper"], demo_config=configs["demo-paper"], variants=False,
                      log=lambda *_: None, plan=plan)
    assert {"mode", "machine", "phases", "training", "input_pipeline", "generation", "matmul_gflop_s"} <= set(r)
    assert [row["images"] for row in r["training"]] == [12, 12]
    for row in r["training"]:
        assert row["project_img_s"] > 0 and row["reference_img_s"] > 0 and row["speedup"] > 0
    assert r["generation"]["batched_img_s"] > 0 and "make_data" in r["phases"]
    assert r["explore"]["decode"]["p50_ms"] > 0 and r["explore"]["clients"] == 4
    assert "| 32 | 4 |" in format_table(r)
    assert [k["image_size"] for k in r["kl_step"]] == [32, 32] and all(k["eq5_img_s"] > 0 for k in r["kl_step"])
    assert r["kl_step"][0]["verdict"] in ("supported", "not supported", "inconclusive") and "Claim (a)" in format_table(r)


def _tiny_configs(tmp_path):
    configs = {}
    for name in ("paper", "demo-paper"):
        config = load_config(ROOT / "configs" / f"{name}.yaml", TINY)
        configs[name] = tmp_path / f"{name}.yaml"
        configs[name].write_text(yaml.safe_dump(config.to_dict(), sort_keys=False))
    return configs


def test_only_the_256_race_runs_that_race_alone_and_names_its_cpu(tmp_path, monkeypatch):
    import cartoon_vae.benchmark

    monkeypatch.setattr(cartoon_vae.benchmark, "in_child", _in_process)
    configs = _tiny_configs(tmp_path)
    plan = {"images": {256: 12, "demo": 12}, "time_to_quality": (1, 1), "time_to_quality_256": (1, 2)}
    r = run_benchmark(paper_config=configs["paper"], demo_config=configs["demo-paper"], log=lambda *_: None,
                      plan=plan, recommended_256_config=configs["paper"], only=["time_to_quality_256"])
    assert "time_to_quality" not in r and "training" in r and not r["training"]  # nothing else ran
    t = r["time_to_quality_256"]
    assert set(r["phases"]) == {"make_data", "time_to_quality_256"}
    assert t["paper_epochs"] == 1 and 1 <= t["recommended_epochs"] <= 2 and t["machine"]
    from cartoon_vae.bench_report import time_to_quality_lines

    line = time_to_quality_lines(r)[0]
    assert line.startswith("Time to quality at 256x256: the paper recipe in the reference loop ends 1 epochs")
    assert line.endswith(f"({r['machine']['cpu']}).")


def test_merge_puts_the_races_into_the_earlier_results_and_keeps_the_rest(tmp_path, monkeypatch, capsys):
    import cartoon_vae.benchmark
    from cartoon_vae.cli import main

    earlier = json.loads((ROOT / "docs" / "benchmark.json").read_text())
    out = tmp_path / "bench.json"
    out.write_text(json.dumps(earlier))
    race = {**earlier["time_to_quality"], "machine": "new CPU"}
    monkeypatch.setattr(cartoon_vae.benchmark, "run_benchmark", lambda **k: {
        "machine": {"cpu": "new CPU"}, "phases": {"time_to_quality_256": earlier["phases"]["time_to_quality"]},
        "time_to_quality_256": race})
    assert main(["benchmark", "--only", "time_to_quality_256", "--merge", "--out", str(out)]) == 0
    merged = json.loads(out.read_text())
    assert merged["machine"] == earlier["machine"] and merged["training"] == earlier["training"]
    assert merged["time_to_quality_256"] == race and set(merged["phases"]) == {*earlier["phases"], "time_to_quality_256"}
    printed = capsys.readouterr().out  # the whole table, the 256 race's sentence in it
    assert "Time to quality at 256x256" in printed and "(new CPU)." in printed and f"written: {out}" in printed
    alone = tmp_path / "alone.json"  # without --merge: the race alone, its sentence printed
    assert main(["benchmark", "--only", "time_to_quality_256", "--out", str(alone)]) == 0
    assert json.loads(alone.read_text())["time_to_quality_256"] == race
    assert capsys.readouterr().out.strip().startswith("Time to quality at 256x256")


@pytest.mark.parametrize("argv, words", [
    (["--merge"], "--merge needs --only"),
    (["--only", "time_to_quality_256", "--quick"], "the quick plan has none"),
    (["--only", "time_to_quality_256", "--merge"], "not a benchmark's JSON"),
])
def test_bad_benchmark_arguments_are_refused_in_one_line_before_anything_runs(tmp_path, monkeypatch, capsys, argv,
                                                                              words):
    import cartoon_vae.benchmark
    from cartoon_vae.cli import main

    out = tmp_path / "bench.json"
    out.write_text("{not json")
    monkeypatch.setattr(cartoon_vae.benchmark, "run_benchmark", lambda **k: pytest.fail("ran"))
    assert main(["benchmark", *argv, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert words in err and err.count("\n") == 1


def test_the_256_race_reads_the_paper_recipe_at_the_recommended_crop_and_batch(monkeypatch):
    import cartoon_vae.bench_children as children

    seen = {}
    monkeypatch.setattr(children, "time_to_quality", lambda paper, rec, *a: seen.update(paper=paper, rec=rec) or {})
    paper, rec = ROOT / "configs" / "paper.yaml", ROOT / "configs" / "recommended-256.yaml"
    children.child_time_to_quality(str(paper), str(rec), "faces", 1, 1, same_framing=True)
    assert (seen["paper"].data.crop, seen["paper"].data.batch_size) == (0.72, 32) != (1.0, 128)
    assert seen["paper"].model == load_config(paper).model and seen["paper"].data.dir == seen["rec"].data.dir == "faces"
    children.child_time_to_quality(str(paper), str(rec), "faces", 1, 1)
    assert (seen["paper"].data.crop, seen["paper"].data.batch_size) == (1.0, 128)  # the 64x64 race: as configured
