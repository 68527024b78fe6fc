r"""Sparsity schedules for gradual magnitude pruning: pure ``step -> value``
functions of ``jnp`` operations, as the learning-rate schedules are, giving the
fraction of the prunable weights that should be zero at each step (see
`prune_by_magnitude`)."""

from __future__ import annotations

import jax.numpy as jnp
from jax.typing import ArrayLike

from jaxopt_lite._core import validate
from jaxopt_lite._core.dtypes import add, compute_dtype, mul, promote, sub
from jaxopt_lite._core.recipe import recipe
from jaxopt_lite._schedules import base


@recipe
def polynomial_sparsity_schedule(
    final_sparsity: ArrayLike,
    begin_step: ArrayLike,
    end_step: ArrayLike,
    initial_sparsity: ArrayLike = 0.0,
    frequency: ArrayLike = 100,
    power: ArrayLike = 3,
) -> base.Schedule:
    r"""Gradual pruning's sparsity: a polynomial rise, in steps, to ``final_sparsity``.

    $$
    s_t = \begin{cases}
    0 & t < t_0 \\
    s_f + (s_i - s_f) \left(1 - \dfrac{\tau_t - t_0}{t_1 - t_0}\right)^{p}
    & t \ge t_0
    \end{cases}
    \qquad
    \tau_t = \begin{cases}
    t_0 + \Delta t \left\lfloor \dfrac{t - t_0}{\Delta t} \right\rfloor & t < t_1 \\
    t_1 & t \ge t_1
    \end{cases}
    $$

    The sparsity jumps to $s_i$ at step $t_0$, rises every $\Delta t$ steps
    along the polynomial (quickly at first, while there are many redundant
    weights, slowly near the end) and is $s_f$ from step $t_1$ on. With
    $p = 3$ and $t_1 = t_0 + n \Delta t$ this is Zhu and Gupta's gradual
    pruning schedule $s_t = s_f + (s_i - s_f)(1 - (t - t_0)/(n \Delta t))^3$
    at its pruning steps $t = t_0, t_0 + \Delta t, \dots, t_0 + n \Delta t$.

    Args:
        final_sparsity: $s_f$, in $[0, 1]$.
        begin_step: $t_0$, an integer >= 0: the first pruning step.
        end_step: $t_1 > t_0$, an integer: the step the final sparsity is
            reached at.
        initial_sparsity: $s_i$, in $[0, s_f]$.
        frequency: $\Delta t$, an integer >= 1: the steps between two rises.
        power: the exponent $p > 0$ (3 in Zhu and Gupta).

    Returns:
        A schedule ``step -> sparsity``.

    Example:
        >>> import jax.numpy as jnp, jaxopt_lite as jol
        >>> s = jol.polynomial_sparsity_schedule(0.8, 2, 8, frequency=2)
        >>> [round(float(x), 3) for x in s(jnp.arange(10))]
        [0.0, 0.0, 0.0, 0.0, 0.563, 0.563, 0.77, 0.77, 0.8, 0.8]

    References:
        Zhu and Gupta, *To prune, or not to prune: exploring the efficacy of
        pruning for model compression*, 2017.
    """
    validate.check_range("final_sparsity", final_sparsity, 0.0, 1.0)
    validate.check_range("initial_sparsity", initial_sparsity, 0.0, 1.0)
    validate.check_less(
        "initial_sparsity", initial_sparsity, "final_sparsity", final_sparsity,
        strict=False,
    )  # fmt: skip
    validate.check_int("begin_step", begin_step, minimum=0, traced=True)
    validate.check_int("end_step", end_step, traced=True)
    validate.check_less("begin_step", begin_step, "end_step", end_step, strict=True)
    validate.check_int("frequency", frequency, traced=True)
    validate.check_positive("power", power)
    dtype = base.result_dtype(initial_sparsity, final_sparsity, power)
    span = sub(end_step, begin_step)
    curve = base.polynomial(
        initial_sparsity, final_sparsity, power, span, begin_step, dtype
    )

    def schedule(step):
        step = jnp.asarray(step)
        rises = base.floor_ratio(step, begin_step, frequency, compute_dtype(dtype))
        latest = add(begin_step, mul(frequency, rises))
        tau = jnp.where(step >= end_step, *promote(end_step, latest))
        value = curve(tau)
        return jnp.where(step >= begin_step, value, jnp.zeros_like(value))

    return schedule
