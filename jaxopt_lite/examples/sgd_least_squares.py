# ruff: noqa: RUF001, RUF002, RUF003  (the examples print math: θ, η, γ, −)
r"""Stochastic gradient descent on least squares, against the exact solution.

Data come from a known linear model, $y_i = x_i^\top w^\star + b^\star +
\varepsilon_i$ with Gaussian noise. The objective is the mean of per-example
losses,

$$
L(\theta) = \frac{1}{n}\sum_{i=1}^n \ell(\theta; x_i, y_i), \qquad
\ell(\theta; x, y) = \tfrac12 (x^\top w + b - y)^2 ,
$$

and stochastic gradient descent replaces the full gradient by the gradient on
a sampled example (or minibatch $B_t$), which depends on the parameters **and**
on the sample:

$$
\theta_{t+1} = \theta_t - \eta\,\frac{1}{|B_t|}\sum_{i\in B_t}
\nabla_\theta\, \ell(\theta_t; x_i, y_i), \qquad
\nabla_w \ell = (x_i^\top w + b - y_i)\, x_i .
$$

`jaxopt_lite.fit` draws $B_t$ on the device from a fresh permutation each
epoch (sampling without replacement), so the whole run is one compiled scan.
The example compares per-example SGD (``batch_size=1``), minibatch SGD,
full-batch gradient descent (`jaxopt_lite.minimize` with `jaxopt_lite.gd`)
and the exact least-squares solution from `numpy.linalg.lstsq`.

Run it::

    python -m jaxopt_lite.examples.sgd_least_squares --out plots/
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

import jaxopt_lite as jol
from jaxopt_lite.examples import _common

DIM = 10
NOISE = 0.3


def make_data(n: int, dim: int = DIM, noise: float = NOISE, seed: int = 0) -> tuple:
    """Draw ``(data, w_star, b_star)``: ``data = {"x": (n, dim), "y": (n,)}``."""
    rng = np.random.default_rng(seed)
    w_star = rng.normal(size=dim).astype(np.float32)
    b_star = np.float32(0.5)
    x = rng.normal(size=(n, dim)).astype(np.float32)
    y = (x @ w_star + b_star + noise * rng.normal(size=n)).astype(np.float32)
    return {"x": x, "y": y}, w_star, b_star


def loss_fn(params, batch):
    """Mean over the batch of ½ (xᵀw + b − y)²."""
    residual = batch["x"] @ params["w"] + params["b"] - batch["y"]
    return 0.5 * jnp.mean(residual**2)


def init_params(dim: int = DIM) -> dict:
    return {"w": jnp.zeros(dim), "b": jnp.zeros(())}


def lstsq_params(data) -> dict:
    """The exact minimizer of the mean squared error, from numpy."""
    x = np.asarray(data["x"], np.float64)
    design = np.concatenate([x, np.ones((x.shape[0], 1))], axis=1)
    coef = np.linalg.lstsq(design, np.asarray(data["y"], np.float64), rcond=None)[0]
    return {
        "w": jnp.asarray(coef[:-1], jnp.float32),
        "b": jnp.asarray(coef[-1], jnp.float32),
    }


def distance(p, q) -> float:
    """Euclidean distance between two parameter trees."""
    diffs = jax.tree.leaves(jax.tree.map(lambda a, b: jnp.sum((a - b) ** 2), p, q))
    return float(jnp.sqrt(sum(diffs)))


def run(fast: bool = False, out: str | None = None) -> dict:
    """Fit the linear model with SGD (batch 1 and 32), full-batch GD and lstsq.

    Args:
        fast: fewer examples (500 instead of 2000).
        out: a folder for the PNG plot (``sgd_least_squares.png``), or ``None``.

    Returns:
        A dict with ``lstsq_loss`` (the optimum), and for each of ``sgd1``,
        ``sgd32`` and ``gd``: ``{"loss", "distance", "steps", "time_s"}``
        (``loss`` on the whole data set, ``distance`` to the lstsq parameters);
        ``methods`` (rows for the demo table), ``time_s`` and ``plots``.
    """
    n = 500 if fast else 2000
    data, _, _ = make_data(n)
    jdata = jax.tree.map(jnp.asarray, data)
    best = lstsq_params(data)
    best_loss = float(loss_fn(best, jdata))

    runs: dict[str, dict] = {}
    curves: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    initial = float(loss_fn(init_params(), jdata))
    configs = [
        # name, label, batch size, learning rate, epochs
        ("sgd1", "sgd(0.01), batch_size=1", 1, 0.01, 3),
        ("sgd32", "sgd(0.1), batch_size=32", 32, 0.1, 30),
    ]
    total = 0.0
    for name, label, batch_size, lr, epochs in configs:
        steps_per_epoch = n // batch_size
        with _common.timer() as t:
            result = jol.fit(
                loss_fn,
                init_params(),
                jol.sgd(lr),
                data,
                epochs=epochs,
                batch_size=batch_size,
                key=jax.random.key(0),
                eval_fn=loss_fn,  # the loss on the whole data set
                eval_data=data,
                eval_every=max(1, steps_per_epoch // 10),
                progress=False,
            )
            final = float(loss_fn(result.params, jdata))
        total += t["s"]
        runs[name] = {
            "label": label,
            "loss": final,
            "distance": distance(result.params, best),
            "steps": result.step,
            "time_s": t["s"],
        }
        seen = np.concatenate([[0], result.history["eval_step"] * batch_size]) / n
        curves[name] = (seen, np.concatenate([[initial], result.history["eval_loss"]]))

    with _common.timer() as t:
        gd = jol.minimize(
            loss_fn, init_params(), jol.gd(0.5), args=jdata, steps=500, tol=1e-5
        )
    total += t["s"]
    runs["gd"] = {
        "label": "gd(0.5), full batch",
        "loss": gd.value,
        "distance": distance(gd.params, best),
        "steps": gd.steps,
        "time_s": t["s"],
    }
    curves["gd"] = (np.arange(gd.steps, dtype=float), gd.history["value"])

    def draw() -> list[str]:
        fig, (ax,) = _common.new_figure(1, width=5.6, height=3.8)
        for name, (x, loss) in curves.items():
            ax.loglog(
                np.maximum(x, 1e-2), loss - best_loss + 1e-7, label=runs[name]["label"]
            )
        ax.set(
            xlabel="passes over the data (epochs; x-axis floor 0.01)",
            ylabel=r"$L(\theta) - L(\theta_{\mathrm{lstsq}})$",
            title=f"least squares, n={n}, d={DIM}: excess loss",
        )
        ax.legend(fontsize=8)
        return [_common.save_figure(fig, out, "sgd_least_squares.png")]

    plots = _common.maybe_plot(out, draw)
    return {
        "n": n,
        "lstsq_loss": best_loss,
        **{k: {kk: v for kk, v in r.items() if kk != "label"} for k, r in runs.items()},
        "methods": [
            {
                "method": r["label"],
                "steps": r["steps"],
                "final_loss": r["loss"],
                "accuracy": None,
                "time_s": r["time_s"],
            }
            for r in runs.values()
        ]
        + [
            {
                "method": "numpy.linalg.lstsq (exact)",
                "steps": None,
                "final_loss": best_loss,
                "accuracy": None,
                "time_s": None,
            }
        ],
        "time_s": total,
        "plots": plots,
    }


def main(argv: Sequence[str] | None = None) -> None:
    """Print a short report; ``--fast`` and ``--out DIR`` as for `run`."""
    args = _common.parse_args(__doc__, argv)
    r = run(fast=args.fast, out=args.out)
    print(f"least squares, n = {r['n']}, d = {DIM}, noise σ = {NOISE}")
    print("SGD step: θ ← θ − η·mean_{i∈B}(xᵢᵀw + b − yᵢ)·(xᵢ, 1)")
    print(f"  {'method':<28}{'steps':>7}{'loss':>12}{'|θ − θ_lstsq|':>16}")
    for row, key in zip(r["methods"][:3], ["sgd1", "sgd32", "gd"], strict=True):
        print(
            f"  {row['method']:<28}{row['steps']:>7}{r[key]['loss']:>12.6f}"
            f"{r[key]['distance']:>16.2e}"
        )
    print(f"  {'numpy.linalg.lstsq (exact)':<35}{r['lstsq_loss']:>12.6f}{0.0:>16.2e}")
    print(f"  time: {r['time_s']:.2f} s (including compilation)")
    _common.report_plots(args.out, r["plots"])


if __name__ == "__main__":
    main()
