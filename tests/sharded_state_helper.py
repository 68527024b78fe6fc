"""Runs in a subprocess of tests/test_sharded_state.py with 4 simulated CPU
devices (the device count must be set before JAX starts).

For every ``"optimizer"`` row of the shared table, ``init`` on parameters
sharded over a mesh (concrete arrays, and ``jax.ShapeDtypeStruct`` under
``jax.eval_shape`` on a mesh of explicit axes) must give state leaves shaped
like a parameter the parameter's sharding. Prints one JSON object: the rows
checked and, per row, the leaves that broke the rule.
"""

from __future__ import annotations

import json
import os
import sys

if __name__ == "__main__":  # before JAX starts; importing this file sets nothing
    os.environ["XLA_FLAGS"] = (
        os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=4"
    )
    os.environ["JAX_PLATFORMS"] = "cpu"

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P
from transform_table import rows

# Distinct shapes, so a state leaf's shape names its parameter: split on the
# mesh along the first axis, or replicated.
SPECS = {"w": ((8, 3), P("x", None)), "b": ((4,), P("x")), "c": ((5,), P())}


def _placement(x) -> tuple:
    """Where the elements of ``x`` live: the mesh's axes, the partition of
    each dimension (``P()`` and ``P(None)`` are the same) and, for a concrete
    array, its devices."""
    sharding = x.sharding
    if not isinstance(sharding, NamedSharding):
        return ("not on the mesh", str(sharding))
    spec = tuple(sharding.spec) + (None,) * (len(x.shape) - len(sharding.spec))
    devices = sharding.device_set if isinstance(x, jax.Array) else None
    return sharding.mesh.shape_tuple, spec, devices


def _mismatches(state, params) -> list[str]:
    """State leaves not placed like the parameter of the same shape; scalars
    and other shapes are not checked."""
    wanted = {p.shape: _placement(p) for p in jax.tree.leaves(params)}
    found = []
    for path, leaf in jax.tree.leaves_with_path(state):
        if leaf.shape in wanted and _placement(leaf) != wanted[leaf.shape]:
            found.append(f"{jax.tree_util.keystr(path)}: {leaf.sharding}")
    return found


def main() -> dict:
    auto = Mesh(np.array(jax.devices()), ("x",))
    explicit = jax.make_mesh((4,), ("x",))  # explicit axis types by default
    key = jax.random.key(0)
    params = {
        name: jax.device_put(
            1.0 + jax.random.uniform(jax.random.fold_in(key, i), shape),
            NamedSharding(auto, spec),
        )
        for i, (name, (shape, spec)) in enumerate(SPECS.items())
    }
    abstract = {
        name: jax.ShapeDtypeStruct(
            shape, jnp.float32, sharding=NamedSharding(explicit, spec)
        )
        for name, (shape, spec) in SPECS.items()
    }
    out: dict = {
        "devices": jax.device_count(),
        "rows": [],
        "concrete": {},
        "abstract": {},
    }
    for row in rows("optimizer"):
        out["rows"].append(row.name)
        concrete = _mismatches(row.make().init(params), params)
        if concrete:
            out["concrete"][row.name] = concrete
        shaped = _mismatches(jax.eval_shape(row.make().init, abstract), abstract)
        if shaped:
            out["abstract"][row.name] = shaped
    return out


if __name__ == "__main__":
    json.dump(main(), sys.stdout)
