"""The paper's claims as data, and the numbers that judge them.

Each claim names which variants it compares, on which metric (a key of a run's record from
``ablate``, or a series derived from the training curves, :data:`SERIES`), which direction the
paper predicts, and which equivalence margin applies; comparisons are paired by seed
(:func:`cartoon_vae.stats.paired_interval`) and each gets the verdict its interval supports
(:func:`cartoon_vae.stats.verdict`). A claim's verdict combines the verdicts of the comparisons
that vote (:func:`combine`). :func:`judge` returns plain numbers; ``cartoon_vae.reports`` renders them.

Example:
    >>> judged = judge(CLAIMS[0], rows, seeds=[0, 1, 2], confidence=0.95, margins={})
    >>> judged["verdict"]
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .stats import paired_interval, verdict

P, E = "paper", "exact_bounded"  # the paper's recipe, and eq. 4 with the same bounded head


@dataclass(frozen=True)
class Comparison:
    """a - b per seed. ``metric`` (or ``metric_b`` for b) is a record key or a :data:`SERIES` name;
    ``predicted``: the sign the claim predicts ("negative", "positive") or None (shown, not judged);
    ``margin``: a key of the spec's ``equivalence``; ``relative``: the difference over b;
    ``votes``: whether its verdict counts towards the claim's; ``when``: a record key the variant a
    must have a finite value of, or the comparison is left out."""

    label: str
    a: str
    b: str
    metric: str
    metric_b: str | None = None
    predicted: str | None = "negative"
    margin: str | None = None
    digits: int = 3
    relative: bool = False
    votes: bool = True
    when: str | None = None


@dataclass(frozen=True)
class Claim:
    """A claim of the paper: judged when every variant in ``needs`` has runs (``needs_any``: when one of
    the comparisons' variants has); ``title`` is the claim's heading; ``rule`` combines the votes."""

    key: str
    title: str
    comparisons: tuple[Comparison, ...]
    needs: tuple[str, ...] = (P, E)
    rule: str = "combine"


def values(rows, variant, key, seeds) -> np.ndarray:
    """``key`` of each seed's run of ``variant`` (NaN where it diverged, is missing or lacks the key)."""
    by_seed = {r["seed"]: r for r in rows.get(variant, [])}
    return np.array([float(by_seed[s].get(key, math.nan)) if s in by_seed and not by_seed[s]["diverged"]
                     else math.nan for s in seeds], float)


def _curve_value(rows, variant, seeds, pick):
    by_seed = {r["seed"]: r for r in rows.get(variant, [])}
    out = []
    for s in seeds:
        run = by_seed.get(s)
        out.append(pick(run.get("val_mse_curve", [])) if run and not run["diverged"] else math.nan)
    return np.array(out, float)


def val_mse_at(rows, variant, epoch, seeds) -> np.ndarray:
    """Each seed's validation MSE at ``epoch`` (NaN where the run stopped before it)."""
    return _curve_value(rows, variant, seeds, lambda c: c[epoch - 1][1] if len(c) >= epoch else math.nan)


def time_to(rows, variant, threshold, seeds) -> np.ndarray:
    """Each seed's training seconds until its validation MSE first reached ``threshold``."""
    return _curve_value(rows, variant, seeds,
                        lambda c: next((t for t, mse in c if mse <= threshold), math.nan))


def common_threshold(rows, a, b, seeds) -> float:
    """The worst final validation MSE of two variants: every run of both reaches it."""
    return float(np.nanmax(np.concatenate([values(rows, a, "final_val_mse", seeds),
                                           values(rows, b, "final_val_mse", seeds)])))


def rise_epoch(rows, mult, a, b) -> int:
    """The epoch at which the higher-rate runs of ``a`` and ``b`` are compared: the last any of them reached."""
    return max(len(r.get("val_mse_curve", [])) for r in rows[f"{a}@lr{mult}"] + rows[f"{b}@lr{mult}"])


def _rise(mult):
    """The rise of each seed's validation MSE at the higher rate over the same seed's run at the base rate."""
    def series(rows, variant, seeds, context):
        epoch = context["epoch"]
        return val_mse_at(rows, f"{variant}@lr{mult}", epoch, seeds) - val_mse_at(rows, variant, epoch, seeds)
    return series


SERIES = {  # derived metrics: (rows, variant, seeds, context) -> one value per seed
    "time_to_threshold": lambda rows, v, seeds, c: time_to(rows, v, c["threshold"], seeds),
    "val_mse_rise@lr3x": _rise("3x"),
    "val_mse_rise@lr10x": _rise("10x"),
}


def context(rows, comparison, seeds) -> dict | None:
    """Numbers a comparison's label and series need; None when its variants lack the runs."""
    c = comparison
    if c.metric == "time_to_threshold":
        return {"threshold": common_threshold(rows, c.a, c.b, seeds)}
    if c.metric.startswith("val_mse_rise@lr"):
        mult = c.metric.rsplit("@lr", 1)[1]
        if f"{c.a}@lr{mult}" not in rows or f"{c.b}@lr{mult}" not in rows:
            return None
        return {"epoch": rise_epoch(rows, mult, c.a, c.b), "mult": mult[:-1]}
    return {}


def series(rows, variant, metric, seeds, ctx) -> np.ndarray:
    return SERIES[metric](rows, variant, seeds, ctx) if metric in SERIES else values(rows, variant, metric, seeds)


def compare(rows, c: Comparison, seeds, confidence, margins) -> dict | None:
    """One comparison's numbers and verdict; None when it is left out (no runs, or ``when`` not met)."""
    if c.a not in rows or c.b not in rows:
        return None
    if c.when and not np.isfinite(values(rows, c.a, c.when, seeds)).any():
        return None
    ctx = context(rows, c, seeds)
    if ctx is None:
        return None
    a = series(rows, c.a, c.metric, seeds, ctx)
    b = series(rows, c.b, c.metric_b or c.metric, seeds, ctx)
    d = paired_interval((a - b) / b if c.relative else a, 0.0 if c.relative else b, confidence)
    if d["n"] < 2:  # one pair has no interval: the values stand in the tables above
        return {"verdict": "inconclusive", "shown": False, "votes": c.votes and c.predicted is not None}
    margin = float(margins.get(c.margin, 0.0)) if c.margin else 0.0
    if c.predicted is None:
        lo, hi = d["interval"]
        v = "a lower" if hi < 0 else "a higher" if lo > 0 else "no clear difference"
    else:
        v = verdict(d["interval"], c.predicted, margin)
    return {"label": c.label.format(**ctx), "relative": c.relative, "a": a, "b": b, "digits": c.digits,
            "mean": d["mean"], "interval": d["interval"], "effect_size": d["effect_size"], "n": d["n"],
            "margin": margin, "verdict": v, "shown": True, "votes": c.votes and c.predicted is not None}


def combine(verdicts) -> str:
    """A claim's verdict from its measures' verdicts."""
    v = set(verdicts)
    if v == {"supported"}:
        return "supported"
    if v == {"not supported"}:
        return "not supported"
    if "supported" in v and "not supported" in v:
        return "inconclusive (the measures disagree)"
    return "supported by some measures, inconclusive by others" if "supported" in v else (
        "not supported by some measures, inconclusive by others" if "not supported" in v else "inconclusive")


def judge(claim: Claim, rows, seeds, confidence, margins) -> dict | None:
    """A claim's compared rows and verdict; None when the runs it needs are missing (or none of its
    comparisons could be made, for a claim without ``needs``)."""
    if not all(v in rows for v in claim.needs):
        return None
    results = [r for r in (compare(rows, c, seeds, confidence, margins) for c in claim.comparisons) if r]
    votes = [r["verdict"] for r in results if r["votes"]]
    if not claim.needs and not votes:
        return None
    if claim.rule == "lower bound":  # (d): eq. 5 below the exact KL, and no variance where it is not a bound
        above = values(rows, P, "variance_above_one", seeds)
        holds = np.nanmax(above) == 0 and votes == ["supported"]
        verdict_ = "supported in these runs" if holds else "not supported as stated"
    else:
        verdict_ = combine(votes) if votes else "inconclusive"
    return {"key": claim.key, "title": claim.title, "verdict": verdict_, "rows": [r for r in results if r["shown"]]}


CLAIMS = (
    Claim("a", "The bound makes training much faster", (
        Comparison("s/epoch: bound vs exact (same head)", P, E, "seconds_per_epoch", margin="seconds_per_epoch",
                   relative=True),
        Comparison("seconds to val MSE <= {threshold:.4f}", P, E, "time_to_threshold", margin="seconds_per_epoch",
                   relative=True))),
    Claim("b", "The bound makes the latent space smoother", (
        Comparison("interpolation unevenness", P, E, "unevenness", margin="unevenness"),
        Comparison("midpoint FD_attr", P, E, "midpoint_fd_attr", margin="midpoint_fd_attr", digits=1),
        *(Comparison(f"{key} (higher = more disentangled; not voted)", P, E, key, predicted=None)
          for key in ("mig", "dci_disentanglement", "sap")))),
    Claim("c", "The bound makes training more stable", tuple(
        Comparison("rise of val MSE at epoch {epoch} with lr x{mult}", P, E, f"val_mse_rise@lr{mult}",
                   margin="final_val_mse", digits=4) for mult in ("3x", "10x"))),
    Claim("d", "Eq. 5 is a lower bound of the KL", (
        Comparison("eq. 5 vs exact KL, held-out (nats/image)", P, P, "kl_poly_heldout", "kl_exact_heldout",
                   digits=1),), rule="lower bound"),
    Claim("e", "Min-max uniform sampling gives realistic faces (better than N(0, I))", tuple(
        Comparison(f"{n}: {metric} min-max vs {other}", n, n, f"{metric}_minmax", f"{metric}_{other}", margin=metric,
                   digits=1, votes=(n == P and other == "normal"), when=f"{metric}_minmax")
        for n in (P, "recommended") for metric in ("fd_attr", "fid") for other in ("normal", "gmm")), needs=()),
)

# Single changes beyond the claims: which way each interval points, nothing judged.
EFFECTS = tuple(Comparison(f"{what}: {key}", a, b, key, predicted=None, digits=d)
                for a, b, what in (("exact", E, "unbounded vs bounded head (exact KL)"),
                                   ("paper_variance", P, "eq. 6 as printed vs std reparameterisation (bound)"),
                                   ("recommended", P, "recommended recipe vs paper recipe"))
                for key, d in (("final_val_mse", 4), ("active_units", 1), ("fd_attr_minmax", 1), ("fd_attr_gmm", 1)))


def stability_facts(rows, seeds) -> dict:
    """Claim (c)'s context: diverged runs per learning rate, and the spread of the final validation MSE
    across seeds with the Brown-Forsythe test of equal spread."""
    from scipy import stats

    diverged = {f"{mult}": {v: (sum(r["diverged"] for r in rows[f"{v}{suffix}"]), len(rows[f"{v}{suffix}"]))
                            for v in (P, E)}
                for mult, suffix in (("1x", ""), ("3x", "@lr3x"), ("10x", "@lr10x"))
                if f"{P}{suffix}" in rows and f"{E}{suffix}" in rows}
    fp, fe = values(rows, P, "final_val_mse", seeds), values(rows, E, "final_val_mse", seeds)
    lev = stats.levene(fp[np.isfinite(fp)], fe[np.isfinite(fe)], center="median")
    return {"diverged": diverged, "sd_bound": float(np.nanstd(fp, ddof=1)), "sd_exact": float(np.nanstd(fe, ddof=1)),
            "levene_p": float(lev.pvalue)}


def rank_agreement(rows, names) -> dict | None:
    """Spearman rank correlation of FD_attr and FID over every (run, sampler) that has both."""
    from scipy import stats

    pairs = [(r[f"fd_attr_{m}"], r[f"fid_{m}"]) for n in names for r in rows[n] if not r["diverged"]
             for m in ("minmax", "normal", "gmm", "reconstructions") if f"fid_{m}" in r]
    if len(pairs) < 4:
        return None
    rho = stats.spearmanr(*np.array(pairs).T)
    return {"pairs": len(pairs), "rho": float(rho.statistic), "p": float(rho.pvalue)}
