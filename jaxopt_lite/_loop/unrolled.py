"""A chunk of a training run as straight-line code (layer 2): `run_unrolled`.

XLA:CPU runs a convolution inside any loop (``while``, ``scan``, even a
``cond`` branch) an order of magnitude slower than the same convolution at
the top level of a program (measured: a 2-conv CNN step, 10 steps/s in a
loop, 170 unrolled). The unrolled form has no loop and no branch around the
step: ``cfg.unroll`` steps written one after the other, each taken or masked
by a select (step ``i`` runs when ``i < steps``, the run has steps left and
has not stopped early), rows closed branch-free at their exact steps. The
host ends a call at every evaluation or early-stopping step (``boundary``):
there the evaluation runs, unconditionally, and early stopping checks. The
numbers are those of `chunk.run_chunk` to float rounding, and bit-identical
across chunkings and resumes of the same form.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import optax

from jaxopt_lite._loop import history, sampling
from jaxopt_lite._loop.chunk import close_row, evaluate, maybe_check, ran
from jaxopt_lite._loop.loss import Eval, Loss
from jaxopt_lite._loop.train import LoopConfig, TrainState, row, train_step

PyTree = Any


def _live(state: TrainState, end: jax.Array) -> jax.Array:
    live = state.step < end
    if state.stop is not None:
        live = live & ~state.stop.stopped
    return live


def run_unrolled(
    loss_fn: Loss,
    optimizer: optax.GradientTransformationExtraArgs,
    cfg: LoopConfig,
    state: TrainState,
    data: PyTree,
    steps: jax.Array,
    total_steps: jax.Array,
    eval_fn: Eval | None = None,
    eval_data: PyTree = None,
    *,
    boundary: bool = False,
) -> tuple[TrainState, history.ChunkRows]:
    """Up to ``steps`` (<= ``cfg.unroll``) more steps, unrolled (see the
    module docstring); the arguments and result are those of
    `chunk.run_chunk`, and ``boundary`` (static) says that the call ends at an
    evaluation or early-stopping step."""
    if cfg.sampling.stream:
        data = sampling.StreamChunk(data, state.step)
    end = state.step + jnp.minimum(steps, total_steps - state.step)
    train = history.buffers(jax.eval_shape(row, state), cfg.unroll // cfg.log_every + 2)
    n_train = jnp.zeros([], jnp.int32)
    for _ in range(cfg.unroll):
        live = _live(state, end)
        taken = train_step(loss_fn, optimizer, cfg, state, data)
        # The key is the run's constant: selecting it would make a sweep's
        # per-seed key per run (vmap batches the select by ``live``).
        state = optax.tree.where(live, taken, state)._replace(key=state.key)
        done = live & ((state.step % cfg.log_every == 0) | (state.step == total_steps))
        state, train, n_train = close_row(cfg, state, train, n_train, done)

    evals: dict[str, jax.Array] = {}
    n_evals = jnp.zeros([], jnp.int32)
    results: dict[str, jax.Array] = {}
    if boundary and cfg.eval is not None and eval_fn is not None:
        results = evaluate(eval_fn, cfg, state, eval_data)  # no branch around it
        due = state.step % cfg.eval.every == 0
        evals = history.buffers({"eval_step": state.step, **results}, 1)
        evals = history.write(evals, n_evals, {"eval_step": state.step, **results})
        n_evals = due.astype(jnp.int32)
    if boundary and cfg.stop is not None:
        state = maybe_check(cfg, state, results)
    # A run that ended with its row open (early stopping mid-row) writes it.
    ended = state.step == total_steps
    if state.stop is not None:
        ended = ended | state.stop.stopped
    window = state.window
    unwritten = ended & (window.finite + window.skipped > 0)
    state, train, n_train = close_row(cfg, state, train, n_train, unwritten)
    return state, history.ChunkRows(
        train, ran(train, n_train), evals, ran(evals, n_evals)
    )


def pieces(cfg: LoopConfig, start: int, steps: int) -> list[tuple[int, bool]]:
    """The calls of `run_unrolled` that advance a run from ``start`` by
    ``steps``: ``(steps, boundary)`` each, ending at every multiple of
    ``cfg.unroll`` and at every evaluation and early-stopping step
    (``boundary``). Where calls start depends only on the step, not on how
    the run is chunked, so chunkings and resumes are bit-identical."""
    periods = [cfg.unroll, *(c.every for c in (cfg.eval, cfg.stop) if c is not None)]
    out, at, stop = [], start, start + steps
    while at < stop:
        nxt = min([stop, *((at // p + 1) * p for p in periods)])
        out.append((nxt - at, any(nxt % p == 0 for p in periods[1:])))
        at = nxt
    return out


def compiled(cfg: LoopConfig) -> LoopConfig:
    """The settings a program is compiled for: the unrolled form's calls do
    not depend on the chunk capacity (which grows with the run's length), so
    runs of any length share them."""
    return cfg._replace(chunk_size=cfg.unroll) if cfg.unroll else cfg
