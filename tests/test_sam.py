"""SAM beyond the shared table's row (transparent mode, state reset): the
opaque mode with ``grad_fn`` and ``batch_axis_name``, no state reset, and
NaN-free selection between the adversarial and the outer step."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from helpers import assert_trees_close, optax_reference

import jaxopt_lite as jol
import jaxopt_lite.contrib

HESS = jnp.diag(jnp.array([3.0, 1.0, 0.5]))


def _loss(p, batch=0):
    shift = 0.1 * jnp.asarray(batch, jnp.float32)
    return 0.5 * (p - shift) @ HESS @ (p - shift) + jnp.sum(jnp.sin(p))


def _pair(lib, **kwargs):
    """``lib.contrib.sam`` (``lib``: jaxopt_lite or optax) of momentum SGD and
    normalized Adam."""
    contrib = jaxopt_lite.contrib if lib is jol else optax.contrib
    return contrib.sam(
        lib.sgd(0.1, momentum=0.5),
        lib.chain(contrib.normalize(), lib.adam(0.05)),
        **kwargs,
    )


def _run(opt, steps, opaque):
    def step(carry, _):
        p, s = carry
        g = jax.grad(_loss)(p)
        if opaque:
            u, s = opt.update(g, s, p, grad_fn=jax.grad(_loss))
        else:
            u, s = opt.update(g, s, p)
        return (optax.apply_updates(p, u), s), None

    params = jnp.array([1.0, -2.0, 0.5])
    return jax.lax.scan(step, (params, opt.init(params)), None, steps)[0]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"opaque_mode": True, "sync_period": 3},
        {"opaque_mode": True, "reset_state": False},
        {"reset_state": False, "sync_period": 3},
    ],
)
def test_sam_matches_optax(kwargs):
    opaque = kwargs.get("opaque_mode", False)
    ours, theirs = jax.jit(
        lambda: (
            _run(_pair(jol, **kwargs), 7, opaque),
            _run(optax_reference(_pair(optax, **kwargs)), 7, opaque),
        )
    )()
    np.testing.assert_allclose(ours[0], theirs[0], rtol=1e-5, atol=1e-7)
    assert int(ours[1].steps_since_sync) == int(theirs[1].steps_since_sync)
    assert_trees_close(ours[1].cache, theirs[1].cache, rtol=1e-5, atol=1e-7)


def test_opaque_mode_averages_over_the_batch_axis():
    """With ``batch_axis_name`` the adversarial gradients are averaged over
    the mapped axis, as optax does."""
    params = jnp.array([1.0, -2.0, 0.5])

    def one(lib, batch):
        opt = _pair(lib, opaque_mode=True, sync_period=3, batch_axis_name="b")
        grad_fn = lambda p, k: jax.grad(_loss)(p, batch + k)
        g = jax.lax.pmean(jax.grad(_loss)(params, batch), "b")
        return opt.update(g, opt.init(params), params, grad_fn=grad_fn)[0]

    batches = jnp.arange(4.0)
    ours = jax.jit(jax.vmap(lambda b: one(jol, b), axis_name="b"))(batches)
    with jax.numpy_dtype_promotion("standard"):
        theirs = jax.jit(jax.vmap(lambda b: one(optax, b), axis_name="b"))(batches)
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(ours, jnp.broadcast_to(ours[0], ours.shape))


def test_selection_does_not_leak_nans():
    """optax picks the step with ``c * a + (1 - c) * b``, so an infinite
    adversarial step turns the outer one into NaN (0 * inf); ours picks."""
    params = jnp.zeros(2)
    for lib, expected in ((jol, [-0.1, -0.1]), (optax.contrib, [np.nan, np.nan])):
        opt = lib.sam(jol.sgd(0.1), optax.scale(jnp.inf), sync_period=1)
        with jax.numpy_dtype_promotion("standard"):
            updates, _ = opt.update(jnp.ones(2), opt.init(params), params)
        np.testing.assert_allclose(updates, expected)


def test_opaque_mode_needs_grad_fn():
    opt = jol.sam(jol.sgd(0.1), jol.sgd(0.1), opaque_mode=True)
    with pytest.raises(ValueError, match="grad_fn"):
        opt.update(jnp.ones(2), opt.init(jnp.ones(2)), jnp.ones(2))
    with pytest.raises(TypeError, match="batch_axis_name"):
        jol.sam(jol.sgd(0.1), jol.sgd(0.1), batch_axis_name=1)
