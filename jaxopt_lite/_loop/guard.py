"""The NaN guard of `fit`, at the cost of one branch per chunk.

A guarded step (`train.train_step` with ``cfg.skip_nonfinite``) applies an update only
when the loss and the gradient norm are finite. Branching at every step is
not free on CPU (the branch splits the step's fusions; a select over the
parameters and state costs a pass over them), so `run_chunk` runs a chunk
*optimistically*, without the per-step branch, and keeps the result only if
every step was finite; otherwise it runs the chunk again from its first state
with the guarded step. A chunk without a non-finite step takes the same
updates either way, so the result is bit-identical to the always-guarded run,
and no update of a non-finite step ever leaves the chunk.

Under ``vmap`` the chunk-level branch would become a select that runs both
passes, so batched drivers (`sweep`) use `chunk.run_chunk` directly.
"""

from __future__ import annotations

from typing import Any

import jax
import optax

from jaxopt_lite._loop import chunk, train
from jaxopt_lite._loop.loss import Loss

PyTree = Any


def run_chunk(
    loss_fn: Loss,
    optimizer: optax.GradientTransformationExtraArgs,
    cfg: train.LoopConfig,
    state: train.TrainState,
    *args: Any,
    **kwargs: Any,
) -> tuple[train.TrainState, Any]:
    """`chunk.run_chunk` (the same arguments), with the per-step branch that
    skips steps (non-finite ones, spikes) paid only by chunks that hold such
    a step."""

    def run(config: train.LoopConfig):
        return chunk.run_chunk(loss_fn, optimizer, config, state, *args, **kwargs)

    if not train.skipping(cfg):
        return run(cfg)
    fast = run(cfg._replace(optimistic=True))
    # Skipped steps are counted in `skipped` in either pass.
    clean = fast[0].skipped == state.skipped
    return jax.lax.cond(clean, lambda: fast, lambda: run(cfg))
