"""The loop core (layer 2): a training run's settings, state and step.

Nothing here validates, prints or touches the host: the drivers (`fit`,
`sweep`) do that around these functions. `LoopConfig` holds the static
settings, `TrainState` everything a run carries from step to step (and
checkpoints), `train_step` is one step; the chunks of steps are run by
`chunk.run_chunk` (a loop) or `unrolled.run_unrolled` (straight-line code).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxopt_lite._core import tree_math
from jaxopt_lite._loop import gradient, history
from jaxopt_lite._loop.gradient import (
    LossScaleState,
    Microbatches,
    Precision,
    init_loss_scale,
)
from jaxopt_lite._loop.loss import Loss
from jaxopt_lite._loop.sampling import Sampling, sample_batch
from jaxopt_lite._loop.spikes import (
    SpikeSkip,
    SpikeState,
    init_spike_state,
    is_spike,
    record,
)
from jaxopt_lite._loop.stopping import StopConfig, StopState, add_loss, init_stop_state

PyTree = Any
_STEP_KEY_STREAM = 0x5EED  # step keys: fold_in(fold_in(key, this), step)


class EvalConfig(NamedTuple):
    """Static evaluation settings."""

    every: int  # evaluate at every multiple of this many steps


class LoopConfig(NamedTuple):
    """Static (hashable) settings of a training loop; changing one recompiles."""

    sampling: Sampling
    log_every: int = 1  # steps per history row
    chunk_size: int = 1  # the most steps one chunk runs (sizes its row buffers)
    aux_names: tuple[str, ...] = ()  # the loss's aux metrics, as it returns them
    skip_nonfinite: bool = True  # skip steps whose loss or gradient is not finite
    eval: EvalConfig | None = None  # None: no evaluation
    stop: StopConfig | None = None  # None: no early stopping
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
    # steps of one call of the unrolled form (`unrolled.run_unrolled`); 0: the
    # loop form (`chunk.run_chunk`)
    unroll: int = 0


class TrainState(NamedTuple):
    """Everything a run carries from one step to the next (and checkpoints)."""

    params: PyTree
    opt_state: PyTree
    model_state: PyTree  # the model's non-trainable state (None: none)
    key: jax.Array
    step: jax.Array  # int32: updates attempted so far
    skipped: jax.Array  # int32: non-finite (or spike) steps so far
    window: history.Window
    stop: StopState | None  # None unless cfg.stop
    loss_scale: LossScaleState | None = None  # None unless cfg.precision scales
    spikes: SpikeState | None = None  # None unless cfg.spikes


def empty_window(cfg: LoopConfig) -> history.Window:
    return history.empty_window(("loss", "grad_norm", *cfg.aux_names), cfg.metric_dtype)


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
        stop = init_stop_state(cfg.stop, params, model_state, cfg.metric_dtype)
    return TrainState(
        params=params,
        opt_state=optimizer.init(params),
        model_state=model_state,
        key=key,
        step=jnp.zeros([], jnp.int32),
        skipped=jnp.zeros([], jnp.int32),
        window=empty_window(cfg),
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
    batch = sample_batch(cfg.sampling, data, state.step, state.key)
    if cfg.batch_sharding is not None:
        batch = jax.lax.with_sharding_constraint(batch, cfg.batch_sharding)
    scale = None if state.loss_scale is None else state.loss_scale.scale
    loss, model_state, aux, grads = gradient.value_and_grad(
        loss_fn, cfg.microbatches, cfg.precision, state.params, state.model_state,
        batch, step_key(state.key, state.step), scale, unroll=cfg.unroll > 0,
    )  # fmt: skip
    grad_norm = tree_math.tree_global_norm(grads)
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
    window = history.add_step(state.window, metrics, ~skip)
    stop, spikes, loss_scale = state.stop, state.spikes, state.loss_scale
    if cfg.stop is not None and stop is not None:
        stop = add_loss(cfg.stop, stop, loss32, ~skip & finite)
    if cfg.spikes is not None and spikes is not None:
        spikes = record(cfg.spikes, spikes, watched, ~skip & finite, spike)
    if cfg.precision is not None and loss_scale is not None:
        loss_scale = gradient.update_loss_scale(cfg.precision, loss_scale, finite)
    return state._replace(
        params=params,
        opt_state=opt_state,
        model_state=model_state,
        step=tree_math.safe_increment(state.step),
        skipped=state.skipped + (~finite | spike).astype(jnp.int32),
        window=window,
        stop=stop,
        loss_scale=loss_scale,
        spikes=spikes,
    )


def row(state: TrainState) -> dict[str, jax.Array]:
    """The history row of the window being built."""
    row = history.row(state.window, state.step, state.opt_state)
    if state.loss_scale is not None:
        row["loss_scale"] = state.loss_scale.scale.astype(row["loss"].dtype)
    return row
