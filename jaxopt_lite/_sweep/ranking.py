"""How a sweep's configurations are ranked, listed and printed.

A configuration's value is the mean over its seeds of one number per run:
the sweep's ``score``, its final or best history loss, or the last finite
value of any history column (``"eval_accuracy"``). Configurations with a
non-finite value in any seed rank last; ties are broken by the lower mean
final loss, then by the lower index, so the order never depends on chance.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from jaxopt_lite._host.options import infer_mode


def _last_finite(values: np.ndarray) -> np.ndarray:
    """The last finite value along the last axis (NaN where there is none)."""
    finite = np.isfinite(values)
    at = np.where(
        finite.any(-1), values.shape[-1] - 1 - np.argmax(finite[..., ::-1], -1), 0
    )
    last = np.take_along_axis(values, at[..., None], -1)[..., 0]
    return np.where(finite.any(-1), last, np.nan)


def per_run(result: Any, by: str, mode: str | None) -> tuple[np.ndarray, str, str]:
    """``(values [configs, seeds], name, mode)`` of the ranking ``by``."""
    if by == "score":
        score = result.final_loss if result.score is None else result.score
        return score, result.score_name, result.score_mode
    if by == "final":
        return result.final_loss, "final_loss", "min"
    if by == "best":
        return result.best_loss, "best_loss", "min"
    history = result.history
    column = by if by in history else f"eval_{by}"
    if column not in history or column in ("step", "eval_step"):
        choices = ["score", "final", "best", *(c for c in history if "step" not in c)]
        raise ValueError(f"by={by!r} is not allowed: use one of {choices}.")
    mode = mode or infer_mode(column)
    if mode not in ("min", "max"):
        raise ValueError(
            f"by={by!r}: cannot tell whether {column} should go down or up; pass "
            "mode='min' or mode='max'."
        )
    return _last_finite(np.asarray(history[column], float)), column, mode


def order(result: Any, by: str = "score", mode: str | None = None) -> np.ndarray:
    """Configuration indices, best first (see the module docstring)."""
    values, _, mode = per_run(result, by, mode)
    mean = values.mean(axis=1) * (-1.0 if mode == "max" else 1.0)
    mean = np.where(np.isfinite(mean), mean, np.inf)
    tie = result.final_loss.mean(axis=1)
    tie = np.where(np.isfinite(tie), tie, np.inf)
    return np.lexsort((np.arange(len(mean)), tie, mean))


def rows(result: Any, by: str = "score", mode: str | None = None) -> list[dict]:
    """One dict per configuration: its hyper-parameters, the ranking value,
    ``final_loss`` and ``best_loss`` (means over seeds; ``*_std`` with several
    seeds), and its ``rank`` (1 is best; configurations without a finite
    value in every seed have none)."""
    values, name, mode = per_run(result, by, mode)
    losses = {"final_loss": result.final_loss, "best_loss": result.best_loss}
    columns = [(name, values), *((n, v) for n, v in losses.items() if n != name)]
    ranks = np.empty(result.num_configs, int)
    ranks[order(result, by, mode)] = np.arange(1, result.num_configs + 1)
    out = []
    for i in range(result.num_configs):
        row = result.config(i)
        for column, v in columns:
            row[column] = float(v[i].mean())
            if result.seeds > 1:
                row[f"{column}_std"] = float(v[i].std())
        finite = np.isfinite(values[i]).all()
        row["rank"] = int(ranks[i]) if finite else None
        out.append(row)
    return out


def _show(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def table(result: Any, by: str = "score", mode: str | None = None) -> str:
    """The configurations as an aligned text table, the ranking value first,
    the best configuration marked with ``*``."""
    listed = rows(result, by, mode)
    names = list(result.hyperparams)
    values = [
        k
        for k in listed[0]
        if k not in names and k != "rank" and not k.endswith("_std")
    ]

    def cell(row: dict, name: str) -> str:
        text = _show(row[name])
        return f"{text} ± {_show(row[f'{name}_std'])}" if result.seeds > 1 else text

    header = [*names, *values, ""]
    body = [[*(_show(r[n]) for n in names), *(cell(r, v) for v in values),
             "*" if r["rank"] == 1 else ""] for r in listed]  # fmt: skip
    widths = [max(len(r[j]) for r in [header, *body]) for j in range(len(header))]
    lines = [
        "  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)).rstrip()
        for r in [header, *body]
    ]
    title = (
        f"sweep: {result.num_configs} configurations x {result.seeds} seeds, "
        f"{result.step} steps" + (" (interrupted)" if result.interrupted else "")
    )
    what = result.ranked_by if by == "score" else values[0]
    if any(r["rank"] == 1 for r in listed):
        footer = f"* best by {values[0]} ({what}); ties go to the lower final_loss"
    else:
        footer = (
            f"no configuration has a finite {values[0]} in every seed: none is best"
        )
    return "\n".join([title, *lines, footer])
