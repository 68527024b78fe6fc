"""Early stopping inside the compiled loop (layer 2): its config, state, check."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jaxopt_lite._loop.history import finite_mean

PyTree = Any


class StopConfig(NamedTuple):
    """Static early-stopping settings, named as in `EarlyStopping`."""

    monitor: str  # "loss" (mean training loss since the last check) or "eval_<m>"
    every: int  # steps between checks: a check at every multiple
    mode: str  # "min" or "max"
    min_delta: float
    patience: int
    restore_best: bool


class StopState(NamedTuple):
    """What early stopping carries from check to check."""

    loss_sum: jax.Array  # finite training losses since the last check
    loss_count: jax.Array  # int32
    best_value: jax.Array  # in "smaller is better" sign
    best_step: jax.Array  # int32, -1 before the first check
    bad_checks: jax.Array  # int32
    stopped: jax.Array  # bool
    best: PyTree  # (params, model_state) at best_step; None unless restore_best


def init_stop_state(
    cfg: StopConfig, params: PyTree, model_state: PyTree, dtype: Any
) -> StopState:
    """The state before the first check; values in the metric ``dtype``."""
    return StopState(
        loss_sum=jnp.zeros([], dtype),
        loss_count=jnp.zeros([], jnp.int32),
        best_value=jnp.full([], jnp.inf, dtype),
        best_step=jnp.full([], -1, jnp.int32),
        bad_checks=jnp.zeros([], jnp.int32),
        stopped=jnp.zeros([], jnp.bool_),
        best=(params, model_state) if cfg.restore_best else None,
    )


def add_loss(cfg: StopConfig, stop: StopState, loss: jax.Array, finite: jax.Array):
    """Count one step's training loss (only when the monitor is ``"loss"``)."""
    if cfg.monitor != "loss":
        return stop
    return stop._replace(
        loss_sum=stop.loss_sum + jnp.where(finite, loss, 0.0),
        loss_count=stop.loss_count + finite.astype(jnp.int32),
    )


def monitored(cfg: StopConfig, stop: StopState, evals: dict[str, jax.Array]):
    """The monitored value of this check, in "smaller is better" sign (NaN when
    no finite step was seen since the last check)."""
    if cfg.monitor == "loss":
        value = finite_mean(stop.loss_sum, stop.loss_count)
    else:
        value = evals[cfg.monitor]
    return value if cfg.mode == "min" else -value


def check(
    cfg: StopConfig,
    stop: StopState,
    value: jax.Array,
    step: jax.Array,
    params: PyTree,
    model_state: PyTree,
) -> StopState:
    """One check of ``value``: improved when below the best by ``min_delta``."""
    improved = value < stop.best_value - cfg.min_delta
    bad = jnp.where(improved, 0, stop.bad_checks + 1)
    best = stop.best
    if cfg.restore_best:
        best = optax.tree.where(improved, (params, model_state), best)
    return StopState(
        loss_sum=jnp.zeros_like(stop.loss_sum),
        loss_count=jnp.zeros_like(stop.loss_count),
        best_value=jnp.where(improved, value, stop.best_value),
        best_step=jnp.where(improved, step, stop.best_step),
        bad_checks=bad,
        stopped=stop.stopped | (bad >= cfg.patience),
        best=best,
    )
