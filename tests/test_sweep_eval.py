"""`sweep` with evaluation and early stopping per run, and its ranking."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxopt_lite as jol

KEY = jax.random.key(42)
_X = jax.random.normal(jax.random.key(0), (48, 3))
DATA = {"x": _X, "y": _X @ jnp.array([1.0, -2.0, 0.5]) + 0.3}
PARAMS = {"w": jnp.zeros(3), "b": jnp.zeros(())}


def loss_fn(p, batch):
    return jnp.mean((batch["x"] @ p["w"] + p["b"] - batch["y"]) ** 2)


def eval_fn(p, d):
    return {"mse": loss_fn(p, d), "score": -loss_fn(p, d)}


def make(learning_rate):
    return jol.sgd(learning_rate)


RATES = [0.0, 0.01, 0.05, 0.2]


def test_each_run_evaluates_and_stops_as_fit_would():
    stop = jol.EarlyStopping(patience=2, min_delta=1e-3, monitor="mse")
    kw = dict(epochs=30, batch_size=8, eval_fn=eval_fn, eval_data=DATA,
              eval_every=4, early_stopping=stop)  # fmt: skip
    result = jol.sweep(make, {"learning_rate": RATES}, loss_fn, PARAMS, DATA,
                       key=KEY, **kw)  # fmt: skip
    assert result.ranked_by == "the best eval_mse at the early-stopping checks"
    assert result.stopped_early[0, 0] and result.best_step[0, 0] == 4  # rate 0
    for i, rate in enumerate(RATES):
        one = jol.fit(loss_fn, PARAMS, jol.sgd(rate), DATA,
                      key=jax.random.fold_in(KEY, 0), **kw)  # fmt: skip
        assert bool(result.stopped_early[i, 0]) == one.stopped_early
        assert int(result.best_step[i, 0]) == one.best_step
        n = len(one.history["eval_step"])
        np.testing.assert_array_equal(result.history["eval_step"][i, 0, :n],
                                      one.history["eval_step"])  # fmt: skip
        assert (result.history["eval_step"][i, 0, n:] == -1).all()
        assert np.isnan(result.history["eval_mse"][i, 0, n:]).all()
        np.testing.assert_allclose(result.history["eval_mse"][i, 0, :n],
                                   one.history["eval_mse"], rtol=1e-5)  # fmt: skip
        np.testing.assert_allclose(result.params["w"][i, 0], one.params["w"],
                                   rtol=1e-5, atol=1e-7)  # fmt: skip
        best = one.history["eval_mse"][one.history["eval_step"] == one.best_step]
        np.testing.assert_allclose(result.score[i, 0], best[0], rtol=1e-5)
    assert result.best() == ({"learning_rate": 0.2}, 3)


def test_ranking_in_max_mode_uses_the_monitor():
    stop = jol.EarlyStopping(patience=50, monitor="score", mode="max")
    result = jol.sweep(make, {"learning_rate": RATES}, loss_fn, PARAMS, DATA,
                       steps=24, batch_size=8, eval_fn=eval_fn, eval_data=DATA,
                       early_stopping=stop)  # fmt: skip
    assert result.score_mode == "max"
    np.testing.assert_allclose(result.score, result.history["eval_score"].max(-1))
    assert result.best()[0] == {"learning_rate": 0.2}


def test_default_ranking_smooths_the_last_rows():
    result = jol.sweep(make, {"learning_rate": RATES}, loss_fn, PARAMS, DATA,
                       steps=60, batch_size=8, seeds=2)  # fmt: skip
    assert result.ranked_by == "the mean loss of the last 6 history rows"
    np.testing.assert_allclose(
        result.score, result.history["loss"][..., -6:].mean(-1), rtol=1e-6
    )
    by_score = np.argmin(result.score.mean(1))
    assert result.best() == (result.config(int(by_score)), int(by_score))
    assert result.table().splitlines()[-1] == (
        f"* best by tail_loss ({result.ranked_by}); ties go to the lower final_loss"
    )


def test_partial_last_row_and_eval_without_stopping():
    result = jol.sweep(make, {"learning_rate": [0.05, 0.1]}, loss_fn, PARAMS, DATA,
                       steps=10, batch_size=8, log_every=4, eval_fn=eval_fn,
                       eval_data=DATA, eval_every=5)  # fmt: skip
    assert result.history["step"][0, 0].tolist() == [4, 8, 10]
    assert result.history["eval_step"][1, 0].tolist() == [5, 10]
    assert result.stopped_early is None and result.best_step is None
    one = jol.fit(loss_fn, PARAMS, jol.sgd(0.1), DATA, steps=10, batch_size=8,
                  key=jax.random.fold_in(jax.random.key(0), 0))  # fmt: skip
    np.testing.assert_allclose(result.history["eval_mse"][1, 0, -1],
                               loss_fn(one.params, DATA), rtol=1e-5)  # fmt: skip


def test_eval_arguments_are_checked():
    with pytest.raises(ValueError, match="eval_every was given without eval_fn"):
        jol.sweep(make, {"learning_rate": [0.1]}, loss_fn, PARAMS, DATA, steps=2,
                  eval_every=2)  # fmt: skip
    with pytest.raises(ValueError, match="not a recorded metric"):
        jol.sweep(make, {"learning_rate": [0.1]}, loss_fn, PARAMS, DATA, steps=2,
                  early_stopping=jol.EarlyStopping(monitor="acc"))  # fmt: skip
