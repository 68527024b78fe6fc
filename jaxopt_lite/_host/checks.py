"""Argument checks shared by the drivers (layer 3), run before any tracing."""

from __future__ import annotations

import functools
import inspect
import numbers
import re
import weakref
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxopt_lite._host import programs

PyTree = Any


def _is_array(x: Any) -> bool:
    return isinstance(x, (jax.Array, np.ndarray, np.generic, float, complex))


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
    None: (
        "keep non-trainable values out of it: pass a model state as "
        "fit(..., state=...), or close over it in the loss"
    ),
}


def framework(tree: PyTree) -> str | None:
    """``"flax.nnx"``, ``"equinox"`` or ``"flax.linen"`` when ``tree`` (or a
    node inside it) comes from that library, else ``None``. Recognised from
    the classes' modules, so neither library has to be installed."""
    found: list[str] = []

    def visit(node: Any) -> bool:
        for cls in type(node).__mro__:
            module = cls.__module__ or ""
            if module.startswith("flax.nnx"):
                found.append("flax.nnx")
            elif module.startswith("equinox"):
                found.append("equinox")
            elif module.startswith("flax.core"):  # FrozenDict: linen variables
                found.append("flax.linen")
        return False

    jax.tree_util.tree_flatten(tree, is_leaf=visit)
    if found:
        return found[0]
    if isinstance(tree, dict) and "params" in tree:
        return "flax.linen"
    return None


def advice(tree: PyTree) -> str:
    """How to split ``tree`` into what is trained and what is not, for the
    model library that built it."""
    name = framework(tree)
    if name is None:
        return f"To fix it, {_ADVICE[None]}."
    return f"This looks like a {name} model: {_ADVICE[name]}."


def check_params(name: str, params: PyTree) -> PyTree:
    """Params as a tree of JAX arrays; every leaf must be floating or complex.
    The error for another leaf names the fix for the model library in use."""
    leaves = jax.tree_util.tree_flatten_with_path(params)[0]
    if not leaves:
        raise ValueError(
            f"{name}={params!r} has no array leaves: there is nothing to optimize; "
            "give a pytree of floating-point arrays."
        )
    for path, leaf in leaves:
        where = f"{name}{jax.tree_util.keystr(path)}"
        if isinstance(leaf, bool) or (
            not _is_array(leaf) and not isinstance(leaf, numbers.Number)
        ):
            raise TypeError(
                f"{where} is a {type(leaf).__name__}, not an array: every leaf of "
                f"{name} must be a floating-point array. {advice(params)}"
            )
        if isinstance(leaf, np.ndarray) and not np.issubdtype(leaf.dtype, np.number):
            raise TypeError(
                f"{where} has dtype {leaf.dtype}: every leaf of {name} must be a "
                "floating-point array."
            )
        dtype = jnp.result_type(leaf)
        if not jnp.issubdtype(dtype, jnp.inexact):
            raise TypeError(
                f"{where} has dtype {dtype}: only floating-point or complex arrays "
                f"can be differentiated. {advice(params)}"
            )
    # Strongly typed, so the optimizer state keeps one dtype from step to step.
    return jax.tree.map(_strong, params)


def _strong(x: Any) -> jax.Array:
    if isinstance(x, jax.Array) and not x.weak_type:
        return x
    return jnp.asarray(x, jnp.result_type(x))


def _describe(shape: Any) -> str:
    return f"an array of shape {tuple(shape.shape)} and dtype {shape.dtype}"


def _call(name: str, argnames: Sequence[str]) -> str:
    return f"{name}({', '.join(argnames)})"


@functools.partial(jax.jit, static_argnums=0)
def _apply(static: programs.Static, inputs: list, *args: Any) -> Any:
    return programs.combine(static, inputs)(*args)


def traced(fun: Callable, args: tuple) -> Any:
    """``fun(*args)`` traced abstractly (``jax.jit``'s ``Traced``: its
    ``out_info`` and ``jaxpr``). The function is keyed by its structure, its
    arrays are inputs (`programs.partition`), so ``jax.jit``'s own cache
    reuses the trace for the same function and shapes: a repeated call costs
    no tracing."""
    static, inputs = programs.partition(fun, programs.array_inputs)
    return _apply.trace(static, inputs, *args)


def shapes(fun: Callable, args: tuple) -> Any:
    """``jax.eval_shape(fun, *args)``, from the cached trace (`traced`)."""
    return traced(fun, args).out_info


def check_arity(name: str, fun: Callable, argnames: Sequence[str]) -> bool:
    """Raise ``TypeError`` when ``fun`` cannot be called with ``len(argnames)``
    positional arguments, or cannot be traced by JAX (which keeps weak
    references to the functions it traces). Returns whether the signature could
    be read (builtins and some C functions have none)."""
    try:
        weakref.ref(fun)
    except TypeError:
        raise TypeError(
            f"{name}={fun!r} does not support weak references, which JAX needs "
            "to trace a function (jax.jit refuses it too): add '__weakref__' to "
            "its class's __slots__, or pass a function that calls it."
        ) from None
    try:
        signature = inspect.signature(fun)
    except (TypeError, ValueError):
        return False
    try:
        signature.bind(*argnames)
    except TypeError as error:
        raise TypeError(
            f"{name} is called as {_call(name, argnames)}, but its signature is "
            f"{signature} ({error}). Give a function of {len(argnames)} positional "
            "argument(s); bind any others first, e.g. with functools.partial."
        ) from None
    return True


_ARITY_ERROR = re.compile(r"positional argument|required argument|takes \d+ ")


def check_scalar_output(
    name: str,
    fun: Callable,
    args: tuple,
    *,
    has_aux: bool,
    argnames: Sequence[str],
) -> Any:
    """Trace ``fun(*args)`` abstractly; it must accept ``len(argnames)``
    positional arguments and return a real JAX scalar (with ``has_aux``, a pair
    ``(scalar, aux)``). Returns the abstract aux."""
    signed = check_arity(name, fun, argnames)
    try:
        out = shapes(fun, args)
    except TypeError as error:
        if not signed and _ARITY_ERROR.search(str(error)):
            raise TypeError(
                f"{name} is called as {_call(name, argnames)} but the call failed: "
                f"{error}. Give a function of {len(argnames)} positional "
                "argument(s)."
            ) from error
        if "not a valid JAX type" in str(error):
            raise TypeError(
                f"{name} returned a value that is not an array ({error}); every "
                "output, the aux of has_aux=True included, must be JAX arrays or "
                "numbers."
            ) from None
        raise
    loss = out[0] if has_aux and isinstance(out, tuple) and len(out) == 2 else out
    inputs_weak = any(getattr(x, "weak_type", False) for x in jax.tree.leaves(args))
    if getattr(loss, "weak_type", False) and not inputs_weak:
        # Only Python scalars are weakly typed, and the inputs are not: the
        # output depends on none of them (the loop would fail on a float).
        raise TypeError(
            f"{name} returned a constant, such as a Python number (a weakly "
            f"typed {getattr(loss, 'dtype', '')} scalar: built from Python numbers "
            f"only, it has no gradient with respect to {argnames[0]}). Compute it "
            f"from {argnames[0]} with jax.numpy operations."
        )
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


def _data_dtype(where: str, leaf: Any) -> None:
    """Raise ``TypeError`` unless ``leaf`` is a numeric (or bool, or PRNG key)
    array or number: strings, objects and ragged nested lists cannot go to
    the device."""
    if isinstance(leaf, (str, bytes)):
        raise TypeError(
            f"{where} is the {type(leaf).__name__} {leaf!r}: data leaves must be "
            "numeric arrays (bool, integer, floating or complex)."
        )
    dtype = getattr(leaf, "dtype", None)
    if dtype is None:
        try:
            dtype = np.asarray(leaf).dtype
        except (TypeError, ValueError) as error:  # ragged sequences, for one
            raise TypeError(
                f"{where} is a {type(leaf).__name__} that is not an array ({error}); "
                "data leaves must be numeric arrays."
            ) from None
    if jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key):
        return
    if not (np.dtype(dtype) == np.bool_ or jnp.issubdtype(dtype, np.number)):
        raise TypeError(
            f"{where} has dtype {dtype}, which cannot go to the device: data leaves "
            "must be numeric arrays (bool, integer, floating or complex). Encode "
            "strings or objects as numbers first (ragged lists: pad them to one "
            "length)."
        )


def check_data(name: str, data: PyTree) -> PyTree:
    """Check the leaves' dtypes and convert them to JAX arrays."""
    for path, leaf in jax.tree_util.tree_flatten_with_path(data)[0]:
        _data_dtype(f"{name}{jax.tree_util.keystr(path)}", leaf)
    return jax.tree.map(jnp.asarray, data)


def leading_size(name: str, data: PyTree) -> int:
    """The shared leading (examples) size of the leaves of ``data``, after
    checking that they are numeric arrays."""
    leaves = jax.tree_util.tree_flatten_with_path(data)[0]
    if not leaves:
        raise ValueError(
            f"{name}={data!r} has no arrays: give a pytree of arrays sharing a "
            "leading (examples) axis, or None."
        )
    sizes = {}
    for path, leaf in leaves:
        where = f"{name}{jax.tree_util.keystr(path)}"
        _data_dtype(where, leaf)
        shape = np.shape(leaf)
        if not shape:
            lists = [
                i
                for i, k in enumerate(path)
                if isinstance(k, jax.tree_util.SequenceKey)
            ]
            prefix = path[: lists[0]] if lists else None
            if prefix is not None and all(
                np.shape(other) == ()
                for p, other in leaves
                if p[: len(prefix)] == prefix
            ):
                outer = f"{name}{jax.tree_util.keystr(prefix)}"
                raise ValueError(
                    f"{outer} is a (nested) Python list or tuple of numbers, which "
                    f"JAX treats as a container of scalars ({where}={leaf!r}): pass "
                    f"it as an array, np.asarray({outer}), with rows of one length."
                )
            raise ValueError(
                f"{where}={leaf!r} is a scalar: every leaf of {name} needs a "
                "leading (examples) axis."
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
