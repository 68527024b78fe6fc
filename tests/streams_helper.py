"""Runs in subprocesses of tests/test_streams.py.

``mesh OUT``: one process with 8 simulated CPU devices. ``distributed OUT PID
PORT``: one of two processes (2 CPU devices each) joined by
``jax.distributed`` over 127.0.0.1 with gloo collectives; ``fit OUT PID PORT
DIR``: the same two processes training with `fit` (checkpoints in DIR). Writes one JSON
object of measurements to OUT; the tests assert on them.
"""

from __future__ import annotations

import json
import os
import sys

if __name__ == "__main__":  # before JAX starts; importing this file sets nothing
    os.environ["XLA_FLAGS"] = os.environ.get("XLA_FLAGS", "") + (
        " --xla_force_host_platform_device_count="
        + ("8" if sys.argv[1] == "mesh" else "2")
    )
    os.environ["JAX_PLATFORMS"] = "cpu"

import jax
import numpy as np
import processes
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from jaxopt_lite._host.global_batch import global_batch
from jaxopt_lite._host.streams import BatchStream


def local_batches(process: int, count: int, size: int) -> list[dict]:
    """Batch i of process p: x = 1000 i + 100 p + arange, y = its row sums."""
    out = []
    for i in range(count):
        x = np.arange(size * 3, dtype=np.float32).reshape(size, 3) + 1000 * i
        x += 100 * process
        out.append({"x": x, "y": x.sum(axis=1)})
    return out


def shards(array: jax.Array) -> list[list[int]]:
    """Each addressable shard's shape, in device order."""
    return [list(s.data.shape) for s in array.addressable_shards]


def mesh_report() -> dict:
    out: dict = {"devices": jax.device_count()}
    mesh = Mesh(np.array(jax.devices()), ("data",))
    batches = local_batches(0, 5, 16)
    with BatchStream(batches, sharding=NamedSharding(mesh, P("data"))) as stream:
        chunk, k = stream.next_chunk(4)
        out["k"] = k
        out["shape"] = list(chunk["x"].shape)
        out["spec"] = str(chunk["x"].sharding.spec)
        out["shards"] = shards(chunk["x"])
        expected = np.stack([b["x"] for b in batches[:4]])
        out["max_diff"] = float(np.max(np.abs(np.asarray(chunk["x"]) - expected)))
        stream.prefetch(4)
        rest, k = stream.next_chunk(4)
        out["rest_k"] = k
        out["rest_shards"] = shards(rest["y"])
    grid = jax.make_mesh((2, 4), ("runs", "data"))
    sharding = NamedSharding(grid, P("data"))
    with BatchStream(batches, sharding=sharding) as stream:
        chunk, _ = stream.next_chunk(2)
        out["grid_spec"] = str(chunk["x"].sharding.spec)
        out["grid_shards"] = shards(chunk["x"])
    placed = global_batch(batches[0], mesh)
    out["global_spec"] = str(placed["x"].sharding.spec)
    out["global_shards"] = shards(placed["x"])
    out["global_diff"] = float(
        np.max(np.abs(np.asarray(placed["x"]) - batches[0]["x"]))
    )
    try:
        BatchStream(local_batches(0, 2, 12), sharding=NamedSharding(mesh, P("data")))
    except ValueError as error:
        out["error_split"] = str(error)
    return out


def distributed_report(process: int, port: str) -> dict:
    processes.join(process, port)
    out: dict = {
        "process": jax.process_index(),
        "devices": jax.device_count(),
        "local_devices": jax.local_device_count(),
    }
    mesh = Mesh(np.array(jax.devices()), ("data",))
    replicated = NamedSharding(mesh, P())
    gather = jax.jit(lambda t: t, out_shardings=replicated)
    total = jax.jit(
        lambda t: sum(v.sum() for v in jax.tree.leaves(t)), out_shardings=replicated
    )

    local = local_batches(process, 1, 4)[0]
    placed = global_batch(local, mesh)
    out["global_shape"] = list(placed["x"].shape)
    out["global_sum"] = float(total(placed))
    out["global_x"] = np.asarray(gather(placed["x"])).tolist()

    stream = BatchStream(
        local_batches(process, 3, 4), sharding=NamedSharding(mesh, P("data"))
    )
    out["spec_shape"] = list(stream.spec["x"].shape)
    stream.prefetch(3)
    chunk, k = stream.next_chunk(3)
    stream.close()
    out["chunk_k"] = k
    out["chunk_shape"] = list(chunk["x"].shape)
    out["chunk_spec"] = str(chunk["x"].sharding.spec)
    out["chunk_sum"] = float(total(chunk))
    out["chunk_x"] = np.asarray(gather(chunk["x"])).tolist()
    jax.distributed.shutdown()
    return out


def fit_data() -> dict:
    """The global data set of the two-process fit (64 examples)."""
    rng = np.random.default_rng(7)
    x = rng.normal(size=(64, 3)).astype(np.float32)
    return {"x": x, "y": x @ np.array([1.0, -2.0, 0.5], np.float32) + 0.3}


def fit_loss(p, batch):
    return jax.numpy.mean((batch["x"] @ p["w"] + p["b"] - batch["y"]) ** 2)


def fit_report(process: int, port: str, checkpoint: str) -> dict:
    """`fit` over a mesh of two processes: in memory (each holds half of the
    examples) and streamed (each yields half of every batch)."""
    import jaxopt_lite as jol

    processes.join(process, port)
    mesh = jax.make_mesh((jax.device_count(),), ("data",))
    data = fit_data()
    mine = jax.tree.map(lambda a: a[32 * process : 32 * process + 32], data)
    params = {"w": np.zeros(3, np.float32), "b": np.zeros((), np.float32)}
    opt = jol.adam(0.05)
    memory = jol.fit(
        fit_loss, params, opt, mine, steps=12, batch_size=16, mesh=mesh,
        key=jax.random.key(4), log_every=4, checkpoint_dir=checkpoint,
    )  # fmt: skip
    starts = [16 * i + 8 * process for i in range(4)]
    batches = [{k: a[s : s + 8] for k, a in data.items()} for s in starts]
    streamed = jol.fit(fit_loss, params, opt, batches, epochs=2, mesh=mesh)
    out = {
        "memory_w": np.asarray(memory.params["w"]).tolist(),
        "memory_loss": memory.history["loss"].tolist(),
        "stream_w": np.asarray(streamed.params["w"]).tolist(),
        "stream_loss": streamed.history["loss"].tolist(),
    }
    out.update(fsdp_report(mine, jax.make_mesh((2, 2), ("data", "model"))))
    jax.distributed.shutdown()
    return out


def fsdp_params() -> dict:
    """An MLP on fit_data with one leaf of 3 x 8192 (split over "model")."""
    rng = np.random.default_rng(8)
    return {
        "w1": (0.3 * rng.normal(size=(3, 8192))).astype(np.float32),
        "w2": (0.01 * rng.normal(size=8192)).astype(np.float32),
    }


def fsdp_loss(p, batch):
    out = jax.numpy.tanh(batch["x"] @ p["w1"]) @ p["w2"]
    return jax.numpy.mean((out - batch["y"]) ** 2)


def fsdp_settings() -> dict:
    return dict(steps=6, batch_size=16, key=jax.random.key(5), log_every=2)


def fsdp_report(mine: dict, mesh: Mesh) -> dict:
    """`fit` with parameters split over "model" (within each process) and
    batches over "data" (across the processes), each holding its half of
    the examples; the parameters gathered to be compared."""
    import jaxopt_lite as jol

    opt = jol.adam(0.01, eps=1e-3)
    result = jol.fit(fsdp_loss, fsdp_params(), opt, mine, mesh=mesh, **fsdp_settings())
    gather = jax.jit(lambda t: t, out_shardings=NamedSharding(mesh, P()))
    return {
        "fsdp_mesh_processes": [[d.process_index for d in row] for row in mesh.devices],
        "fsdp_spec": str(result.params["w1"].sharding.spec),
        "fsdp_local_shape": list(result.params["w1"].addressable_shards[0].data.shape),
        "fsdp_w1": np.asarray(gather(result.params["w1"])).tolist(),
        "fsdp_w2": np.asarray(gather(result.params["w2"])).tolist(),
        "fsdp_loss": result.history["loss"].tolist(),
    }


if __name__ == "__main__":
    if sys.argv[1] == "mesh":
        report = mesh_report()
    elif sys.argv[1] == "fit":
        report = fit_report(int(sys.argv[3]), sys.argv[4], sys.argv[5])
    else:
        report = distributed_report(int(sys.argv[3]), sys.argv[4])
    with open(sys.argv[2], "w") as f:
        json.dump(report, f)
