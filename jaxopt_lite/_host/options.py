"""The options of a training run, declared once, and `EarlyStopping`.

`fit` and `sweep` take the same keyword options for everything a training
run is made of (its length and sampling, model state, evaluation, early
stopping, guards, reporting, checkpoints, devices). `RunOptions` declares
them once, with their defaults: `fit`'s signature lists them (for the reader
and the docs; a test checks that the names and defaults agree) and `sweep`
takes them as ``**options`` (`RunOptions.given`), so the two cannot drift
apart. The planner (`plan.plan_run`) checks every one of them, once.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any, NamedTuple

import jax.numpy as jnp

from jaxopt_lite._core import validate
from jaxopt_lite._loop.gradient import DynamicLossScale, Microbatches, Precision
from jaxopt_lite._loop.spikes import SpikeSkip
from jaxopt_lite._loop.stopping import StopConfig


class RunOptions(NamedTuple):
    """The keyword arguments of `fit` and `sweep` as given (unchecked); see
    `fit` for what each means."""

    state: Any = None
    steps: Any = None
    epochs: Any = None
    batch_size: Any = None
    key: Any = None
    step_key: Any = False
    shuffle: Any = None
    replace: Any = False
    drop_remainder: Any = True
    has_aux: Any = False
    eval_fn: Any = None
    eval_data: Any = None
    eval_every: Any = None
    early_stopping: Any = None
    skip_nonfinite: Any = True
    skip_spikes: Any = None
    microbatches: Any = 1
    compute_dtype: Any = None
    loss_scale: Any = None
    log_every: Any = 1
    chunk_size: Any = None
    unroll: Any = None
    progress: Any = None
    callbacks: Any = None
    checkpoint_dir: Any = None
    resume: Any = False
    overwrite: Any = False
    checkpointing: Any = None
    mesh: Any = None
    param_sharding: Any = None

    @classmethod
    def of(cls, arguments: dict[str, Any]) -> RunOptions:
        """The options among a call's ``arguments`` (e.g. its ``locals()``)."""
        return cls(**{k: arguments[k] for k in cls._fields})

    @classmethod
    def given(cls, who: str, options: dict[str, Any]) -> RunOptions:
        """The options passed as keywords to ``who``; an unknown name is a
        ``TypeError`` that lists the known ones."""
        unknown = sorted(set(options) - set(cls._fields))
        if unknown:
            raise TypeError(
                f"{who}() got unexpected keyword argument(s) {unknown}; its "
                f"options are fit's: {', '.join(cls._fields)}."
            )
        return cls(**options)


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
        mode: ``"min"``, ``"max"``, or ``None`` (the default): inferred from
            the metric's name as Keras does: losses and errors (``loss``,
            ``mse``, ``error``, ...) are minimized, accuracies and scores
            (``accuracy``, ``auc``, ``f1``, ...) maximized; another name
            needs an explicit mode.
        restore_best: return the parameters (and model state) of the best
            check instead of the last ones.

    Example:
        >>> import jaxopt_lite as jol
        >>> jol.EarlyStopping(patience=3, monitor="accuracy").resolved_mode()
        'max'
    """

    patience: int = 5
    min_delta: float = 0.0
    monitor: str = "loss"
    mode: str | None = None
    restore_best: bool = True

    def resolved_mode(self) -> str:
        """``mode``, or the direction inferred from ``monitor`` (see ``mode``);
        ``ValueError`` when neither says it."""
        if self.mode is not None:
            return self.mode
        found = infer_mode(str(self.monitor))
        if found is None:
            raise ValueError(
                f"early_stopping.monitor={self.monitor!r}: cannot tell whether this "
                "metric should go down or up; pass mode='min' or mode='max'."
            )
        return found


_LOWER = ("loss", "error", "err", "mse", "mae", "rmse", "mape", "nll", "perplexity")
_LOWER += ("ppl", "wer", "cer", "kl", "kld", "regret", "distance", "cost", "risk")
_HIGHER = ("accuracy", "acc", "auc", "precision", "recall", "f1", "iou", "dice")
_HIGHER += ("r2", "bleu", "rouge", "map", "ndcg", "mrr", "hit_rate", "psnr", "ssim")
_HIGHER += ("reward", "return", "score", "top1", "top5", "likelihood")


def infer_mode(monitor: str) -> str | None:
    """``"min"`` or ``"max"`` for a metric named like a loss or a score
    (``eval_`` prefix and case ignored; the last ``_``-separated word that
    names one decides), else ``None``."""
    words = monitor.lower().removeprefix("eval_").split("_")
    for word in reversed(words):
        if word in _LOWER or word.endswith("loss"):
            return "min"
        if word in _HIGHER or word.endswith("accuracy"):
            return "max"
    return None


def _check_fields(stop: EarlyStopping) -> None:
    validate.check_int("early_stopping.patience", stop.patience)
    delta = stop.min_delta
    if isinstance(delta, bool) or not isinstance(delta, numbers.Real):
        raise TypeError(f"early_stopping.min_delta must be a number, got {delta!r}.")
    if not (math.isfinite(float(delta)) and float(delta) >= 0):
        raise ValueError(
            f"early_stopping.min_delta={delta!r} is not allowed: it must be a "
            "finite number >= 0."
        )
    if not isinstance(stop.monitor, str) or not stop.monitor:
        raise TypeError(
            "early_stopping.monitor must be 'loss' or the name of an eval_fn "
            f"metric (a str), got {stop.monitor!r}."
        )
    if stop.mode not in (None, "min", "max"):
        raise ValueError(
            f"early_stopping.mode={stop.mode!r}: use 'min', 'max' or None (inferred "
            "from the monitored metric's name)."
        )
    validate.check_bool("early_stopping.restore_best", stop.restore_best)


def check_early_stopping(
    early_stopping: Any,
    eval_names: Sequence[str],
    steps_per_epoch: int | None,
    eval_every: int | None,
) -> StopConfig | None:
    """Validate ``early_stopping``; resolve its monitor, mode and period."""
    if early_stopping is None:
        return None
    if not isinstance(early_stopping, EarlyStopping):
        raise TypeError(
            f"early_stopping must be an EarlyStopping, got {early_stopping!r}."
        )
    stop = early_stopping
    _check_fields(stop)
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
        mode=stop.resolved_mode(),
        min_delta=float(stop.min_delta),
        patience=stop.patience,
        restore_best=stop.restore_best,
    )


def check_spikes(skip_spikes: Any) -> SpikeSkip | None:
    """``None`` or a valid `SpikeSkip`."""
    if skip_spikes is None:
        return None
    if not isinstance(skip_spikes, SpikeSkip):
        raise TypeError(
            f"skip_spikes must be a jaxopt_lite.SpikeSkip or None, got {skip_spikes!r}."
        )
    validate.check_count("skip_spikes.window", skip_spikes.window, minimum=2)
    validate.check_positive("skip_spikes.threshold", skip_spikes.threshold)
    validate.check_choice(
        "skip_spikes.metric", skip_spikes.metric, ("loss", "grad_norm")
    )
    validate.check_count("skip_spikes.max_consecutive", skip_spikes.max_consecutive)
    return skip_spikes._replace(threshold=float(skip_spikes.threshold))


def check_microbatches(
    microbatches: Any, batch_size: int, has_data: bool
) -> Microbatches | None:
    """``microbatches`` (an int or a `Microbatches`) as a `Microbatches`, or
    ``None`` for one; the batch size must be a multiple of the count."""
    rule = microbatches if isinstance(microbatches, Microbatches) else None
    count: Any = microbatches if rule is None else rule.count
    name = "microbatches" if rule is None else "microbatches.count"
    validate.check_count(name, count)
    if rule is not None and not (
        rule.weight is None or isinstance(rule.weight, str) or callable(rule.weight)
    ):
        raise TypeError(
            "microbatches.weight must be None, the name of a batch leaf or a "
            f"function of the batch, got {rule.weight!r}."
        )
    if count == 1:
        return None
    if not has_data:
        raise ValueError(f"{name}={count} needs data to split; data is None.")
    if batch_size % count:
        raise ValueError(
            f"{name}={count} must divide the batch size ({batch_size}): each "
            "step's batch is split into that many equal microbatches."
        )
    return rule or Microbatches(count)


def check_precision(compute_dtype: Any, loss_scale: Any) -> Precision | None:
    """The mixed-precision settings: a floating ``compute_dtype`` (or
    ``None``) and a loss scale (``None``, ``"dynamic"``, a number > 0 or a
    `DynamicLossScale`)."""
    dtype = validate.check_dtype("compute_dtype", compute_dtype)
    if dtype is not None and not jnp.issubdtype(dtype, jnp.floating):
        raise ValueError(
            f"compute_dtype={compute_dtype!r} is not a floating dtype; use "
            "jnp.bfloat16, jnp.float16 or jnp.float32."
        )
    if isinstance(loss_scale, str):
        if loss_scale != "dynamic":
            raise ValueError(
                f"loss_scale={loss_scale!r}: use 'dynamic', a number > 0, a "
                "jaxopt_lite.DynamicLossScale or None."
            )
        loss_scale = DynamicLossScale()
    elif isinstance(loss_scale, DynamicLossScale):
        validate.check_positive("loss_scale.initial", loss_scale.initial)
        validate.check_positive("loss_scale.minimum", loss_scale.minimum)
        validate.check_count("loss_scale.growth_interval", loss_scale.growth_interval)
        if not loss_scale.factor > 1:
            raise ValueError(
                f"loss_scale.factor={loss_scale.factor!r} is not allowed: it must "
                "be > 1."
            )
    elif loss_scale is not None:
        validate.check_positive("loss_scale", loss_scale)
        loss_scale = float(loss_scale)
    if dtype is None and loss_scale is None:
        return None
    return Precision(dtype, loss_scale)


# Steps of one call of the unrolled form, chosen automatically: compile time
# grows with it, and past a few steps the host's dispatch cost is amortized.
AUTO_UNROLL = 8


def check_unroll(unroll: Any, platform: str, convolves: Any) -> int:
    """The steps of one unrolled call (0: the loop form). ``None`` chooses:
    the unrolled form on CPU when the loss computes convolutions
    (``convolves()``, called only then), the loop form otherwise."""
    if unroll is None:
        return AUTO_UNROLL if platform == "cpu" and convolves() else 0
    validate.check_count("unroll", unroll, minimum=0)
    return int(unroll)
