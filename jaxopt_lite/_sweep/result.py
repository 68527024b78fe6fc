"""`SweepResult`: the stacked outcome of a `sweep` and its ranking helpers."""

from __future__ import annotations

import warnings
from typing import Any, NamedTuple

import numpy as np

from jaxopt_lite._core.tree_math import PyTree
from jaxopt_lite._host.pipeline import Outcome
from jaxopt_lite._sweep import ranking


class SweepResult(NamedTuple):
    """What `sweep` returns: every run's final state and history.

    Runs are indexed ``[configuration, seed]``; configuration ``i`` has the
    hyper-parameters ``{name: values[i] for name, values in hyperparams.items()}``.

    Attributes:
        hyperparams: the configuration table, ``name -> np.ndarray [configs]``.
        seeds: seeds per configuration.
        final_loss: ``[configs, seeds]``, the mean loss of the last history row
            (one minibatch's loss when ``log_every=1``: noisy).
        best_loss: ``[configs, seeds]``, the smallest history-row loss (rows in
            which every step was skipped as non-finite are ignored; NaN when all
            were).
        history: NumPy arrays ``[configs, seeds, rows]``, one row per
            ``log_every`` steps, with the same entries as `FitResult.history`
            (``step``, ``loss``, ``grad_norm``, ``skipped``, ``learning_rate``
            when the optimizer exposes it, aux metrics).
        params: the final parameters, each leaf with leading axes
            ``[configs, seeds]``.
        opt_state: the final optimizer states, leading axes ``[configs, seeds]``.
        step: the most steps a run took: the ``steps`` asked for, unless
            every run stopped early or Ctrl-C interrupted the sweep (a run's
            own steps: the last entry of its ``history["step"]``).
        score: ``[configs, seeds]``, what `best` ranks by (see ``ranked_by``);
            NaN where it is not finite.
        ranked_by: how ``score`` was computed: the best value of the
            early-stopping monitor at its checks (with ``early_stopping``),
            else the mean training loss of the last tenth of the history rows.
        score_mode: ``"min"`` or ``"max"``: which end of ``score`` is best.
        score_name: a short name of ``score`` (``"tail_loss"``, or
            ``"best_<monitor>"`` with early stopping), its column in `to_rows`
            and `table`.
        stopped_early: ``[configs, seeds]`` bools (``None`` without early
            stopping).
        best_step: ``[configs, seeds]``, the step of each run's best check
            (``None`` without early stopping).
        skipped: ``[configs, seeds]``, the steps each run skipped because their
            loss or gradient was not finite (0 with ``skip_nonfinite=False``,
            which applies them). A ``RuntimeWarning`` names the runs that
            skipped every step.
        interrupted: Ctrl-C or a preemption ended the sweep; every run holds
            the work of the chunks finished until then.
        preempted: a preemption notice of ``jax.distributed`` ended the sweep,
            after its checkpoint was saved (``interrupted`` is ``True`` too).
        error: ``None``, or ``"<Callback>.<method> raised <Error>: <message>"``
            when a callback raised: the sweep stopped there (as `fit` does).
        state: the final model states (``None`` without ``state=``), leading
            axes ``[configs, seeds]``; those of the best check when early
            stopping restores the parameters.

    Rows after a run stopped early hold NaN (and ``-1`` in the integer
    columns ``step``, ``skipped``, ``eval_step``).

    Example:
        >>> import jax.numpy as jnp, jaxopt_lite as jol
        >>> result = jol.sweep(lambda learning_rate: jol.sgd(learning_rate),
        ...                    {"learning_rate": [0.01, 0.1, 0.5]},
        ...                    lambda p, _: jnp.sum(p ** 2), jnp.ones(2), steps=10)
        >>> result.best()
        ({'learning_rate': 0.5}, 2)
        >>> result.final_loss.shape
        (3, 1)
    """

    hyperparams: dict[str, np.ndarray]
    seeds: int
    final_loss: np.ndarray
    best_loss: np.ndarray
    history: dict[str, np.ndarray]
    params: PyTree
    opt_state: PyTree
    step: int
    score: np.ndarray | None = None
    ranked_by: str = "final_loss"
    score_mode: str = "min"
    score_name: str = "score"
    stopped_early: np.ndarray | None = None
    best_step: np.ndarray | None = None
    skipped: np.ndarray | None = None
    interrupted: bool = False
    error: str | None = None
    state: PyTree = None
    preempted: bool = False

    @property
    def num_configs(self) -> int:
        """The number of configurations."""
        return len(next(iter(self.hyperparams.values())))

    def config(self, index: int) -> dict[str, Any]:
        """Configuration ``index`` as a dict of Python numbers."""
        return {name: values[index].item() for name, values in self.hyperparams.items()}

    def best(
        self, by: str = "score", mode: str | None = None
    ) -> tuple[dict[str, Any], int]:
        """The best configuration, by a value averaged over seeds.

        Args:
            by: ``"score"`` ranks by `score` (see `ranked_by`; the default),
                ``"final"`` by `final_loss`, ``"best"`` by `best_loss`, or the
                name of a history column (``"eval_accuracy"`` or
                ``"accuracy"``) by each run's last finite value in it. A
                configuration with a non-finite value in any seed ranks last
                and is never the best; ties go to the lower mean final loss,
                then to the lower index.
            mode: for a history column, ``"min"`` or ``"max"``; by default
                inferred from its name (``loss``, ``error``: min; ``accuracy``,
                ``auc``: max).

        Returns:
            ``(configuration, index)``: the configuration as a dict of Python
            numbers and its index along the configurations axis.

        Raises:
            ValueError: no configuration has a finite value in every seed.
        """
        index = int(ranking.order(self, by, mode)[0])
        values, name, _ = ranking.per_run(self, by, mode)
        if not np.isfinite(values[index]).all():
            raise ValueError(
                f"no configuration has a finite {name} in every seed, so none "
                "can be ranked best: every one diverged or skipped its steps as "
                "non-finite (see SweepResult.skipped)."
            )
        return self.config(index), index

    def to_rows(self, by: str = "score", mode: str | None = None) -> list[dict]:
        """One dict per configuration: its hyper-parameters, the value `best`
        ranks ``by`` (named ``score_name`` for the default), ``final_loss``
        and ``best_loss`` (means over seeds, with ``*_std`` over seeds when
        ``seeds > 1``), and its ``rank`` (1 is the best; ``None`` without a
        finite value in every seed)."""
        return ranking.rows(self, by, mode)

    def table(self, by: str = "score", mode: str | None = None) -> str:
        """The configurations as an aligned text table: hyper-parameters, the
        ranking value, the losses; the best one (as `best` ranks) marked with
        ``*``."""
        return ranking.table(self, by, mode)

    def __str__(self) -> str:
        return self.table()


def _warn_nonfinite(result: SweepResult, steps: np.ndarray, nonfinite: np.ndarray,
                    guarded: bool) -> None:  # fmt: skip
    """A ``RuntimeWarning`` naming the runs in which every step was non-finite."""
    every = (steps > 0) & (nonfinite == steps)
    if not every.any():
        return
    named = []
    for i in np.flatnonzero(every.any(axis=1)):
        seeds = np.flatnonzero(every[i])
        which = (
            "every seed"
            if len(seeds) == result.seeds
            else f"seed{'s' * (len(seeds) > 1)} {', '.join(map(str, seeds))}"
        )
        named.append(f"{result.config(int(i))} ({which})")
    shown = "; ".join(named[:10])
    if len(named) > 10:
        shown += f"; and {len(named) - 10} more configurations"
    what = (
        "was skipped: their parameters are the initial ones"
        if guarded
        else "was applied (skip_nonfinite=False): their parameters are not finite"
    )
    warnings.warn(
        f"sweep: in {int(every.sum())} of {every.size} runs every step had a "
        f"non-finite loss or gradient and {what}. They rank last. Runs: {shown}. "
        "Check loss_fn, the data and these hyper-parameters "
        "(SweepResult.skipped counts the skipped steps of every run).",
        RuntimeWarning,
        stacklevel=4,
    )


def assemble(
    table: dict[str, np.ndarray],
    seeds: int,
    stop: Any,
    guarded: bool,
    state: Any,
    outcome: Outcome,
) -> SweepResult:
    """The `SweepResult` of a sweep's final states (leading axes ``[configs,
    seeds]``, padding runs dropped, ``step`` per run) and the pipeline's
    outcome (its history ``[configs, seeds, rows]``)."""
    runs = (len(next(iter(table.values()))), seeds)
    columns = outcome.history
    count = (columns["step"] >= 0).sum(-1)
    interrupted = outcome.interrupted
    losses = columns["loss"]
    if losses.shape[-1]:
        at = np.maximum(count - 1, 0)[..., None]
        final = np.take_along_axis(losses, at, -1)[..., 0]
        final = np.where(count > 0, final, np.nan)
        best = np.fmin.reduce(losses, axis=-1)
    else:
        final = best = np.full(runs, np.nan, losses.dtype)
    params, model_state = state.params, state.model_state
    stopped = best_step = None
    if stop is None:
        tail = max(1, -(-losses.shape[-1] // 10))
        score = losses[..., -tail:].mean(axis=-1) if losses.shape[-1] else final
        ranked_by = f"the mean loss of the last {tail} history rows"
        name = "tail_loss"
        mode = "min"
    else:
        value = np.asarray(state.stop.best_value)
        score = value if stop.mode == "min" else -value
        ranked_by = f"the best {stop.monitor} at the early-stopping checks"
        name = f"best_{stop.monitor}"
        mode = stop.mode
        stopped = np.asarray(state.stop.stopped)
        best_step = np.asarray(state.stop.best_step)
        if stop.restore_best:
            params, model_state = state.stop.best
    steps, nonfinite = np.asarray(state.step), np.asarray(state.skipped)
    result = SweepResult(
        hyperparams=table,
        seeds=seeds,
        final_loss=final,
        best_loss=best,
        history=columns,
        params=params,
        opt_state=state.opt_state,
        step=int(steps.max()),
        score=np.where(np.isfinite(score), score, np.nan),
        ranked_by=ranked_by,
        score_mode=mode,
        score_name=name,
        stopped_early=stopped,
        best_step=best_step,
        skipped=nonfinite if guarded else np.zeros_like(nonfinite),
        interrupted=interrupted,
        error=outcome.error,
        state=model_state,
        preempted=outcome.preempted,
    )
    _warn_nonfinite(result, steps, nonfinite, guarded)
    return result
