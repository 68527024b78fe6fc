"""The unrolled form of the loop (``unroll=``): the looped form's numbers to
float rounding, bit-identical across its own chunkings and resumes, chosen
automatically on CPU for convolutional losses, in `fit` and `sweep`."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import count_compiles

import jaxopt_lite as jol

KEY = jax.random.key(0)
X = np.asarray(jax.random.normal(jax.random.key(1), (96, 1, 4, 4)), np.float32)
Y = np.asarray(jax.random.randint(jax.random.key(2), (96,), 0, 3))
DATA = {"x": X, "y": Y}


def params(dtype=jnp.float32):
    k1, k2 = jax.random.split(jax.random.key(3))
    return {
        "k": (jax.random.normal(k1, (4, 1, 3, 3)) * 0.3).astype(dtype),
        "w": (jax.random.normal(k2, (64, 3)) * 0.1).astype(dtype),
    }


def cnn_loss(p, b):
    h = jax.nn.relu(jax.lax.conv(b["x"].astype(p["k"].dtype), p["k"], (1, 1), "SAME"))
    logits = h.reshape(h.shape[0], -1) @ p["w"]
    picked = jnp.take_along_axis(logits, b["y"][:, None], 1)[:, 0]
    return jnp.mean(jax.nn.logsumexp(logits, -1) - picked)


def evaluate(p, d):
    return {"loss": cnn_loss(p, d)}


# Two steps a call (the fewest that still put a row and an evaluation inside
# one call; the default is 8): evaluations at 5, 10, 15 end calls mid-pair,
# rows of 4 steps close inside calls, and the last row (18) is partial.
UNROLL = 2
COMMON = dict(steps=18, batch_size=16, key=KEY, progress=False, log_every=4,
              eval_fn=evaluate, eval_data=DATA, eval_every=5)  # fmt: skip
# The float32 runs add microbatches and early stopping (training loss, checked
# each epoch of 6 steps: it stops at 12, in the middle of a call's pair).
FEATURES = dict(COMMON, microbatches=2,
                early_stopping=jol.EarlyStopping(patience=1, monitor="loss",
                                                 min_delta=10.0))  # fmt: skip


def _leaves(result):
    return jax.tree.leaves((result.params, result.opt_state, result.history))


def _assert_close(a, b, tol):
    for x, y in zip(_leaves(a), _leaves(b), strict=True):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=tol, atol=tol)


@pytest.fixture(scope="module")
def float32_runs():
    """The looped and unrolled float32 runs with every feature (one compile
    of each form, read by several tests)."""
    looped = jol.fit(cnn_loss, params(), jol.adam(0.05), DATA, unroll=0, **FEATURES)
    unrolled = jol.fit(cnn_loss, params(), jol.adam(0.05), DATA, unroll=UNROLL,
                       **FEATURES)  # fmt: skip
    return looped, unrolled


def test_the_unrolled_form_gives_the_looped_numbers_float64():
    with jax.enable_x64(True):
        p = params(jnp.float64)
        looped = jol.fit(cnn_loss, p, jol.adam(0.05), DATA, unroll=0, **COMMON)
        unrolled = jol.fit(cnn_loss, p, jol.adam(0.05), DATA, unroll=UNROLL, **COMMON)
        _assert_close(unrolled, looped, 1e-10)
        assert unrolled.history["eval_step"].tolist() == [5, 10, 15]
        assert unrolled.history["step"].tolist() == [4, 8, 12, 16, 18]
        assert unrolled.params["w"].dtype == jnp.float64


def test_early_stopping_and_microbatches_in_the_unrolled_form(float32_runs):
    looped, unrolled = float32_runs
    _assert_close(unrolled, looped, 2e-4)
    assert unrolled.stopped_early and unrolled.step == looped.step == 12
    assert unrolled.best_step == looped.best_step
    assert unrolled.history["eval_step"].tolist() == [5, 10]
    assert unrolled.history["step"].tolist() == [4, 8, 12]
    assert unrolled.params["w"].dtype == jnp.float32


def test_chunkings_and_resumes_are_bit_identical(float32_runs, tmp_path):
    whole = float32_runs[1]
    chunked = jol.fit(cnn_loss, params(), jol.adam(0.05), DATA, unroll=UNROLL,
                      chunk_size=4, **FEATURES)  # fmt: skip

    class Stop(jol.Callback):
        def on_chunk(self, rows, *, step, elapsed):
            if step >= 8:
                raise KeyboardInterrupt

    jol.fit(cnn_loss, params(), jol.adam(0.05), DATA, unroll=UNROLL, chunk_size=4,
            checkpoint_dir=tmp_path, callbacks=[Stop()], **FEATURES)  # fmt: skip
    resumed = jol.fit(cnn_loss, params(), jol.adam(0.05), DATA, unroll=UNROLL,
                      checkpoint_dir=tmp_path, resume=True, **FEATURES)  # fmt: skip
    for other in (chunked, resumed):
        for a, b in zip(_leaves(other), _leaves(whole), strict=True):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_the_form_is_chosen_for_convolutions_on_cpu():
    assert jax.default_backend() == "cpu"
    short = dict(steps=4, batch_size=16, progress=False)
    with count_compiles() as compiles:
        jol.fit(cnn_loss, params(), jol.sgd(0.1), DATA, **short)
    assert compiles["fit_unrolled"] >= 1 and compiles["fit_chunk"] == 0

    def dense(p, b):
        return jnp.mean((b["x"].reshape(-1, 16) @ p["w"][:16]) ** 2)

    with count_compiles() as compiles:
        jol.fit(dense, params(), jol.sgd(0.1), DATA, **short)
    assert compiles["fit_chunk"] == 1 and compiles["fit_unrolled"] == 0


def test_a_sweep_runs_the_unrolled_form_as_fit_does():
    swept = jol.sweep(lambda learning_rate: jol.adam(learning_rate),
                      {"learning_rate": [0.01, 0.05]}, cnn_loss, params(), DATA,
                      unroll=UNROLL, **COMMON)  # fmt: skip
    for i, rate in enumerate([0.01, 0.05]):
        one = jol.fit(cnn_loss, params(), jol.adam(rate), DATA, unroll=UNROLL,
                      **{**COMMON, "key": jax.random.fold_in(KEY, 0)})  # fmt: skip
        np.testing.assert_allclose(swept.params["w"][i, 0], one.params["w"], rtol=2e-4,
                                   atol=1e-6)  # fmt: skip
        np.testing.assert_allclose(swept.history["eval_loss"][i, 0],
                                   one.history["eval_loss"], rtol=2e-4)  # fmt: skip


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"unroll": -1}, "unroll=-1"),
        ({"unroll": 4, "chunk_size": 6}, "chunk_size=6 must be a multiple of unroll=4"),
    ],
)
def test_invalid_unroll(options, match):
    with pytest.raises(ValueError, match=match):
        jol.fit(cnn_loss, params(), jol.sgd(0.1), DATA, steps=4, batch_size=16,
                **options)  # fmt: skip


@pytest.mark.parametrize("x64", [False, True], ids=["float32", "float64"])
def test_a_sweep_with_early_stopping_runs_the_unrolled_form(x64):
    """Runs that stop at different steps (two configurations, two seeds):
    the unrolled form keeps each seed's key shared by the configurations and
    gives the looped form's runs, and each run is its own `fit`."""
    with jax.enable_x64(x64):
        _sweep_with_early_stopping(jnp.float64 if x64 else jnp.float32)


def _sweep_with_early_stopping(dtype):
    x = jnp.linspace(-1, 1, 64, dtype=dtype)
    data = {"x": x, "y": 3 * x + 1}

    def loss(p, b):
        return jnp.mean((p["w"] * b["x"] + p["b"] - b["y"]) ** 2)

    start = {"w": jnp.zeros([], dtype), "b": jnp.zeros([], dtype)}
    stop = jol.EarlyStopping(patience=1, min_delta=0.05)

    def run(unroll):
        return jol.sweep(lambda learning_rate: jol.sgd(learning_rate),
                         {"learning_rate": [0.01, 0.3]}, loss, start,
                         data, seeds=2, epochs=6, batch_size=16, key=KEY,
                         unroll=unroll, eval_fn=loss, eval_data=data,
                         early_stopping=stop, progress=False)  # fmt: skip

    looped, unrolled = run(0), run(2)
    np.testing.assert_array_equal(unrolled.best_step, looped.best_step)
    np.testing.assert_array_equal(unrolled.stopped_early, looped.stopped_early)
    assert looped.stopped_early.any() and not looped.stopped_early.all()
    np.testing.assert_allclose(unrolled.params["w"], looped.params["w"], rtol=1e-5)
    np.testing.assert_allclose(unrolled.final_loss, looped.final_loss, rtol=1e-5)
    assert unrolled.params["w"].dtype == dtype
    # the independent oracle: each run alone through fit, with its seed's key
    one = jol.fit(loss, start, jol.sgd(0.3), data, epochs=6, batch_size=16,
                  key=jax.random.fold_in(KEY, 1), unroll=2, eval_fn=loss,
                  eval_data=data, early_stopping=stop, progress=False)  # fmt: skip
    np.testing.assert_allclose(unrolled.params["w"][1, 1], one.params["w"], rtol=1e-5)
