"""Checks of a model's pieces for `fit` and `sweep`: the model state, and the
``loss_fn`` signature in each of its calling conventions."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxopt_lite._host import checks, run_checks

PyTree = Any


def check_state(state: PyTree) -> PyTree:
    """The model state as JAX arrays (any dtype: it is never differentiated)."""
    for path, leaf in jax.tree_util.tree_flatten_with_path(state)[0]:
        if not isinstance(leaf, (jax.Array, np.ndarray, np.generic, int, float)):
            raise TypeError(
                f"state{jax.tree_util.keystr(path)} is a {type(leaf).__name__}, "
                "not an array: the model state must be a pytree of arrays."
            )
    return jax.tree.map(lambda x: jnp.asarray(x, jnp.result_type(x)), state)


def _same_structure(state: PyTree, new: PyTree) -> bool:
    a, b = jax.tree.structure(state), jax.tree.structure(new)
    if a != b:
        return False
    return all(
        np.shape(x) == np.shape(y) and jnp.result_type(x) == jnp.result_type(y)
        for x, y in zip(jax.tree.leaves(state), jax.tree.leaves(new), strict=True)
    )


def loss_arguments(
    params: PyTree, model_state: PyTree, data: PyTree, batch_size: int, key: Any
) -> tuple[tuple, tuple[str, ...]]:
    """The (abstract) arguments `fit` gives ``loss_fn``, and their names."""
    sample = (
        None
        if data is None
        else jax.tree.map(
            lambda x: jax.ShapeDtypeStruct((batch_size, *x.shape[1:]), x.dtype), data
        )
    )
    has_state = model_state is not None
    args: tuple = (params, model_state, sample) if has_state else (params, sample)
    names: tuple = ("params", "state", "batch") if has_state else ("params", "batch")
    if key is not None:
        args, names = (*args, key), (*names, "key")
    return args, names


CONVOLUTION = "conv_general_dilated"


def _has_primitive(jaxpr: Any, name: str) -> bool:
    """Whether ``jaxpr`` (or a jaxpr inside one of its equations: a call, a
    loop body, a branch) applies the primitive ``name``."""
    for eqn in jaxpr.eqns:
        if eqn.primitive.name == name:
            return True
        for value in eqn.params.values():
            for inner in value if isinstance(value, (tuple, list)) else (value,):
                inner = getattr(inner, "jaxpr", inner)  # a ClosedJaxpr's jaxpr
                if hasattr(inner, "eqns") and _has_primitive(inner, name):
                    return True
    return False


def convolves(loss_fn: Any, args: tuple) -> bool:
    """Whether ``loss_fn(*args)`` computes a convolution (its program, traced
    abstractly: JAX caches the trace per function and shapes)."""
    return _has_primitive(checks.traced(loss_fn, args).jaxpr.jaxpr, CONVOLUTION)


def check_loss(
    loss_fn: Any,
    params: PyTree,
    model_state: PyTree,
    data: PyTree,
    batch_size: int,
    key: jax.Array | None,
    *,
    has_aux: bool,
) -> Sequence[str]:
    """Trace ``loss_fn`` abstractly with the arguments `fit` will give it and
    check what it returns; returns the aux metrics' names."""
    args, names = loss_arguments(params, model_state, data, batch_size, key)
    has_state = model_state is not None
    if not has_state:
        aux = checks.check_scalar_output(
            "loss_fn", loss_fn, args, has_aux=has_aux, argnames=names
        )
    else:
        shape = "(loss, (new_state, aux))" if has_aux else "(loss, new_state)"
        checks.check_arity("loss_fn", loss_fn, names)
        out = checks.shapes(loss_fn, args)
        if not (isinstance(out, tuple) and len(out) == 2):
            raise TypeError(
                f"with state=, loss_fn(params, state, batch) must return {shape}; "
                f"it returned {out!r}."
            )
        rest = checks.check_scalar_output(
            "loss_fn", loss_fn, args, has_aux=True, argnames=names
        )
        aux = None
        if has_aux:
            if not (isinstance(rest, tuple) and len(rest) == 2):
                raise TypeError(
                    f"with state= and has_aux=True, loss_fn must return {shape}; "
                    f"its second output is {rest!r}."
                )
            rest, aux = rest
        if not _same_structure(model_state, rest):
            raise TypeError(
                f"with state=, loss_fn must return {shape} where new_state has "
                f"the structure, shapes and dtypes of state; got {rest!r} for "
                f"{jax.eval_shape(lambda: model_state)!r}."
            )
    if not has_aux:
        return ()
    run_checks.check_metric_keys("loss_fn's aux", aux)
    if not (
        isinstance(aux, dict)
        and all(getattr(a, "shape", None) == () for a in aux.values())
    ):
        raise TypeError(
            f"with has_aux=True, loss_fn's aux must be a dict of scalars; got {aux!r}."
        )
    return tuple(aux)
