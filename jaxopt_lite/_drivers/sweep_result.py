"""`SweepResult`: the stacked outcome of a `sweep` and its ranking helpers."""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from jaxopt_lite._core.tree import PyTree


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
        step: the steps of the run (runs stopped early took fewer).
        score: ``[configs, seeds]``, what `best` ranks by (see ``ranked_by``).
        ranked_by: how ``score`` was computed: the best value of the
            early-stopping monitor at its checks (with ``early_stopping``),
            else the mean training loss of the last tenth of the history rows.
        score_mode: ``"min"`` or ``"max"``: which end of ``score`` is best.
        stopped_early: ``[configs, seeds]`` bools (``None`` without early
            stopping).
        best_step: ``[configs, seeds]``, the step of each run's best check
            (``None`` without early stopping).

    With early stopping, rows after a run stopped hold NaN (and ``-1`` in the
    integer columns ``step``, ``skipped``, ``eval_step``).

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
    stopped_early: np.ndarray | None = None
    best_step: np.ndarray | None = None

    @property
    def num_configs(self) -> int:
        """The number of configurations."""
        return len(next(iter(self.hyperparams.values())))

    def config(self, index: int) -> dict[str, Any]:
        """Configuration ``index`` as a dict of Python numbers."""
        return {name: values[index].item() for name, values in self.hyperparams.items()}

    def best(self, by: str = "score") -> tuple[dict[str, Any], int]:
        """The configuration with the best ``score`` (or loss) averaged over
        seeds.

        Args:
            by: ``"score"`` ranks by `score` (see `ranked_by`; the default),
                ``"final"`` by `final_loss`, ``"best"`` by `best_loss`.
                A configuration with a non-finite value in any seed ranks last.

        Returns:
            ``(configuration, index)``: the configuration as a dict of Python
            numbers and its index along the configurations axis.
        """
        mean = self._mean(by)
        if by == "score" and self.score_mode == "max":
            mean = -mean
        index = int(np.argmin(np.where(np.isfinite(mean), mean, np.inf)))
        return self.config(index), index

    def _mean(self, by: str) -> np.ndarray:
        if by == "final":
            return self.final_loss.mean(axis=1)
        if by == "best":
            return self.best_loss.mean(axis=1)
        if by == "score":
            score = self.final_loss if self.score is None else self.score
            return score.mean(axis=1)
        raise ValueError(f"by={by!r} is not allowed: use 'score', 'final' or 'best'.")

    def to_rows(self) -> list[dict[str, Any]]:
        """One dict per configuration: its hyper-parameters, then
        ``final_loss`` and ``best_loss`` averaged over seeds (with their
        standard deviations over seeds, ``*_std``, when ``seeds > 1``)."""
        rows = []
        for i in range(self.num_configs):
            row = self.config(i)
            for name, losses in [
                ("final_loss", self.final_loss),
                ("best_loss", self.best_loss),
            ]:
                row[name] = float(losses[i].mean())
                if self.seeds > 1:
                    row[f"{name}_std"] = float(losses[i].std())
            rows.append(row)
        return rows

    def table(self) -> str:
        """The configurations and their losses as an aligned text table; the
        best configuration (by final loss) is marked with ``*``."""
        rows = self.to_rows()
        best = self.best()[1]
        names = list(self.hyperparams)
        header = [*names, "final_loss", "best_loss", ""]

        def show(value: Any) -> str:
            return f"{value:.4g}" if isinstance(value, float) else str(value)

        def loss(row: dict[str, Any], name: str) -> str:
            text = show(row[name])
            return f"{text} ± {show(row[f'{name}_std'])}" if self.seeds > 1 else text

        body = [
            [
                *(show(row[n]) for n in names),
                loss(row, "final_loss"),
                loss(row, "best_loss"),
                "*" if i == best else "",
            ]
            for i, row in enumerate(rows)
        ]
        widths = [max(len(r[j]) for r in [header, *body]) for j in range(len(header))]
        lines = [
            "  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)).rstrip()
            for r in [header, *body]
        ]
        title = (
            f"sweep: {self.num_configs} configurations x {self.seeds} seeds, "
            f"{self.step} steps"
        )
        return "\n".join([title, *lines, f"* best by {self.ranked_by}"])

    def __str__(self) -> str:
        return self.table()


def _prefix(columns: dict[str, np.ndarray], ran: np.ndarray) -> dict[str, np.ndarray]:
    """The rows that ran (a prefix per run), NaN or -1 after a run's end."""
    size = int(ran.sum(-1).max()) if ran.size else 0
    ran = ran[..., :size]
    out = {}
    for name, values in columns.items():
        values = values[..., :size]
        fill = np.nan if np.issubdtype(values.dtype, np.floating) else -1
        out[name] = np.where(ran, values, np.asarray(fill, values.dtype))
    return out


def assemble(
    table: dict[str, np.ndarray], seeds: int, steps: int, stop: Any, state, rows
) -> SweepResult:
    """The `SweepResult` of a sweep's final states and chunk rows (NumPy rows
    and JAX states, leading axes ``[configs, seeds]``)."""
    history = _prefix(rows.train, rows.train_ran)
    history.update(_prefix(rows.evals, rows.evals_ran))
    losses = history["loss"]
    counts = rows.train_ran.sum(-1)
    last = np.take_along_axis(losses, np.maximum(counts - 1, 0)[..., None], -1)
    params = state.params
    stopped = best_step = None
    if stop is None:
        tail = max(1, -(-losses.shape[-1] // 10))
        score = losses[..., -tail:].mean(axis=-1)
        ranked_by = f"the mean loss of the last {tail} history rows"
        mode = "min"
    else:
        value = np.asarray(state.stop.best_value)
        score = value if stop.mode == "min" else -value
        ranked_by = f"the best {stop.monitor} at the early-stopping checks"
        mode = stop.mode
        stopped = np.asarray(state.stop.stopped)
        best_step = np.asarray(state.stop.best_step)
        if stop.restore_best:
            params = state.stop.best[0]
    return SweepResult(
        hyperparams=table,
        seeds=seeds,
        final_loss=last[..., 0],
        best_loss=np.fmin.reduce(losses, axis=-1),
        history=history,
        params=params,
        opt_state=state.opt_state,
        step=steps,
        score=np.where(np.isfinite(score), score, np.nan),
        ranked_by=ranked_by,
        score_mode=mode,
        stopped_early=stopped,
        best_step=best_step,
    )
