# ruff: noqa: RUF001, RUF002  (the examples print math)
r"""Matrix factorization for ratings, with one optimizer per parameter group.

Ratings are generated from a low-rank model with user and item biases,

$$
r_{ui} = \mu + b_u + c_i + p_u^\top q_i + \varepsilon_{ui},
$$

and only a random fraction of the user × item matrix is observed; a tenth of
the observed ratings is held out. The model has the same form, fitted by
minibatch training on the observed ratings with `jaxopt_lite.fit`.

The parameters fall in two groups that want different treatment, expressed
with `jaxopt_lite.partition` and a label tree of the same structure as the
parameters:

- ``"emb"``: the user and item embeddings $p_u, q_i$, trained with
  `jaxopt_lite.adamw` whose decoupled weight decay
  $\theta \leftarrow \theta - \eta\lambda\theta$ keeps them small (the usual
  regularization of matrix factorization);
- ``"bias"``: the biases $b_u, c_i$, trained with plain `jaxopt_lite.sgd` with
  momentum and no decay.

The global mean $\mu$ is not trained: it is the mean training rating, closed
over by the loss. The held-out RMSE is compared with predicting the global
mean and with the biases alone, and with the noise level $\sigma$ of the
generator (the best any model can do).

Run it::

    python -m jaxopt_lite.examples.recommender --out plots/
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

import jaxopt_lite as jol
from jaxopt_lite.examples import _common

NOISE = 0.25
TRUE_RANK = 4
RANK = 8

LABELS = {"user": "emb", "item": "emb", "user_bias": "bias", "item_bias": "bias"}


def generate(n_users: int, n_items: int, density: float, seed: int = 0) -> tuple:
    """Observed ratings ``{"user", "item", "rating"}`` split into (train, test)."""
    rng = np.random.default_rng(seed)
    p = rng.normal(size=(n_users, TRUE_RANK)) / TRUE_RANK**0.25
    q = rng.normal(size=(n_items, TRUE_RANK)) / TRUE_RANK**0.25
    b_user = 0.5 * rng.normal(size=n_users)
    b_item = 0.5 * rng.normal(size=n_items)
    observed = np.flatnonzero(rng.random(n_users * n_items) < density)
    user, item = np.divmod(observed, n_items)
    clean = 3.5 + b_user[user] + b_item[item] + np.sum(p[user] * q[item], axis=1)
    rating = clean + NOISE * rng.normal(size=observed.size)
    order = rng.permutation(observed.size)
    n_test = observed.size // 10
    columns = {
        "user": user.astype(np.int32),
        "item": item.astype(np.int32),
        "rating": rating.astype(np.float32),
    }
    test = {k: v[order[:n_test]] for k, v in columns.items()}
    train = {k: v[order[n_test:]] for k, v in columns.items()}
    return train, test


def init_params(key: jax.Array, n_users: int, n_items: int) -> dict:
    k_user, k_item = jax.random.split(key)
    return {
        "user": 0.1 * jax.random.normal(k_user, (n_users, RANK)),
        "item": 0.1 * jax.random.normal(k_item, (n_items, RANK)),
        "user_bias": jnp.zeros(n_users),
        "item_bias": jnp.zeros(n_items),
    }


def make_loss(mu: float, use_embeddings: bool = True):
    """The mean squared error of the model with the global mean ``mu`` fixed."""

    def predict(params, batch):
        u, i = batch["user"], batch["item"]
        out = mu + params["user_bias"][u] + params["item_bias"][i]
        if use_embeddings:
            out = out + jnp.sum(params["user"][u] * params["item"][i], axis=-1)
        return out

    def loss_fn(params, batch):
        return jnp.mean((predict(params, batch) - batch["rating"]) ** 2)

    return predict, loss_fn


def run(fast: bool = False, out: str | None = None) -> dict:
    """Fit the factorization with per-group optimizers; report held-out RMSE.

    Args:
        fast: 300 users × 250 items and 8 epochs instead of 500 × 400 and 12,
            and no biases-only baseline.
        out: a folder for the PNG plot (``recommender.png``), or ``None``.

    Returns:
        A dict with ``rmse`` (held-out, matrix factorization),
        ``rmse_global_mean`` and ``rmse_biases`` (the two baselines; the
        biases-only model is skipped in fast mode, giving ``None``),
        ``noise`` (the generator's σ), ``train_rmse``, ``steps``,
        ``n_train``, ``n_test``, ``methods`` (rows for the demo table),
        ``time_s`` and ``plots``.
    """
    n_users, n_items, epochs = (300, 250, 8) if fast else (500, 400, 12)
    train, test = generate(n_users, n_items, density=0.2)
    mu = float(np.mean(train["rating"]))
    batch_size = 256

    def rmse_fn(predict):
        def eval_fn(params, data):
            return {
                "rmse": jnp.sqrt(
                    jnp.mean((predict(params, data) - data["rating"]) ** 2)
                )
            }

        return eval_fn

    def optimizer():
        return jol.partition(
            {
                "emb": jol.adamw(1e-2, weight_decay=0.05),
                "bias": jol.sgd(1.0, momentum=0.9),
            },
            LABELS,
        )

    rows, curves, rmse = [], {}, {}
    total = 0.0
    models = [
        ("biases", "biases only", False),
        ("mf", f"biases + rank-{RANK} factors", True),
    ]
    for name, label, use_embeddings in models[1:] if fast else models:
        predict, loss_fn = make_loss(mu, use_embeddings)
        eval_fn = rmse_fn(predict)
        with _common.timer() as t:
            result = jol.fit(
                loss_fn,
                init_params(jax.random.key(0), n_users, n_items),
                optimizer(),
                train,
                epochs=epochs,
                batch_size=batch_size,
                key=jax.random.key(1),
                eval_fn=eval_fn,
                eval_data=test,
                progress=False,
            )
            rmse[name] = float(eval_fn(result.params, test)["rmse"])
            train_rmse = float(eval_fn(result.params, train)["rmse"])
        total += t["s"]
        steps_per_epoch = len(train["rating"]) // batch_size
        curves[label] = (
            result.history["eval_step"] / steps_per_epoch,
            result.history["eval_rmse"],
        )
        rows.append(
            {
                "method": f"partition(adamw, sgd): {label}",
                "steps": result.step,
                "final_loss": float(result.history["loss"][-1]),
                "accuracy": None,
                "time_s": t["s"],
            }
        )
    rmse_global = float(np.sqrt(np.mean((test["rating"] - mu) ** 2)))

    def draw() -> list[str]:
        fig, (ax,) = _common.new_figure(1, width=5.4, height=3.6)
        for label, (x, y) in curves.items():
            ax.plot(x, y, label=label)
        ax.axhline(rmse_global, color="k", ls=":", label="global mean")
        ax.axhline(NOISE, color="gray", ls="--", label=f"noise level σ = {NOISE}")
        ax.set(
            xlabel="epoch",
            ylabel="held-out RMSE",
            title="matrix factorization",
            ylim=(0, rmse_global * 1.1),
        )
        ax.legend(fontsize=8)
        return [_common.save_figure(fig, out, "recommender.png")]

    plots = _common.maybe_plot(out, draw)
    return {
        "rmse": rmse["mf"],
        "rmse_biases": rmse.get("biases"),
        "rmse_global_mean": rmse_global,
        "train_rmse": train_rmse,
        "noise": NOISE,
        "steps": rows[-1]["steps"],
        "n_train": len(train["rating"]),
        "n_test": len(test["rating"]),
        "methods": rows,
        "time_s": total,
        "plots": plots,
    }


def main(argv: Sequence[str] | None = None) -> None:
    """Print a short report; ``--fast`` and ``--out DIR`` as for `run`."""
    args = _common.parse_args(__doc__, argv)
    r = run(fast=args.fast, out=args.out)
    print(
        f"matrix factorization: {r['n_train']} training, {r['n_test']} held-out ratings"
    )
    print(
        '  optimizer: partition({"emb": adamw(1e-2, weight_decay=0.05), '
        '"bias": sgd(1.0, momentum=0.9)}, labels)'
    )
    print(f"  held-out RMSE, global mean:        {r['rmse_global_mean']:.4f}")
    if r["rmse_biases"] is not None:
        print(f"  held-out RMSE, biases only:        {r['rmse_biases']:.4f}")
    print(
        f"  held-out RMSE, biases + factors:   {r['rmse']:.4f}"
        f"  (train {r['train_rmse']:.4f})"
    )
    print(f"  noise level of the generator σ:    {r['noise']:.4f}")
    print(f"  time: {r['time_s']:.2f} s (including compilation)")
    _common.report_plots(args.out, r["plots"])


if __name__ == "__main__":
    main()
