"""Checks of a model's pieces for `fit` (layer 3): trainable parameters, the
model state, and the ``loss_fn`` signature, with framework-specific advice.

The advice names the framework the user is working with (flax.nnx, equinox,
flax.linen), recognised from the types in the tree, never by importing it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxopt_lite._drivers import checks as _checks
from jaxopt_lite._drivers import run_checks as _settings

PyTree = Any

_ADVICE = {
    "flax.nnx": (
        "split the model with `graphdef, params, state = nnx.split(model, "
        "nnx.Param, ...)`, train `params` and pass the rest as "
        "fit(..., state=state); rebuild it with nnx.merge(graphdef, params, "
        "state) inside loss_fn"
    ),
    "equinox": (
        "split the model with `params, static = eqx.partition(model, "
        "eqx.is_inexact_array)` and rebuild it with eqx.combine(params, static) "
        "inside loss_fn; a model with state (eqx.nn.make_with_state) passes it "
        "as fit(..., state=state)"
    ),
    "flax.linen": (
        "pass variables['params'] as params and the other collections (e.g. "
        "{'batch_stats': ...}) as fit(..., state=...)"
    ),
}


def framework(tree: PyTree) -> str | None:
    """``"flax.nnx"``, ``"equinox"`` or ``"flax.linen"`` when ``tree`` (or a
    node inside it) comes from that library, else ``None``."""
    found: list[str] = []

    def visit(node: Any) -> bool:
        for cls in type(node).__mro__:
            module = cls.__module__ or ""
            if module.startswith("flax.nnx"):
                found.append("flax.nnx")
            elif module.startswith("equinox"):
                found.append("equinox")
        return False

    jax.tree_util.tree_flatten(tree, is_leaf=visit)
    if found:
        return found[0]
    if isinstance(tree, dict) and "params" in tree:
        return "flax.linen"
    return None


def check_trainable(params: PyTree) -> None:
    """Every leaf of ``params`` must be a floating-point (or complex) array;
    the error for another leaf says how to split it off in the user's
    framework."""
    name = framework(params)
    if name is None:
        return  # the generic check (checks.check_params) explains
    for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]:
        dtype = getattr(leaf, "dtype", None)
        if isinstance(leaf, float) or (
            dtype is not None and jnp.issubdtype(dtype, jnp.inexact)
        ):
            continue
        where = f"params{jax.tree_util.keystr(path)}"
        what = f"has dtype {dtype}" if dtype is not None else "is not an array"
        raise TypeError(
            f"{where} {what}: only floating-point arrays can be trained. This "
            f"looks like a {name} model: {_ADVICE[name]}."
        )


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
    if not has_state:
        aux = _checks.check_scalar_output(
            "loss_fn", loss_fn, args, has_aux=has_aux, argnames=names
        )
    else:
        shape = "(loss, (new_state, aux))" if has_aux else "(loss, new_state)"
        _checks.check_arity("loss_fn", loss_fn, names)
        out = jax.eval_shape(loss_fn, *args)
        if not (isinstance(out, tuple) and len(out) == 2):
            raise TypeError(
                f"with state=, loss_fn(params, state, batch) must return {shape}; "
                f"it returned {out!r}."
            )
        rest = _checks.check_scalar_output(
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
    _settings.check_metric_keys("loss_fn's aux", aux)
    if not (
        isinstance(aux, dict)
        and all(getattr(a, "shape", None) == () for a in aux.values())
    ):
        raise TypeError(
            f"with has_aux=True, loss_fn's aux must be a dict of scalars; got {aux!r}."
        )
    return tuple(aux)
