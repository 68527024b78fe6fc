"""Training at scale, inside the fused loop: in-step gradient accumulation
(against the unsplit batch), mixed precision and loss scaling (against
float32 accuracy), loss-spike skipping (against the run without the bad
batch); each in float32 and float64 where it applies, in `fit` and `sweep`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sklearn.datasets import load_digits

import jaxopt_lite as jol

KEY = jax.random.key(0)


def _regression(dtype=np.float32, n=64):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 3)).astype(dtype)
    w = rng.uniform(0.5, 2.0, size=n).astype(dtype)  # per-example weights
    return {"x": x, "y": x @ np.array([1.0, -2.0, 0.5], dtype), "w": w}


def mean_loss(p, b):
    return jnp.mean((b["x"] @ p - b["y"]) ** 2)


def weighted_loss(p, b):
    return jnp.sum(b["w"] * (b["x"] @ p - b["y"]) ** 2) / jnp.sum(b["w"])


@pytest.mark.parametrize("x64", [False, True], ids=["float32", "float64"])
def test_microbatches_equal_the_whole_batch(x64):
    with jax.enable_x64(x64):
        dtype = np.float64 if x64 else np.float32
        data, p0 = _regression(dtype), jnp.zeros(3, dtype)
        common = dict(steps=12, batch_size=16, key=KEY, progress=False)
        for loss, rule in ((mean_loss, 4), (weighted_loss, jol.Microbatches(4, "w"))):
            whole = jol.fit(loss, p0, jol.adam(0.1), data, **common)
            split = jol.fit(loss, p0, jol.adam(0.1), data, microbatches=rule, **common)
            tol = 1e-12 if x64 else 2e-6
            np.testing.assert_allclose(split.params, whole.params, rtol=tol, atol=tol)
            np.testing.assert_allclose(
                split.history["loss"], whole.history["loss"], rtol=tol
            )
            assert split.params.dtype == dtype


def test_weighted_microbatches_normalise_by_the_whole_batch_weight():
    data = _regression()
    batch = {k: v[:16] for k, v in data.items()}
    p = jnp.array([0.3, 0.1, -0.2])
    whole = jax.grad(weighted_loss)(p, batch)
    parts = [{k: v[4 * i : 4 * i + 4] for k, v in batch.items()} for i in range(4)]
    naive = sum(jax.grad(weighted_loss)(p, q) for q in parts) / 4  # MaxText's bug
    assert not np.allclose(naive, whole, rtol=1e-3)
    got = jol.fit(weighted_loss, p, jol.sgd(1.0), batch, steps=1,
                  microbatches=jol.Microbatches(4, lambda b: b["w"]),
                  shuffle=False, progress=False)  # fmt: skip
    np.testing.assert_allclose(p - got.params, whole, rtol=1e-5)


def _digits():
    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype(np.float32)
    return {"x": x[:1400], "y": y[:1400]}, {"x": x[1400:], "y": y[1400:]}


def _mlp(key):
    k1, k2 = jax.random.split(key)
    return {
        "w1": jax.random.normal(k1, (64, 64)) * 0.125,
        "b1": jnp.zeros(64),
        "w2": jax.random.normal(k2, (64, 10)) * 0.125,
        "b2": jnp.zeros(10),
    }


def _logits(p, x):
    return jnp.tanh(x @ p["w1"] + p["b1"][None]) @ p["w2"] + p["b2"][None]


def _ce(p, b):
    logits = _logits(p, b["x"]).astype(jnp.float32)
    picked = jnp.take_along_axis(logits, b["y"][:, None], axis=1)[:, 0]
    return jnp.mean(jax.nn.logsumexp(logits, axis=1) - picked)


def _accuracy(p, d):
    return float(jnp.mean(jnp.argmax(_logits(p, d["x"]), axis=1) == d["y"]))


def test_mixed_precision_reaches_float32_accuracy():
    train, test = _digits()
    common = dict(epochs=10, batch_size=64, key=KEY, progress=False)
    params = _mlp(jax.random.key(1))
    full = jol.fit(_ce, params, jol.adam(1e-2), train, **common)
    bf16 = jol.fit(_ce, params, jol.adam(1e-2), train, compute_dtype=jnp.bfloat16,
                   **common)  # fmt: skip
    f16 = jol.fit(_ce, params, jol.adam(1e-2), train, compute_dtype=jnp.float16,
                  loss_scale="dynamic", **common)  # fmt: skip
    reference = _accuracy(full.params, test)
    assert reference > 0.9
    assert _accuracy(bf16.params, test) >= reference - 0.01
    assert _accuracy(f16.params, test) >= reference - 0.015
    for result in (bf16, f16):  # master weights and state stay float32
        assert {np.dtype(x.dtype) for x in jax.tree.leaves(result.params)} == {
            np.dtype(np.float32)
        }
        assert all(np.isfinite(x).all() for x in jax.tree.leaves(result.params))
        mu = result.opt_state[0].mu
        assert {np.dtype(x.dtype) for x in jax.tree.leaves(mu)} == {
            np.dtype(np.float32)
        }
    scale = f16.history["loss_scale"]
    # every overflow halves the scale once (the step skipped and counted)
    assert f16.skipped == int(np.log2(2.0**15 / scale.min()))
    assert "loss_scale" not in bf16.history


def test_the_loss_scale_grows_and_resumes_bit_identically(tmp_path):
    data = _regression()
    scale = jol.DynamicLossScale(initial=4.0, factor=2.0, growth_interval=3)
    common = dict(steps=12, batch_size=16, chunk_size=4, key=KEY, progress=False,
                  compute_dtype=jnp.float16, loss_scale=scale)  # fmt: skip
    whole = jol.fit(mean_loss, jnp.zeros(3), jol.adam(0.05), data, **common)
    expected = [4.0, 4.0, 8.0, 8, 8, 16, 16, 16, 32, 32, 32, 64]
    np.testing.assert_array_equal(whole.history["loss_scale"], expected)

    class Stop(jol.Callback):
        def on_chunk(self, rows, *, step, elapsed):
            if step == 8:
                raise KeyboardInterrupt

    jol.fit(mean_loss, jnp.zeros(3), jol.adam(0.05), data, checkpoint_dir=tmp_path,
            callbacks=[Stop()], **common)  # fmt: skip
    resumed = jol.fit(mean_loss, jnp.zeros(3), jol.adam(0.05), data,
                      checkpoint_dir=tmp_path, resume=True, **common)  # fmt: skip
    np.testing.assert_array_equal(resumed.params, whole.params)
    np.testing.assert_array_equal(
        resumed.history["loss_scale"], whole.history["loss_scale"]
    )


def _batches(spike_at=None):
    data = _regression(n=160)
    out = []
    for i in range(10):
        batch = {k: v[16 * i : 16 * i + 16] for k, v in data.items()}
        if i == spike_at:
            batch = {**batch, "y": batch["y"] * 1e4}  # huge but finite targets
        out.append(batch)
    return out


def test_a_spike_batch_does_not_move_the_parameters():
    skip = jol.SpikeSkip(window=5, threshold=6.0)
    # chunks of 4: the 7- and 8-step runs share one compiled chunk
    common = dict(key=KEY, progress=False, skip_spikes=skip, chunk_size=4)
    before = jol.fit(mean_loss, jnp.zeros(3), jol.adam(0.05), _batches(7), steps=7,
                     **common)  # fmt: skip
    through = jol.fit(mean_loss, jnp.zeros(3), jol.adam(0.05), _batches(7), steps=8,
                      **common)  # fmt: skip
    assert through.skipped == 1 and through.history["skipped"].tolist()[7] == 1
    np.testing.assert_array_equal(through.params, before.params)
    unguarded = jol.fit(mean_loss, jnp.zeros(3), jol.adam(0.05), _batches(7), steps=8,
                        key=KEY, progress=False)  # fmt: skip
    assert not np.allclose(unguarded.params, before.params, atol=1e-3)


def test_every_feature_in_a_sweep_equals_fit():
    data = _regression()
    options = dict(steps=10, batch_size=16, key=KEY, microbatches=2,
                   skip_spikes=jol.SpikeSkip(window=4))  # fmt: skip
    swept = jol.sweep(lambda learning_rate: jol.adam(learning_rate),
                      {"learning_rate": [0.02, 0.1]}, mean_loss, jnp.zeros(3), data,
                      **options)  # fmt: skip
    for i, rate in enumerate([0.02, 0.1]):
        one = jol.fit(mean_loss, jnp.zeros(3), jol.adam(rate), data, progress=False,
                      **{**options, "key": jax.random.fold_in(KEY, 0)})  # fmt: skip
        np.testing.assert_allclose(swept.params[i, 0], one.params, rtol=1e-5, atol=1e-6)
        assert swept.skipped[i, 0] == one.skipped
    half = jol.sweep(lambda learning_rate: jol.adam(learning_rate),
                     {"learning_rate": [0.02, 0.1]}, mean_loss, jnp.zeros(3), data,
                     compute_dtype=jnp.float16, loss_scale="dynamic",
                     **options)  # fmt: skip
    assert half.params.dtype == jnp.float32 and "loss_scale" in half.history
    one = jol.fit(mean_loss, jnp.zeros(3), jol.adam(0.1), data, progress=False,
                  compute_dtype=jnp.float16, loss_scale="dynamic",
                  **{**options, "key": jax.random.fold_in(KEY, 0)})  # fmt: skip
    np.testing.assert_allclose(half.params[1, 0], one.params, rtol=2e-3, atol=1e-3)
    assert half.skipped[1, 0] == one.skipped > 0  # the first steps overflow


@pytest.mark.parametrize(
    ("options", "error", "match"),
    [
        (
            {"microbatches": 3},
            ValueError,
            r"microbatches=3 must divide the batch size \(16\)",
        ),
        ({"microbatches": 0}, ValueError, "microbatches=0"),
        (
            {"microbatches": jol.Microbatches(2, weight=3)},
            TypeError,
            "microbatches.weight",
        ),
        ({"compute_dtype": jnp.int8}, ValueError, "compute_dtype=.* is not allowed"),
        ({"loss_scale": "auto"}, ValueError, "loss_scale='auto'"),
        ({"loss_scale": -1.0}, ValueError, "loss_scale=-1.0"),
        (
            {"loss_scale": jol.DynamicLossScale(factor=1.0)},
            ValueError,
            "loss_scale.factor",
        ),
        ({"skip_spikes": 3}, TypeError, "skip_spikes must be a jaxopt_lite.SpikeSkip"),
        ({"skip_spikes": jol.SpikeSkip(window=1)}, ValueError, "skip_spikes.window=1"),
        ({"skip_spikes": jol.SpikeSkip(metric="x")}, ValueError, "skip_spikes.metric"),
    ],
)
def test_invalid_options_are_refused_by_name(options, error, match):
    with pytest.raises(error, match=match):
        jol.fit(mean_loss, jnp.zeros(3), jol.adam(0.1), _regression(), steps=1,
                batch_size=16, **options)  # fmt: skip
