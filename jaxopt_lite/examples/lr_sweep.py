# ruff: noqa: RUF001  (the examples print math)
r"""A learning-rate sweep: many MLPs on the digits trained at once by `sweep`.

Which learning rate should adam use? Train one model per rate and compare.
`jaxopt_lite.sweep` does it in a single compiled program: the training loop of
`fit` is ``vmap``-ed over the configurations (here 16 rates on a log grid,
$\eta \in [10^{-4}, 1]$) and over seeds, so every run advances in the same
``lax.scan`` step and the whole sweep costs one compilation:

```python
result = jol.sweep(lambda learning_rate: jol.adam(learning_rate),
                   {"learning_rate": np.logspace(-4, 0, 16)},
                   loss_fn, init, train, seeds=2, epochs=20, batch_size=32,
                   eval_fn=eval_fn, eval_data=val)
result.best("eval_accuracy")   # ({'learning_rate': ...}, index)
```

``init(key)`` builds the MLP of `digits_mlp` from a key, so each seed also has
its own initialization (seed $s$ uses ``jax.random.fold_in(key, s)``). The
plot shows the usual U shape: too small a rate has not finished training, too
large a rate diverges; the final training loss (mean and spread over seeds) and
the validation accuracy are drawn against $\eta$ on a log axis, and the best
rate is the one with the best validation accuracy (evaluated in the same
compiled program, once per epoch).

Needs scikit-learn (``pip install 'jaxopt-lite[examples]'``).

Run it::

    python -m jaxopt_lite.examples.lr_sweep --out plots/
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import numpy as np

import jaxopt_lite as jol
from jaxopt_lite.examples import _common
from jaxopt_lite.examples.digits_mlp import eval_fn, init_mlp, load_data, loss_fn


def make_optimizer(learning_rate):
    """The optimizer of one configuration; ``learning_rate`` arrives traced."""
    return jol.adam(learning_rate)


def run(fast: bool = False, out: str | None = None) -> dict:
    """Sweep adam's learning rate for the digits MLP.

    Args:
        fast: 8 rates, 1 seed, 32 hidden units and 5 epochs instead of 16 rates,
            2 seeds, 64 hidden units and 20 epochs.
        out: a folder for the PNG plot (``lr_sweep.png``), or ``None``.

    Returns:
        A dict with ``learning_rate`` (the swept rates, increasing),
        ``final_loss`` (final training loss, mean over seeds, per rate),
        ``val_accuracy`` (mean over seeds, per rate), ``best_learning_rate``
        (smallest final loss), ``seeds``, ``steps`` (per run), ``methods``
        (rows for the demo table), ``time_s`` and ``plots``.
    """
    train, val, _ = load_data()
    count, seeds, hidden, epochs = (8, 1, 32, 5) if fast else (16, 2, 64, 20)
    rates = np.logspace(-4, 0, count)
    batch_size = 32
    steps_per_epoch = len(train["y"]) // batch_size

    def init(key):
        return init_mlp(key, [64, hidden, 10])

    with _common.timer() as t:
        result = jol.sweep(
            make_optimizer,
            {"learning_rate": rates},
            loss_fn,
            init,
            train,
            seeds=seeds,
            epochs=epochs,
            batch_size=batch_size,
            key=jax.random.key(0),
            log_every=steps_per_epoch,
            eval_fn=eval_fn,  # every run's validation metrics, once per epoch
            eval_data=val,
        )
    final = result.final_loss.mean(axis=1)
    accuracy = result.history["eval_accuracy"][..., -1].mean(axis=1)
    # The rate with the best validation accuracy (its last evaluation).
    best, index = result.best("eval_accuracy")

    def draw() -> list[str]:
        fig, (ax,) = _common.new_figure(1, width=5.6, height=3.8)
        losses = result.final_loss
        ax.plot(rates, final, "o-", label=f"final training loss (mean of {seeds})")
        if seeds > 1:
            ax.fill_between(rates, losses.min(axis=1), losses.max(axis=1), alpha=0.25)
        ax.axvline(best["learning_rate"], color="gray", ls="--", label="best rate")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set(
            xlabel=r"learning rate $\eta$",
            ylabel="cross-entropy",
            title=f"adam on digits: {count} rates × {seeds} seeds, one compile",
        )
        twin = ax.twinx()
        twin.plot(rates, accuracy, "s:", color="C2", label="validation accuracy")
        twin.set(ylabel="validation accuracy", ylim=(0.0, 1.0))
        handles = ax.get_legend_handles_labels()
        more = twin.get_legend_handles_labels()
        ax.legend(handles[0] + more[0], handles[1] + more[1], fontsize=7)
        return [_common.save_figure(fig, out, "lr_sweep.png")]

    plots = _common.maybe_plot(out, draw)
    return {
        "learning_rate": rates.tolist(),
        "final_loss": final.tolist(),
        "val_accuracy": accuracy.tolist(),
        "best_learning_rate": best["learning_rate"],
        "seeds": seeds,
        "steps": result.step,
        "methods": [
            {
                "method": f"adam sweep, {count} rates × {seeds} seeds, "
                f"best η = {best['learning_rate']:.2g}",
                "steps": result.step,
                "final_loss": float(final[index]),
                "accuracy": float(accuracy[index]),
                "time_s": t["s"],
            }
        ],
        "time_s": t["s"],
        "plots": plots,
    }


def main(argv: Sequence[str] | None = None) -> None:
    """Print the sweep table; ``--fast`` and ``--out DIR`` as for `run`."""
    args = _common.parse_args(__doc__, argv)
    r = run(fast=args.fast, out=args.out)
    count = len(r["learning_rate"])
    print(f"adam learning-rate sweep on the digits MLP ({r['seeds']} seed(s) per rate)")
    print(f"  {'η':>10}{'final loss':>14}{'val accuracy':>15}")
    for rate, loss, accuracy in zip(
        r["learning_rate"], r["final_loss"], r["val_accuracy"], strict=True
    ):
        mark = "  <- best" if rate == r["best_learning_rate"] else ""
        print(f"  {rate:>10.2e}{loss:>14.4f}{accuracy:>15.1%}{mark}")
    print(f"  {count * r['seeds']} runs of {r['steps']} steps in {r['time_s']:.2f} s")
    print("  (one compilation; including it)")
    _common.report_plots(args.out, r["plots"])


if __name__ == "__main__":
    main()
