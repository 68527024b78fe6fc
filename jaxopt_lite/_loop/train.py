"""The loop core (layer 2): pure, jittable, vmappable optimization loops.

Nothing here validates, prints or touches the host: the drivers (`fit`,
`minimize`, `sweep`) do that around these functions.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jaxopt_lite._core import tree as _tree
from jaxopt_lite._loop import sampling as _sampling
from jaxopt_lite._transforms.scaling import current_learning_rate

PyTree = Any


class LoopConfig(NamedTuple):
    """Static (hashable) settings of a training loop; changing one recompiles."""

    num_examples: int
    batch_size: int  # == num_examples: full batch, no sampling
    shuffle: bool
    replace: bool
    log_every: int  # steps per history row (one "window")
    windows: int  # windows per compiled chunk
    has_aux: bool
    guard: bool  # skip steps whose loss or gradient is not finite
    maskable: bool  # windows can be switched off (partial chunks, early stop)
    eval_every: int | None
    check_every: int | None  # early-stopping checks, in steps
    monitor: str | None  # "loss" or an eval metric name
    minimize_monitor: bool
    min_delta: float
    patience: int
    restore_best: bool
    # where each batch lives (a `jax.sharding.Sharding` of its leading axis, set
    # by the drivers for data parallelism); None: wherever XLA puts it
    batch_sharding: Any = None


class TrainState(NamedTuple):
    """Everything a run carries from one step to the next (and checkpoints)."""

    params: PyTree
    opt_state: PyTree
    key: jax.Array
    step: jax.Array  # int32: updates attempted so far
    skipped: jax.Array  # int32: non-finite steps skipped so far
    loss_sum: jax.Array  # float32: training loss summed since the last check
    loss_count: jax.Array  # int32
    best_value: jax.Array  # float32, in "smaller is better" sign
    best_step: jax.Array  # int32, -1 before the first check
    bad_checks: jax.Array  # int32
    stopped: jax.Array  # bool
    best_params: PyTree  # params at best_step (None unless restore_best)


def init_train_state(
    params: PyTree,
    optimizer: optax.GradientTransformation,
    key: jax.Array,
    cfg: LoopConfig,
) -> TrainState:
    """The state of a run that has not taken a step yet."""
    return TrainState(
        params=params,
        opt_state=optimizer.init(params),
        key=key,
        step=jnp.zeros([], jnp.int32),
        skipped=jnp.zeros([], jnp.int32),
        loss_sum=jnp.zeros([], jnp.float32),
        loss_count=jnp.zeros([], jnp.int32),
        best_value=jnp.full([], jnp.inf, jnp.float32),
        best_step=jnp.full([], -1, jnp.int32),
        bad_checks=jnp.zeros([], jnp.int32),
        stopped=jnp.zeros([], jnp.bool_),
        best_params=params if cfg.restore_best else None,
    )


def _value_and_grad(loss_fn: Callable, has_aux: bool):
    if has_aux:
        return jax.value_and_grad(loss_fn, has_aux=True)

    def with_empty_aux(params, batch):
        return loss_fn(params, batch), {}

    return jax.value_and_grad(with_empty_aux, has_aux=True)


def train_step(
    loss_fn: Callable,
    optimizer: optax.GradientTransformationExtraArgs,
    cfg: LoopConfig,
    state: TrainState,
    data: PyTree,
) -> tuple[TrainState, dict[str, jax.Array]]:
    """One step: sample, differentiate, update; returns per-step metrics."""
    if cfg.batch_size == cfg.num_examples and not cfg.replace:
        batch = data
    elif cfg.shuffle or cfg.replace:
        indices = _sampling.batch_indices(
            state.step,
            state.key,
            num_examples=cfg.num_examples,
            batch_size=cfg.batch_size,
            shuffle=cfg.shuffle,
            replace=cfg.replace,
        )
        batch = _sampling.gather_batch(data, indices)
    else:
        start = (state.step % (cfg.num_examples // cfg.batch_size)) * cfg.batch_size
        batch = _sampling.slice_batch(data, start, cfg.batch_size)
    if cfg.batch_sharding is not None:
        batch = jax.lax.with_sharding_constraint(batch, cfg.batch_sharding)

    (loss, aux), grads = _value_and_grad(loss_fn, cfg.has_aux)(state.params, batch)
    grad_norm = _tree.tree_global_norm(grads)
    finite = jnp.isfinite(loss) & jnp.isfinite(grad_norm)

    def apply(_):
        updates, opt_state = optimizer.update(
            grads, state.opt_state, state.params, value=loss
        )
        return optax.apply_updates(state.params, updates), opt_state

    if cfg.guard:
        # A branch, not a select over params and state: a skipped step does no
        # optimizer work and a finite one pays nothing (under vmap it becomes a
        # select anyway).
        params, opt_state = jax.lax.cond(
            finite, apply, lambda _: (state.params, state.opt_state), None
        )
    else:
        params, opt_state = apply(None)
    loss32 = loss.astype(jnp.float32)
    state = state._replace(
        params=params,
        opt_state=opt_state,
        step=optax.safe_increment(state.step),
        skipped=state.skipped + (~finite).astype(jnp.int32),
        loss_sum=state.loss_sum + jnp.where(finite, loss32, 0.0),
        loss_count=state.loss_count + finite.astype(jnp.int32),
    )
    metrics = {"loss": loss32, "grad_norm": grad_norm, "finite": finite}
    metrics.update({k: jnp.asarray(a, jnp.float32) for k, a in aux.items()})
    return state, metrics


def _window_row(
    metrics: dict[str, jax.Array], opt_state: PyTree, step: jax.Array
) -> dict[str, jax.Array]:
    """Reduce a window's per-step metrics to one history row."""
    finite = metrics.pop("finite")
    count = finite.sum()
    row = {
        name: jnp.where(count > 0, jnp.where(finite, x, 0.0).sum() / count, jnp.nan)
        for name, x in metrics.items()
    }
    row["skipped"] = (~finite).sum().astype(jnp.int32)
    row["step"] = step
    rate = current_learning_rate(opt_state)
    if rate is not None:
        row["learning_rate"] = rate.astype(jnp.float32)
    return row


def _crossed(before: jax.Array, after: jax.Array, every: int) -> jax.Array:
    """Whether a multiple of ``every`` lies in ``(before, after]``."""
    return after // every > before // every


def _check(cfg: LoopConfig, state: TrainState, value: jax.Array) -> TrainState:
    """One early-stopping check of ``value`` (already in "smaller is better")."""
    improved = value < state.best_value - cfg.min_delta
    bad = jnp.where(improved, 0, state.bad_checks + 1)
    best_params = state.best_params
    if cfg.restore_best:
        best_params = optax.tree.where(improved, state.params, best_params)
    return state._replace(
        best_value=jnp.where(improved, value, state.best_value),
        best_step=jnp.where(improved, state.step, state.best_step),
        bad_checks=bad,
        stopped=state.stopped | (bad >= cfg.patience),
        best_params=best_params,
        loss_sum=jnp.zeros_like(state.loss_sum),
        loss_count=jnp.zeros_like(state.loss_count),
    )


def run_window(
    loss_fn: Callable,
    optimizer: optax.GradientTransformationExtraArgs,
    eval_fn: Callable | None,
    cfg: LoopConfig,
    state: TrainState,
    data: PyTree,
    eval_data: PyTree,
) -> tuple[TrainState, dict[str, jax.Array]]:
    """``cfg.log_every`` steps, then eval and early stopping when due."""
    start = state.step

    def step(state, _):
        return train_step(loss_fn, optimizer, cfg, state, data)

    state, metrics = jax.lax.scan(step, state, length=cfg.log_every)
    row = _window_row(metrics, state.opt_state, state.step)

    if eval_fn is not None and cfg.eval_every is not None:
        shape = jax.eval_shape(eval_fn, state.params, eval_data)
        nans = jax.tree.map(lambda s: jnp.full(s.shape, jnp.nan, jnp.float32), shape)
        due = _crossed(start, state.step, cfg.eval_every)
        evals = jax.lax.cond(
            due,
            lambda p: jax.tree.map(
                lambda x: jnp.asarray(x, jnp.float32), eval_fn(p, eval_data)
            ),
            lambda p: nans,
            state.params,
        )
        row.update(eval_names(evals))
        row["evaluated"] = due

    if cfg.monitor is not None and cfg.check_every is not None:
        if cfg.monitor == "loss":
            value = state.loss_sum / jnp.maximum(state.loss_count, 1)
            value = jnp.where(state.loss_count > 0, value, jnp.nan)
        else:
            value = row[cfg.monitor]
        value = value if cfg.minimize_monitor else -value
        due = _crossed(start, state.step, cfg.check_every)
        state = jax.lax.cond(due, lambda s: _check(cfg, s, value), lambda s: s, state)
    return state, row


def eval_names(evals: Any) -> dict[str, Any]:
    """Name ``eval_fn``'s output: ``eval_<key>`` for a dict, else ``eval_loss``."""
    if isinstance(evals, dict):
        return {f"eval_{k}": v for k, v in evals.items()}
    return {"eval_loss": evals}


def run_chunk(
    loss_fn: Callable,
    optimizer: optax.GradientTransformationExtraArgs,
    eval_fn: Callable | None,
    cfg: LoopConfig,
    state: TrainState,
    data: PyTree,
    eval_data: PyTree,
    active_windows: jax.Array,
) -> tuple[TrainState, dict[str, jax.Array]]:
    """``cfg.windows`` windows; only the first ``active_windows`` run (when
    ``cfg.maskable``), and none after early stopping. Returns the final state
    and one history row per window (rows of inactive windows are junk)."""

    def window(state):
        return run_window(loss_fn, optimizer, eval_fn, cfg, state, data, eval_data)

    if not cfg.maskable:
        return jax.lax.scan(lambda s, _: window(s), state, length=cfg.windows)

    row_shape = jax.eval_shape(window, state)[1]

    def skip(state):
        return state, jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), row_shape)

    def body(state, w):
        active = (w < active_windows) & ~state.stopped
        return jax.lax.cond(active, window, skip, state)

    return jax.lax.scan(body, state, jnp.arange(cfg.windows))
