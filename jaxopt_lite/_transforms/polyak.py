"""Polyak's step size: the piece of `polyak_sgd`."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxopt_lite._core import tree_math, validate
from jaxopt_lite._core.dtypes import add, div, mul, promote, sub
from jaxopt_lite._core.recipe import recipe

_VARIANTS = ("sps", "sps+")
# Squared norms at or below this count as zero (the float64 machine epsilon,
# the threshold optax uses).
_TINY = float(np.finfo(np.float64).eps)


@recipe
def scale_by_polyak(
    f_min: float | jax.Array = 0.0,
    max_learning_rate: float | jax.Array = 1.0,
    eps: float | jax.Array = 0.0,
    variant: str = "sps",
) -> optax.GradientTransformationExtraArgs:
    r"""Scale the updates by Polyak's step size, read from the loss ``value=``.

    $$
    u \leftarrow \gamma \, g, \qquad
    \gamma = \min\left( \frac{f(w) - f^\star}{\lVert g \rVert^2 + \epsilon},
        \gamma_{\max} \right)
    $$

    and $\gamma = 0$ when $\lVert g \rVert^2 + \epsilon$ is below the
    float64 machine epsilon. With ``variant="sps+"`` the gap
    $f(w) - f^\star$ is replaced by its positive part. The norm is taken
    over all leaves of the incoming updates; when $\lVert g \rVert^2$
    overflows (or $\gamma$ would underflow), the step is computed as
    $\frac{f(w) - f^\star}{\lVert g \rVert} \frac{g}{\lVert g \rVert}$
    (docs/optax-differences.md).

    Args:
        f_min: a lower bound $f^\star$ of the loss (0 for models that can
            fit the data exactly), a finite number.
        max_learning_rate: the largest step $\gamma_{\max}$, a finite
            number >= 0.
        eps: $\epsilon$ added to the squared norm, a finite number >= 0.
        variant: ``"sps"`` or ``"sps+"``.

    Returns:
        An ``optax.GradientTransformationExtraArgs`` whose ``update`` needs
        the keyword ``value`` (the loss at the current parameters).

    Example:
        >>> import jax.numpy as jnp, jaxopt_lite as jol
        >>> t = jol.scale_by_polyak()
        >>> g = jnp.array([2.0, 0.0])
        >>> t.update(g, t.init(None), value=jnp.array(1.0))[0]
        Array([0.5, 0. ], dtype=float32)

    References:
        Loizou, Vaswani, Laradji and Lacoste-Julien, *Stochastic Polyak
        step-size for SGD: an adaptive learning rate for fast convergence*,
        2021.

        Garrigos, Gower and Schaipp, *Function value learning: adaptive
        learning rates based on the Polyak stepsize and function splitting in
        ERM*, 2023.
    """
    validate.check_range("f_min", f_min)
    validate.check_nonnegative("max_learning_rate", max_learning_rate)
    validate.check_nonnegative("eps", eps)
    validate.check_choice("variant", variant, _VARIANTS)

    def init_fn(params):
        del params
        return optax.EmptyState()

    def update_fn(updates, state, params=None, *, value=None, **extra_args):
        del params, extra_args
        value = validate.require_value("scale_by_polyak", value)
        sq_norm = tree_math.tree_sum_squares(updates)
        gap = jnp.asarray(sub(value, f_min)).astype(sq_norm.dtype)
        if variant == "sps+":
            gap = jnp.maximum(gap, 0.0)
        denominator = add(sq_norm, eps)
        step = jnp.where(
            denominator <= _TINY,
            0.0,
            jnp.minimum(*promote(gap / denominator, max_learning_rate)),
        )
        scaled = tree_math.tree_scale(step, updates)
        # Where the squared norm overflows (or is so large that gap / |g|^2 is
        # below the smallest normal float and flushes to 0), scale by
        # (gap / |g|) (g / |g|) instead.
        large = sq_norm >= 1 / jnp.finfo(sq_norm.dtype).tiny
        fallback = _overflowed(updates, gap, max_learning_rate)
        return jax.tree.map(
            lambda a, b: jnp.where(large, b, a), scaled, fallback
        ), state

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def _overflowed(updates, gap, max_learning_rate):
    """Polyak's step ``min(gap / |g|^2, max) g`` for updates whose squared norm
    overflows, from the overflow-safe norm (NaN or infinite updates stay so)."""
    norm = tree_math.tree_global_norm(updates)
    step_times_norm = gap / norm
    capped = jnp.greater_equal(*promote(step_times_norm / norm, max_learning_rate))
    return jax.tree.map(
        lambda g: jnp.where(
            capped,
            *promote(mul(max_learning_rate, g), mul(step_times_norm, div(g, norm))),
        ).astype(g.dtype),
        updates,
    )
