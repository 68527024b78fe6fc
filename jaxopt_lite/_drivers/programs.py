"""The compiled-program cache of the drivers, and how its keys are made.

A driver's program depends on the user's callables (``loss_fn``, ``fun``,
``eval_fn``), the optimizer and static settings. `split` turns them into a
hashable key and a pytree of *inputs* that are passed to the jitted program
as arguments; `join` rebuilds them, from tracers, inside it:

* optimizers, transforms and schedules of this package: keyed on their
  structure (`jaxopt_lite._core.recipe`), their numbers are inputs, so a new
  learning rate, momentum or clipping threshold reuses the program;
* foreign transforms (optax's own, hand-made ones): by identity;
* plain callables (functions, bound methods, ``functools.partial``, callable
  objects): by identity, through a weak reference, so a call never reuses a
  program traced for another object (a new bound method ``m.f`` is a new
  object: after ``m.c = 5.0`` the program is traced again), and a dead
  object's ``id`` never matches;
* pytree-callables (an ``equinox.Module``, a bound method of one): their
  array leaves are inputs; the tree structure and the other leaves (by value
  when hashable, else by identity) are the key.

Reuse therefore happens only where ``jax.jit`` itself would reuse a trace: the
same function object, or equal structure, with inputs of the same shapes.
"""

from __future__ import annotations

import collections
from collections.abc import Callable
from typing import Any

import jax
import numpy as np

from jaxopt_lite._core import recipe as _recipe

_MAX_PROGRAMS = 64
_programs: collections.OrderedDict[Any, Any] = collections.OrderedDict()
_MAX_CHECKS = 256
_checks: collections.OrderedDict[Any, Any] = collections.OrderedDict()


class _ByEquality:
    """A key part compared with ``==`` (tree structures: their static fields
    by value), hashed by value when it can be, else by a coarse fallback."""

    __slots__ = ("_hash", "value")

    def __init__(self, value: Any, fallback: Any):
        self.value = value
        try:
            self._hash = hash(value)
        except TypeError:
            self._hash = hash(fallback)

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, _ByEquality):
            return NotImplemented
        try:
            return bool(self.value == other.value)
        except Exception:  # static fields that cannot be compared
            return self.value is other.value


def _is_input(leaf: Any) -> bool:
    return isinstance(leaf, (jax.Array, np.ndarray))


def _leaf_key(leaf: Any) -> tuple:
    if leaf is None or isinstance(leaf, (bool, int, float, complex, str)):
        return ("s", type(leaf), leaf)
    return ("id", _recipe.Identity(leaf))


def split_callable(fn: Callable | None) -> tuple[tuple, list[Any]]:
    """``(key, inputs)`` of a user callable (see the module docstring)."""
    if fn is None:
        return ("none",), []
    leaves, treedef = jax.tree_util.tree_flatten(fn)
    if len(leaves) == 1 and leaves[0] is fn:
        return ("fn", _recipe.Identity(fn)), []
    inputs = [leaf for leaf in leaves if _is_input(leaf)]
    static = tuple(None if _is_input(x) else _leaf_key(x) for x in leaves)
    tree = _ByEquality(treedef, (type(fn), treedef.num_leaves))
    return ("tree", tree, static), inputs


def join_callable(key: tuple, inputs: list[Any]) -> Callable | None:
    """The callable of ``key`` with ``inputs`` in place of its array leaves."""
    if key[0] == "none":
        return None
    if key[0] == "fn":
        return key[1].get()
    given = iter(inputs)
    leaves = [next(given) if s is None else _rebuild_leaf(s) for s in key[2]]
    return key[1].value.unflatten(leaves)


def _rebuild_leaf(key: tuple) -> Any:
    return key[2] if key[0] == "s" else key[1].get()


def split(
    callables: dict[str, Callable | None], optimizer: Any
) -> tuple[tuple, dict[str, Any]]:
    """The program key and inputs of named user callables and an optimizer
    (an optax transform, or any recipe-carrying object; ``None`` for none)."""
    keys, inputs = [], {}
    for name, fn in callables.items():
        key, inputs[name] = split_callable(fn)
        keys.append((name, key))
    opt_key, inputs["optimizer"] = _recipe.split(optimizer)
    return (tuple(keys), opt_key), inputs


def join(key: tuple, inputs: dict[str, Any]) -> tuple[dict[str, Any], Any]:
    """``(callables, optimizer)`` rebuilt from `split`'s key and inputs."""
    callables = {name: join_callable(k, inputs[name]) for name, k in key[0]}
    return callables, _recipe.rebuild(key[1], inputs["optimizer"])


def _alive(key: Any) -> bool:
    if isinstance(key, _recipe.Identity):
        return key.alive
    if isinstance(key, tuple):
        return all(_alive(k) for k in key)
    return True


def _lookup(table: collections.OrderedDict, limit: int, key: Any, make: Callable):
    try:
        found = table[key]
    except KeyError:
        pass
    else:
        table.move_to_end(key)
        return found
    for old in [k for k in table if not _alive(k)]:
        del table[old]  # programs of dead objects can never be used again
    found = table[key] = make()
    while len(table) > limit:
        table.popitem(last=False)
    return found


def program(key: Any, make: Callable[[], Any]) -> Any:
    """The program cached under ``key``, made by ``make()`` on a miss (the
    least recently used of at most 64 programs are dropped, and so are those
    whose objects died)."""
    return _lookup(_programs, _MAX_PROGRAMS, key, make)


def shapes(tree: Any) -> tuple:
    """A hashable description of a pytree's structure, shapes and dtypes."""
    leaves, treedef = jax.tree_util.tree_flatten(tree)
    return (
        _ByEquality(treedef, treedef.num_leaves),
        tuple(
            (
                np.shape(x),
                getattr(x, "dtype", None),
                getattr(x, "weak_type", None),
                type(x),
            )
            for x in leaves
        ),
    )


def checked(key: Any, check: Callable[[], Any]) -> Any:
    """``check()``'s result, remembered under ``key``: argument checks that
    depend only on callables and shapes (an ``eval_shape`` of the loss) run
    once per key."""
    x64 = bool(jax.config.read("jax_enable_x64"))
    return _lookup(_checks, _MAX_CHECKS, (key, x64), check)


def check_once(tag: Any, fn: Callable, args: Any, check: Callable[[], Any]) -> Any:
    """`checked` under the key of ``fn`` (as `split_callable` makes it, with
    the shapes of its array leaves) and the shapes of ``args``."""
    key, inputs = split_callable(fn)
    return checked((tag, key, shapes(inputs), shapes(args)), check)
