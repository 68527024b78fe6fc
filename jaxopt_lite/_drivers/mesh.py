"""Placement over a `jax.sharding.Mesh` for the drivers (layer 3).

Data parallelism needs nothing but placement: the data (and every batch) is
split over the mesh axis ``"data"`` while parameters and optimizer state are
replicated, and XLA's SPMD partitioner turns the mean over the batch into a
per-device partial mean plus an all-reduce. A sweep can also split its runs
over an axis ``"runs"``. No collectives are written by hand.
"""

from __future__ import annotations

from typing import Any

import jax
from jax.sharding import AxisType, Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

PyTree = Any
DATA = "data"
RUNS = "runs"


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


def replicated(mesh: Mesh) -> NamedSharding:
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


def place_data(mesh: Mesh, data: PyTree) -> PyTree:
    """Split the leading (examples) axis of ``data`` over ``"data"`` when it
    divides evenly; otherwise every device holds a copy (batches are split
    either way)."""
    if data is None:
        return None
    split = batch_sharding(mesh)

    def put(x):
        if split is not None and x.shape[0] % mesh.shape[DATA] == 0:
            return jax.device_put(x, split)
        return jax.device_put(x, replicated(mesh))

    return jax.tree.map(put, data)


def place(
    mesh: Mesh, data: PyTree, eval_data: PyTree, state: PyTree
) -> tuple[PyTree, PyTree, PyTree]:
    """Data split over ``"data"``; eval data and the run state replicated."""
    copy = replicated(mesh)
    return (
        place_data(mesh, data),
        jax.device_put(eval_data, copy),
        jax.device_put(state, copy),
    )
