"""The benchmark's results as the README's Markdown tables."""

from __future__ import annotations


def _interval(i):
    return f"[{i[0]}, {i[1]}]" if i and None not in i else "n/a"


def format_table(results) -> str:
    """The benchmark as Markdown tables (the README's performance section)."""
    lines = _training_table(results) + _machine_lines(results) + _auto_table(results)
    lines += time_to_quality_lines(results) + _input_pipeline_table(results) + _sentences(results)
    lines += _step_variants_table(results) + _op_profile_lines(results) + _phases_table(results)
    return "\n".join(lines)


def _training_table(results) -> list:
    """The training loops per image size: images/s, the speedup with its interval, FLOP/s."""
    lines = ["| image size | batch | reference loop img/s | project img/s | speedup [95% CI] | reference, oneDNN off, "
             "own process, img/s | project GFLOP/s | % of matmul |", "|---|---|---|---|---|---|---|---|"]
    for r in results["training"]:
        lines.append(f"| {r['image_size']} | {r['batch_size']} | {r['reference_img_s']} | {r['project_img_s']} | "
                     f"**{r['speedup']}x** {_interval(r['speedup_interval'])} | {r['reference_tf_defaults_img_s']} | "
                     f"{r['project_gflop_s']} | {100 * r['fraction_of_matmul']:.0f}% |")
    return lines


def _machine_lines(results) -> list:
    """The machine in one paragraph: CPU, flags, the precision ``auto`` picks, matmul rates, CPU steal."""
    m = results["machine"]
    steal = [p["cpu_steal"] for p in results["phases"].values() if p.get("cpu_steal") is not None]
    return ["", f"Machine: {m['cpu']}, {m['cores']} cores; flags " + ", ".join(
        f"{f} {'yes' if on else 'no'}" for f, on in m.get("cpu_flags", {}).items())
        + f"; `train.precision: auto` picks **{m.get('auto_precision', 'float32')}**. Dense float32 matmul: "
        f"{results['matmul_gflop_s']} GFLOP/s" + (f"; bfloat16: {results['matmul_bf16_gflop_s']} GFLOP/s"
                                                  if "matmul_bf16_gflop_s" in results else "")
        + (f". CPU steal by the hypervisor, per phase: {100 * min(steal):.0f}% to {100 * max(steal):.0f}%"
           if steal else "") + ". Rates are medians over interleaved rounds; ratios are geometric means of "
        "the per-round ratios with Student-t intervals.", ""]


def _auto_table(results) -> list:
    """The precision ``auto`` picks against float32 and the reference loop, where it is not float32."""
    if not any(r.get("auto_precision", "float32") != "float32" for r in results["training"]):
        return []
    lines = ["| image size | float32 img/s | auto img/s | auto vs float32 [95% CI] | auto vs reference loop | "
             "% of the auto roofline |", "|---|---|---|---|---|---|"]
    for r in results["training"]:
        lines.append(f"| {r['image_size']} | {r['project_img_s']} | {r['auto_img_s']} ({r['auto_precision']}) | "
                     f"**{r['auto_vs_float32']}x** {_interval(r['auto_vs_float32_interval'])} | "
                     f"**{r['auto_speedup']}x** {_interval(r['auto_speedup_interval'])} | "
                     f"{100 * r['auto_fraction_of_roofline']:.0f}% |")
    return lines + [""]


def time_to_quality_lines(results) -> list:
    """Each time-to-quality race in one sentence, where the run had it."""
    lines = []
    for name, size in (("time_to_quality", "64x64"), ("time_to_quality_256", "256x256")):
        t = results.get(name)
        if not t:
            continue
        reached = (f"reaches it after {t['recommended_epochs']} epochs, {t['recommended_seconds']} s: **{t['speedup']}x**"
                   if t["recommended_seconds"] else f"does not reach it in {t['recommended_epochs']} epochs")
        lines += [f"Time to quality at {size}: the paper recipe in the reference loop ends {t['paper_epochs']} epochs "
                  f"at held-out MSE {t['target_mse']}, a value its curve first reached after "
                  f"{t['paper_reference_seconds']} s of training; the recommended recipe in the project's pipeline "
                  f"({t['recommended_precision']}) {reached}" + (f" ({t['machine']})." if "machine" in t else "."), ""]
    return lines


def _input_pipeline_table(results) -> list:
    """The input pipeline per image size, cold and cached, beside the rate training consumes images."""
    lines = ["| image size | input pipeline, cold img/s | cached img/s | training consumes img/s |",
             "|---|---|---|---|"]
    for r in results["input_pipeline"]:
        lines.append(f"| {r['image_size']} | {r['cold_img_s']} | {r['cached_img_s']} | {r['training_img_s']} |")
    return lines


def _sentences(results) -> list:
    """The results told in one sentence each: generation, the explorer's latency, claim (a)'s timing."""
    lines = []
    g = results.get("generation")
    if g:
        lines += ["", f"Generation at {g['image_size']}x{g['image_size']} from a reloaded model: 10 faces in "
                      f"{g['latency_10_ms']} ms; {g['batched_img_s']} faces/s in batches of {g['batch_size']} "
                      f"(model load {g['load_seconds']} s)."]
    e = results.get("explore")
    if e:
        lines += ["", explore_line(e)]
    for k in results.get("kl_step", []):
        lines += ["", kl_step_line(k)]
    return lines


def _step_variants_table(results) -> list:
    """The training step under each variant against the project's step, where the run measured them."""
    if not results["step_variants"]:
        return []
    lines = ["", "| image size | training step variant (batch 32) | img/s | vs the project's step [95% CI] |",
             "|---|---|---|---|"]
    for r in results["step_variants"]:
        lines.append(f"| {r['image_size']} | {r['variant']} | {r['img_s']} | {r['relative']}x "
                     f"{_interval(r.get('interval'))} |")
    return lines


def _op_profile_lines(results) -> list:
    """Where each profiled step's time goes, by op group, one sentence per image size."""
    lines = []
    for p in results.get("op_profiles", []):
        total = p["op_ms_per_step"]
        lines += ["", f"Where the {p['image_size']}x{p['image_size']} step's time goes (TensorFlow's profiler, batch "
                      f"{p['batch_size']}: {p['step_ms']} ms per step; {total} ms of op time summed over threads): "
                  + ", ".join(f"{g} {100 * ms / total:.0f}%" for g, ms in p["groups_ms"].items()) + "."]
    return lines


def _phases_table(results) -> list:
    """Each phase's seconds, memory and CPU steal."""
    lines = ["", "| phase | seconds | RSS at start MiB | peak RSS MiB | CPU steal |", "|---|---|---|---|---|"]
    for name, p in results["phases"].items():
        steal = p.get("cpu_steal")
        lines.append(f"| {name} | {p['seconds']} | {p['rss_at_start_mb']} | {p['peak_rss_mb']} | "
                     f"{'n/a' if steal is None else f'{100 * steal:.0f}%'} |")
    return lines


def explore_line(e) -> str:
    """The explorer's latency in one sentence (:func:`cartoon_vae.bench_explore.explore_latency`)."""
    d, v = e["decode"], e["edit"]
    return (f"Explorer at {e['image_size']}x{e['image_size']}, {e['clients']} clients at once, request to PNG: "
            f"decode p50 {d['p50_ms']} ms, p95 {d['p95_ms']} ms ({d['requests_per_s']} requests/s); an attribute "
            f"edit with a principal-direction move p50 {v['p50_ms']} ms, p95 {v['p95_ms']} ms "
            f"({v['requests_per_s']} requests/s).")


def kl_step_line(k) -> str:
    """Claim (a)'s timing in one sentence (:func:`cartoon_vae.bench_step.kl_step_timing`)."""
    lo, hi = k["time_change"]
    r = k["rate_ratio_eq5_over_eq4"]
    return (f"Claim (a) at {k['image_size']}x{k['image_size']}: the train step on eq. 5 runs {k['eq5_img_s']} img/s, on "
            f"eq. 4 {k['eq4_img_s']} img/s (same model and batch, {k['rounds']} interleaved rounds): rate ratio "
            f"{r['ratio']} {_interval(r['interval'])}, time per image {100 * lo:+.1f}% to {100 * hi:+.1f}%; "
            f"\"much faster\" (more than {100 * k['margin']:.0f}% less time): **{k['verdict']}**.")
