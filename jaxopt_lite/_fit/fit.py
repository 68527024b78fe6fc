"""`fit`: minibatch training in compiled chunks of one loop program.

`fit` checks its arguments into a plan (`plan.plan_run`, shared with
`sweep`), builds its engine (`engine.FitEngine`: the compiled programs) and
hands both to the host pipeline (`pipeline.drive`: resume, chunks, progress,
callbacks, checkpoints, Ctrl-C).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

import jax
import optax

from jaxopt_lite._core import validate
from jaxopt_lite._fit.engine import FitEngine
from jaxopt_lite._fit.result import FitResult, fit_result
from jaxopt_lite._host import checks, pipeline
from jaxopt_lite._host.checkpoint_store import Checkpointing
from jaxopt_lite._host.loggers import Callback
from jaxopt_lite._host.options import EarlyStopping, RunOptions
from jaxopt_lite._host.plan import plan_run
from jaxopt_lite._loop.gradient import DynamicLossScale, Microbatches
from jaxopt_lite._loop.spikes import SpikeSkip

PyTree = Any


def fit(
    loss_fn: Callable[..., Any],
    params: PyTree,
    optimizer: optax.GradientTransformation,
    data: PyTree = None,
    *,
    state: PyTree = None,
    steps: int | None = None,
    epochs: int | None = None,
    batch_size: int | None = None,
    key: jax.Array | None = None,
    step_key: bool = False,
    shuffle: bool | None = None,
    replace: bool = False,
    drop_remainder: bool = True,
    has_aux: bool = False,
    eval_fn: Callable[..., Any] | None = None,
    eval_data: PyTree = None,
    eval_every: int | None = None,
    early_stopping: EarlyStopping | None = None,
    skip_nonfinite: bool = True,
    skip_spikes: SpikeSkip | None = None,
    microbatches: int | Microbatches = 1,
    compute_dtype: Any = None,
    loss_scale: str | float | DynamicLossScale | None = None,
    log_every: int = 1,
    chunk_size: int | None = None,
    unroll: int | None = None,
    progress: bool | None = None,
    callbacks: Sequence[Callback] | None = None,
    checkpoint_dir: str | os.PathLike | None = None,
    resume: bool | str = False,
    overwrite: bool = False,
    checkpointing: Checkpointing | None = None,
    mesh: jax.sharding.Mesh | None = None,
    param_sharding: Any = None,
) -> FitResult:
    r"""Train with minibatch gradient steps in one compiled loop.

    $$
    \theta_{t+1} = \theta_t + \mathrm{update}\Big(\tfrac{1}{|B_t|}
    \textstyle\sum_{i \in B_t} \nabla_\theta \ell(\theta_t; x_i)\Big)
    $$

    Each step samples a batch on the device, differentiates ``loss_fn``, applies
    the optimizer (passing ``value=loss``) and records metrics; the steps run
    in compiled chunks (one compilation for all chunks, whatever their sizes).
    Between chunks only, the driver updates the progress bar, calls the
    ``callbacks``, writes a checkpoint, and handles Ctrl-C (returning what was
    finished). The next chunk is dispatched before the previous one's numbers
    are read, so the device never waits for the host.

    Sampling: ``shuffle=True`` draws each epoch as a fresh exact permutation
    (without replacement; the ``n % batch_size`` examples left over are not used
    that epoch), ``shuffle=False`` walks the data in order, ``replace=True``
    samples uniformly with replacement. ``batch_size=None`` is full batch and
    ``batch_size=1`` is per-example SGD. The same ``key`` gives bit-identical
    results, however the run is chunked or resumed, and calling ``fit`` again
    with the same ``loss_fn``, ``optimizer`` and ``eval_fn`` objects and data of
    the same shapes reuses the compiled loop.

    Models with state (batch-norm statistics, flax ``batch_stats``,
    ``eqx.nn.State``) pass it as ``state``: it is carried through the loop,
    never differentiated, checkpointed, and returned as `FitResult` ``state``.
    ``step_key=True`` hands ``loss_fn`` a fresh key every step (for dropout):
    ``fold_in`` of the run's ``key`` and the step number.

    Args:
        loss_fn: ``loss_fn(params, batch) -> loss``, a real scalar; with
            ``state``: ``loss_fn(params, state, batch) -> (loss, new_state)``.
            With ``has_aux`` the loss becomes ``(loss, aux)`` (with state:
            ``(loss, (new_state, aux))``), aux a dict of scalar metrics. With
            ``step_key`` a key is the last argument:
            ``loss_fn(params, [state,] batch, key)``.
        params: initial parameters: a pytree of floating-point arrays.
        optimizer: any optax gradient transformation.
        data: a pytree of arrays sharing a leading (examples) axis, or ``None``
            for objectives without data (``loss_fn(params, None)``).
        state: the model's initial non-trainable state (a pytree of arrays of
            any dtype), or ``None`` for a model without one.
        steps: number of steps; exactly one of ``steps`` and ``epochs``.
        epochs: number of epochs of ``len(data) // batch_size`` steps.
        batch_size: examples per step (``None``: all of them).
        key: PRNG key for shuffling and step keys (default ``jax.random.key(0)``).
        step_key: pass ``loss_fn`` a key per step (see above); evaluation gets
            none.
        shuffle: permute each epoch (see above).
        replace: sample with replacement instead.
        drop_remainder: a stream's shorter last batch (of each epoch) is
            dropped; ``False`` raises on it instead. In-memory data always
            uses ``len(data) // batch_size`` full batches an epoch.
        has_aux: ``loss_fn`` returns aux metrics (see ``loss_fn``).
        eval_fn: ``eval_fn(params, eval_data)`` (``eval_fn(params, state,
            eval_data)`` with ``state``), run on the device at every multiple
            of ``eval_every`` steps. **Return a dict to name the metrics**:
            ``{"accuracy": acc}`` is recorded as ``eval_accuracy``; a bare
            scalar is recorded as ``eval_loss``.
        eval_data: the data for ``eval_fn``.
        eval_every: steps between evaluations (default: once per epoch); any
            value, independent of ``log_every``.
        early_stopping: an `EarlyStopping`.
        skip_nonfinite: skip (and count) steps whose loss or gradient is not
            finite, keeping the parameters, optimizer and model state, so a run
            never ends with NaN parameters because of one bad batch. A run in
            which every step was skipped warns.
        skip_spikes: a `SpikeSkip`: skip (and count in ``skipped``) steps whose
            loss (or gradient norm) spikes above the recent ones, decided
            inside the compiled loop; ``None``: none are.
        microbatches: split each step's batch into this many equal
            microbatches and accumulate their gradients inside the step, so a
            batch that does not fit in memory trains like one that does (a
            mean loss gives the same step to float rounding); a
            `Microbatches` names a per-example weight for weighted losses,
            normalised by the whole batch's total weight.
        compute_dtype: compute the loss and gradients with the parameters and
            floating data cast to this dtype (``jnp.bfloat16``,
            ``jnp.float16``); the parameters and optimizer state stay in their
            own dtype (float32). ``None``: no cast.
        loss_scale: for float16: ``"dynamic"`` (or a `DynamicLossScale`)
            scales the loss, unscales the gradients, skips and counts a step
            whose gradient is not finite and halves the scale, and grows it
            after a run of finite steps; a number is a fixed scale. The scale
            is a history column (``loss_scale``) and is checkpointed.
        log_every: steps per history row; the last row holds the remaining
            steps when ``log_every`` does not divide the number of steps.
        chunk_size: steps per compiled chunk (a multiple of ``log_every``).
            Default: paced by measured time, starting at one history row and
            doubling up to about one second of work per chunk, so callbacks,
            the progress bar and Ctrl-C are served about once a second.
        unroll: how the steps are compiled. ``0``: a loop (``lax.while_loop``)
            per chunk; ``n >= 1``: calls of ``n`` steps written out one after
            the other (no loop in the program), driven from the host. On CPU
            XLA runs convolutions inside loops an order of magnitude slower,
            so ``None`` (the default) unrolls (8 steps a call) when the loss
            computes a convolution on CPU, and loops otherwise. Both forms
            give the same numbers to float rounding (each bit-identical
            across chunkings and resumes); unrolling costs compile time that
            grows with ``n``.
        progress: show a tqdm bar (default: when stderr is a terminal).
        callbacks: `Callback` objects (e.g. `CSVLogger`): ``on_chunk`` with each
            chunk's new rows, then ``on_end(result)`` and ``close()``. A
            callback that raises stops the run: the result holds the finished
            work and names the error in ``error``, and a ``RuntimeWarning`` is
            issued (Ctrl-C inside a callback is an interruption).
        checkpoint_dir: save the whole run state there (atomically, without
            pickle) after every chunk when ``chunk_size`` is given, else at
            most once a minute; and always when the run ends or is
            interrupted (Ctrl-C or a preemption notice of ``jax.distributed``,
            checked between chunks), after the callbacks saw the last chunk.
        resume: continue from the checkpoint in ``checkpoint_dir``; the result
            is bit-identical to an uninterrupted run. The settings, the history
            columns (``eval_fn``, aux metrics) and the model must be those of
            the checkpoint, and the run at least as long.
        overwrite: start over even though ``checkpoint_dir`` holds a
            checkpoint (replaced at the first save). Without ``resume`` or
            ``overwrite``, an existing checkpoint is an error, never silently
            overwritten.
        checkpointing: a `Checkpointing` (``None``: its defaults): the backend
            (one ``.npz`` file, or Orbax for sharded and multi-process runs),
            how many checkpoints to keep (the latest and the best) and whether
            to write them in the background while training goes on.
        mesh: a `jax.sharding.Mesh` with an axis named ``"data"`` for data
            parallelism (or ``"model"``, or both): batches (and the data, when
            its size divides) are split over ``"data"``, and XLA inserts the
            gradient all-reduce; ``batch_size`` must be divisible by the size
            of ``"data"``. Parameters,
            optimizer and model state are replicated, unless the mesh has an
            axis ``"model"`` (FSDP): then each leaf of at least 2**14 elements
            is split over it along its largest dimension divisible by its size
            (flax's partitioning metadata and ``param_sharding`` first), the
            optimizer state like the parameter it mirrors, and the state stays
            split between chunks. See the multi-device guide.
        param_sharding: how to split each parameter over ``mesh`` (overrides
            the default rule of ``mesh``): a function ``(path, leaf) ->
            PartitionSpec | None`` (``path`` as in
            ``jax.tree_util.tree_flatten_with_path``; ``None``: the default for
            that leaf), or a pytree of ``PartitionSpec`` with the structure of
            ``params`` (or a prefix of it; ``None`` for the default). Each
            named axis must be in the mesh and its size divide the dimension.

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
    options = RunOptions.of(locals())
    validate.check_callable("loss_fn", loss_fn)
    validate.check_transform("optimizer", optimizer)
    params = checks.check_params("params", params)
    plan = plan_run(loss_fn, params, data, options)
    engine = FitEngine(plan, optimizer)
    return pipeline.run(plan, engine, lambda outcome: fit_result(plan, outcome), "fit")
