"""The paper's equations 1-6, one function each.

Notation: ``mean`` is Z_mu and ``log_var`` is log Z_sigma^2, both of shape
(batch, latent_dim). Every loss here is *per image*: it returns shape (batch,).
How a batch is reduced is the model's business (it takes the mean; see
:class:`cartoon_vae.model.CartoonVAE`).

Where the paper's eq. 5 really is a bound (proved in the tests, and in one line
here): per latent dimension, with s = sigma^2 and x = s - 1, the exact term is
x - log(1 + x) and the polynomial term is x^2 / 2. Their difference
``exact - poly = (x - x^2/2) - log(1 + x)`` is >= 0 for s <= 1 and <= 0 for
s >= 1, because d/dx [log(1+x) - x + x^2/2] = x^2 / (1+x) >= 0. So eq. 5 is a
lower bound of the KL only where sigma^2 <= 1; on 1 < sigma^2 < 2 it is an
upper bound; the two agree at sigma^2 = 1. As sigma^2 -> 0 the exact KL grows
without limit while eq. 5 stays below 0.25 nats per dimension.
"""

import math

from keras import ops


def reconstruction_mse(x, x_hat):
    """Eq. 1 / eq. 3: the mean squared error of one image, averaged over its pixels and channels."""
    return ops.mean(ops.square(x - x_hat), axis=tuple(range(1, len(x.shape))))


def kl_exact_per_dim(mean, log_var):
    """Eq. 4 term by term: -0.5 * (1 - mu^2 - sigma^2 + log sigma^2), shape (batch, latent_dim)."""
    return -0.5 * (1.0 - ops.square(mean) - ops.exp(log_var) + log_var)


def kl_poly_bound_per_dim(mean, log_var):
    """Eq. 5 term by term: 0.5 * (mu^2 + 0.5 * (sigma^2 - 1)^2), shape (batch, latent_dim)."""
    return 0.5 * (ops.square(mean) + 0.5 * ops.square(ops.exp(log_var) - 1.0))


def kl_exact(mean, log_var):
    """Eq. 4: KL[N(mean, sigma^2) || N(0, I)] = -0.5 * sum(1 - mu^2 - sigma^2 + log sigma^2), in nats."""
    return ops.sum(kl_exact_per_dim(mean, log_var), axis=-1)


def kl_poly_bound(mean, log_var):
    """Eq. 5: 0.5 * sum(mu^2 + 0.5 * (sigma^2 - 1)^2), log sigma^2 replaced by its 2nd-order Taylor polynomial.

    It stands for the KL only while 0 < sigma^2 < 2 (the radius of convergence of
    log(1 + x) around sigma^2 = 1), which is why the model bounds the variance head
    when this form is trained. It is <= :func:`kl_exact` for sigma^2 <= 1 and >= it
    for sigma^2 >= 1 (module docstring).
    """
    return ops.sum(kl_poly_bound_per_dim(mean, log_var), axis=-1)


KL_FORMS = {"exact": kl_exact, "poly_bound": kl_poly_bound}
KL_PER_DIM = {"exact": kl_exact_per_dim, "poly_bound": kl_poly_bound_per_dim}


def free_bits_kl(kl_per_dim, free_bits):
    """Free bits (Kingma et al. 2016): sum_d max(lambda, E_batch[KL_d]), a floor of ``free_bits`` nats
    per latent dimension on the batch's mean KL. Below the floor a dimension's KL has no gradient, so
    the encoder is not pushed to switch it off. Returns a scalar (the batch's value, not per image)."""
    return ops.sum(ops.maximum(ops.mean(kl_per_dim, axis=0), free_bits))


def calibrated_gaussian_nll(mse, pixels, min_log_sigma=-6.0):
    """Per-image negative log-likelihood of a Gaussian decoder whose one shared variance is set to
    its optimum, the batch's mean squared error (sigma-VAE, Rybkin et al. 2021):

        -log p(x | z) = D/2 * (mse / sigma^2 + log(2 pi sigma^2)),  sigma^2 = mean over the batch of mse,

    with D = ``pixels`` (values per image). This weights the reconstruction by D / (2 sigma^2): the
    weight grows as the decoder improves, instead of a fixed number chosen by hand. log sigma is kept
    at or above ``min_log_sigma`` so a perfect batch cannot make the loss unbounded.
    """
    log_sigma = ops.maximum(0.5 * ops.log(ops.mean(mse) + 1e-12), min_log_sigma)
    return 0.5 * pixels * (mse / ops.exp(2.0 * log_sigma) + 2.0 * log_sigma + math.log(2.0 * math.pi))


def palette_index(x, palette):
    """(b, S, S) int32: the nearest palette colour of each pixel of ``x`` (b, S, S, 3), ``palette`` (K, 3)."""
    d = ops.sum((ops.expand_dims(ops.cast(x, "float32"), -2) - palette) ** 2, axis=-1)
    return ops.cast(ops.argmin(d, axis=-1), "int32")


def palette_nll(x, logits, palette):
    """Per-image negative log-likelihood (nats) of a categorical decoder over a fixed palette of flat colours:
    each pixel of ``x`` is the palette colour nearest to it, and -log p(x | z) is the sum over pixels of the
    cross-entropy of that colour under the pixel's ``logits`` (b, S, S, K). For flat-colour art a likelihood
    with one mode per colour: an uncertain pixel picks a colour instead of averaging two (PixelCNN's 256-way
    softmax, van den Oord et al. 2016, over K learned colours instead of 256 levels per channel)."""
    target = palette_index(x, palette)
    ce = ops.sparse_categorical_crossentropy(target, ops.cast(logits, "float32"), from_logits=True)
    return ops.sum(ops.reshape(ce, (ops.shape(ce)[0], -1)), axis=-1)


def palette_mode(logits, palette):
    """(b, S, S, 3): each pixel drawn in its most likely palette colour."""
    return ops.take(palette, ops.argmax(logits, axis=-1), axis=0)


def reparameterize(mean, log_var, eps, reparam="std"):
    """Eq. 6: z = mu + scale * eps, eps ~ N(0, I).

    Args:
        reparam: ``"std"`` scales by sigma (the standard trick, and what the
            reference code does); ``"paper_variance"`` scales by sigma^2, which is
            eq. 6 as printed. The two agree only where sigma = 1.
    """
    if reparam == "std":
        scale = ops.exp(0.5 * log_var)
    elif reparam == "paper_variance":
        scale = ops.exp(log_var)
    else:
        raise ValueError(f"reparam must be 'std' or 'paper_variance', got {reparam!r}")
    return mean + scale * eps


def posterior_log_var(log_var, reparam="std"):
    """log of the variance of the posterior that eq. 6 really samples. With ``"std"`` it is the encoder's
    log sigma^2; eq. 6 as printed (``"paper_variance"``) scales eps by sigma^2, so the sampled z has
    variance sigma^4 and the KL of the code actually used is that of N(mu, exp(2 log_var))."""
    if reparam == "paper_variance":
        return 2.0 * log_var
    if reparam != "std":
        raise ValueError(f"reparam must be 'std' or 'paper_variance', got {reparam!r}")
    return log_var


def vae_loss(x, x_hat, mean, log_var, kl="poly_bound", reconstruction_weight=1.0, kl_weight=1.0):
    """Eq. 2 per image: w_rec * MSE + w_kl * KL, with KL in the chosen form.

    The paper's eq. 2 has both weights 1; the reference code weights the MSE by 1000.
    """
    return reconstruction_weight * reconstruction_mse(x, x_hat) + kl_weight * KL_FORMS[kl](mean, log_var)
