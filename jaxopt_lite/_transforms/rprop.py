r"""Rprop's rescaling (`scale_by_rprop`): per-element step sizes that grow
while the gradient keeps its sign and shrink when it flips.

Step sizes and the previous step are kept in the parameters' dtype; updates
come back in the gradients' dtype. Complex parameters are refused (signs of
complex numbers cannot be compared).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from jaxopt_lite._core import validate
from jaxopt_lite._core.dtypes import full_like, mul, promote, zeros_like
from jaxopt_lite._core.recipe import recipe

# optax's class itself, so that states compare equal to optax's as trees.
ScaleByRpropState = optax.ScaleByRpropState


@recipe
def scale_by_rprop(
    learning_rate: float | jax.Array,
    eta_minus: float | jax.Array = 0.5,
    eta_plus: float | jax.Array = 1.2,
    min_step_size: float | jax.Array = 1e-6,
    max_step_size: float | jax.Array = 50.0,
) -> optax.GradientTransformation:
    r"""Rescale updates to Rprop's steps: a sign times an adapted step size.

    $$
    \begin{aligned}
    s_t &= g_t \, u_{t-1}, \qquad
    \delta_t = \begin{cases}
        \operatorname{clip}(\eta^+ \delta_{t-1}, \delta_{\min}, \delta_{\max})
            & s_t > 0 \\
        \operatorname{clip}(\eta^- \delta_{t-1}, \delta_{\min}, \delta_{\max})
            & s_t < 0 \\
        \delta_{t-1} & s_t = 0
    \end{cases} \\
    u_t &= \begin{cases} 0 & s_t < 0 \\
        \delta_t \operatorname{sign}(g_t) & \text{otherwise}
    \end{cases}
    \end{aligned}
    $$

    element-wise, with $\delta_0$ the initial step size and $u_0 = 0$. After
    a sign flip the element pauses for one step (Rprop without
    backtracking, iRprop$^-$). The updates point uphill, like the gradient:
    `rprop` flips their sign.

    Args:
        learning_rate: the initial step size $\delta_0 >= 0$ (a number or an
            array, not a schedule).
        eta_minus: the shrink factor $\eta^-$ after a sign flip, in $(0, 1]$.
        eta_plus: the growth factor $\eta^+ >= 1$ while the sign holds.
        min_step_size: $\delta_{\min} >= 0$.
        max_step_size: $\delta_{\max} \ge \delta_{\min}$.

    Returns:
        An ``optax.GradientTransformation``.

    Example:
        >>> import jax.numpy as jnp, jaxopt_lite as jol
        >>> t = jol.scale_by_rprop(0.1)
        >>> state = t.init(jnp.zeros(2))
        >>> u, state = t.update(jnp.array([3.0, -1.0]), state)
        >>> t.update(jnp.array([2.0, 1.0]), state)[0]
        Array([0.12, 0.  ], dtype=float32)

    References:
        Riedmiller and Braun, *A direct adaptive method for faster
        backpropagation learning: the RPROP algorithm*, 1993.

        Igel and Hüsken, *Empirical evaluation of the improved Rprop learning
        algorithms*, 2003.
    """
    validate.check_nonnegative("learning_rate", learning_rate)
    validate.check_range("eta_minus", eta_minus, 0.0, 1.0, low_closed=False)
    validate.check_range("eta_plus", eta_plus, 1.0)
    validate.check_nonnegative("min_step_size", min_step_size)
    validate.check_nonnegative("max_step_size", max_step_size)
    validate.check_less(
        "min_step_size", min_step_size, "max_step_size", max_step_size, strict=False
    )

    def init_fn(params):
        validate.reject_complex(
            "scale_by_rprop", params, "Rprop compares the signs of successive gradients"
        )
        return ScaleByRpropState(full_like(params, learning_rate), zeros_like(params))

    def new_step(agree, step):
        factor = jnp.where(agree > 0, *promote(eta_plus, eta_minus))
        changed = jnp.clip(*promote(mul(step, factor), min_step_size, max_step_size))
        return jnp.where(agree == 0, step, changed.astype(step.dtype))

    def move(agree, g, step):
        return jnp.where(agree < 0, 0, mul(step, jnp.sign(g))).astype(step.dtype)

    def update_fn(updates, state, params=None):
        del params
        agree = jax.tree.map(mul, updates, state.prev_updates)
        steps = jax.tree.map(new_step, agree, state.step_sizes)
        moves = jax.tree.map(move, agree, updates, steps)
        new_updates = jax.tree.map(lambda m, g: m.astype(g.dtype), moves, updates)
        return new_updates, ScaleByRpropState(steps, moves)

    return optax.GradientTransformation(init_fn, update_fn)
