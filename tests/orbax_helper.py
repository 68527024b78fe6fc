"""The problem of tests/test_checkpoint_orbax.py, and its subprocesses.

``killed DIR``: `fit` with Orbax checkpoints in DIR whose second save blocks
for good once it started writing (it prints ``writing`` then), for the test to
kill the process mid-save. ``scale OUT PID PORT DIR PHASE``: one of two
processes (2 CPU devices each) joined by ``jax.distributed`` over 127.0.0.1
with gloo, training over a mesh of the 4 devices with checkpoints in DIR:
PHASE ``first`` runs uninterrupted, then again until a (simulated) preemption
notice, and saves a state split over the 4 devices (DIR-sharded); PHASE
``resume`` resumes the run and restores that state (fresh processes). Writes
one JSON object of measurements to OUT.
"""

from __future__ import annotations

import json
import os
import sys
import threading

if __name__ == "__main__":  # before JAX starts; importing this file sets nothing
    os.environ["XLA_FLAGS"] = os.environ.get("XLA_FLAGS", "") + (
        " --xla_force_host_platform_device_count=2"
    )
    os.environ["JAX_PLATFORMS"] = "cpu"

import jax
import jax.numpy as jnp
import numpy as np
import processes

X = np.linspace(-1.0, 1.0, 64, dtype=np.float32)
DATA = {"x": X, "y": 3.0 * X + 1.0}
PARAMS = {"w": np.float32(0.0), "b": np.float32(0.0)}  # no JAX call yet
OPTIONS = dict(steps=24, batch_size=8, chunk_size=4, progress=False)


def loss_fn(p, batch):
    return jnp.mean((p["w"] * batch["x"] + p["b"] - batch["y"]) ** 2)


def run(**options):
    import jaxopt_lite as jol  # after jax.distributed.initialize, if any

    options = {**OPTIONS, "key": jax.random.key(0), **options}
    return jol.fit(loss_fn, PARAMS, jol.adam(0.1), DATA, **options)


def block_second_save(signal) -> None:
    """Make Orbax's second write of a manifest call ``signal()`` and hang."""
    from orbax.checkpoint._src.handlers import json_checkpoint_handler as handler

    write, seen = handler.JsonCheckpointHandler._save_fn, []

    async def blocked(self, x, directory):
        if isinstance(x, dict) and "leaves" in x:
            seen.append(directory)
            if len(seen) == 2:
                signal()
                threading.Event().wait()  # until the process is killed
        return await write(self, x, directory)

    handler.JsonCheckpointHandler._save_fn = blocked


def killed(folder: str) -> None:
    import jaxopt_lite as jol

    block_second_save(lambda: print("writing", flush=True))
    run(checkpoint_dir=folder, checkpointing=jol.Checkpointing(async_save=True))


def scale_loss(p, batch):
    return jnp.mean((batch["x"] @ p["w"] + p["b"] - batch["y"]) ** 2)


def scale_data() -> dict:
    rng = np.random.default_rng(7)
    x = rng.normal(size=(64, 3)).astype(np.float32)
    return {"x": x, "y": x @ np.array([1.0, -2.0, 0.5], np.float32) + 0.3}


def sharded_state(mesh, folder: str, phase: str) -> dict:
    """Save (phase ``first``) or restore a tree with a leaf split over the
    mesh's 4 devices, through the Orbax store: restored split the same way
    and replicated."""
    import pathlib

    from jax.sharding import NamedSharding
    from jax.sharding import PartitionSpec as P

    from jaxopt_lite._host import orbax_store

    split, copy = NamedSharding(mesh, P("data")), NamedSharding(mesh, P())
    values = np.arange(16.0, dtype=np.float32).reshape(8, 2)

    def tree(w, split):
        return {
            "w": jax.make_array_from_callback((8, 2), split, lambda i: w[i]),
            "key": jax.random.wrap_key_data(jax.make_array_from_callback(
                (2,), copy, lambda i: np.array([0, 42], np.uint32)[i])),
        }  # fmt: skip

    store = orbax_store.OrbaxStore(
        pathlib.Path(folder), keep_last=1, keep_best=None, best_metric="loss",
        best_mode="min", async_save=True, replace=False,
    )  # fmt: skip
    out = {}
    if phase == "first":
        store.save(3, tree(values, split), {"loss": np.arange(3.0)}, {"a": 1})
    else:
        bound = {"loss": jax.ShapeDtypeStruct((5,), np.float64)}
        for name, sharding in (("split", split), ("copy", copy)):
            like = tree(np.zeros_like(values), sharding)
            got = store.restore(like, bound)
            w = got.tree["w"]
            out[name] = {
                "spec": str(w.sharding.spec),
                "shards": [  # [first row, end row, values] of each local shard
                    [s.index[0].start or 0, s.index[0].stop or 8, s.data.tolist()]
                    for s in w.addressable_shards
                ],
                "key": np.asarray(jax.random.key_data(got.tree["key"])).tolist(),
                "loss": got.arrays["loss"].tolist(),
                "metadata": got.metadata,
            }
    store.close()
    return out


def scale_report(process: int, port: str, folder: str, phase: str) -> dict:
    """`fit` over two processes' 4 devices: uninterrupted, preempted at step 8
    (phase ``first``), or resumed from that checkpoint (``resume``); through
    Orbax (the default here) and the one-file ``.npz`` of process 0."""
    from jax.experimental import multihost_utils

    processes.join(process, port)
    import jaxopt_lite as jol  # after joining: importing it starts JAX

    mesh = jax.make_mesh((jax.device_count(),), ("data",))
    data = jax.tree.map(lambda a: a[32 * process : 32 * process + 32], scale_data())
    params = {"w": np.zeros(3, np.float32), "b": np.zeros((), np.float32)}
    options = dict(
        steps=16, batch_size=16, chunk_size=4, mesh=mesh, key=jax.random.key(4),
        log_every=2, progress=False, checkpoint_dir=folder,
    )  # fmt: skip

    npz = {"checkpoint_dir": folder + "-npz", "checkpointing": jol.Checkpointing(
        backend="npz")}  # fmt: skip

    def fit(**more):
        return jol.fit(scale_loss, params, jol.adam(0.05), data, **{**options, **more})

    def report(result) -> dict:
        leaves = jax.tree.leaves((result.params, result.opt_state))
        return {
            "step": result.step,
            "preempted": result.preempted,
            "interrupted": result.interrupted,
            "leaves": [np.asarray(x).tolist() for x in leaves],
            "specs": [str(x.sharding.spec) for x in leaves],
            "history": {k: v.tolist() for k, v in result.history.items()},
        }

    out: dict = {"sharded": sharded_state(mesh, folder + "-sharded", phase)}
    if phase == "first":
        out["whole"] = report(
            jol.fit(scale_loss, params, jol.adam(0.05), data,
                    **{**options, "checkpoint_dir": None})
        )  # fmt: skip
        calls: list[int] = []

        def notice(index: int) -> bool:  # the job is told at the second chunk
            calls.append(index)
            return index == 1

        multihost_utils.reached_preemption_sync_point = notice
        out["part"] = report(fit())
        out["calls"] = calls
        out["steps"] = sorted(int(n) for n in os.listdir(folder) if n.isdigit())
        out["part_npz"] = report(fit(**npz))
    else:
        out["resumed"] = report(fit(resume=True))
        out["resumed_npz"] = report(fit(resume=True, **npz))
    jax.distributed.shutdown()
    return out


if __name__ == "__main__":
    if sys.argv[1] == "killed":
        killed(sys.argv[2])
    else:
        result = scale_report(int(sys.argv[3]), sys.argv[4], sys.argv[5], sys.argv[6])
        with open(sys.argv[2], "w") as f:
            json.dump(result, f)
