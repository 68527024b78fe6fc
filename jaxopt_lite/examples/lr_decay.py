# ruff: noqa: RUF001, RUF002, RUF003  (the examples print math: θ, η, γ, −)
r"""Dynamic learning rates: exponential decay and warmup-cosine vs a constant rate.

With a constant learning rate $\eta$, SGD on a noisy problem does not converge:
the sampled gradient keeps a variance at the optimum, so the iterates end up
bouncing in a ball around it and the loss plateaus at a *noise floor* whose
height grows with $\eta$. Letting the rate shrink over time removes the floor
while keeping the fast start. Exponential decay,

$$
\eta_t = \eta_0\,\gamma^{t}, \qquad 0 < \gamma < 1,
$$

is `jaxopt_lite.exponential_decay(η0, 1, γ)` (``transition_steps=1``); here
$\gamma$ is chosen so that the rate falls by a factor 100 over the run. Warmup
+ cosine, `jaxopt_lite.warmup_cosine_decay_schedule`, ramps linearly from 0 to
a peak and then follows half a cosine down to 0:

$$
\eta_t = \frac{\eta_{\text{peak}}}{2}\Big(1 + \cos\frac{\pi (t - t_w)}{T - t_w}\Big)
\quad (t \ge t_w).
$$

A schedule is just a function ``step -> rate`` passed where a number would be:
``jol.sgd(jol.exponential_decay(0.02, 1, gamma))``. The problem is per-example
SGD on the least-squares problem of `sgd_least_squares`, with more noise.

Run it::

    python -m jaxopt_lite.examples.lr_decay --out plots/
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

import jaxopt_lite as jol
from jaxopt_lite.examples import _common
from jaxopt_lite.examples.sgd_least_squares import (
    init_params,
    loss_fn,
    lstsq_params,
    make_data,
)

NOISE = 1.0
ETA0 = 0.02
FINAL_FACTOR = 0.01  # the decayed rates end at ETA0 * FINAL_FACTOR


def schedules(total_steps: int) -> dict:
    """The three learning-rate schedules compared, as ``step -> rate`` functions."""
    gamma = FINAL_FACTOR ** (1.0 / total_steps)
    return {
        "constant": jol.constant_schedule(ETA0),
        f"exponential_decay (γ = {gamma:.5f})": jol.exponential_decay(ETA0, 1, gamma),
        "warmup_cosine_decay": jol.warmup_cosine_decay_schedule(
            0.0, 2 * ETA0, total_steps // 20, total_steps
        ),
    }


def _plot_schedule_gallery(out, total_steps: int) -> str:
    """A gallery of common schedules (written as ``schedules.png``)."""
    steps = np.arange(total_steps)
    gallery = {
        "constant_schedule(1)": jol.constant_schedule(1.0),
        "exponential_decay(1, 1, γ)": jol.exponential_decay(
            1.0, 1, 0.01 ** (1 / total_steps)
        ),
        "step_decay(1, T/3, 0.3)": jol.step_decay(1.0, total_steps // 3, 0.3),
        "warmup_cosine_decay_schedule": jol.warmup_cosine_decay_schedule(
            0.0, 1.0, total_steps // 10, total_steps
        ),
        "linear_onecycle_schedule": jol.linear_onecycle_schedule(total_steps, 1.0),
        "sgdr_schedule (3 cycles)": jol.sgdr_schedule(
            [
                {
                    "init_value": 0.0,
                    "peak_value": 1.0,
                    "warmup_steps": total_steps // 30,
                    "decay_steps": total_steps // 3,
                    "end_value": 0.0,
                }
            ]
            * 3
        ),
    }
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9.0, 4.6), layout="constrained")
    axes = fig.subplots(2, 3, sharex=True, sharey=True).ravel()
    for ax, (label, schedule) in zip(axes, gallery.items(), strict=True):
        ax.plot(steps, np.asarray(jax.vmap(schedule)(jnp.asarray(steps))))
        ax.set_title(label, fontsize=9)
        ax.grid(alpha=0.3)
    for ax in axes[3:]:
        ax.set_xlabel("step t")
    for ax in axes[::3]:
        ax.set_ylabel(r"$\eta_t / \eta_{\max}$")
    return _common.save_figure(fig, out, "schedules.png")


def run(fast: bool = False, out: str | None = None) -> dict:
    """Per-example SGD with a constant, exponentially decaying or warmup-cosine rate.

    Args:
        fast: 1000 steps on 500 examples instead of 4000 steps on 1000.
        out: a folder for the PNG plots (``lr_decay.png`` and ``schedules.png``),
            or ``None``.

    Returns:
        A dict with ``lstsq_loss`` (the optimum), ``final_excess`` (schedule
        name -> final ``L(θ) − L(θ_lstsq)`` on the whole data set), ``steps``,
        ``methods`` (rows for the demo table), ``time_s`` and ``plots``.
    """
    n, epochs = (500, 2) if fast else (1000, 4)
    total_steps = n * epochs
    data, _, _ = make_data(n, noise=NOISE, seed=1)
    jdata = jax.tree.map(jnp.asarray, data)
    best_loss = float(loss_fn(lstsq_params(data), jdata))
    initial = float(loss_fn(init_params(), jdata))

    rows, curves, final_excess = [], {}, {}
    total = 0.0
    chosen = schedules(total_steps)
    for label, schedule in chosen.items():
        with _common.timer() as t:
            result = jol.fit(
                loss_fn,
                init_params(),
                jol.sgd(schedule),
                data,
                epochs=epochs,
                batch_size=1,
                key=jax.random.key(0),
                eval_fn=loss_fn,  # the loss on the whole data set
                eval_data=data,
                eval_every=total_steps // 50,
                progress=False,
            )
            final = float(loss_fn(result.params, jdata))
        total += t["s"]
        name = label.split(" ")[0]
        final_excess[name] = final - best_loss
        curves[label] = (
            np.concatenate([[0], result.history["eval_step"]]),
            np.concatenate([[initial], result.history["eval_loss"]]) - best_loss,
        )
        rows.append(
            {
                "method": f"sgd, {name} lr",
                "steps": result.step,
                "final_loss": final,
                "accuracy": None,
                "time_s": t["s"],
            }
        )

    def draw() -> list[str]:
        fig, (ax_lr, ax_loss) = _common.new_figure(2)
        steps = jnp.arange(total_steps)
        for label, schedule in chosen.items():
            ax_lr.plot(steps, np.asarray(jax.vmap(schedule)(steps)), label=label)
        ax_lr.set(xlabel="step t", ylabel=r"$\eta_t$", title="learning rate")
        ax_lr.legend(fontsize=7)
        for label, (x, excess) in curves.items():
            ax_loss.semilogy(x, np.maximum(excess, 1e-8), label=label.split(" ")[0])
        ax_loss.set(
            xlabel="step t",
            ylabel=r"$L(\theta_t) - L(\theta_{\mathrm{lstsq}})$",
            title="SGD (batch 1): excess loss",
        )
        ax_loss.legend(fontsize=7)
        return [
            _common.save_figure(fig, out, "lr_decay.png"),
            _plot_schedule_gallery(out, 300),
        ]

    plots = _common.maybe_plot(out, draw)
    return {
        "n": n,
        "steps": total_steps,
        "lstsq_loss": best_loss,
        "final_excess": final_excess,
        "methods": rows,
        "time_s": total,
        "plots": plots,
    }


def main(argv: Sequence[str] | None = None) -> None:
    """Print a short report; ``--fast`` and ``--out DIR`` as for `run`."""
    args = _common.parse_args(__doc__, argv)
    r = run(fast=args.fast, out=args.out)
    print(f"per-example SGD on noisy least squares (n = {r['n']}, {r['steps']} steps)")
    print("  η_t = η_0·γ^t (exponential decay) vs constant η_0 vs warmup + cosine")
    print(f"  {'schedule':<22}{'final loss':>12}{'excess over lstsq':>20}")
    for row, (name, excess) in zip(
        r["methods"], r["final_excess"].items(), strict=True
    ):
        print(f"  {name:<22}{row['final_loss']:>12.5f}{excess:>20.2e}")
    print(f"  exact least squares:  {r['lstsq_loss']:.5f}")
    print(f"  time: {r['time_s']:.2f} s (including compilation)")
    _common.report_plots(args.out, r["plots"])


if __name__ == "__main__":
    main()
