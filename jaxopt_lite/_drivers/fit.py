"""`fit`: minibatch training compiled into chunks of one ``lax.scan``."""

from __future__ import annotations

import functools
import math
import numbers
import os
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxopt_lite._core import validate as v
from jaxopt_lite._drivers import checkpoint as _checkpoint
from jaxopt_lite._drivers import checks as _checks
from jaxopt_lite._drivers import mesh as _mesh
from jaxopt_lite._drivers import programs as _programs
from jaxopt_lite._drivers.progress import Progress
from jaxopt_lite._loop import guard as _guard
from jaxopt_lite._loop import train as _loop

PyTree = Any
_TARGET_CHUNKS = 20


class EarlyStopping(NamedTuple):
    r"""Stop training when a monitored quantity stops improving.

    $$
    \text{improved} \iff v < v_{\text{best}} - \delta
    \;(\text{mode}=\text{"min"}), \qquad
    \text{stop after } \text{patience} \text{ checks without improvement}
    $$

    Checks happen at every evaluation when ``monitor`` names an eval metric, and
    once per epoch (on the mean training loss of that epoch) when it is
    ``"loss"``. The decision is taken inside the compiled loop.

    Attributes:
        patience: checks without improvement before stopping (>= 1).
        min_delta: the smallest change that counts as an improvement (>= 0).
        monitor: ``"loss"`` or the name of a metric returned by ``eval_fn``
            (``"accuracy"`` or ``"eval_accuracy"``; ``"eval_loss"`` when
            ``eval_fn`` returns a scalar).
        mode: ``"min"`` or ``"max"`` (for accuracies).
        restore_best: return the parameters of the best check instead of the
            last ones.

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


class FitResult(NamedTuple):
    """What `fit` returns.

    Attributes:
        params: the trained parameters (the best ones when early stopping
            restores them).
        opt_state: the final optimizer state.
        history: NumPy arrays, one row per ``log_every`` steps: ``step``,
            ``loss`` and ``grad_norm`` (means over the row's finite steps),
            ``skipped`` (non-finite steps), ``learning_rate`` (when the optimizer
            exposes it), aux metrics; and, one row per evaluation,
            ``eval_step`` and ``eval_<metric>``.
        step: steps taken.
        stopped_early: early stopping ended the run.
        interrupted: Ctrl-C ended the run; everything up to the last finished
            chunk is kept.
        best_step: step of the best early-stopping check (``None`` without
            early stopping).
    """

    params: PyTree
    opt_state: PyTree
    history: dict[str, np.ndarray]
    step: int
    stopped_early: bool
    interrupted: bool
    best_step: int | None


def _compiled(loss_fn, optimizer, eval_fn, cfg: _loop.LoopConfig):
    """``(init, chunk)`` for these callables and this optimizer; a cached
    program is reused for equal structure (`programs`), its inputs bound."""
    key, inputs = _programs.split({"loss": loss_fn, "eval": eval_fn}, optimizer)
    init, chunk = _programs.program(("fit", key, cfg), lambda: _build(key, cfg))
    return functools.partial(init, inputs), functools.partial(chunk, inputs)


def _build(key, cfg: _loop.LoopConfig):
    def parts(inputs):
        fns, optimizer = _programs.join(key, inputs)
        return fns["loss"], optax.with_extra_args_support(optimizer), fns["eval"]

    def init(inputs, params, rng):
        return _loop.init_train_state(params, parts(inputs)[1], rng, cfg)

    def chunk(inputs, state, data, eval_data, active_windows):
        loss_fn, optimizer, eval_fn = parts(inputs)
        return _guard.run_chunk(
            loss_fn, optimizer, eval_fn, cfg, state, data, eval_data, active_windows
        )

    return jax.jit(init), jax.jit(chunk)


def _monitor(
    early_stopping: EarlyStopping | None,
    eval_names: list[str],
    steps_per_epoch: int,
    eval_every: int | None,
) -> tuple[str | None, int | None]:
    """Validate ``early_stopping``; return the history name it monitors and
    how often (in steps) it is checked."""
    if early_stopping is None:
        return None, None
    if not isinstance(early_stopping, EarlyStopping):
        raise TypeError(
            f"early_stopping must be an EarlyStopping, got {early_stopping!r}."
        )
    v.check_int("early_stopping.patience", early_stopping.patience)
    if early_stopping.mode not in ("min", "max"):
        raise ValueError(
            f"early_stopping.mode={early_stopping.mode!r}: use 'min' or 'max'."
        )
    delta = early_stopping.min_delta
    if not (isinstance(delta, numbers.Real) and delta >= 0):
        raise ValueError(f"early_stopping.min_delta={delta!r} must be a number >= 0.")
    if early_stopping.monitor == "loss":
        return "loss", steps_per_epoch
    monitor = early_stopping.monitor
    if not monitor.startswith("eval_"):
        monitor = f"eval_{monitor}"
    if monitor not in eval_names:
        raise ValueError(
            f"early_stopping.monitor={early_stopping.monitor!r} is not a "
            f"recorded metric; choose one of {['loss', *eval_names]}."
        )
    return monitor, eval_every


def _choose_windows(total_windows: int, requested: int | None) -> int:
    if requested is not None:
        return min(requested, total_windows)
    target = max(1, math.ceil(total_windows / _TARGET_CHUNKS))
    for size in range(target, min(total_windows, 2 * target) + 1):
        if total_windows % size == 0:
            return size
    return target


def fit(
    loss_fn: Callable[[PyTree, PyTree], jax.Array],
    params: PyTree,
    optimizer: optax.GradientTransformation,
    data: PyTree = None,
    *,
    steps: int | None = None,
    epochs: int | None = None,
    batch_size: int | None = None,
    key: jax.Array | None = None,
    shuffle: bool = True,
    replace: bool = False,
    has_aux: bool = False,
    eval_fn: Callable[[PyTree, PyTree], Any] | None = None,
    eval_data: PyTree = None,
    eval_every: int | None = None,
    early_stopping: EarlyStopping | None = None,
    skip_nonfinite: bool = True,
    log_every: int = 1,
    chunk_size: int | None = None,
    progress: bool | None = None,
    checkpoint_dir: str | os.PathLike | None = None,
    resume: bool = False,
    mesh: jax.sharding.Mesh | None = None,
) -> FitResult:
    r"""Train with minibatch gradient steps, compiled into one ``lax.scan``.

    $$
    \theta_{t+1} = \theta_t + \mathrm{update}\Big(\tfrac{1}{|B_t|}
    \textstyle\sum_{i \in B_t} \nabla_\theta \ell(\theta_t; x_i)\Big)
    $$

    Each step samples a batch on the device, differentiates ``loss_fn``, applies
    the optimizer (passing ``value=loss``) and records metrics; the steps run
    in compiled chunks of ``chunk_size`` (one compilation for all chunks).
    Between chunks only, the driver updates the progress bar, writes a
    checkpoint, and handles Ctrl-C (returning what was finished). The next
    chunk is dispatched before the previous one's numbers are read, so the
    device never waits for the host.

    Sampling: ``shuffle=True`` draws each epoch as a fresh exact permutation
    (without replacement; the ``n % batch_size`` examples left over are not used
    that epoch), ``shuffle=False`` walks the data in order, ``replace=True``
    samples uniformly with replacement. ``batch_size=None`` is full batch and
    ``batch_size=1`` is per-example SGD. The same ``key`` gives bit-identical
    results, and calling ``fit`` again with the same ``loss_fn``, ``optimizer``
    and ``eval_fn`` objects and data of the same shapes reuses the compiled
    loop.

    Args:
        loss_fn: ``loss_fn(params, batch) -> scalar`` (``(scalar, aux)`` with
            ``has_aux``, aux a dict of scalar metrics); ``batch`` has the
            structure of ``data``.
        params: initial parameters: a pytree of floating-point arrays.
        optimizer: any optax gradient transformation.
        data: a pytree of arrays sharing a leading (examples) axis, or ``None``
            for objectives without data (``loss_fn(params, None)``).
        steps: number of steps; exactly one of ``steps`` and ``epochs``.
        epochs: number of epochs of ``len(data) // batch_size`` steps.
        batch_size: examples per step (``None``: all of them).
        key: PRNG key for shuffling (default ``jax.random.key(0)``).
        shuffle: permute each epoch (see above).
        replace: sample with replacement instead.
        has_aux: ``loss_fn`` returns ``(loss, aux)``.
        eval_fn: ``eval_fn(params, eval_data)`` returning a scalar or a dict of
            scalars, run on the device every ``eval_every`` steps.
        eval_data: the data for ``eval_fn``.
        eval_every: steps between evaluations (default: once per epoch).
        early_stopping: an `EarlyStopping`.
        skip_nonfinite: skip (and count) steps whose loss or gradient is not
            finite, keeping the state, so a run never ends with NaN parameters
            because of one bad batch.
        log_every: steps per history row; must divide the number of steps.
        chunk_size: steps per compiled chunk (a multiple of ``log_every``;
            default: the whole run when there is no progress bar and no
            checkpointing, else about a twentieth of it).
        progress: show a tqdm bar (default: when stderr is a terminal).
        checkpoint_dir: save the whole run state there after every chunk
            (atomically, without pickle).
        resume: continue from the checkpoint in ``checkpoint_dir``; the result
            is bit-identical to an uninterrupted run.
        mesh: a `jax.sharding.Mesh` with an axis named ``"data"`` for data
            parallelism: batches (and the data, when its size divides) are split
            over that axis, parameters and optimizer state are replicated, and
            XLA inserts the gradient all-reduce. ``batch_size`` must be divisible
            by the axis size. See the multi-device guide.

    Returns:
        A `FitResult`.

    Example:
        >>> import jax, jax.numpy as jnp, jaxopt_lite as jol
        >>> x = jnp.linspace(-1, 1, 64)
        >>> data = {"x": x, "y": 3 * x + 1}
        >>> def loss_fn(p, b):
        ...     return jnp.mean((p["w"] * b["x"] + p["b"] - b["y"]) ** 2)
        >>> result = jol.fit(loss_fn, {"w": 0.0, "b": 0.0}, jol.sgd(0.1), data,
        ...                  epochs=100, batch_size=16, key=jax.random.key(0))
        >>> round(float(result.params["w"]), 3), round(float(result.params["b"]), 3)
        (3.0, 1.0)
    """
    v.check_callable("loss_fn", loss_fn)
    v.check_transform("optimizer", optimizer)
    params = _checks.check_params("params", params)
    for name, flag in {
        "shuffle": shuffle,
        "replace": replace,
        "has_aux": has_aux,
        "skip_nonfinite": skip_nonfinite,
        "resume": resume,
    }.items():
        v.check_bool(name, flag)
    if progress is not None and not isinstance(progress, bool):
        raise TypeError(f"progress must be True, False or None, got {progress!r}.")

    data, num_examples, batch_size, steps_per_epoch, total_steps = _checks.run_length(
        data, batch_size, steps, epochs, log_every
    )
    mesh = _mesh.check_mesh(mesh, batch_size)
    total_windows = total_steps // log_every
    v.check_int("chunk_size", chunk_size, optional=True)
    if chunk_size is not None and chunk_size % log_every:
        raise ValueError(
            f"chunk_size={chunk_size} must be a multiple of log_every={log_every}."
        )

    key = v.check_key("key", key)

    if eval_fn is None:
        if eval_every is not None or eval_data is not None:
            given = "eval_every" if eval_every is not None else "eval_data"
            raise ValueError(f"{given} was given without eval_fn.")
    else:
        v.check_callable("eval_fn", eval_fn)
        v.check_int("eval_every", eval_every, optional=True)
        eval_every = eval_every or steps_per_epoch
        if eval_data is not None:
            eval_data = jax.tree.map(jnp.asarray, eval_data)

    _programs.check_once(
        ("fit", batch_size, has_aux),
        loss_fn,
        (params, data),
        lambda: _checks.check_loss_fn(
            loss_fn, params, data, batch_size, has_aux=has_aux
        ),
    )
    eval_names: list[str] = []
    if eval_fn is not None:
        shape = _programs.check_once(
            "eval",
            eval_fn,
            (params, eval_data),
            lambda: _loop.eval_names(jax.eval_shape(eval_fn, params, eval_data)),
        )
        if not all(
            isinstance(s, jax.ShapeDtypeStruct) and s.shape == ()
            for s in shape.values()
        ):
            raise TypeError(
                "eval_fn must return a scalar or a dict of scalars; it returned "
                f"{shape!r}."
            )
        eval_names = list(shape)

    monitor, check_every = _monitor(
        early_stopping, eval_names, steps_per_epoch, eval_every
    )

    checkpointing = checkpoint_dir is not None
    if resume and not checkpointing:
        raise ValueError("resume=True needs checkpoint_dir.")
    if resume and checkpoint_dir and not _checkpoint.has_checkpoint(checkpoint_dir):
        raise FileNotFoundError(
            f"resume=True but there is no checkpoint in {checkpoint_dir}."
        )

    show = Progress.wanted(progress)
    if chunk_size is None and not (show or checkpointing):
        windows = total_windows
    else:
        windows = _choose_windows(total_windows, chunk_size and chunk_size // log_every)
    cfg = _loop.LoopConfig(
        num_examples=num_examples,
        batch_size=batch_size,
        shuffle=shuffle,
        replace=replace,
        log_every=log_every,
        windows=windows,
        has_aux=has_aux,
        guard=skip_nonfinite,
        maskable=early_stopping is not None or total_windows % windows != 0,
        eval_every=eval_every,
        check_every=check_every,
        monitor=monitor,
        minimize_monitor=early_stopping is None or early_stopping.mode == "min",
        min_delta=float(early_stopping.min_delta) if early_stopping else 0.0,
        patience=early_stopping.patience if early_stopping else 1,
        restore_best=bool(early_stopping and early_stopping.restore_best),
        batch_sharding=_mesh.batch_sharding(mesh),
    )
    meta = {
        "num_examples": num_examples,
        "batch_size": batch_size,
        "shuffle": shuffle,
        "replace": replace,
        "log_every": log_every,
    }
    init, chunk = _compiled(loss_fn, optimizer, eval_fn, cfg)
    state = init(params, key)
    rows: list[dict[str, np.ndarray]] = []
    if resume and checkpoint_dir is not None:
        saved = _checkpoint.load_checkpoint(checkpoint_dir, state)
        for name, value in meta.items():
            if saved.metadata.get(name) != value:
                raise ValueError(
                    f"the checkpoint in {checkpoint_dir} was written with "
                    f"{name}={saved.metadata.get(name)!r}, but this call has "
                    f"{name}={value!r}; resume with the same settings."
                )
        state = saved.tree
        rows = [dict(saved.arrays)] if saved.arrays else []
    if mesh is not None:
        data, eval_data, state = _mesh.place(mesh, data, eval_data, state)
    bar = Progress(show, total_steps, int(state.step), "fit")
    return _drive(
        chunk,
        state,
        rows,
        cfg,
        total_windows,
        data,
        eval_data,
        bar,
        checkpoint_dir,
        meta,
    )


def _drive(
    chunk, state, rows, cfg, total_windows, data, eval_data, bar, checkpoint_dir, meta
):
    """Dispatch chunks one ahead of the host, read each finished one, and stop
    on completion, early stopping or Ctrl-C."""
    finished = state
    done = int(state.step) // cfg.log_every
    stopped = bool(state.stopped)
    interrupted = False
    pending = None
    try:
        while True:
            launched = None
            if done < total_windows and not stopped:
                active = min(cfg.windows, total_windows - done)
                launched = chunk(state, data, eval_data, jnp.int32(active))
                state = launched[0]
                done += active
            if pending is not None:
                out_state, out_rows = pending
                host = jax.device_get(out_rows)
                ran = host["step"] > 0
                rows.append({k: v[ran] for k, v in host.items()})
                before = int(finished.step)
                finished = out_state
                if checkpoint_dir is not None:
                    _checkpoint.save_checkpoint(
                        checkpoint_dir, finished, arrays=_concat(rows), metadata=meta
                    )
                if ran.any():
                    loss = float(rows[-1]["loss"][-1])
                    bar.update(int(finished.step) - before, {"loss": loss})
                stopped = bool(finished.stopped)
                if stopped:
                    break
            if launched is None:
                break
            pending = launched
    except KeyboardInterrupt:
        interrupted = True
    finally:
        bar.close()
    return _result(finished, rows, cfg, interrupted)


def _concat(rows: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    return {k: np.concatenate([r[k] for r in rows]) for k in rows[0]} if rows else {}


def _history(rows: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    raw = _concat(rows)
    evaluated = raw.pop("evaluated", None)
    history = {k: v for k, v in raw.items() if not k.startswith("eval_")}
    if evaluated is not None:
        history["eval_step"] = raw["step"][evaluated]
        history.update(
            {k: v[evaluated] for k, v in raw.items() if k.startswith("eval_")}
        )
    return history


def _result(state, rows, cfg, interrupted) -> FitResult:
    params = state.params
    best_step = None
    if cfg.monitor is not None and int(state.best_step) >= 0:
        best_step = int(state.best_step)
        if cfg.restore_best:
            params = state.best_params
    return FitResult(
        params=params,
        opt_state=state.opt_state,
        history=_history(rows),
        step=int(state.step),
        stopped_early=bool(state.stopped),
        interrupted=interrupted,
        best_step=best_step,
    )
