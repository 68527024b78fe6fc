"""Section ``checkpoints``: what saving the run state every chunk costs `fit`,
and how much of it the Orbax backend hides behind compute.

A digits MLP with two hidden layers (64 -> H -> H -> 10, Adam, batch 128:
its state is the parameters and Adam's two moments), trained with
``chunk_size`` fixed, so a checkpoint is saved after every chunk. The
contestants differ only in ``checkpointing``:

- ``no checkpoint``;
- ``npz``: one ``checkpoint.npz``, written while the host waits;
- ``orbax, sync``: Orbax with ``async_save=False`` (the host waits);
- ``orbax, async``: Orbax's default, the files written in a background
  thread while the next chunk runs.

``save_ms`` is what each save costs the run: ``(time - time without
checkpoints) / saves``, the median over the interleaved repeats;
``hidden_fraction`` is the part of the synchronous Orbax save that the
asynchronous one takes off the run's time, ``1 - save_ms(async) /
save_ms(sync)`` (1: fully hidden, but for the last save, which the run waits
for; on a CPU the writer thread shares the cores with the compiled chunk, so
less is hidden than on an accelerator).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import jaxopt_lite as jol
from jaxopt_lite.benchmarks import _harness, _problems

# mode -> (hidden width, steps, steps per chunk)
SIZES = {"smoke": (32, 8, 4), "quick": (512, 80, 20), "full": (2048, 400, 40)}
VARIANTS = {
    "no checkpoint": None,
    "npz": jol.Checkpointing(backend="npz"),
    "orbax, sync": jol.Checkpointing(backend="orbax", async_save=False),
    "orbax, async": jol.Checkpointing(backend="orbax", async_save=True),
}


def _init(key: jax.Array, hidden: int) -> dict[str, jax.Array]:
    k1, k2, k3 = jax.random.split(key, 3)
    return {
        "w1": jax.random.normal(k1, (64, hidden)) * jnp.sqrt(2.0 / 64),
        "w2": jax.random.normal(k2, (hidden, hidden)) * jnp.sqrt(2.0 / hidden),
        "w3": jax.random.normal(k3, (hidden, 10)) * jnp.sqrt(2.0 / hidden),
    }


def _loss(params: dict[str, jax.Array], batch: dict[str, jax.Array]) -> jax.Array:
    h = jax.nn.relu(batch["x"] @ params["w1"])
    h = jax.nn.relu(h @ params["w2"])
    logp = jax.nn.log_softmax(h @ params["w3"])
    return -jnp.mean(jnp.take_along_axis(logp, batch["y"][:, None], axis=1))


def _size(folder: str) -> int:
    return sum(
        os.path.getsize(os.path.join(root, name))
        for root, _, names in os.walk(folder)
        for name in names
    )


def checkpoints(mode: _harness.Mode, data: dict[str, np.ndarray]) -> dict[str, Any]:
    """Time fit with a checkpoint after every chunk, per backend."""
    if _harness.optional_module("orbax.checkpoint") is None:
        return {"rows": [], "skipped": ["orbax-checkpoint is not installed"]}
    hidden, steps, chunk = SIZES[mode.name]
    params = _init(jax.random.key(0), hidden)
    on_device = jax.device_put(data)
    optimizer = jol.adam(1e-3)
    scratch = tempfile.mkdtemp(prefix="jaxopt-lite-bench-")
    folders: list[str] = []

    def contestant(name: str, checkpointing: Any) -> _harness.Contestant:
        def setup() -> str | None:
            if checkpointing is None:
                return None
            folders.append(tempfile.mkdtemp(dir=scratch))
            return folders[-1]

        def run(folder: str | None) -> Any:
            return jol.fit(
                _loss, params, optimizer, on_device, steps=steps,
                batch_size=_problems.BATCH_SIZE, chunk_size=chunk,
                key=jax.random.key(1), progress=False, checkpoint_dir=folder,
                checkpointing=checkpointing,
            ).params  # fmt: skip

        return _harness.Contestant(name, run, setup)

    try:
        timings = _harness.interleaved(
            [contestant(n, c) for n, c in VARIANTS.items()], mode.repeats
        )
        size = _size(folders[-1])  # the last Orbax run: its one kept step
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    saves = steps // chunk
    base = timings["no checkpoint"].times_s

    def save_ms(name: str) -> float:
        extra = [t - b for t, b in zip(timings[name].times_s, base, strict=True)]
        return float(np.median(extra)) / saves * 1e3

    rows = []
    for name in VARIANTS:
        t = timings[name]
        row: dict[str, Any] = {
            "variant": name,
            "steps": steps,
            "median_s": t.median_s,
            "time_vs_none": _harness.time_ratio(timings, name, "no checkpoint"),
        }
        if name != "no checkpoint":  # timing noise can make it negative
            row["saves"] = saves
            row["save_ms"] = save_ms(name)
        rows.append(row)
    by = {r["variant"]: r for r in rows}
    sync, background = by["orbax, sync"]["save_ms"], by["orbax, async"]["save_ms"]
    state_mb = sum(x.size * 3 * 4 for x in jax.tree.leaves(params)) / 1e6
    return {
        "rows": rows,
        "ratios": [
            {
                "problem": f"mlp 64-{hidden}-{hidden}-10, state {state_mb:.3g} MB",
                "checkpoint_mb": size / 1e6,
                "hidden_fraction": 1 - background / sync if sync > 0 else float("nan"),
            }
        ],
    }
