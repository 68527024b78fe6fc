"""`sweep`'s compiled programs: a block of runs initialized, then advanced
chunk by chunk, `_loop.train.run_chunk` vmapped over configurations and seeds.

Between chunks a block's state keeps every per-run leaf with leading axes
``[configs, seeds]``; the PRNG key is kept per seed (``[seeds]``) and, without
early stopping, the step counter once for the block (every run is at the same
step): the loops then see them unbatched over the configurations, so the
minibatches are sampled once per seed and shared by its configurations.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxopt_lite._core import recipe as _recipe
from jaxopt_lite._drivers import programs as _programs
from jaxopt_lite._loop import train as _loop

PyTree = Any


def _weak(values: np.ndarray) -> jax.Array:
    """Swept values as a weakly typed array (stacked from Python scalars), so a
    swept learning rate promotes like the Python float it stands for: a
    bfloat16 model stays in bfloat16, bit for bit as with `fit`."""
    return jnp.stack([jnp.asarray(x) for x in values.tolist()])


def optimizers(
    make_optimizer: Callable,
    built: list[optax.GradientTransformation],
    table: dict[str, np.ndarray],
) -> tuple[tuple, Callable[[np.ndarray], Any], list[Any]]:
    """How the programs make each configuration's optimizer: ``(how,
    batched(config_ids), shared)``.

    When every configuration's optimizer (``built``, one per configuration)
    has the same recipe structure, the programs rebuild it from its numbers:
    those that differ between configurations are stacked (``batched``), the
    others are passed once (``shared``); a fresh but equivalent
    ``make_optimizer`` reuses the programs. Otherwise (foreign transforms
    built anew per call, or a structure that depends on the values) the
    programs call ``make_optimizer`` themselves with the traced swept values.
    """
    splits = [_recipe.split(o) for o in built]
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


def compiled(
    how: tuple,
    loss_fn: Callable,
    init: Callable | None,
    eval_fn: Callable | None,
    cfg: _loop.LoopConfig,
    spmd_axis: str | None,
) -> tuple[Callable, Callable]:
    """``(init_block, chunk_block)`` for optimizers made as ``how`` says (see
    `optimizers`), cached by structure (`programs`), the callables' inputs
    bound:

    * ``init_block(hp, shared, key, seed_ids, params) -> state``;
    * ``chunk_block(hp, shared, state, data, eval_data, steps, total_steps)
      -> (state, rows)``, rows with leading axes ``[configs, seeds]``.
    """
    key, inputs = _programs.split(
        {"loss": loss_fn, "init": init, "eval": eval_fn}, None
    )
    init_block, chunk_block = _programs.program(
        ("sweep", key, how, cfg, spmd_axis),
        lambda: _build(key, how, cfg, spmd_axis),
    )
    return functools.partial(init_block, inputs), functools.partial(chunk_block, inputs)


def _build(
    program_key: tuple, how: tuple, cfg: _loop.LoopConfig, spmd_axis: str | None
):
    def make(hp, shared):
        if how[0] == "recipe":
            _, structure, varying = how
            batched, fixed = iter(hp["values"]), iter(shared)
            numbers = [next(batched) if vary else next(fixed) for vary in varying]
            return _recipe.rebuild(structure, numbers)
        return how[1].get()(**hp)

    def parts(inputs):
        fns, _ = _programs.join(program_key, inputs)
        return _Block(fns["loss"], fns["init"], fns["eval"], make, cfg, spmd_axis)

    def sweep_init(inputs, hp, shared, key, seed_ids, params):
        return parts(inputs).init(hp, shared, key, seed_ids, params)

    def sweep_chunk(inputs, hp, shared, state, data, eval_data, steps, total):
        return parts(inputs).chunk(hp, shared, state, data, eval_data, steps, total)

    return jax.jit(sweep_init), jax.jit(sweep_chunk)


class _Block:
    """The vmapped functions of one block of runs, traced inside the programs."""

    def __init__(self, loss_fn, init, eval_fn, make, cfg, spmd_axis):
        self.loss_fn, self.init_fn, self.eval_fn = loss_fn, init, eval_fn
        self.make, self.cfg = make, cfg
        # Without early stopping every run is at the same step.
        self.shared_step = cfg.stop is None
        by_config, by_seed = self._axes(0, None), self._axes(1, 0)
        self.configs = jax.vmap(
            self._run_one,
            in_axes=(0, None, by_config, None, None, None, None),
            out_axes=(by_config, 0),
            spmd_axis_name=spmd_axis,
        )
        self.runs = jax.vmap(
            self.configs,
            in_axes=(None, None, by_seed, None, None, None, None),
            out_axes=(by_seed, 1),
        )
        self.inits = jax.vmap(
            jax.vmap(self._init_one, in_axes=(0, None, None, None)),
            in_axes=(None, None, 0, None),
            out_axes=1,
        )

    def _axes(self, run: int, seed: int | None) -> _loop.TrainState:
        """vmap axes of a block's state: ``run`` for the per-run leaves, the key
        per seed, the step shared or per run."""
        fields = dict.fromkeys(_loop.TrainState._fields, run)
        step = None if self.shared_step else run
        return _loop.TrainState(**{**fields, "key": seed, "step": step})

    def _optimizer(self, hp, shared):
        return optax.with_extra_args_support(self.make(hp, shared))

    def _init_one(self, hp, shared, key, params):
        if self.init_fn is not None:
            params = self.init_fn(key)
        optimizer = self._optimizer(hp, shared)
        return _loop.init_train_state(params, None, optimizer, key, self.cfg)

    def _run_one(self, hp, shared, state, data, eval_data, steps, total):
        optimizer = self._optimizer(hp, shared)
        return _loop.run_chunk(
            self.loss_fn, optimizer, self.eval_fn, self.cfg, state, data, eval_data,
            steps, total,
        )  # fmt: skip

    def init(self, hp, shared, key, seed_ids, params) -> _loop.TrainState:
        keys = jax.vmap(jax.random.fold_in, in_axes=(None, 0))(key, seed_ids)
        state = self.inits(hp, shared, keys, params)
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
