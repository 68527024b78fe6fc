"""Construction recipes: how an optimizer, transform or schedule was built.

Every public factory of layer 1 is decorated with `recipe`, which records on
the object it returns (on a transform's ``update`` function, or on a schedule
itself) the factory and the arguments it was called with. `split` turns such
an object into a hashable *structure key* (the factories, their non-numeric
settings, callables by identity, and the kinds of the numbers) and the list
of its *numbers* (Python numbers, NumPy and JAX scalars and arrays), and
`rebuild` calls the factories again with other numbers, e.g. tracers inside
``jax.jit``. The drivers key compiled programs on the structure and pass the
numbers as arguments, so a new learning rate reuses the program.

Python numbers are passed to ``jax.jit`` as they are and become weakly typed
tracers, so they promote exactly like the numbers they stand for (a bfloat16
model stays in bfloat16). An integer outside int32 (``decay_steps=10**10``)
is a setting instead: no int32 argument could hold it without x64.
"""

from __future__ import annotations

import functools
import inspect
import numbers
import weakref
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import jax
import numpy as np
import optax

_ATTR = "_jol_recipe"


class Recipe(NamedTuple):
    """A factory call: ``factory(*args, **kwargs)``; the positions and names in
    ``static`` are settings, never numbers."""

    factory: Callable[..., Any]
    args: tuple
    kwargs: dict[str, Any]
    static_positions: frozenset[int]
    static_names: frozenset[str]


class Identity:
    """A hashable stand-in for an object compared by identity. It holds a weak
    reference when the object allows one (so a dead object's reused ``id``
    never matches), else a strong one."""

    __slots__ = ("_hash", "_ref", "_strong")

    def __init__(self, obj: Any):
        self._hash = id(obj)
        try:
            self._ref: weakref.ref | None = weakref.ref(obj)
            self._strong = None
        except TypeError:
            self._ref, self._strong = None, obj

    def get(self) -> Any:
        """The object, or ``None`` once it died."""
        return self._strong if self._ref is None else self._ref()

    @property
    def alive(self) -> bool:
        return self._ref is None or self._ref() is not None

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Identity):
            return NotImplemented
        obj = self.get()
        return obj is not None and obj is other.get()

    def __repr__(self) -> str:
        return f"Identity({self.get()!r})"


def recipe(
    factory: Callable[..., Any] | None = None, *, static: tuple[str, ...] = ()
) -> Any:
    """Decorate a public factory so that what it returns carries its recipe.

    ``static`` names the arguments that are settings even when they are
    numbers (an ``int`` the factory needs as a Python value, e.g. a shape
    threshold). Bools, strings, dtypes, ``None`` and callables are always
    settings.
    """
    if factory is None:
        return functools.partial(recipe, static=static)
    parameters = list(inspect.signature(factory).parameters.values())
    positions = frozenset(
        i
        for i, p in enumerate(parameters)
        if p.name in static and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    )
    names = frozenset(static)

    @functools.wraps(factory)
    def build(*args: Any, **kwargs: Any) -> Any:
        # One-shot iterators are read once, so the recipe can replay them.
        args = tuple(list(a) if isinstance(a, Iterator) else a for a in args)
        kwargs = {
            k: list(a) if isinstance(a, Iterator) else a for k, a in kwargs.items()
        }
        out = factory(*args, **kwargs)
        record(out, Recipe(build, args, kwargs, positions, names))
        return out

    return build


def record(obj: Any, rec: Recipe) -> None:
    """Attach ``rec`` to ``obj`` (a transform's ``update``, or a callable);
    objects that take no attributes are left without a recipe."""
    target = obj.update if isinstance(obj, optax.GradientTransformation) else obj
    if callable(target):
        try:
            setattr(target, _ATTR, rec)
        except (AttributeError, TypeError):
            pass


def recipe_of(obj: Any) -> Recipe | None:
    """The recipe ``obj`` was built by, or ``None``."""
    target = obj.update if isinstance(obj, optax.GradientTransformation) else obj
    try:
        rec = getattr(target, _ATTR, None)
    except Exception:  # objects with exotic __getattr__
        return None
    return rec if isinstance(rec, Recipe) else None


def _static(x: Any) -> tuple:
    try:
        hash(x)
    except TypeError:
        return ("id", Identity(x))
    return ("s", type(x), x)


def _kind(x: Any) -> tuple:
    if isinstance(x, jax.Array):
        return (x.shape, x.dtype, jax.typeof(x).weak_type)
    if isinstance(x, (np.ndarray, np.generic)):
        return (x.shape, x.dtype)
    return (type(x),)


def _fits_int32(n: Any) -> bool:
    return -(2**31) <= int(n) < 2**31


def _node(x: Any, out: list[Any]) -> tuple:
    """The structure of ``x``; its numbers are appended to ``out``."""
    if x is None or isinstance(x, (bool, np.bool_, str, bytes, type, np.dtype)):
        return ("s", type(x), x)
    if isinstance(x, (numbers.Integral, np.integer)) and not _fits_int32(x):
        return ("s", type(x), x)  # no int32 argument holds it (decay_steps=10**10)
    if isinstance(x, (numbers.Number, np.generic)):
        out.append(x)
        return ("n", *_kind(x))
    if isinstance(x, (np.ndarray, jax.Array)):
        if x.dtype == np.bool_:  # masks and flags: settings, by value
            value = np.asarray(x)
            return ("s", "bool-array", value.shape, value.tobytes())
        out.append(x)
        return ("n", *_kind(x))
    rec = recipe_of(x)
    if rec is not None:
        return _recipe_node(rec, out)
    if isinstance(x, optax.GradientTransformation):  # foreign: by identity
        return ("gt", type(x), Identity(x.init), Identity(x.update))
    if callable(x):
        return ("id", Identity(x))
    if isinstance(x, tuple):
        children = tuple(_node(c, out) for c in x)
        return ("nt", type(x), children) if hasattr(x, "_fields") else ("t", children)
    if isinstance(x, list):
        return ("l", tuple(_node(c, out) for c in x))
    if isinstance(x, dict):
        return ("d", type(x), tuple((k, _node(c, out)) for k, c in x.items()))
    return ("id", Identity(x))


def _recipe_node(rec: Recipe, out: list[Any]) -> tuple:
    args = tuple(
        _static(a) if i in rec.static_positions else _node(a, out)
        for i, a in enumerate(rec.args)
    )
    kwargs = tuple(
        (k, _static(a) if k in rec.static_names else _node(a, out))
        for k, a in rec.kwargs.items()
    )
    return ("r", _node(rec.factory, out), args, kwargs)


def split(obj: Any) -> tuple[tuple, list[Any]]:
    """``(structure_key, numbers)`` of a recipe-carrying object (or of any
    value: objects without a recipe are keyed by identity and have no
    numbers). The key is hashable; equal keys rebuild equal programs."""
    out: list[Any] = []
    return _node(obj, out), out


def rebuild(key: tuple, values: list[Any]) -> Any:
    """The object of structure ``key`` with ``values`` (tracers, or other
    numbers of the same kinds) in place of its numbers."""
    return _build(key, iter(values))


def _build(key: tuple, values: Iterator[Any]) -> Any:
    tag = key[0]
    if tag == "s":
        if key[1] == "bool-array":
            return np.frombuffer(key[3], np.bool_).reshape(key[2])
        return key[2]
    if tag == "n":
        return next(values)
    if tag == "id":
        return key[1].get()
    if tag == "gt":
        return key[1](key[2].get(), key[3].get())
    if tag == "r":
        factory = _build(key[1], values)
        args = [_build(a, values) for a in key[2]]
        kwargs = {k: _build(a, values) for k, a in key[3]}
        return factory(*args, **kwargs)
    if tag == "t":
        return tuple(_build(c, values) for c in key[1])
    if tag == "nt":
        return key[1](*(_build(c, values) for c in key[2]))
    if tag == "l":
        return [_build(c, values) for c in key[1]]
    if tag == "d":
        return key[1]((k, _build(c, values)) for k, c in key[2])
    raise ValueError(f"not a structure key: {key!r}")


def alive(key: Any) -> bool:
    """Whether every object ``key`` refers to by identity is still alive."""
    if isinstance(key, Identity):
        return key.alive
    if isinstance(key, tuple):
        return all(alive(k) for k in key)
    return True
