"""The sampler registry: fit and sample, caches read back or recomputed, the codes encoded once."""

import numpy as np
import pytest

from cartoon_vae.samplers import SAMPLERS, MinMax, Mixture, Normal, TwoStage, fitted_samplers


class FakeVae:
    """encode(x) = (x, 0); an encoder with weights, so the caches' fingerprint is defined."""

    def __init__(self, dim=3, weight=1.0):
        self.latent_dim = dim
        self.calls = 0

        class Encoder:
            weights = [np.full(4, weight, np.float32)]

        self.encoder = Encoder()

    def encode(self, x, labels=None, training=False):
        self.calls += 1
        return x, np.zeros_like(x)


def _codes(n=200, dim=3, seed=0):
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.normal(-4, 0.5, (n // 2, dim)), rng.normal(4, 0.5, (n - n // 2, dim))]).astype(np.float32)


def test_registry_names_each_sampler_once():
    assert SAMPLERS == {"minmax": MinMax, "normal": Normal, "gmm": Mixture, "two_stage": TwoStage}


def test_two_stage_state_is_checked_before_use():
    s = TwoStage(3).fit(_codes())
    assert s.count == 200 and s.valid(s.state) and s.sample(5, np.random.default_rng(0)).shape == (5, 3)
    assert not TwoStage(4).valid(s.state)  # another latent size
    assert not s.valid({**s.state, "w2": np.full_like(s.state["w2"], np.nan)})
    assert not s.valid({k: v for k, v in s.state.items() if k != "mean"})


def test_minmax_fits_the_box_streamed_or_whole_and_samples_inside_it():
    codes = _codes()
    whole = MinMax(3).fit(codes)
    streamed = MinMax(3).fit(iter([codes[:50], codes[50:120], codes[120:]]))
    for s in (whole, streamed):
        np.testing.assert_array_equal(s.state["min"], codes.min(0))
        np.testing.assert_array_equal(s.state["max"], codes.max(0))
        assert s.count == 200
    z = whole.sample(500, np.random.default_rng(1))
    assert z.shape == (500, 3) and np.all(z >= codes.min(0)) and np.all(z <= codes.max(0))
    with pytest.raises(ValueError, match="no images"):
        MinMax(3).fit(iter([]))


def test_mixture_finds_the_two_clusters_and_refuses_too_few_codes():
    m = Mixture(3).fit(_codes())
    assert m.state["components"] >= 2 and m.count == 200
    z = m.sample(1000, np.random.default_rng(0))
    assert np.mean(np.abs(np.abs(z[:, 0]) - 4) < 1.5) > 0.95  # near one cluster or the other, not between
    with pytest.raises(ValueError, match="at least 10"):
        Mixture(3).fit(_codes(9))


def test_normal_needs_no_fit():
    z = Normal(4).sample(3, np.random.default_rng(0))
    np.testing.assert_array_equal(z, np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32))


def test_fitted_samplers_encode_once_cache_and_reuse(tmp_path, monkeypatch):
    import cartoon_vae.inference as inference

    vae, batches = FakeVae(), [{"image": _codes()[:100]}, {"image": _codes()[100:]}]  # Batch dicts
    monkeypatch.setattr(inference, "training_batches", lambda config, with_index=False: batches)
    first = fitted_samplers(tmp_path, vae, None, ["minmax", "normal", "gmm"], 150)
    assert vae.calls == 2  # both batches once, for both fits (the second truncated at 150 images)
    assert first["minmax"].count == first["gmm"].count == 150
    assert {p.name for p in tmp_path.iterdir()} >= {"latent_stats.npz", "latent_gmm.npz"}
    again = fitted_samplers(tmp_path, vae, None, ["minmax", "gmm"], 150)
    assert vae.calls == 2  # read back, nothing encoded
    rng = np.random.default_rng
    np.testing.assert_array_equal(again["gmm"].sample(5, rng(0)), first["gmm"].sample(5, rng(0)))
    np.testing.assert_array_equal(again["minmax"].sample(5, rng(0)), first["minmax"].sample(5, rng(0)))
    fitted_samplers(tmp_path, FakeVae(weight=2.0), None, ["minmax"], 150)  # another model: refitted
    fitted_samplers(tmp_path, vae, None, ["minmax"], 100)  # another image count: refitted
    assert int(np.load(tmp_path / "latent_stats.npz")["count"]) == 100


@pytest.mark.parametrize("damage", ["truncate", "wrong shape", "nan"])
def test_a_damaged_cache_is_recomputed_with_a_notice(tmp_path, capsys, damage):
    vae = FakeVae()
    codes = _codes()
    fitted_samplers(tmp_path, vae, None, ["minmax"], 200, codes=codes)
    path = tmp_path / "latent_stats.npz"
    if damage == "truncate":
        path.write_bytes(path.read_bytes()[:100])
    else:
        state = dict(np.load(path))
        state["min"] = state["min"][:2] if damage == "wrong shape" else np.full(3, np.nan, np.float32)
        np.savez(path, **state)
    capsys.readouterr()
    s = fitted_samplers(tmp_path, vae, None, ["minmax"], 200, codes=codes)["minmax"]
    assert "latent statistics " + ("unreadable" if damage == "truncate" else "damaged") in capsys.readouterr().out
    np.testing.assert_array_equal(s.state["min"], codes.min(0))


def test_an_unknown_sampler_is_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown sampler 'flow'"):
        fitted_samplers(tmp_path, FakeVae(), None, ["flow"], 10)
