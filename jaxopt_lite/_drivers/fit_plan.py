"""`fit`'s plan: every argument checked once, before tracing, into one value.

`plan_fit` validates the arguments of `fit` and lays the run out (sampling,
history rows, evaluation, early stopping, chunks); `fit` then only runs the
`FitPlan`. Nothing here compiles or touches the devices beyond abstract
tracing (``jax.eval_shape``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import numpy as np
import optax

from jaxopt_lite._core import recipe as _recipe
from jaxopt_lite._core import validate as v
from jaxopt_lite._core.dtypes import metric_dtype
from jaxopt_lite._drivers import checkpoint as _checkpoint
from jaxopt_lite._drivers import checks as _checks
from jaxopt_lite._drivers import fit_stream as _stream
from jaxopt_lite._drivers import mesh as _mesh
from jaxopt_lite._drivers import model_checks as _model
from jaxopt_lite._drivers import pacing as _pacing
from jaxopt_lite._drivers import programs as _programs
from jaxopt_lite._drivers import run_checks as _settings
from jaxopt_lite._drivers.batch_layout import is_stream
from jaxopt_lite._drivers.loggers import Callback
from jaxopt_lite._drivers.progress import Progress
from jaxopt_lite._loop import sampling as _sampling
from jaxopt_lite._loop import train as _loop
from jaxopt_lite._loop.stopping import StopConfig
from jaxopt_lite._transforms.scaling import current_learning_rate

PyTree = Any


class EarlyStopping(NamedTuple):
    r"""Stop training when a monitored quantity stops improving.

    $$
    \text{improved} \iff v < v_{\text{best}} - \delta
    \;(\text{mode}=\text{"min"}), \qquad
    \text{stop after } \text{patience} \text{ checks without improvement}
    $$

    Checks happen at every evaluation (every multiple of ``eval_every``) when
    ``monitor`` names an eval metric, and at the end of every epoch (on the
    mean training loss since the previous check) when it is ``"loss"``. The
    decision is taken inside the compiled loop.

    Attributes:
        patience: checks without improvement before stopping (>= 1).
        min_delta: the smallest change that counts as an improvement (a
            finite number >= 0).
        monitor: ``"loss"`` or the name of a metric returned by ``eval_fn``
            (``"accuracy"`` or ``"eval_accuracy"`` for ``{"accuracy": ...}``;
            ``"eval_loss"`` when ``eval_fn`` returns a scalar).
        mode: ``"min"`` or ``"max"`` (for accuracies).
        restore_best: return the parameters (and model state) of the best
            check instead of the last ones.

    Example:
        >>> import jaxopt_lite as jol
        >>> jol.EarlyStopping(patience=3, monitor="accuracy", mode="max").mode
        'max'
    """

    patience: int = 5
    min_delta: float = 0.0
    monitor: str = "loss"
    mode: str = "min"
    restore_best: bool = True


class FitPlan(NamedTuple):
    """A validated `fit` call: what to run and how."""

    loss_fn: Callable
    optimizer: optax.GradientTransformation
    eval_fn: Callable | None
    params: PyTree
    model_state: PyTree  # None without state=
    data: PyTree  # in-memory data (None for a stream)
    stream: _stream.StreamLayout | None  # a stream of batches
    steps_given: bool  # steps= (not epochs=) set the run's length
    eval_data: PyTree
    key: jax.Array
    cfg: _loop.LoopConfig
    total_steps: int
    fixed_chunks: bool  # chunk_size was given; else chunks are paced by time
    show_progress: bool
    checkpoint_dir: str | os.PathLike | None
    resume: bool | str  # True, False or "skip" (a stream, by counting)
    mesh: jax.sharding.Mesh | None
    callbacks: tuple[Callback, ...]
    columns: dict[str, np.dtype]  # every history column, in order
    metadata: dict[str, Any]  # what a resumed run must agree on


def check_early_stopping(
    early_stopping: Any,
    eval_names: Sequence[str],
    steps_per_epoch: int | None,
    eval_every: int | None,
) -> StopConfig | None:
    """Validate ``early_stopping``; resolve its monitor and check period."""
    if early_stopping is None:
        return None
    if not isinstance(early_stopping, EarlyStopping):
        raise TypeError(
            f"early_stopping must be an EarlyStopping, got {early_stopping!r}."
        )
    stop = early_stopping
    _settings.check_early_stopping(stop)
    if stop.monitor == "loss":
        if steps_per_epoch is None:
            raise ValueError(
                "early_stopping.monitor='loss' checks once per epoch, and a stream "
                "without a length has no epochs: monitor an eval_fn metric (with "
                "eval_every=) instead."
            )
        monitor, every = "loss", steps_per_epoch
    else:
        monitor = stop.monitor
        if not monitor.startswith("eval_"):
            monitor = f"eval_{monitor}"
        if monitor not in eval_names:
            raise ValueError(
                f"early_stopping.monitor={stop.monitor!r} is not a recorded "
                f"metric; choose one of {['loss', *eval_names]}."
            )
        assert eval_every is not None
        every = eval_every
    return StopConfig(
        monitor=monitor,
        every=every,
        mode=stop.mode,
        min_delta=float(stop.min_delta),
        patience=stop.patience,
        restore_best=stop.restore_best,
    )


def check_eval(
    eval_fn: Any,
    eval_data: Any,
    eval_every: Any,
    steps_per_epoch: int | None,
    args: tuple,
) -> tuple[PyTree, int | None, list[str]]:
    """Check ``eval_fn(*args, eval_data)`` abstractly: a scalar or a dict of
    scalars. Returns the eval data as arrays, the period (default: an epoch)
    and the history names of the metrics."""
    if eval_fn is None:
        if eval_every is not None or eval_data is not None:
            given = "eval_every" if eval_every is not None else "eval_data"
            raise ValueError(f"{given} was given without eval_fn.")
        return None, None, []
    v.check_callable("eval_fn", eval_fn)
    v.check_count("eval_every", eval_every, optional=True)
    if eval_every is None and steps_per_epoch is None:
        raise ValueError(
            "eval_fn needs eval_every= with a stream without a length: by default "
            "it runs once per epoch, and such a stream has no epochs."
        )
    argnames = (
        ("params", "state", "eval_data") if len(args) == 2 else ("params", "eval_data")
    )
    eval_data, names = _settings.check_eval_fn(eval_fn, args, eval_data, argnames)
    return eval_data, eval_every or steps_per_epoch, names


def _check_callbacks(callbacks: Any) -> tuple[Callback, ...]:
    if callbacks is None:
        return ()
    if isinstance(callbacks, Callback) or not isinstance(callbacks, Sequence):
        raise TypeError(
            f"callbacks must be a list of Callback objects, got {callbacks!r}."
        )
    for i, c in enumerate(callbacks):
        if not all(callable(getattr(c, m, None)) for m in ("on_chunk", "on_end")):
            raise TypeError(
                f"callbacks[{i}]={c!r} is not a Callback: subclass "
                "jaxopt_lite.Callback (on_chunk, on_end, close)."
            )
    return tuple(callbacks)


def _columns(
    optimizer: Any, params: PyTree, aux_names: Sequence[str], eval_names: Sequence[str]
) -> dict[str, np.dtype]:
    int32, float32 = np.dtype(np.int32), metric_dtype(params)
    columns = {"step": int32, "loss": float32, "grad_norm": float32}
    columns["skipped"] = int32
    rate = jax.eval_shape(lambda p: current_learning_rate(optimizer.init(p)), params)
    if rate is not None:
        columns["learning_rate"] = float32
    columns.update(dict.fromkeys(aux_names, float32))
    if eval_names:
        columns["eval_step"] = int32
        columns.update(dict.fromkeys(eval_names, float32))
    return columns


def plan_fit(
    loss_fn: Any,
    params: Any,
    optimizer: Any,
    data: Any,
    *,
    state: Any,
    steps: Any,
    epochs: Any,
    batch_size: Any,
    key: Any,
    step_key: Any,
    shuffle: Any,
    replace: Any,
    drop_remainder: Any,
    has_aux: Any,
    eval_fn: Any,
    eval_data: Any,
    eval_every: Any,
    early_stopping: Any,
    skip_nonfinite: Any,
    log_every: Any,
    chunk_size: Any,
    progress: Any,
    callbacks: Any,
    checkpoint_dir: Any,
    resume: Any,
    overwrite: Any,
    mesh: Any,
) -> FitPlan:
    """Check every argument of `fit` (see there) and lay the run out."""
    v.check_callable("loss_fn", loss_fn)
    v.check_transform("optimizer", optimizer)
    _model.check_trainable(params)
    params = _checks.check_params("params", params)
    for name, flag in {
        "replace": replace,
        "drop_remainder": drop_remainder,
        "has_aux": has_aux,
        "step_key": step_key,
        "skip_nonfinite": skip_nonfinite,
    }.items():
        v.check_bool(name, flag)
    if shuffle is not None:
        v.check_bool("shuffle", shuffle)
    streaming = is_stream(data)
    if resume != "skip":
        v.check_bool("resume", resume)
    elif not streaming:
        raise ValueError(
            "resume='skip' (skip ahead in a stream by reading its batches) needs "
            "data to be a stream of batches; use resume=True."
        )
    if progress is not None and not isinstance(progress, bool):
        raise TypeError(f"progress must be True, False or None, got {progress!r}.")
    has_state = state is not None
    model_state = _model.check_state(state) if has_state else None

    v.check_count("log_every", log_every)
    v.check_count("chunk_size", chunk_size, optional=True)
    stream = None
    if streaming:
        mesh = _mesh.check_mesh(mesh, None)
        stream = _stream.plan_stream(
            data, batch_size=batch_size, steps=steps, epochs=epochs, shuffle=shuffle,
            replace=replace, drop_remainder=drop_remainder, chunk_size=chunk_size,
            sharding=_mesh.batch_sharding(mesh),
        )  # fmt: skip
        data, sample = None, stream.stream.spec
        batch_size = num_examples = stream.batch_size
        steps_per_epoch, total_steps = stream.steps_per_epoch, stream.total_steps
        _mesh.check_batch(mesh, batch_size)
    else:
        if not drop_remainder:
            raise ValueError(
                "drop_remainder=False is for streams of batches; with in-memory "
                "data each epoch uses len(data) // batch_size full batches."
            )
        mesh = _mesh.check_mesh(mesh, None)
        data, num_examples, batch_size, steps_per_epoch, total_steps = (
            _settings.run_length(
                data, batch_size, steps, epochs, log_every,
                parts=lambda n: _mesh.data_parts(mesh, n),
            )
        )  # fmt: skip
        _mesh.check_batch(mesh, batch_size)
        sample = data
    if chunk_size is not None and chunk_size % log_every and stream is None:
        raise ValueError(
            f"chunk_size={chunk_size} must be a multiple of log_every={log_every}."
        )
    key = v.check_key("key", key)

    # The abstract traces below depend only on callables and shapes: a repeated
    # call finds their results in the cache of `programs.check_once`.
    step_keys = key if step_key else None
    aux_names = _programs.check_once(
        ("fit loss", batch_size, has_aux), loss_fn,
        (params, model_state, sample, step_keys),
        lambda: _model.check_loss(
            loss_fn, params, model_state, sample, batch_size, step_keys,
            has_aux=has_aux,
        ),
    )  # fmt: skip
    args = (params, model_state) if has_state else (params,)
    eval_data, eval_every, eval_names = check_eval(
        eval_fn, eval_data, eval_every, steps_per_epoch, args
    )
    _settings.check_metric_names(aux_names, eval_names)
    stop = check_early_stopping(early_stopping, eval_names, steps_per_epoch, eval_every)

    _checkpoint.check_fresh(checkpoint_dir, resume=bool(resume), overwrite=overwrite)
    shuffle = stream is None if shuffle is None else shuffle
    sampling = _sampling.Sampling(
        num_examples, batch_size, shuffle, replace, stream=stream is not None
    )
    cfg = _loop.LoopConfig(
        sampling=sampling,
        log_every=log_every,
        chunk_size=stream.rows
        if stream is not None
        else _pacing.capacity(chunk_size, total_steps, log_every),
        has_aux=has_aux,
        aux_names=tuple(aux_names),
        has_state=has_state,
        step_key=step_key,
        skip_nonfinite=skip_nonfinite,
        eval=None if eval_every is None else _loop.EvalConfig(eval_every),
        stop=stop,
        batch_sharding=_mesh.batch_sharding(mesh),
        metric_dtype=metric_dtype(params),
    )
    names = (tuple(aux_names), tuple(eval_names))
    shapes = (_recipe.split(optimizer)[0], _programs.shapes(params))
    columns = _programs.checked(
        ("fit columns", *shapes, *names),
        lambda: _columns(optimizer, params, aux_names, eval_names),
    )
    return FitPlan(
        loss_fn=loss_fn,
        optimizer=optimizer,
        eval_fn=eval_fn,
        params=params,
        model_state=model_state,
        data=data,
        stream=stream,
        steps_given=steps is not None,
        eval_data=eval_data,
        key=key,
        cfg=cfg,
        total_steps=total_steps,
        fixed_chunks=chunk_size is not None,
        show_progress=Progress.wanted(progress),
        checkpoint_dir=checkpoint_dir,
        resume=resume,
        mesh=mesh,
        callbacks=_check_callbacks(callbacks),
        columns=columns,
        metadata={
            "stream": stream is not None,
            "num_examples": num_examples,
            "batch_size": batch_size,
            "shuffle": shuffle,
            "replace": replace,
            "log_every": log_every,
            "step_key": step_key,
            "columns": list(columns),
        },
    )
