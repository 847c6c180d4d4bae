"""The child-process entry points are one explicit table, and a child runs one of them."""

from cartoon_vae import load_config
from cartoon_vae.bench_children import CHILDREN, child_step
from cartoon_vae.bench_measure import in_child

from .conftest import ROOT


def test_the_table_names_every_entry_point():
    assert set(CHILDREN) == {"size_section", "child_step", "child_reference_training", "child_time_to_quality"}
    assert CHILDREN["child_step"] is child_step


def test_a_step_runs_in_a_fresh_process_with_its_own_environment(tmp_path):
    config = load_config(ROOT / "configs" / "demo-paper.yaml", ["data.image_size=32", "model.encoder_filters=[4,4,4,4,4]",
                                                                "model.decoder_filters=[4,4,4,4]"])
    (tmp_path / "c.yaml").write_text(__import__("yaml").safe_dump(config.to_dict()))
    images, seconds = in_child("child_step", {"TF_NUM_INTEROP_THREADS": "1"}, config_path=str(tmp_path / "c.yaml"),
                               batch_size=4, images=8)
    assert images == 8 and seconds > 0
