"""`sweep`'s checks of its table of configurations, builder, initializer and
data, and the error for a builder that needs concrete values."""

from __future__ import annotations

import inspect
import itertools
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxopt_lite._host import checks

PyTree = Any

# What JAX raises when Python asks a traced value for its concrete value.
TRACE_ERRORS = (
    jax.errors.ConcretizationTypeError,
    jax.errors.TracerIntegerConversionError,
    jax.errors.TracerArrayConversionError,
)


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
        _check_int32(name, array)
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


def _check_int32(name: str, array: np.ndarray) -> None:
    """Swept integers are traced in JAX's default integer type (int32 unless
    x64 is enabled): refuse values it cannot hold instead of overflowing."""
    if not np.issubdtype(array.dtype, np.integer):
        return
    limits = np.iinfo(jax.dtypes.canonicalize_dtype(np.int64))
    outside = array[(array < limits.min) | (array > limits.max)]
    if outside.size:
        raise ValueError(
            f"hyperparams[{name!r}] holds {outside[0]}, outside the range of "
            f"{limits.dtype} ([{limits.min}, {limits.max}]) in which swept integers "
            "are traced; enable x64 (jax.config.update('jax_enable_x64', True)) "
            "or sweep smaller values."
        )


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
    """Abstract parameters of ``init(key)``; it must take the key, and every
    leaf must be inexact."""
    checks.check_arity("params", init, ("key",))
    shapes = checks.shapes(init, (key,))
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


def traced_value_error(
    make_optimizer: Callable,
    table: dict[str, np.ndarray],
    params: PyTree,
    error: Exception,
) -> Exception:
    """The error to raise when tracing the sweep raised one of `TRACE_ERRORS`:
    a ``TypeError`` naming ``make_optimizer`` and the hyper-parameter(s) it
    needs the concrete value of, or ``error`` itself when no hyper-parameter
    alone causes it."""
    config = {name: values[0].item() for name, values in table.items()}

    def needs_value(name: str) -> bool:
        def trial(value, params):
            optimizer = optax.with_extra_args_support(
                make_optimizer(**{**config, name: value})
            )
            state = optimizer.init(params)
            return optimizer.update(params, state, params, value=jnp.zeros(()))

        try:
            jax.eval_shape(trial, jnp.asarray(config[name]), params)
        except TRACE_ERRORS:
            return True
        except Exception:  # another failure: not this hyper-parameter's doing
            return False
        return False

    names = [name for name in table if needs_value(name)]
    if not names:
        return error
    return TypeError(
        f"make_optimizer needs the value of the hyper-parameter"
        f"{'s' * (len(names) > 1)} {', '.join(map(repr, names))} in Python (it "
        f"branches on it with if/and/or, or converts it with float()/int(); JAX "
        f"raised {type(error).__name__}). sweep passes the hyper-parameters as "
        "traced values so that every configuration runs in one compiled program: "
        "write the choice with jnp.where (e.g. jnp.where(lr > 0.05, a, b)), or "
        "run one sweep per branch (e.g. one per optimizer)."
    )
