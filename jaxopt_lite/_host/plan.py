"""One planner for `fit` and `sweep`: every option checked once, into a plan.

`plan_run` validates the `RunOptions` of a training run against the loss,
the parameters and the data, and lays the run out (sampling, history rows,
evaluation, early stopping, chunks, reporting, checkpoints, devices). `fit`
and `sweep` build their programs and engines from the `RunPlan` and hand
both to the one host pipeline (`pipeline.drive`). Nothing here compiles or
touches the devices beyond abstract tracing (`checks.traced`, whose
traces JAX caches per function and shapes).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import numpy as np

from jaxopt_lite._core import validate
from jaxopt_lite._core.dtypes import metric_dtype
from jaxopt_lite._host import (
    checkpoint_store,
    feeds,
    model_checks,
    options,
    pacing,
    placement,
    run_checks,
    sharding,
)
from jaxopt_lite._host.batch_layout import is_stream
from jaxopt_lite._host.loggers import Callback
from jaxopt_lite._host.options import RunOptions, check_early_stopping
from jaxopt_lite._host.progress import Progress
from jaxopt_lite._loop import sampling, train
from jaxopt_lite._loop.loss import Eval, Loss, LossForm

PyTree = Any


class RunPlan(NamedTuple):
    """A validated training run: what to run and how."""

    loss: Loss
    eval: Eval | None
    eval_names: tuple[str, ...]  # the history columns of the evaluation
    params: PyTree  # checked parameters (abstract for a sweep's init(key))
    model_state: PyTree  # None without state=
    data: PyTree  # in-memory data as arrays (None for a stream or no data)
    stream: feeds.StreamLayout | None
    steps_given: bool  # steps= (not epochs=) set the run's length
    eval_data: PyTree
    key: jax.Array
    cfg: train.LoopConfig
    total_steps: int
    fixed_chunks: bool  # chunk_size was given; else chunks are paced by time
    progress: str  # "bar", "log" or "off" (`Progress.wanted`)
    checkpoint_dir: str | os.PathLike | None
    resume: bool | str  # True, False or "skip" (a stream, by counting)
    overwrite: bool
    checkpointing: checkpoint_store.Checkpointing  # checked, metric resolved
    mesh: jax.sharding.Mesh | None
    callbacks: tuple[Callback, ...]
    settings: dict[str, Any]  # what a resumed run must agree on
    sharding: sharding.Specs | None = None  # None: parameters replicated


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


def _check_flags(o: RunOptions, streaming: bool) -> None:
    for name in ("replace", "drop_remainder", "has_aux", "step_key", "skip_nonfinite"):
        validate.check_bool(name, getattr(o, name))
    if o.shuffle is not None:
        validate.check_bool("shuffle", o.shuffle)
    if o.resume != "skip":
        validate.check_bool("resume", o.resume)
    elif not streaming:
        raise ValueError(
            "resume='skip' (skip ahead in a stream by reading its batches) needs "
            "data to be a stream of batches; use resume=True."
        )
    if o.progress is not None and not isinstance(o.progress, bool):
        raise TypeError(f"progress must be True, False or None, got {o.progress!r}.")
    validate.check_count("log_every", o.log_every)
    validate.check_count("chunk_size", o.chunk_size, optional=True)


def _check_eval(
    o: RunOptions, steps_per_epoch: int | None, args: tuple
) -> tuple[Eval | None, PyTree, int | None, list[str]]:
    """The evaluation: ``(eval, eval_data, period, metric names)``."""
    if o.eval_fn is None:
        if o.eval_every is not None or o.eval_data is not None:
            given = "eval_every" if o.eval_every is not None else "eval_data"
            raise ValueError(f"{given} was given without eval_fn.")
        return None, None, None, []
    validate.check_callable("eval_fn", o.eval_fn)
    validate.check_count("eval_every", o.eval_every, optional=True)
    if o.eval_every is None and steps_per_epoch is None:
        raise ValueError(
            "eval_fn needs eval_every= with a stream without a length: by default "
            "it runs once per epoch, and such a stream has no epochs."
        )
    has_state = len(args) == 2
    names = ("params", "state", "eval_data") if has_state else ("params", "eval_data")
    eval_data, metrics = run_checks.check_eval_fn(o.eval_fn, args, o.eval_data, names)
    return (
        Eval(o.eval_fn, has_state),
        eval_data,
        o.eval_every or steps_per_epoch,
        metrics,
    )


def plan_run(
    loss_fn: Any,
    params: PyTree,
    data: Any,
    o: RunOptions,
    *,
    mesh_axes: tuple[str, ...] = (placement.DATA, placement.MODEL),
    who: str = "fit",
) -> RunPlan:
    """Check every option of a training run (see `fit`) and lay it out.

    ``params`` are already checked (`checks.check_params`), or abstract
    (``jax.ShapeDtypeStruct`` leaves) when a sweep initializes them per seed.
    """
    validate.check_callable("loss_fn", loss_fn)
    streaming = is_stream(data)
    _check_flags(o, streaming)
    model_state = None if o.state is None else model_checks.check_state(o.state)
    the_mesh = placement.check_mesh(o.mesh, None, axes=mesh_axes, who=who)
    stream = None
    if streaming:
        stream = feeds.plan_stream(
            data, batch_size=o.batch_size, steps=o.steps, epochs=o.epochs,
            shuffle=o.shuffle, replace=o.replace, drop_remainder=o.drop_remainder,
            chunk_size=o.chunk_size, sharding=placement.batch_sharding(the_mesh),
        )  # fmt: skip
        data, sample = None, stream.stream.spec
        batch_size = num_examples = stream.batch_size
        steps_per_epoch, total_steps = stream.steps_per_epoch, stream.total_steps
    else:
        if not o.drop_remainder:
            raise ValueError(
                "drop_remainder=False is for streams of batches; with in-memory "
                "data each epoch uses len(data) // batch_size full batches."
            )
        data, num_examples, batch_size, steps_per_epoch, total_steps = (
            run_checks.run_length(
                data, o.batch_size, o.steps, o.epochs, o.log_every,
                parts=lambda n: placement.data_parts(the_mesh, n),
            )
        )  # fmt: skip
        sample = data
        if o.chunk_size is not None and o.chunk_size % o.log_every:
            raise ValueError(
                f"chunk_size={o.chunk_size} must be a multiple of "
                f"log_every={o.log_every}."
            )
    placement.check_batch(the_mesh, batch_size)
    specs = sharding.plan_specs(
        the_mesh, params, model_state, o.param_sharding,
        reserved=tuple(a for a in mesh_axes if a == placement.RUNS),
    )  # fmt: skip
    key = validate.check_key("key", o.key)

    form = LossForm(model_state is not None, o.has_aux, o.step_key)
    step_keys = key if o.step_key else None
    aux_names = model_checks.check_loss(
        loss_fn, params, model_state, sample, batch_size, step_keys,
        has_aux=o.has_aux,
    )  # fmt: skip
    unroll = options.check_unroll(
        o.unroll,
        placement.platform(the_mesh),
        lambda: model_checks.convolves(
            loss_fn,
            model_checks.loss_arguments(
                params, model_state, sample, batch_size, step_keys
            )[0],
        ),
    )
    args = (params,) if model_state is None else (params, model_state)
    eval_, eval_data, eval_every, eval_names = _check_eval(o, steps_per_epoch, args)
    run_checks.check_metric_names(aux_names, eval_names)
    stop = check_early_stopping(
        o.early_stopping, eval_names, steps_per_epoch, eval_every
    )
    checkpoint_store.check_fresh(
        o.checkpoint_dir, resume=bool(o.resume), overwrite=o.overwrite
    )
    checkpointing = checkpoint_store.check_checkpointing(
        o.checkpointing,
        o.checkpoint_dir,
        ["loss", "grad_norm", *aux_names, *eval_names],
    )
    shuffle = stream is None if o.shuffle is None else o.shuffle
    if unroll and o.chunk_size is not None and o.chunk_size % unroll:
        raise ValueError(
            f"chunk_size={o.chunk_size} must be a multiple of unroll={unroll}: "
            "the unrolled calls start at multiples of it, whatever the chunking."
        )
    if stream is not None and unroll:  # a stream's chunks: whole calls too
        stream = stream._replace(rows=max(unroll, stream.rows // unroll * unroll))
    cfg = train.LoopConfig(
        sampling=sampling.Sampling(
            num_examples, batch_size, shuffle, o.replace, stream=stream is not None
        ),
        log_every=o.log_every,
        chunk_size=stream.rows
        if stream is not None
        else pacing.capacity(o.chunk_size, total_steps, unroll or o.log_every),
        aux_names=tuple(aux_names),
        skip_nonfinite=o.skip_nonfinite,
        eval=None if eval_every is None else train.EvalConfig(eval_every),
        stop=stop,
        batch_sharding=placement.batch_sharding(the_mesh),
        metric_dtype=metric_dtype(params),
        microbatches=options.check_microbatches(
            o.microbatches, batch_size, data is not None or stream is not None
        ),
        precision=options.check_precision(o.compute_dtype, o.loss_scale),
        spikes=options.check_spikes(o.skip_spikes),
        unroll=unroll,
    )
    return RunPlan(
        loss=Loss(loss_fn, form),
        eval=eval_,
        eval_names=tuple(eval_names),
        params=params,
        model_state=model_state,
        data=data,
        stream=stream,
        steps_given=o.steps is not None,
        eval_data=eval_data,
        key=key,
        cfg=cfg,
        total_steps=total_steps,
        fixed_chunks=o.chunk_size is not None,
        progress=Progress.wanted(o.progress),
        checkpoint_dir=o.checkpoint_dir,
        resume=o.resume,
        overwrite=o.overwrite,
        checkpointing=checkpointing,
        mesh=the_mesh,
        callbacks=_check_callbacks(o.callbacks),
        settings={
            "stream": stream is not None,
            "num_examples": num_examples,
            "batch_size": batch_size,
            "shuffle": shuffle,
            "replace": o.replace,
            "log_every": o.log_every,
            "step_key": o.step_key,
        },
        sharding=specs,
    )


def columns(plan: RunPlan, has_rate: bool) -> dict[str, np.dtype]:
    """Every history column of a run, in order, with its dtype."""
    cfg, eval_names = plan.cfg, plan.eval_names
    int32, metric = np.dtype(np.int32), np.dtype(cfg.metric_dtype)
    out = {"step": int32, "loss": metric, "grad_norm": metric, "skipped": int32}
    if has_rate:
        out["learning_rate"] = metric
    if cfg.precision is not None and cfg.precision.loss_scale is not None:
        out["loss_scale"] = metric
    out.update(dict.fromkeys(cfg.aux_names, metric))
    if eval_names:
        out["eval_step"] = int32
        out.update(dict.fromkeys(eval_names, metric))
    return out
