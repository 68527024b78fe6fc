"""Checks of a run's settings for `fit` and `sweep`: its length (data, batch
size, steps or epochs, log windows), evaluation, and the names of its history
columns."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax

from jaxopt_lite._core import validate
from jaxopt_lite._host import checks
from jaxopt_lite._loop.loss import eval_names

PyTree = Any


class RunLength(NamedTuple):
    """How a minibatch run is laid out, from `run_length`."""

    data: PyTree  # as JAX arrays (None without data)
    num_examples: int
    batch_size: int
    steps_per_epoch: int
    total_steps: int


def run_length(
    data: PyTree,
    batch_size: Any,
    steps: Any,
    epochs: Any,
    log_every: Any,
    parts: Callable[[int], int] = lambda n: 1,
) -> RunLength:
    """Check ``data``, ``batch_size``, ``steps``/``epochs`` and ``log_every``
    together, as `fit` and `sweep` take them. ``parts(n)``: how many equal
    parts of ``n`` examples the data has (one per process of a multi-process
    run, each holding its own)."""
    if data is None:
        num_examples = 1
        if batch_size not in (None, 1):
            raise ValueError(f"batch_size={batch_size!r} needs data; data is None.")
        batch_size = 1
    else:
        num_examples = checks.leading_size("data", data)
        num_examples *= parts(num_examples)
        data = checks.check_data("data", data)
        validate.check_int("batch_size", batch_size, optional=True)
        if batch_size is None:
            batch_size = num_examples
        elif batch_size > num_examples:
            raise ValueError(
                f"batch_size={batch_size} is larger than the {num_examples} "
                "examples in data."
            )
    steps_per_epoch = num_examples // batch_size
    if (steps is None) == (epochs is None):
        raise ValueError(
            "give exactly one of steps and epochs "
            f"(got steps={steps!r}, epochs={epochs!r})."
        )
    validate.check_count("steps", steps, optional=True)
    validate.check_count("epochs", epochs, optional=True)
    total_steps = steps if steps is not None else epochs * steps_per_epoch
    if total_steps > validate.INT32_MAX:
        raise ValueError(
            f"epochs={epochs} makes {total_steps} steps ({steps_per_epoch} per "
            f"epoch), more than the {validate.INT32_MAX} a run can count."
        )
    validate.check_count("log_every", log_every)
    return RunLength(data, num_examples, batch_size, steps_per_epoch, total_steps)


def check_eval_fn(
    eval_fn: Callable,
    args: tuple,
    eval_data: PyTree,
    argnames: Sequence[str] = ("params", "eval_data"),
) -> tuple[PyTree, list[str]]:
    """Check ``eval_data`` (converted to JAX arrays) and trace
    ``eval_fn(*args, eval_data)`` abstractly: it must take ``argnames`` and
    return a scalar or a dict of scalars. Returns ``(eval_data, history names
    of the metrics)``."""
    if eval_data is not None:
        eval_data = checks.check_data("eval_data", eval_data)
    checks.check_arity("eval_fn", eval_fn, argnames)
    out = checks.shapes(eval_fn, (*args, eval_data))
    check_metric_keys("eval_fn's", out)
    shapes = eval_names(out)
    if not all(
        isinstance(s, jax.ShapeDtypeStruct) and s.shape == () for s in shapes.values()
    ):
        raise TypeError(
            f"eval_fn must return a scalar or a dict of scalars; it returned "
            f"{shapes!r}."
        )
    return eval_data, list(shapes)


BUILT_IN_COLUMNS = (
    "step",
    "loss",
    "grad_norm",
    "skipped",
    "learning_rate",
    "eval_step",
)


def check_metric_keys(name: str, metrics: Any) -> None:
    """A dict of metrics (aux or eval) must have string keys: they name
    history columns."""
    if isinstance(metrics, dict):
        bad = [k for k in metrics if not isinstance(k, str)]
        if bad:
            raise TypeError(f"{name} metric names must be strings; got {bad!r}.")


def check_metric_names(aux_names: Sequence[str], eval_names: Sequence[str]) -> None:
    """Aux metrics (``has_aux``) and eval metrics (recorded as
    ``eval_<name>``) become history columns: no name may clash with another
    column."""
    clash = sorted(set(aux_names) & {*BUILT_IN_COLUMNS, *eval_names})
    if clash:
        raise ValueError(
            f"loss_fn's aux metrics {clash} would overwrite history columns of "
            f"the same names (the history has {', '.join(BUILT_IN_COLUMNS)} and "
            "the eval_fn metrics as eval_<name>); rename them."
        )
    clash = sorted(set(eval_names) & set(BUILT_IN_COLUMNS))
    if clash:
        raise ValueError(
            f"eval_fn's metrics {[c.removeprefix('eval_') for c in clash]} would "
            f"be recorded as {clash}, a column the history has already; rename "
            "them."
        )
