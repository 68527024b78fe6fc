r"""MADGRAD: momentumized, adaptive, dual-averaged gradients
(`scale_by_madgrad`)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax
import optax.contrib

from jaxopt_lite._core import tree_math, validate
from jaxopt_lite._core.dtypes import (
    add,
    div,
    mul,
    real_full_like,
    sub,
    tree_compute_dtype,
    zeros_like,
)
from jaxopt_lite._core.recipe import recipe
from jaxopt_lite._transforms.scaling import ScalarOrSchedule

MadgradState = optax.contrib.MadgradState
"""optax.contrib's class itself (so states equal optax's as trees): update
count (int32, saturating), the weighted sums of squared gradient moduli $S$
(``grad_sum_sq``, real) and of gradients $s$, and the initial parameters
$\\theta_0$ (``x0``)."""


@recipe
def scale_by_madgrad(
    learning_rate: ScalarOrSchedule,
    momentum: float | jax.Array = 0.9,
    eps: float | jax.Array = 1e-6,
) -> optax.GradientTransformation:
    r"""Rescale updates by MADGRAD: momentumized, cube-root dual averaging.

    Dual averaging with a cube-root preconditioner, mixed into the iterate by
    momentum; with $\lambda_t = (\eta_t + \epsilon)\sqrt{t}$ at update
    $t = 1, 2, \dots$:

    $$
    S_t = S_{t-1} + \lambda_t |g_t|^2, \quad
    s_t = s_{t-1} + \lambda_t g_t, \quad
    z_t = \theta_0 - \frac{s_t}{S_t^{1/3} + \epsilon},
    $$

    $$
    u_t = (1-c)\,(z_t - \theta_{t-1})
    \quad\text{so that}\quad \theta_t = c\,\theta_{t-1} + (1-c)\, z_t
    $$

    with momentum $c$. The learning rate enters the sums, so it is an
    argument of this transform: the result is the whole step (add weight decay
    before it, as `madgrad` does).

    Args:
        learning_rate: $\eta$, a number >= 0, a scalar array or a schedule
            of the step count.
        momentum: $c$, in $[0, 1]$.
        eps: $\epsilon >= 0$.

    Returns:
        An ``optax.GradientTransformation``; ``update`` needs ``params``.

    Example:
        >>> import jax.numpy as jnp, jaxopt_lite as jol
        >>> t = jol.scale_by_madgrad(1.0, momentum=0.5, eps=0.0)
        >>> p = jnp.array([1.0, 1.0])
        >>> t.update(jnp.array([8.0, -1.0]), t.init(p), p)[0]
        Array([-1. ,  0.5], dtype=float32)

    References:
        Defazio and Jelassi, *Adaptivity without Compromise: A Momentumized,
        Adaptive, Dual Averaged Gradient Method for Stochastic Optimization*,
        2021.
    """
    validate.check_learning_rate("learning_rate", learning_rate)
    validate.check_momentum("momentum", momentum)
    validate.check_nonnegative("eps", eps)

    def init_fn(params):
        sums = real_full_like(params, 0.0), zeros_like(params)
        return MadgradState(jnp.zeros([], jnp.int32), *sums, params)

    def update_fn(updates, state, params=None):
        validate.require_params("scale_by_madgrad", params)
        dtype = tree_compute_dtype(updates)
        rate = learning_rate(state.count) if callable(learning_rate) else learning_rate
        t = tree_math.safe_increment(state.count).astype(dtype)
        weight = mul(add(rate, eps), jnp.sqrt(t)).astype(dtype)
        grad_sum_sq = jax.tree.map(
            lambda total, g: add(total, mul(weight, tree_math.abs_sq(g))).astype(
                total.dtype
            ),
            state.grad_sum_sq,
            updates,
        )
        s = jax.tree.map(
            lambda total, g: add(total, mul(weight, g)).astype(total.dtype),
            state.s,
            updates,
        )

        def step(g, p, x0, total, sq):
            z = sub(x0, div(total, add(jnp.cbrt(sq), eps)))
            return mul(sub(1, momentum), sub(z, p)).astype(g.dtype)

        new_updates = jax.tree.map(step, updates, params, state.x0, s, grad_sum_sq)
        count = tree_math.safe_increment(state.count)
        return new_updates, MadgradState(count, grad_sum_sq, s, state.x0)

    return optax.GradientTransformation(init_fn, update_fn)
