"""Construction recipes: how an optimizer, transform or schedule was built.

Every public factory of layer 1 is decorated with `recipe`, which records on
the object it returns (on a transform's ``update`` function, or on a schedule
itself) the factory and the arguments it was called with. `as_tree` turns
such an object into a pytree of `Built` nodes whose leaves are its arguments
(numbers, and whatever else was passed), and `build` calls the factories
again, on other leaves if need be: tracers inside ``jax.jit``. The drivers
split that pytree with JAX's own flattening into its structure (the program
key) and its numbers (the program's inputs), so a new learning rate reuses
the program.

Python numbers are passed to ``jax.jit`` as they are and become weakly typed
tracers, so they promote exactly like the numbers they stand for (a bfloat16
model stays in bfloat16). An integer outside int32 (``decay_steps=10**10``)
is a setting instead: no int32 argument could hold it without x64.
"""

from __future__ import annotations

import functools
import inspect
import weakref
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import jax
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


def hashable(x: Any) -> Any:
    """``x`` when it can be hashed and compared by value (and is not a
    callable, which is compared by identity), else an `Identity` of it."""
    if callable(x):
        return Identity(x)
    try:
        hash(x)
    except TypeError:
        return Identity(x)
    return x


def _value(x: Any) -> Any:
    return x.get() if isinstance(x, Identity) else x


@jax.tree_util.register_pytree_node_class
class Built:
    """``factory(*args, **kwargs)`` as a pytree node: the factory (itself a
    `Built` node when a recipe made it, e.g. ``inject_hyperparams(adam)``) and
    the arguments are its children, the ``static`` arguments (``(position or
    name, value)`` pairs, kept out of the leaves) its static data."""

    __slots__ = ("args", "factory", "kwargs", "static")

    def __init__(
        self,
        factory: Callable[..., Any],
        args: tuple,
        kwargs: dict[str, Any],
        static: tuple[tuple[int | str, Any], ...],
    ):
        self.factory, self.args, self.kwargs = factory, args, kwargs
        self.static = static

    def build(self) -> Any:
        """Call the factory again with these arguments."""
        factory = build(self.factory)
        args, kwargs = list(build(self.args)), build(self.kwargs)
        for where, value in self.static:
            if isinstance(where, int):
                args[where] = _value(value)
            else:
                kwargs[where] = _value(value)
        return factory(*args, **kwargs)

    def tree_flatten(self):
        return (self.factory, self.args, self.kwargs), self.static

    @classmethod
    def tree_unflatten(cls, static: tuple, children: tuple) -> Built:
        factory, args, kwargs = children
        return cls(factory, args, kwargs, static)


def _has_recipe(x: Any) -> bool:
    return recipe_of(x) is not None


def _node(obj: Any) -> Any:
    rec = recipe_of(obj)
    if rec is None:
        return obj
    args, static = [], []
    for i, a in enumerate(rec.args):
        static_arg = i in rec.static_positions
        args.append(None if static_arg else as_tree(a))
        if static_arg:
            static.append((i, hashable(a)))
    kwargs = {}
    for k, a in rec.kwargs.items():
        if k in rec.static_names:
            static.append((k, hashable(a)))
        else:
            kwargs[k] = as_tree(a)
    return Built(as_tree(rec.factory), tuple(args), kwargs, tuple(static))


def as_tree(obj: Any) -> Any:
    """``obj`` (a transform, schedule, or any pytree holding them) with every
    object built by a `recipe` factory replaced by its `Built` node; other
    objects are left as they are (leaves: compared by identity or value by
    whoever keys on them)."""
    return jax.tree.map(_node, obj, is_leaf=_has_recipe)


def build(tree: Any) -> Any:
    """The inverse of `as_tree`: every `Built` node called."""
    return jax.tree.map(
        lambda x: x.build() if isinstance(x, Built) else x,
        tree,
        is_leaf=lambda x: isinstance(x, Built),
    )
