"""What the schedules share: the checks of exponential decays, dtype lifting,
step arithmetic and the unchecked curves (polynomial, exponential, cosine,
joined) the public factories wrap. Argument checks are `_core.validate`'s.

Step arithmetic. A step (the argument of a schedule) and the step-valued
hyper-parameters (``transition_steps``, ``transition_begin``, boundaries, ...)
may be Python or NumPy integers of any size, integer arrays (the int32
counter of an optimizer, int64 under x64), float numbers or float arrays.
They are combined exactly in integers where both are integers (`int_offset`),
else in the compute dtype, and turned into that dtype before any division or
transcendental function: an int32 step divided by an integer would give a
float32 quotient even under x64. A Python integer beyond int32 never becomes
an integer array (it goes through a Python float), so it works without x64.

Values. Each curve returns its end points exactly (``init`` at its start,
``end`` at its end, whatever rounding or a compiler's rewriting of a division
does in between), and a value between two end points is clamped to them: a
schedule between non-negative values is never negative.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from jaxopt_lite._core import validate
from jaxopt_lite._core.dtypes import compute_dtype, promote, promoted_dtype, sub

Schedule = Callable[[ArrayLike], jax.Array]


def check_exponential(
    steps: Any, rate: Any, begin: Any, staircase: Any, end: Any
) -> None:
    """The checks of `exponential_decay`'s arguments after ``init_value`` (in
    the order of `exponential`'s), shared with its warmup variant."""
    validate.check_range("transition_steps", steps)  # <= 0: constant, as in optax
    validate.check_nonnegative("decay_rate", rate)  # 0: constant, as in optax
    validate.check_nonnegative("transition_begin", begin)
    validate.check_flag("staircase", staircase)
    if end is not None:
        validate.check_range("end_value", end)


def result_dtype(*values: Any) -> Any:
    """Output dtype: the promoted dtype of the float hyper-parameters (Python
    numbers are weak), at least the default float."""
    return promoted_dtype(*(x for x in values if x is not None), 0.0)


def lift(x: Any, dtype: Any) -> Any:
    """Python numbers stay weakly typed (arithmetic among them stays exact, as
    in optax); arrays become ``dtype`` (the float32-or-wider compute dtype)."""
    if x is None or isinstance(x, (int, float)):
        return x
    return jnp.asarray(x).astype(dtype)


# ----------------------------------------------------------------------------
# Step arithmetic.


def _is_int_number(x: Any) -> bool:
    return isinstance(x, (numbers.Integral, np.integer)) and not isinstance(
        x, (bool, np.bool_)
    )


def _is_int_array(x: Any) -> bool:
    """A signed integer JAX array (concrete or traced). Unsigned ones would
    wrap below zero and NumPy ones may not fit a JAX integer without x64:
    they take the float path."""
    return isinstance(x, jax.Array) and jnp.issubdtype(x.dtype, jnp.signedinteger)


def _fits(n: Any, dtype: Any) -> bool:
    info = jnp.iinfo(dtype)
    return info.min <= int(n) <= info.max


def time(x: Any, ct: Any) -> jax.Array:
    """A step (or a step-valued argument) as an array of ``ct``. Anything but
    a JAX array goes through NumPy's float64, so an integer beyond int32
    needs no int64 array."""
    if isinstance(x, jax.Array):
        return x.astype(ct)
    return jnp.asarray(np.asarray(x, np.float64), ct)


def int_offset(step: Any, start: Any) -> Any:
    """``step - start`` computed exactly in integers (a Python int, or an array
    of the steps' integer dtype), or ``None`` where one is not an integer or a
    Python integer does not fit the other's dtype."""
    if _is_int_number(step) and _is_int_number(start):
        return int(step) - int(start)
    if _is_int_array(step) and _is_int_array(start):
        return sub(step, start)
    if _is_int_array(step) and _is_int_number(start) and _fits(start, step.dtype):
        return step - jnp.asarray(int(start), step.dtype)
    if _is_int_number(step) and _is_int_array(start) and _fits(step, start.dtype):
        return jnp.asarray(int(step), start.dtype) - start
    return None


def offset(step: Any, start: Any, ct: Any) -> jax.Array:
    """``step - start`` as an array of ``ct``: subtracted exactly in integers
    where both are integers (`int_offset`), then rounded once."""
    exact = int_offset(step, start)
    if exact is not None:
        return time(exact, ct)
    return time(step, ct) - time(start, ct)


def shift(step: Any, start: Any, ct: Any) -> Any:
    """``step - start`` as the step of a later schedule: an integer (exact)
    where `int_offset` gives one, else an array of ``ct``."""
    exact = int_offset(step, start)
    return exact if exact is not None else offset(step, start, ct)


def floor_ratio(step: Any, start: Any, size: Any, ct: Any) -> jax.Array:
    """``floor((step - start) / size)`` as ``ct`` (``size <= 0`` gives an
    unspecified finite value: callers replace it). Exact integer division
    where the operands are integers; otherwise the float quotient's floor,
    corrected by one where rounding (or a compiler's multiplication by
    ``1 / size``) put it on the wrong side of an integer."""
    exact = int_offset(step, start)
    if exact is not None and _is_int_number(exact) and _is_int_number(size):
        return jnp.asarray(float(exact // max(int(size), 1)), ct)
    if exact is not None and not _is_int_number(exact):
        if _is_int_array(size) or (_is_int_number(size) and _fits(size, exact.dtype)):
            safe = jnp.maximum(*promote(size, 1))
            return jnp.floor_divide(*promote(exact, safe)).astype(ct)
    elapsed = offset(step, start, ct)
    size = time(size, ct)
    safe = jnp.where(size > 0, size, 1)
    q = jnp.floor(ratio(elapsed, safe))
    q = jnp.where(q * safe > elapsed, q - 1, q)
    return jnp.where((q + 1) * safe <= elapsed, q + 1, q)


def ratio(a: Any, b: Any) -> jax.Array:
    """``a / b``, a true division even where ``b`` is a compile-time constant
    (XLA multiplies by a rounded ``1 / b`` there): compiled schedules give the
    quotients of eager ones, which float64 needs near the end of a cosine."""
    return a / jax.lax.optimization_barrier(b)


def between(value: Any, a: Any, b: Any) -> Any:
    """``value`` clamped to the interval of ``a`` and ``b``: an interpolation's
    rounding never leaves it (nor changes the sign of non-negative ends)."""
    return jnp.clip(value, jnp.minimum(a, b), jnp.maximum(a, b))


# ----------------------------------------------------------------------------
# The unchecked curves.


def polynomial(init, end, power, steps, begin, dtype, empty="end") -> Schedule:
    """``steps <= 0`` gives ``end`` (a warmup of no steps) or, with
    ``empty="init"``, ``init`` at every step (optax's polynomial schedule)."""
    ct = compute_dtype(dtype)
    init, end, power = lift(init, ct), lift(end, ct), lift(power, ct)

    def schedule(step):
        span = time(steps, ct)
        done = jnp.clip(offset(step, begin, ct), 0, jnp.maximum(span, 0))
        # The remaining fraction (T - done) / T is exactly 0 at the end.
        frac = ratio(span - done, jnp.where(span > 0, span, 1))
        value = between((init - end) * jnp.power(frac, power) + end, init, end)
        value = jnp.where(done <= 0, init, value)
        value = jnp.where(done >= span, end, value)  # also a warmup of 0 steps
        if empty == "init":
            value = jnp.where(span > 0, value, init)
        return jnp.asarray(value).astype(dtype)

    return schedule


def exponential(init, steps, rate, begin, staircase, end, dtype) -> Schedule:
    ct = compute_dtype(dtype)
    init, rate, end = lift(init, ct), lift(rate, ct), lift(end, ct)

    def schedule(step):
        span = time(steps, ct)
        elapsed = offset(step, begin, ct)
        exponent = ratio(elapsed, jnp.where(span > 0, span, 1))
        if staircase is not False:  # a Python False needs no floor (a flag)
            floor = floor_ratio(step, begin, steps, ct)
            exponent = jnp.where(staircase, floor, exponent)
        value = jnp.where(elapsed <= 0, init, init * jnp.power(rate, exponent))
        if end is not None:
            # A lower bound while decaying, an upper bound while growing.
            value = jnp.where(
                rate < 1, jnp.maximum(value, end), jnp.minimum(value, end)
            )
        # No transition or a zero rate: the constant init (as in optax).
        value = jnp.where((span > 0) & (rate != 0), value, init)
        return jnp.asarray(value).astype(dtype)

    return schedule


def cosine(start, end, steps, exponent, dtype) -> Schedule:
    """From ``start`` (step 0) to ``end`` (step ``steps`` > 0 and after) along
    half a cosine period raised to ``exponent``; negative steps mirror
    positive ones (as in optax)."""
    ct = compute_dtype(dtype)
    start, end, exponent = lift(start, ct), lift(end, ct), lift(exponent, ct)

    def schedule(step):
        span = time(steps, ct)
        t = jnp.minimum(time(step, ct), span)
        shape = jnp.clip(0.5 * (1 + jnp.cos(ratio(jnp.pi * t, span))), 0, 1)
        value = between((start - end) * jnp.power(shape, exponent) + end, start, end)
        value = jnp.where(t == 0, start, jnp.where(t >= span, end, value))
        return jnp.asarray(value).astype(dtype)

    return schedule


def join(schedules: Sequence[Schedule], boundaries: Sequence[Any]) -> Schedule:
    """``schedules[i]`` from ``boundaries[i - 1]`` on, fed the steps since
    that boundary (exact integers where the steps are integers)."""

    def schedule(step):
        out = jnp.asarray(schedules[0](step))
        ct = compute_dtype(out.dtype)
        for boundary, later in zip(boundaries, schedules[1:], strict=False):
            later_out = jnp.asarray(later(shift(step, boundary, ct)))
            reached = offset(step, boundary, ct) >= 0
            out = jnp.where(reached, *promote(later_out, out))
        return out.astype(promoted_dtype(out, 0.0))

    return schedule
