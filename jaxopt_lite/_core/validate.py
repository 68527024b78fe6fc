"""Argument checks run before tracing.

Checks only look at concrete values (Python numbers, NumPy or concrete JAX
arrays). Traced values and schedules pass through untouched, so
hyper-parameters can be ``vmap``-ed or changed without recompiling.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any

import jax
import jax.core
import jax.numpy as jnp
import numpy as np
import optax

PyTree = Any


def concrete_values(value: Any) -> np.ndarray | None:
    """``value`` as a NumPy array when it is a concrete number or array, else
    ``None`` (tracers, schedules and other callables)."""
    if callable(value) or isinstance(value, jax.core.Tracer):
        return None
    if isinstance(value, bool) or not isinstance(
        value, (numbers.Number, np.ndarray, np.generic, jax.Array)
    ):
        return None
    if isinstance(value, numbers.Integral) and not -(2**63) <= int(value) < 2**63:
        return np.asarray(float(value))  # a Python int beyond int64 (a length)
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


def check_positive(name: str, value: Any) -> None:
    """A finite number > 0 (or an array of them)."""
    check_range(name, value, 0.0, math.inf, low_closed=False, high_closed=False)


def check_learning_rate(name: str, value: Any) -> None:
    """A learning rate: a finite number >= 0, an array of them, or a schedule."""
    check_range(name, value, 0.0, math.inf, high_closed=False, allow_schedule=True)


def check_nonnegative(name: str, value: Any) -> None:
    """A finite number >= 0 (or an array of them)."""
    check_range(name, value, 0.0, math.inf, high_closed=False)


def check_decay(name: str, value: Any) -> None:
    """An exponential-average decay in [0, 1)."""
    check_range(name, value, 0.0, 1.0, high_closed=False)


def check_momentum(name: str, value: Any) -> None:
    """A momentum in [0, 1] (1: a plain sum of the updates, as optax allows)."""
    check_range(name, value, 0.0, 1.0)


def check_less(lo_name: str, lo: Any, hi_name: str, hi: Any, *, strict: bool) -> None:
    """``ValueError`` unless ``lo < hi`` (``lo <= hi`` when not ``strict``)
    where both are concrete."""
    a, b = concrete_values(lo), concrete_values(hi)
    if a is None or b is None or np.all(a < b if strict else a <= b):
        return
    relation = "larger than" if strict else "at least"
    raise ValueError(
        f"{hi_name}={_describe(hi)} is not allowed: it must be {relation} "
        f"{lo_name}={_describe(lo)}."
    )


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def check_int(
    name: str,
    value: Any,
    *,
    minimum: int = 1,
    optional: bool = False,
    traced: bool = False,
) -> None:
    """An integer ``>= minimum``: a Python or NumPy integer or a concrete 0-d
    integer array (``TypeError`` for anything else, booleans included). With
    ``optional``, ``None`` passes; with ``traced``, tracers pass unchecked
    (integer hyper-parameters)."""
    if (optional and value is None) or (traced and isinstance(value, jax.core.Tracer)):
        return
    array = concrete_values(value)
    if (
        isinstance(value, bool)
        or array is None
        or array.shape != ()
        or not np.issubdtype(array.dtype, np.integer)
    ):
        raise TypeError(f"{name} must be an integer, got {value!r}.")
    if int(array) < minimum:
        raise ValueError(
            f"{name}={int(array)!r} is not allowed: it must be an integer >= {minimum}."
        )


INT32_MAX = 2**31 - 1


def check_count(
    name: str, value: Any, *, minimum: int = 1, optional: bool = False
) -> None:
    """An integer in ``[minimum, 2**31 - 1]``: a number of steps, trials,
    pairs or rows that compiled code counts or indexes with in int32 (a larger
    one would wrap or overflow there). Errors as `check_int`'s."""
    if optional and value is None:
        return
    # A Python int may be too large for NumPy: compare it before converting.
    python_int = isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if not (python_int and int(value) > INT32_MAX):
        check_int(name, value, minimum=minimum)
    if int(value if python_int else np.asarray(value)) > INT32_MAX:
        raise ValueError(
            f"{name}={int(value)!r} is not allowed: it must be an integer in "
            f"[{minimum}, {INT32_MAX}] (the compiled loops count in int32)."
        )


def check_axis(name: str, value: Any) -> None:
    """``TypeError`` unless ``value`` is ``None``, an integer or a sequence of
    integers (array axes, negative ones included)."""
    if value is None or _is_int(value):
        return
    if isinstance(value, Sequence) and not isinstance(value, str):
        if all(_is_int(a) for a in value):
            return
    raise TypeError(
        f"{name} must be None, an integer or a tuple of integers, got {value!r}."
    )


def check_bool(name: str, value: Any) -> None:
    """``TypeError`` unless ``value`` is a Python bool (a static switch)."""
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, got {value!r}.")


def check_flag(name: str, value: Any) -> None:
    """``TypeError`` unless ``value`` is a bool, a bool array or a traced bool
    (a switch that may be traced, unlike `check_bool`'s)."""
    if isinstance(value, (bool, np.bool_)):
        return
    if isinstance(value, (np.ndarray, jax.Array)) and value.dtype == np.bool_:
        return
    raise TypeError(f"{name} must be True or False (or a bool array), got {value!r}.")


def check_choice(name: str, value: Any, choices: tuple[Any, ...]) -> None:
    """``ValueError`` unless ``value`` is one of ``choices`` (a setting such as
    a mode name)."""
    if value not in choices:
        allowed = " or ".join(repr(c) for c in choices)
        raise ValueError(f"{name}={value!r} is not allowed: it must be {allowed}.")


def check_callable(name: str, value: Any) -> None:
    """``TypeError`` unless ``value`` is callable."""
    if not callable(value):
        raise TypeError(f"{name} must be callable, got {value!r}.")


def check_dtype(name: str, value: Any, *, kind: Any = jnp.inexact) -> Any:
    """``None``, or a NumPy/JAX dtype of the given kind (floating or complex by
    default) returned canonicalized: ``TypeError`` when ``value`` is not a dtype,
    ``ValueError`` when it is a dtype of another kind."""
    if value is None:
        return None
    try:
        dtype = jax.dtypes.canonicalize_dtype(value)
    except TypeError:
        raise TypeError(f"{name} must be a dtype or None, got {value!r}.") from None
    if not jnp.issubdtype(dtype, kind):
        what = "real floating" if kind is jnp.floating else "floating or complex"
        raise ValueError(
            f"{name}={value!r} is not allowed: it must be None or a {what} dtype "
            "such as jnp.float32."
        )
    return dtype


class _Missing:
    """The type of `MISSING`."""

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()
"""The default of the ``params`` argument of an ``update`` that reads the
parameters: optax's takes it as a required argument, so leaving it out is a
``TypeError`` (`require_params`), while ``params=None`` is a ``ValueError``."""


def require_params(name: str, params: Any) -> None:
    """Errors of an ``update`` of the transform ``name`` that reads the
    parameters, as optax's: ``TypeError`` when ``params`` is left out
    (`MISSING`), ``ValueError`` when it is ``None``."""
    if params is MISSING:
        raise TypeError(
            f"{name}'s update() missing 1 required positional argument: 'params'; "
            "call update(updates, state, params)."
        )
    if params is None:
        raise ValueError(
            f"{name} needs the parameters: call update(updates, state, params)."
        )


def reject_complex(name: str, params: Any, reason: str) -> None:
    """``ValueError`` when a leaf of ``params`` is complex, for the transform
    ``name`` that cannot handle complex numbers (``reason`` says why)."""
    for leaf in jax.tree.leaves(params):
        if jnp.iscomplexobj(leaf):
            raise ValueError(
                f"{name} does not support complex parameters (a leaf of dtype "
                f"{jnp.result_type(leaf).name}, shape {jnp.shape(leaf)}): {reason}."
            )


def require_value(name: str, value: Any) -> Any:
    """The loss ``value`` that the transform ``name`` reads in ``update``;
    ``TypeError`` (a missing argument) when it is ``None``."""
    if value is None:
        raise TypeError(
            f"{name} needs the loss: call update(updates, state, params, value=loss)."
        )
    return value


def check_transform(name: str, value: Any) -> None:
    """``TypeError`` unless ``value`` is an ``optax.GradientTransformation``."""
    if not isinstance(value, optax.GradientTransformation):
        raise TypeError(
            f"{name} must be an optax.GradientTransformation (for example "
            f"jaxopt_lite.adam(1e-3)), got {type(value).__name__}: {value!r}."
        )


def check_prefix(name: str, prefix: PyTree, tree: PyTree, what: str) -> None:
    """``ValueError`` naming ``name`` unless ``prefix``'s structure is a prefix of
    (or equal to) ``tree``'s, showing both structures."""
    try:
        jax.tree.map(lambda _p, _t: None, prefix, tree)
    except (ValueError, TypeError):
        raise ValueError(
            f"{name} does not match the {what}: its tree structure must be the "
            f"{what}' structure or a prefix of it.\n"
            f"  {name} structure: {jax.tree.structure(prefix)}\n"
            f"  {what} structure: {jax.tree.structure(tree)}"
        ) from None


def check_key(name: str, key: Any) -> jax.Array:
    """One typed PRNG key from an integer seed, a typed key, or a raw ``uint32``
    key of shape ``(2,)`` (``jax.random.PRNGKey``); ``None`` means seed 0.
    Traced keys pass; a batch of keys is a ``ValueError``."""
    if key is None:
        return jax.random.key(0)
    if isinstance(key, bool):
        raise TypeError(f"{name} must be an integer seed or a PRNG key, got {key!r}.")
    if isinstance(key, numbers.Integral):
        return jax.random.key(int(key))
    if isinstance(key, (jax.Array, np.ndarray, np.generic)):
        key = jnp.asarray(key)
        dtype = key.dtype
        if jnp.issubdtype(dtype, jax.dtypes.prng_key):
            if key.shape != ():
                raise ValueError(
                    f"{name} must be a single PRNG key, got an array of keys "
                    f"of shape {key.shape}."
                )
            return key
        if jnp.issubdtype(dtype, jnp.integer):
            if key.shape == ():
                return jax.random.key(key)
            if key.shape == (2,) and dtype == jnp.uint32:
                return jax.random.wrap_key_data(key)
            raise ValueError(
                f"{name} must be an integer seed, a typed key (jax.random.key) or "
                f"a raw key of shape (2,), got an integer array of shape {key.shape}."
            )
    raise TypeError(f"{name} must be an integer seed or a PRNG key, got {key!r}.")


def check_weight_decay(name: str, value: Any) -> None:
    """An optimizer's weight-decay rate: a finite number >= 0, an array of them
    or a schedule (`add_decayed_weights` itself also takes negative rates)."""
    check_range(name, value, 0.0, math.inf, high_closed=False, allow_schedule=True)
