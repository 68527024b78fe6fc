"""`sweep` is `fit` over a batch of runs: every `fit` feature works in a sweep,
with the same argument names and defaults, and each run equals the `fit` call
with the documented seed (``key=jax.random.fold_in(key, seed)``).

Covered here: model state with per-step keys (a batch-norm + dropout model),
streams of batches, checkpoints and bit-identical resume, callbacks and
loggers (per-run columns), progress, interruption, and the shared signature.
"""

from __future__ import annotations

import csv
import inspect

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxopt_lite as jol
from jaxopt_lite._host.options import RunOptions

KEY = jax.random.key(3)
X = np.asarray(jax.random.normal(jax.random.key(0), (48, 3)), np.float32)
Y = X @ np.array([1.0, -2.0, 0.5], np.float32) + np.float32(0.1)
DATA = {"x": X, "y": Y}
RATES = {"learning_rate": [0.05, 0.2]}
PARAMS = {"w1": 0.3 * jnp.ones((3, 4)), "w2": 0.2 * jnp.ones((4,))}
STATE = {"mean": jnp.zeros(4)}


def make(learning_rate):
    return jol.adam(learning_rate)


def bn_dropout_loss(params, state, batch, key):
    """A batch-norm-like running mean (model state) and dropout (step key)."""
    h = jnp.tanh(batch["x"] @ params["w1"])
    mean = h.mean(0)
    new_state = {"mean": 0.9 * state["mean"] + 0.1 * mean}
    keep = jax.random.bernoulli(key, 0.75, h.shape)
    h = jnp.where(keep, (h - mean[None, :]) / 0.75, 0.0)
    return jnp.mean((h @ params["w2"] - batch["y"]) ** 2), new_state


def plain_loss(params, batch):
    h = jnp.tanh(batch["x"] @ params["w1"])
    return jnp.mean((h @ params["w2"] - batch["y"]) ** 2)


def _assert_close(a, b, rtol=2e-5):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=rtol, atol=1e-6)


def _run(result, c, s):
    return jax.tree.map(lambda x: x[c, s], result.params)


def _run_state(result, c, s):
    return jax.tree.map(lambda x: x[c, s], result.state)


def test_state_and_step_keys_each_run_equals_fit():
    options = dict(state=STATE, step_key=True, epochs=3, batch_size=12, log_every=2)
    result = jol.sweep(make, RATES, bn_dropout_loss, PARAMS, DATA, seeds=2,
                       key=KEY, **options)  # fmt: skip
    assert jax.tree.map(jnp.shape, result.state) == {"mean": (2, 2, 4)}
    for c, rate in enumerate(RATES["learning_rate"]):
        for s in range(2):
            one = jol.fit(bn_dropout_loss, PARAMS, make(rate), DATA,
                          key=jax.random.fold_in(KEY, s), **options)  # fmt: skip
            _assert_close(_run(result, c, s), one.params)
            _assert_close(_run_state(result, c, s), one.state)
            np.testing.assert_allclose(
                result.history["loss"][c, s], one.history["loss"], rtol=2e-5
            )


def _batches(n=6):
    return [{"x": X[8 * i : 8 * i + 8], "y": Y[8 * i : 8 * i + 8]} for i in range(n)]


def test_a_stream_feeds_every_run_the_same_batches():
    result = jol.sweep(make, RATES, plain_loss, PARAMS, _batches(), epochs=2,
                       chunk_size=4, key=KEY)  # fmt: skip
    assert result.step == 12
    for c, rate in enumerate(RATES["learning_rate"]):
        one = jol.fit(plain_loss, PARAMS, make(rate), _batches(), epochs=2,
                      chunk_size=4, key=KEY)  # fmt: skip
        _assert_close(_run(result, c, 0), one.params)
        np.testing.assert_allclose(
            result.history["loss"][c, 0], one.history["loss"], rtol=2e-5
        )


class _StopAfter(jol.Callback):
    """Ctrl-C after ``n`` chunks were seen."""

    def __init__(self, n):
        self.n = n

    def on_chunk(self, rows, *, step, elapsed):
        self.n -= 1
        if self.n == 0:
            raise KeyboardInterrupt


def test_checkpoint_and_resume_are_bit_identical(tmp_path):
    options = dict(
        state=STATE, step_key=True, steps=20, batch_size=8, chunk_size=4, key=KEY,
        eval_fn=lambda p, s, d: {"mse": plain_loss(p, d)}, eval_data=DATA,
        eval_every=5, seeds=2,
    )  # fmt: skip
    whole = jol.sweep(make, RATES, bn_dropout_loss, PARAMS, DATA, **options)
    part = jol.sweep(make, RATES, bn_dropout_loss, PARAMS, DATA,
                     checkpoint_dir=tmp_path, callbacks=[_StopAfter(2)],
                     **options)  # fmt: skip
    assert part.interrupted and part.step == 8
    assert jol.has_checkpoint(tmp_path)
    resumed = jol.sweep(make, RATES, bn_dropout_loss, PARAMS, DATA,
                        checkpoint_dir=tmp_path, resume=True, **options)  # fmt: skip
    assert resumed.step == 20 and not resumed.interrupted

    def parts(r):
        return jax.tree.leaves((r.params, r.state, r.opt_state, r.history))

    for a, b in zip(parts(whole), parts(resumed), strict=True):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="checkpoint_dir"):
        jol.sweep(make, RATES, bn_dropout_loss, PARAMS, DATA,
                  checkpoint_dir=tmp_path, **options)  # fmt: skip


def test_loggers_get_per_run_columns(tmp_path):
    path = tmp_path / "log.csv"
    result = jol.sweep(make, RATES, plain_loss, PARAMS, DATA, seeds=2, steps=10,
                       batch_size=8, log_every=2, chunk_size=4, key=KEY,
                       callbacks=[jol.CSVLogger(path)])  # fmt: skip
    with open(path) as f:
        table = list(csv.DictReader(f))
    assert [int(r["step"]) for r in table] == [2, 4, 6, 8, 10]
    # run index = config * seeds + seed
    for c in range(2):
        for s in range(2):
            got = [float(r[f"loss/{2 * c + s}"]) for r in table]
            np.testing.assert_allclose(got, result.history["loss"][c, s], rtol=1e-6)


def test_progress_and_interruption(capsys):
    result = jol.sweep(make, RATES, plain_loss, PARAMS, DATA, steps=40,
                       batch_size=8, chunk_size=5, progress=True,
                       callbacks=[_StopAfter(3)], key=KEY)  # fmt: skip
    assert result.interrupted and result.step == 15
    assert result.history["loss"].shape == (2, 1, 15)
    assert "sweep" in capsys.readouterr().err


def test_fit_and_sweep_share_every_option_name_and_default():
    parameters = inspect.signature(jol.fit).parameters
    shared = {n: p.default for n, p in parameters.items() if n in RunOptions._fields}
    assert shared == RunOptions()._asdict()
    assert list(inspect.signature(jol.sweep).parameters)[-1] == "options"
    with pytest.raises(
        TypeError, match=r"unexpected keyword argument\(s\) \['stepz'\]"
    ):
        jol.sweep(make, RATES, plain_loss, PARAMS, DATA, stepz=3)
