"""Measuring on a shared machine: interleaved rounds, paired ratios, the roofline, a child process."""

import pytest

from cartoon_vae.bench_measure import in_child, interleave, matmul_flops, phase, rate_ratio


def test_interleave_rotates_the_order_and_drops_the_warm_up_round():
    calls = []

    def contender(name, seconds):
        def run():
            calls.append(name)
            return 10, seconds
        return run

    rates = interleave({"a": contender("a", 1.0), "b": contender("b", 2.0), "c": contender("c", 5.0)}, rounds=3)
    assert calls == ["a", "b", "c", "b", "c", "a", "c", "a", "b", "a", "b", "c"]
    assert rates == {"a": [10.0] * 3, "b": [5.0] * 3, "c": [2.0] * 3}


def test_rate_ratio_is_the_paired_geometric_mean_with_a_t_interval():
    drift = [1.0, 0.6, 1.3, 0.8]  # the machine's speed in each round: cancels within a pair
    r = rate_ratio([2 * d for d in drift], drift)
    assert r["ratio"] == pytest.approx(2.0) and r["interval"] == [pytest.approx(2.0)] * 2 and r["rounds"] == 4
    noisy = rate_ratio([2.2, 1.2, 2.4, 1.7], drift)
    assert noisy["interval"][0] < noisy["ratio"] < noisy["interval"][1]
    assert rate_ratio([2.0], [1.0])["interval"] == [None, None]  # one round: no interval


def test_matmul_roofline_in_both_precisions_is_positive():
    assert matmul_flops(n=128, seconds=0.05) > 0 and matmul_flops(n=128, seconds=0.05, dtype="bfloat16") > 0


def test_phase_records_seconds_memory_and_steal():
    record = {}
    with phase(record, "x"):
        bytearray(10 << 20)
    assert set(record["x"]) == {"seconds", "rss_at_start_mb", "peak_rss_mb", "cpu_steal"}
    assert record["x"]["peak_rss_mb"] >= record["x"]["rss_at_start_mb"] > 0


def test_a_failing_child_is_one_error_with_its_stderr():
    with pytest.raises(RuntimeError, match="benchmark child nope failed"):
        in_child("nope", {})
