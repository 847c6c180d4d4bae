"""The one place that builds a model from a config: the paper's :class:`cartoon_vae.model.CartoonVAE`, or, for a
config with ``model.conditional``, :class:`cartoon_vae.conditional.ConditionalVAE`.

Example:
    >>> vae = build_vae(load_config("configs/paper.yaml"))
"""

from __future__ import annotations

import keras

from .conditional import ConditionalVAE, conditional_settings
from .model import CartoonVAE, model_settings


def build_vae(config, compile=True, fused_batch_norm=True, label_sizes=None, learning_rate=None) -> CartoonVAE:
    """A built (and, by default, compiled with Adam at ``train.learning_rate``) model of ``config``
    (:func:`cartoon_vae.model.model_settings`). A conditional config (``model.conditional``) needs ``label_sizes``,
    each conditioned attribute's number of variants (:func:`cartoon_vae.conditional.conditioning` reads them from
    the data). ``learning_rate``: a float or a Keras schedule (:func:`cartoon_vae.train.learning_rate`) in place of
    ``train.learning_rate``."""
    settings = model_settings(config, fused_batch_norm)
    if config.model.conditional:
        vae = ConditionalVAE(**settings, **conditional_settings(config, label_sizes))
    else:
        vae = CartoonVAE(**settings)
    vae.build((None, config.data.image_size, config.data.image_size, 3))
    if compile:
        rate = config.train.learning_rate if learning_rate is None else learning_rate
        vae.compile(optimizer=keras.optimizers.Adam(learning_rate=rate))
        # Built over every trainable variable (a reader's too, which it never updates), as Keras builds
        # it when a saved model is loaded: a resumed run then gets its optimizer state back.
        vae.optimizer.build(vae.trainable_variables)
    return vae
