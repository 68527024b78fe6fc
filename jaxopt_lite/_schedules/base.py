"""What the schedules share: the checks of exponential decays, dtype lifting
and the unchecked curves (polynomial, exponential, cosine, joined) the public
factories wrap. Argument checks are `_core.validate`'s."""

from __future__ import annotations

import numbers
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from jaxopt_lite._core import validate as v
from jaxopt_lite._core.dtypes import (
    add,
    compute_dtype,
    div,
    mul,
    promote,
    promoted_dtype,
    sub,
)

Schedule = Callable[[ArrayLike], jax.Array]


def check_exponential(
    steps: Any, rate: Any, begin: Any, staircase: Any, end: Any
) -> None:
    """The checks of `exponential_decay`'s arguments after ``init_value`` (in
    the order of `exponential`'s), shared with its warmup variant."""
    v.check_range("transition_steps", steps)  # <= 0: constant, as in optax
    v.check_nonnegative("decay_rate", rate)  # 0: constant, as in optax
    v.check_nonnegative("transition_begin", begin)
    v.check_flag("staircase", staircase)
    if end is not None:
        v.check_range("end_value", end)


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


def lift_count(x: Any, dtype: Any) -> Any:
    """Step-valued arguments: integers stay integers, float arrays become ``dtype``."""
    if isinstance(x, (int, float)) or jnp.issubdtype(jnp.result_type(x), jnp.integer):
        return x
    return jnp.asarray(x).astype(dtype)


def is_integer(x: Any) -> bool:
    return isinstance(x, numbers.Integral) or jnp.issubdtype(
        jnp.result_type(x), jnp.integer
    )


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
        done = jnp.clip(*promote(sub(jnp.asarray(step), begin), 0, span))
        frac = div(sub(span, done), jnp.where(steps > 0, steps, 1))
        value = add(mul(sub(init, end), jnp.power(*promote(frac, power))), end)
        if empty == "init":
            value = jnp.where(steps > 0, *promote(value, init))
        return jnp.asarray(value).astype(dtype)

    return schedule


def exponential(init, steps, rate, begin, staircase, end, dtype) -> Schedule:
    ct = compute_dtype(dtype)
    init, rate, end = lift(init, ct), lift(rate, ct), lift(end, ct)
    steps, begin = lift_count(steps, ct), lift_count(begin, ct)

    def schedule(step):
        elapsed = sub(jnp.asarray(step), begin)
        exponent = div(elapsed, steps)
        exponent = jnp.where(staircase, jnp.floor(exponent), exponent)
        not_started = elapsed <= 0
        decayed = mul(init, jnp.power(*promote(rate, exponent)))
        value = jnp.where(not_started, *promote(init, decayed))
        if end is not None:
            # A lower bound while decaying, an upper bound while growing.
            value = jnp.where(
                rate < 1,
                jnp.maximum(*promote(value, end)),
                jnp.minimum(*promote(value, end)),
            )
        # No transition or a zero rate: the constant init (as in optax).
        value = jnp.where((steps > 0) & (rate != 0), *promote(value, init))
        return jnp.asarray(value).astype(dtype)

    return schedule


def cosine(init, steps, alpha, exponent, dtype) -> Schedule:
    ct = compute_dtype(dtype)
    init, alpha, exponent = lift(init, ct), lift(alpha, ct), lift(exponent, ct)
    # A Python int step count may not fit in int32 (decay_steps=10**10).
    steps = float(steps) if isinstance(steps, int) else lift_count(steps, ct)

    def schedule(step):
        t = jnp.minimum(*promote(jnp.asarray(step).astype(ct), steps))
        cosine = 0.5 * (1 + jnp.cos(div(jnp.pi * t, steps)))
        shape = add(mul(1 - alpha, jnp.power(*promote(cosine, exponent))), alpha)
        return mul(init, shape).astype(dtype)

    return schedule


def join(schedules: Sequence[Schedule], boundaries: Sequence[Any]) -> Schedule:
    def schedule(step):
        step = jnp.asarray(step)
        out = jnp.asarray(schedules[0](step))
        for boundary, later in zip(boundaries, schedules[1:], strict=False):
            later_out = later(sub(step, boundary))
            out = jnp.where(
                jnp.less(*promote(step, boundary)), *promote(out, later_out)
            )
        return out.astype(promoted_dtype(out, 0.0))

    return schedule


def floor_div(step: jax.Array, size: Any, dtype: Any) -> jax.Array:
    """``floor(step / size)`` as ``dtype``; exact integer division for integers."""
    if is_integer(step) and is_integer(size):
        return jnp.floor_divide(step, size).astype(dtype)
    return jnp.floor(div(step.astype(dtype), size))
