"""What the schedules share: argument checks, dtype lifting and the unchecked
curves (polynomial, exponential, cosine, joined) the public factories wrap."""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from jaxopt_lite._core import validate as v

Schedule = Callable[[ArrayLike], jax.Array]


def check_finite(name: str, value: Any) -> None:
    v.check_range(name, value)


def check_positive(name: str, value: Any) -> None:
    v.check_range(name, value, 0.0, math.inf, low_closed=False, high_closed=False)


def check_nonnegative(name: str, value: Any) -> None:
    v.check_nonnegative(name, value)


def check_fraction(name: str, value: Any) -> None:
    v.check_range(name, value, 0.0, 1.0)


def check_less(lo_name: str, lo: Any, hi_name: str, hi: Any, strict: bool) -> None:
    """``lo < hi`` (or ``<=``) when both are concrete."""
    a, b = v.concrete_values(lo), v.concrete_values(hi)
    if a is None or b is None or np.all(a < b if strict else a <= b):
        return
    relation = "larger than" if strict else "at least"
    raise ValueError(
        f"{hi_name}={v._describe(hi)} is not allowed: it must be {relation} "
        f"{lo_name}={v._describe(lo)}."
    )


def check_flag(name: str, value: Any) -> None:
    """A bool, a bool array or a traced bool."""
    if isinstance(value, (bool, np.bool_)):
        return
    dtype = getattr(value, "dtype", None)
    if isinstance(value, (np.ndarray, jax.Array)) and dtype == np.bool_:
        return
    raise TypeError(f"{name} must be True or False (or a bool array), got {value!r}.")


def check_exponential(
    steps: Any, rate: Any, begin: Any, staircase: Any, end: Any
) -> None:
    """The checks of `exponential_decay`'s arguments after ``init_value`` (in
    the order of `exponential`'s), shared with its warmup variant."""
    check_finite("transition_steps", steps)  # <= 0: constant, as in optax
    check_nonnegative("decay_rate", rate)  # 0: constant, as in optax
    check_nonnegative("transition_begin", begin)
    check_flag("staircase", staircase)
    if end is not None:
        check_finite("end_value", end)


def result_dtype(*values: Any) -> Any:
    """Output dtype: the promoted dtype of the float hyper-parameters (Python
    numbers are weak), at least the default float."""
    return jnp.result_type(*(x for x in values if x is not None), 0.0)


def lift(x: Any, dtype: Any) -> Any:
    """Python numbers stay weakly typed (arithmetic among them stays exact, as
    in optax); arrays become ``dtype`` (the float32-or-wider compute dtype)."""
    if x is None or isinstance(x, (int, float)):
        return x
    return jnp.asarray(x).astype(dtype)


def lift_count(x: Any, dtype: Any) -> Any:
    """Step-valued arguments: integers stay integers, float arrays become ``dtype``."""
    if isinstance(x, (int, float)) or jnp.issubdtype(jnp.result_type(x), jnp.integer):
        return x
    return jnp.asarray(x).astype(dtype)


def is_integer(x: Any) -> bool:
    return isinstance(x, numbers.Integral) or jnp.issubdtype(
        jnp.result_type(x), jnp.integer
    )


def compute_dtype(dtype: Any) -> Any:
    return jnp.promote_types(dtype, jnp.float32)


def polynomial(init, end, power, steps, begin, dtype, empty="end") -> Schedule:
    """``steps <= 0`` gives ``end`` (a warmup of no steps) or, with
    ``empty="init"``, ``init`` at every step (optax's polynomial schedule)."""
    ct = compute_dtype(dtype)
    init, end, power = lift(init, ct), lift(end, ct), lift(power, ct)
    steps, begin = lift_count(steps, ct), lift_count(begin, ct)

    def schedule(step):
        # The remaining fraction as (T - done) / T rather than 1 - done / T:
        # it is exactly 0 at the end even where XLA turns the division into a
        # multiplication by 1 / T. steps <= 0 (a zero-length warmup, or a
        # traced value) jumps straight to end.
        span = jnp.maximum(steps, 0)
        done = jnp.clip(jnp.asarray(step) - begin, 0, span)
        frac = (span - done) / jnp.where(steps > 0, steps, 1)
        value = (init - end) * frac**power + end
        if empty == "init":
            value = jnp.where(steps > 0, value, init)
        return jnp.asarray(value).astype(dtype)

    return schedule


def exponential(init, steps, rate, begin, staircase, end, dtype) -> Schedule:
    ct = compute_dtype(dtype)
    init, rate, end = lift(init, ct), lift(rate, ct), lift(end, ct)
    steps, begin = lift_count(steps, ct), lift_count(begin, ct)

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
        # No transition or a zero rate: the constant init (as in optax).
        value = jnp.where((steps > 0) & (rate != 0), value, init)
        return jnp.asarray(value).astype(dtype)

    return schedule


def cosine(init, steps, alpha, exponent, dtype) -> Schedule:
    ct = compute_dtype(dtype)
    init, alpha, exponent = lift(init, ct), lift(alpha, ct), lift(exponent, ct)
    # A Python int step count may not fit in int32 (decay_steps=10**10).
    steps = float(steps) if isinstance(steps, int) else lift_count(steps, ct)

    def schedule(step):
        t = jnp.minimum(jnp.asarray(step).astype(ct), steps)
        cosine = 0.5 * (1 + jnp.cos(jnp.pi * t / steps))
        return (init * ((1 - alpha) * cosine**exponent + alpha)).astype(dtype)

    return schedule


def join(schedules: Sequence[Schedule], boundaries: Sequence[Any]) -> Schedule:
    def schedule(step):
        step = jnp.asarray(step)
        out = jnp.asarray(schedules[0](step))
        for boundary, later in zip(boundaries, schedules[1:], strict=False):
            out = jnp.where(step < boundary, out, later(step - boundary))
        return out.astype(jnp.result_type(out, 0.0))

    return schedule


def floor_div(step: jax.Array, size: Any, dtype: Any) -> jax.Array:
    """``floor(step / size)`` as ``dtype``; exact integer division for integers."""
    if is_integer(step) and is_integer(size):
        return jnp.floor_divide(step, size).astype(dtype)
    return jnp.floor(step.astype(dtype) / size)
