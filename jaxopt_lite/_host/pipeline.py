"""The one host pipeline of a training run, for `fit` and `sweep` alike.

An `Engine` (`fit`'s one run, or `sweep`'s batch of runs) knows how to start
its state and run one compiled chunk; this module does everything around
it: start or resume from a checkpoint, dispatch each chunk before the host
reads the one before (so the devices never wait), pace the chunks, read the
history rows, update the progress bar, call the callbacks, write
checkpoints (through a `checkpoint_store.Store`), and let Ctrl-C or a
preemption notice through between chunks, returning what was finished.
"""

from __future__ import annotations

import contextlib
import inspect
import time
import warnings
from collections.abc import Callable
from typing import Any, NamedTuple, Protocol

import jax
import numpy as np

from jaxopt_lite._host import (
    checkpoint_store,
    checkpoint_write,
    feeds,
    interrupts,
    placement,
)
from jaxopt_lite._host.plan import RunPlan
from jaxopt_lite._host.progress import Progress

PyTree = Any
CHECKPOINT_SECONDS = 60.0  # paced chunks: a checkpoint at most this often
_STREAM = "stream_at"  # checkpoint metadata: where a stream stood
_COLUMNS = "columns"  # checkpoint metadata: the history's column names
# keywords a callback's on_chunk gets when its signature takes them
_OPTIONAL = ("params", "state")


class Engine(Protocol):
    """What the pipeline needs of a run (or a batch of runs)."""

    columns: dict[str, np.dtype]  # every history column (set by ``init``)
    lead: tuple[int, ...]  # leading axes of every history column (runs)

    def init(self) -> PyTree:
        """The state before the first step (on the devices)."""
        ...

    def chunk(
        self, state: PyTree, data: PyTree, start: int, steps: int, total: int
    ) -> Any:
        """Dispatch up to ``steps`` more steps from step ``start`` (as planned
        on the host): ``(state, device rows)``."""
        ...

    def rows(self, device_rows: Any) -> dict[str, np.ndarray]:
        """A chunk's rows on the host, keyed like the history's columns."""
        ...

    def step(self, state: PyTree) -> int:
        """The steps done (the most of any run)."""
        ...

    def stopped(self, state: PyTree) -> bool:
        """Whether early stopping ended the run (every run)."""
        ...

    def reported(self, rows: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """A chunk's rows as the callbacks see them."""
        ...

    def summary(self, rows: dict[str, np.ndarray]) -> dict[str, float]:
        """The latest loss and evaluation metrics, for the progress report."""
        ...

    def snapshot(self, state: PyTree) -> tuple[PyTree, PyTree]:
        """The parameters and model state the callbacks may read."""
        ...

    def place(self, state: PyTree) -> PyTree:
        """``state`` on the run's mesh, laid out as its programs expect."""
        ...


class Outcome(NamedTuple):
    """What a pipeline run finished with."""

    state: PyTree  # the state after the last chunk read
    history: dict[str, np.ndarray]
    interrupted: bool
    error: str | None  # a callback's error, as text
    save_error: str | None  # the last failed checkpoint save, as text
    seconds: float  # wall-clock time of the run (compilation included)
    preempted: bool = False  # a preemption notice stopped it (saved first)


def _check_resumable(plan: RunPlan, columns: list[str], saved: dict) -> None:
    where = f"the checkpoint in {plan.checkpoint_dir}"
    if saved.get(_COLUMNS) not in (None, columns):
        raise ValueError(
            f"{where} records the history columns {saved[_COLUMNS]}, but this "
            f"call records {columns}: eval_fn or has_aux (or the aux metrics) "
            "changed. Resume with the same eval_fn and loss_fn outputs, or start "
            "a new checkpoint_dir."
        )
    saved.setdefault("stream", False)  # checkpoints from before streams
    for name, value in plan.settings.items():
        if saved.get(name) != value:
            raise ValueError(
                f"{where} was written with {name}={saved.get(name)!r}, but this "
                f"call has {name}={value!r}; resume with the same settings."
            )


def initial(plan: RunPlan, engine: Engine) -> PyTree:
    """The state before the first step, placed on the devices (a checkpoint
    is restored with this placement)."""
    with interrupts.deferred():  # never inside the compiler
        state = engine.init()
    if plan.mesh is not None:  # replicated, or sharded as the engine's layout
        state = engine.place(state)
    return state


def start(
    plan: RunPlan, engine: Engine, state: PyTree, store: checkpoint_store.Store | None
) -> tuple[PyTree, list[dict]]:
    """The initial (or resumed) state and the history rows so far."""
    rows: list[dict[str, np.ndarray]] = []
    if plan.resume and store is not None:
        _check_resumable(plan, list(engine.columns), store.metadata())
        most = (*engine.lead, plan.total_steps + 1)  # rows a run can have
        bound = {k: jax.ShapeDtypeStruct(most, d) for k, d in engine.columns.items()}
        saved = store.restore(state, bound)
        state = saved.tree
        reached = engine.step(state)
        if reached > plan.total_steps:
            raise ValueError(
                f"the checkpoint in {plan.checkpoint_dir} is at step {reached}, "
                f"beyond the {plan.total_steps} steps of this call; ask for at "
                f"least {reached} steps (steps= or epochs=) to resume it."
            )
        rows = [dict(saved.arrays)] if saved.arrays else []
        if plan.stream is not None:
            feeds.resume_stream(
                plan.stream.stream, saved.metadata.get(_STREAM), reached, plan.resume
            )
    return state, rows


def history(engine: Engine, rows: list[dict]) -> dict[str, np.ndarray]:
    """The rows so far as one array per column (rows along the last axis)."""
    return {
        k: np.concatenate([r[k] for r in rows], axis=-1)
        if rows
        else np.zeros((*engine.lead, 0), dtype)
        for k, dtype in engine.columns.items()
    }


def _accepts(method: Any, name: str) -> bool:
    """Whether ``method`` takes the keyword ``name`` (or any keyword)."""
    try:
        parameters = inspect.signature(method).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.name == name or p.kind == p.VAR_KEYWORD for p in parameters)


def _call(callbacks, method: str, *args, **kwargs) -> str | None:
    """Call ``method`` on every callback (the keywords it does not take
    left out); the first error as text (warned)."""
    optional = {k: kwargs.pop(k) for k in _OPTIONAL if k in kwargs}
    for c in callbacks:
        bound = getattr(c, method)
        given = {k: v for k, v in optional.items() if _accepts(bound, k)}
        try:
            bound(*args, **kwargs, **given)
        except Exception as e:  # a callback's bug must not lose the run
            error = f"{type(c).__name__}.{method} raised {type(e).__name__}: {e}"
            warnings.warn(
                f"the run stopped: {error}. The result holds the work finished so "
                "far (its error field names the error).",
                RuntimeWarning,
                stacklevel=4,
            )
            return error
    return None


def _feed(plan: RunPlan) -> feeds.ArrayFeed | feeds.StreamFeed:
    if plan.stream is not None:
        return feeds.StreamFeed(plan.stream, plan.steps_given)
    data = plan.data
    if plan.mesh is not None:
        data = placement.place_data(plan.mesh, data)
    cfg = plan.cfg
    return feeds.ArrayFeed(
        data, plan.total_steps, cfg.unroll or cfg.log_every, cfg.chunk_size,
        plan.fixed_chunks,
    )  # fmt: skip


class _Reported(NamedTuple):
    """The last chunk every callback saw: what a checkpoint may hold."""

    state: PyTree
    rows: int  # how many of the run's row groups
    stream_at: Any  # where a stream stood


def _save(
    plan: RunPlan,
    engine: Engine,
    store: checkpoint_store.Store,
    at: _Reported | None,
    rows: list,
) -> str | None:
    """Save ``at`` (``None``: wait for the save in progress to end; the
    Ctrl-C of this moment waits too); a failed save is warned about and
    returned as text, never raised: the run and its result go on without it."""
    metadata = {**plan.settings, _COLUMNS: list(engine.columns)}
    if at is not None and at.stream_at is not None:
        metadata[_STREAM] = at.stream_at
    try:
        with interrupts.deferred():
            if at is None:
                store.wait()
            else:
                arrays = history(engine, rows[: at.rows])
                store.save(engine.step(at.state), at.state, arrays, metadata)
    except OSError as error:
        step = "" if at is None else f" at step {engine.step(at.state)}"
        text = f"saving the checkpoint{step} failed: {error}"
        warnings.warn(
            f"{text}. The run goes on and its result holds the trained "
            "parameters (save_error names the failure); the last checkpoint "
            "that was written is unchanged.",
            RuntimeWarning,
            stacklevel=3,
        )
        return text
    return None


def run(
    plan: RunPlan, engine: Engine, finish: Callable[[Outcome], Any], desc: str
) -> Any:
    """Start (or resume) and drive a run; with ``checkpoint_dir``, holding its
    writer lock throughout (on process 0, the one that saves), so a second
    run on the same folder is refused instead of destroying this one's files."""
    lock: Any = contextlib.nullcontext()
    if plan.checkpoint_dir is not None and jax.process_index() == 0:
        lock = checkpoint_write.WriterLock(plan.checkpoint_dir)
    with lock:
        if plan.checkpoint_dir is not None:  # again, now that nobody else writes
            checkpoint_store.check_fresh(
                plan.checkpoint_dir, resume=bool(plan.resume), overwrite=plan.overwrite
            )
        state = initial(plan, engine)
        with checkpoint_store.opened(plan, state) as store:
            state, rows = start(plan, engine, state, store)
            return drive(plan, engine, state, rows, finish, desc, store)


def drive(
    plan: RunPlan,
    engine: Engine,
    state: PyTree,
    rows: list[dict],
    finish: Callable[[Outcome], Any],
    desc: str,
    store: checkpoint_store.Store | None = None,
) -> Any:
    """Run ``engine`` from ``state`` to the end (or early stopping, Ctrl-C, a
    preemption, a callback's error) and return ``finish(outcome)``, which the
    callbacks' ``on_end`` then receives; checkpoints go to ``store``."""
    began = time.perf_counter()
    feed = _feed(plan)
    mode = plan.progress if jax.process_index() == 0 else "off"
    bar = Progress(mode, feed.total, engine.step(state), desc)
    finished, first = state, engine.step(state)
    reported = saved = _Reported(state, len(rows), feed.state(first))
    planned, stopped = first, engine.stopped(state)
    interrupted, error, save_error, pending = False, None, None, None
    preemption, preempted = interrupts.Preemption(), False
    last_ready = last_save = time.perf_counter()
    try:
        while True:
            launched, waited = None, False
            if stopped:
                pass
            elif pending is None or feed.ahead:
                open_row = planned % plan.cfg.log_every > 0
                work = feed.next(planned, open_row)
                if work is not None:
                    data, n, total = work
                    with interrupts.deferred():  # never inside the compiler
                        out = engine.chunk(state, data, planned, n, total)
                    state, planned = out[0], min(planned + n, total)
                    launched = (out, time.perf_counter(), feed.state(planned))
            else:  # measure this chunk before sizing the next one
                waited = True
            if pending is not None:
                (out_state, out_rows), dispatched, at = pending
                new = engine.rows(out_rows)
                now = time.perf_counter()
                elapsed, last_ready = now - max(dispatched, last_ready), now
                before, finished = engine.step(finished), out_state
                rows.append(new)
                step, stopped = engine.step(finished), engine.stopped(finished)
                feed.observe(step - before, elapsed)
                bar.update(step - before, engine.summary(new))
                params, model_state = engine.snapshot(finished)
                with interrupts.deferred():  # every logger sees it, or none
                    error = _call(
                        plan.callbacks, "on_chunk", engine.reported(new),
                        step=step, elapsed=elapsed, params=params, state=model_state,
                    )  # fmt: skip
                    if error is None:  # (a callback's own KeyboardInterrupt: not)
                        reported = _Reported(finished, len(rows), at)
                if error is not None:
                    break
                preempted = preemption.reached()  # on every process, as one
                due = plan.fixed_chunks or step >= feed.total or stopped or preempted
                timed = now - last_save >= CHECKPOINT_SECONDS  # agreed by all
                if store is not None and (due or store.due(timed)):
                    save_error = (
                        _save(plan, engine, store, reported, rows) or save_error
                    )
                    saved, last_save = reported, time.perf_counter()
                if stopped or preempted:
                    break
            if launched is None and not waited:
                break
            pending = launched
    except KeyboardInterrupt:
        interrupted = True
    except BaseException:  # e.g. a bad batch of a stream: keep what was done
        if store is not None and reported.rows > saved.rows:
            _save(plan, engine, store, reported, rows)
        raise
    finally:
        feed.close()
    if store is not None:
        try:
            if reported.rows > saved.rows:
                save_error = _save(plan, engine, store, reported, rows) or save_error
            save_error = _save(plan, engine, store, None, rows) or save_error
        except KeyboardInterrupt:  # held until the save ended: it is on disk
            interrupted = True
    resume = ""
    if plan.checkpoint_dir is not None:
        resume = (
            f"continue it with resume=True and checkpoint_dir={plan.checkpoint_dir!r}"
        )
    bar.close(interrupted or preempted, resume, "preempted" if preempted else "")
    result = finish(
        Outcome(
            finished, history(engine, rows), interrupted or preempted, error,
            save_error, time.perf_counter() - began, preempted,
        )
    )  # fmt: skip
    _call(plan.callbacks, "on_end", result)
    for c in plan.callbacks:
        close = getattr(c, "close", None)
        if callable(close):
            close()
    return result
