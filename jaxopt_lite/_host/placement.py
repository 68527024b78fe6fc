"""Placement over a `jax.sharding.Mesh` for the drivers (layer 3).

Data parallelism needs nothing but placement: the data (and every batch) is
split over the mesh axis ``"data"`` while parameters and optimizer state are
replicated (or split over ``"model"``: `sharding`), and XLA's SPMD
partitioner turns the mean over the batch into a per-device partial mean
plus an all-reduce. A sweep can also split its runs over an axis ``"runs"``.
No collectives are written by hand.
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import AbstractMesh, AxisType, Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from jaxopt_lite._host.global_batch import check_split

PyTree = Any
DATA = "data"
RUNS = "runs"
MODEL = "model"  # parameters split over it (`sharding`)


def check_mesh(
    mesh: Any,
    batch_size: int | None,
    *,
    axes: tuple[str, ...] = (DATA,),
    who: str = "fit",
) -> Mesh | None:
    """Validate ``mesh`` (``None`` passes) and return it with every axis in
    automatic (GSPMD) mode, so that arrays placed with it may be combined
    freely inside the compiled loop. ``batch_size=None``: not known yet (see
    `check_batch`)."""
    if mesh is None:
        return None
    if not isinstance(mesh, Mesh):
        raise TypeError(
            "mesh must be a jax.sharding.Mesh (for example "
            f"jax.make_mesh((jax.device_count(),), ('data',))), got {mesh!r}."
        )
    names = tuple(mesh.axis_names)
    if not any(a in names for a in axes):
        wanted = " or ".join(repr(a) for a in axes)
        raise ValueError(
            f"mesh has axes {names}; {who} needs an axis named {wanted} "
            "(e.g. jax.make_mesh((jax.device_count(),), ('data',)))."
        )
    if batch_size is not None:
        check_batch(mesh, batch_size)
    return Mesh(mesh.devices, names, axis_types=(AxisType.Auto,) * len(names))


def check_batch(mesh: Mesh | None, batch_size: int) -> None:
    """A batch of ``batch_size`` examples must split evenly over ``"data"``."""
    if mesh is None or DATA not in mesh.axis_names:
        return
    size = mesh.shape[DATA]
    if batch_size % size:
        raise ValueError(
            f"batch_size={batch_size} must be divisible by the size of the "
            f"mesh's 'data' axis ({size}), so that each device gets an equal "
            "share of every batch."
        )


def batch_sharding(mesh: Mesh | None) -> NamedSharding | None:
    """How a batch is split: its leading axis over ``"data"``."""
    if mesh is None or DATA not in mesh.axis_names:
        return None
    return NamedSharding(mesh, P(DATA))


def platform(mesh: Mesh | None) -> str:
    """The platform the run computes on: the mesh's devices', or JAX's
    default backend."""
    if mesh is None:
        return jax.default_backend()
    return mesh.devices.flat[0].platform


def replicated(mesh: Mesh | AbstractMesh) -> NamedSharding:
    """A full copy on every device of ``mesh``."""
    return NamedSharding(mesh, P())


def run_sharding(mesh: Mesh | None) -> NamedSharding | None:
    """How stacked runs (a sweep's leading axis) are split: over ``"runs"``."""
    if mesh is None or RUNS not in mesh.axis_names:
        return None
    return NamedSharding(mesh, P(RUNS))


def runs_size(mesh: Mesh | None) -> int:
    """Devices along ``"runs"`` (1 without that axis)."""
    if mesh is None or RUNS not in mesh.axis_names:
        return 1
    return mesh.shape[RUNS]


def is_multiprocess(mesh: Mesh | None) -> bool:
    """Whether ``mesh`` has devices of other processes (``jax.distributed``)."""
    return mesh is not None and not all(
        d.process_index == jax.process_index() for d in mesh.devices.flat
    )


def data_parts(mesh: Mesh | None, local_examples: int) -> int:
    """How many processes each hold a part of the data (1 on one process);
    every part must have the same number of examples."""
    if not is_multiprocess(mesh):
        return 1
    counts = multihost_utils.process_allgather(np.asarray(local_examples, np.int64))
    if len(set(counts.tolist())) > 1:
        raise ValueError(
            "data: over a mesh of several processes each process passes its own "
            "part of the data, and every part must hold the same number of "
            f"examples; the processes hold {counts.tolist()}."
        )
    return jax.process_count()


def put(tree: PyTree, sharding: NamedSharding) -> PyTree:
    """``jax.device_put`` that also works over several processes: there every
    process passes its own part of an array split by ``sharding`` (the whole
    array where it is replicated)."""
    if sharding.is_fully_addressable:
        return jax.device_put(tree, sharding)

    def one(x):
        if isinstance(x, jax.Array) and jax.dtypes.issubdtype(
            x.dtype, jax.dtypes.prng_key
        ):
            data = one(jax.random.key_data(x))
            return jax.random.wrap_key_data(data, impl=jax.random.key_impl(x))
        return jax.make_array_from_process_local_data(sharding, np.asarray(x))

    return jax.tree.map(one, tree)


def place_data(mesh: Mesh, data: PyTree) -> PyTree:
    """Split the leading (examples) axis of ``data`` over ``"data"`` when it
    divides evenly; otherwise every device holds a copy (batches are split
    either way). Over several processes each passes its part, which must
    split evenly over its devices."""
    if data is None:
        return None
    split = batch_sharding(mesh)

    def place(x):
        if split is not None and is_multiprocess(mesh):
            check_split(x.shape[0], mesh, (DATA,), "data")
            return put(x, split)
        if split is not None and x.shape[0] % mesh.shape[DATA] == 0:
            return put(x, split)
        return put(x, replicated(mesh))

    return jax.tree.map(place, data)


def place(
    mesh: Mesh, data: PyTree, eval_data: PyTree, state: PyTree
) -> tuple[PyTree, PyTree, PyTree]:
    """Data split over ``"data"``; eval data and the run state replicated."""
    copy = replicated(mesh)
    return place_data(mesh, data), put(eval_data, copy), put(state, copy)
