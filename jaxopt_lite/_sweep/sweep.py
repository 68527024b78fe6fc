"""`sweep`: many training runs (hyper-parameters x seeds) in one compiled loop.

`sweep` is `fit` over a batch of runs: the same options, checked by the same
planner (`plan.plan_run`), driven by the same host pipeline
(`pipeline.drive`), with an engine (`engine.SweepEngine`) that vmaps `fit`'s
loop core over blocks of runs (`program`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import jax
import numpy as np
import optax

from jaxopt_lite._core import validate
from jaxopt_lite._host import checks, pipeline, placement
from jaxopt_lite._host.options import RunOptions
from jaxopt_lite._host.plan import plan_run
from jaxopt_lite._sweep import program
from jaxopt_lite._sweep.engine import SweepEngine, default_parallel, even, join
from jaxopt_lite._sweep.result import SweepResult, assemble
from jaxopt_lite._sweep.table import (
    TRACE_ERRORS,
    check_init,
    check_make_optimizer,
    configurations,
    traced_value_error,
)

PyTree = Any


def _is_init(params: Any) -> bool:
    """A callable that is itself a pytree leaf (a function, not a module
    holding arrays) initializes parameters from a key."""
    return callable(params) and jax.tree.leaves(params) == [params]


def sweep(
    make_optimizer: Callable[..., optax.GradientTransformation],
    hyperparams: Mapping[str, Any],
    loss_fn: Callable[..., Any],
    params: PyTree | Callable[[jax.Array], PyTree],
    data: PyTree = None,
    *,
    seeds: int = 1,
    grid: bool = True,
    max_parallel: int | None = None,
    **options: Any,
) -> SweepResult:
    r"""Train one model per (configuration, seed) at once: `fit` under ``vmap``.

    $$
    \{\theta^{(c,s)}_T\}_{c,s} = \mathrm{vmap}_{c,s}\,
    \mathrm{fit}\big(\mathrm{make\_optimizer}(h_c),\ \theta^{(s)}_0,\
    \mathrm{fold\_in}(k, s)\big)
    $$

    ``make_optimizer(**configuration)`` is called inside the vmapped, compiled
    function with traced scalars, so every configuration (learning rates,
    momenta, a schedule's decay rate or warmup length, ...) shares one
    compilation, and all runs advance together in one compiled loop. Seed ``s``
    uses the key ``jax.random.fold_in(key, s)``, both to initialize the
    parameters (when ``params`` is a function) and to shuffle the data, exactly
    as ``fit(..., key=jax.random.fold_in(key, s))`` would; every configuration
    sees the same seeds. Each run matches that `fit` call up to float rounding.

    The runs are ordered configuration-major; ``max_parallel`` bounds how many
    are vmapped together (memory grows with it): the runs then go through the
    same compiled function in equal blocks, the last one padded by repeating a
    run whose results are dropped. ``eval_fn`` and ``early_stopping`` work per
    run as in `fit`, inside the same program (a stopped run idles while the
    others go on), so `SweepResult.best` can rank on a validation metric: it
    ranks by ``score``, the early-stopping monitor's best value when there is
    early stopping, else the mean training loss of the last tenth of the
    history rows (`SweepResult.ranked_by` says which); a run whose score is
    not finite is never the best, and a ``RuntimeWarning`` names the runs in
    which every step was non-finite.

    The runs advance in rounds of compiled chunks of about a second each,
    driven by the same host pipeline as `fit`: memory does not grow with
    ``steps`` (only with the history rows that ran), the sweep ends when
    every run has ended, Ctrl-C returns the rounds finished so far
    (`SweepResult.interrupted`), and every `fit` option works the same way:
    model state and per-step keys, streams of batches, checkpoints and
    resume, callbacks and loggers, the progress bar.

    Args:
        make_optimizer: ``make_optimizer(**configuration)`` returning an optax
            gradient transformation, e.g.
            ``lambda learning_rate, b1: jol.adam(learning_rate, b1=b1)``.
            Never branch in Python on its arguments: they are traced (a
            branch that changes the optimizer raises a ``TypeError`` naming
            the hyper-parameter).
        hyperparams: ``name -> 1-D list or array of values``; every name is a
            keyword argument of ``make_optimizer``.
        loss_fn: the loss, in any of `fit`'s calling conventions
            (``loss_fn(params, batch)``; with ``state``, ``has_aux`` and
            ``step_key`` as there).
        params: initial parameters (a pytree of floating-point arrays shared by
            all runs), or a function ``init(key) -> params`` so that seeds also
            vary the initialization.
        data: as in `fit`: a pytree of arrays sharing a leading (examples)
            axis, a stream of batches (every run sees the same batches), or
            ``None``.
        seeds: runs per configuration (>= 1).
        grid: ``True``: every combination of the value lists (Cartesian
            product, last name varying fastest); ``False``: the lists are zipped
            (equal lengths).
        max_parallel: at most this many runs vmapped at once. Default: all of
            them on accelerators and over a mesh; on CPU, as many as hold about
            2 MB of parameters (beyond that, vmapped runs on CPU are no faster
            than one after the other, and lose cache locality).
        **options: every keyword option of `fit`, with its name, default and
            meaning: ``state``, ``steps``, ``epochs``, ``batch_size``,
            ``key``, ``step_key``, ``shuffle``, ``replace``,
            ``drop_remainder``, ``has_aux``, ``eval_fn``, ``eval_data``,
            ``eval_every``, ``early_stopping``, ``skip_nonfinite``,
            ``skip_spikes``, ``microbatches``, ``compute_dtype``,
            ``loss_scale``,
            ``log_every``, ``chunk_size``, ``unroll``, ``progress``,
            ``callbacks``, ``checkpoint_dir``, ``resume``, ``overwrite``,
            ``checkpointing``, ``mesh``, ``param_sharding``. For a
            batch of runs: ``state`` is every run's initial model state;
            ``key`` is the key the seeds' keys are folded from;
            ``early_stopping`` applies to every run separately; a chunk is a
            round over every run; callbacks get one column per run and
            metric, ``"<column>/<run>"`` with runs numbered
            configuration-major (``config * seeds + seed``), beside the
            shared ``step`` and ``eval_step``; a checkpoint holds every run;
            ``mesh`` may also have an axis ``"runs"`` (the runs split over
            it: each device trains its share of the configurations), beside
            ``"data"`` and ``"model"`` (each run's parameters split over it;
            ``param_sharding`` may not name ``"runs"``). See the multi-device
            guide.

    Returns:
        A `SweepResult`.

    Example:
        >>> import jax, jax.numpy as jnp, jaxopt_lite as jol
        >>> x = jnp.linspace(-1, 1, 64)
        >>> data = {"x": x, "y": 3 * x + 1}
        >>> def loss_fn(p, b):
        ...     return jnp.mean((p["w"] * b["x"] + p["b"] - b["y"]) ** 2)
        >>> result = jol.sweep(
        ...     lambda learning_rate, momentum: jol.sgd(learning_rate, momentum),
        ...     {"learning_rate": [0.01, 0.1], "momentum": [0.0, 0.9]},
        ...     loss_fn, {"w": 0.0, "b": 0.0}, data,
        ...     seeds=2, epochs=20, batch_size=16, key=jax.random.key(0))
        >>> result.final_loss.shape, result.params["w"].shape
        ((4, 2), (4, 2))
        >>> result.best()
        ({'learning_rate': 0.1, 'momentum': 0.0}, 2)
    """
    run = RunOptions.given("sweep", options)
    validate.check_callable("make_optimizer", make_optimizer)
    validate.check_callable("loss_fn", loss_fn)
    validate.check_bool("grid", grid)
    validate.check_count("seeds", seeds)
    validate.check_int("max_parallel", max_parallel, optional=True)
    table = configurations(hyperparams, grid)
    built = check_make_optimizer(make_optimizer, table)
    key = validate.check_key("key", run.key)
    init = params if _is_init(params) else None
    if init is None:
        params = checks.check_params("params", params)
    else:
        params = check_init(init, key)
    plan = plan_run(
        loss_fn, params, data, run._replace(key=key),
        mesh_axes=(placement.DATA, placement.RUNS, placement.MODEL), who="sweep",
    )  # fmt: skip
    how, batched, shared = program.optimizers(make_optimizer, built, table)

    # Blocks of [config_block, seed_block] runs, padded by repeating the last.
    num_configs = len(next(iter(table.values())))
    runs = num_configs * seeds
    limit = max_parallel or default_parallel(params, runs, plan.mesh)
    seed_block = even(seeds, limit)
    config_block = even(num_configs, max(1, limit // seed_block))
    shards = placement.runs_size(plan.mesh)
    config_block = math.ceil(config_block / shards) * shards
    engine = SweepEngine(
        plan, (plan.loss, plan.eval, init), how, batched, shared,
        (num_configs, seeds, config_block, seed_block),
    )  # fmt: skip

    def finish(outcome: pipeline.Outcome) -> SweepResult:
        def per_run(state):  # every leaf [config_block, seed_block]
            step = np.broadcast_to(np.asarray(state.step), state.skipped.shape)
            return state._replace(key=None, step=step)

        def trim(x):  # the padding runs dropped
            return x if x.shape[:2] == engine.lead else x[:num_configs, :seeds]

        joined = join([[per_run(s) for s in row] for row in outcome.state])
        return assemble(
            table, seeds, plan.cfg.stop, plan.cfg.skip_nonfinite,
            jax.tree.map(trim, joined), outcome,
        )  # fmt: skip

    try:
        return pipeline.run(plan, engine, finish, "sweep")
    except TRACE_ERRORS as error:
        clear = traced_value_error(make_optimizer, table, params, error)
        if clear is error:
            raise
        raise clear from error
