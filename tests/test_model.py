"""The model of section IV: parameter counts, shapes, training, the variance bound, serialisation."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import ops

import cartoon_vae
from cartoon_vae import build_vae, load_config

from .conftest import small_overrides


def test_paper_parameter_counts_match_reference_code(paper_config_path):
    vae = build_vae(load_config(paper_config_path), compile=False)
    assert vae.encoder.count_params() == 1_770_128
    assert vae.decoder.count_params() == 954_307
    assert vae.decoder.get_layer("dense").units == (256 // 32) ** 2 * 64 == 4096


@pytest.mark.parametrize("size", [256, 64])
def test_output_shapes(paper_config_path, size):
    cfg = load_config(paper_config_path, [f"data.image_size={size}"])
    vae = build_vae(cfg, compile=False)
    x = np.random.RandomState(0).rand(2, size, size, 3).astype("float32")
    mean, log_var = vae.encode(x)
    assert mean.shape == log_var.shape == (2, 200)
    out = np.asarray(vae(x))
    assert out.shape == (2, size, size, 3) and out.min() >= 0 and out.max() <= 1
    assert vae.decoder.get_layer("dense").units == (size // 32) ** 2 * 64


def test_bound_keeps_variance_in_open_interval(paper_config_path):
    cfg = load_config(paper_config_path, small_overrides())
    vae = build_vae(cfg, compile=False)
    head = vae.encoder.get_layer("variance_bound")
    h = np.array([[-80.0, -5.0, 0.0, 5.0, 80.0]], "float32")
    var = np.exp(np.asarray(head(h)))
    assert np.all(var > 0) and np.all(var < 2.0 + 1e-6) and var[0, 2] == pytest.approx(1.0)
    exact = build_vae(load_config(paper_config_path, small_overrides() + ["loss.kl=exact"]), compile=False)
    assert "variance_bound" not in [layer.name for layer in exact.encoder.layers]


@pytest.mark.parametrize("kl,reparam", [("poly_bound", "std"), ("exact", "std"), ("exact", "paper_variance")])
def test_a_few_steps_on_a_fixed_batch_lower_the_loss(paper_config_path, kl, reparam):
    keras.utils.set_random_seed(0)
    cfg = load_config(paper_config_path, small_overrides() + [f"loss.kl={kl}", f"model.reparam={reparam}",
                                                               "train.learning_rate=2e-3"])
    vae = build_vae(cfg)
    x = np.random.RandomState(1).rand(8, 64, 64, 3).astype("float32")
    before = vae.evaluate(x, batch_size=8, verbose=0, return_dict=True)
    vae.fit(x, batch_size=8, epochs=15, verbose=0)
    after = vae.evaluate(x, batch_size=8, verbose=0, return_dict=True)
    assert after["loss"] < before["loss"]
    assert set(after) >= {"loss", "reconstruction_loss", "kl_loss", "kl_exact"}


def test_metrics_report_exact_kl_beside_the_trained_form(paper_config_path):
    vae = build_vae(load_config(paper_config_path, small_overrides()))
    x = np.random.RandomState(1).rand(8, 64, 64, 3).astype("float32")
    m = vae.evaluate(x, batch_size=8, verbose=0, return_dict=True)
    assert m["kl_loss"] != m["kl_exact"]


def test_paper_variance_reports_the_kl_of_the_posterior_it_samples(paper_config_path):
    """Eq. 6 as printed draws z = mu + sigma^2 eps: the code's variance is sigma^4 = exp(2 log_var), and the
    reported exact KL is that posterior's, checked against the closed form and against the sampled z."""
    from cartoon_vae.losses import kl_exact

    cfg = load_config(paper_config_path, small_overrides() + ["loss.kl=exact", "model.reparam=paper_variance"])
    vae = build_vae(cfg)
    x = np.random.RandomState(1).rand(8, 64, 64, 3).astype("float32")
    mean, log_var = (np.asarray(t, np.float64) for t in vae.encode(x))
    log_var = log_var + 0.7  # move sigma^2 away from 1, where the two readings agree
    z = np.asarray(vae.sampling([mean.astype("float32"), log_var.astype("float32")]))
    spread = np.var(np.stack([np.asarray(vae.sampling([mean.astype("float32"), log_var.astype("float32")]))
                              for _ in range(400)]), axis=0)
    np.testing.assert_allclose(np.median(spread / np.exp(2 * log_var)), 1.0, rtol=0.1)  # sampled variance sigma^4
    assert z.shape == mean.shape
    expected = 0.5 * np.sum(mean ** 2 + np.exp(2 * log_var) - 1 - 2 * log_var, axis=1)
    np.testing.assert_allclose(np.asarray(kl_exact(mean, vae.posterior_log_var(log_var))), expected, rtol=1e-6)
    m = vae.evaluate(x, batch_size=8, verbose=0, return_dict=True)
    mean0, log_var0 = (np.asarray(t, np.float64) for t in vae.encode(x))
    sampled = 0.5 * np.sum(mean0 ** 2 + np.exp(2 * log_var0) - 1 - 2 * log_var0, axis=1).mean()
    assert m["kl_exact"] == pytest.approx(sampled, rel=1e-4)


def test_keras_file_round_trip_gives_identical_outputs(tmp_path, paper_config_path):
    cfg = load_config(paper_config_path, small_overrides())
    vae = build_vae(cfg)
    x = np.random.RandomState(2).rand(4, 64, 64, 3).astype("float32")
    vae.fit(x, batch_size=4, epochs=1, verbose=0)
    vae.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    assert isinstance(loaded, cartoon_vae.CartoonVAE) and loaded.get_config() == vae.get_config()
    np.testing.assert_array_equal(np.asarray(loaded.encode(x)[0]), np.asarray(vae.encode(x)[0]))
    # Same input, same seed state: the sampled reconstructions are identical too.
    np.testing.assert_array_equal(np.asarray(loaded(x)), np.asarray(vae(x)))


def test_exact_kl_with_the_bounded_head_is_its_own_setting(paper_config_path):
    both = build_vae(load_config(paper_config_path, small_overrides() + ["loss.kl=exact",
                                                                         "model.bounded_variance=true"]),
                     compile=False)
    assert "variance_bound" in [layer.name for layer in both.encoder.layers] and both.kl == "exact"


def _objective(vae, x):
    terms = vae.compute_terms(x, training=False)
    return float(vae.objective(terms)), {k: np.asarray(v) for k, v in terms.items()}


def test_free_bits_floor_each_dimension_of_the_batch_mean_kl(paper_config_path):
    x = np.random.RandomState(1).rand(8, 64, 64, 3).astype("float32")
    base = small_overrides() + ["loss.kl=exact"]
    keras.utils.set_random_seed(0)
    plain = build_vae(load_config(paper_config_path, base))
    keras.utils.set_random_seed(0)
    floored = build_vae(load_config(paper_config_path, base + ["loss.free_bits=5.0"]))
    loss0, terms = _objective(plain, x)
    loss1, _ = _objective(floored, x)
    per_dim = terms["kl_per_dim"].mean(0)  # a fresh encoder's per-dimension KL is well under 5 nats
    assert per_dim.max() < 5.0
    rec = plain.reconstruction_weight * terms["reconstruction_loss"].mean()
    assert loss0 == pytest.approx(rec + per_dim.sum(), rel=1e-4)
    assert loss1 == pytest.approx(rec + 5.0 * len(per_dim), rel=1e-4)  # every dimension at its floor


def test_calibrated_gaussian_decoder_is_the_gaussian_nll_at_the_batch_mse(paper_config_path):
    x = np.random.RandomState(1).rand(8, 64, 64, 3).astype("float32")
    vae = build_vae(load_config(paper_config_path, small_overrides() + [
        "loss.kl=exact", "loss.reconstruction=calibrated_gaussian"]))
    loss, terms = _objective(vae, x)
    mse, d = terms["reconstruction_loss"], 64 * 64 * 3
    var = mse.mean()
    nll = 0.5 * d * (mse / var + np.log(2 * np.pi * var))
    assert loss == pytest.approx(nll.mean() + terms["kl_loss"].mean(), rel=1e-4)


def test_kl_warmup_scales_the_kl_linearly_with_the_step(paper_config_path):
    x = np.random.RandomState(1).rand(8, 64, 64, 3).astype("float32")
    vae = build_vae(load_config(paper_config_path, small_overrides() + ["loss.kl=exact",
                                                                        "loss.kl_warmup_epochs=2"]))
    vae.kl_warmup_steps = 4
    vae.optimizer.iterations.assign(1)  # the second step: weight 2/4
    loss, terms = _objective(vae, x)
    rec = vae.reconstruction_weight * terms["reconstruction_loss"].mean()
    assert loss == pytest.approx(rec + 0.5 * terms["kl_loss"].mean(), rel=1e-4)
    vae.optimizer.iterations.assign(10)
    assert _objective(vae, x)[0] == pytest.approx(rec + terms["kl_loss"].mean(), rel=1e-4)


def test_mixed_bfloat16_trains_within_tolerance_of_float32_and_saves_resumes_and_round_trips(tmp_path,
                                                                                         paper_config_path):
    """train.precision: mixed_bfloat16 computes convolutions in bfloat16 (variables, heads, losses float32);
    the losses of a few epochs stay within 2% of float32, and checkpoints, resume and .keras work."""
    from cartoon_vae.hardware import resolve_precision
    from cartoon_vae.synthetic import make_dataset
    from cartoon_vae.runs import read_history
    from cartoon_vae.train import train

    faces = tmp_path / "faces"
    make_dataset(faces, n=24, seed=3, workers=1, progress=False)
    runs = {}
    for precision in ("float32", "mixed_bfloat16"):
        cfg = load_config(paper_config_path, small_overrides(faces, size=32) + [
            f"train.precision={precision}", "train.epochs=3", "data.val_fraction=0.25", "train.learning_rate=2e-3"])
        train(cfg, tmp_path / precision, verbose=0)
        runs[precision] = read_history(tmp_path / precision / "history.csv")
    for a, b in zip(runs["float32"], runs["mixed_bfloat16"], strict=True):
        for key in ("reconstruction_loss", "val_reconstruction_loss"):
            assert b[key] == pytest.approx(a[key], rel=0.02), (a["epoch"], key)
    run = tmp_path / "mixed_bfloat16"
    assert load_config(run / "config.yaml").train.precision == "mixed_bfloat16"  # the run records it
    vae = keras.models.load_model(run / "model.keras")
    assert vae.encoder.get_layer("conv_1").compute_dtype == "bfloat16"
    assert vae.encoder.get_layer("z_log_var").compute_dtype == "float32" and vae.trainable_weights[0].dtype == "float32"
    x = np.random.RandomState(0).rand(2, 32, 32, 3).astype("float32")
    assert vae.decode(vae.encode(x)[0]).dtype == "float32"
    vae.save(tmp_path / "again.keras")
    again = keras.models.load_model(tmp_path / "again.keras")
    np.testing.assert_array_equal(np.asarray(again.encode(x)[0]), np.asarray(vae.encode(x)[0]))
    train(load_config(run / "config.yaml", ["train.epochs=4"]), run, resume=True, verbose=0)
    assert [r["epoch"] for r in read_history(run / "history.csv")] == [1, 2, 3, 4]
    assert resolve_precision("float32") == "float32"
    assert resolve_precision("auto") in ("float32", "mixed_bfloat16")


def test_up_sampling_by_resize_and_residual_blocks_are_config_keys_that_train_and_load_back(tmp_path,
                                                                                             paper_config_path):
    cfg = load_config(paper_config_path, small_overrides() + ["model.upsample=resize", "model.residual_blocks=1"])
    vae = build_vae(cfg)
    names = [layer.name for layer in vae.decoder.layers]
    assert not any(isinstance(layer, keras.layers.Conv2DTranspose) for layer in vae.decoder.layers)
    assert sum(n.endswith("_resize") for n in names) == 5 and sum(n.endswith("_add") for n in names) == 4
    x = np.random.RandomState(2).rand(4, 64, 64, 3).astype("float32")
    vae.fit(x, batch_size=4, epochs=1, verbose=0)
    vae.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    np.testing.assert_array_equal(np.asarray(loaded.decode(loaded.encode(x)[0])), np.asarray(vae.decode(vae.encode(x)[0])))


def test_a_palette_decoder_draws_only_palette_colours_trains_on_its_nll_and_keeps_the_palette(tmp_path,
                                                                                              paper_config_path):
    keras.utils.set_random_seed(0)
    cfg = load_config(paper_config_path, small_overrides() + ["loss.kl=exact", "loss.reconstruction=palette",
                                                              "loss.palette_size=4", "train.learning_rate=2e-3"])
    vae = build_vae(cfg)
    palette = np.array([[1, 1, 1], [0, 0, 0], [1, 0, 0], [0, 0, 1]], "float32")
    vae.palette.assign(palette)
    assert vae.decoder.output.shape[-1] == 4
    index = np.zeros((4, 64, 64), int)  # flat areas: left half white, right half another colour per face
    index[:, :, 32:] = np.array([1, 2, 3, 1])[:, None, None]
    x = palette[index]
    loss0, terms = _objective(vae, x)
    assert loss0 == pytest.approx((terms["nll"] + terms["kl_loss"]).mean(), rel=1e-5)
    drawn = np.asarray(vae.decode(vae.encode(x)[0])).reshape(-1, 3)
    assert (np.abs(drawn[:, None] - palette[None]).sum(-1).min(1) == 0).all()
    before = vae.evaluate(x, batch_size=4, verbose=0, return_dict=True)
    vae.fit(x, batch_size=4, epochs=15, verbose=0)
    assert vae.evaluate(x, batch_size=4, verbose=0, return_dict=True)["loss"] < before["loss"]
    vae.save(tmp_path / "m.keras")
    np.testing.assert_array_equal(np.asarray(keras.models.load_model(tmp_path / "m.keras").palette), palette)


def test_a_batch_of_images_alone_is_a_batch():
    from cartoon_vae.batches import as_batch

    x = np.zeros((2, 4, 4, 3), "float32")
    assert as_batch(x)["image"] is x and as_batch((x,))["image"] is x and as_batch({"image": x})["image"] is x
    with pytest.raises(TypeError, match="a tuple of 2"):
        as_batch((x, x))
