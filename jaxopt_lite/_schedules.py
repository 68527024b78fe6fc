"""Learning-rate schedules: pure ``step -> value`` functions.

Each factory checks its concrete arguments, then returns a closure made of
``jnp`` operations only, so a schedule can be jitted, vmapped and fed the int32
step counter of a compiled loop. Hyper-parameters may be Python numbers,
arrays or traced values: nothing branches in Python on their values, so one
can be swept with ``jax.vmap`` or passed as a ``jax.jit`` argument without
recompiling. Traced values are not checked.

A schedule accepts a step (a Python int or an integer array; an array of steps
gives an array of values) and returns the promoted dtype of its float
hyper-parameters, at least the default float (float32, or float64 with x64);
the arithmetic runs in float32 or wider.

Names, arguments and defaults mirror optax's schedules and give the same
numbers. Meaningless values, including those that optax quietly turns into a
constant schedule or ignores, are rejected here with a ``ValueError``:
``transition_steps <= 0``, ``decay_rate <= 0``, a negative
``transition_begin``, ``warmup_steps=0`` in `warmup_constant_schedule`,
powers and exponents ``<= 0``. Polynomial and
linear schedules end exactly on ``end_value`` even under ``jit`` (optax's can
miss it by a rounding error there, or give NaN for powers below 1).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from jaxopt_lite import _validate as v

Schedule = Callable[[ArrayLike], jax.Array]

# ----------------------------------------------------------------------------
# Checks and dtype helpers.


def _checkable(value: Any) -> Any:
    """Concrete low-precision floats (bfloat16, float8) as float32 for the
    checks of ``_validate`` (NumPy does not count them as numbers)."""
    dtype = getattr(value, "dtype", None)
    if (
        dtype is not None
        and v.concrete_values(value) is not None
        and jnp.issubdtype(dtype, jnp.floating)
        and not np.issubdtype(dtype, np.number)
    ):
        return np.asarray(value, np.float32)
    return value


def _check_finite(name: str, value: Any) -> None:
    v.check_range(name, _checkable(value))


def _check_positive(name: str, value: Any) -> None:
    v.check_range(
        name, _checkable(value), 0.0, math.inf, low_closed=False, high_closed=False
    )


def _check_nonnegative(name: str, value: Any) -> None:
    v.check_nonnegative(name, _checkable(value))


def _check_fraction(name: str, value: Any) -> None:
    v.check_range(name, _checkable(value), 0.0, 1.0)


def _check_less(lo_name: str, lo: Any, hi_name: str, hi: Any, strict: bool) -> None:
    """``lo < hi`` (or ``<=``) when both are concrete."""
    a, b = v.concrete_values(lo), v.concrete_values(hi)
    if a is None or b is None or np.all(a < b if strict else a <= b):
        return
    relation = "larger than" if strict else "at least"
    raise ValueError(
        f"{hi_name}={v._describe(hi)} is not allowed: it must be {relation} "
        f"{lo_name}={v._describe(lo)}."
    )


def _check_flag(name: str, value: Any) -> None:
    """A bool, a bool array or a traced bool."""
    if isinstance(value, (bool, np.bool_)):
        return
    dtype = getattr(value, "dtype", None)
    if isinstance(value, (np.ndarray, jax.Array)) and dtype == np.bool_:
        return
    raise TypeError(f"{name} must be True or False (or a bool array), got {value!r}.")


def _dtype(*values: Any) -> Any:
    """Output dtype: the promoted dtype of the float hyper-parameters (Python
    numbers are weak), at least the default float."""
    return jnp.result_type(*(x for x in values if x is not None), 0.0)


def _lift(x: Any, dtype: Any) -> Any:
    """Python numbers stay weakly typed (arithmetic among them stays exact, as
    in optax); arrays become ``dtype`` (the float32-or-wider compute dtype)."""
    if x is None or isinstance(x, (int, float)):
        return x
    return jnp.asarray(x).astype(dtype)


def _lift_count(x: Any, dtype: Any) -> Any:
    """Step-valued arguments: integers stay integers, float arrays become ``dtype``."""
    if isinstance(x, (int, float)) or jnp.issubdtype(jnp.result_type(x), jnp.integer):
        return x
    return jnp.asarray(x).astype(dtype)


def _is_integer(x: Any) -> bool:
    return isinstance(x, numbers.Integral) or jnp.issubdtype(
        jnp.result_type(x), jnp.integer
    )


def _compute_dtype(dtype: Any) -> Any:
    return jnp.promote_types(dtype, jnp.float32)


def _floor_product(a: Any, b: Any, dtype: Any) -> Any:
    """``floor(a * b)``: exact in float64 when both are concrete (like Python's
    ``int(a * b)``), else traced in ``dtype``."""
    ca, cb = v.concrete_values(a), v.concrete_values(b)
    if ca is None or cb is None:
        return jnp.floor(jnp.asarray(a).astype(dtype) * b)
    out = np.floor(ca.astype(np.float64) * cb.astype(np.float64))
    return int(out) if out.ndim == 0 else out.astype(np.int32)


# ----------------------------------------------------------------------------
# Unchecked builders shared by the public factories.


def _polynomial(init, end, power, steps, begin, dtype) -> Schedule:
    ct = _compute_dtype(dtype)
    init, end, power = _lift(init, ct), _lift(end, ct), _lift(power, ct)
    steps, begin = _lift_count(steps, ct), _lift_count(begin, ct)

    def schedule(step):
        # The remaining fraction as (T - done) / T rather than 1 - done / T:
        # it is exactly 0 at the end even where XLA turns the division into a
        # multiplication by 1 / T. steps <= 0 (a zero-length warmup, or a
        # traced value) jumps straight to end.
        span = jnp.maximum(steps, 0)
        done = jnp.clip(jnp.asarray(step) - begin, 0, span)
        frac = (span - done) / jnp.where(steps > 0, steps, 1)
        return ((init - end) * frac**power + end).astype(dtype)

    return schedule


def _exponential(init, steps, rate, begin, staircase, end, dtype) -> Schedule:
    ct = _compute_dtype(dtype)
    init, rate, end = _lift(init, ct), _lift(rate, ct), _lift(end, ct)
    steps, begin = _lift_count(steps, ct), _lift_count(begin, ct)

    def schedule(step):
        elapsed = jnp.asarray(step) - begin
        exponent = elapsed / steps
        exponent = jnp.where(staircase, jnp.floor(exponent), exponent)
        value = jnp.where(elapsed <= 0, init, init * jnp.power(rate, exponent))
        if end is not None:
            # A lower bound while decaying, an upper bound while growing.
            value = jnp.where(
                rate < 1, jnp.maximum(value, end), jnp.minimum(value, end)
            )
        return jnp.asarray(value).astype(dtype)

    return schedule


def _cosine(init, steps, alpha, exponent, dtype) -> Schedule:
    ct = _compute_dtype(dtype)
    init, alpha, exponent = _lift(init, ct), _lift(alpha, ct), _lift(exponent, ct)
    steps = _lift_count(steps, ct)

    def schedule(step):
        t = jnp.minimum(jnp.asarray(step).astype(ct), steps)
        cosine = 0.5 * (1 + jnp.cos(jnp.pi * t / steps))
        return (init * ((1 - alpha) * cosine**exponent + alpha)).astype(dtype)

    return schedule


def _linear_between(a, b, x):
    return (b - a) * x + a


def _cosine_between(a, b, x):
    return b + (a - b) / 2.0 * (jnp.cos(jnp.pi * x) + 1)


def _interpolate(kind, init, knots, scales, dtype) -> Schedule:
    """Interpolate between ``init * prod(scales[:i])`` placed at ``knots[i-1]``
    (the first value at step 0); hold the last value after the last knot."""
    ct = _compute_dtype(dtype)
    between = _linear_between if kind == "linear" else _cosine_between
    knots = [0, *(_lift_count(k, ct) for k in knots)]

    def schedule(step):
        step = jnp.asarray(step)
        values = [jnp.asarray(init).astype(ct)]
        for s in scales:
            values.append(values[-1] * jnp.asarray(s).astype(ct))
        out = jnp.where(step >= knots[-1], values[-1], values[0])
        for i in range(len(knots) - 1):
            lo, hi = knots[i], knots[i + 1]
            x = (step - lo) / jnp.maximum(hi - lo, 1)
            inside = (step >= lo) & (step < hi)
            out = jnp.where(inside, between(values[i], values[i + 1], x), out)
        return out.astype(dtype)

    return schedule


def _join(schedules: Sequence[Schedule], boundaries: Sequence[Any]) -> Schedule:
    def schedule(step):
        step = jnp.asarray(step)
        out = jnp.asarray(schedules[0](step))
        for boundary, later in zip(boundaries, schedules[1:], strict=False):
            out = jnp.where(step < boundary, out, later(step - boundary))
        return out.astype(jnp.result_type(out, 0.0))

    return schedule


# ----------------------------------------------------------------------------
# Public schedules.


def constant_schedule(value: ArrayLike) -> Schedule:
    r"""A schedule that always returns the same value.

    $$
    \eta_t = v
    $$

    Args:
        value: the value $v$ (a finite number or array).

    Returns:
        A schedule ``step -> value`` (an array shaped like ``step`` broadcast
        with ``value``).

    Example:
        >>> import jaxopt_lite as jol
        >>> jol.constant_schedule(0.1)(1000)
        Array(0.1, dtype=float32)
    """
    _check_finite("value", value)
    dtype = _dtype(value)

    def schedule(step):
        shape = jnp.broadcast_shapes(jnp.shape(value), jnp.shape(step))
        return jnp.broadcast_to(jnp.asarray(value).astype(dtype), shape)

    return schedule


def polynomial_schedule(
    init_value: ArrayLike,
    end_value: ArrayLike,
    power: ArrayLike,
    transition_steps: ArrayLike,
    transition_begin: ArrayLike = 0,
) -> Schedule:
    r"""Move from ``init_value`` to ``end_value`` along a polynomial.

    $$
    \eta_t = (\eta_0 - \eta_{\text{end}})
        \left(1 - \frac{\min(\max(t - t_0, 0), T)}{T}\right)^{p}
        + \eta_{\text{end}}
    $$

    The value is $\eta_0$ up to step $t_0$, reaches
    $\eta_{\text{end}}$ at step $t_0 + T$ and stays there.

    Args:
        init_value: the starting value $\eta_0$.
        end_value: the final value $\eta_{\text{end}}$.
        power: the exponent $p > 0$ (1 is `linear_schedule`).
        transition_steps: the length $T > 0$ of the transition.
        transition_begin: the step $t_0 \ge 0$ where the transition starts.

    Returns:
        A schedule ``step -> value``.

    Example:
        >>> import jax.numpy as jnp, jaxopt_lite as jol
        >>> sched = jol.polynomial_schedule(1.0, 0.0, power=2, transition_steps=4)
        >>> sched(jnp.arange(6))
        Array([1.    , 0.5625, 0.25  , 0.0625, 0.    , 0.    ], dtype=float32)
    """
    _check_finite("init_value", init_value)
    _check_finite("end_value", end_value)
    _check_positive("power", power)
    _check_positive("transition_steps", transition_steps)
    _check_nonnegative("transition_begin", transition_begin)
    dtype = _dtype(init_value, end_value, power)
    return _polynomial(
        init_value, end_value, power, transition_steps, transition_begin, dtype
    )


def linear_schedule(
    init_value: ArrayLike,
    end_value: ArrayLike,
    transition_steps: ArrayLike,
    transition_begin: ArrayLike = 0,
) -> Schedule:
    r"""Move linearly from ``init_value`` to ``end_value``.

    $$
    \eta_t = \eta_0 + (\eta_{\text{end}} - \eta_0)
        \frac{\min(\max(t - t_0, 0), T)}{T}
    $$

    Args:
        init_value: the starting value $\eta_0$.
        end_value: the final value $\eta_{\text{end}}$.
        transition_steps: the length $T > 0$ of the transition.
        transition_begin: the step $t_0 \ge 0$ where the transition starts.

    Returns:
        A schedule ``step -> value``.

    Example:
        >>> import jax.numpy as jnp, jaxopt_lite as jol
        >>> sched = jol.linear_schedule(
        ...     1.0, 0.5, transition_steps=2, transition_begin=1)
        >>> sched(jnp.arange(5))
        Array([1.  , 1.  , 0.75, 0.5 , 0.5 ], dtype=float32)
    """
    _check_finite("init_value", init_value)
    _check_finite("end_value", end_value)
    _check_positive("transition_steps", transition_steps)
    _check_nonnegative("transition_begin", transition_begin)
    dtype = _dtype(init_value, end_value)
    return _polynomial(
        init_value, end_value, 1, transition_steps, transition_begin, dtype
    )


def exponential_decay(
    init_value: ArrayLike,
    transition_steps: ArrayLike,
    decay_rate: ArrayLike,
    transition_begin: ArrayLike = 0,
    staircase: bool | jax.Array = False,
    end_value: ArrayLike | None = None,
) -> Schedule:
    r"""Multiply the value by ``decay_rate`` every ``transition_steps`` steps.

    $$
    \eta_t = \begin{cases}
        \eta_0, & t \le t_0, \\
        \eta_0 \, \gamma^{(t - t_0)/T}, & t > t_0,
    \end{cases}
    $$

    where $\gamma$ is ``decay_rate``, $T$ is ``transition_steps`` and $t_0$ is
    ``transition_begin``. With ``staircase=True`` the exponent is rounded down,
    $\lfloor (t - t_0)/T \rfloor$, so the value drops by $\gamma$ at once every
    $T$ steps instead of continuously.

    $\gamma < 1$ is a decay; $\gamma > 1$ is growth (allowed, as in optax) and
    $\gamma = 1$ is constant. When ``end_value`` is given the value never
    crosses it: $\eta_t \leftarrow \max(\eta_t, \eta_{\text{end}})$ when
    $\gamma < 1$, else $\min(\eta_t, \eta_{\text{end}})$. The bound applies at
    every step, including those before $t_0$.

    Args:
        init_value: the starting value $\eta_0$.
        transition_steps: $T > 0$, the number of steps over which the value is
            multiplied by $\gamma$ once.
        decay_rate: $\gamma > 0$.
        transition_begin: $t_0 \ge 0$; the value is held at $\eta_0$ up to and
            including this step, and the decay is counted from it.
        staircase: round the exponent down (a bool, possibly a traced one).
        end_value: an optional bound $\eta_{\text{end}}$ (lower when decaying,
            upper when growing).

    Returns:
        A schedule ``step -> value``.

    Example:
        >>> import jax.numpy as jnp, jaxopt_lite as jol
        >>> sched = jol.exponential_decay(1.0, transition_steps=2, decay_rate=0.5)
        >>> sched(jnp.array([0, 2, 4, 6]))
        Array([1.   , 0.5  , 0.25 , 0.125], dtype=float32)
        >>> stairs = jol.exponential_decay(
        ...     1.0, 2, 0.5, transition_begin=1, staircase=True, end_value=0.3)
        >>> stairs(jnp.arange(7))
        Array([1. , 1. , 1. , 0.5, 0.5, 0.3, 0.3], dtype=float32)
    """
    _check_finite("init_value", init_value)
    _check_positive("transition_steps", transition_steps)
    _check_positive("decay_rate", decay_rate)
    _check_nonnegative("transition_begin", transition_begin)
    _check_flag("staircase", staircase)
    if end_value is not None:
        _check_finite("end_value", end_value)
    dtype = _dtype(init_value, decay_rate, end_value)
    return _exponential(
        init_value,
        transition_steps,
        decay_rate,
        transition_begin,
        staircase,
        end_value,
        dtype,
    )


def cosine_decay_schedule(
    init_value: ArrayLike,
    decay_steps: ArrayLike,
    alpha: ArrayLike = 0.0,
    exponent: ArrayLike = 1.0,
) -> Schedule:
    r"""Decay along half a cosine period, from ``init_value`` to ``alpha * init_value``.

    $$
    \eta_t = \eta_0 \left[(1 - \alpha)
        \left(\frac{1 + \cos(\pi \min(t, T) / T)}{2}\right)^{p} + \alpha\right]
    $$

    Args:
        init_value: the starting value $\eta_0$.
        decay_steps: the length $T > 0$ of the decay.
        alpha: the final value as a fraction of $\eta_0$.
        exponent: $p > 0$, applied to the cosine factor.

    Returns:
        A schedule ``step -> value``.

    Example:
        >>> import jax.numpy as jnp, jaxopt_lite as jol
        >>> sched = jol.cosine_decay_schedule(1.0, decay_steps=4, alpha=0.1)
        >>> [round(x, 4) for x in sched(jnp.array([0, 2, 4, 8])).tolist()]
        [1.0, 0.55, 0.1, 0.1]

    References:
        Loshchilov and Hutter, *SGDR: Stochastic Gradient Descent with Warm
        Restarts*, 2017.
    """
    _check_finite("init_value", init_value)
    _check_positive("decay_steps", decay_steps)
    _check_finite("alpha", alpha)
    _check_positive("exponent", exponent)
    dtype = _dtype(init_value, alpha, exponent)
    return _cosine(init_value, decay_steps, alpha, exponent, dtype)


def warmup_cosine_decay_schedule(
    init_value: ArrayLike,
    peak_value: ArrayLike,
    warmup_steps: ArrayLike,
    decay_steps: ArrayLike,
    end_value: ArrayLike = 0.0,
    exponent: ArrayLike = 1.0,
) -> Schedule:
    r"""Linear warmup to ``peak_value``, then cosine decay to ``end_value``.

    $$
    \eta_t = \begin{cases}
        \eta_0 + (\eta_{\text{peak}} - \eta_0)\, t / W, & t < W, \\
        \eta_{\text{peak}} \left[(1 - \alpha)\, c_{t - W}^{\,p} + \alpha\right],
            & t \ge W,
    \end{cases}
    \qquad
    c_s = \frac{1 + \cos\left(\pi \frac{\min(s, D - W)}{D - W}\right)}{2}
    $$

    with $\alpha = \eta_{\text{end}} / \eta_{\text{peak}}$ ($0$ when
    $\eta_{\text{peak}} = 0$). ``decay_steps`` $D$ counts the warmup too.

    Args:
        init_value: the value $\eta_0$ at step 0.
        peak_value: the value $\eta_{\text{peak}}$ at the end of the warmup.
        warmup_steps: $W \ge 0$ (0: no warmup).
        decay_steps: $D > W$, the total length of the schedule.
        end_value: the value $\eta_{\text{end}}$ from step $D$ on.
        exponent: $p > 0$, applied to the cosine factor.

    Returns:
        A schedule ``step -> value``.

    Example:
        >>> import jax.numpy as jnp, jaxopt_lite as jol
        >>> sched = jol.warmup_cosine_decay_schedule(0.0, 1.0, 2, 6, end_value=0.2)
        >>> [round(x, 4) for x in sched(jnp.array([0, 1, 2, 4, 6, 9])).tolist()]
        [0.0, 0.5, 1.0, 0.6, 0.2, 0.2]

    References:
        Goyal et al., *Accurate, Large Minibatch SGD: Training ImageNet in
        1 Hour*, 2017. Loshchilov and Hutter, *SGDR: Stochastic Gradient
        Descent with Warm Restarts*, 2017.
    """
    _check_finite("init_value", init_value)
    _check_finite("peak_value", peak_value)
    _check_nonnegative("warmup_steps", warmup_steps)
    _check_positive("decay_steps", decay_steps)
    _check_less("warmup_steps", warmup_steps, "decay_steps", decay_steps, strict=True)
    _check_finite("end_value", end_value)
    _check_positive("exponent", exponent)
    dtype = _dtype(init_value, peak_value, end_value, exponent)
    ct = _compute_dtype(dtype)
    peak, end = _lift(peak_value, ct), _lift(end_value, ct)
    alpha = jnp.where(peak == 0, 0.0, end / jnp.where(peak == 0, 1.0, peak))
    warmup = _polynomial(init_value, peak_value, 1, warmup_steps, 0, dtype)
    cosine_steps = _lift_count(decay_steps, ct) - _lift_count(warmup_steps, ct)
    decay = _cosine(peak_value, cosine_steps, alpha, exponent, dtype)
    return _join([warmup, decay], [warmup_steps])


def warmup_exponential_decay_schedule(
    init_value: ArrayLike,
    peak_value: ArrayLike,
    warmup_steps: ArrayLike,
    transition_steps: ArrayLike,
    decay_rate: ArrayLike,
    transition_begin: ArrayLike = 0,
    staircase: bool | jax.Array = False,
    end_value: ArrayLike | None = None,
) -> Schedule:
    r"""Linear warmup to ``peak_value``, then `exponential_decay` from it.

    $$
    \eta_t = \begin{cases}
        \eta_0 + (\eta_{\text{peak}} - \eta_0)\, t / W, & t < W, \\
        \text{exponential\_decay}(\eta_{\text{peak}}, T, \gamma, t_0)(t - W),
            & t \ge W,
    \end{cases}
    $$

    so the decay is held for $t_0$ steps after the warmup.

    Args:
        init_value: the value $\eta_0$ at step 0.
        peak_value: the value $\eta_{\text{peak}}$ at the end of the warmup.
        warmup_steps: $W \ge 0$ (0: no warmup).
        transition_steps: $T > 0$, see `exponential_decay`.
        decay_rate: $\gamma > 0$.
        transition_begin: $t_0 \ge 0$, counted from the end of the warmup.
        staircase: round the decay exponent down.
        end_value: an optional bound for the decay.

    Returns:
        A schedule ``step -> value``.

    Example:
        >>> import jax.numpy as jnp, jaxopt_lite as jol
        >>> sched = jol.warmup_exponential_decay_schedule(0.0, 1.0, 2, 1, 0.5)
        >>> sched(jnp.arange(6))
        Array([0.   , 0.5  , 1.   , 0.5  , 0.25 , 0.125], dtype=float32)
    """
    _check_finite("init_value", init_value)
    _check_finite("peak_value", peak_value)
    _check_nonnegative("warmup_steps", warmup_steps)
    _check_positive("transition_steps", transition_steps)
    _check_positive("decay_rate", decay_rate)
    _check_nonnegative("transition_begin", transition_begin)
    _check_flag("staircase", staircase)
    if end_value is not None:
        _check_finite("end_value", end_value)
    dtype = _dtype(init_value, peak_value, decay_rate, end_value)
    warmup = _polynomial(init_value, peak_value, 1, warmup_steps, 0, dtype)
    decay = _exponential(
        peak_value,
        transition_steps,
        decay_rate,
        transition_begin,
        staircase,
        end_value,
        dtype,
    )
    return _join([warmup, decay], [warmup_steps])


def warmup_constant_schedule(
    init_value: ArrayLike, peak_value: ArrayLike, warmup_steps: ArrayLike
) -> Schedule:
    r"""Linear warmup to ``peak_value``, then constant.

    $$
    \eta_t = \eta_0 + (\eta_{\text{peak}} - \eta_0) \frac{\min(t, W)}{W}
    $$

    Args:
        init_value: the value $\eta_0$ at step 0.
        peak_value: the value $\eta_{\text{peak}}$ from step $W$ on.
        warmup_steps: $W > 0$ (for no warmup use `constant_schedule`).

    Returns:
        A schedule ``step -> value``.

    Example:
        >>> import jax.numpy as jnp, jaxopt_lite as jol
        >>> jol.warmup_constant_schedule(0.0, 1.0, 4)(jnp.array([0, 1, 4, 9]))
        Array([0.  , 0.25, 1.  , 1.  ], dtype=float32)

    References:
        Goyal et al., *Accurate, Large Minibatch SGD: Training ImageNet in
        1 Hour*, 2017.
    """
    _check_finite("init_value", init_value)
    _check_finite("peak_value", peak_value)
    _check_positive("warmup_steps", warmup_steps)
    dtype = _dtype(init_value, peak_value)
    return _polynomial(init_value, peak_value, 1, warmup_steps, 0, dtype)


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
        v.check_range(f"a boundary (step) of {name}", _checkable(boundary), minimum)
        _check_nonnegative(f"{name}[{boundary!r}]", scale)
    return sorted(boundaries_and_scales.items(), key=lambda item: item[0])


def piecewise_constant_schedule(
    init_value: ArrayLike,
    boundaries_and_scales: Mapping[int, ArrayLike] | None = None,
) -> Schedule:
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
    _check_finite("init_value", init_value)
    items = _check_boundaries(boundaries_and_scales, -math.inf)
    dtype = _dtype(init_value, *(scale for _, scale in items))
    ct = _compute_dtype(dtype)

    def schedule(step):
        step = jnp.asarray(step)
        value = jnp.asarray(init_value).astype(ct)
        for boundary, scale in items:
            value = jnp.where(step >= boundary, value * _lift(scale, ct), value)
        shape = jnp.broadcast_shapes(value.shape, step.shape)
        return jnp.broadcast_to(value, shape).astype(dtype)

    return schedule


def piecewise_interpolate_schedule(
    interpolate_type: str,
    init_value: ArrayLike,
    boundaries_and_scales: Mapping[int, ArrayLike] | None = None,
) -> Schedule:
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
    if interpolate_type not in ("linear", "cosine"):
        raise ValueError(
            f"interpolate_type={interpolate_type!r} is not allowed: it must be "
            "'linear' or 'cosine'."
        )
    _check_finite("init_value", init_value)
    items = _check_boundaries(boundaries_and_scales, 0.0)
    scales = [scale for _, scale in items]
    dtype = _dtype(init_value, *scales)
    knots = [boundary for boundary, _ in items]
    return _interpolate(interpolate_type, init_value, knots, scales, dtype)


def _check_onecycle(transition_steps, peak_value, pct_start, div, final_div) -> Any:
    _check_positive("transition_steps", transition_steps)
    _check_finite("peak_value", peak_value)
    _check_fraction("pct_start", pct_start)
    _check_positive("div_factor", div)
    _check_positive("final_div_factor", final_div)
    return _dtype(peak_value, div, final_div)


def linear_onecycle_schedule(
    transition_steps: ArrayLike,
    peak_value: ArrayLike,
    pct_start: ArrayLike = 0.3,
    pct_final: ArrayLike = 0.85,
    div_factor: ArrayLike = 25.0,
    final_div_factor: ArrayLike = 1e4,
) -> Schedule:
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
    dtype = _check_onecycle(
        transition_steps, peak_value, pct_start, div_factor, final_div_factor
    )
    _check_fraction("pct_final", pct_final)
    _check_less("pct_start", pct_start, "pct_final", pct_final, strict=False)
    ct = _compute_dtype(dtype)
    peak, div, final = (
        _lift(x, ct) for x in (peak_value, div_factor, final_div_factor)
    )
    knots = [
        _floor_product(pct_start, transition_steps, ct),
        _floor_product(pct_final, transition_steps, ct),
        transition_steps,
    ]
    scales = [div, 1.0 / div, 1.0 / final]
    return _interpolate("linear", peak / div, knots, scales, dtype)


def cosine_onecycle_schedule(
    transition_steps: ArrayLike,
    peak_value: ArrayLike,
    pct_start: ArrayLike = 0.3,
    div_factor: ArrayLike = 25.0,
    final_div_factor: ArrayLike = 1e4,
) -> Schedule:
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
    dtype = _check_onecycle(
        transition_steps, peak_value, pct_start, div_factor, final_div_factor
    )
    ct = _compute_dtype(dtype)
    peak, div, final = (
        _lift(x, ct) for x in (peak_value, div_factor, final_div_factor)
    )
    knots = [
        _floor_product(pct_start, transition_steps, ct),
        _floor_product(1, transition_steps, ct),
    ]
    scales = [div, 1.0 / (div * final)]
    return _interpolate("cosine", peak / div, knots, scales, dtype)


def sgdr_schedule(cosine_kwargs: Iterable[Mapping[str, ArrayLike]]) -> Schedule:
    r"""Stochastic gradient descent with warm restarts: cosine cycles back to back.

    Cycle $k$ is ``warmup_cosine_decay_schedule(**cosine_kwargs[k])``, of
    length $D_k$ (its ``decay_steps``), started at $B_k = \sum_{j<k} D_j$:

    $$
    \eta_t = s_k(t - B_k), \qquad B_k \le t < B_{k+1}
    $$

    and the last cycle continues after its end.

    Args:
        cosine_kwargs: one dict of `warmup_cosine_decay_schedule` arguments
            per cycle (at least one).

    Returns:
        A schedule ``step -> value``.

    Example:
        >>> import jax.numpy as jnp, jaxopt_lite as jol
        >>> cycle = dict(init_value=1.0, peak_value=1.0, warmup_steps=0, decay_steps=2)
        >>> sched = jol.sgdr_schedule([cycle, cycle])
        >>> [round(x, 4) for x in sched(jnp.arange(5)).tolist()]
        [1.0, 0.5, 1.0, 0.5, 0.0]

    References:
        Loshchilov and Hutter, *SGDR: Stochastic Gradient Descent with Warm
        Restarts*, 2017.
    """
    if isinstance(cosine_kwargs, Mapping) or not isinstance(cosine_kwargs, Iterable):
        raise TypeError(
            f"cosine_kwargs must be a list of dicts, got {cosine_kwargs!r}."
        )
    cycles = list(cosine_kwargs)
    if not cycles:
        raise ValueError("cosine_kwargs=[] is not allowed: give at least one cycle.")
    schedules, starts, start = [], [], 0
    for i, kwargs in enumerate(cycles):
        if not isinstance(kwargs, Mapping):
            raise TypeError(f"cosine_kwargs[{i}] must be a dict, got {kwargs!r}.")
        try:
            schedules.append(warmup_cosine_decay_schedule(**kwargs))
        except (TypeError, ValueError) as error:
            raise type(error)(f"cosine_kwargs[{i}]: {error}") from error
        start = start + kwargs["decay_steps"]
        starts.append(start)
    return _join(schedules, starts[:-1])


def join_schedules(
    schedules: Sequence[Schedule], boundaries: Sequence[ArrayLike]
) -> Schedule:
    r"""Run schedules one after the other, each restarted from step 0.

    With boundaries $b_1 \le \dots \le b_k$ (and $b_0 = 0$):

    $$
    \eta_t = s_i(t - b_i), \qquad b_i \le t < b_{i+1}
    $$

    The first schedule also covers steps before $b_1$ and the last one all
    steps from $b_k$ on.

    Args:
        schedules: $k + 1$ schedules ``step -> value``.
        boundaries: $k$ non-decreasing steps where the next schedule takes over.

    Returns:
        A schedule ``step -> value``.

    Example:
        >>> import jax.numpy as jnp, jaxopt_lite as jol
        >>> warmup = jol.linear_schedule(0.0, 1.0, transition_steps=2)
        >>> decay = jol.exponential_decay(1.0, 1, 0.5)
        >>> jol.join_schedules([warmup, decay], [2])(jnp.arange(5))
        Array([0.  , 0.5 , 1.  , 0.5 , 0.25], dtype=float32)
    """
    if not isinstance(schedules, Sequence):
        raise TypeError(f"schedules must be a list of schedules, got {schedules!r}.")
    if not schedules:
        raise ValueError("schedules=[] is not allowed: give at least one schedule.")
    for i, schedule in enumerate(schedules):
        if not callable(schedule):
            raise TypeError(f"schedules[{i}] must be callable, got {schedule!r}.")
    if not isinstance(boundaries, Sequence) or len(boundaries) != len(schedules) - 1:
        raise ValueError(
            f"boundaries={boundaries!r} is not allowed: it must be a list of "
            f"{len(schedules) - 1} steps (one fewer than the schedules)."
        )
    for i, boundary in enumerate(boundaries):
        _check_finite(f"boundaries[{i}]", boundary)
    for i in range(len(boundaries) - 1):
        _check_less(
            f"boundaries[{i}]",
            boundaries[i],
            f"boundaries[{i + 1}]",
            boundaries[i + 1],
            strict=False,
        )
    return _join(list(schedules), list(boundaries))


def step_decay(
    init_value: ArrayLike, step_size: ArrayLike, gamma: ArrayLike = 0.1
) -> Schedule:
    r"""Multiply the value by ``gamma`` every ``step_size`` steps (PyTorch ``StepLR``).

    $$
    \eta_t = \eta_0 \, \gamma^{\lfloor t / s \rfloor}
    $$

    Equals ``exponential_decay(init_value, step_size, gamma, staircase=True)``;
    the floor is taken in integer arithmetic when the step and ``step_size``
    are integers.

    Args:
        init_value: the starting value $\eta_0$.
        step_size: $s > 0$, the number of steps between drops.
        gamma: $\gamma > 0$, the factor applied at each drop.

    Returns:
        A schedule ``step -> value``.

    Example:
        >>> import jax.numpy as jnp, jaxopt_lite as jol
        >>> jol.step_decay(1.0, step_size=2, gamma=0.5)(jnp.arange(6))
        Array([1.  , 1.  , 0.5 , 0.5 , 0.25, 0.25], dtype=float32)
    """
    _check_finite("init_value", init_value)
    _check_positive("step_size", step_size)
    _check_positive("gamma", gamma)
    dtype = _dtype(init_value, gamma)
    ct = _compute_dtype(dtype)
    init, gamma = _lift(init_value, ct), _lift(gamma, ct)
    size = _lift_count(step_size, ct)

    def schedule(step):
        drops = _floor_div(jnp.asarray(step), size, ct)
        return (init * jnp.power(gamma, drops)).astype(dtype)

    return schedule


def _floor_div(step: jax.Array, size: Any, dtype: Any) -> jax.Array:
    """``floor(step / size)`` as ``dtype``; exact integer division for integers."""
    if _is_integer(step) and _is_integer(size):
        return jnp.floor_divide(step, size).astype(dtype)
    return jnp.floor(step.astype(dtype) / size)


def inverse_time_decay(
    init_value: ArrayLike,
    decay_steps: ArrayLike,
    decay_rate: ArrayLike,
    staircase: bool | jax.Array = False,
) -> Schedule:
    r"""Decay as one over time (Keras's ``InverseTimeDecay``).

    $$
    \eta_t = \frac{\eta_0}{1 + r \, t / T}
    \qquad \left(\frac{\eta_0}{1 + r \lfloor t / T \rfloor}
        \text{ with staircase}\right)
    $$

    Args:
        init_value: the starting value $\eta_0$.
        decay_steps: $T > 0$; the value is $\eta_0 / (1 + r)$ at step $T$.
        decay_rate: $r \ge 0$.
        staircase: round $t / T$ down (a bool, possibly a traced one).

    Returns:
        A schedule ``step -> value``.

    Example:
        >>> import jax.numpy as jnp, jaxopt_lite as jol
        >>> sched = jol.inverse_time_decay(1.0, decay_steps=2, decay_rate=1.0)
        >>> sched(jnp.array([0, 2, 6]))
        Array([1.  , 0.5 , 0.25], dtype=float32)
        >>> stairs = jol.inverse_time_decay(1.0, 2, 1.0, staircase=True)
        >>> stairs(jnp.array([1, 3, 5]))
        Array([1.        , 0.5       , 0.33333334], dtype=float32)

    References:
        Robbins and Monro, *A Stochastic Approximation Method*, 1951.
    """
    _check_finite("init_value", init_value)
    _check_positive("decay_steps", decay_steps)
    _check_nonnegative("decay_rate", decay_rate)
    _check_flag("staircase", staircase)
    dtype = _dtype(init_value, decay_rate)
    ct = _compute_dtype(dtype)
    init, rate = _lift(init_value, ct), _lift(decay_rate, ct)
    steps = _lift_count(decay_steps, ct)

    def schedule(step):
        step = jnp.asarray(step)
        progress = step.astype(ct) / steps
        progress = jnp.where(staircase, _floor_div(step, steps, ct), progress)
        return (init / (1 + rate * progress)).astype(dtype)

    return schedule
