"""Sharded parameters (FSDP) over a mesh axis ``"model"``, for the drivers.

With an axis ``"model"`` in the mesh (or a ``param_sharding`` rule), every
parameter gets a `PartitionSpec`: the user's rule first, then flax's
partitioning metadata (linen's ``nn.with_partitioning``, nnx's sharding
names), then the size rule (`size_rule`: a leaf of at least
``MIN_SHARDED_SIZE`` elements is split along its largest dimension divisible
by the axis size, any other leaf is replicated). The rest of a run's state
follows (`layout`): a subtree shaped like the parameters (Adam's moments,
early stopping's best parameters) takes their specs leaf by leaf, the model
state and every other leaf the size rule (scalars and counters replicated).

The engines constrain their programs' states to that layout, so the state
stays sharded between chunks; XLA's SPMD partitioner gathers a parameter
where a computation needs it whole and reduce-scatters its gradient. No
communication is written by hand.
"""

from __future__ import annotations

import math
import sys
from typing import Any, NamedTuple

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from jaxopt_lite._host import checks, placement

PyTree = Any
MIN_SHARDED_SIZE = 2**14  # smaller leaves are replicated by the size rule
_RULE = (
    "a function (path, leaf) -> PartitionSpec | None, or a pytree of "
    "PartitionSpecs matching params (None where the default applies)"
)


class Tree(NamedTuple):
    """A reference tree: its structure, leaf shapes and leaf specs."""

    treedef: Any
    shapes: tuple[tuple[int, ...], ...]
    specs: tuple[P, ...]


class Specs(NamedTuple):
    """The checked specs of a run's parameters and model state on ``mesh``."""

    mesh: Mesh
    params: Tree
    model_state: Tree


def size_rule(mesh: Mesh, shape: tuple[int, ...]) -> P:
    """Split a leaf of at least ``MIN_SHARDED_SIZE`` elements over ``"model"``
    along its largest dimension divisible by the axis size (the first of
    equals); replicate it otherwise, or without a ``"model"`` axis."""
    if placement.MODEL not in mesh.axis_names or math.prod(shape) < MIN_SHARDED_SIZE:
        return P()
    size = mesh.shape[placement.MODEL]
    fits = [i for i, n in enumerate(shape) if n % size == 0]
    if not fits:
        return P()
    dim = max(fits, key=lambda i: shape[i])
    return P(*([None] * dim), placement.MODEL)


def _is_spec(x: Any) -> bool:
    return x is None or isinstance(x, P)


def _user_specs(rule: Any, params: PyTree) -> list[P | None]:
    """``rule``'s spec (or ``None``) for every leaf of ``params``."""
    leaves = jax.tree_util.tree_flatten_with_path(params)[0]
    if callable(rule):
        out = []
        for path, leaf in leaves:
            spec = rule(path, leaf)
            if not _is_spec(spec):
                raise TypeError(
                    f"param_sharding returned {spec!r} for "
                    f"params{jax.tree_util.keystr(path)}: it must return a "
                    "jax.sharding.PartitionSpec, or None for the default."
                )
            out.append(spec)
        return out
    for path, spec in jax.tree_util.tree_flatten_with_path(rule, is_leaf=_is_spec)[0]:
        if not _is_spec(spec):
            raise TypeError(
                f"param_sharding{jax.tree_util.keystr(path)} is {spec!r}: "
                f"param_sharding must be {_RULE}."
            )
    flat: list[P | None] = []
    try:
        jax.tree.map(
            lambda spec, sub: flat.extend([spec] * len(jax.tree.leaves(sub))),
            rule,
            params,
            is_leaf=_is_spec,
        )
    except (ValueError, TypeError) as error:
        raise ValueError(
            "param_sharding: a pytree of PartitionSpecs must have the structure "
            f"of params (or a prefix of it); {error}"
        ) from None
    return flat


def _metadata_specs(params: PyTree) -> list[P | None]:
    """flax's partitioning metadata per leaf (``None``: not annotated), read
    with flax's own function, from a flax already imported by the caller."""
    count = len(jax.tree.leaves(params))
    name = checks.framework(params)
    module = {"flax.linen": "flax.core.meta", "flax.nnx": "flax.nnx"}.get(name or "")
    read = getattr(sys.modules.get(module or ""), "get_partition_spec", None)
    if read is None:
        return [None] * count
    specs = jax.tree.leaves(read(params), is_leaf=_is_spec)
    if len(specs) != count or not all(isinstance(s, P) for s in specs):
        return [None] * count
    return [s if len(s) else None for s in specs]


def _check_spec(
    where: str, spec: P, shape: tuple[int, ...], mesh: Mesh, reserved: tuple, source
) -> None:
    axes = tuple(mesh.axis_names)
    if len(spec) > len(shape):
        raise ValueError(
            f"{source} gives {where} (shape {shape}) {spec}, which names more "
            f"dimensions than the leaf has."
        )
    used: list[str] = []
    for dim, entry in enumerate(spec):
        if entry is None:
            continue
        names = entry if isinstance(entry, tuple) else (entry,)
        for name in names:
            if name not in axes:
                raise ValueError(
                    f"{source} gives {where} {spec}, but the mesh has no axis "
                    f"{name!r} (its axes: {axes})."
                )
            if name in reserved:
                raise ValueError(
                    f"{source} gives {where} {spec}, but the axis {name!r} splits "
                    "the runs of a sweep; parameters may be split over the other "
                    "axes."
                )
            if name in used:
                raise ValueError(
                    f"{source} gives {where} {spec}, which uses the axis {name!r} "
                    "twice."
                )
            used.append(name)
        size = math.prod(mesh.shape[n] for n in names)
        if shape[dim] % size:
            raise ValueError(
                f"{source} gives {where} (shape {shape}) {spec}, but its dimension "
                f"{dim} ({shape[dim]}) is not divisible by the {size} devices of "
                f"{entry!r}."
            )


def _tree(tree: PyTree, specs: list[P]) -> Tree:
    return Tree(
        jax.tree.structure(tree),
        tuple(tuple(np.shape(x)) for x in jax.tree.leaves(tree)),
        tuple(specs),
    )


def plan_specs(
    mesh: Mesh | None,
    params: PyTree,
    model_state: PyTree,
    rule: Any,
    *,
    reserved: tuple[str, ...] = (),
) -> Specs | None:
    """Check ``param_sharding`` (``rule``) and lay out the parameters (see the
    module docstring); ``None`` when the run is not sharded: no ``"model"``
    axis and no rule (everything replicated, as before)."""
    if rule is not None and mesh is None:
        raise ValueError(
            "param_sharding says how to split the parameters over a mesh; pass "
            "mesh= (e.g. jax.make_mesh((2, 4), ('data', 'model')))."
        )
    if mesh is None or (rule is None and placement.MODEL not in mesh.axis_names):
        return None
    leaves = jax.tree_util.tree_flatten_with_path(params)[0]
    given = [None] * len(leaves) if rule is None else _user_specs(rule, params)
    flax = _metadata_specs(params)
    specs = []
    for (path, leaf), mine, theirs in zip(leaves, given, flax, strict=True):
        shape = tuple(np.shape(leaf))
        spec = mine if mine is not None else theirs
        if spec is None:
            spec = size_rule(mesh, shape)
        else:
            source = "param_sharding" if mine is not None else "flax's metadata"
            where = f"params{jax.tree_util.keystr(path)}"
            _check_spec(where, spec, shape, mesh, reserved, source)
        specs.append(spec)
    state = [size_rule(mesh, np.shape(x)) for x in jax.tree.leaves(model_state)]
    return Specs(mesh, _tree(params, specs), _tree(model_state, state))


class Layout(NamedTuple):
    """Where every leaf of a tree lives: hashable, so it can be part of a
    program's static key."""

    treedef: Any
    shardings: tuple[NamedSharding, ...]

    def constrain(self, tree: PyTree) -> PyTree:
        """``tree`` constrained to this layout (inside a traced program)."""
        leaves = self.treedef.flatten_up_to(tree)
        return self.treedef.unflatten(
            jax.lax.with_sharding_constraint(x, s)
            for x, s in zip(leaves, self.shardings, strict=True)
        )

    def place(self, tree: PyTree) -> PyTree:
        """``tree`` (whole arrays, the same on every process) put on the
        devices in this layout."""
        leaves = self.treedef.flatten_up_to(tree)
        return self.treedef.unflatten(
            _put(x, s) for x, s in zip(leaves, self.shardings, strict=True)
        )


def _put(x: Any, sharding: NamedSharding) -> Any:
    if isinstance(x, jax.Array) and x.sharding.is_equivalent_to(sharding, x.ndim):
        return x
    if sharding.is_fully_addressable or (
        isinstance(x, jax.Array) and not x.is_fully_addressable
    ):
        return jax.device_put(x, sharding)
    if isinstance(x, jax.Array) and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
        data = _put(jax.random.key_data(x), sharding)
        return jax.random.wrap_key_data(data, impl=jax.random.key_impl(x))
    whole = np.asarray(x)
    return jax.make_array_from_callback(whole.shape, sharding, lambda i: whole[i])


def _matches(node: Any, ref: Tree, lead: int) -> bool:
    leaves, treedef = jax.tree.flatten(node)
    return treedef == ref.treedef and ref.shapes == tuple(
        tuple(np.shape(x)[lead:]) if np.ndim(x) >= lead else None for x in leaves
    )


def layout(specs: Specs, tree: PyTree, *, lead: int = 0, prefix: tuple = ()) -> Layout:
    """The layout of a run's state (``tree``, abstract or concrete): subtrees
    shaped like the parameters (or the model state) take their specs, any
    other leaf the parameters' spec when every parameter of its shape has
    the same one, else the size rule. With ``lead`` leading axes (a sweep's
    runs), shapes are compared after them and every spec starts with
    ``prefix``; a leaf with fewer axes is replicated."""
    refs = (specs.params, specs.model_state)
    by_shape: dict[tuple[int, ...], P | None] = {}
    for shape, spec in zip(specs.params.shapes, specs.params.specs, strict=True):
        by_shape[shape] = spec if by_shape.get(shape, spec) == spec else None
    flat: list[P] = []

    def visit(node: Any) -> None:
        for ref in refs:
            if _matches(node, ref, lead):
                flat.extend(P(*prefix, *s) for s in ref.specs)
                return
        shape = tuple(np.shape(node))
        if len(shape) < lead:
            flat.append(P())
            return
        own = shape[lead:]
        spec = by_shape.get(own)
        if spec is None:
            spec = size_rule(specs.mesh, own)
        flat.append(P(*prefix, *spec))

    def is_ref(node: Any) -> bool:
        return any(_matches(node, ref, lead) for ref in refs)

    jax.tree.map(visit, tree, is_leaf=is_ref)
    mesh = specs.mesh
    return Layout(jax.tree.structure(tree), tuple(NamedSharding(mesh, s) for s in flat))


def param_layout(specs: Specs) -> Layout:
    """Where the parameters themselves go."""
    return Layout(
        specs.params.treedef,
        tuple(NamedSharding(specs.mesh, s) for s in specs.params.specs),
    )
