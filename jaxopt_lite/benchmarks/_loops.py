"""Sections 1 and 5: training-loop throughput and the cost of fit's features.

Contestants, all training the same MLP on the same data with Adam, batch 128:

- ``fit``: ``jaxopt_lite.fit`` with its defaults (exact shuffling, NaN guard,
  a history row per step), ``progress=False``;
- ``optax scan``: a hand-written ``jax.jit``-ed ``lax.scan`` over steps with
  ``optax.adam``, batches drawn with ``jax.random.randint``;
- ``optax python loop``: the usual idiom, a jitted step (batch sampled on the
  device, parameter and state buffers donated) called from a Python loop;
- ``torch.optim``: the same model in PyTorch with ``torch.optim.Adam``
  (skipped when torch is not installed), timed against ``fit`` in a block of
  its own, at torch's default thread count and at one thread.
"""

from __future__ import annotations

import contextlib
import functools
import io
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

import jaxopt_lite as jol
from jaxopt_lite.benchmarks import _harness, _problems
from jaxopt_lite.benchmarks._harness import Contestant

LEARNING_RATE = 1e-3
B = _problems.BATCH_SIZE


def _take(data: Any, idx: jax.Array) -> Any:
    return jax.tree.map(lambda a: jnp.take(a, idx, axis=0), data)


def scan_loop(
    optimizer: optax.GradientTransformation,
    loss_fn: Callable,
    steps: int,
    num_examples: int,
    extras: Sequence[str] = (),
) -> Callable:
    """A hand-written compiled loop: ``run(params, key, data) -> (params, outputs)``.

    ``extras`` adds fit's features one by one: ``"grad_norm"`` (recorded per
    step), ``"lr"`` (the learning rate read from the state per step),
    ``"guard"`` (keep the old state when the loss or gradient is not finite).
    """

    def run(params, key, data):
        def step(carry, k):
            params, opt_state = carry
            batch = _take(data, jax.random.randint(k, (B,), 0, num_examples))
            loss, grads = jax.value_and_grad(loss_fn)(params, batch)
            updates, new_state = optimizer.update(grads, opt_state, params)
            new_params = optax.apply_updates(params, updates)
            out = {"loss": loss}
            if "grad_norm" in extras or "guard" in extras:
                out["grad_norm"] = optax.tree.norm(grads)
            if "guard" in extras:
                ok = jnp.isfinite(loss) & jnp.isfinite(out["grad_norm"])
                new_params, new_state = jax.tree.map(
                    lambda a, b: jnp.where(ok, a, b),
                    (new_params, new_state),
                    (params, opt_state),
                )
            if "lr" in extras:
                out["learning_rate"] = jol.current_learning_rate(new_state)
            return (new_params, new_state), out

        carry = (params, optimizer.init(params))
        (params, _), out = jax.lax.scan(step, carry, jax.random.split(key, steps))
        return params, out

    return jax.jit(run)


def scan_contestant(name, optimizer, params, data, steps, extras=()) -> Contestant:
    n = len(data["x"])
    run = scan_loop(optimizer, _problems.mlp_loss, steps, n, extras)
    key = jax.random.key(0)
    return Contestant(name, lambda _: run(params, key, data))


def python_loop_contestant(name, optimizer, params, data, steps) -> Contestant:
    """The optax idiom: one jitted, buffer-donating step per Python iteration."""
    n = len(data["x"])

    @functools.partial(jax.jit, donate_argnums=(0, 1))
    def step(params, opt_state, key, data):
        key, sub = jax.random.split(key)
        batch = _take(data, jax.random.randint(sub, (B,), 0, n))
        loss, grads = jax.value_and_grad(_problems.mlp_loss)(params, batch)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, key, loss

    def setup():
        fresh = jax.tree.map(jnp.copy, params)
        return fresh, optimizer.init(fresh), jax.random.key(0)

    def run(arg):
        p, s, key = arg
        for _ in range(steps):
            p, s, key, _loss = step(p, s, key, data)
        return p

    return Contestant(name, run, setup)


def fit_contestant(name, params, data, steps, **options) -> Contestant:
    """``jol.fit`` with ``options``; one optimizer object, so the compiled loop
    is reused from the second call on."""
    optimizer = jol.adam(LEARNING_RATE)
    key = jax.random.key(0)
    quiet = options.get("progress", False)
    options.setdefault("progress", False)

    def run(_):
        with (
            contextlib.redirect_stderr(io.StringIO())
            if quiet
            else (contextlib.nullcontext())
        ):
            result = jol.fit(
                _problems.mlp_loss,
                params,
                optimizer,
                data,
                steps=steps,
                batch_size=B,
                key=key,
                **options,
            )
        return result.params

    return Contestant(name, run)


def torch_contestant(torch: Any, name, params, data, steps, threads) -> Contestant:
    """``torch.optim.Adam`` on the same MLP, batches from ``torch.randint``, on
    ``threads`` intra-op threads."""
    x = torch.from_numpy(np.asarray(data["x"]))
    y = torch.from_numpy(np.asarray(data["y"])).long()
    n = x.shape[0]
    cross_entropy = torch.nn.functional.cross_entropy

    def setup():
        torch.set_num_threads(threads)
        model = _problems.torch_mlp(torch, params)
        return model, torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)

    def run(arg):
        model, opt = arg
        generator = torch.Generator().manual_seed(0)
        for _ in range(steps):
            idx = torch.randint(0, n, (B,), generator=generator)
            loss = cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        return None

    return Contestant(name, run, setup)


def _versus_torch(torch, mode, fit, params, data, rows, hidden) -> dict[str, Any]:
    """Time torch.optim against ``fit`` in a block of their own: torch's thread
    pool, still spinning after a torch call, slows whatever JAX runs next, so
    interleaving it with the JAX-only contestants would skew their ratios."""
    steps = mode.loop_steps
    torch_steps = min(steps, mode.torch_steps)
    default_threads = torch.get_num_threads()
    names, block = [], [fit]
    # torch's default thread count, and one thread: on a small, busy machine
    # its thread pool can be far slower than one thread
    for threads in mode.torch_threads or sorted({default_threads, 1})[::-1]:
        names.append(f"torch.optim ({threads} thread{'s' * (threads > 1)})")
        block.append(
            torch_contestant(torch, names[-1], params, data, torch_steps, threads)
        )
    try:
        timings = _harness.interleaved(block, mode.repeats)
    finally:
        torch.set_num_threads(default_threads)
    for name in names:
        t = timings[name]
        rows.append(
            {
                "hidden": hidden,
                "contestant": name,
                "steps": torch_steps,
                "steps_per_s": torch_steps / t.median_s,
                "median_s": t.median_s,
                # in steps/s: torch runs fewer steps per call
                "fit_speedup": _harness.speedup(timings, "fit", name)
                * steps
                / torch_steps,
            }
        )
    best = min(names, key=lambda name: timings[name].median_s)
    return {
        "fit_vs_torch": _harness.speedup(timings, "fit", best) * steps / torch_steps,
        "torch_best": best,
    }


def throughput(mode: _harness.Mode, data: dict[str, np.ndarray]) -> dict[str, Any]:
    """Section 1: steps/s of fit, the hand-written scan, the optax Python loop
    and torch.optim, per hidden size."""
    torch = _harness.optional_module("torch")
    steps = mode.loop_steps
    jdata = jax.tree.map(jnp.asarray, data)
    rows, ratios = [], []
    for hidden in mode.hidden:
        params = _problems.init_mlp(jax.random.key(1), hidden)
        fit = fit_contestant("fit", params, jdata, steps)
        jax_block = [
            fit,
            scan_contestant(
                "optax scan", optax.adam(LEARNING_RATE), params, jdata, steps
            ),
            python_loop_contestant(
                "optax python loop", optax.adam(LEARNING_RATE), params, jdata, steps
            ),
        ]
        timings = _harness.interleaved(jax_block, mode.repeats)
        for c in jax_block:
            t = timings[c.name]
            rows.append(
                {
                    "hidden": hidden,
                    "contestant": c.name,
                    "steps": steps,
                    "steps_per_s": steps / t.median_s,
                    "median_s": t.median_s,
                    "compile_s": t.compile_s,
                    "fit_speedup": _harness.speedup(timings, "fit", c.name),
                }
            )
        ratio = {
            "hidden": hidden,
            "fit_vs_optax_scan": _harness.speedup(timings, "fit", "optax scan"),
            "fit_vs_optax_python_loop": _harness.speedup(
                timings, "fit", "optax python loop"
            ),
        }
        if torch is not None:
            ratio.update(_versus_torch(torch, mode, fit, params, data, rows, hidden))
        ratios.append(ratio)
    skipped = [] if torch is not None else ["torch.optim (torch not installed)"]
    return {
        "steps": steps,
        "torch_steps": min(steps, mode.torch_steps),
        "batch_size": B,
        "optimizer": f"adam({LEARNING_RATE})",
        "rows": rows,
        "ratios": ratios,
        "skipped": skipped,
    }


def overheads(mode: _harness.Mode, data: dict[str, np.ndarray]) -> dict[str, Any]:
    """Section 5: what each of fit's features costs, on the smallest MLP (where
    per-step overhead matters most), and a ladder from the hand-written scan up
    to fit's defaults: the scan gains fit's features one by one, and fit drops
    them ("fit: ..." rows; its defaults are shuffle, guard, a row per step)."""
    steps = mode.loop_steps
    few = 10
    hidden = mode.hidden[0]
    jdata = jax.tree.map(jnp.asarray, data)
    params = _problems.init_mlp(jax.random.key(1), hidden)
    lean = {"replace": True, "skip_nonfinite": False, "log_every": steps}

    def fit_(name, **options):
        return fit_contestant(name, params, jdata, steps, **options)

    variants = [
        fit_("default"),
        fit_("progress=True", progress=True),
        fit_(f"chunk_size={steps // 20} (20 chunks)", chunk_size=steps // 20),
        fit_("chunk_size=1 (1 window)", chunk_size=1),
        *(
            fit_(f"log_every={k}", log_every=k)
            for k in (10, 100, steps)
            if steps % k == 0
        ),
        fit_("skip_nonfinite=False", skip_nonfinite=False),
        fit_("replace=True", replace=True),
        fit_("shuffle=False", shuffle=False),
        # training at scale: in-step accumulation, bfloat16 compute (float32
        # master parameters), spike skipping decided inside the loop
        fit_("microbatches=2", microbatches=2),
        fit_("microbatches=4", microbatches=4),
        fit_("compute_dtype=bfloat16", compute_dtype=jnp.bfloat16),
        fit_("skip_spikes=SpikeSkip()", skip_spikes=jol.SpikeSkip()),
    ]

    def scan_(name, optimizer, extras=()):
        return scan_contestant(name, optimizer, params, jdata, steps, extras)

    ours = jol.adam(LEARNING_RATE)
    ladder = [
        scan_("scan: optax.adam", optax.adam(LEARNING_RATE)),
        scan_("scan: jol.adam", ours),
        scan_("scan: jol.adam, grad_norm", ours, ("grad_norm",)),
        scan_("scan: jol.adam, grad_norm, lr", ours, ("grad_norm", "lr")),
        scan_(
            "scan: jol.adam, grad_norm, lr, guard", ours, ("grad_norm", "lr", "guard")
        ),
        fit_("fit: replace, no guard, 1 row", **lean),
        fit_("fit: replace, guard, 1 row", **{**lean, "skip_nonfinite": True}),
        fit_("fit: replace, no guard, row/step", **{**lean, "log_every": 1}),
        fit_("fit: shuffle, no guard, 1 row", **{**lean, "replace": False}),
    ]
    fixed = [
        fit_contestant(f"fit, {few} steps", params, jdata, few),
        scan_contestant(
            f"scan, {few} steps", optax.adam(LEARNING_RATE), params, jdata, few
        ),
    ]
    if mode.overhead_variants is not None:
        wanted = set(mode.overhead_variants)
        variants = [c for c in variants if c.name in wanted]
        ladder = [c for c in ladder if c.name in wanted]
        fixed = [c for c in fixed if c.name in wanted]
    timings = _harness.interleaved(variants + ladder + fixed, mode.repeats)

    def row(name, group, n=steps):
        t = timings[name]
        return {
            "group": group,
            "variant": name,
            "steps_per_s": n / t.median_s,
            "median_s": t.median_s,
            "compile_s": t.compile_s,
            "time_vs_default": _harness.time_ratio(timings, name, "default"),
            "time_vs_scan": _harness.time_ratio(timings, name, "scan: optax.adam"),
        }

    rows = [row(c.name, "fit option") for c in variants]
    rows += [row(c.name, "ladder") for c in ladder]
    rows += [row(c.name, "fixed cost", few) for c in fixed]
    result: dict[str, Any] = {"hidden": hidden, "steps": steps, "rows": rows}
    if len(fixed) == 2:
        result["per_call"] = {
            "fit_call_s": timings[f"fit, {few} steps"].median_s,
            "scan_call_s": timings[f"scan, {few} steps"].median_s,
            "steps": few,
        }
    return result
