r"""MoMo: momentum with a Polyak-type step size from a model of the loss,
for SGD (`momo`) and Adam (`momo_adam`).

The step size is capped by the learning rate, which therefore enters the
update itself: these transforms are whole optimizers (with optax's state
layouts) and read the loss, ``update(..., value=loss)``. Their scalars are
kept in the parameters' precision (float32 for float32 or bfloat16 parameters,
float64 for float64 ones; optax uses the lowest floating dtype of the
parameters).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import optax.contrib

from jaxopt_lite._core import tree_math, validate
from jaxopt_lite._core.dtypes import add, div, mul, sub, tree_compute_dtype, zeros_like
from jaxopt_lite._core.recipe import recipe
from jaxopt_lite._transforms.scaling import ScalarOrSchedule

# Below this squared norm of the momentum no step is taken (optax's threshold,
# the float64 machine epsilon, whatever the dtype).
_NO_STEP = float(np.finfo(np.float64).eps)


MomoState = optax.contrib.MomoState
"""optax.contrib's class itself (so states equal optax's as trees): the momentum
``exp_avg``, the averaged loss $\\bar f$ (``barf``), the averaged
$\\langle g, \\theta \\rangle$ ($\\gamma$), the loss lower bound ``lb`` and the update
count (int32, saturating)."""

MomoAdamState = optax.contrib.MomoAdamState
"""optax.contrib's class itself (so states equal optax's as trees): the fields
of `MomoState`, with Adam's second moment ``exp_avg_sq`` after ``exp_avg``."""


def _check(learning_rate, lower_bound, weight_decay, adapt_lower_bound) -> None:
    validate.check_learning_rate("learning_rate", learning_rate)
    validate.check_range("lower_bound", lower_bound)
    validate.check_nonnegative("weight_decay", weight_decay)
    validate.check_bool("adapt_lower_bound", adapt_lower_bound)


def _scalars(params: Any, lower_bound: Any) -> tuple[jax.Array, jax.Array, jax.Array]:
    """The initial averaged loss, averaged inner product and lower bound."""
    dtype = tree_compute_dtype(params)
    zero = jnp.zeros([], dtype)
    return zero, zero, jnp.asarray(lower_bound, dtype)


def _step(
    alpha, weight_decay, lower_bound, adapt, barf, gamma, lb, iprod, sq_norm, bc
) -> tuple[jax.Array, jax.Array]:
    r"""MoMo's step size $\tau$ and the next lower bound, for the bias
    correction ``bc`` of the averages ($1$ for `momo`).

    The model of the loss at $\theta$ is $\bar f - \gamma + \langle d,
    \theta\rangle$ (averages of $f$, $\langle g, \theta_{t-1}\rangle$ and $g$);
    $\tau$ is the Polyak step that brings it down to the lower bound, capped
    by $\alpha / bc$."""
    dtype = barf.dtype
    alpha = jnp.asarray(alpha).astype(dtype)
    shrink = 1 + mul(alpha, weight_decay).astype(dtype)
    if adapt:
        cap = shrink * (barf - gamma) + iprod
        lb = jnp.where(
            cap < shrink * bc * lb,
            jnp.maximum(cap / (2 * bc * shrink), jnp.asarray(lower_bound, dtype)),
            lb,
        )
    gap = jnp.maximum(shrink * (barf - bc * lb - gamma) + iprod, 0)
    tau = jnp.where(sq_norm <= _NO_STEP, 0, gap / sq_norm)
    tau = jnp.minimum(alpha / bc, tau)
    if adapt:
        lb = (barf + iprod - gamma - tau * sq_norm / 2) / bc
        lb = jnp.maximum(lb, jnp.asarray(lower_bound, dtype))
    return tau, lb


def _update(params, updates, direction, tau, alpha, weight_decay) -> Any:
    r"""$-\frac{\alpha\lambda}{1+\alpha\lambda}\theta - \tau d$, in the
    updates' dtypes."""
    decay = mul(alpha, weight_decay)
    decay = div(decay, add(1, decay))
    return jax.tree.map(
        lambda p, d, g: sub(mul(-decay, p), mul(tau, d)).astype(g.dtype),
        params,
        direction,
        updates,
    )


def _averaged_loss(decay, barf, value) -> jax.Array:
    return tree_math.ema(decay, barf, jnp.asarray(value).astype(barf.dtype)).astype(
        barf.dtype
    )


@recipe
def momo(
    learning_rate: ScalarOrSchedule = 1.0,
    beta: float | jax.Array = 0.9,
    lower_bound: float | jax.Array = 0.0,
    weight_decay: float | jax.Array = 0.0,
    adapt_lower_bound: bool = False,
) -> optax.GradientTransformationExtraArgs:
    r"""MoMo: SGD with momentum and an adaptive step from a lower bound of the loss.

    With averages $d_t = \beta d_{t-1} + (1-\beta) g_t$, $\bar f_t$ of the
    loss and $\gamma_t$ of $\langle g_t, \theta_{t-1}\rangle$ (the first
    step takes $\beta = 0$), a lower bound $f_*$ and $\rho = 1 + \alpha_t
    \lambda$:

    $$
    \tau_t = \min\left(\alpha_t, \frac{\left(\rho(\bar f_t - f_* - \gamma_t)
    + \langle d_t, \theta_{t-1}\rangle\right)_+}{\lVert d_t \rVert^2}\right),
    \quad
    u_t = -\frac{\alpha_t \lambda}{\rho}\theta_{t-1} - \tau_t d_t
    $$

    ($\tau_t = 0$ when $\lVert d_t\rVert^2 \le 2.2 \cdot 10^{-16}$; norms
    and inner products over the whole tree). With ``adapt_lower_bound``,
    $f_*$ starts at ``lower_bound`` and is re-estimated at each step.

    Args:
        learning_rate: $\alpha$, the largest step (a number >= 0 or a
            schedule; it can be large, 1 by default).
        beta: $\beta$, in $[0, 1)$.
        lower_bound: $f_*$, a lower bound of the loss (0 for most losses).
        weight_decay: $\lambda >= 0$.
        adapt_lower_bound: estimate $f_*$ on the fly.

    Returns:
        An ``optax.GradientTransformationExtraArgs``; ``update`` needs
        ``params`` and ``value=loss``.

    Example:
        >>> import jax, jax.numpy as jnp, optax, jaxopt_lite as jol
        >>> f = lambda p: jnp.sum(p**2)
        >>> opt = jol.momo()
        >>> params = jnp.array([1.0, -2.0])
        >>> state = opt.init(params)
        >>> value, grads = jax.value_and_grad(f)(params)
        >>> updates, state = opt.update(grads, state, params, value=value)
        >>> optax.apply_updates(params, updates)
        Array([ 0.5, -1. ], dtype=float32)

    References:
        Schaipp, Ohana, Eickenberg, Defazio and Gower, *MoMo: Momentum Models
        for Adaptive Learning Rates*, 2024.
    """
    _check(learning_rate, lower_bound, weight_decay, adapt_lower_bound)
    validate.check_decay("beta", beta)

    def init_fn(params):
        params = tree_math.as_arrays(params)
        return MomoState(
            zeros_like(params), *_scalars(params, lower_bound), jnp.zeros([], jnp.int32)
        )

    def update_fn(updates, state, params=validate.MISSING, *, value=None, **extra_args):
        del extra_args
        # value first: optax's is a required keyword, missing before any check
        value = validate.require_value("momo", value)
        validate.require_params("momo", params)
        updates, params = tree_math.as_arrays(updates), tree_math.as_arrays(params)
        dtype = state.barf.dtype
        decay = jnp.where(state.count == 0, 0, jnp.asarray(beta, dtype))
        barf = _averaged_loss(decay, state.barf, value)
        exp_avg = tree_math.tree_update_moment(updates, state.exp_avg, decay, 1)
        inner = tree_math.tree_vdot(updates, params).astype(dtype)
        gamma = tree_math.ema(decay, state.gamma, inner)
        alpha = learning_rate(state.count) if callable(learning_rate) else learning_rate
        tau, lb = _step(
            alpha,
            weight_decay,
            lower_bound,
            adapt_lower_bound,
            barf,
            gamma,
            state.lb,
            tree_math.tree_vdot(exp_avg, params).astype(dtype),
            tree_math.tree_sum_squares(exp_avg).astype(dtype),
            1,
        )
        new_updates = _update(params, updates, exp_avg, tau, alpha, weight_decay)
        count = tree_math.safe_increment(state.count)
        return new_updates, MomoState(exp_avg, barf, gamma, lb, count)

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


@recipe
def momo_adam(
    learning_rate: ScalarOrSchedule = 1e-2,
    b1: float | jax.Array = 0.9,
    b2: float | jax.Array = 0.999,
    eps: float | jax.Array = 1e-8,
    lower_bound: float | jax.Array = 0.0,
    weight_decay: float | jax.Array = 0.0,
    adapt_lower_bound: bool = False,
) -> optax.GradientTransformationExtraArgs:
    r"""MoMo-Adam: Adam(W) with an adaptive step from a lower bound of the loss.

    With Adam's averages $d_t$ (of $g$) and $v_t$ (of $g^2$), the
    preconditioner $D_t = \epsilon + \sqrt{v_t / (1-\beta_2^t)}$, the
    averages $\bar f_t$ of the loss and $\gamma_t$ of $\langle g_t,
    \theta_{t-1}\rangle$ (all with $\beta_1$), $c_t = 1 - \beta_1^t$ and
    $\rho = 1 + \alpha_t \lambda$:

    $$
    \tau_t = \min\left(\frac{\alpha_t}{c_t}, \frac{\left(\rho(\bar f_t - c_t
    f_* - \gamma_t) + \langle d_t, \theta_{t-1}\rangle\right)_+}
    {\langle d_t, d_t / D_t \rangle}\right), \quad
    u_t = -\frac{\alpha_t \lambda}{\rho}\theta_{t-1} - \tau_t \frac{d_t}{D_t}
    $$

    ($\tau_t = 0$ when the denominator is at most $2.2 \cdot 10^{-16}$).
    With ``adapt_lower_bound``, $f_*$ is re-estimated at each step.

    Args:
        learning_rate: $\alpha$, the largest step (a number >= 0 or a
            schedule).
        b1: $\beta_1$, in $[0, 1)$.
        b2: $\beta_2$, in $[0, 1)$.
        eps: $\epsilon >= 0$, added outside the square root.
        lower_bound: $f_*$, a lower bound of the loss (0 for most losses).
        weight_decay: $\lambda >= 0$ (decoupled, as in AdamW).
        adapt_lower_bound: estimate $f_*$ on the fly.

    Returns:
        An ``optax.GradientTransformationExtraArgs``; ``update`` needs
        ``params`` and ``value=loss``.

    Example:
        >>> import jax, jax.numpy as jnp, optax, jaxopt_lite as jol
        >>> f = lambda p: jnp.sum(p**2)
        >>> opt = jol.momo_adam(learning_rate=1.0)
        >>> params = jnp.array([1.0, -2.0])
        >>> state = opt.init(params)
        >>> value, grads = jax.value_and_grad(f)(params)
        >>> updates, state = opt.update(grads, state, params, value=value)
        >>> optax.apply_updates(params, updates)
        Array([ 0.16666669, -1.1666667 ], dtype=float32)

    References:
        Schaipp, Ohana, Eickenberg, Defazio and Gower, *MoMo: Momentum Models
        for Adaptive Learning Rates*, 2024.
    """
    _check(learning_rate, lower_bound, weight_decay, adapt_lower_bound)
    validate.check_decay("b1", b1)
    validate.check_decay("b2", b2)
    validate.check_nonnegative("eps", eps)

    def init_fn(params):
        params = tree_math.as_arrays(params)
        zeros = zeros_like(params)
        return MomoAdamState(
            zeros, zeros, *_scalars(params, lower_bound), jnp.zeros([], jnp.int32)
        )

    def update_fn(updates, state, params=validate.MISSING, *, value=None, **extra_args):
        del extra_args
        # value first: optax's is a required keyword, missing before any check
        value = validate.require_value("momo_adam", value)
        validate.require_params("momo_adam", params)
        updates, params = tree_math.as_arrays(updates), tree_math.as_arrays(params)
        dtype = state.barf.dtype
        count = tree_math.safe_increment(state.count)
        barf = _averaged_loss(b1, state.barf, value)
        exp_avg = tree_math.tree_update_moment(updates, state.exp_avg, b1, 1)
        exp_avg_sq = tree_math.tree_update_moment(updates, state.exp_avg_sq, b2, 2)
        bc2 = 1 - tree_math.decay_power(b2, count, dtype)
        precond = jax.tree.map(
            lambda s: add(jnp.sqrt(div(s, bc2)), eps).astype(s.dtype), exp_avg_sq
        )
        direction = jax.tree.map(lambda m, d: m / d, exp_avg, precond)
        inner = tree_math.tree_vdot(updates, params).astype(dtype)
        gamma = tree_math.ema(b1, state.gamma, inner).astype(dtype)
        alpha = learning_rate(state.count) if callable(learning_rate) else learning_rate
        tau, lb = _step(
            alpha,
            weight_decay,
            lower_bound,
            adapt_lower_bound,
            barf,
            gamma,
            state.lb,
            tree_math.tree_vdot(exp_avg, params).astype(dtype),
            tree_math.tree_vdot(exp_avg, direction).astype(dtype),
            1 - tree_math.decay_power(b1, count, dtype),
        )
        new_updates = _update(params, updates, direction, tau, alpha, weight_decay)
        return new_updates, MomoAdamState(exp_avg, exp_avg_sq, barf, gamma, lb, count)

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)
