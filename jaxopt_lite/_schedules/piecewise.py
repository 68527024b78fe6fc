"""Piecewise schedules: constant or interpolated between boundaries, and the
one-cycle schedules built on them.

The shared checks and dtype helpers live in ``_schedules``; see its docstring
for the conventions all schedules follow.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from jaxopt_lite._core import validate
from jaxopt_lite._core.dtypes import compute_dtype, mul
from jaxopt_lite._core.recipe import recipe
from jaxopt_lite._schedules import base

# ----------------------------------------------------------------------------
# Unchecked helpers.


def _floor_product(a: Any, b: Any, dtype: Any) -> Any:
    """``floor(a * b)``: exact in float64 when both are concrete (like Python's
    ``int(a * b)``), else traced in ``dtype``."""
    ca, cb = validate.concrete_values(a), validate.concrete_values(b)
    if ca is None or cb is None:
        return jnp.floor(mul(jnp.asarray(a).astype(dtype), b))
    out = np.floor(ca.astype(np.float64) * cb.astype(np.float64))
    return int(out) if out.ndim == 0 else out.astype(np.int32)


def _linear_between(a, b, x):
    return (b - a) * x + a


def _cosine_between(a, b, x):
    return b + (a - b) / 2.0 * (jnp.cos(jnp.pi * x) + 1)


def _interpolate(kind, values, knots, dtype) -> base.Schedule:
    """Interpolate between ``values[i]``, placed at ``knots[i - 1]`` (the
    first value at step 0); hold the last value after the last knot. Each
    value is hit exactly at its knot, and the values in between stay between
    the two of their segment."""
    ct = compute_dtype(dtype)
    between = _linear_between if kind == "linear" else _cosine_between
    knots = [0, *knots]

    def schedule(step):
        points = [jnp.asarray(x).astype(ct) for x in values]
        out = jnp.where(base.offset(step, knots[-1], ct) >= 0, points[-1], points[0])
        for i in range(len(knots) - 1):
            since = base.offset(step, knots[i], ct)
            width = jnp.maximum(base.offset(knots[i + 1], knots[i], ct), 1)
            a, b = points[i], points[i + 1]
            value = base.between(between(a, b, base.ratio(since, width)), a, b)
            value = jnp.where(since <= 0, a, value)
            inside = (since >= 0) & (base.offset(step, knots[i + 1], ct) < 0)
            out = jnp.where(inside, value, out)
        return out.astype(dtype)

    return schedule


# ----------------------------------------------------------------------------
# Public schedules.


def _check_boundaries(
    boundaries_and_scales: Mapping[Any, Any] | None, minimum: float
) -> list[tuple[Any, Any]]:
    name = "boundaries_and_scales"
    if boundaries_and_scales is None:
        return []
    if not isinstance(boundaries_and_scales, Mapping):
        raise TypeError(
            f"{name} must be a dict {{step: scale}} or None, "
            f"got {boundaries_and_scales!r}."
        )
    for boundary, scale in boundaries_and_scales.items():
        validate.check_range(f"a boundary (step) of {name}", boundary, minimum)
        validate.check_nonnegative(f"{name}[{boundary!r}]", scale)
    return sorted(boundaries_and_scales.items(), key=lambda item: item[0])


@recipe
def piecewise_constant_schedule(
    init_value: ArrayLike,
    boundaries_and_scales: Mapping[int, ArrayLike] | None = None,
) -> base.Schedule:
    r"""Constant between boundaries; multiplied by a scale at each boundary.

    $$
    \eta_t = \eta_0 \prod_{i \,:\, b_i \le t} s_i
    $$

    Args:
        init_value: the value $\eta_0$ before the first boundary.
        boundaries_and_scales: a dict ``{b_i: s_i}`` of steps and the factors
            $s_i \ge 0$ that apply from those steps on (``None``: constant).

    Returns:
        A schedule ``step -> value``.

    Example:
        >>> import jax.numpy as jnp, jaxopt_lite as jol
        >>> sched = jol.piecewise_constant_schedule(1.0, {2: 0.5, 4: 0.5})
        >>> sched(jnp.arange(6))
        Array([1.  , 1.  , 0.5 , 0.5 , 0.25, 0.25], dtype=float32)
    """
    validate.check_range("init_value", init_value)
    items = _check_boundaries(boundaries_and_scales, -math.inf)
    dtype = base.result_dtype(init_value, *(scale for _, scale in items))
    ct = compute_dtype(dtype)

    def schedule(step):
        value = jnp.asarray(init_value).astype(ct)
        shape = jnp.broadcast_shapes(value.shape, jnp.shape(step))
        for boundary, scale in items:
            reached = base.offset(step, boundary, ct) >= 0
            value = jnp.where(reached, value * base.lift(scale, ct), value)
        return jnp.broadcast_to(value, shape).astype(dtype)

    return schedule


@recipe
def piecewise_interpolate_schedule(
    interpolate_type: str,
    init_value: ArrayLike,
    boundaries_and_scales: Mapping[int, ArrayLike] | None = None,
) -> base.Schedule:
    r"""Interpolate between values scaled at boundaries, linearly or along a cosine.

    With knots $b_0 = 0 < b_1 < \dots < b_k$ and values
    $v_0 = \eta_0$, $v_i = v_{i-1} s_i$:

    $$
    \eta_t = \begin{cases}
        f\!\left(v_i, v_{i+1}, \frac{t - b_i}{b_{i+1} - b_i}\right),
            & b_i \le t < b_{i+1}, \\
        v_k, & t \ge b_k,
    \end{cases}
    $$

    where $f(a, b, x) = a + (b - a)x$ (``"linear"``) or
    $b + (a - b)\frac{1 + \cos \pi x}{2}$ (``"cosine"``). The scales compound:
    the value reached at $b_i$ is $\eta_0 s_1 \cdots s_i$.

    Args:
        interpolate_type: ``"linear"`` or ``"cosine"``.
        init_value: the value $\eta_0$ at step 0.
        boundaries_and_scales: a dict ``{b_i: s_i}`` with steps $b_i \ge 0$
            and factors $s_i \ge 0$ (``None``: constant).

    Returns:
        A schedule ``step -> value``.

    Example:
        >>> import jax.numpy as jnp, jaxopt_lite as jol
        >>> sched = jol.piecewise_interpolate_schedule("linear", 1.0, {2: 0.5, 4: 0.5})
        >>> sched(jnp.arange(6))
        Array([1.   , 0.75 , 0.5  , 0.375, 0.25 , 0.25 ], dtype=float32)
    """
    validate.check_choice("interpolate_type", interpolate_type, ("linear", "cosine"))
    validate.check_range("init_value", init_value)
    items = _check_boundaries(boundaries_and_scales, 0.0)
    scales = [scale for _, scale in items]
    dtype = base.result_dtype(init_value, *scales)
    ct = compute_dtype(dtype)
    values = [base.lift(init_value, ct)]
    for scale in scales:  # the scales compound
        values.append(mul(values[-1], base.lift(scale, ct)))
    knots = [boundary for boundary, _ in items]
    return _interpolate(interpolate_type, values, knots, dtype)


def _onecycle_args(transition_steps, peak_value, pct_start, div, final_div) -> Any:
    """Check the arguments both one-cycle schedules share; return the output
    dtype, the compute dtype, and the peak value and both factors lifted."""
    validate.check_positive("transition_steps", transition_steps)
    validate.check_range("peak_value", peak_value)
    validate.check_range("pct_start", pct_start, 0.0, 1.0)
    validate.check_positive("div_factor", div)
    validate.check_positive("final_div_factor", final_div)
    dtype = base.result_dtype(peak_value, div, final_div)
    ct = compute_dtype(dtype)
    return dtype, ct, *(base.lift(x, ct) for x in (peak_value, div, final_div))


@recipe
def linear_onecycle_schedule(
    transition_steps: ArrayLike,
    peak_value: ArrayLike,
    pct_start: ArrayLike = 0.3,
    pct_final: ArrayLike = 0.85,
    div_factor: ArrayLike = 25.0,
    final_div_factor: ArrayLike = 1e4,
) -> base.Schedule:
    r"""One cycle of three linear phases: up to ``peak_value``, down, then anneal.

    `piecewise_interpolate_schedule` (linear) through the points

    $$
    (0, \tfrac{\eta}{d}),\;
    (\lfloor p_s T \rfloor, \eta),\;
    (\lfloor p_f T \rfloor, \tfrac{\eta}{d}),\;
    (T, \tfrac{\eta}{d\, d_f}),
    $$

    holding the last value after step $T$. When rounding makes two points
    share a step (``transition_steps=1``, or ``pct_start == pct_final``) the
    empty phase is skipped; optax instead merges their scales.

    Args:
        transition_steps: $T > 0$, the length of the cycle.
        peak_value: the highest value $\eta$.
        pct_start: $p_s \in [0, 1]$, the fraction of the cycle spent rising.
        pct_final: $p_f \in [p_s, 1]$, where the fall back to
            $\eta / d$ ends.
        div_factor: $d > 0$; the cycle starts at $\eta / d$.
        final_div_factor: $d_f > 0$; the cycle ends at $\eta / (d\, d_f)$.

    Returns:
        A schedule ``step -> value``.

    Example:
        >>> import jax.numpy as jnp, jaxopt_lite as jol
        >>> sched = jol.linear_onecycle_schedule(10, 1.0, 0.2, 0.6, 4.0, 2.0)
        >>> sched(jnp.array([0, 1, 2, 4, 6, 8, 10]))
        Array([0.25  , 0.625 , 1.    , 0.625 , 0.25  , 0.1875, 0.125 ], dtype=float32)

    References:
        Smith and Topin, *Super-Convergence: Very Fast Training of Neural
        Networks Using Large Learning Rates*, 2017.
    """
    dtype, ct, peak, div, final = _onecycle_args(
        transition_steps, peak_value, pct_start, div_factor, final_div_factor
    )
    validate.check_range("pct_final", pct_final, 0.0, 1.0)
    validate.check_less("pct_start", pct_start, "pct_final", pct_final, strict=False)
    knots = [
        _floor_product(pct_start, transition_steps, ct),
        _floor_product(pct_final, transition_steps, ct),
        transition_steps,
    ]
    points = [peak / div, peak, peak / div, peak / (div * final)]
    return _interpolate("linear", points, knots, dtype)


@recipe
def cosine_onecycle_schedule(
    transition_steps: ArrayLike,
    peak_value: ArrayLike,
    pct_start: ArrayLike = 0.3,
    div_factor: ArrayLike = 25.0,
    final_div_factor: ArrayLike = 1e4,
) -> base.Schedule:
    r"""One cycle: a cosine rise to ``peak_value``, then a cosine fall.

    `piecewise_interpolate_schedule` (cosine) through the points

    $$
    (0, \tfrac{\eta}{d}),\; (\lfloor p_s T \rfloor, \eta),\;
    (\lfloor T \rfloor, \tfrac{\eta}{d\, d_f}),
    $$

    holding the last value after step $T$.

    Args:
        transition_steps: $T > 0$, the length of the cycle.
        peak_value: the highest value $\eta$.
        pct_start: $p_s \in [0, 1]$, the fraction of the cycle spent rising.
        div_factor: $d > 0$; the cycle starts at $\eta / d$.
        final_div_factor: $d_f > 0$; the cycle ends at $\eta / (d\, d_f)$.

    Returns:
        A schedule ``step -> value``.

    Example:
        >>> import jax.numpy as jnp, jaxopt_lite as jol
        >>> sched = jol.cosine_onecycle_schedule(8, 1.0, 0.25, 2.0, 5.0)
        >>> [round(x, 4) for x in sched(jnp.array([0, 1, 2, 5, 8])).tolist()]
        [0.5, 0.75, 1.0, 0.55, 0.1]

    References:
        Smith and Topin, *Super-Convergence: Very Fast Training of Neural
        Networks Using Large Learning Rates*, 2017.
    """
    dtype, ct, peak, div, final = _onecycle_args(
        transition_steps, peak_value, pct_start, div_factor, final_div_factor
    )
    knots = [
        _floor_product(pct_start, transition_steps, ct),
        _floor_product(1, transition_steps, ct),
    ]
    points = [peak / div, peak, peak / (div * final)]
    return _interpolate("cosine", points, knots, dtype)
