r"""Optimistic gradients (`scale_by_optimistic_gradient`): the current
gradient extrapolated by its change since the previous step, the one-call
approximation of extra-gradient methods for min-max games.

The previous gradient is kept in the parameters' dtype; updates come back in
the gradients' dtype.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from jaxopt_lite._core import tree_math, validate
from jaxopt_lite._core.dtypes import add, cast_like, mul, sub, zeros_like
from jaxopt_lite._core.recipe import recipe


class ScaleByOptimisticGradientState(NamedTuple):
    """Whether no update was made yet (a bool scalar) and the previous
    gradient; optax's field names."""

    is_initial_step: jax.Array
    previous_gradient: tree_math.PyTree


@recipe
def scale_by_optimistic_gradient(
    alpha: float | jax.Array = 1.0, beta: float | jax.Array = 1.0
) -> optax.GradientTransformation:
    r"""Replace the gradient by its optimistic extrapolation.

    $$
    u_t = (\alpha + \beta)\, g_t - \beta\, g_{t-1}, \qquad g_0 = g_1
    $$

    so the first update is $\alpha g_1$. With $\alpha = \beta = 1$ this is
    $g_t + (g_t - g_{t-1})$: the next gradient predicted from the last
    change, which damps the cycling of plain gradient steps on saddle-point
    problems.

    Args:
        alpha: $\alpha$, the weight of the current gradient (a finite
            number or array; any sign, as in optax).
        beta: $\beta$, the weight of the change since the previous gradient
            (a finite number or array; any sign).

    Returns:
        An ``optax.GradientTransformation``.

    Example:
        >>> import jax.numpy as jnp, jaxopt_lite as jol
        >>> t = jol.scale_by_optimistic_gradient()
        >>> u, state = t.update(jnp.array([1.0, 2.0]), t.init(jnp.zeros(2)))
        >>> t.update(jnp.array([3.0, 1.0]), state)[0]
        Array([5., 0.], dtype=float32)

    References:
        Daskalakis, Ilyas, Syrgkanis and Zeng, *Training GANs with
        Optimism*, 2018.

        Mokhtari, Ozdaglar and Pattathil, *A Unified Analysis of
        Extra-gradient and Optimistic Gradient Methods for Saddle Point
        Problems: Proximal Point Approach*, 2020.
    """
    validate.check_range("alpha", alpha)
    validate.check_range("beta", beta)

    def init_fn(params):
        return ScaleByOptimisticGradientState(jnp.array(True), zeros_like(params))

    def update_fn(updates, state, params=None):
        del params

        def one(g, previous):
            previous = jnp.where(state.is_initial_step, g, previous.astype(g.dtype))
            return sub(mul(add(alpha, beta), g), mul(beta, previous)).astype(g.dtype)

        new_updates = jax.tree.map(one, updates, state.previous_gradient)
        previous = cast_like(updates, state.previous_gradient)
        return new_updates, ScaleByOptimisticGradientState(jnp.array(False), previous)

    return optax.GradientTransformation(init_fn, update_fn)
