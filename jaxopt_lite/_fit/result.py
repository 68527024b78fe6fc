"""`FitResult`, and how `fit` makes one from the pipeline's outcome."""

from __future__ import annotations

import warnings
from typing import Any, NamedTuple

import numpy as np

from jaxopt_lite._host.pipeline import Outcome
from jaxopt_lite._host.plan import RunPlan

PyTree = Any


class FitResult(NamedTuple):
    """What `fit` returns.

    Attributes:
        params: the trained parameters (the best ones when early stopping
            restores them).
        opt_state: the final optimizer state.
        history: NumPy arrays, one row per ``log_every`` steps (the last row
            may hold fewer steps): ``step``, ``loss`` and ``grad_norm`` (means
            over the row's finite steps), ``skipped`` (non-finite steps
            skipped), ``learning_rate`` (when the optimizer exposes it), aux
            metrics; and, one row per evaluation, ``eval_step`` and
            ``eval_<metric>``. Every column is present, empty when no row was
            finished.
        step: steps taken.
        stopped_early: early stopping ended the run.
        interrupted: Ctrl-C or a preemption ended the run; everything up to
            the last finished chunk is kept.
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
        save_error: ``None``, or the last checkpoint save that failed (a full
            disk, say), as text: the run went on, a ``RuntimeWarning`` said
            so, and the checkpoint on disk is the last one written.
        seconds: the run's wall-clock time, compilation included.
        preempted: a preemption notice of ``jax.distributed`` ended the run
            (``interrupted`` is then ``True`` too), after the checkpoint of the
            last chunk was saved: resume it with ``resume=True``.

    ``repr(result)`` is a one-line summary; the fields hold the arrays.
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
    save_error: str | None = None
    seconds: float = 0.0
    preempted: bool = False

    def __repr__(self) -> str:
        return summary("FitResult", self)


def _warn_all_skipped(step: int, guarded: bool) -> None:
    what = (
        "was skipped: the parameters are the initial ones"
        if guarded
        else "was applied (skip_nonfinite=False): the parameters are not finite"
    )
    warnings.warn(
        f"every one of the {step} steps had a non-finite loss or gradient "
        f"and {what}. Check loss_fn and the data, or lower the learning rate.",
        RuntimeWarning,
        stacklevel=4,
    )


def fit_result(plan: RunPlan, outcome: Outcome) -> FitResult:
    """The `FitResult` of a finished (or interrupted) run."""
    state = outcome.state
    params, model_state = state.params, state.model_state
    best_step = None
    stop = plan.cfg.stop
    stopped = stop is not None and bool(state.stop.stopped)
    if stop is not None and int(state.stop.best_step) >= 0:
        best_step = int(state.stop.best_step)
        if stop.restore_best:
            params, model_state = state.stop.best
    step, nonfinite = int(state.step), int(state.skipped)
    guarded = plan.cfg.skip_nonfinite
    if step and nonfinite == step:
        _warn_all_skipped(step, guarded)
    return FitResult(
        params=params,
        opt_state=state.opt_state,
        history=outcome.history,
        step=step,
        stopped_early=stopped,
        interrupted=outcome.interrupted,
        best_step=best_step,
        state=model_state,
        skipped=nonfinite if guarded else 0,
        error=outcome.error,
        save_error=outcome.save_error,
        seconds=outcome.seconds,
        preempted=outcome.preempted,
    )


def _last(values: np.ndarray) -> str:
    finite = values[np.isfinite(values)]
    return f"{finite[-1]:.4g}" if finite.size else "nan"


def summary(name: str, result: Any) -> str:
    """A one-line summary of a `FitResult`: steps, final and best metrics,
    time, skipped steps, how the run ended."""
    history = result.history
    parts = [f"step={result.step}"]
    for column, values in history.items():
        if column in ("loss",) or (
            column.startswith("eval_") and column != "eval_step"
        ):
            if len(values):
                parts.append(f"{column}={_last(np.asarray(values))}")
    if result.best_step is not None:
        parts.append(f"best_step={result.best_step}")
    parts.append(f"seconds={result.seconds:.3g}")
    if result.skipped:
        parts.append(f"skipped={result.skipped}")
    for flag in ("stopped_early", "interrupted", "preempted"):
        if getattr(result, flag):
            parts.append(f"{flag}=True")
    for text in ("error", "save_error"):
        if getattr(result, text) is not None:
            parts.append(f"{text}={getattr(result, text)!r}")
    return f"{name}({', '.join(parts)})"
