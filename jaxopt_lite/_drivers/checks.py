"""Argument checks shared by the drivers (layer 3), run before any tracing."""

from __future__ import annotations

import numbers
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxopt_lite._core import validate as v

PyTree = Any


def _is_array(x: Any) -> bool:
    return isinstance(x, (jax.Array, np.ndarray, np.generic, float, complex))


def check_params(name: str, params: PyTree) -> PyTree:
    """Params as a tree of JAX arrays; every leaf must be floating or complex."""
    leaves = jax.tree_util.tree_flatten_with_path(params)[0]
    if not leaves:
        raise ValueError(f"{name} has no array leaves: there is nothing to optimize.")
    for path, leaf in leaves:
        where = f"{name}{jax.tree_util.keystr(path)}"
        if isinstance(leaf, bool) or (
            not _is_array(leaf) and not isinstance(leaf, numbers.Number)
        ):
            raise TypeError(
                f"{where} is a {type(leaf).__name__}, not an array: every leaf of "
                f"{name} must be a floating-point array."
            )
        dtype = jnp.result_type(leaf)
        if not jnp.issubdtype(dtype, jnp.inexact):
            raise TypeError(
                f"{where} has dtype {dtype}: only floating-point or complex arrays "
                f"can be differentiated. Keep integer state out of {name} (close "
                "over it, or split it off with equinox.partition)."
            )
    # Strongly typed, so the optimizer state keeps one dtype from step to step.
    return jax.tree.map(lambda x: jnp.asarray(x, jnp.result_type(x)), params)


def _describe(shape: Any) -> str:
    return f"an array of shape {tuple(shape.shape)} and dtype {shape.dtype}"


def check_scalar_output(name: str, fun: Callable, args: tuple, *, has_aux: bool) -> Any:
    """Trace ``fun(*args)`` abstractly; it must return a real scalar (and, with
    ``has_aux``, a pair ``(scalar, aux)``). Returns the abstract aux."""
    out = jax.eval_shape(fun, *args)
    aux = None
    if has_aux:
        if not (isinstance(out, tuple) and len(out) == 2):
            raise TypeError(
                f"{name} was called with has_aux=True, so it must return a pair "
                f"(loss, aux); it returned {out!r}."
            )
        out, aux = out
    if not isinstance(out, jax.ShapeDtypeStruct):
        raise TypeError(f"{name} must return a scalar loss, got {out!r}.")
    if out.shape != () or not jnp.issubdtype(out.dtype, jnp.floating):
        hint = " (did you forget has_aux=True?)" if isinstance(out, tuple) else ""
        raise TypeError(
            f"{name} must return a real floating-point scalar, but it returned "
            f"{_describe(out)}{hint}. Reduce it, e.g. with jnp.mean."
        )
    return aux


def leading_size(name: str, data: PyTree) -> int:
    """The shared leading (examples) size of the leaves of ``data``."""
    leaves = jax.tree_util.tree_flatten_with_path(data)[0]
    if not leaves:
        raise ValueError(f"{name} has no arrays: give a pytree of arrays.")
    sizes = {}
    for path, leaf in leaves:
        shape = np.shape(leaf)
        if not shape:
            raise ValueError(
                f"{name}{jax.tree_util.keystr(path)} is a scalar: every leaf of "
                f"{name} needs a leading (examples) axis."
            )
        sizes[jax.tree_util.keystr(path)] = shape[0]
    if len(set(sizes.values())) > 1:
        detail = ", ".join(f"{name}{p}: {n}" for p, n in sizes.items())
        raise ValueError(
            f"the leaves of {name} must share their leading (examples) size; "
            f"got {detail}."
        )
    n = next(iter(sizes.values()))
    if n == 0:
        raise ValueError(f"{name} is empty (0 examples).")
    return n


class RunLength(NamedTuple):
    """How a minibatch run is laid out, from `run_length`."""

    data: PyTree  # as JAX arrays (None without data)
    num_examples: int
    batch_size: int
    steps_per_epoch: int
    total_steps: int


def run_length(
    data: PyTree, batch_size: Any, steps: Any, epochs: Any, log_every: Any
) -> RunLength:
    """Check ``data``, ``batch_size``, ``steps``/``epochs`` and ``log_every``
    together, as `fit` and `sweep` take them."""
    if data is None:
        num_examples = 1
        if batch_size not in (None, 1):
            raise ValueError(f"batch_size={batch_size!r} needs data; data is None.")
        batch_size = 1
    else:
        num_examples = leading_size("data", data)
        data = jax.tree.map(jnp.asarray, data)
        v.check_int("batch_size", batch_size, optional=True)
        if batch_size is None:
            batch_size = num_examples
        elif batch_size > num_examples:
            raise ValueError(
                f"batch_size={batch_size} is larger than the {num_examples} "
                "examples in data."
            )
    steps_per_epoch = num_examples // batch_size
    if (steps is None) == (epochs is None):
        raise ValueError(
            "give exactly one of steps and epochs "
            f"(got steps={steps!r}, epochs={epochs!r})."
        )
    v.check_int("steps", steps, optional=True)
    v.check_int("epochs", epochs, optional=True)
    total_steps = steps if steps is not None else epochs * steps_per_epoch
    v.check_int("log_every", log_every)
    return RunLength(data, num_examples, batch_size, steps_per_epoch, total_steps)


def check_loss_fn(
    loss_fn: Callable, params: PyTree, data: PyTree, batch_size: int, *, has_aux: bool
) -> None:
    """Trace ``loss_fn(params, batch)`` abstractly on a batch of ``batch_size``
    examples: a real scalar loss, and with ``has_aux`` a dict of scalars."""
    sample = (
        None
        if data is None
        else jax.tree.map(
            lambda x: jax.ShapeDtypeStruct((batch_size, *x.shape[1:]), x.dtype), data
        )
    )
    aux = check_scalar_output("loss_fn", loss_fn, (params, sample), has_aux=has_aux)
    if has_aux and not (
        isinstance(aux, dict)
        and all(getattr(a, "shape", None) == () for a in aux.values())
    ):
        raise TypeError(
            f"with has_aux=True, loss_fn's aux must be a dict of scalars; got {aux!r}."
        )
