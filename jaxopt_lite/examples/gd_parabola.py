# ruff: noqa: RUF001, RUF002, RUF003  (the examples print math: θ, η, γ, −)
r"""Gradient descent on the parabola f(θ) = θ², checked against its closed form.

The gradient of $f(\theta) = \theta^2$ is $2\theta$, so one gradient-descent
step with learning rate $\eta$ is

$$
\theta_{t+1} = \theta_t - \eta \cdot 2\theta_t = (1 - 2\eta)\,\theta_t ,
\qquad\text{hence}\qquad \theta_t = (1 - 2\eta)^t\,\theta_0 .
$$

The iterates shrink geometrically to the minimum $\theta^\star = 0$ exactly
when $|1 - 2\eta| < 1$, that is $0 < \eta < 1$: fastest at $\eta = 1/2$ (one
step), oscillating in sign for $1/2 < \eta < 1$, diverging for $\eta > 1$.

The example runs `jaxopt_lite.minimize` with `jaxopt_lite.gd` (the whole loop,
including the stopping test $|f'(\theta)| \le \text{tol}$, is one compiled
`lax.while_loop`), compares every recorded $f(\theta_t)$ with the closed form,
and repeats the run for several learning rates.

Run it::

    python -m jaxopt_lite.examples.gd_parabola --out plots/
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import jax.numpy as jnp
import numpy as np

import jaxopt_lite as jol
from jaxopt_lite.examples import _common

THETA0 = 3.0
LEARNING_RATE = 0.1
TOL = 1e-6
RATES = (0.05, 0.1, 0.45, 0.5, 0.9, 1.05)


def parabola(theta):
    """f(θ) = θ²."""
    return theta**2


def run(fast: bool = False, out: str | None = None) -> dict:
    """Minimize θ² with gradient descent and compare with θ_t = (1 − 2η)^t θ_0.

    Args:
        fast: accepted for a uniform interface; this example is instant anyway
            (it only tries fewer learning rates).
        out: a folder for the PNG plot (``gd_parabola.png``), or ``None``.

    Returns:
        A dict with ``theta`` (final θ), ``steps``, ``converged``,
        ``closed_form_theta`` ((1 − 2η)^steps θ_0), ``max_rel_error`` (largest
        relative gap between the recorded f(θ_t) and the closed form),
        ``steps_by_rate`` (steps to reach the tolerance for each learning rate;
        ``None`` when the run diverged), ``methods`` (rows for the demo table),
        ``time_s`` and ``plots``.
    """
    with _common.timer() as t:
        result = jol.minimize(
            parabola, jnp.asarray(THETA0), jol.gd(LEARNING_RATE), steps=1000, tol=TOL
        )
        theta = float(result.params)
    steps = result.steps
    closed = (1.0 - 2.0 * LEARNING_RATE) ** np.arange(steps) * THETA0
    recorded = result.history["value"]
    max_rel_error = float(np.max(np.abs(recorded - closed**2) / closed**2))

    rates = RATES[1::2] + RATES[-1:] if fast else RATES
    curves: dict[float, np.ndarray] = {}
    steps_by_rate: dict[float, int | None] = {}
    for rate in rates:
        run_r = jol.minimize(
            parabola, jnp.asarray(THETA0), jol.gd(rate), steps=200, tol=TOL
        )
        curves[rate] = run_r.history["value"]
        steps_by_rate[rate] = run_r.steps if run_r.converged else None

    def draw() -> list[str]:
        fig, (ax_main, ax_rates) = _common.new_figure(2)
        ax_main.semilogy(recorded, "o", ms=3, label="jol.minimize(…, jol.gd(0.1))")
        ax_main.semilogy(closed**2, "-", label=r"closed form $((1-2\eta)^t\theta_0)^2$")
        ax_main.set(
            xlabel="step t",
            ylabel=r"$f(\theta_t)=\theta_t^2$",
            title=rf"GD on $\theta^2$, $\eta$={LEARNING_RATE}",
        )
        ax_main.legend(fontsize=8)
        for rate, curve in curves.items():
            shown = np.clip(curve[:60], 1e-14, 1e6)
            style = "--" if rate > 0.5 else "-"
            ax_rates.semilogy(shown, style, marker=".", ms=3, label=f"η = {rate}")
        ax_rates.set(
            xlabel="step t",
            ylabel=r"$\theta_t^2$",
            title="learning rate: converges iff 0 < η < 1",
        )
        ax_rates.legend(fontsize=8, ncol=2)
        return [_common.save_figure(fig, out, "gd_parabola.png")]

    plots = _common.maybe_plot(out, draw)
    return {
        "theta": theta,
        "steps": steps,
        "converged": result.converged,
        "closed_form_theta": (1.0 - 2.0 * LEARNING_RATE) ** steps * THETA0,
        "max_rel_error": max_rel_error,
        "steps_by_rate": steps_by_rate,
        "methods": [
            {
                "method": f"gd({LEARNING_RATE}) on f(x) = x^2",
                "steps": steps,
                "final_loss": float(result.value),
                "accuracy": None,
                "time_s": t["s"],
            }
        ],
        "time_s": t["s"],
        "plots": plots,
    }


def main(argv: Sequence[str] | None = None) -> None:
    """Print a short report; ``--fast`` and ``--out DIR`` as for `run`."""
    args = _common.parse_args(__doc__, argv)
    r = run(fast=args.fast, out=args.out)
    print("gradient descent on f(θ) = θ²:  θ ← θ − η·2θ = (1 − 2η)·θ")
    print(f"  θ_0 = {THETA0}, η = {LEARNING_RATE}, stop when |f'(θ)| ≤ {TOL:g}")
    print(
        f"  converged = {r['converged']} after {r['steps']} steps, θ = {r['theta']:.3e}"
    )
    print(f"  closed form (1 − 2η)^{r['steps']}·θ_0 = {r['closed_form_theta']:.3e}")
    print(f"  largest relative gap f(θ_t) vs closed form: {r['max_rel_error']:.1e}")
    print("  steps to tolerance by learning rate:")
    for rate, n in r["steps_by_rate"].items():
        predicted = (
            math.ceil(math.log(TOL / (2 * THETA0)) / math.log(abs(1 - 2 * rate)))
            if rate != 0.5
            else 1
        )
        shown = "diverged" if n is None else f"{n} (predicted ≈ {predicted})"
        print(f"    η = {rate:<5} {shown}")
    print(f"  time: {r['time_s']:.2f} s (including compilation)")
    _common.report_plots(args.out, r["plots"])


if __name__ == "__main__":
    main()
