# ruff: noqa: RUF002  (the examples print math)
r"""An MLP classifier on scikit-learn's handwritten digits, with early stopping.

The 1,797 8×8 images of `sklearn.datasets.load_digits` ship with scikit-learn
(no download). They are split into training, validation and test sets
(stratified); an MLP with relu hidden layers,

$$
h_0 = x, \qquad h_{k} = \mathrm{relu}(W_k h_{k-1} + b_k), \qquad
p(y \mid x) = \mathrm{softmax}(W_{\text{out}}\, h_K + b_{\text{out}}),
$$

is trained with `jaxopt_lite.adam` on minibatches by `jaxopt_lite.fit`, which
calls ``eval_fn`` on the validation set once per epoch, on the device, inside
the compiled loop. `jaxopt_lite.EarlyStopping` with ``monitor="accuracy"`` and
``mode="max"`` stops when validation accuracy has not improved for
``patience`` epochs and restores the best parameters. The test set is touched
once, at the end; the validation set is what early stopping looks at, so the
reported test accuracy is not tuned on the data it is measured on.

Needs scikit-learn (``pip install 'jaxopt-lite[examples]'``).

Run it::

    python -m jaxopt_lite.examples.digits_mlp --out plots/
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

import jaxopt_lite as jol
from jaxopt_lite.examples import _common


def load_data(seed: int = 0) -> tuple[dict, dict, dict]:
    """Train, validation and test sets: ``{"x": (n, 64) floats in [0, 1], "y": ints}``.

    The split is 65% / 10% / 25%, stratified by class.
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype(np.float32)
    y = y.astype(np.int32)
    x_rest, x_test, y_rest, y_test = train_test_split(
        x, y, test_size=0.25, stratify=y, random_state=seed
    )
    x_train, x_val, y_train, y_val = train_test_split(
        x_rest, y_rest, test_size=0.1 / 0.75, stratify=y_rest, random_state=seed
    )
    return (
        {"x": x_train, "y": y_train},
        {"x": x_val, "y": y_val},
        {"x": x_test, "y": y_test},
    )


def init_mlp(key: jax.Array, sizes: Sequence[int]) -> list[dict]:
    """He-initialized dense layers ``[{"w": (m, n), "b": (1, n)}, ...]``."""
    layers = []
    keys = jax.random.split(key, len(sizes) - 1)
    for key_i, m, n in zip(keys, sizes[:-1], sizes[1:], strict=True):
        w = jax.random.normal(key_i, (m, n)) * jnp.sqrt(2.0 / m)
        layers.append({"w": w, "b": jnp.zeros((1, n))})  # (1, n): broadcasts explicitly
    return layers


def logits_fn(params: list[dict], x: jax.Array) -> jax.Array:
    """Dense + relu for the hidden layers, dense for the output."""
    for layer in params[:-1]:
        x = jax.nn.relu(x @ layer["w"] + layer["b"])
    return x @ params[-1]["w"] + params[-1]["b"]


def cross_entropy(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """Mean negative log-likelihood of integer labels."""
    log_probs = jax.nn.log_softmax(logits)
    return -jnp.mean(jnp.take_along_axis(log_probs, labels[:, None], axis=1))


def loss_fn(params, batch):
    return cross_entropy(logits_fn(params, batch["x"]), batch["y"])


def eval_fn(params, data):
    """Loss and accuracy on ``data``: a dict, so both are recorded."""
    logits = logits_fn(params, data["x"])
    accuracy = jnp.mean(jnp.argmax(logits, axis=-1) == data["y"])
    return {"loss": cross_entropy(logits, data["y"]), "accuracy": accuracy}


def run(fast: bool = False, out: str | None = None) -> dict:
    """Train the MLP with adam and early stopping on validation accuracy.

    Args:
        fast: one hidden layer of 64 units, adam(3e-3) and at most 20 epochs,
            instead of two layers (256 and 128 units), adam(1e-3) and at most
            150 epochs.
        out: a folder for the PNG plot (``digits_mlp.png``), or ``None``.

    Returns:
        A dict with ``test_accuracy``, ``best_val_accuracy``, ``steps``,
        ``epochs_run``, ``max_epochs``, ``stopped_early``, ``best_step``,
        ``final_loss`` (training loss of the last epoch), ``layout`` (layer sizes),
        ``learning_rate``, ``methods`` (rows for the demo table), ``time_s`` and
        ``plots``.
    """
    train, val, test = load_data()
    hidden, lr, max_epochs, patience = (
        ((64,), 3e-3, 20, 5) if fast else ((256, 128), 1e-3, 150, 20)
    )
    batch_size = 32
    steps_per_epoch = len(train["y"]) // batch_size
    params = init_mlp(jax.random.key(0), [64, *hidden, 10])
    layout = "-".join(str(n) for n in (64, *hidden, 10))
    with _common.timer() as t:
        result = jol.fit(
            loss_fn,
            params,
            jol.adam(lr),
            train,
            epochs=max_epochs,
            batch_size=batch_size,
            key=jax.random.key(1),
            eval_fn=eval_fn,
            eval_data=val,
            early_stopping=jol.EarlyStopping(
                patience=patience, monitor="accuracy", mode="max"
            ),
            log_every=steps_per_epoch,
            progress=False,
        )
        test_metrics = jax.device_get(eval_fn(result.params, test))
    history = result.history
    test_accuracy = float(test_metrics["accuracy"])

    def draw() -> list[str]:
        fig, (ax_loss, ax_acc) = _common.new_figure(2)
        epochs = history["step"] / steps_per_epoch
        eval_epochs = history["eval_step"] / steps_per_epoch
        ax_loss.semilogy(epochs, history["loss"], label="training (epoch mean)")
        ax_loss.semilogy(eval_epochs, history["eval_loss"], label="validation")
        ax_loss.set(xlabel="epoch", ylabel="cross-entropy", title="loss")
        ax_loss.legend(fontsize=8)
        ax_acc.plot(eval_epochs, history["eval_accuracy"], label="validation")
        ax_acc.axhline(
            test_accuracy, color="k", ls=":", label=f"test: {test_accuracy:.1%}"
        )
        if result.best_step is not None:
            ax_acc.axvline(
                result.best_step / steps_per_epoch,
                color="gray",
                ls="--",
                label="best (restored)",
            )
        ax_acc.set(
            xlabel="epoch", ylabel="accuracy", title="digits MLP, adam", ylim=(0.8, 1.0)
        )
        ax_acc.legend(fontsize=8, loc="lower right")
        return [_common.save_figure(fig, out, "digits_mlp.png")]

    plots = _common.maybe_plot(out, draw)
    val_acc = history["eval_accuracy"]
    return {
        "test_accuracy": test_accuracy,
        "test_loss": float(test_metrics["loss"]),
        "best_val_accuracy": float(np.max(val_acc)),
        "steps": result.step,
        "epochs_run": result.step // steps_per_epoch,
        "max_epochs": max_epochs,
        "stopped_early": result.stopped_early,
        "best_step": result.best_step,
        "final_loss": float(history["loss"][-1]),
        "layout": layout,
        "learning_rate": lr,
        "methods": [
            {
                "method": f"adam({lr:g}), MLP {layout}",
                "steps": result.step,
                "final_loss": float(history["loss"][-1]),
                "accuracy": test_accuracy,
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
    print(
        f"digits MLP {r['layout']}, adam({r['learning_rate']:g}), "
        "early stopping on validation accuracy"
    )
    stop = "early stopping" if r["stopped_early"] else "epoch limit"
    print(
        f"  ran {r['epochs_run']} of {r['max_epochs']} epochs ({r['steps']} steps), "
        f"ended by {stop}; best at step {r['best_step']}"
    )
    print(f"  best validation accuracy: {r['best_val_accuracy']:.2%}")
    print(f"  test accuracy:            {r['test_accuracy']:.2%}")
    print(f"  time: {r['time_s']:.2f} s (including compilation)")
    _common.report_plots(args.out, r["plots"])


if __name__ == "__main__":
    main()
