"""`sweep`: many training runs (hyper-parameters x seeds) in one compiled loop.

`sweep` checks its arguments and lays the runs out in blocks; the programs
are built in `sweep_program`, run in paced rounds of chunks by `sweep_run`,
and collected into a `SweepResult` by `sweep_result`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import jax
import numpy as np
import optax

from jaxopt_lite._core import validate as v
from jaxopt_lite._core.dtypes import metric_dtype
from jaxopt_lite._drivers import checks as _checks
from jaxopt_lite._drivers import fit_plan as _plan
from jaxopt_lite._drivers import mesh as _mesh
from jaxopt_lite._drivers import model_checks as _model
from jaxopt_lite._drivers import pacing as _pacing
from jaxopt_lite._drivers import run_checks as _settings
from jaxopt_lite._drivers import sweep_program as _program
from jaxopt_lite._drivers import sweep_result as _sweep_result
from jaxopt_lite._drivers import sweep_run as _run
from jaxopt_lite._drivers import sweep_table as _table
from jaxopt_lite._drivers.fit_plan import EarlyStopping
from jaxopt_lite._drivers.sweep_result import SweepResult
from jaxopt_lite._loop import sampling as _sampling
from jaxopt_lite._loop import train as _loop

PyTree = Any


def _is_init(params: Any) -> bool:
    """A callable that is itself a pytree leaf (a function, not a module
    holding arrays) initializes parameters from a key."""
    return callable(params) and jax.tree.leaves(params) == [params]


def sweep(
    make_optimizer: Callable[..., optax.GradientTransformation],
    hyperparams: Mapping[str, Any],
    loss_fn: Callable[[PyTree, PyTree], jax.Array],
    params: PyTree | Callable[[jax.Array], PyTree],
    data: PyTree = None,
    *,
    seeds: int = 1,
    grid: bool = True,
    steps: int | None = None,
    epochs: int | None = None,
    batch_size: int | None = None,
    key: jax.Array | None = None,
    shuffle: bool = True,
    replace: bool = False,
    has_aux: bool = False,
    eval_fn: Callable[[PyTree, PyTree], Any] | None = None,
    eval_data: PyTree = None,
    eval_every: int | None = None,
    early_stopping: EarlyStopping | None = None,
    skip_nonfinite: bool = True,
    log_every: int = 1,
    max_parallel: int | None = None,
    mesh: jax.sharding.Mesh | None = None,
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

    The runs advance in rounds of compiled chunks of about a second each, as
    in `fit`: memory does not grow with ``steps`` (only with the history rows
    that ran), the sweep ends when every run has ended, and Ctrl-C returns the
    rounds finished so far (`SweepResult.interrupted`).

    Args:
        make_optimizer: ``make_optimizer(**configuration)`` returning an optax
            gradient transformation, e.g.
            ``lambda learning_rate, b1: jol.adam(learning_rate, b1=b1)``.
            Never branch in Python on its arguments: they are traced (a
            branch that changes the optimizer raises a ``TypeError`` naming
            the hyper-parameter).
        hyperparams: ``name -> 1-D list or array of values``; every name is a
            keyword argument of ``make_optimizer``.
        loss_fn: ``loss_fn(params, batch) -> scalar`` (``(scalar, aux)`` with
            ``has_aux``), as in `fit`.
        params: initial parameters (a pytree of floating-point arrays shared by
            all runs), or a function ``init(key) -> params`` so that seeds also
            vary the initialization.
        data: a pytree of arrays sharing a leading (examples) axis, or ``None``
            (not a stream of batches, which `fit` accepts).
        seeds: runs per configuration (>= 1).
        grid: ``True``: every combination of the value lists (Cartesian
            product, last name varying fastest); ``False``: the lists are zipped
            (equal lengths).
        steps: number of steps; exactly one of ``steps`` and ``epochs``.
        epochs: number of epochs of ``len(data) // batch_size`` steps.
        batch_size: examples per step (``None``: all of them).
        key: the PRNG key the seeds' keys are folded from (default
            ``jax.random.key(0)``).
        shuffle: permute each epoch, as in `fit`.
        replace: sample with replacement instead.
        has_aux: ``loss_fn`` returns ``(loss, aux)`` (aux a dict of scalars,
            whose names must not clash with the history's own columns).
        eval_fn: ``eval_fn(params, eval_data)``, a scalar or a dict of scalars
            (recorded as ``eval_<name>``), run every ``eval_every`` steps.
        eval_data: the data for ``eval_fn``.
        eval_every: steps between evaluations (default: once per epoch).
        early_stopping: an `EarlyStopping`, applied to every run separately.
        skip_nonfinite: skip (and count) steps whose loss or gradient is not
            finite, so a diverging configuration keeps its last finite
            parameters.
        log_every: steps per history row (the last row may hold fewer steps).
        max_parallel: at most this many runs vmapped at once. Default: all of
            them on accelerators and over a mesh; on CPU, as many as hold about
            2 MB of parameters (beyond that, vmapped runs on CPU are no faster
            than one after the other, and lose cache locality).
        mesh: a `jax.sharding.Mesh` with an axis ``"data"`` (each batch split
            over it, as in `fit`), an axis ``"runs"`` (the runs split over it:
            each device trains its share of the configurations), or both. See
            the multi-device guide.

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
    v.check_callable("make_optimizer", make_optimizer)
    v.check_callable("loss_fn", loss_fn)
    for name, flag in {
        "grid": grid,
        "shuffle": shuffle,
        "replace": replace,
        "has_aux": has_aux,
        "skip_nonfinite": skip_nonfinite,
    }.items():
        v.check_bool(name, flag)
    v.check_count("seeds", seeds)
    v.check_int("max_parallel", max_parallel, optional=True)
    table = _table.configurations(hyperparams, grid)
    optimizers = _table.check_make_optimizer(make_optimizer, table)
    _table.check_data(data)
    data, num_examples, batch_size, steps_per_epoch, total_steps = _settings.run_length(
        data, batch_size, steps, epochs, log_every
    )
    mesh = _mesh.check_mesh(
        mesh, batch_size, axes=(_mesh.DATA, _mesh.RUNS), who="sweep"
    )
    key = v.check_key("key", key)
    init = params if _is_init(params) else None
    if init is None:
        params = _checks.check_params("params", params)
        abstract = params
    else:
        abstract = _table.check_init(init, key)
    aux_names = _model.check_loss(
        loss_fn, abstract, None, data, batch_size, None, has_aux=has_aux
    )
    eval_data, eval_every, eval_names = _plan.check_eval(
        eval_fn, eval_data, eval_every, steps_per_epoch, (abstract,)
    )
    _settings.check_metric_names(aux_names, eval_names)
    stop = _plan.check_early_stopping(
        early_stopping, eval_names, steps_per_epoch, eval_every
    )
    cfg = _loop.LoopConfig(
        sampling=_sampling.Sampling(num_examples, batch_size, shuffle, replace),
        log_every=log_every,
        chunk_size=_pacing.capacity(None, total_steps, log_every),
        has_aux=has_aux,
        aux_names=tuple(aux_names),
        has_state=False,
        step_key=False,
        skip_nonfinite=skip_nonfinite,
        eval=None if eval_every is None else _loop.EvalConfig(eval_every),
        stop=stop,
        batch_sharding=_mesh.batch_sharding(mesh),
        metric_dtype=metric_dtype(abstract),
    )
    spmd_axis = _mesh.RUNS if _mesh.run_sharding(mesh) is not None else None
    how, batched, shared = _program.optimizers(make_optimizer, optimizers, table)
    init_block, chunk_block = _program.compiled(
        how, loss_fn, init, eval_fn, cfg, spmd_axis
    )

    # Blocks of [config_block, seed_block] runs, padded by repeating the last.
    num_configs = len(next(iter(table.values())))
    runs = num_configs * seeds
    limit = max_parallel or _run.default_parallel(abstract, runs, mesh)
    seed_block = _run.even(seeds, limit)
    config_block = _run.even(num_configs, max(1, limit // seed_block))
    shards = _mesh.runs_size(mesh)
    config_block = math.ceil(config_block / shards) * shards

    params = None if init is not None else params
    key_at = runs_at = None
    if mesh is not None:
        data = _mesh.place_data(mesh, data)
        key_at = _mesh.replicated(mesh)
        params, key, eval_data = jax.device_put((params, key, eval_data), key_at)
        runs_at = _mesh.run_sharding(mesh) or key_at
    layout = []  # [seed block][config block] of (hyper-parameters, seed ids)
    for seed_ids in _run.blocks(seeds, seed_block):
        row = []
        for config_ids in _run.blocks(num_configs, config_block):
            hp = batched(np.asarray(config_ids))
            ids = np.asarray(seed_ids, np.int32)
            if mesh is not None:
                hp, ids = jax.device_put(hp, runs_at), jax.device_put(ids, key_at)
            row.append((hp, ids))
        layout.append(row)

    def start(block):
        hp, ids = block
        return init_block(hp, shared, key, ids, params)

    def advance(block, state, steps, total):
        return chunk_block(block[0], shared, state, data, eval_data, steps, total)

    try:
        outcome = _run.run_rounds(
            layout, start, advance, total_steps, log_every, cfg.chunk_size
        )
    except _table.TRACE_ERRORS as error:
        clear = _table.traced_value_error(make_optimizer, table, abstract, error)
        if clear is error:
            raise
        raise clear from error

    def per_run(state):  # every leaf [config_block, seed_block]
        step = np.broadcast_to(np.asarray(state.step), state.skipped.shape)
        return state._replace(key=None, step=step)

    def trim(x):  # the padding runs dropped
        return x if x.shape[:2] == (num_configs, seeds) else x[:num_configs, :seeds]

    state = _run.join([[per_run(s) for s in row] for row in outcome.finished.states])
    state = jax.tree.map(trim, state)
    return _sweep_result.assemble(
        table, seeds, stop, skip_nonfinite, state, outcome.finished.rounds,
        outcome.spec, outcome.interrupted,
    )  # fmt: skip
