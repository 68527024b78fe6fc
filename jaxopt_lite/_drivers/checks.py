"""Argument checks shared by the drivers (layer 3), run before any tracing."""

from __future__ import annotations

import inspect
import math
import numbers
import re
import weakref
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxopt_lite._core import validate as v
from jaxopt_lite._loop import history as _history

PyTree = Any


def _is_array(x: Any) -> bool:
    return isinstance(x, (jax.Array, np.ndarray, np.generic, float, complex))


def _framework(tree: PyTree) -> str | None:
    """Which model library built ``tree``, judged from the classes of its nodes
    and leaves (found by module name, so neither library has to be installed):
    ``"nnx"``, ``"equinox"``, ``"linen"`` or ``None``."""
    modules: set[str] = set()

    def visit(node: Any) -> bool:
        modules.update(c.__module__ for c in type(node).__mro__)
        return False

    jax.tree_util.tree_leaves(tree, is_leaf=visit)
    if any(m.startswith("flax.nnx") for m in modules):
        return "nnx"
    if any(m == "equinox" or m.startswith("equinox.") for m in modules):
        return "equinox"
    if any(m.startswith("flax.core") for m in modules):
        return "linen"
    return None


_SPLIT_HINT = {
    "nnx": (
        "This looks like a flax.nnx model or state: pass only its parameters, "
        "e.g. graphdef, params, rest = nnx.split(model, nnx.Param, ...), and "
        "rebuild the model inside the loss with nnx.merge(graphdef, params, rest)."
    ),
    "equinox": (
        "This looks like an equinox Module: pass only its arrays, e.g. "
        "params, static = eqx.partition(model, eqx.is_inexact_array), and "
        "rebuild it inside the loss with eqx.combine(params, static)."
    ),
    "linen": (
        "This looks like flax linen variables: pass variables['params'] and "
        "close over the other collections (batch_stats, ...) in the loss."
    ),
    None: (
        "Keep non-trainable state out of it: close over it in the loss, or "
        "split it off (nnx.split(model, nnx.Param, ...) for flax.nnx, "
        "eqx.partition(model, eqx.is_inexact_array) for equinox)."
    ),
}


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
                f"{name} must be a floating-point array. "
                f"{_SPLIT_HINT[_framework(params)]}"
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
                f"can be differentiated. {_SPLIT_HINT[_framework(params)]}"
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
    try:  # eval_shape caches the trace: calling again retraces nothing
        out = jax.eval_shape(fun, *args)
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


class RunLength(NamedTuple):
    """How a minibatch run is laid out, from `run_length`."""

    data: PyTree  # as JAX arrays (None without data)
    num_examples: int
    batch_size: int
    steps_per_epoch: int
    total_steps: int


def run_length(
    data: PyTree,
    batch_size: Any,
    steps: Any,
    epochs: Any,
    log_every: Any,
    parts: Callable[[int], int] = lambda n: 1,
) -> RunLength:
    """Check ``data``, ``batch_size``, ``steps``/``epochs`` and ``log_every``
    together, as `fit` and `sweep` take them. ``parts(n)``: how many equal
    parts of ``n`` examples the data has (one per process of a multi-process
    run, each holding its own)."""
    if data is None:
        num_examples = 1
        if batch_size not in (None, 1):
            raise ValueError(f"batch_size={batch_size!r} needs data; data is None.")
        batch_size = 1
    else:
        num_examples = leading_size("data", data)
        num_examples *= parts(num_examples)
        data = check_data("data", data)
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
    check_count("steps", steps, optional=True)
    check_count("epochs", epochs, optional=True)
    total_steps = steps if steps is not None else epochs * steps_per_epoch
    if total_steps > INT32_MAX:
        raise ValueError(
            f"epochs={epochs} makes {total_steps} steps ({steps_per_epoch} per "
            f"epoch), more than the {INT32_MAX} a run can count."
        )
    check_count("log_every", log_every)
    return RunLength(data, num_examples, batch_size, steps_per_epoch, total_steps)


def check_eval_fn(
    eval_fn: Callable,
    args: tuple,
    eval_data: PyTree,
    argnames: Sequence[str] = ("params", "eval_data"),
) -> tuple[PyTree, list[str]]:
    """Check ``eval_data`` (converted to JAX arrays) and trace
    ``eval_fn(*args, eval_data)`` abstractly: it must take ``argnames`` and
    return a scalar or a dict of scalars. Returns ``(eval_data, history names
    of the metrics)``."""
    if eval_data is not None:
        eval_data = check_data("eval_data", eval_data)
    check_arity("eval_fn", eval_fn, argnames)
    out = jax.eval_shape(eval_fn, *args, eval_data)
    check_metric_keys("eval_fn's", out)
    shapes = _history.eval_names(out)
    if not all(
        isinstance(s, jax.ShapeDtypeStruct) and s.shape == () for s in shapes.values()
    ):
        raise TypeError(
            f"eval_fn must return a scalar or a dict of scalars; it returned "
            f"{shapes!r}."
        )
    return eval_data, list(shapes)


def check_early_stopping(early_stopping: Any) -> None:
    """Check the fields of an ``EarlyStopping`` (its type is checked by `fit`)."""
    v.check_int("early_stopping.patience", early_stopping.patience)
    delta = early_stopping.min_delta
    if isinstance(delta, bool) or not isinstance(delta, numbers.Real):
        raise TypeError(f"early_stopping.min_delta must be a number, got {delta!r}.")
    if not (math.isfinite(float(delta)) and float(delta) >= 0):
        raise ValueError(
            f"early_stopping.min_delta={delta!r} is not allowed: it must be a "
            "finite number >= 0."
        )
    if not isinstance(early_stopping.monitor, str) or not early_stopping.monitor:
        raise TypeError(
            "early_stopping.monitor must be 'loss' or the name of an eval_fn "
            f"metric (a str), got {early_stopping.monitor!r}."
        )
    if early_stopping.mode not in ("min", "max"):
        raise ValueError(
            f"early_stopping.mode={early_stopping.mode!r}: use 'min' or 'max'."
        )
    v.check_bool("early_stopping.restore_best", early_stopping.restore_best)


INT32_MAX = 2**31 - 1  # steps are counted in int32 inside the loops


def check_count(name: str, value: Any, *, optional: bool = False) -> None:
    """An integer >= 1 that the compiled loops can count (int32)."""
    v.check_int(name, value, optional=optional)
    if value is not None and value > INT32_MAX:
        raise ValueError(
            f"{name}={value} is not allowed: it must be at most {INT32_MAX} (the "
            "compiled loops count in int32)."
        )


BUILT_IN_COLUMNS = (
    "step",
    "loss",
    "grad_norm",
    "skipped",
    "learning_rate",
    "eval_step",
)


def check_metric_keys(name: str, metrics: Any) -> None:
    """A dict of metrics (aux or eval) must have string keys: they name
    history columns."""
    if isinstance(metrics, dict):
        bad = [k for k in metrics if not isinstance(k, str)]
        if bad:
            raise TypeError(f"{name} metric names must be strings; got {bad!r}.")


def check_metric_names(aux_names: Sequence[str], eval_names: Sequence[str]) -> None:
    """Aux metrics (``has_aux``) and eval metrics (recorded as
    ``eval_<name>``) become history columns: no name may clash with another
    column."""
    clash = sorted(set(aux_names) & {*BUILT_IN_COLUMNS, *eval_names})
    if clash:
        raise ValueError(
            f"loss_fn's aux metrics {clash} would overwrite history columns of "
            f"the same names (the history has {', '.join(BUILT_IN_COLUMNS)} and "
            "the eval_fn metrics as eval_<name>); rename them."
        )
    clash = sorted(set(eval_names) & set(BUILT_IN_COLUMNS))
    if clash:
        raise ValueError(
            f"eval_fn's metrics {[c.removeprefix('eval_') for c in clash]} would "
            f"be recorded as {clash}, a column the history has already; rename "
            "them."
        )
