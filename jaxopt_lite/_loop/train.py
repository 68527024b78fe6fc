"""The loop core (layer 2): pure, jittable, vmappable optimization loops.

Nothing here validates, prints or touches the host: the drivers (`fit`,
`minimize`, `sweep`) do that around these functions.

A chunk of a training run is a ``lax.while_loop`` over *segments*: the steps
up to the next multiple of ``log_every`` (a history row), of the evaluation
period, of the early-stopping period, or the chunk's end, whichever comes
first. After a segment, the row is written when it is complete (or the run
ends), the model is evaluated when due, and early stopping checks when due;
so every event happens at its exact step, whatever the chunking. Rows are
summed step by step in the carried state, so a row may span chunks and the
results do not depend on where the chunks end.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxopt_lite._core import tree as _tree
from jaxopt_lite._loop import gradient
from jaxopt_lite._loop import history as _history
from jaxopt_lite._loop import sampling as _sampling
from jaxopt_lite._loop import stopping as _stopping
from jaxopt_lite._loop.gradient import (
    LossScaleState,
    Microbatches,
    Precision,
    init_loss_scale,
)
from jaxopt_lite._loop.loss import Eval, Loss
from jaxopt_lite._loop.spikes import (
    SpikeSkip,
    SpikeState,
    init_spike_state,
    is_spike,
    record,
)

PyTree = Any
_STEP_KEY_STREAM = 0x5EED  # step keys: fold_in(fold_in(key, this), step)


class EvalConfig(NamedTuple):
    """Static evaluation settings."""

    every: int  # evaluate at every multiple of this many steps


class LoopConfig(NamedTuple):
    """Static (hashable) settings of a training loop; changing one recompiles."""

    sampling: _sampling.Sampling
    log_every: int = 1  # steps per history row
    chunk_size: int = 1  # the most steps one chunk runs (sizes its row buffers)
    aux_names: tuple[str, ...] = ()  # the loss's aux metrics, as it returns them
    skip_nonfinite: bool = True  # skip steps whose loss or gradient is not finite
    eval: EvalConfig | None = None  # None: no evaluation
    stop: _stopping.StopConfig | None = None  # None: no early stopping
    # where each batch lives (a `jax.sharding.Sharding` of its leading axis, set
    # by the drivers for data parallelism); None: wherever XLA puts it
    batch_sharding: Any = None
    # the dtype of losses, metrics and history: the parameters' precision, at
    # least float32 (float64 under x64 with float64 parameters)
    metric_dtype: Any = np.dtype(np.float32)
    microbatches: Microbatches | None = None  # gradient accumulation in a step
    precision: Precision | None = None  # compute dtype and loss scaling
    spikes: SpikeSkip | None = None  # loss-spike skipping
    # apply every step, counting those a guarded step would skip (the first,
    # branch-free pass of `guard.run_chunk`, kept only when nothing was skipped)
    optimistic: bool = False


class TrainState(NamedTuple):
    """Everything a run carries from one step to the next (and checkpoints)."""

    params: PyTree
    opt_state: PyTree
    model_state: PyTree  # the model's non-trainable state (None: none)
    key: jax.Array
    step: jax.Array  # int32: updates attempted so far
    skipped: jax.Array  # int32: non-finite (or spike) steps so far
    window: _history.Window
    stop: _stopping.StopState | None  # None unless cfg.stop
    loss_scale: LossScaleState | None = None  # None unless cfg.precision scales
    spikes: SpikeState | None = None  # None unless cfg.spikes


def _empty_window(cfg: LoopConfig) -> _history.Window:
    return _history.empty_window(
        ("loss", "grad_norm", *cfg.aux_names), cfg.metric_dtype
    )


def init_train_state(
    params: PyTree,
    model_state: PyTree,
    optimizer: optax.GradientTransformation,
    key: jax.Array,
    cfg: LoopConfig,
) -> TrainState:
    """The state of a run that has not taken a step yet."""
    stop = None
    if cfg.stop is not None:
        stop = _stopping.init_stop_state(
            cfg.stop, params, model_state, cfg.metric_dtype
        )
    return TrainState(
        params=params,
        opt_state=optimizer.init(params),
        model_state=model_state,
        key=key,
        step=jnp.zeros([], jnp.int32),
        skipped=jnp.zeros([], jnp.int32),
        window=_empty_window(cfg),
        stop=stop,
        loss_scale=init_loss_scale(cfg.precision),
        spikes=None
        if cfg.spikes is None
        else init_spike_state(cfg.spikes, cfg.metric_dtype),
    )


def step_key(key: jax.Array, step: jax.Array) -> jax.Array:
    """The key `fit` hands ``loss_fn`` at ``step`` (with ``step_key=True``)."""
    return jax.random.fold_in(jax.random.fold_in(key, _STEP_KEY_STREAM), step)


def skipping(cfg: LoopConfig) -> bool:
    """Whether a step may be skipped: non-finite ones (``skip_nonfinite``, or
    an overflow under loss scaling) or spikes."""
    scaling = cfg.precision is not None and cfg.precision.loss_scale is not None
    return cfg.skip_nonfinite or scaling or cfg.spikes is not None


def train_step(
    loss_fn: Loss,
    optimizer: optax.GradientTransformationExtraArgs,
    cfg: LoopConfig,
    state: TrainState,
    data: PyTree,
) -> TrainState:
    """One step: sample, differentiate, update, add to the row's sums."""
    batch = _sampling.sample_batch(cfg.sampling, data, state.step, state.key)
    if cfg.batch_sharding is not None:
        batch = jax.lax.with_sharding_constraint(batch, cfg.batch_sharding)
    scale = None if state.loss_scale is None else state.loss_scale.scale
    loss, model_state, aux, grads = gradient.value_and_grad(
        loss_fn, cfg.microbatches, cfg.precision, state.params, state.model_state,
        batch, step_key(state.key, state.step), scale,
    )  # fmt: skip
    grad_norm = _tree.tree_global_norm(grads)
    finite = jnp.isfinite(loss) & jnp.isfinite(grad_norm)
    loss32 = loss.astype(cfg.metric_dtype)
    spike = jnp.zeros([], bool)
    if cfg.spikes is not None and state.spikes is not None:
        watched = loss32 if cfg.spikes.metric == "loss" else grad_norm
        spike = is_spike(cfg.spikes, state.spikes, watched)
    # An overflow under loss scaling is skipped whatever skip_nonfinite says.
    skip = spike | ~finite if cfg.skip_nonfinite or scale is not None else spike

    def apply(_):
        updates, opt_state = optimizer.update(
            grads, state.opt_state, state.params, value=loss
        )
        return optax.apply_updates(state.params, updates), opt_state

    if skipping(cfg) and not cfg.optimistic:
        # A branch, not a select over params and state: a skipped step does no
        # optimizer work and a taken one pays nothing (under vmap it becomes a
        # select anyway).
        params, opt_state = jax.lax.cond(
            skip, lambda _: (state.params, state.opt_state), apply, None
        )
        model_state = optax.tree.where(skip, state.model_state, model_state)
    else:
        params, opt_state = apply(None)

    metrics = {"loss": loss32, "grad_norm": grad_norm, **aux}
    # A non-finite step that is not skipped is applied, and its row shows it.
    window = _history.add_step(state.window, metrics, ~skip)
    stop, spikes, loss_scale = state.stop, state.spikes, state.loss_scale
    if cfg.stop is not None and stop is not None:
        stop = _stopping.add_loss(cfg.stop, stop, loss32, ~skip & finite)
    if cfg.spikes is not None and spikes is not None:
        spikes = record(cfg.spikes, spikes, watched, ~skip & finite, spike)
    if cfg.precision is not None and loss_scale is not None:
        loss_scale = gradient.update_loss_scale(cfg.precision, loss_scale, finite)
    return state._replace(
        params=params,
        opt_state=opt_state,
        model_state=model_state,
        step=_tree.safe_increment(state.step),
        skipped=state.skipped + (~finite | spike).astype(jnp.int32),
        window=window,
        stop=stop,
        loss_scale=loss_scale,
        spikes=spikes,
    )


def _row(state: TrainState) -> dict[str, jax.Array]:
    """The history row of the window being built."""
    row = _history.row(state.window, state.step, state.opt_state)
    if state.loss_scale is not None:
        row["loss_scale"] = state.loss_scale.scale.astype(row["loss"].dtype)
    return row


def _evaluate(eval_fn: Eval, cfg: LoopConfig, state: TrainState, eval_data):
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


def _close_row(cfg: LoopConfig, state: TrainState, train, n_train, done):
    """Write the row being built (kept when ``done``) and start the next one
    if it was; rows are written unconditionally, without a branch."""
    train = _history.write(train, n_train, _row(state))
    fresh = _empty_window(cfg)
    window = jax.tree.map(lambda a, b: jnp.where(done, a, b), fresh, state.window)
    return state._replace(window=window), train, n_train + done.astype(jnp.int32)


def _maybe_evaluate(eval_fn, cfg: LoopConfig, state: TrainState, eval_data):
    """``(due, metrics)``: the metrics are NaN when no evaluation is due."""
    assert cfg.eval is not None
    due = state.step % cfg.eval.every == 0
    shape = jax.eval_shape(lambda s: _evaluate(eval_fn, cfg, s, eval_data), state)
    results = jax.lax.cond(
        due,
        lambda s: _evaluate(eval_fn, cfg, s, eval_data),
        lambda s: {k: jnp.full([], jnp.nan, cfg.metric_dtype) for k in shape},
        state,
    )
    return due, results


def _maybe_check(cfg: LoopConfig, state: TrainState, results) -> TrainState:
    """An early-stopping check when one is due."""
    stop_cfg = cfg.stop
    assert stop_cfg is not None and state.stop is not None
    value = _stopping.monitored(stop_cfg, state.stop, results)
    stop = jax.lax.cond(
        state.step % stop_cfg.every == 0,
        lambda s: _stopping.check(
            stop_cfg, s.stop, value, s.step, s.params, s.model_state
        ),
        lambda s: s.stop,
        state,
    )
    return state._replace(stop=stop)


def _ran(buffer: dict[str, jax.Array], count: jax.Array) -> jax.Array:
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
) -> tuple[TrainState, _history.ChunkRows]:
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
        data = _sampling.StreamChunk(data, state.step)
    end = state.step + jnp.minimum(steps, total_steps - state.step)
    train = _history.buffers(
        jax.eval_shape(_row, state),
        cfg.chunk_size // cfg.log_every + 2,
    )
    evals: dict[str, jax.Array] = {}
    if cfg.eval is not None and eval_fn is not None:
        shape = jax.eval_shape(lambda s: _evaluate(eval_fn, cfg, s, eval_data), state)
        evals = _history.buffers(
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
        state, train, n_train = _close_row(cfg, state, train, n_train, done)
        results: dict[str, jax.Array] = {}
        if evals:
            due, results = _maybe_evaluate(eval_fn, cfg, state, eval_data)
            row = {"eval_step": state.step, **results}
            evals = _history.write(evals, n_evals, row)
            n_evals = n_evals + due.astype(jnp.int32)
        if cfg.stop is not None:
            state = _maybe_check(cfg, state, results)
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
    state, train, n_train = _close_row(cfg, state, train, n_train, unwritten)
    return state, _history.ChunkRows(
        train, _ran(train, n_train), evals, _ran(evals, n_evals)
    )
