"""Argument checks run before tracing.

Checks only look at concrete values (Python numbers, NumPy or concrete JAX
arrays). Traced values and schedules pass through untouched, so
hyper-parameters can be ``vmap``-ed or changed without recompiling.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import jax
import jax.core
import jax.numpy as jnp
import numpy as np


def concrete_values(value: Any) -> np.ndarray | None:
    """``value`` as a NumPy array when it is a concrete number or array, else
    ``None`` (tracers, schedules and other callables)."""
    if callable(value) or isinstance(value, jax.core.Tracer):
        return None
    if isinstance(value, bool) or not isinstance(
        value, (numbers.Number, np.ndarray, np.generic, jax.Array)
    ):
        return None
    try:
        return np.asarray(value)
    except Exception:  # a non-fully-addressable array, for instance
        return None


def _describe(value: Any) -> str:
    array = np.asarray(value)
    return repr(array.item()) if array.ndim == 0 else f"array {array.tolist()}"


def check_number(name: str, value: Any, *, allow_schedule: bool = False) -> None:
    """Raise ``TypeError`` unless ``value`` is a real number, an array, a tracer
    or (when ``allow_schedule``) a callable."""
    if callable(value):
        if allow_schedule:
            return
        raise TypeError(f"{name} must be a number or an array, got a callable.")
    if isinstance(value, bool) or not isinstance(
        value, (numbers.Real, np.ndarray, np.generic, jax.Array)
    ):
        allowed = "a number, an array or a schedule (step -> value)"
        if not allow_schedule:
            allowed = "a number or an array"
        raise TypeError(f"{name} must be {allowed}, got {value!r}.")


def check_range(
    name: str,
    value: Any,
    low: float = -math.inf,
    high: float = math.inf,
    *,
    low_closed: bool = True,
    high_closed: bool = True,
    allow_schedule: bool = False,
) -> None:
    """Raise ``ValueError`` when a concrete ``value`` has an element outside the
    interval (or is not finite). ``TypeError`` for values that are not numbers."""
    check_number(name, value, allow_schedule=allow_schedule)
    array = concrete_values(value)
    if array is None:
        return
    if not jnp.issubdtype(array.dtype, jnp.number) or np.iscomplexobj(array):
        raise TypeError(f"{name} must be real, got {_describe(value)}.")
    array = array.astype(np.float64)  # also covers bfloat16 and other ml_dtypes
    ok = np.isfinite(array)
    ok &= (array >= low) if low_closed else (array > low)
    ok &= (array <= high) if high_closed else (array < high)
    if not ok.all():
        interval = (
            ("[" if low_closed else "(")
            + f"{low:g}, {high:g}"
            + ("]" if high_closed else ")")
        )
        raise ValueError(
            f"{name}={_describe(value)} is not allowed: it must be a finite "
            f"number in {interval}."
        )


def check_learning_rate(name: str, value: Any) -> None:
    """A learning rate: a finite number >= 0, an array of them, or a schedule."""
    check_range(name, value, 0.0, math.inf, high_closed=False, allow_schedule=True)


def check_nonnegative(name: str, value: Any) -> None:
    """A finite number >= 0 (or an array of them)."""
    check_range(name, value, 0.0, math.inf, high_closed=False)


def check_decay(name: str, value: Any) -> None:
    """An exponential-average decay in [0, 1)."""
    check_range(name, value, 0.0, 1.0, high_closed=False)


def check_int(name: str, value: Any, *, minimum: int = 1) -> None:
    """A Python (or NumPy) integer >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r}.")
    if value < minimum:
        raise ValueError(f"{name}={value!r} is not allowed: it must be >= {minimum}.")
