"""Shared by the CNN examples: the digits as images, training and reporting.

Each framework example builds the same small CNN (two 3x3 convolutions with
batch normalization, 2x2 max pooling, dropout, a dense layer) and hands this
module its ``loss_fn(params, state, batch, key) -> (loss, new_state)`` and
``eval_fn(params, state, data) -> {"accuracy": ...}``.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import jaxopt_lite as jol
from jaxopt_lite.examples import _common

CHANNELS = (8, 16)
DROPOUT = 0.25
MOMENTUM = 0.9  # batch-norm running averages: short runs need a short memory
EPOCHS = {True: 5, False: 30}  # fast, full


def load_images(seed: int = 0) -> tuple[dict, dict]:
    """Train (75%) and test (25%) sets, stratified: ``{"x": (n, 8, 8, 1)
    floats in [0, 1] (channels last), "y": int labels}``."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype(np.float32).reshape(-1, 8, 8, 1)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y.astype(np.int32), test_size=0.25, stratify=y, random_state=seed
    )
    return {"x": x_train, "y": y_train}, {"x": x_test, "y": y_test}


def cross_entropy(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """Mean negative log-likelihood of integer labels."""
    log_probs = jax.nn.log_softmax(logits)
    return -jnp.mean(jnp.take_along_axis(log_probs, labels[:, None], axis=1))


def accuracy(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """The fraction of correct predictions."""
    return jnp.mean(jnp.argmax(logits, axis=-1) == labels)


def missing(library: str) -> bool:
    """Whether ``library`` cannot be imported."""
    return importlib.util.find_spec(library) is None


def train(
    name: str,
    loss_fn: Callable,
    eval_fn: Callable,
    params: Any,
    state: Any,
    train_data: dict,
    test_data: dict,
    fast: bool,
    unroll: int | None = None,
) -> dict:
    """`jol.fit` with a step key (dropout) and the model state (batch norm),
    evaluating test accuracy once per epoch (``unroll`` passed to fit);
    returns the key numbers."""
    with _common.timer() as t:
        result = jol.fit(
            loss_fn,
            params,
            jol.adam(3e-3),
            train_data,
            state=state,
            step_key=True,
            epochs=EPOCHS[fast],
            batch_size=64,
            key=jax.random.key(1),
            eval_fn=eval_fn,
            eval_data=test_data,
            unroll=unroll,
            progress=False,
        )
        test_accuracy = float(
            eval_fn(result.params, result.state, test_data)["accuracy"]
        )
    return {
        "test_accuracy": test_accuracy,
        "accuracy_by_epoch": result.history["eval_accuracy"].tolist(),
        "steps": result.step,
        "time_s": t["s"],
        "methods": [
            {
                "method": f"adam(3e-3), {name} CNN with BatchNorm and Dropout",
                "steps": result.step,
                "final_loss": float(result.history["loss"][-1]),
                "accuracy": test_accuracy,
                "time_s": t["s"],
            }
        ],
        "history": result.history,
    }


def report(name: str, result: dict, out: str | None, file_name: str) -> dict:
    """Add the plot of accuracy by epoch (when ``out`` is given)."""

    def draw() -> list[str]:
        fig, (ax,) = _common.new_figure(1)
        ax.plot(np.arange(1, len(result["accuracy_by_epoch"]) + 1),
                result["accuracy_by_epoch"])  # fmt: skip
        ax.set(xlabel="epoch", ylabel="test accuracy", title=f"{name} CNN on digits")
        return [_common.save_figure(fig, out, file_name)]

    return {**result, "skipped": None, "plots": _common.maybe_plot(out, draw)}


def skipped(library: str) -> dict:
    """What ``run`` returns when ``library`` is not installed."""
    return {"skipped": library, "test_accuracy": None, "methods": [], "plots": []}


def main(doc: str | None, run: Callable, library: str, argv: Sequence[str] | None):
    """Print the test accuracy (or why the example was skipped)."""
    args = _common.parse_args(doc, argv)
    r = run(fast=args.fast, out=args.out)
    if r["skipped"]:
        raise SystemExit(
            f"this example needs {library}, which is not installed: "
            f"pip install 'jaxopt-lite[examples]' (or pip install {library})"
        )
    print(
        f"test accuracy {r['test_accuracy']:.4f} after {r['steps']} steps "
        f"({r['time_s']:.1f} s)"
    )
    _common.report_plots(args.out, r["plots"])
