"""`split_real_and_imaginary`: complex leaves seen by the inner transform as
pairs of real leaves (optax's numbers, and those of the inner transform run
on the real and imaginary parts as separate parameters); real leaves pass
through; extreme values do not turn into NaN when merged."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
from helpers import assert_trees_close, optax_reference

import jaxopt_lite as jol


def test_split_matches_optax_and_separate_real_parameters():
    keys = jax.random.split(jax.random.key(0), 3)
    params = {
        "z": jax.lax.complex(*jax.random.normal(keys[0], (2, 3))),
        "r": jax.random.normal(keys[1], (3,)),
    }
    grads = [jax.tree.map(lambda x, k=k: jnp.cos(x + k), params) for k in range(4)]
    ours_t = jol.split_real_and_imaginary(jol.adam(0.1))
    theirs_t = optax_reference(optax.contrib.split_real_and_imaginary(optax.adam(0.1)))
    plain = jol.adam(0.1)  # on {"re": .., "im": .., "r": ..}
    split = lambda t: {"re": t["z"].real, "im": t["z"].imag, "r": t["r"]}

    @jax.jit
    def run():
        out = []
        for t, to in ((ours_t, lambda x: x), (theirs_t, lambda x: x), (plain, split)):
            state, updates = t.init(to(params)), []
            for g in grads:
                u, state = t.update(to(g), state, to(params))
                updates.append(u)
            out.append(updates)
        return out

    ours, theirs, separate = run()
    for u, v, w in zip(ours, theirs, separate, strict=True):
        assert u["z"].dtype == jnp.complex64 and u["r"].dtype == jnp.float32
        assert_trees_close(u, v, rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(u["z"].real, w["re"], rtol=1e-6)
        np.testing.assert_allclose(u["z"].imag, w["im"], rtol=1e-6)
        np.testing.assert_allclose(u["r"], w["r"], rtol=1e-6)


def test_infinite_parts_stay_apart():
    """optax merges with ``re + im * 1j``: an infinite imaginary part makes the
    real part NaN (inf * 0); ours builds the complex number from its parts."""
    t = jol.split_real_and_imaginary(jol.scale(1.0))
    g = jnp.array([jax.lax.complex(2.0, jnp.inf)])
    updates, _ = t.update(g, t.init(g))
    assert updates[0].real == 2.0 and np.isposinf(updates[0].imag)


def test_init_on_abstract_parameters():
    t = jol.split_real_and_imaginary(jol.adam(0.1))
    state = jax.eval_shape(t.init, jax.ShapeDtypeStruct((2,), jnp.complex64))
    assert state.inner_state[0].mu.real.dtype == jnp.float32
    assert state.inner_state[0].nu.imaginary.shape == (2,)
