"""`sweep`'s engine: a batch of runs in blocks, driven by the host pipeline.

The runs are laid out in blocks of ``[config block, seed block]`` (at most
``max_parallel`` runs vmapped together, the last block padded by repeating
a run). One pipeline chunk is a *round*: every block that still has a
running run advances by the same number of steps, one compiled chunk per
block, dispatched back to back. A round's rows come back joined over the
blocks with leading axes ``[configs, seeds]``; each run's rows that ran are
moved to the front (runs stopped early write fewer), NaN (or -1) after them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxopt_lite._host import placement, programs, sharding
from jaxopt_lite._host.options import infer_mode
from jaxopt_lite._host.plan import RunPlan, columns
from jaxopt_lite._loop import unrolled
from jaxopt_lite._loop.history import ChunkRows
from jaxopt_lite._sweep import program
from jaxopt_lite._transforms.scaling import current_learning_rate

PyTree = Any

# On CPU, vmapped runs are fastest while their stacked parameters stay in cache;
# beyond that, batched matrix products with per-run weights lose to one run at
# a time (measured on an MLP: 64 runs of 0.15 MB each ran 2x slower as one
# block than as 64 sequential runs, and faster than them in blocks of 8-16).
_CPU_BLOCK_BYTES = 2 * 2**20


def default_parallel(abstract: PyTree, runs: int, mesh: Any) -> int:
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


def even(total: int, cap: int) -> int:
    """The smallest block size that splits ``total`` into as few blocks of at
    most ``cap`` as possible (so that the last block needs little padding)."""
    cap = max(1, min(cap, total))
    return math.ceil(total / math.ceil(total / cap))


def blocks(total: int, size: int) -> list[np.ndarray]:
    """``range(total)`` in blocks of ``size``, the last padded by repeating
    its last index."""
    count = math.ceil(total / size)
    padded = np.minimum(np.arange(count * size), total - 1)
    return np.split(padded, count)


def join(grid: list[list[Any]], concatenate: Any = jnp.concatenate) -> Any:
    """Trees of a grid of blocks ``[seed block][config block]`` (leading axes
    ``[configs, seeds]``) joined into one tree."""

    def cat(axis: int) -> Any:
        return lambda *xs: xs[0] if len(xs) == 1 else concatenate(xs, axis=axis)

    rows = [jax.tree.map(cat(0), *row) for row in grid]
    return jax.tree.map(cat(1), *rows)


def _fill(dtype: np.dtype) -> Any:
    return np.nan if np.issubdtype(dtype, np.floating) else -1


def compact(columns: Mapping[str, Any], ran: Any) -> dict[str, np.ndarray]:
    """Each run's rows that ran moved to the front, in order, NaN (or -1)
    after them, trimmed to the longest run."""
    size = int(ran.sum(-1).max()) if ran.size else 0
    # Row i of a run goes to its position among the rows that ran; the others
    # to a spare last slot, dropped.
    at = np.where(ran, np.cumsum(ran, -1) - 1, size)
    out = {}
    for name, values in columns.items():
        moved = np.full(
            (*values.shape[:-1], size + 1), _fill(values.dtype), values.dtype
        )
        np.put_along_axis(moved, at, values, -1)
        out[name] = moved[..., :size]
    return out


def _merged(rows: ChunkRows | list[ChunkRows]) -> ChunkRows:
    """The rows of the calls of the unrolled form as one `ChunkRows` (rows
    along the last axis; calls that did not evaluate have no eval rows)."""
    if not isinstance(rows, list):
        return rows

    def cat(parts: list[dict], masks: list[Any]) -> tuple[dict, Any]:
        kept = [(p, m) for p, m in zip(parts, masks, strict=True) if p]
        if not kept:
            return {}, np.zeros((*masks[0].shape[:-1], 0), bool)
        columns = {k: np.concatenate([p[k] for p, _ in kept], -1) for k in kept[0][0]}
        return columns, np.concatenate([m for _, m in kept], -1)

    train, train_ran = cat([r.train for r in rows], [r.train_ran for r in rows])
    evals, evals_ran = cat([r.evals for r in rows], [r.evals_ran for r in rows])
    return ChunkRows(train, train_ran, evals, evals_ran)


class SweepEngine:
    """A sweep's runs, as the pipeline drives them (`pipeline.Engine`)."""

    def __init__(
        self,
        plan: RunPlan,
        fns: tuple,
        how: tuple,
        batched: Any,
        shared: list,
        layout: tuple[int, int, int, int],
    ):
        self.plan = plan
        num_configs, seeds, config_block, seed_block = layout
        self.lead = (num_configs, seeds)
        spmd_axis = (
            placement.RUNS if placement.run_sharding(plan.mesh) is not None else None
        )
        static, self.fn_inputs = programs.partition(fns, programs.array_inputs)
        cfg = unrolled.compiled(plan.cfg)
        self.program = program.Program(static, how, cfg, spmd_axis)
        self.shared, self.eval_data = shared, plan.eval_data
        self.params = plan.params if fns[2] is None else None
        self.model_state, self.key = plan.model_state, plan.key
        key_at = runs_at = None
        if plan.mesh is not None:
            key_at = placement.replicated(plan.mesh)
            runs_at = placement.run_sharding(plan.mesh) or key_at
            self.params, self.model_state, self.key, self.eval_data = jax.device_put(
                (self.params, self.model_state, self.key, self.eval_data), key_at
            )
        self.grid = []  # [seed block][config block] of (hyper-parameters, seeds)
        for seed_ids in blocks(seeds, seed_block):
            row = []
            for config_ids in blocks(num_configs, config_block):
                hp, ids = (
                    batched(np.asarray(config_ids)),
                    np.asarray(seed_ids, np.int32),
                )
                if plan.mesh is not None:
                    hp, ids = jax.device_put(hp, runs_at), jax.device_put(ids, key_at)
                row.append((hp, ids))
            self.grid.append(row)
        self.active = [[True for _ in row] for row in self.grid]
        self.columns: dict[str, np.dtype] = {}
        if plan.sharding is not None:  # a block's layout: part of the programs
            if self.params is not None:
                self.params = sharding.param_layout(plan.sharding).place(self.params)
            abstract = jax.eval_shape(self._init_block, *self.grid[0][0])
            self.program = self.program._replace(
                layout=sharding.layout(
                    plan.sharding, abstract, lead=2, prefix=(spmd_axis, None)
                )
            )

    def _init_block(self, hp, ids):
        return program.sweep_init(
            self.program, self.fn_inputs, hp, self.shared, self.key, ids,
            self.params, self.model_state,
        )  # fmt: skip

    def _chunk_block(self, hp, state, data, start, steps, end):
        """One block's chunk: one program, or the calls of the unrolled form
        (their rows a list)."""
        args = (self.program, self.fn_inputs, hp, self.shared)
        if not self.program.cfg.unroll:
            return program.sweep_chunk(
                *args, state, data, self.eval_data, np.int32(steps), end
            )
        calls = []
        for n, boundary in unrolled.pieces(self.program.cfg, start, steps):
            state, rows = program.sweep_unrolled(
                *args, state, data, self.eval_data, np.int32(n), end, boundary
            )
            calls.append(rows)
        return state, calls

    def init(self) -> list[list[Any]]:
        states = [[self._init_block(hp, ids) for hp, ids in row] for row in self.grid]
        rate = current_learning_rate(states[0][0].opt_state)
        self.columns = columns(self.plan, rate is not None)
        return states

    def place(self, state: list[list[Any]]) -> list[list[Any]]:
        layout = self.program.layout
        assert self.plan.mesh is not None  # called only with a mesh
        if layout is None:
            return placement.put(state, placement.replicated(self.plan.mesh))
        return [[layout.place(s) for s in row] for row in state]

    def chunk(self, state, data, start: int, steps: int, total: int):
        end = np.int32(total)
        outs = [
            [
                self._chunk_block(hp, s, data, start, steps, end) if a else None
                for (hp, _), s, a in zip(*row, strict=True)
            ]
            for row in zip(self.grid, state, self.active, strict=True)
        ]
        after = [
            [s if o is None else o[0] for s, o in zip(*row, strict=True)]
            for row in zip(state, outs, strict=True)
        ]
        return after, [[None if o is None else o[1] for o in row] for row in outs]

    def rows(self, device_rows: list[list[Any]]) -> dict[str, np.ndarray]:
        host = [
            [None if r is None else _merged(jax.device_get(r)) for r in row]
            for row in device_rows
        ]
        like = next(r for row in host for r in row if r is not None)
        blank = jax.tree.map(np.zeros_like, like)
        rows: ChunkRows = join(
            [[blank if r is None else r for r in row] for row in host], np.concatenate
        )
        trim = (slice(self.lead[0]), slice(self.lead[1]))
        out = compact(rows.train, rows.train_ran)
        out.update(compact(rows.evals, rows.evals_ran))
        none = np.zeros((*self.lead, 0))  # no call of the round evaluated
        return {
            k: np.asarray(out.get(k, none), dtype)[trim]
            for k, dtype in self.columns.items()
        }

    def step(self, state) -> int:
        return max(int(np.max(s.step)) for row in state for s in row)

    def stopped(self, state) -> bool:
        """Whether every run stopped early; remembers which blocks still run,
        so that the next rounds skip the others."""
        self.active = [
            [
                s.stop is None or not bool(np.all(jax.device_get(s.stop.stopped)))
                for s in row
            ]
            for row in state
        ]
        return not any(map(any, self.active))

    def summary(self, rows: dict[str, np.ndarray]) -> dict[str, float]:
        """The best run's latest loss and evaluation metrics (the best in the
        direction each metric's name suggests, smaller for unknown names)."""
        out = {}
        for name in ["loss", *self.plan.eval_names]:
            values = rows[name]
            if not values.shape[-1]:
                continue
            latest = values[..., -1][np.isfinite(values[..., -1])]
            if latest.size:
                best = np.max if infer_mode(name) == "max" else np.min
                out[f"best {name.removeprefix('eval_')}"] = float(best(latest))
        return out

    def snapshot(self, state) -> tuple[PyTree, PyTree]:
        """Every run's parameters and model state, leading axes ``[configs,
        seeds]`` (the padding runs left out)."""
        joined = join([[(s.params, s.model_state) for s in row] for row in state])
        return jax.tree.map(lambda x: x[: self.lead[0], : self.lead[1]], joined)

    def reported(self, rows: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Per-run columns for the callbacks: ``"<column>/<run>"`` with runs
        numbered configuration-major (``config * seeds + seed``), and the
        shared ``step`` and ``eval_step`` (the steps of the longest run)."""
        out = {}
        for name, values in rows.items():
            flat = values.reshape(math.prod(self.lead), values.shape[-1])
            if name in ("step", "eval_step"):
                out[name] = flat.max(axis=0)
            else:
                out.update({f"{name}/{i}": v for i, v in enumerate(flat)})
        return out
