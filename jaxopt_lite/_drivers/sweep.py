"""`sweep`: many training runs (hyper-parameters x seeds) in one compiled loop."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxopt_lite._core import recipe as _recipe
from jaxopt_lite._core import validate as v
from jaxopt_lite._core.dtypes import metric_dtype
from jaxopt_lite._drivers import checks as _checks
from jaxopt_lite._drivers import fit_plan as _plan
from jaxopt_lite._drivers import mesh as _mesh
from jaxopt_lite._drivers import model_checks as _model
from jaxopt_lite._drivers import programs as _programs
from jaxopt_lite._drivers import sweep_result as _sweep_result
from jaxopt_lite._drivers import sweep_table as _table
from jaxopt_lite._drivers.fit_plan import EarlyStopping
from jaxopt_lite._drivers.sweep_result import SweepResult
from jaxopt_lite._loop import sampling as _sampling
from jaxopt_lite._loop import train as _loop

PyTree = Any


def _weak(values: np.ndarray) -> jax.Array:
    """Swept values as a weakly typed array (stacked from Python scalars), so a
    swept learning rate promotes like the Python float it stands for: a
    bfloat16 model stays in bfloat16, bit for bit as with `fit`."""
    return jnp.stack([jnp.asarray(x) for x in values.tolist()])


# On CPU, vmapped runs are fastest while their stacked parameters stay in cache;
# beyond that, batched matrix products with per-run weights lose to one run at
# a time (measured on an MLP: 64 runs of 0.15 MB each ran 2x slower as one
# block than as 64 sequential runs, and faster than them in blocks of 8-16).
_CPU_BLOCK_BYTES = 2 * 2**20


def _default_parallel(abstract: PyTree, runs: int, mesh: Any) -> int:
    """How many runs to vmap together when ``max_parallel`` is not given: all
    of them on accelerators (or over a mesh), about ``_CPU_BLOCK_BYTES`` of
    parameters' worth on CPU."""
    if mesh is not None or jax.default_backend() != "cpu":
        return runs
    size = sum(
        math.prod(x.shape) * jnp.dtype(x.dtype).itemsize
        for x in jax.tree.leaves(abstract)
    )
    return max(1, min(runs, _CPU_BLOCK_BYTES // max(size, 1)))


def _even(total: int, cap: int) -> int:
    """The smallest block size that splits ``total`` into as few blocks of at
    most ``cap`` as possible (so that the last block needs little padding)."""
    cap = max(1, min(cap, total))
    return math.ceil(total / math.ceil(total / cap))


def _is_init(params: Any) -> bool:
    """A callable that is itself a pytree leaf (a function, not a module
    holding arrays) initializes parameters from a key."""
    return callable(params) and jax.tree.leaves(params) == [params]


def _compiled(
    how: tuple,
    loss_fn: Callable,
    init: Callable | None,
    eval_fn: Callable | None,
    cfg: _loop.LoopConfig,
    spmd_axis: str | None,
):
    """The block program for optimizers made as ``how`` says (see
    `_optimizers`), cached by structure (`programs`), with the callables'
    inputs bound."""
    key, inputs = _programs.split(
        {"loss": loss_fn, "init": init, "eval": eval_fn}, None
    )
    block = _programs.program(
        ("sweep", key, how, cfg, spmd_axis),
        lambda: _build(key, how, cfg, spmd_axis),
    )
    return functools.partial(block, inputs)


def _optimizers(
    make_optimizer: Callable,
    optimizers: list[optax.GradientTransformation],
    table: dict[str, np.ndarray],
) -> tuple[tuple, Callable[[np.ndarray], Any], list[Any]]:
    """How the block program makes each configuration's optimizer: ``(how,
    batched(config_ids), shared)``.

    When every configuration's optimizer has the same recipe structure, the
    program rebuilds it from its numbers: those that differ between
    configurations are stacked (``batched``), the others are passed once
    (``shared``); a fresh but equivalent ``make_optimizer`` reuses the
    program. Otherwise (foreign transforms built anew per call) the program
    calls ``make_optimizer`` itself with the traced swept values.
    """
    splits = [_recipe.split(o) for o in optimizers]
    structure = splits[0][0]
    if all(k == structure for k, _ in splits[1:]):
        columns = list(zip(*(numbers for _, numbers in splits), strict=True))
        varying = tuple(not _all_same(c) for c in columns)
        shared = [c[0] for c, vary in zip(columns, varying, strict=True) if not vary]

        def batched(ids: np.ndarray) -> dict[str, Any]:
            # "ids" gives the configuration axis even when no number varies.
            stacked = [
                jnp.stack([jnp.asarray(c[i]) for i in ids.tolist()])
                for c, vary in zip(columns, varying, strict=True)
                if vary
            ]
            return {"ids": jnp.asarray(ids, jnp.int32), "values": stacked}

        return ("recipe", structure, varying), batched, shared

    def swept(ids: np.ndarray) -> dict[str, jax.Array]:
        return {n: _weak(np.asarray(vals[ids])) for n, vals in table.items()}

    return ("factory", _recipe.Identity(make_optimizer)), swept, []


def _all_same(values: tuple) -> bool:
    first = values[0]
    return all(
        x is first or (type(x) is type(first) and bool(np.array_equal(x, first)))
        for x in values[1:]
    )


def _build(
    program_key: tuple, how: tuple, cfg: _loop.LoopConfig, spmd_axis: str | None
):
    """``(inputs, hp [c], shared, key, seeds [s], params, data, eval_data) ->
    (state, rows)`` with leading axes ``[c, s]``: configurations vmapped inside
    seeds, so that everything that depends only on the seed (initialization,
    batch sampling) is computed once per seed and shared by the
    configurations."""

    def make(hp, shared):
        if how[0] == "recipe":
            _, structure, varying = how
            batched, fixed = iter(hp["values"]), iter(shared)
            numbers = [next(batched) if vary else next(fixed) for vary in varying]
            return _recipe.rebuild(structure, numbers)
        return how[1].get()(**hp)

    def block(inputs, hp, shared, key, seed_ids, params, data, eval_data):
        fns, _ = _programs.join(program_key, inputs)
        return _block(fns["loss"], fns["init"], fns["eval"], make, cfg, spmd_axis)(
            hp, shared, key, seed_ids, params, data, eval_data
        )

    return jax.jit(block)


def _block(loss_fn, init, eval_fn, make, cfg, spmd_axis):
    def optimizer_for(hp, shared):
        return optax.with_extra_args_support(make(hp, shared))

    def init_one(hp, shared, key, params):
        if init is not None:
            params = init(key)
        return _loop.init_train_state(params, None, optimizer_for(hp, shared), key, cfg)

    def run_one(hp, shared, state, data, eval_data):
        steps = jnp.int32(cfg.chunk_size)
        return _loop.run_chunk(
            loss_fn, optimizer_for(hp, shared), eval_fn, cfg, state, data, eval_data,
            steps, steps,
        )  # fmt: skip

    # Every leaf of the initial states is materialized per run except the key
    # (per seed) and the step counter (shared), which never depend on the
    # configuration: the loops then trace their bodies once instead of
    # iterating until the batched carries settle.
    fields = {f: 0 for f in _loop.TrainState._fields}
    by_config = _loop.TrainState(**{**fields, "key": None, "step": None})
    by_seed = _loop.TrainState(**{**fields, "step": None})
    inits = jax.vmap(
        jax.vmap(init_one, in_axes=(0, None, None, None)),
        in_axes=(None, None, 0, None),
    )
    configs = jax.vmap(
        run_one, in_axes=(0, None, by_config, None, None), spmd_axis_name=spmd_axis
    )
    runs = jax.vmap(configs, in_axes=(None, None, by_seed, None, None))

    def block(hp, shared, key, seed_ids, params, data, eval_data):
        keys = jax.vmap(jax.random.fold_in, in_axes=(None, 0))(key, seed_ids)
        states = inits(hp, shared, keys, params)
        states = states._replace(key=keys, step=jnp.zeros([], jnp.int32))
        if len(seed_ids) == 1:  # a static shape: no seed axis to batch over
            one = jax.tree.map(lambda x: x[0], states._replace(step=None))
            out = configs(hp, shared, one._replace(step=states.step), data, eval_data)
            return jax.tree.map(lambda x: x[:, None], out)
        out = runs(hp, shared, states, data, eval_data)
        return jax.tree.map(lambda x: jnp.swapaxes(x, 0, 1), out)

    return block


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
    history rows (`SweepResult.ranked_by` says which).

    Args:
        make_optimizer: ``make_optimizer(**configuration)`` returning an optax
            gradient transformation, e.g.
            ``lambda learning_rate, b1: jol.adam(learning_rate, b1=b1)``.
            Never branch in Python on its arguments: they are traced.
        hyperparams: ``name -> 1-D list or array of values``; every name is a
            keyword argument of ``make_optimizer``.
        loss_fn: ``loss_fn(params, batch) -> scalar`` (``(scalar, aux)`` with
            ``has_aux``), as in `fit`.
        params: initial parameters (a pytree of floating-point arrays shared by
            all runs), or a function ``init(key) -> params`` so that seeds also
            vary the initialization.
        data: a pytree of arrays sharing a leading (examples) axis, or ``None``.
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
        has_aux: ``loss_fn`` returns ``(loss, aux)`` (aux a dict of scalars).
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
    v.check_int("seeds", seeds)
    v.check_int("max_parallel", max_parallel, optional=True)
    table = _table.configurations(hyperparams, grid)
    optimizers = _table.check_make_optimizer(make_optimizer, table)
    data, num_examples, batch_size, steps_per_epoch, total_steps = _checks.run_length(
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
    stop = _plan.check_early_stopping(
        early_stopping, eval_names, steps_per_epoch, eval_every
    )
    cfg = _loop.LoopConfig(
        sampling=_sampling.Sampling(num_examples, batch_size, shuffle, replace),
        log_every=log_every,
        chunk_size=total_steps,
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
    how, batched, shared = _optimizers(make_optimizer, optimizers, table)
    run_block = _compiled(how, loss_fn, init, eval_fn, cfg, spmd_axis)

    # Blocks of [config_block, seed_block] runs, padded by repeating the last.
    num_configs = len(next(iter(table.values())))
    limit = max_parallel or _default_parallel(abstract, num_configs * seeds, mesh)
    seed_block = _even(seeds, limit)
    config_block = _even(num_configs, max(1, limit // seed_block))
    shards = _mesh.runs_size(mesh)
    config_block = math.ceil(config_block / shards) * shards

    def blocks(total: int, size: int) -> list[np.ndarray]:
        count = math.ceil(total / size)
        padded = np.minimum(np.arange(count * size), total - 1)
        return np.split(padded, count)

    params = None if init is not None else params
    key_at = runs_at = None
    if mesh is not None:
        data = _mesh.place_data(mesh, data)
        key_at = _mesh.replicated(mesh)
        params, key, eval_data = jax.device_put((params, key, eval_data), key_at)
        runs_at = _mesh.run_sharding(mesh) or key_at
    outputs = []  # dispatch every block before reading any
    for seed_ids in blocks(seeds, seed_block):
        row = []
        for config_ids in blocks(num_configs, config_block):
            hp = batched(np.asarray(config_ids))
            ids = np.asarray(seed_ids, np.int32)
            if mesh is not None:
                hp, ids = jax.device_put(hp, runs_at), jax.device_put(ids, key_at)
            row.append(run_block(hp, shared, key, ids, params, data, eval_data))
        outputs.append(row)

    def join(*xs):
        return xs[0] if len(xs) == 1 else jnp.concatenate(xs, axis=0)

    columns = [jax.tree.map(join, *row) for row in outputs]
    state, rows = jax.tree.map(
        lambda *xs: xs[0] if len(xs) == 1 else jnp.concatenate(xs, axis=1), *columns
    )

    def trim(x):
        return x if x.shape[:2] == (num_configs, seeds) else x[:num_configs, :seeds]

    state = jax.tree.map(trim, state._replace(key=None))
    rows = jax.tree.map(trim, jax.device_get(rows))
    return _sweep_result.assemble(table, seeds, total_steps, stop, state, rows)
