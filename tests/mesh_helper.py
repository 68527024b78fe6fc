"""Runs in a subprocess of tests/test_mesh.py with 8 simulated CPU devices.

The device count must be set before JAX starts, hence the separate process.
Prints one JSON object of measurements; the test asserts on them.
"""

from __future__ import annotations

import json
import os
import sys

if __name__ == "__main__":  # before JAX starts; importing this file sets nothing
    os.environ["XLA_FLAGS"] = (
        os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8"
    )
    os.environ["JAX_PLATFORMS"] = "cpu"

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh

import jaxopt_lite as jol
from jaxopt_lite._host import placement as _mesh
from jaxopt_lite._loop import train as _loop
from jaxopt_lite._loop.loss import Loss, LossForm
from jaxopt_lite._loop.sampling import Sampling

X = jax.random.normal(jax.random.key(0), (64, 3))
DATA = {"x": X, "y": X @ jnp.array([1.0, -2.0, 0.5]) + 0.3}
PARAMS = {"w": jnp.zeros(3), "b": jnp.zeros(())}
KEY = jax.random.key(7)
OPT = jol.adam(0.05)


def loss_fn(p, batch):
    return jnp.mean((batch["x"] @ p["w"] + p["b"] - batch["y"]) ** 2)


def init(key):
    return {"w": 0.1 * jax.random.normal(key, (3,)), "b": jnp.zeros(())}


def rel(a, b) -> float:
    """Largest relative difference over all leaves."""
    diffs = jax.tree.map(
        lambda x, y: float(
            np.max(
                np.abs(np.asarray(x) - np.asarray(y)) / (np.abs(np.asarray(y)) + 1e-6)
            )
        ),
        a,
        b,
    )
    return max(jax.tree.leaves(diffs))


def error(fn) -> str:
    try:
        fn()
    except (ValueError, TypeError) as e:
        return f"{type(e).__name__}: {e}"
    return "no error"


def main() -> dict:
    out: dict = {"devices": jax.device_count()}
    auto = Mesh(np.array(jax.devices()), ("data",))
    explicit = jax.make_mesh((8,), ("data",))  # explicit axis types by default

    settings = dict(epochs=2, batch_size=16, key=KEY, progress=False)
    alone = jol.fit(loss_fn, PARAMS, OPT, DATA, **settings)
    for name, mesh in [("auto", auto), ("explicit", explicit)]:
        sharded = jol.fit(loss_fn, PARAMS, OPT, DATA, mesh=mesh, **settings)
        out[f"fit_{name}_params_rel"] = rel(sharded.params, alone.params)
        out[f"fit_{name}_loss_rel"] = rel(
            sharded.history["loss"], alone.history["loss"]
        )
        out[f"fit_{name}_params_spec"] = str(sharded.params["w"].sharding.spec)

    def stateful(p, s, batch):
        return loss_fn(p, batch), {"mean": 0.9 * s["mean"] + 0.1 * batch["y"].mean()}

    state = {"mean": jnp.zeros(())}
    alone = jol.fit(stateful, PARAMS, OPT, DATA, state=state, **settings)
    sharded = jol.fit(stateful, PARAMS, OPT, DATA, state=state, mesh=auto, **settings)
    out["fit_state_rel"] = rel(sharded.state, alone.state)
    out["fit_state_spec"] = str(sharded.state["mean"].sharding.spec)

    # The gradient all-reduce is XLA's: compile one step with a split batch.
    cfg = _loop.LoopConfig(
        sampling=Sampling(64, 16, True, False),
        batch_sharding=_mesh.batch_sharding(auto),
    )
    state = _loop.init_train_state(PARAMS, None, OPT, KEY, cfg)
    data = _mesh.place_data(auto, DATA)
    state = _mesh.put(state, _mesh.replicated(auto))
    loss = Loss(loss_fn, LossForm())
    step = jax.jit(lambda s, d: _loop.train_step(loss, OPT, cfg, s, d))
    out["step_hlo_has_all_reduce"] = (
        "all-reduce" in step.lower(state, data).compile().as_text()
    )
    out["data_spec"] = str(data["x"].sharding.spec)

    hp = {"learning_rate": [0.01, 0.03, 0.05, 0.1]}
    sweep_settings = dict(seeds=2, epochs=2, batch_size=16, key=KEY, shuffle=False)

    def make(learning_rate):
        return jol.adam(learning_rate)

    base = jol.sweep(make, hp, loss_fn, init, DATA, **sweep_settings)
    meshes = {
        "data": auto,
        "runs": Mesh(np.array(jax.devices()[:4]), ("runs",)),
        "runs_data": jax.make_mesh((2, 4), ("runs", "data")),
    }
    for name, mesh in meshes.items():
        result = jol.sweep(make, hp, loss_fn, init, DATA, mesh=mesh, **sweep_settings)
        out[f"sweep_{name}_params_rel"] = rel(result.params, base.params)
        out[f"sweep_{name}_loss_rel"] = rel(result.final_loss, base.final_loss)
        out[f"sweep_{name}_params_spec"] = str(result.params["w"].sharding.spec)

    out["error_batch"] = error(
        lambda: jol.fit(loss_fn, PARAMS, OPT, DATA, steps=2, batch_size=12, mesh=auto)
    )
    out["error_axis"] = error(
        lambda: jol.fit(
            loss_fn, PARAMS, OPT, DATA, steps=2, batch_size=16, mesh=meshes["runs"]
        )
    )
    out["error_sweep_batch"] = error(
        lambda: jol.sweep(
            make,
            hp,
            loss_fn,
            PARAMS,
            DATA,
            steps=2,
            batch_size=18,
            mesh=meshes["runs_data"],
        )
    )
    return out


if __name__ == "__main__":
    json.dump(main(), sys.stdout)
