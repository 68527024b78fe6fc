"""A chunk of a training run as a loop (layer 2): `run_chunk`.

A chunk is a ``lax.while_loop`` over *segments*: the steps up to the next
multiple of ``log_every`` (a history row), of the evaluation period, of the
early-stopping period, or the chunk's end, whichever comes first. After a
segment, the row is written when it is complete (or the run ends), the model
is evaluated when due, and early stopping checks when due; so every event
happens at its exact step, whatever the chunking. Rows are summed step by
step in the carried state, so a row may span chunks and the results do not
depend on where the chunks end. The boundary helpers here are shared with
the unrolled form (`unrolled.py`).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import optax

from jaxopt_lite._loop import history, sampling, stopping
from jaxopt_lite._loop.loss import Eval, Loss
from jaxopt_lite._loop.train import (
    LoopConfig,
    TrainState,
    empty_window,
    row,
    train_step,
)

PyTree = Any


def evaluate(eval_fn: Eval, cfg: LoopConfig, state: TrainState, eval_data):
    out = eval_fn(state.params, state.model_state, eval_data)
    return {k: jnp.asarray(x, cfg.metric_dtype) for k, x in out.items()}


def _next_boundary(cfg: LoopConfig, step: jax.Array, end: jax.Array) -> jax.Array:
    """The first step after ``step`` where a row, an evaluation or a check is
    due, or ``end``."""
    periods = {cfg.log_every}
    if cfg.eval is not None:
        periods.add(cfg.eval.every)
    if cfg.stop is not None:
        periods.add(cfg.stop.every)
    ahead = end - step  # never past the end; never beyond int32 either
    for p in sorted(periods):
        ahead = jnp.minimum(ahead, p - step % p)
    return step + ahead


def close_row(cfg: LoopConfig, state: TrainState, train, n_train, done):
    """Write the row being built (kept when ``done``) and start the next one
    if it was; rows are written unconditionally, without a branch."""
    train = history.write(train, n_train, row(state))
    fresh = empty_window(cfg)
    window = jax.tree.map(lambda a, b: jnp.where(done, a, b), fresh, state.window)
    return state._replace(window=window), train, n_train + done.astype(jnp.int32)


def _maybeevaluate(eval_fn, cfg: LoopConfig, state: TrainState, eval_data):
    """``(due, metrics)``: the metrics are NaN when no evaluation is due."""
    assert cfg.eval is not None
    due = state.step % cfg.eval.every == 0
    shape = jax.eval_shape(lambda s: evaluate(eval_fn, cfg, s, eval_data), state)
    results = jax.lax.cond(
        due,
        lambda s: evaluate(eval_fn, cfg, s, eval_data),
        lambda s: {k: jnp.full([], jnp.nan, cfg.metric_dtype) for k in shape},
        state,
    )
    return due, results


def maybe_check(cfg: LoopConfig, state: TrainState, results) -> TrainState:
    """An early-stopping check when one is due."""
    stop_cfg = cfg.stop
    assert stop_cfg is not None and state.stop is not None
    value = stopping.monitored(stop_cfg, state.stop, results)
    stop = jax.lax.cond(
        state.step % stop_cfg.every == 0,
        lambda s: stopping.check(
            stop_cfg, s.stop, value, s.step, s.params, s.model_state
        ),
        lambda s: s.stop,
        state,
    )
    return state._replace(stop=stop)


def ran(buffer: dict[str, jax.Array], count: jax.Array) -> jax.Array:
    size = len(next(iter(buffer.values()))) if buffer else 0
    return jnp.arange(size) < count


def run_chunk(
    loss_fn: Loss,
    optimizer: optax.GradientTransformationExtraArgs,
    cfg: LoopConfig,
    state: TrainState,
    data: PyTree,
    steps: jax.Array,
    total_steps: jax.Array,
    eval_fn: Eval | None = None,
    eval_data: PyTree = None,
) -> tuple[TrainState, history.ChunkRows]:
    """Up to ``steps`` (<= ``cfg.chunk_size``) more steps, ending early at
    ``total_steps`` or when early stopping stops the run.

    History rows close at every multiple of ``cfg.log_every`` steps (the
    last row of the run may hold fewer steps), ``eval_fn`` runs at every
    multiple of ``cfg.eval.every``, early stopping checks at its period: all
    at their exact steps, however the run is cut into chunks.

    Args:
        loss_fn: the loss in canonical form (a `Loss`).
        optimizer: an ``optax.GradientTransformationExtraArgs`` (it is given
            ``value=loss``).
        cfg: the loop's static settings.
        state: the run's state (`init_train_state`, or a previous chunk's).
        data: the data every step samples its batch from, as ``cfg.sampling``
            says; for a stream, the chunk's batches stacked, one per step.
        steps: the most steps to run (an int32 scalar, traced or not).
        total_steps: the run's length.
        eval_fn: the evaluation in canonical form (an `Eval`), or ``None``.
        eval_data: its data.

    Returns:
        ``(state, rows)``: the state after the chunk, and the rows written
        (`ChunkRows`: fixed-size buffers with masks of the rows that ran).
    """
    if cfg.sampling.stream:
        data = sampling.StreamChunk(data, state.step)
    end = state.step + jnp.minimum(steps, total_steps - state.step)
    train = history.buffers(
        jax.eval_shape(row, state),
        cfg.chunk_size // cfg.log_every + 2,
    )
    evals: dict[str, jax.Array] = {}
    if cfg.eval is not None and eval_fn is not None:
        shape = jax.eval_shape(lambda s: evaluate(eval_fn, cfg, s, eval_data), state)
        evals = history.buffers(
            {"eval_step": state.step, **shape}, cfg.chunk_size // cfg.eval.every + 2
        )
    zero = jnp.zeros([], jnp.int32)

    def running(carry):
        state = carry[0]
        if state.stop is None:
            return state.step < end
        return (state.step < end) & ~state.stop.stopped

    def segment(carry):
        state, train, n_train, evals, n_evals = carry
        nxt = _next_boundary(cfg, state.step, end)
        state = jax.lax.while_loop(
            lambda s: s.step < nxt,
            lambda s: train_step(loss_fn, optimizer, cfg, s, data),
            state,
        )
        done = (state.step % cfg.log_every == 0) | (state.step == total_steps)
        state, train, n_train = close_row(cfg, state, train, n_train, done)
        results: dict[str, jax.Array] = {}
        if evals:
            due, results = _maybeevaluate(eval_fn, cfg, state, eval_data)
            row = {"eval_step": state.step, **results}
            evals = history.write(evals, n_evals, row)
            n_evals = n_evals + due.astype(jnp.int32)
        if cfg.stop is not None:
            state = maybe_check(cfg, state, results)
        return state, train, n_train, evals, n_evals

    state, train, n_train, evals, n_evals = jax.lax.while_loop(
        running, segment, (state, train, zero, evals, zero)
    )
    # A run that ended with its row open (early stopping mid-row; a stream that
    # ran out at a chunk boundary, learned in a chunk of no steps) writes it.
    window = state.window
    ended = state.step == total_steps
    if state.stop is not None:  # early stopping ends the run mid-row too
        ended = ended | state.stop.stopped
    unwritten = ended & (window.finite + window.skipped > 0)
    state, train, n_train = close_row(cfg, state, train, n_train, unwritten)
    return state, history.ChunkRows(
        train, ran(train, n_train), evals, ran(evals, n_evals)
    )
