"""`sweep`'s checks of its table of configurations, builder and initializer."""

from __future__ import annotations

import inspect
import itertools
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

PyTree = Any


def configurations(hyperparams: Any, grid: bool) -> dict[str, np.ndarray]:
    """The configuration table: the Cartesian product (grid) or zip of the
    value lists."""
    if not isinstance(hyperparams, Mapping):
        raise TypeError(
            "hyperparams must be a dict mapping make_optimizer's argument names to "
            f"1-D lists or arrays of values, got {type(hyperparams).__name__}."
        )
    if not hyperparams:
        raise ValueError("hyperparams is empty: give at least one name -> values.")
    values = {}
    for name, given in hyperparams.items():
        if not isinstance(name, str):
            raise TypeError(f"hyperparams names must be strings, got {name!r}.")
        array = np.asarray(given)
        if array.ndim != 1 or array.size == 0:
            raise ValueError(
                f"hyperparams[{name!r}] must be a non-empty 1-D list or array of "
                f"values, got shape {array.shape}."
            )
        if array.dtype == bool or not (
            np.issubdtype(array.dtype, np.integer)
            or np.issubdtype(array.dtype, np.floating)
        ):
            raise TypeError(
                f"hyperparams[{name!r}] must hold real numbers, "
                f"got dtype {array.dtype}."
            )
        values[name] = array
    if grid:
        product = list(itertools.product(*(range(len(v)) for v in values.values())))
        index = np.array(product, dtype=np.int64).reshape(len(product), len(values))
        return {n: v[index[:, j]] for j, (n, v) in enumerate(values.items())}
    lengths = {n: len(v) for n, v in values.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError(
            f"with grid=False the hyperparams lists are zipped and must have equal "
            f"lengths; got {lengths}."
        )
    return values


def check_make_optimizer(
    make_optimizer: Callable, table: dict[str, np.ndarray]
) -> list[optax.GradientTransformation]:
    """The names must fit ``make_optimizer``'s signature, and every
    configuration must build an optimizer (which runs its own checks on the
    concrete values)."""
    try:
        signature = inspect.signature(make_optimizer)
    except (TypeError, ValueError):  # builtins without a signature
        signature = None
    if signature is not None:
        try:
            signature.bind(**dict.fromkeys(table))
        except TypeError as error:
            raise ValueError(
                f"hyperparams names {list(table)} do not fit "
                f"make_optimizer{signature}: {error}. Each name must be a "
                "keyword argument of make_optimizer, and every argument without "
                "a default must be swept."
            ) from None
    optimizers = []
    for i in range(len(next(iter(table.values())))):
        config = {name: values[i].item() for name, values in table.items()}
        optimizer = make_optimizer(**config)
        if not isinstance(optimizer, optax.GradientTransformation):
            raise TypeError(
                f"make_optimizer(**{config}) returned {type(optimizer).__name__}; "
                "it must return an optax.GradientTransformation."
            )
        optimizers.append(optimizer)
    return optimizers


def check_init(init: Callable, key: jax.Array) -> PyTree:
    """Abstract parameters of ``init(key)``; every leaf must be inexact."""
    shapes = jax.eval_shape(init, key)
    leaves = jax.tree_util.tree_flatten_with_path(shapes)[0]
    if not leaves:
        raise ValueError(
            "params(key) has no array leaves: there is nothing to optimize."
        )
    for path, leaf in leaves:
        if not jnp.issubdtype(leaf.dtype, jnp.inexact):
            raise TypeError(
                f"params(key){jax.tree_util.keystr(path)} has dtype {leaf.dtype}: "
                "only floating-point or complex arrays can be trained."
            )
    return shapes
