"""A newcomer's first day: the defaults do what the names say, and a mistake
gets a message that says how to fix it."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxopt_lite as jol
from jaxopt_lite._host.options import infer_mode

X = np.linspace(-1.0, 1.0, 64, dtype=np.float32)[:, None]
DATA = {"x": X, "y": (X[:, 0] > 0).astype(np.int32)}


def loss_fn(p, b):
    logit = (b["x"] @ p["w"])[:, 0] + p["b"]
    return jnp.mean(jnp.logaddexp(0.0, logit) - b["y"] * logit)


def accuracy(p, d):
    logit = (d["x"] @ p["w"])[:, 0] + p["b"]
    return {"accuracy": jnp.mean((logit > 0) == (d["y"] == 1))}


@pytest.mark.parametrize(
    ("name", "mode"),
    [("loss", "min"), ("eval_loss", "min"), ("mse", "min"), ("val_error", "min"),
     ("accuracy", "max"), ("eval_accuracy", "max"), ("top1", "max"), ("auc", "max"),
     ("f1", "max"), ("eval_metric", None), ("quality", None)],
)  # fmt: skip
def test_the_direction_is_inferred_from_the_name(name, mode):
    assert infer_mode(name) == mode


def test_early_stopping_on_accuracy_keeps_the_best_accuracy():
    # a learning rate large enough to oscillate: the last epoch is not the best
    params = {"w": jnp.zeros((1, 1)), "b": jnp.array(0.5)}
    stop = jol.EarlyStopping(patience=100, monitor="accuracy")
    result = jol.fit(loss_fn, params, jol.sgd(30.0), DATA, epochs=12, batch_size=16,
                     eval_fn=accuracy, eval_data=DATA, early_stopping=stop,
                     key=jax.random.key(0), progress=False)  # fmt: skip
    seen = result.history["eval_accuracy"]
    best = int(np.argmax(seen))  # the first of the highest, as the check keeps
    assert result.best_step == result.history["eval_step"][best]
    got = float(accuracy(result.params, DATA)["accuracy"])
    assert got == pytest.approx(seen.max()) and seen.max() > seen.min()


def test_an_unknown_metric_needs_a_mode():
    with pytest.raises(ValueError, match=r"monitor='metric': cannot tell .* mode="):
        jol.fit(loss_fn, {"w": jnp.zeros((1, 1)), "b": jnp.zeros([])}, jol.sgd(0.1),
                DATA, steps=4, batch_size=16, eval_fn=lambda p, d: {"metric": 1.0},
                eval_data=DATA,
                early_stopping=jol.EarlyStopping(monitor="metric"))  # fmt: skip


def test_a_list_of_arrays_is_read_as_batches_and_the_error_says_so():
    with pytest.raises(ValueError, match=r"data is a list, .* pass a tuple \(X, y\)"):
        jol.fit(lambda p, b: jnp.sum(p), jnp.zeros(1), jol.sgd(0.1),
                [X, DATA["y"]], steps=2, progress=False)  # fmt: skip
