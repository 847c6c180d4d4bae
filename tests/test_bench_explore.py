"""The explorer's latency measurement runs against a real server and reports what the README quotes."""

from cartoon_vae.bench_explore import explore_latency
from cartoon_vae.cli import main
from cartoon_vae.synthetic import make_dataset

from .conftest import ROOT


def test_latency_of_decode_and_edit_with_several_clients(tmp_path):
    make_dataset(tmp_path / "faces", n=24, seed=1, workers=1, progress=False)
    sets = ["data.image_size=32", "data.load_size=64", "model.latent_dim=4", "model.encoder_filters=[4,4,4,4,4]",
            "model.decoder_filters=[4,4,4,4]", "data.batch_size=8", "data.val_fraction=0.25", "train.epochs=1"]
    assert main(["train", "--config", str(ROOT / "configs" / "paper.yaml"), "--data", str(tmp_path / "faces"),
                 "--run-dir", str(tmp_path / "run"), *[a for s in sets for a in ("--set", s)]]) == 0
    r = explore_latency(tmp_path / "run", clients=2, requests=5)
    for endpoint in ("decode", "edit"):
        assert 0 < r[endpoint]["p50_ms"] <= r[endpoint]["p95_ms"] and r[endpoint]["requests_per_s"] > 0
    assert r["image_size"] == 32 and r["clients"] == 2
