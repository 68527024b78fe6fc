"""`fit`'s engine: one run's compiled programs, driven by the host pipeline.

The two programs (initialize a run; run one chunk of it) are module-level
``jax.jit`` functions whose static argument is a `Program`: the structure of
the loss, evaluation and optimizer (their numbers and arrays are inputs,
`programs.partition`) and the loop's static settings. ``jax.jit``'s cache
is the program cache: a new learning rate or new data of the same shapes
reuses the compiled loop.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import numpy as np
import optax

from jaxopt_lite._host import placement, programs, sharding
from jaxopt_lite._host.plan import RunPlan, columns
from jaxopt_lite._loop import guard, train, unrolled
from jaxopt_lite._transforms.scaling import current_learning_rate

PyTree = Any


class Program(NamedTuple):
    """The static part of `fit`'s programs."""

    fns: programs.Static  # (Loss, Eval | None), array leaves as inputs
    optimizer: programs.Static  # the optimizer's recipe tree, numbers as inputs
    cfg: train.LoopConfig
    layout: sharding.Layout | None = None  # the state's, when sharded


def _parts(program: Program, fn_inputs: list, opt_inputs: list):
    loss, eval_ = programs.combine(program.fns, fn_inputs)
    optimizer = programs.join_optimizer(program.optimizer, opt_inputs)
    return loss, eval_, optax.with_extra_args_support(optimizer)


@functools.partial(jax.jit, static_argnums=0)
def fit_init(program, fn_inputs, opt_inputs, params, model_state, key):
    optimizer = _parts(program, fn_inputs, opt_inputs)[2]
    state = train.init_train_state(params, model_state, optimizer, key, program.cfg)
    return state if program.layout is None else program.layout.constrain(state)


@functools.partial(jax.jit, static_argnums=0)
def fit_chunk(program, fn_inputs, opt_inputs, state, data, eval_data, steps, total):
    loss, eval_, optimizer = _parts(program, fn_inputs, opt_inputs)
    cfg = program.cfg
    out = guard.run_chunk(
        loss, optimizer, cfg, state, data, steps, total, eval_, eval_data
    )
    return _placed(program, out)


def _placed(program: Program, out: tuple) -> tuple:
    """A chunk's ``(state, rows)`` where the run keeps them: the state
    sharded as its layout says (else whole on every device of the mesh), the
    rows whole on every device, so every process can read them."""
    if program.layout is not None:
        state, rows = out
        everywhere = placement.replicated(program.layout.shardings[0].mesh)
        return program.layout.constrain(state), jax.lax.with_sharding_constraint(
            rows, everywhere
        )
    if program.cfg.batch_sharding is None:
        return out
    return jax.lax.with_sharding_constraint(
        out, placement.replicated(program.cfg.batch_sharding.mesh)
    )


@functools.partial(jax.jit, static_argnums=(0, 8))
def fit_unrolled(program, fn_inputs, opt_inputs, state, data, eval_data, steps, total,
                 boundary):  # fmt: skip
    loss, eval_, optimizer = _parts(program, fn_inputs, opt_inputs)
    cfg = program.cfg
    out = unrolled.run_unrolled(
        loss, optimizer, cfg, state, data, steps, total, eval_, eval_data,
        boundary=boundary,
    )  # fmt: skip
    return _placed(program, out)


def host_rows(device_rows: Any, columns: dict) -> dict[str, np.ndarray]:
    """The rows that ran, of one chunk's `ChunkRows` or of a list of them
    (the calls of the unrolled form), keyed and ordered like ``columns``."""
    parts = device_rows if isinstance(device_rows, list) else [device_rows]
    out: dict[str, list] = {k: [] for k in columns}
    for host in jax.device_get(parts):
        for group, ran in ((host.train, host.train_ran), (host.evals, host.evals_ran)):
            for k, v in group.items():
                out[k].append(np.asarray(v)[ran])
    return {
        k: np.concatenate(v) if v else np.zeros(0, dtype)
        for (k, v), dtype in zip(out.items(), columns.values(), strict=True)
    }


class FitEngine:
    """One training run, as the pipeline drives it (`pipeline.Engine`)."""

    lead: tuple[int, ...] = ()

    def __init__(self, plan: RunPlan, optimizer: optax.GradientTransformation):
        self.plan = plan
        fns, fn_inputs = programs.partition(
            (plan.loss, plan.eval), programs.array_inputs
        )
        structure, opt_inputs = programs.split_optimizer(optimizer)
        self.program = Program(fns, structure, unrolled.compiled(plan.cfg))
        self.eval_data, self.params = plan.eval_data, plan.params
        if plan.mesh is not None:  # with the run's other arrays, on its mesh
            copy = placement.replicated(plan.mesh)
            fn_inputs, opt_inputs = placement.put((fn_inputs, opt_inputs), copy)
            self.eval_data = placement.put(self.eval_data, copy)
        self.fn_inputs, self.opt_inputs = fn_inputs, opt_inputs
        if plan.sharding is not None:  # the state's layout: part of the programs
            self.params = sharding.param_layout(plan.sharding).place(plan.params)
            abstract = jax.eval_shape(fit_init, self.program, *self._init_args())
            self.program = self.program._replace(
                layout=sharding.layout(plan.sharding, abstract)
            )
        self.columns: dict[str, np.dtype] = {}

    def _init_args(self) -> tuple:
        plan = self.plan
        return (
            self.fn_inputs,
            self.opt_inputs,
            self.params,
            plan.model_state,
            plan.key,
        )

    def init(self) -> train.TrainState:
        state = fit_init(self.program, *self._init_args())
        has_rate = current_learning_rate(state.opt_state) is not None
        self.columns = columns(self.plan, has_rate)
        return state

    def place(self, state: train.TrainState) -> train.TrainState:
        if self.program.layout is not None:
            return self.program.layout.place(state)
        assert self.plan.mesh is not None  # called only with a mesh
        return placement.put(state, placement.replicated(self.plan.mesh))

    def chunk(self, state, data, start: int, steps: int, total: int):
        args = (self.program, self.fn_inputs, self.opt_inputs)
        if not self.program.cfg.unroll:
            return fit_chunk(
                *args, state, data, self.eval_data, np.int32(steps), np.int32(total)
            )
        calls = []
        for n, boundary in unrolled.pieces(self.program.cfg, start, steps):
            state, rows = fit_unrolled(
                *args, state, data, self.eval_data, np.int32(n), np.int32(total),
                boundary,
            )  # fmt: skip
            calls.append(rows)
        return state, calls

    def rows(self, device_rows) -> dict[str, np.ndarray]:
        return host_rows(device_rows, self.columns)

    def step(self, state: train.TrainState) -> int:
        return int(state.step)

    def stopped(self, state: train.TrainState) -> bool:
        return state.stop is not None and bool(state.stop.stopped)

    def reported(self, rows: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return rows

    def summary(self, rows: dict[str, np.ndarray]) -> dict[str, float]:
        names = ["loss", *self.plan.eval_names]
        return {
            k.removeprefix("eval_"): float(rows[k][-1]) for k in names if len(rows[k])
        }

    def snapshot(self, state: train.TrainState) -> tuple[PyTree, PyTree]:
        return state.params, state.model_state
