"""Running a `sweep`: its runs in blocks, advanced together in paced rounds.

A round advances every block that still has a running run by the same number
of steps: one compiled chunk per block, dispatched back to back. Rounds are
paced as `fit` paces its chunks: the first (one history row) is measured
alone, then every round is sized from the measured rate to take about
`pacing.TARGET_SECONDS`, and dispatched before the host reads the one
before. The compiled chunk takes its step count as an argument, so no size
recompiles, its row buffers are fixed, and the host holds only the rows that
ran. The sweep ends when every run has
ended (its steps done, or early stopping); Ctrl-C ends it at once, with the
rounds read until then.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxopt_lite._drivers.pacing import paced

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


def join(grid: list[list[Any]], concatenate: Callable = jnp.concatenate) -> Any:
    """Trees of a grid of blocks ``[seed block][config block]`` (leading axes
    ``[configs, seeds]``) joined into one tree."""

    def cat(axis: int) -> Callable:
        return lambda *xs: xs[0] if len(xs) == 1 else concatenate(xs, axis=axis)

    rows = [jax.tree.map(cat(0), *row) for row in grid]
    return jax.tree.map(cat(1), *rows)


class Finished(NamedTuple):
    """What the host has read: each block's state after the last round read,
    and the rounds' rows (host `ChunkRows`, joined over the blocks, each
    trimmed to the rows written)."""

    states: list[list[Any]]
    rounds: list[Any]


class Outcome(NamedTuple):
    finished: Finished
    spec: Any  # one block's rows, as jax.ShapeDtypeStruct (names and dtypes)
    interrupted: bool


def _round_rows(outs: list[list[Any]]) -> Any:
    """The rows of a round on the host, joined over its blocks (zeros, not
    written, for blocks that did not run) and trimmed to the rows written."""
    host = [[None if o is None else jax.device_get(o[1]) for o in row] for row in outs]
    like = next(r for row in host for r in row if r is not None)
    blank = jax.tree.map(np.zeros_like, like)
    grid = [[blank if r is None else r for r in row] for row in host]
    rows = join(grid, np.concatenate)

    def head(columns: dict[str, np.ndarray], ran: np.ndarray):
        # copies: views would keep the whole buffers alive
        size = int(ran.sum(-1).max())
        kept = {k: v[..., :size].copy() for k, v in columns.items()}
        return kept, ran[..., :size].copy()

    train, train_ran = head(rows.train, rows.train_ran)
    evals, evals_ran = head(rows.evals, rows.evals_ran)
    return type(rows)(train, train_ran, evals, evals_ran)


def _running(state: Any) -> bool:
    return state.stop is None or not bool(np.all(jax.device_get(state.stop.stopped)))


def _after(states: list[list[Any]], outs: list[list[Any]]) -> list[list[Any]]:
    """Each block's state after a round (unchanged for blocks it skipped)."""
    return [
        [s if o is None else o[0] for s, o in zip(*row, strict=True)]
        for row in zip(states, outs, strict=True)
    ]


def _spec(outs: list[list[Any]]) -> Any:
    first = next(o for row in outs for o in row if o is not None)
    return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), first[1])


def run_rounds(
    grid: list[list[Any]],
    start: Callable[[Any], Any],
    advance: Callable[[Any, Any, np.int32, np.int32], tuple[Any, Any]],
    total: int,
    unit: int,
    cap: int,
) -> Outcome:
    """Run the blocks of ``grid`` (``[seed block][config block]``, each a
    value for ``start`` and ``advance``) for ``total`` steps: ``start(block)``
    is a block's first state, ``advance(block, state, steps, total)`` its next
    chunk ``(state, rows)``. ``unit`` is the steps of a history row, ``cap``
    the most steps of one chunk. Ctrl-C returns what was read, flagged
    ``interrupted`` (it propagates when no chunk had been dispatched)."""
    finished, spec, pending = Finished([], []), None, None
    planned, size, last_ready = 0, min(unit, cap), time.perf_counter()
    measured = False  # dispatch a round before reading the last: once measured
    try:
        states = [[start(b) for b in row] for row in grid]
        finished = Finished(states, [])
        active = [[True for _ in row] for row in grid]
        while True:
            launched = None
            more = planned < total and any(map(any, active))
            if more and (pending is None or measured):
                n = min(size, total - planned)
                steps, end = np.int32(n), np.int32(total)
                outs = [
                    [
                        advance(b, s, steps, end) if a else None
                        for b, s, a in zip(*row, strict=True)
                    ]
                    for row in zip(grid, states, active, strict=True)
                ]
                states, planned = _after(states, outs), planned + n
                spec = _spec(outs) if spec is None else spec
                launched = (outs, n, time.perf_counter())
            if pending is not None:
                outs, n, dispatched = pending
                rows = _round_rows(outs)
                now = time.perf_counter()
                elapsed, last_ready = now - max(dispatched, last_ready), now
                done = _after(finished.states, outs)
                finished = Finished(done, [*finished.rounds, rows])  # one store
                size, measured = paced(n, elapsed, unit, cap), True
                active = [[_running(s) for s in row] for row in done]
            elif launched is None:
                break
            pending = launched
    except KeyboardInterrupt:
        if spec is None:
            raise  # nothing ran yet (Ctrl-C while compiling)
        return Outcome(finished, spec, True)
    return Outcome(finished, spec, False)
