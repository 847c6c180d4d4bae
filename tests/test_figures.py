"""Every figure of a run is drawn from what it is given (a model, held-out faces, fitted samplers, the history)."""

import numpy as np
from PIL import Image

from cartoon_vae.config import Config
from cartoon_vae.figures import plot_loss_curves, save_grid, write_run_figures, write_samples
from cartoon_vae.runs import write_history
from cartoon_vae.samplers import MinMax, Mixture, Normal


class Identity:
    """encode: the mean pixel per channel as a 3-d code; decode: a flat image of that colour."""

    latent_dim = 3

    def encode(self, x, labels=None, training=False):
        m = np.asarray(x).mean((1, 2))
        return m, np.zeros_like(m)

    def decode(self, z, labels=None):
        return np.broadcast_to(np.clip(np.asarray(z), 0, 1)[:, None, None, :], (len(z), 16, 16, 3)).copy()


def test_write_run_figures_draws_each_figure(tmp_path):
    rng = np.random.default_rng(0)
    codes = rng.uniform(0.2, 0.8, (40, 3)).astype(np.float32)
    samplers = {"minmax": MinMax(3).fit(codes), "normal": Normal(3), "gmm": Mixture(3).fit(codes)}
    faces = rng.uniform(0, 1, (4, 16, 16, 3)).astype(np.float32)
    write_history(tmp_path / "history.csv", [{"epoch": 1, "loss": 2.0, "val_loss": 2.5}, {"epoch": 2, "loss": 1.0}])
    config = Config().replace(sample={"n": 4, "reconstructions": 2, "interpolation_steps": 3})
    write_run_figures(tmp_path, Identity(), config, faces, samplers)
    for name in ("fig4_reconstruction", "fig5_uniform_samples", "samples_normal", "samples_gmm", "interpolation",
                 "loss_curves"):
        assert Image.open(tmp_path / f"{name}.png").size[0] > 100, name
    del samplers["gmm"]
    (tmp_path / "samples_gmm.png").unlink()
    write_run_figures(tmp_path, Identity(), config, faces, samplers)
    assert not (tmp_path / "samples_gmm.png").exists()  # a sampler not given: no figure


def test_save_grid_and_loss_curves_write_whole_pngs(tmp_path):
    save_grid(np.zeros((6, 8, 8, 3)), tmp_path / "g.png", 2, 3, row_labels=["a", "b"], title="t", col_labels=list("xyz"))
    plot_loss_curves([{"epoch": 1, "loss": 1.0, "reconstruction_loss": 0.1}], tmp_path / "l.png")
    assert Image.open(tmp_path / "g.png").format == Image.open(tmp_path / "l.png").format == "PNG"
    assert not list(tmp_path.glob(".tmp-*"))


def test_write_samples_writes_each_face_and_the_codes(tmp_path, monkeypatch):
    import cartoon_vae.figures as figures

    monkeypatch.setattr(figures, "SAMPLE_BATCH", 2)  # three batches for five codes
    z = np.random.default_rng(0).uniform(0, 1, (5, 3)).astype(np.float32)
    names = write_samples(tmp_path / "s", Identity(), z)
    assert names == {f"sample_{i:04d}.png" for i in range(5)} | {"latents.npy"}
    assert sorted(p.name for p in (tmp_path / "s").iterdir()) == sorted(names)
    np.testing.assert_array_equal(np.load(tmp_path / "s" / "latents.npy"), z)
    assert Image.open(tmp_path / "s" / "sample_0004.png").getpixel((0, 0)) == tuple(int(round(v * 255)) for v in z[4])
