r"""Adam-like rescalings: first and second moment estimates of the gradients.

All of them keep the first moment $\mu$ in the parameters' dtype (or
``mu_dtype`` where offered) and the second moment $\nu$ in the matching real
dtype (or ``nu_dtype`` where offered), built from $|g|^2$ so complex
parameters work. Updates come back in the gradients' dtype.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import optax

from jaxopt_lite._core import tree_math, validate
from jaxopt_lite._core.dtypes import (
    add,
    cast_like,
    div,
    promote,
    promoted_dtype,
    real_dtype,
    real_full_like,
    zeros_like,
)
from jaxopt_lite._core.recipe import recipe
from jaxopt_lite._core.validate import check_bool, check_dtype

# optax's class itself, so that states compare equal to optax's as trees.
ScaleByAdamState = optax.ScaleByAdamState

# optax's class itself, so that states compare equal to optax's as trees.
ScaleByAmsgradState = optax.ScaleByAmsgradState


def _check_moments(b1: Any, b2: Any, eps: Any, eps_root: Any = 0.0) -> None:
    validate.check_decay("b1", b1)
    validate.check_decay("b2", b2)
    validate.check_nonnegative("eps", eps)
    validate.check_nonnegative("eps_root", eps_root)


def _zero_state(
    params: tree_math.PyTree, mu_dtype: Any = None, nu_dtype: Any = None
) -> ScaleByAdamState:
    return ScaleByAdamState(
        count=jnp.zeros([], jnp.int32),
        mu=zeros_like(params, dtype=mu_dtype),
        nu=real_full_like(params, 0.0, nu_dtype),
    )


def _check_nu_dtype(nu_dtype: Any) -> Any:
    """``nu_dtype``: ``None`` or a real floating dtype (second moments are
    real, also for complex parameters), canonicalized."""
    return check_dtype("nu_dtype", nu_dtype, kind=jnp.floating)


def _widen(moments: tree_math.PyTree, updates: tree_math.PyTree) -> tree_math.PyTree:
    """Each second-moment leaf in at least its gradient's real dtype, so a
    narrow ``nu_dtype`` only rounds what is stored: a bfloat16 nu of float32
    gradients is corrected and divided by in float32. With the default
    ``nu_dtype`` the leaves already have that dtype and are returned as they
    are."""
    return jax.tree.map(
        lambda n, g: n.astype(promoted_dtype(n, real_dtype(g))), moments, updates
    )


def _first_moment_hat(
    updates: tree_math.PyTree,
    mu: tree_math.PyTree,
    b1: Any,
    count: jax.Array,
    nesterov: bool,
) -> tree_math.PyTree:
    r"""Bias-corrected first moment; with ``nesterov`` the look-ahead
    $\beta_1 \hat\mu_{t+1} + (1 - \beta_1) \hat g_t$ (Dozat, 2016)."""
    if not nesterov:
        return tree_math.tree_bias_correction(mu, b1, count)
    mu_next = tree_math.tree_bias_correction(mu, b1, tree_math.safe_increment(count))
    g_hat = tree_math.tree_bias_correction(updates, b1, count)
    return jax.tree.map(lambda m, g: tree_math.ema(b1, m, g), mu_next, g_hat)


def _adam_ratio(
    updates: tree_math.PyTree,
    mu_hat: tree_math.PyTree,
    nu_hat: tree_math.PyTree,
    eps,
    eps_root,
) -> tree_math.PyTree:
    r"""$\hat\mu / (\sqrt{\hat\nu + \epsilon_r} + \epsilon)$ in the gradients' dtype."""
    return jax.tree.map(
        lambda g, m, n: div(m, add(jnp.sqrt(add(n, eps_root)), eps)).astype(g.dtype),
        updates,
        mu_hat,
        nu_hat,
    )


@recipe
def scale_by_adam(
    b1: float | jax.Array = 0.9,
    b2: float | jax.Array = 0.999,
    eps: float | jax.Array = 1e-8,
    eps_root: float | jax.Array = 0.0,
    mu_dtype: Any = None,
    *,
    nu_dtype: Any = None,
    nesterov: bool = False,
) -> optax.GradientTransformation:
    r"""Rescale updates by Adam's bias-corrected moment estimates.

    $$
    \mu_t = \beta_1 \mu_{t-1} + (1-\beta_1) g_t, \quad
    \nu_t = \beta_2 \nu_{t-1} + (1-\beta_2) |g_t|^2, \quad
    u_t = \frac{\hat\mu_t}{\sqrt{\hat\nu_t + \epsilon_r} + \epsilon}
    $$

    with $\hat\mu_t = \mu_t / (1 - \beta_1^t)$ and
    $\hat\nu_t = \nu_t / (1 - \beta_2^t)$. With ``nesterov`` (NAdam) the
    first moment is replaced by
    $\beta_1 \mu_t / (1 - \beta_1^{t+1}) + (1 - \beta_1) g_t / (1 - \beta_1^t)$.

    Args:
        b1: $\beta_1$, in $[0, 1)$.
        b2: $\beta_2$, in $[0, 1)$.
        eps: $\epsilon >= 0$, added outside the square root.
        eps_root: $\epsilon_r >= 0$, added inside the square root (use a small
            positive value when differentiating through the update).
        mu_dtype: dtype of $\mu$; ``None`` keeps the parameters' dtype.
        nu_dtype: real floating dtype $\nu$ is stored in (``jnp.bfloat16``
            halves its memory); ``None`` keeps the parameters' real dtype.
            It is computed with, bias-corrected and divided by in at least
            the gradients' precision. An addition to optax's arguments.
        nesterov: use Nesterov momentum (NAdam).

    Returns:
        An ``optax.GradientTransformation``.

    Example:
        >>> import jax.numpy as jnp, jaxopt_lite as jol
        >>> t = jol.scale_by_adam(b1=0.5, b2=0.75, eps=0.0)
        >>> t.update(jnp.array([2.0, -0.5]), t.init(jnp.zeros(2)))[0]
        Array([ 1., -1.], dtype=float32)

    References:
        Kingma and Ba, *Adam: A Method for Stochastic Optimization*, 2015.
        Dozat, *Incorporating Nesterov Momentum into Adam*, 2016.
    """
    _check_moments(b1, b2, eps, eps_root)
    mu_dtype = check_dtype("mu_dtype", mu_dtype)
    nu_dtype = _check_nu_dtype(nu_dtype)
    check_bool("nesterov", nesterov)

    def init_fn(params):
        return _zero_state(params, mu_dtype, nu_dtype)

    def update_fn(updates, state, params=None):
        del params
        count = tree_math.safe_increment(state.count)
        mu = tree_math.tree_update_moment(updates, state.mu, b1, 1)
        nu = tree_math.tree_update_moment(updates, state.nu, b2, 2)
        mu_hat = _first_moment_hat(updates, mu, b1, count, nesterov)
        nu_hat = tree_math.tree_bias_correction(_widen(nu, updates), b2, count)
        new_updates = _adam_ratio(updates, mu_hat, nu_hat, eps, eps_root)
        return new_updates, ScaleByAdamState(count, mu, nu)

    return optax.GradientTransformation(init_fn, update_fn)


@recipe
def scale_by_amsgrad(
    b1: float | jax.Array = 0.9,
    b2: float | jax.Array = 0.999,
    eps: float | jax.Array = 1e-8,
    eps_root: float | jax.Array = 0.0,
    mu_dtype: Any = None,
    bias_correction_mu: bool = True,
    bias_correction_nu: bool = True,
    *,
    nu_dtype: Any = None,
) -> optax.GradientTransformation:
    r"""Rescale updates like Adam, but by the largest second moment seen so far.

    $$
    \mu_t = \beta_1 \mu_{t-1} + (1-\beta_1) g_t, \quad
    \nu_t = \beta_2 \nu_{t-1} + (1-\beta_2) |g_t|^2, \quad
    \nu^{\max}_t = \max(\nu^{\max}_{t-1}, \hat\nu_t), \quad
    u_t = \frac{\hat\mu_t}{\sqrt{\nu^{\max}_t + \epsilon_r} + \epsilon}
    $$

    Hats are the bias-corrected moments (as in `scale_by_adam`) when the
    matching ``bias_correction_*`` flag is set, else the raw moments.

    Args:
        b1: $\beta_1$, in $[0, 1)$.
        b2: $\beta_2$, in $[0, 1)$.
        eps: $\epsilon >= 0$, added outside the square root.
        eps_root: $\epsilon_r >= 0$, added inside the square root.
        mu_dtype: dtype of $\mu$; ``None`` keeps the parameters' dtype.
        bias_correction_mu: bias-correct $\mu$.
        bias_correction_nu: bias-correct $\nu$ before the maximum (set both
            flags to ``False`` for the algorithm as first published).
        nu_dtype: real floating dtype $\nu$ and $\nu^{\max}$ are stored in;
            ``None`` keeps the parameters' real dtype (see `scale_by_adam`).
            An addition to optax's arguments.

    Returns:
        An ``optax.GradientTransformation``.

    Example:
        >>> import jax.numpy as jnp, jaxopt_lite as jol
        >>> t = jol.scale_by_amsgrad(b1=0.5, b2=0.75, eps=0.0)
        >>> t.update(jnp.array([2.0, -0.5]), t.init(jnp.zeros(2)))[0]
        Array([ 1., -1.], dtype=float32)

    References:
        Reddi et al., *On the Convergence of Adam and Beyond*, 2018.
    """
    _check_moments(b1, b2, eps, eps_root)
    mu_dtype = check_dtype("mu_dtype", mu_dtype)
    check_bool("bias_correction_mu", bias_correction_mu)
    check_bool("bias_correction_nu", bias_correction_nu)
    nu_dtype = _check_nu_dtype(nu_dtype)

    def init_fn(params):
        state = _zero_state(params, mu_dtype, nu_dtype)
        return ScaleByAmsgradState(state.count, state.mu, state.nu, state.nu)

    def update_fn(updates, state, params=None):
        del params
        count = tree_math.safe_increment(state.count)
        mu = tree_math.tree_update_moment(updates, state.mu, b1, 1)
        nu = tree_math.tree_update_moment(updates, state.nu, b2, 2)
        mu_hat = (
            tree_math.tree_bias_correction(mu, b1, count) if bias_correction_mu else mu
        )
        nu_eff = _widen(nu, updates)
        if bias_correction_nu:
            nu_eff = tree_math.tree_bias_correction(nu_eff, b2, count)
        nu_max = jax.tree.map(  # None updates stay None, as in the moments
            lambda new, old: None if new is None else jnp.maximum(*promote(old, new)),
            nu_eff,
            state.nu_max,
            is_leaf=lambda x: x is None,
        )
        new_updates = _adam_ratio(updates, mu_hat, nu_max, eps, eps_root)
        stored = cast_like(nu_max, state.nu_max)
        return new_updates, ScaleByAmsgradState(count, mu, nu, stored)

    return optax.GradientTransformation(init_fn, update_fn)


@recipe
def scale_by_adamax(
    b1: float | jax.Array = 0.9,
    b2: float | jax.Array = 0.999,
    eps: float | jax.Array = 1e-8,
) -> optax.GradientTransformation:
    r"""Rescale updates by Adam's first moment over a decaying infinity norm.

    $$
    \mu_t = \beta_1 \mu_{t-1} + (1-\beta_1) g_t, \quad
    \nu_t = \max(\beta_2 \nu_{t-1}, |g_t| + \epsilon), \quad
    u_t = \frac{\mu_t / (1 - \beta_1^t)}{\nu_t}
    $$

    Args:
        b1: $\beta_1$, in $[0, 1)$.
        b2: $\beta_2$, in $[0, 1)$.
        eps: $\epsilon >= 0$.

    Returns:
        An ``optax.GradientTransformation``.

    Example:
        >>> import jax.numpy as jnp, jaxopt_lite as jol
        >>> t = jol.scale_by_adamax(b1=0.5, eps=0.0)
        >>> t.update(jnp.array([2.0, -0.5]), t.init(jnp.zeros(2)))[0]
        Array([ 1., -1.], dtype=float32)

    References:
        Kingma and Ba, *Adam: A Method for Stochastic Optimization*, 2015
        (section 7.1).
    """
    _check_moments(b1, b2, eps)

    def init_fn(params):
        return _zero_state(params)

    def update_fn(updates, state, params=None):
        del params
        count = tree_math.safe_increment(state.count)
        mu = tree_math.tree_update_moment(updates, state.mu, b1, 1)
        # (_tree annotates eps as float; arrays and tracers work too.)
        nu = tree_math.tree_update_infinity_moment(updates, state.nu, b2, eps)  # pyright: ignore[reportArgumentType]
        mu_hat = tree_math.tree_bias_correction(mu, b1, count)
        new_updates = jax.tree.map(
            lambda g, m, n: None if g is None else div(m, n).astype(g.dtype),
            updates,
            mu_hat,
            nu,
            is_leaf=lambda x: x is None,
        )
        return new_updates, ScaleByAdamState(count, mu, nu)

    return optax.GradientTransformation(init_fn, update_fn)
