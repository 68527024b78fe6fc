"""Second-moment (RMS-like) rescalings: the preconditioners of adagrad,
rmsprop (plain and centered) and adadelta.

Second moments of complex parameters are kept in the matching real dtype and
built from $|g|^2$.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jaxopt_lite._core import tree_math, validate
from jaxopt_lite._core.dtypes import add, mul, real_full_like, zeros_like
from jaxopt_lite._core.recipe import recipe
from jaxopt_lite._core.validate import check_bool

# optax's class itself, so that states compare equal to optax's as trees.
ScaleByRssState = optax.ScaleByRssState


@recipe
def scale_by_rss(
    initial_accumulator_value: float | jax.Array = 0.1,
    eps: float | jax.Array = 1e-7,
) -> optax.GradientTransformation:
    r"""Divide updates by the root of the sum of all squared gradients so far.

    $$
    s_t = s_{t-1} + |g_t|^2, \qquad
    u_t = \frac{g_t}{\sqrt{s_t + \epsilon}} \quad (u_t = 0 \text{ where } s_t = 0)
    $$

    This is the rescaling of `adagrad`.

    Args:
        initial_accumulator_value: $s_0$, a number >= 0.
        eps: $\epsilon >= 0$, added inside the square root.

    Returns:
        An ``optax.GradientTransformation``.

    Example:
        >>> import jax.numpy as jnp, jaxopt_lite as jol
        >>> t = jol.scale_by_rss(initial_accumulator_value=0.0, eps=0.0)
        >>> t.update(jnp.array([3.0, -4.0]), t.init(jnp.zeros(2)))[0]
        Array([ 1., -1.], dtype=float32)

    References:
        Duchi et al., *Adaptive Subgradient Methods for Online Learning and
        Stochastic Optimization*, 2011.
    """
    validate.check_nonnegative("initial_accumulator_value", initial_accumulator_value)
    validate.check_nonnegative("eps", eps)

    def init_fn(params):
        return ScaleByRssState(real_full_like(params, initial_accumulator_value))

    def update_fn(updates, state, params=None):
        del params
        sums = jax.tree.map(
            lambda g, s: (tree_math.abs_sq(g) + s).astype(s.dtype),
            updates,
            state.sum_of_squares,
        )
        new_updates = jax.tree.map(
            lambda g, s: mul(g, jnp.where(s > 0, jax.lax.rsqrt(add(s, eps)), 0)).astype(
                g.dtype
            ),
            updates,
            sums,
        )
        return new_updates, ScaleByRssState(sums)

    return optax.GradientTransformation(init_fn, update_fn)


# optax's classes: the count is kept only with ``bias_correction`` (optax's
# class with the count is private; ours has its name and fields).
ScaleByRmsState = optax.ScaleByRmsState


class ScaleByRmsWithCountState(NamedTuple):
    """Update count (int32, saturating) and the moving average of squared
    gradients (real dtype), for ``bias_correction=True``."""

    count: jax.Array
    nu: tree_math.PyTree


def _check_rms_args(
    decay: Any, eps: Any, initial_scale: Any, eps_in_sqrt: Any, bias_correction: Any
) -> None:
    """The checks of the arguments `scale_by_rms` and `scale_by_stddev` share."""
    validate.check_decay("decay", decay)
    validate.check_nonnegative("eps", eps)
    validate.check_nonnegative("initial_scale", initial_scale)
    check_bool("eps_in_sqrt", eps_in_sqrt)
    check_bool("bias_correction", bias_correction)


def _divide_by_root(
    updates: tree_math.PyTree, second: tree_math.PyTree, eps: Any, eps_in_sqrt: bool
) -> tree_math.PyTree:
    r"""Each update over $\sqrt{s + \epsilon}$ (or $\sqrt{s} + \epsilon$), with
    $s$ the matching leaf of ``second``, in the updates' dtypes."""

    def one(g, n):
        if eps_in_sqrt:
            factor = jax.lax.rsqrt(add(n, eps))
        else:
            factor = 1 / add(jnp.sqrt(n), eps)
        return mul(g, factor).astype(g.dtype)

    return jax.tree.map(one, updates, second)


@recipe
def scale_by_rms(
    decay: float | jax.Array = 0.9,
    eps: float | jax.Array = 1e-8,
    initial_scale: float | jax.Array = 0.0,
    eps_in_sqrt: bool = True,
    bias_correction: bool = False,
) -> optax.GradientTransformation:
    r"""Divide updates by the root of a moving average of squared gradients.

    $$
    \nu_t = \rho \, \nu_{t-1} + (1 - \rho) |g_t|^2, \qquad
    u_t = \frac{g_t}{\sqrt{\hat\nu_t + \epsilon}}
    \ \text{ or } \ \frac{g_t}{\sqrt{\hat\nu_t} + \epsilon}
    $$

    with $\hat\nu_t = \nu_t / (1 - \rho^t)$ when ``bias_correction`` is set,
    else $\hat\nu_t = \nu_t$. This is the rescaling of `rmsprop`.

    Args:
        decay: $\rho$, in $[0, 1)$.
        eps: $\epsilon >= 0$.
        initial_scale: $\nu_0 >= 0$.
        eps_in_sqrt: add $\epsilon$ inside the square root (default) or
            outside.
        bias_correction: divide $\nu_t$ by $1 - \rho^t$.

    Returns:
        An ``optax.GradientTransformation``.

    Example:
        >>> import jax.numpy as jnp, jaxopt_lite as jol
        >>> t = jol.scale_by_rms(decay=0.75, eps=0.0)
        >>> t.update(jnp.array([2.0]), t.init(jnp.zeros(1)))[0]
        Array([2.], dtype=float32)

    References:
        Tieleman and Hinton, *Lecture 6.5 -- RMSProp*, COURSERA: Neural
        Networks for Machine Learning, 2012.
    """
    _check_rms_args(decay, eps, initial_scale, eps_in_sqrt, bias_correction)

    def init_fn(params):
        nu = real_full_like(params, initial_scale)
        if bias_correction:
            return ScaleByRmsWithCountState(jnp.zeros([], jnp.int32), nu)
        return ScaleByRmsState(nu)

    def update_fn(updates, state, params=None):
        del params
        nu = tree_math.tree_update_moment(updates, state.nu, decay, 2)
        if not bias_correction:
            return _divide_by_root(updates, nu, eps, eps_in_sqrt), ScaleByRmsState(nu)
        count = tree_math.safe_increment(state.count)
        nu_hat = tree_math.tree_bias_correction(nu, decay, count)
        new_updates = _divide_by_root(updates, nu_hat, eps, eps_in_sqrt)
        return new_updates, ScaleByRmsWithCountState(count, nu)

    return optax.GradientTransformation(init_fn, update_fn)


# As for `scale_by_rms`: optax's class, and one with a count for
# ``bias_correction=True``.
ScaleByRStdDevState = optax.ScaleByRStdDevState


class ScaleByRStdDevWithCountState(NamedTuple):
    """Update count (int32, saturating), averages of gradients and of their
    squares, for ``bias_correction=True``."""

    count: jax.Array
    mu: tree_math.PyTree
    nu: tree_math.PyTree


@recipe
def scale_by_stddev(
    decay: float | jax.Array = 0.9,
    eps: float | jax.Array = 1e-8,
    initial_scale: float | jax.Array = 0.0,
    eps_in_sqrt: bool = True,
    bias_correction: bool = False,
) -> optax.GradientTransformation:
    r"""Divide updates by a moving estimate of the gradients' standard deviation.

    $$
    \mu_t = \rho \mu_{t-1} + (1 - \rho) g_t, \quad
    \nu_t = \rho \nu_{t-1} + (1 - \rho) |g_t|^2, \quad
    u_t = \frac{g_t}{\sqrt{\hat\nu_t - |\hat\mu_t|^2 + \epsilon}}
    $$

    ($\epsilon$ outside the root when ``eps_in_sqrt`` is false; hats are the
    bias-corrected averages when ``bias_correction`` is set). This is the
    rescaling of the centered `rmsprop`.

    Args:
        decay: $\rho$, in $[0, 1)$.
        eps: $\epsilon >= 0$.
        initial_scale: $\nu_0 >= 0$.
        eps_in_sqrt: add $\epsilon$ inside the square root (default) or
            outside.
        bias_correction: divide both averages by $1 - \rho^t$.

    Returns:
        An ``optax.GradientTransformation``.

    Example:
        >>> import jax.numpy as jnp, jaxopt_lite as jol
        >>> t = jol.scale_by_stddev(decay=0.5, eps=0.0)
        >>> t.update(jnp.array([2.0]), t.init(jnp.zeros(1)))[0]
        Array([2.], dtype=float32)

    References:
        Graves, *Generating Sequences With Recurrent Neural Networks*, 2013.
    """
    _check_rms_args(decay, eps, initial_scale, eps_in_sqrt, bias_correction)

    def init_fn(params):
        mu, nu = zeros_like(params), real_full_like(params, initial_scale)
        if bias_correction:
            return ScaleByRStdDevWithCountState(jnp.zeros([], jnp.int32), mu, nu)
        return ScaleByRStdDevState(mu, nu)

    def update_fn(updates, state, params=None):
        del params
        mu = tree_math.tree_update_moment(updates, state.mu, decay, 1)
        nu = tree_math.tree_update_moment(updates, state.nu, decay, 2)
        if bias_correction:
            count = tree_math.safe_increment(state.count)
            mu_hat = tree_math.tree_bias_correction(mu, decay, count)
            nu_hat = tree_math.tree_bias_correction(nu, decay, count)
            new_state = ScaleByRStdDevWithCountState(count, mu, nu)
        else:
            mu_hat, nu_hat = mu, nu
            new_state = ScaleByRStdDevState(mu, nu)
        variance = jax.tree.map(lambda m, n: n - tree_math.abs_sq(m), mu_hat, nu_hat)
        return _divide_by_root(updates, variance, eps, eps_in_sqrt), new_state

    return optax.GradientTransformation(init_fn, update_fn)


# optax's class itself, so that states compare equal to optax's as trees.
ScaleByAdaDeltaState = optax.ScaleByAdaDeltaState


@recipe
def scale_by_adadelta(
    rho: float | jax.Array = 0.9,
    eps: float | jax.Array = 1e-6,
) -> optax.GradientTransformation:
    r"""Rescale updates by the ratio of RMS of past updates to RMS of gradients.

    $$
    E[g^2]_t = \rho E[g^2]_{t-1} + (1-\rho) |g_t|^2, \quad
    u_t = \frac{\sqrt{E[\Delta^2]_{t-1} + \epsilon}}{\sqrt{E[g^2]_t + \epsilon}}\, g_t,
    \quad
    E[\Delta^2]_t = \rho E[\Delta^2]_{t-1} + (1-\rho) |u_t|^2
    $$

    This is the rescaling of `adadelta`.

    Args:
        rho: $\rho$, in $[0, 1)$.
        eps: $\epsilon >= 0$.

    Returns:
        An ``optax.GradientTransformation``.

    Example:
        >>> import jax.numpy as jnp, jaxopt_lite as jol
        >>> t = jol.scale_by_adadelta(rho=0.0, eps=1.0)
        >>> t.update(jnp.array([0.0]), t.init(jnp.zeros(1)))[0]
        Array([0.], dtype=float32)

    References:
        Zeiler, *ADADELTA: An Adaptive Learning Rate Method*, 2012.
    """
    validate.check_decay("rho", rho)
    validate.check_nonnegative("eps", eps)

    def init_fn(params):
        return ScaleByAdaDeltaState(
            real_full_like(params, 0.0), real_full_like(params, 0.0)
        )

    def update_fn(updates, state, params=None):
        del params
        e_g = tree_math.tree_update_moment(updates, state.e_g, rho, 2)
        new_updates = jax.tree.map(
            lambda g, eg, ex: mul(
                g, jnp.sqrt(add(ex, eps)) / jnp.sqrt(add(eg, eps))
            ).astype(g.dtype),
            updates,
            e_g,
            state.e_x,
        )
        e_x = tree_math.tree_update_moment(new_updates, state.e_x, rho, 2)
        return new_updates, ScaleByAdaDeltaState(e_g, e_x)

    return optax.GradientTransformation(init_fn, update_fn)
