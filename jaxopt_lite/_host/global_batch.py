"""Global batches from per-process parts, for multi-process (multi-host) runs.

In a job of several processes each one reads only its own examples; a global
`jax.Array` split over a mesh axis is assembled from those parts with
`jax.make_array_from_process_local_data` (no communication). On one process
this is a plain ``device_put`` with the sharding.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

PyTree = Any


def _process_share(mesh: Mesh, axes: tuple[str, ...]) -> tuple[int, int]:
    """(positions along ``axes`` held by this process's devices, all positions)."""
    where = [mesh.axis_names.index(a) for a in axes]
    me = jax.process_index()
    held = {
        tuple(index[w] for w in where)
        for index, device in np.ndenumerate(mesh.devices)
        if device.process_index == me
    }
    return len(held), math.prod(mesh.shape[a] for a in axes)


def batch_axes(sharding: NamedSharding) -> tuple[str, ...]:
    """The mesh axes that split a batch's leading axis under ``sharding``."""
    spec = tuple(sharding.spec)
    if any(entry is not None for entry in spec[1:]):
        raise ValueError(
            f"sharding={sharding!r} splits more than the batch axis; a stream's "
            "sharding may split only the leading (batch) axis, e.g. "
            "NamedSharding(mesh, P('data'))."
        )
    first = spec[0] if spec else None
    if first is None:
        return ()
    return (first,) if isinstance(first, str) else tuple(first)


def check_split(batch: int, mesh: Mesh, axes: tuple[str, ...], who: str) -> int:
    """Return how many times larger the global batch is than the local one."""
    local, total = _process_share(mesh, axes)
    if local == 0:
        raise ValueError(f"{who}: this process holds no device of the mesh.")
    if batch % local:
        raise ValueError(
            f"{who}: the local batch has {batch} examples, which cannot be split "
            f"evenly over this process's {local} devices along {axes}."
        )
    return total // local


def global_batch(
    local_tree: PyTree, mesh: Mesh, axis: str = "data", *, stacked: bool = False
) -> PyTree:
    """Assemble each process's part of a batch into global `jax.Array` s.

    Every process passes its own examples; the global batch is their
    concatenation along the batch axis, in the order of the mesh's devices
    along ``axis`` (process order for a mesh over ``jax.devices()``), split
    over that axis. On one process this is a ``device_put`` with that sharding.

    Args:
        local_tree: a pytree of arrays whose batch axis is the leading one, or
            the second one with ``stacked`` (a chunk of batches).
        mesh: the (global) `jax.sharding.Mesh`.
        axis: the mesh axis that splits the batch.
        stacked: the leaves are ``(steps, local_batch, ...)`` chunks.

    Returns:
        The global arrays, sharded ``P(axis)`` (``P(None, axis)`` if stacked).

    Example:
        >>> import jax, numpy as np
        >>> mesh = jax.make_mesh((1,), ("data",))
        >>> global_batch({"x": np.ones((4, 2))}, mesh)["x"].shape
        (4, 2)
    """
    if not isinstance(mesh, Mesh):
        raise TypeError(f"mesh must be a jax.sharding.Mesh, got {mesh!r}.")
    if axis not in mesh.axis_names:
        raise ValueError(
            f"axis={axis!r} is not an axis of the mesh; it has {mesh.axis_names}."
        )
    dim = 1 if stacked else 0
    local = jax.tree.map(np.asarray, local_tree)
    for path, leaf in jax.tree_util.tree_leaves_with_path(local):
        if leaf.ndim <= dim:
            raise ValueError(
                f"local_tree leaf {jax.tree_util.keystr(path)} has shape "
                f"{leaf.shape}: it needs a batch axis at position {dim}."
            )
        check_split(leaf.shape[dim], mesh, (axis,), "global_batch")
    spec = P(None, axis) if stacked else P(axis)
    return jax.make_array_from_process_local_data(NamedSharding(mesh, spec), local)
