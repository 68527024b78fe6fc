"""The drivers and the loop core under ``jax_numpy_dtype_promotion="strict"``.

A user who turns strict promotion on must be able to train: nothing inside
`fit`, `minimize` or `sweep` may mix dtypes implicitly (the mean of a
window's sums over an int32 count did, with early stopping and without).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxopt_lite as jol

X = jax.random.normal(jax.random.key(0), (16, 3))
DATA = {"x": X, "y": X @ jnp.array([1.0, -2.0, 0.5])}


def loss(p, b):
    return jnp.mean((b["x"] @ p - b["y"]) ** 2)


def _fit(**kwargs):
    defaults = dict(steps=24, batch_size=4, key=jax.random.key(1), log_every=4)
    return jol.fit(loss, jnp.zeros(3), jol.adam(0.1), DATA, **defaults | kwargs)


RUNS = {
    "fit": lambda: _fit().history["loss"],
    "fit_eval_and_early_stopping": lambda: _fit(
        eval_fn=loss,
        eval_data=DATA,
        eval_every=8,
        early_stopping=jol.EarlyStopping(patience=5),
    ).history["eval_loss"],
    "fit_state_and_step_keys": lambda: jol.fit(
        lambda p, s, b, k: (loss(p, b) + 0.0 * jax.random.normal(k), s + 1),
        jnp.zeros(3),
        jol.chain(jol.adam(0.1), jol.reduce_on_plateau()),
        DATA,
        state=jnp.zeros((), jnp.int32),
        step_key=True,
        steps=12,
        batch_size=4,
        key=jax.random.key(1),
    ).history["learning_rate"],
    "fit_stream": lambda: jol.fit(
        loss, jnp.zeros(3), jol.sgd(0.1), [DATA] * 6, epochs=1
    ).history["loss"],
    "minimize_lbfgs": lambda: (
        jol.minimize(
            lambda p: loss(p, DATA), jnp.zeros(3), jol.lbfgs(), steps=50
        ).params
    ),
    "minimize_backtracking_bounds": lambda: (
        jol.minimize(
            lambda p: loss(p, DATA),
            jnp.zeros(3),
            jol.chain(jol.sgd(1.0), jol.scale_by_backtracking_linesearch(20)),
            steps=20,
            lower=jnp.zeros(3),
        ).params
    ),
    "sweep": lambda: jol.sweep(
        lambda learning_rate: jol.sgd(learning_rate),
        {"learning_rate": [0.05, 0.1]},
        loss,
        jnp.zeros(3),
        DATA,
        steps=12,
        batch_size=4,
        seeds=2,
        eval_fn=loss,
        eval_data=DATA,
        eval_every=4,
    ).history["eval_loss"],
}


@pytest.mark.parametrize("name", RUNS)
def test_runs_give_the_same_numbers_under_strict_promotion(name):
    standard = RUNS[name]()
    with jax.numpy_dtype_promotion("strict"):
        strict = RUNS[name]()
    np.testing.assert_array_equal(strict, standard)
    assert np.isfinite(np.asarray(strict)).all()
