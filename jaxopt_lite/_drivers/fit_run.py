"""Running a `FitPlan`: start or resume, then drive the compiled chunks.

Between two chunks, and only there, the host reads the finished chunk's rows,
updates the progress bar, calls the callbacks, writes a checkpoint, and lets
Ctrl-C through. Chunks are sized by measured time (about a second each,
growing geometrically from one history row) unless ``chunk_size`` fixes them;
the compiled chunk takes its step count as an argument, so no size recompiles.
"""

from __future__ import annotations

import time
import warnings
from typing import Any, NamedTuple

import jax
import numpy as np

from jaxopt_lite._drivers import checkpoint as _checkpoint
from jaxopt_lite._drivers import checkpoint_format as _format
from jaxopt_lite._drivers import fit_stream as _stream
from jaxopt_lite._drivers import mesh as _mesh
from jaxopt_lite._drivers.fit_plan import FitPlan
from jaxopt_lite._drivers.pacing import paced
from jaxopt_lite._drivers.progress import Progress

PyTree = Any
CHECKPOINT_SECONDS = 60.0  # paced chunks: a checkpoint at most this often
_STREAM = "stream_at"  # checkpoint metadata: where a stream stood


class FitResult(NamedTuple):
    """What `fit` returns.

    Attributes:
        params: the trained parameters (the best ones when early stopping
            restores them).
        opt_state: the final optimizer state.
        history: NumPy arrays, one row per ``log_every`` steps (the last row
            may hold fewer steps): ``step``, ``loss`` and ``grad_norm`` (means
            over the row's finite steps), ``skipped`` (non-finite steps
            skipped),
            ``learning_rate`` (when the optimizer exposes it), aux metrics;
            and, one row per evaluation, ``eval_step`` and ``eval_<metric>``.
            Every column is present, empty when no row was finished.
        step: steps taken.
        stopped_early: early stopping ended the run.
        interrupted: Ctrl-C ended the run; everything up to the last finished
            chunk is kept.
        best_step: step of the best early-stopping check (``None`` without
            early stopping).
        state: the final model state (``None`` without ``state=``); the one
            of the best check when early stopping restores the parameters.
        skipped: steps skipped because their loss or gradient was not finite
            (0 with ``skip_nonfinite=False``, which applies them: their history
            rows then show the non-finite values).
        error: ``None``, or ``"<Callback>.<method> raised <Error>: <message>"``
            when a callback raised: the run stopped there, this result holds
            the work finished until then, and a ``RuntimeWarning`` said so.
    """

    params: PyTree
    opt_state: PyTree
    history: dict[str, np.ndarray]
    step: int
    stopped_early: bool
    interrupted: bool
    best_step: int | None
    state: PyTree = None
    skipped: int = 0
    error: str | None = None


class _ArrayFeed:
    """The chunks of a run on in-memory data (the interface of
    `fit_stream.StreamFeed`): fixed sizes, or paced by measured time. A paced
    run measures its first chunk (one history row) before sending the next,
    then sizes every chunk from the rate of the last one to take about
    `pacing.TARGET_SECONDS`; until it has measured, it does not run ``ahead``."""

    def __init__(self, plan: FitPlan, data: PyTree):
        self.data, self.total = data, plan.total_steps
        self.unit = plan.cfg.log_every
        self.cap = plan.cfg.chunk_size
        self.fixed = self.ahead = plan.fixed_chunks
        self.size = self.cap if self.fixed else min(self.unit, self.cap)

    def next(self, planned: int, open_row: bool) -> tuple[PyTree, int, int] | None:
        del open_row  # the run's length is known: its last chunk writes the row
        if planned >= self.total:
            return None
        return self.data, min(self.size, self.total - planned), self.total

    def observe(self, steps: int, elapsed: float) -> None:
        """A chunk of ``steps`` steps took ``elapsed`` seconds."""
        self.ahead = True
        if not self.fixed and steps > 0:
            self.size = paced(steps, elapsed, self.unit, self.cap)

    def state(self, step: int) -> None:
        del step

    def close(self) -> None:
        pass


def _saved_metadata(directory: Any) -> dict[str, Any]:
    path = _format.checkpoint_dir(directory) / _format.FILENAME
    entries = _format.read(path)
    return _format.read_json(entries, _format.METADATA, path)


def _check_resumable(plan: FitPlan) -> None:
    saved = _saved_metadata(plan.checkpoint_dir)
    where = f"the checkpoint in {plan.checkpoint_dir}"
    if saved.get("columns") not in (None, plan.metadata["columns"]):
        raise ValueError(
            f"{where} records the history columns {saved['columns']}, but this "
            f"call records {plan.metadata['columns']}: eval_fn or has_aux (or the "
            "aux metrics) changed. Resume with the same eval_fn and loss_fn "
            "outputs, or start a new checkpoint_dir."
        )
    saved.setdefault("stream", False)  # checkpoints from before streams
    for name, value in plan.metadata.items():
        if saved.get(name) != value:
            raise ValueError(
                f"{where} was written with {name}={saved.get(name)!r}, but this "
                f"call has {name}={value!r}; resume with the same settings."
            )


def start(plan: FitPlan, init) -> tuple[PyTree, list[dict[str, np.ndarray]]]:
    """The initial (or resumed) loop state and the history rows so far."""
    state = init(plan.params, plan.model_state, plan.key)
    rows: list[dict[str, np.ndarray]] = []
    directory = plan.checkpoint_dir
    if plan.resume and directory is not None:
        _check_resumable(plan)
        saved = _checkpoint.load_checkpoint(directory, state)
        state = saved.tree
        reached = int(state.step)
        if reached > plan.total_steps:
            raise ValueError(
                f"the checkpoint in {plan.checkpoint_dir} is at step {reached}, "
                f"beyond the {plan.total_steps} steps of this call; ask for at "
                f"least {reached} steps (steps= or epochs=) to resume it."
            )
        rows = [dict(saved.arrays)] if saved.arrays else []
        if plan.stream is not None:
            _stream.resume_stream(
                plan.stream.stream, saved.metadata.get(_STREAM), reached, plan.resume
            )
    if plan.mesh is not None:
        state = _mesh.place(plan.mesh, None, None, state)[2]
    return state, rows


def _history(plan: FitPlan, rows: list[dict[str, np.ndarray]]) -> dict:
    return {
        k: np.concatenate([r[k] for r in rows]) if rows else np.zeros(0, dtype)
        for k, dtype in plan.columns.items()
    }


def _host_rows(plan: FitPlan, chunk_rows) -> dict[str, np.ndarray]:
    host = jax.device_get(chunk_rows)
    out = {k: np.asarray(v)[host.train_ran] for k, v in host.train.items()}
    out.update({k: np.asarray(v)[host.evals_ran] for k, v in host.evals.items()})
    return {k: out[k] for k in plan.columns}


def _stopped(state) -> bool:
    return state.stop is not None and bool(state.stop.stopped)


def _call(callbacks, method: str, *args, **kwargs) -> str | None:
    """Call ``method`` on every callback; the first error as text (warned)."""
    for c in callbacks:
        try:
            getattr(c, method)(*args, **kwargs)
        except Exception as e:  # a callback's bug must not lose the run
            error = f"{type(c).__name__}.{method} raised {type(e).__name__}: {e}"
            warnings.warn(
                f"fit stopped: {error}. The result holds the work finished so "
                "far (FitResult.error names the error).",
                RuntimeWarning,
                stacklevel=4,
            )
            return error
    return None


def _feed(plan: FitPlan) -> _ArrayFeed | _stream.StreamFeed:
    if plan.stream is not None:
        return _stream.StreamFeed(plan.stream, plan.steps_given)
    data = plan.data
    if plan.mesh is not None:
        data = _mesh.place(plan.mesh, data, None, None)[0]
    return _ArrayFeed(plan, data)


def drive(plan: FitPlan, chunk, state, rows) -> FitResult:
    """Dispatch chunks one ahead of the host, read each finished one, and stop
    on completion, early stopping, Ctrl-C or a callback's error."""
    eval_data = plan.eval_data
    if plan.mesh is not None:
        eval_data = _mesh.place(plan.mesh, None, eval_data, None)[1]
    feed = _feed(plan)
    shown = plan.show_progress and jax.process_index() == 0
    bar = Progress(shown, feed.total, int(state.step), "fit")
    finished, saved_step = state, int(state.step)
    planned, stopped = int(state.step), _stopped(state)
    interrupted, error, pending, at = False, None, None, feed.state(planned)
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
                    out = chunk(state, data, eval_data, np.int32(n), np.int32(total))
                    state, planned = out[0], min(planned + n, total)
                    launched = (out, time.perf_counter(), feed.state(planned))
            else:  # measure this chunk before sizing the next one
                waited = True
            if pending is not None:
                (out_state, out_rows), dispatched, at = pending
                new = _host_rows(plan, out_rows)
                now = time.perf_counter()
                elapsed, last_ready = now - max(dispatched, last_ready), now
                before, finished = int(finished.step), out_state
                rows.append(new)
                step, stopped = int(finished.step), _stopped(finished)
                feed.observe(step - before, elapsed)
                if len(new["loss"]):
                    bar.update(step - before, {"loss": float(new["loss"][-1])})
                error = _call(
                    plan.callbacks, "on_chunk", new, step=step, elapsed=elapsed
                )
                if error is not None:
                    break
                due = plan.fixed_chunks or now - last_save >= CHECKPOINT_SECONDS
                due = due or step >= feed.total or stopped
                if plan.checkpoint_dir is not None and due:
                    _save(plan, finished, rows, at)
                    saved_step, last_save = step, time.perf_counter()
                if stopped:
                    break
            if launched is None and not waited:
                break
            pending = launched
    except KeyboardInterrupt:
        interrupted = True
    except BaseException:  # e.g. a bad batch of a stream: keep what was done
        if plan.checkpoint_dir is not None and int(finished.step) > saved_step:
            _save(plan, finished, rows, at)
        raise
    finally:
        bar.close()
        feed.close()
    if plan.checkpoint_dir is not None and int(finished.step) > saved_step:
        _save(plan, finished, rows, at)  # what the result holds can be resumed
    result = _result(plan, finished, rows, interrupted, error)
    _call(plan.callbacks, "on_end", result)
    for c in plan.callbacks:
        close = getattr(c, "close", None)
        if callable(close):
            close()
    return result


def _save(plan: FitPlan, state, rows, stream_at) -> None:
    assert plan.checkpoint_dir is not None
    if jax.process_index() != 0:  # several processes hold the same run
        return
    metadata = dict(plan.metadata)
    if stream_at is not None:
        metadata[_STREAM] = stream_at
    _checkpoint.save_checkpoint(
        plan.checkpoint_dir, state, arrays=_history(plan, rows), metadata=metadata
    )


def _result(plan: FitPlan, state, rows, interrupted, error) -> FitResult:
    params, model_state = state.params, state.model_state
    best_step = None
    stop = plan.cfg.stop
    if stop is not None and int(state.stop.best_step) >= 0:
        best_step = int(state.stop.best_step)
        if stop.restore_best:
            params, model_state = state.stop.best
    step, nonfinite = int(state.step), int(state.skipped)
    guarded = plan.cfg.skip_nonfinite
    if step and nonfinite == step:
        what = (
            "was skipped: the parameters are the initial ones"
            if guarded
            else "was applied (skip_nonfinite=False): the parameters are not finite"
        )
        warnings.warn(
            f"every one of the {step} steps had a non-finite loss or gradient "
            f"and {what}. Check loss_fn and the data, or lower the learning rate.",
            RuntimeWarning,
            stacklevel=3,
        )
    skipped = nonfinite if guarded else 0
    return FitResult(
        params=params,
        opt_state=state.opt_state,
        history=_history(plan, rows),
        step=step,
        stopped_early=_stopped(state),
        interrupted=interrupted,
        best_step=best_step,
        state=model_state,
        skipped=skipped,
        error=error,
    )
