"""Differential privacy: `differentially_private_aggregate` and `dpsgd` take
per-example gradients (batch on axis 0), so the shared table, whose updates
are ordinary gradients, cannot run them: parity with optax (same key, same
noise) in float32 and float64, the clipping itself, the noise's scale and
the errors."""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from helpers import assert_trees_close, optax_reference

import jaxopt_lite as jol

BATCH = 4


def _per_example(dtype, step):
    """Per-example gradients {"w": (4, 3, 2), "b": (4, 2)}; example 1 is
    all zeros (norm 0)."""
    k1, k2 = jax.random.split(jax.random.key(step))
    w = jax.random.normal(k1, (BATCH, 3, 2), dtype) * jnp.arange(1, BATCH + 1)[
        :, None, None
    ].astype(dtype)
    b = jax.random.normal(k2, (BATCH, 2), dtype)
    return {"w": w.at[1].set(0.0), "b": b.at[1].set(0.0)}


def _run(opts, dtype, steps=2):
    """The parameters after ``steps`` updates by each of ``opts``, in one
    compiled function."""
    grads = [_per_example(dtype, step) for step in range(steps)]

    @jax.jit
    def run(grads):
        out = []
        for opt in opts:
            params = {"w": jnp.ones((3, 2), dtype), "b": jnp.zeros(2, dtype)}
            state = opt.init(params)
            for g in grads:
                updates, state = opt.update(g, state, params)
                params = optax.apply_updates(params, updates)
            out.append(params)
        return out

    return run(grads)


def _optax(make):
    """optax's transform (its dpsgd passes the deprecated ``seed``)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return optax_reference(make(optax.contrib))


def _aggregate(lib):
    return lib.differentially_private_aggregate(1.5, 0.7, key=jax.random.key(3))


def _dpsgd_nesterov(lib):
    return lib.dpsgd(0.1, 2.0, 0.5, seed=7, momentum=0.9, nesterov=True)


def test_matches_optax():
    """Same key: the same noise and the same numbers, in float32 and float64
    (dpsgd with Nesterov momentum chains the aggregation, given a seed; the
    aggregation alone is given a key)."""
    makes = (_aggregate, _dpsgd_nesterov)
    ours = _run([make(jol) for make in makes], jnp.float32)
    theirs = _run([_optax(make) for make in makes], jnp.float32)
    assert_trees_close(ours, theirs, rtol=1e-5, atol=1e-6)
    with jax.enable_x64(True):
        ours, theirs = _run(
            [_dpsgd_nesterov(jol), _optax(_dpsgd_nesterov)], jnp.float64
        )
        assert {x.dtype for x in jax.tree.leaves(ours)} == {jnp.dtype("float64")}
        assert_trees_close(ours, theirs, rtol=1e-12, atol=1e-13)


def test_clipping_and_noise_scale():
    """Without noise: the mean of the per-example gradients clipped to norm
    C (over all leaves of an example). With noise and zero gradients: a
    standard deviation of sigma C / B."""
    grads = _per_example(jnp.float32, 0)
    t = jol.differentially_private_aggregate(1.5, 0.0, key=0)
    updates, _ = jax.jit(t.update)(grads, t.init(None))
    flat = np.concatenate(
        [np.asarray(grads["w"]).reshape(BATCH, -1), np.asarray(grads["b"])], axis=1
    )
    norms = np.linalg.norm(flat, axis=1)
    factors = np.where(norms > 1.5, 1.5 / np.where(norms > 0, norms, 1), 1.0)
    expected = (flat * factors[:, None]).sum(0) / BATCH
    got = np.concatenate([np.ravel(updates["w"]), np.ravel(updates["b"])])
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-7)
    assert np.sum(norms > 1.5) >= 2  # the test clips something
    t = jol.differentially_private_aggregate(2.0, 1.5, key=1)
    update = jax.jit(t.update)
    noise, state = update(jnp.zeros((8, 20_000)), t.init(None))
    np.testing.assert_allclose(np.std(noise), 1.5 * 2.0 / 8, rtol=0.03)
    again, _ = update(jnp.zeros((8, 20_000)), state)
    assert not np.allclose(again, noise)  # the key advances


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (
            lambda: jol.differentially_private_aggregate(1.0, 1.0).update(
                {"a": jnp.ones((3, 2)), "b": jnp.ones((2,))}, None
            ),
            ValueError,
            "per-example",
        ),
        (
            lambda: jol.differentially_private_aggregate(-1.0, 1.0),
            ValueError,
            "l2_norm_clip",
        ),
        (
            lambda: jol.differentially_private_aggregate(1.0, jnp.nan),
            ValueError,
            "noise_multiplier",
        ),
        (
            lambda: jol.differentially_private_aggregate(1.0, 1.0, key=0, seed=0),
            ValueError,
            "key",
        ),
        (
            lambda: jol.dpsgd(0.1, 1.0, 1.0, seed=0, momentum=1.5),
            ValueError,
            "momentum",
        ),
    ],
)
def test_privacy_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_init_on_abstract_parameters():
    params = {"w": jax.ShapeDtypeStruct((3, 2), jnp.bfloat16)}
    state = jax.eval_shape(_dpsgd_nesterov(jol).init, params)
    assert state[1].trace["w"].shape == (3, 2)
    assert state[1].trace["w"].dtype == jnp.bfloat16
