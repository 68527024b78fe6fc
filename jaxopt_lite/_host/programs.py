"""Program reuse from JAX's own machinery: structure is the key, numbers are
inputs.

A driver's compiled program depends on the user's callables (a `Loss`, an
`Eval`, ``fun``), the optimizer and static settings. `partition` flattens
them with ``jax.tree_util`` into a hashable `Static` (the tree structure and
every leaf that is not an input) and the list of inputs; `combine` puts them
back together inside the program. The programs are module-level
``jax.jit`` functions that take the `Static` as a static argument, so
``jax.jit``'s own cache decides reuse; there is no cache here.

What is an input:

* optimizers, transforms and schedules of this package are flattened through
  their recipes (`recipe.as_tree`): their numbers are inputs, so a new
  learning rate, momentum or clipping threshold reuses the program
  (`optimizer_inputs`);
* user callables: only their array leaves (the arrays of an
  ``equinox.Module``), never Python numbers, which the user's code may need
  as Python values (`array_inputs`).

Leaves that are not inputs are compared by value when they can be hashed
and by identity otherwise; callables (functions, bound methods, foreign
transforms' ``init``/``update``) always by identity through a weak
reference, so a new bound method ``m.f`` (after ``m.c = 5.0``) never reuses
a program traced for another object, and a dead object's reused ``id``
never matches.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import numpy as np

from jaxopt_lite._core import recipe

PyTree = Any


class _ByEquality:
    """A tree structure compared with ``==`` (its static fields by value),
    hashed by value when it can be, else by a coarse fallback."""

    __slots__ = ("_hash", "value")

    def __init__(self, value: Any):
        self.value = value
        try:
            self._hash = hash(value)
        except TypeError:  # unhashable static fields (of a pytree-callable)
            self._hash = hash(value.num_leaves)

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, _ByEquality):
            return NotImplemented
        try:
            return bool(self.value == other.value)
        except Exception:  # static fields that cannot be compared
            return self.value is other.value


class Static(NamedTuple):
    """The hashable part of a partitioned pytree: its structure and the leaves
    that are not inputs (``None`` where an input goes)."""

    treedef: _ByEquality
    leaves: tuple


def _is_flag(x: Any) -> bool:
    """Booleans (and boolean arrays: masks) are settings, kept by value."""
    return isinstance(x, (bool, np.bool_)) or (
        isinstance(x, (np.ndarray, jax.Array)) and x.dtype == np.bool_
    )


def array_inputs(x: Any) -> bool:
    """The inputs of a user callable: its (non-boolean) arrays."""
    return isinstance(x, (jax.Array, np.ndarray)) and not _is_flag(x)


def optimizer_inputs(x: Any) -> bool:
    """The inputs of a recipe tree: every number and (non-boolean) array."""
    if _is_flag(x):
        return False
    if isinstance(x, (int, np.integer)) and not -(2**31) <= int(x) < 2**31:
        return False  # a setting: no int32 argument holds it (decay_steps=10**10)
    return isinstance(x, (int, float, complex, np.generic, np.ndarray, jax.Array))


def _static_leaf(x: Any) -> Any:
    if _is_flag(x) and not isinstance(x, bool):
        array = np.asarray(x)
        return ("bool-array", array.shape, array.tobytes())
    return (type(x), recipe.hashable(x))


def _leaf(key: Any) -> Any:
    if key[0] == "bool-array":
        return np.frombuffer(key[2], np.bool_).reshape(key[1])
    value = key[1]
    return value.get() if isinstance(value, recipe.Identity) else value


def partition(tree: PyTree, is_input: Callable[[Any], bool]) -> tuple[Static, list]:
    """``(static, inputs)`` of ``tree``: `combine` inverts it."""
    leaves, treedef = jax.tree_util.tree_flatten(tree)
    inputs = [x for x in leaves if is_input(x)]
    static = tuple(None if is_input(x) else _static_leaf(x) for x in leaves)
    return Static(_ByEquality(treedef), static), inputs


def combine(static: Static, inputs: list) -> PyTree:
    """The tree `partition` split, with ``inputs`` (tracers, inside a program)
    in place of its inputs."""
    given = iter(inputs)
    leaves = [next(given) if k is None else _leaf(k) for k in static.leaves]
    return static.treedef.value.unflatten(leaves)


def split_optimizer(optimizer: Any) -> tuple[Static, list]:
    """`partition` of an optimizer through its recipe (numbers are inputs)."""
    return partition(recipe.as_tree(optimizer), optimizer_inputs)


def join_optimizer(static: Static, inputs: list) -> Any:
    """The optimizer of `split_optimizer`, rebuilt from ``inputs``."""
    return recipe.build(combine(static, inputs))
