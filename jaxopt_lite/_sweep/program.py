"""`sweep`'s compiled programs: `fit`'s loop core vmapped over a block of
runs (configurations x seeds).

Between chunks a block's state keeps every per-run leaf with leading axes
``[configs, seeds]``; the PRNG key is kept per seed (``[seeds]``) and, without
early stopping, the step counter once for the block (every run is at the
same step): the loops then see them unbatched over the configurations, so
the minibatches are sampled once per seed and shared by its configurations.

The programs are module-level ``jax.jit`` functions keyed by a static
`Program` (the structure of the loss, evaluation and parameter
initializer, how the optimizers are made, the loop's settings), as in `fit`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxopt_lite._core import recipe
from jaxopt_lite._host import programs, sharding
from jaxopt_lite._loop import chunk, train, unrolled

PyTree = Any


class Program(NamedTuple):
    """The static part of `sweep`'s programs."""

    fns: programs.Static  # (Loss, Eval | None, init | None), arrays as inputs
    how: tuple  # how each run's optimizer is made (see `optimizers`)
    cfg: train.LoopConfig
    spmd_axis: str | None  # the mesh axis the runs are split over
    layout: sharding.Layout | None = None  # a block's state's, when sharded


def _weak(values: np.ndarray) -> jax.Array:
    """Swept values as a weakly typed array (stacked from Python scalars), so a
    swept learning rate promotes like the Python float it stands for: a
    bfloat16 model stays in bfloat16, bit for bit as with `fit`."""
    return jnp.stack([jnp.asarray(x) for x in values.tolist()])


def _all_same(values: tuple) -> bool:
    first = values[0]
    return all(
        x is first or (type(x) is type(first) and bool(np.array_equal(x, first)))
        for x in values[1:]
    )


def optimizers(
    make_optimizer: Callable,
    built: list[optax.GradientTransformation],
    table: dict[str, np.ndarray],
) -> tuple[tuple, Callable[[np.ndarray], Any], list[Any]]:
    """How the programs make each configuration's optimizer: ``(how,
    batched(config_ids), shared)``.

    When every configuration's optimizer (``built``, one per configuration)
    has the same structure (`programs.split_optimizer`), the programs
    rebuild it from its numbers: those that differ between configurations are
    stacked (``batched``), the others are passed once (``shared``); a fresh
    but equivalent ``make_optimizer`` reuses the programs. Otherwise (foreign
    transforms built anew per call, or a structure that depends on the
    values) the programs call ``make_optimizer`` themselves with the traced
    swept values.
    """
    splits = [programs.split_optimizer(o) for o in built]
    structure = splits[0][0]
    if all(s == structure for s, _ in splits[1:]):
        columns = list(zip(*(inputs for _, inputs in splits), strict=True))
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

    return ("factory", recipe.Identity(make_optimizer)), swept, []


def _make(how: tuple, hp: Any, shared: list) -> optax.GradientTransformationExtraArgs:
    if how[0] == "recipe":
        _, structure, varying = how
        batched, fixed = iter(hp["values"]), iter(shared)
        inputs = [next(batched) if vary else next(fixed) for vary in varying]
        optimizer = programs.join_optimizer(structure, inputs)
    else:
        optimizer = how[1].get()(**hp)
    return optax.with_extra_args_support(optimizer)


class _Block:
    """The vmapped functions of one block of runs, traced inside the programs."""

    def __init__(self, program: Program, fn_inputs: list, boundary: bool = False):
        self.loss, self.eval, self.init_fn = programs.combine(program.fns, fn_inputs)
        self.boundary = boundary  # the unrolled form's call ends at a boundary
        self.how, self.cfg = program.how, program.cfg
        # Without early stopping every run is at the same step.
        self.shared_step = self.cfg.stop is None
        by_config, by_seed = self._axes(0, None), self._axes(1, 0)
        self.configs = jax.vmap(
            self._run_one,
            in_axes=(0, None, by_config, None, None, None, None),
            out_axes=(by_config, 0),
            spmd_axis_name=program.spmd_axis,
        )
        self.runs = jax.vmap(
            self.configs,
            in_axes=(None, None, by_seed, None, None, None, None),
            out_axes=(by_seed, 1),
        )
        self.inits = jax.vmap(
            jax.vmap(self._init_one, in_axes=(0, None, None, None, None)),
            in_axes=(None, None, 0, None, None),
            out_axes=1,
        )

    def _axes(self, run: int, seed: int | None) -> train.TrainState:
        """vmap axes of a block's state: ``run`` for the per-run leaves, the key
        per seed, the step shared or per run."""
        fields = dict.fromkeys(train.TrainState._fields, run)
        step = None if self.shared_step else run
        return train.TrainState(**{**fields, "key": seed, "step": step})

    def _init_one(self, hp, shared, key, params, model_state):
        if self.init_fn is not None:
            params = self.init_fn(key)
        optimizer = _make(self.how, hp, shared)
        return train.init_train_state(params, model_state, optimizer, key, self.cfg)

    def _run_one(self, hp, shared, state, data, eval_data, steps, total):
        optimizer = _make(self.how, hp, shared)
        args = (self.loss, optimizer, self.cfg, state, data, steps, total, self.eval)
        if self.cfg.unroll:
            return unrolled.run_unrolled(*args, eval_data, boundary=self.boundary)
        return chunk.run_chunk(*args, eval_data)

    def init(self, hp, shared, key, seed_ids, params, model_state) -> train.TrainState:
        keys = jax.vmap(jax.random.fold_in, in_axes=(None, 0))(key, seed_ids)
        state = self.inits(hp, shared, keys, params, model_state)
        shape = () if self.shared_step else state.skipped.shape
        return state._replace(key=keys, step=jnp.zeros(shape, jnp.int32))

    def chunk(self, hp, shared, state, data, eval_data, steps, total):
        args = (data, eval_data, steps, total)
        if state.key.shape[0] > 1:
            return self.runs(hp, shared, state, *args)
        # One seed (a static shape): no seed axis to batch over.
        out, rows = self.configs(hp, shared, self._seed_axis(state, 0), *args)
        return self._seed_axis(out, None, state.key), jax.tree.map(
            lambda x: x[:, None], rows
        )

    def _seed_axis(self, state, index: int | None, key: Any = None):
        """``state`` with its seed axis (of size 1) taken (``index=0``) or put
        back (``index=None``, with the block's ``key``)."""
        cut = (lambda x: x[:, 0]) if index == 0 else (lambda x: x[:, None])
        per_run = jax.tree.map(cut, state._replace(key=None, step=None))
        step = state.step if self.shared_step else cut(state.step)
        return per_run._replace(key=state.key[0] if index == 0 else key, step=step)


@functools.partial(jax.jit, static_argnums=0)
def sweep_init(program, fn_inputs, hp, shared, key, seed_ids, params, model_state):
    """The state of a block of runs before their first step."""
    block = _Block(program, fn_inputs)
    state = block.init(hp, shared, key, seed_ids, params, model_state)
    return state if program.layout is None else program.layout.constrain(state)


@functools.partial(jax.jit, static_argnums=0)
def sweep_chunk(program, fn_inputs, hp, shared, state, data, eval_data, steps, total):
    """One chunk of a block of runs: ``(state, rows)``, rows with leading axes
    ``[configs, seeds]``."""
    block = _Block(program, fn_inputs)
    state, rows = block.chunk(hp, shared, state, data, eval_data, steps, total)
    if program.layout is not None:  # the state stays sharded
        state = program.layout.constrain(state)
    return state, rows


@functools.partial(jax.jit, static_argnums=(0, 9))
def sweep_unrolled(
    program, fn_inputs, hp, shared, state, data, eval_data, steps, total, boundary
):
    """One call of the unrolled form for a block of runs (`sweep_chunk`'s
    result); ``boundary``: the call ends at an evaluation or check."""
    block = _Block(program, fn_inputs, boundary)
    state, rows = block.chunk(hp, shared, state, data, eval_data, steps, total)
    if program.layout is not None:  # the state stays sharded
        state = program.layout.constrain(state)
    return state, rows
