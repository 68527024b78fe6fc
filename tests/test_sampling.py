"""Minibatch sampling: exact permutations, order, with replacement."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxopt_lite._loop import sampling as _sampling

permute = jax.jit(_sampling.permute, static_argnums=1)
batch_indices = jax.jit(
    _sampling.batch_indices,
    static_argnames=("num_examples", "batch_size", "shuffle", "replace"),
)


@pytest.mark.parametrize("n", [1, 2, 3, 7, 64, 100, 1797, 2048, 2049])
def test_permute_is_a_bijection(n):
    p = np.asarray(permute(jnp.arange(n), n, jax.random.key(3)))
    np.testing.assert_array_equal(np.sort(p), np.arange(n))


def test_permute_depends_on_epoch():
    a = permute(jnp.arange(50), 50, jax.random.key(0), 0)
    b = permute(jnp.arange(50), 50, jax.random.key(0), 1)
    assert not (a == b).all()
    np.testing.assert_array_equal(np.sort(np.asarray(b)), np.arange(50))


def test_permute_depends_on_key_and_is_well_mixed():
    n = 1000
    keys = jax.random.split(jax.random.key(0), 64)
    perms = np.asarray(jax.vmap(lambda k: permute(jnp.arange(n), n, k))(keys))
    assert len({tuple(p) for p in perms}) == 64
    # Where example 0 lands is close to uniform over [0, n).
    landing = np.argmax(perms == 0, axis=1)
    assert abs(landing.mean() / n - 0.5) < 0.12
    # No linear structure left between position and index.
    assert max(abs(np.corrcoef(np.arange(n), p)[0, 1]) for p in perms) < 0.15


def test_shuffled_epoch_uses_each_example_once():
    n, b = 103, 10
    key = jax.random.key(0)
    for epoch in range(3):
        steps = range(epoch * (n // b), (epoch + 1) * (n // b))
        idx = np.concatenate(
            [
                np.asarray(
                    batch_indices(
                        jnp.int32(s),
                        key,
                        num_examples=n,
                        batch_size=b,
                        shuffle=True,
                        replace=False,
                    )
                )
                for s in steps
            ]
        )
        assert len(idx) == 100 and len(set(idx.tolist())) == 100
        assert idx.min() >= 0 and idx.max() < n


def test_sequential_and_with_replacement():
    key = jax.random.key(0)
    kw = dict(num_examples=10, batch_size=3)
    seq = [
        np.asarray(batch_indices(jnp.int32(s), key, shuffle=False, replace=False, **kw))
        for s in range(4)
    ]
    np.testing.assert_array_equal(
        np.concatenate(seq), [0, 1, 2, 3, 4, 5, 6, 7, 8, 0, 1, 2]
    )
    draws = np.concatenate(
        [
            np.asarray(
                batch_indices(jnp.int32(s), key, shuffle=True, replace=True, **kw)
            )
            for s in range(200)
        ]
    )
    counts = np.bincount(draws, minlength=10)
    assert counts.min() > 30 and counts.max() < 90  # 600 draws, 60 expected each
