"""The one builder: the paper's model for a plain config, the conditional one for model.conditional."""

import pytest

from cartoon_vae import build_vae, load_config
from cartoon_vae.conditional import ConditionalVAE
from cartoon_vae.model import CartoonVAE

from .conftest import small_overrides


def test_a_plain_config_builds_the_papers_model_compiled_at_the_configs_rate(paper_config_path):
    vae = build_vae(load_config(paper_config_path, [*small_overrides(), "train.learning_rate=0.002"]))
    assert type(vae) is CartoonVAE and vae.conditioned == ()
    assert float(vae.optimizer.learning_rate) == pytest.approx(0.002)
    assert not build_vae(load_config(paper_config_path, small_overrides()), compile=False).compiled


def test_a_conditional_config_builds_the_conditional_model_with_its_readers_rate(paper_config_path):
    cfg = load_config(paper_config_path, [*small_overrides(), "model.conditional=[glasses,hair]",
                                          "loss.adversary_weight=1", "train.reader_learning_rate=0.01"])
    vae = build_vae(cfg, label_sizes=[3, 2])
    assert type(vae) is ConditionalVAE and vae.conditional == (("glasses", 3), ("hair", 2))
    assert float(vae.adversary_optimizer.learning_rate) == pytest.approx(0.01)
    with pytest.raises(ValueError, match="label_sizes"):
        build_vae(cfg, label_sizes=[3])
