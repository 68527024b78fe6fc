"""Section ``fsdp``: per-device memory of sharded parameters (FSDP).

A ``64 -> H -> H -> 10`` MLP (ReLU, softmax cross-entropy on the digits),
Adam, batch 128, trained by `jaxopt_lite.fit` on 8 devices laid out three
ways: replicated parameters (a ``("data",)`` mesh of 8), FSDP on a
``("data", "model")`` mesh of (2, 4), and FSDP on a (1, 8) mesh. Each row
reports the bytes of parameters plus optimizer state that the fullest device
holds (summed over the arrays' ``addressable_shards``), their ratio to the
replicated layout, and the steps per second of a second, compiled call.

The 8 devices are simulated CPU devices (``--xla_force_host_platform_device_
count=8``, which must be set before JAX starts), so the section runs in a
child process. On a CPU they share the same cores and memory: the bytes are
what a real device would hold, the speeds are not what real devices reach
(there the gathers of FSDP cost interconnect bandwidth; here, copies).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from typing import Any

from jaxopt_lite.benchmarks import _harness

HIDDEN = {"smoke": 128, "quick": 512, "full": 2048}
STEPS = {"smoke": 4, "quick": 10, "full": 200}
LAYOUTS = {"smoke": 2, "quick": 3, "full": 3}  # smoke: without the (1, 8) mesh

_CHILD = textwrap.dedent(
    """
    import collections, json, sys, time
    import jax, jax.numpy as jnp
    import jaxopt_lite as jol
    from jaxopt_lite.benchmarks import _problems

    hidden, steps, count = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    data, _ = _problems.digits()
    k1, k2, k3 = jax.random.split(jax.random.key(0), 3)
    params = {
        "w1": jax.random.normal(k1, (64, hidden)) * 0.1,
        "b1": jnp.zeros(hidden),
        "w2": jax.random.normal(k2, (hidden, hidden)) / hidden**0.5,
        "b2": jnp.zeros(hidden),
        "w3": jax.random.normal(k3, (hidden, 10)) / hidden**0.5,
        "b3": jnp.zeros(10),
    }

    def loss(p, batch):
        h = jax.nn.relu(batch["x"] @ p["w1"] + p["b1"])
        h = jax.nn.relu(h @ p["w2"] + p["b2"])
        logp = jax.nn.log_softmax(h @ p["w3"] + p["b3"])
        return -jnp.mean(jnp.take_along_axis(logp, batch["y"][:, None], axis=1))

    def device_bytes(tree):
        per = collections.Counter()
        for x in jax.tree.leaves(tree):
            for shard in x.addressable_shards:
                per[shard.device] += shard.data.nbytes
        return max(per.values())

    layouts = {
        "replicated, (8,) data": ((8,), ("data",)),
        "fsdp, (2, 4) data x model": ((2, 4), ("data", "model")),
        "fsdp, (1, 8) data x model": ((1, 8), ("data", "model")),
    }
    rows = []
    for name, (shape, axes) in list(layouts.items())[:count]:
        mesh = jax.make_mesh(shape, axes)
        kw = dict(steps=steps, batch_size=128, key=jax.random.key(1), mesh=mesh,
                  progress=False)
        jol.fit(loss, params, jol.adam(1e-3), data, **kw)  # compiles
        start = time.perf_counter()
        result = jol.fit(loss, params, jol.adam(1e-3), data, **kw)
        jax.block_until_ready(result.params)
        seconds = time.perf_counter() - start
        rows.append({
            "layout": name,
            "hidden": hidden,
            "params_bytes": device_bytes(result.params),
            "opt_state_bytes": device_bytes(result.opt_state),
            "bytes_per_device": device_bytes((result.params, result.opt_state)),
            "steps_per_s": steps / seconds,
            "final_loss": float(result.history["loss"][-1]),
        })
    print(json.dumps(rows))
    """
)


def fsdp(mode: _harness.Mode) -> dict[str, Any]:
    """Run the section; see the module docstring."""
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    env["XLA_FLAGS"] = "--xla_force_host_platform_device_count=8"
    env["JAX_PLATFORMS"] = "cpu"
    root = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
    hidden, steps = HIDDEN[mode.name], STEPS[mode.name]
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            _CHILD,
            str(hidden),
            str(steps),
            str(LAYOUTS[mode.name]),
        ],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    rows = json.loads(out.stdout.strip().splitlines()[-1])
    whole = rows[0]["bytes_per_device"]
    for row in rows:
        row["vs_replicated"] = row["bytes_per_device"] / whole
    return {"rows": rows, "devices": 8, "steps": steps}
