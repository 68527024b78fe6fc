"""Runs in a subprocess of tests/test_fsdp.py with 8 simulated CPU devices.

Sharded parameters (FSDP) on a ``("data", "model")`` mesh of (2, 4) against
the one-device run. Prints one JSON object of measurements; the test asserts
on them. The device count must be set before JAX starts, hence the process.
"""

from __future__ import annotations

import collections
import json
import os
import sys
import tempfile

if __name__ == "__main__":  # before JAX starts; importing this file sets nothing
    os.environ["XLA_FLAGS"] = (
        os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8"
    )
    os.environ["JAX_PLATFORMS"] = "cpu"

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import PartitionSpec as P
from mesh_helper import error

import jaxopt_lite as jol

# eps keeps Adam from turning the rounding of gradients that are almost 0 into
# steps of +-learning_rate, so that rounding stays rounding in the comparisons
OPT = jol.adam(0.01, eps=1e-3)
KEY = jax.random.key(3)
COMMON = dict(steps=10, batch_size=32, key=KEY, chunk_size=5, progress=False)


def problem(dtype=np.float32):
    """An MLP with two large leaves (w1: 32 x 512, w2: 512 x 60) and small
    ones, a large model-state leaf (an average of w2), and its data."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(128, 32)).astype(dtype)
    data = {"x": x, "y": np.sin(x.sum(1)).astype(dtype)}
    params = {
        "w1": (0.2 * rng.normal(size=(32, 512))).astype(dtype),
        "b1": np.zeros(512, dtype),
        "w2": (0.05 * rng.normal(size=(512, 60))).astype(dtype),
        "w3": (0.1 * rng.normal(size=60)).astype(dtype),
    }
    state = {"w2_avg": np.zeros((512, 60), dtype), "calls": np.zeros((), dtype)}
    return params, state, data


def forward(p, x):
    h = jnp.tanh(x @ p["w1"] + p["b1"])
    return jnp.tanh(h @ p["w2"]) @ p["w3"]


def loss_fn(p, s, batch):
    loss = jnp.mean((forward(p, batch["x"]) - batch["y"]) ** 2)
    w2 = jax.lax.stop_gradient(p["w2"])
    return loss, {"w2_avg": 0.9 * s["w2_avg"] + 0.1 * w2, "calls": s["calls"] + 1}


def rel(a, b) -> float:
    """The largest leaf-wise relative error, normwise: max |a - b| / max |b|."""
    return max(
        float(np.max(np.abs(np.asarray(x) - np.asarray(y))) / np.max(np.abs(y)))
        for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)
        if np.max(np.abs(y)) > 0
    )


def specs(tree) -> dict[str, str]:
    leaves = jax.tree_util.tree_flatten_with_path(tree)[0]
    return {jax.tree_util.keystr(k): str(x.sharding.spec) for k, x in leaves}


def device_bytes(*trees) -> int:
    """The most bytes any one device holds of ``trees``' arrays."""
    per = collections.Counter()
    for x in jax.tree.leaves(trees):
        for shard in x.addressable_shards:
            per[shard.device] += shard.data.nbytes
    return max(per.values())


def bits_equal(a, b) -> bool:
    return all(
        np.array_equal(np.asarray(x), np.asarray(y))
        for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)
    )


def fit_report(out: dict, mesh) -> None:
    params, state, data = problem()
    alone = jol.fit(loss_fn, params, OPT, data, state=state, **COMMON)
    fsdp = jol.fit(loss_fn, params, OPT, data, state=state, mesh=mesh, **COMMON)
    out["f32_params_rel"] = rel(fsdp.params, alone.params)
    out["f32_state_rel"] = rel(fsdp.state, alone.state)
    out["f32_loss_rel"] = rel(fsdp.history["loss"], alone.history["loss"])
    out["params_spec"] = specs(fsdp.params)
    out["state_spec"] = specs(fsdp.state)
    out["mu_spec"] = specs(fsdp.opt_state[0].mu)
    out["nu_spec"] = specs(fsdp.opt_state[0].nu)
    out["count_spec"] = str(fsdp.opt_state[0].count.sharding.spec)
    out["bytes_fsdp"] = device_bytes(fsdp.params, fsdp.opt_state)
    # replicated, every device holds what the one device holds
    out["bytes_replicated"] = device_bytes(alone.params, alone.opt_state)

    with tempfile.TemporaryDirectory() as folder:
        run = dict(COMMON, state=state, mesh=mesh, checkpoint_dir=folder)
        jol.fit(loss_fn, params, OPT, data, **dict(run, steps=5))
        resumed = jol.fit(loss_fn, params, OPT, data, **dict(run, resume=True))
    out["resume_bit_identical"] = bits_equal(
        (resumed.params, resumed.opt_state, resumed.state, resumed.history["loss"]),
        (fsdp.params, fsdp.opt_state, fsdp.state, fsdp.history["loss"]),
    )
    out["resume_params_spec"] = specs(resumed.params)

    def rule(path, leaf):  # b1 split although small; w1 along its rows
        name = jax.tree_util.keystr(path)
        return {"['b1']": P("model"), "['w1']": P("model", None)}.get(name)

    ruled = jol.fit(
        loss_fn, params, OPT, data, state=state, mesh=mesh, param_sharding=rule,
        **COMMON,
    )  # fmt: skip
    out["rule_spec"] = specs(ruled.params)
    out["rule_mu_spec"] = specs(ruled.opt_state[0].mu)
    out["rule_params_rel"] = rel(ruled.params, alone.params)

    with jax.enable_x64(True):
        params, state, data = problem(np.float64)
        alone = jol.fit(loss_fn, params, OPT, data, state=state, **COMMON)
        fsdp = jol.fit(loss_fn, params, OPT, data, state=state, mesh=mesh, **COMMON)
        out["f64_params_rel"] = rel(fsdp.params, alone.params)
        out["f64_state_rel"] = rel(fsdp.state, alone.state)
        out["f64_dtype"] = str(fsdp.params["w1"].dtype)


class Linen(nn.Module):
    """A kernel annotated to be split along its rows (the size rule would
    split its longer columns) over ``axis``, then an unannotated small one."""

    axis: str = "model"

    @nn.compact
    def __call__(self, x):
        init = nn.with_partitioning(nn.initializers.lecun_normal(), (self.axis, None))
        x = jnp.tanh(nn.Dense(256, kernel_init=init)(x))
        return nn.Dense(1)(x)[:, 0]


def linen_report(out: dict, mesh) -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(128, 128)).astype(np.float32)
    data = {"x": x, "y": np.sin(x.sum(1))}
    model = Linen()
    params = model.init(jax.random.key(0), x[:2])["params"]

    def loss(p, batch):
        return jnp.mean((model.apply({"params": p}, batch["x"]) - batch["y"]) ** 2)

    alone = jol.fit(loss, params, OPT, data, **COMMON)
    fsdp = jol.fit(loss, params, OPT, data, mesh=mesh, **COMMON)
    out["linen_params_rel"] = rel(fsdp.params, alone.params)
    out["linen_spec"] = specs(fsdp.params)
    out["linen_mu_spec"] = specs(fsdp.opt_state[0].mu)
    logical = Linen("mlp").init(jax.random.key(0), x[:2])["params"]
    out["error_linen_axis"] = error(
        lambda: jol.fit(loss, logical, OPT, data, mesh=mesh, **COMMON)
    )


def sweep_report(out: dict) -> None:
    params, _, data = problem()

    def loss(p, batch):
        return jnp.mean((forward(p, batch["x"]) - batch["y"]) ** 2)

    def init(key):
        w1 = 0.2 * jax.random.normal(key, (32, 512))
        return {**jax.tree.map(jnp.asarray, params), "w1": w1}

    hp = {"learning_rate": [0.01, 0.03]}
    settings = dict(seeds=2, steps=6, batch_size=32, key=KEY)

    def make(learning_rate):
        return jol.adam(learning_rate, eps=1e-3)

    base = jol.sweep(make, hp, loss, init, data, **settings)
    grid = jax.make_mesh((2, 2, 2), ("runs", "data", "model"))
    split = jol.sweep(make, hp, loss, init, data, mesh=grid, **settings)
    out["sweep_params_rel"] = rel(split.params, base.params)
    out["sweep_loss_rel"] = rel(split.final_loss, base.final_loss)
    out["sweep_spec"] = specs(split.params)
    runs = {"w1": P("runs"), "b1": None, "w2": None, "w3": None}
    out["error_sweep_runs"] = error(
        lambda: jol.sweep(
            make, hp, loss, params, data, mesh=grid, param_sharding=runs, **settings
        )
    )


def errors_report(out: dict, mesh) -> None:
    params, state, data = problem()

    def fit(rule):
        return lambda: jol.fit(
            loss_fn, params, OPT, data, state=state, mesh=mesh, param_sharding=rule,
            **COMMON,
        )  # fmt: skip

    typo = {"w1": P("modle"), "b1": None, "w2": None, "w3": None}
    out["error_missing_axis"] = error(fit(typo))
    out["error_divisible"] = error(
        fit(lambda path, leaf: P(("data", "model")) if leaf.shape == (60,) else None)
    )
    out["error_structure"] = error(fit({"w1": P("model"), "w2": None}))
    out["error_returns"] = error(fit(lambda path, leaf: "model"))
    out["error_rank"] = error(fit(lambda path, leaf: P(None, None, "model")))


def main() -> dict:
    out: dict = {"devices": jax.device_count()}
    mesh = jax.make_mesh((2, 4), ("data", "model"))
    fit_report(out, mesh)
    linen_report(out, mesh)
    sweep_report(out)
    errors_report(out, mesh)
    return out


if __name__ == "__main__":
    json.dump(main(), sys.stdout)
