"""Behaviour of rprop, sm3, scale_by_distance_over_gradients, the optimistic
optimizers, fromage, signum and the norm scalings that the shared table
(``transform_table.py``) cannot express: where we differ from optax on
purpose (docs/optax-differences.md), shapes beyond vectors, errors."""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from helpers import assert_trees_close, optax_reference

import jaxopt_lite as jol


def _updates(t, grads, params):
    """The updates of ``t`` over the list ``grads`` (parameters fixed) and the
    last state, in one compiled function."""

    def run():
        state, out = t.init(params), []
        for g in grads:
            u, state = t.update(g, state, params)
            out.append(u)
        return out, state

    return jax.jit(run)()


# --- rprop ---------------------------------------------------------------------


def test_rprop_returns_the_step_it_computes():
    """optax 0.2.8 returns the previous step (zeros first, then one update
    late: google-deepmind/optax#1725); ours returns the current one, which
    optax keeps in its state."""
    grads = [jnp.array([g]) for g in (1.0, 1.0, 1.0, -1.0, 1.0)]
    params = jnp.zeros(1)
    ours, state = _updates(jol.scale_by_rprop(0.1), grads, params)
    np.testing.assert_allclose(
        [float(u[0]) for u in ours], [0.1, 0.12, 0.144, 0.0, 0.072], rtol=1e-6
    )
    theirs = optax_reference(optax.scale_by_rprop(0.1))
    t_state, t_updates, t_steps = theirs.init(params), [], []
    for g in grads:
        u, t_state = theirs.update(g, t_state, params)
        t_updates.append(float(u[0]))
        t_steps.append(float(t_state.prev_updates[0]))
    np.testing.assert_allclose(t_updates, [0.0, 0.1, 0.12, 0.0, 0.0], rtol=1e-6)
    np.testing.assert_array_equal([float(u[0]) for u in ours], t_steps)
    assert_trees_close(state, t_state, rtol=0, atol=0, check_structure="printed")


def test_rprop_refuses_complex_parameters():
    with pytest.raises(ValueError, match=r"scale_by_rprop.*complex.*complex64"):
        jol.rprop(0.1).init({"w": jnp.ones(2, jnp.complex64)})


# --- sm3 -------------------------------------------------------------------------


def _tensors(key, dtype=jnp.float32):
    shapes = {"m": (3, 4), "t": (2, 3, 2), "v": (5,)}
    keys = jax.random.split(key, len(shapes))
    return {
        n: jax.random.normal(k, s, dtype)
        for (n, s), k in zip(shapes.items(), keys, strict=True)
    }


@pytest.mark.parametrize("b2", [1.0, 0.9])
def test_sm3_matches_optax_on_matrices_and_rank_3(b2):
    params = _tensors(jax.random.key(0))
    grads = [_tensors(k) for k in jax.random.split(jax.random.key(1), 4)]
    ours, state = _updates(jol.scale_by_sm3(0.5, b2), grads, params)
    theirs, t_state = _updates(
        optax_reference(optax.scale_by_sm3(0.5, b2)), grads, params
    )
    assert_trees_close(ours, theirs, rtol=1e-6)
    assert_trees_close(state, t_state, rtol=1e-6, check_structure="printed")
    # one accumulator per axis: 3 + 4, 2 + 3 + 2, and 5 numbers
    sizes = {n: [a.size for a in accs] for n, accs in state.mu.items()}
    assert sizes == {"m": [3, 4], "t": [2, 3, 2], "v": [5]}


def test_sm3_traced_b2_scalar_and_complex_leaves():
    """b2 may be traced (optax branches on its value); a scalar leaf behaves
    as a one-element vector (optax fails on it); complex leaves use |g|^2
    (optax refuses them)."""
    g = jnp.array([0.6, -2.0])
    concrete = _updates(jol.scale_by_sm3(0.0, 0.9), [g, g], jnp.zeros(2))[0]
    traced = jax.jit(
        lambda b2: _updates(jol.scale_by_sm3(0.0, b2), [g, g], jnp.zeros(2))[0]
    )(jnp.float32(0.9))
    assert_trees_close(traced, concrete, rtol=1e-6)

    scalar = _updates(jol.sm3(0.1), [jnp.float32(0.6), jnp.float32(-2.0)], 1.0)
    vector = _updates(jol.sm3(0.1), [jnp.array([0.6]), jnp.array([-2.0])], jnp.ones(1))
    assert scalar[0][1].shape == ()
    np.testing.assert_array_equal(
        [u.reshape(1) for u in scalar[0]], [u for u in vector[0]]
    )

    c = jnp.array([3.0 + 4.0j, -1.0j])
    (u,), state = _updates(jol.scale_by_sm3(0.0), [c], jnp.zeros(2, jnp.complex64))
    np.testing.assert_allclose(u, np.asarray(c) / np.abs(c), rtol=1e-6)
    assert state.mu[0].dtype == jnp.float32 and u.dtype == jnp.complex64


# --- distance over gradients -------------------------------------------------------


def _moving(t, params, grads, steps=3):
    """The updates of ``t`` over ``steps`` steps of constant ``grads``,
    applying them to ``params``, in one compiled function."""

    def run():
        p, state, out = params, t.init(params), []
        for _ in range(steps):
            u, state = t.update(grads, state, p)
            p = jax.tree.map(lambda a, b: a + b, p, u)
            out.append(u)
        return out

    return jax.jit(run)()


def test_distance_over_gradients_beyond_real_vectors():
    """Matrices and scalar leaves, moving parameters: optax's numbers (its
    updates of a scalar leaf have shape (1,); ours keep the leaf's shape).
    A complex leaf moves exactly as the real leaf of its real and imaginary
    parts (optax drops the imaginary part of the initial parameters)."""
    params = {"m": jnp.ones((2, 3)), "s": jnp.float32(2.0)}
    grads = {"m": jnp.full((2, 3), 0.5), "s": jnp.float32(-1.0)}
    ours = _moving(jol.scale_by_distance_over_gradients(0.1, 0.0), params, grads)
    with jax.numpy_rank_promotion("allow"):  # optax's sums have shape (1,)
        theirs = _moving(
            optax_reference(optax.scale_by_distance_over_gradients(0.1, 0.0)),
            params,
            grads,
        )
    for u, e in zip(ours, theirs, strict=True):
        assert u["s"].shape == () and e["s"].shape == (1,)
        np.testing.assert_allclose(u["m"], e["m"], rtol=1e-6)
        np.testing.assert_allclose(u["s"], e["s"][0], rtol=1e-6)

    dog = jol.scale_by_distance_over_gradients(0.1, global_scale=-1.0)
    z, gz = jnp.array([1.0 + 2.0j, -0.5j]), jnp.array([0.5 - 1.0j, 2.0 + 0.0j])
    as_real = lambda c: jnp.stack([c.real, c.imag])
    complex_updates = _moving(dog, z, gz)
    real_updates = _moving(dog, as_real(z), as_real(gz))
    for c, r in zip(complex_updates, real_updates, strict=True):
        np.testing.assert_allclose(as_real(c), r, rtol=1e-6)
    state = jax.eval_shape(dog.init, jax.ShapeDtypeStruct((2,), jnp.complex64))
    assert state.init_params.dtype == jnp.complex64
    assert state.max_dist.dtype == state.grad_sum_of_squares.dtype == jnp.float32
    with pytest.raises(ValueError, match="params"):
        dog.update(gz, dog.init(z), None)


# --- optimistic optimizers ---------------------------------------------------------


def test_optimistic_adam_is_v2_with_the_learning_rate_as_alpha():
    """No DeprecationWarning (pytest turns warnings into errors); the numbers
    of ``optimistic_adam_v2(1.0, alpha=lr, beta=optimism)`` and of optax's;
    a schedule is refused, as by optax."""
    grads = [jnp.array([0.5, -1.0]), jnp.array([-0.2, 0.3]), jnp.array([1.0, 1.0])]
    params = jnp.zeros(2)
    ours, state = _updates(jol.optimistic_adam(0.05, 0.02), grads, params)
    v2, _ = _updates(jol.optimistic_adam_v2(1.0, alpha=0.05, beta=0.02), grads, params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        theirs = optax_reference(optax.optimistic_adam(0.05, 0.02))
    expected, _ = _updates(theirs, grads, params)
    assert_trees_close(ours, v2, rtol=1e-6)
    assert_trees_close(ours, expected, rtol=1e-6)
    assert jol.current_learning_rate(state) == 1.0
    with pytest.raises(ValueError, match="optimistic_adam_v2"):
        jol.optimistic_adam(jol.exponential_decay(0.1, 10, 0.5))


def test_optimistic_gradient_descent_on_a_bilinear_game():
    """On min_x max_y x y plain simultaneous gradient steps spiral out;
    optimistic steps converge to the saddle point (0, 0)."""

    def distance(opt, steps=200):
        def step(carry, _):
            p, s = carry
            g = jnp.array([p[1], -p[0]])  # descend in x, ascend in y
            u, s = opt.update(g, s, p)
            return (p + u, s), None

        p = jnp.array([1.0, 2.0])
        final = jax.lax.scan(step, (p, opt.init(p)), None, steps)[0][0]
        return jnp.linalg.norm(final)

    gda, ogd = jax.jit(
        lambda: (distance(jol.sgd(0.3)), distance(jol.optimistic_gradient_descent(0.3)))
    )()
    assert gda > np.hypot(1.0, 2.0) and ogd < 1e-3


# --- signum, fromage, norm scalings ----------------------------------------------


def test_signum_fromage_and_norm_scalings():
    """signum's bfloat16 accumulator gives optax's steps; fromage reports the
    rate it applies, eta / sqrt(1 + eta^2); normalize_by_update_norm does
    not overflow on huge gradients (optax's norm does: zero updates)."""
    params = jnp.array([1.0, -2.0, 0.5])
    grads = [jnp.array([0.3, -1.5, 2.0]), jnp.array([-0.4, 1.0, 1e-3])]
    ours, state = _updates(jol.signum(0.1, 0.5, jnp.bfloat16), grads, params)
    theirs, _ = _updates(
        optax_reference(optax.signum(0.1, 0.5, jnp.bfloat16)), grads, params
    )
    assert_trees_close(ours, theirs, rtol=0, atol=0, check_dtype=True)
    assert state[0].ema.dtype == jnp.bfloat16

    _, state = _updates(jol.fromage(0.5), grads, params)
    np.testing.assert_allclose(
        jol.current_learning_rate(state), 0.5 / np.sqrt(1.25), rtol=1e-7
    )

    huge = {"a": jnp.full(3, 1e19), "b": jnp.full(1, -1e19)}
    (u,), _ = _updates(jol.normalize_by_update_norm(-1.0, eps=0.0), [huge], None)
    np.testing.assert_allclose(u["a"], np.full(3, -0.5), rtol=1e-6)
    np.testing.assert_allclose(u["b"], [0.5], rtol=1e-6)
    theirs = optax_reference(optax.normalize_by_update_norm(-1.0, eps=0.0))
    (e,), _ = _updates(theirs, [huge], None)
    np.testing.assert_array_equal(e["a"], np.zeros(3))
