"""Schedule-Free: the learning-rate schedule is read from step 0 (optax reads
it from step 1, optax PR 1744: a warm-up from 0 then gives its first
averaging weight to a step the base optimizer did not take), checked
against a NumPy transcription of the method; with a constant rate every
number is optax's (the shared table's rows check the trajectories)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from helpers import optax_reference

import jaxopt_lite as jol

CENTER = np.array([1.0, -2.0, 0.5])


def _grad(y):
    return 2.0 * (y - CENTER)


def _numpy_schedule_free_sgd(rates, b1, steps, y0):
    """Defazio et al.'s Schedule-Free SGD, the rate of update t (t = 0, 1,
    ...) being ``rates(t)``: (y, z, weight_sum) after each update."""
    y = z = np.asarray(y0, np.float64)
    weight_sum = max_lr = 0.0
    out = []
    for t in range(steps):
        rate = rates(t)
        z_new = z - rate * _grad(y)
        max_lr = max(max_lr, rate)
        weight = max_lr**2
        weight_sum += weight
        ck = weight / weight_sum if weight_sum > 0 else 0.0
        x = (1 - ck) * (y - (1 - b1) * z) / b1 + ck * z_new
        y, z = b1 * x + (1 - b1) * z_new, z_new
        out.append((y, z, weight_sum))
    return out


def _trajectory(opt, y0, steps):
    y, state = jnp.asarray(y0), opt.init(jnp.asarray(y0))
    out = []
    for _ in range(steps):
        updates, state = opt.update(_grad(y), state, y)
        out.append((updates, state))
        y = optax.apply_updates(y, updates)
    return out


def test_warmup_is_read_from_step_0():
    """Warm-up from 0 over 4 steps: the first update is 0 (to rounding), no averaging
    weight is given to it (optax gives it the weight of step 1), and the
    trajectory is the NumPy method's (1e-12 in float64, 1e-6 in float32)."""
    y0 = np.array([3.0, 1.0, -1.0])
    # (the schedule's values at int32 counts, as the optimizer reads them)
    for x64, rtol in ((False, 1e-6), (True, 1e-12)):
        with jax.enable_x64(x64):
            warmup = jol.warmup_constant_schedule(0.0, 0.2, 4)
            rate = lambda t, w=warmup: float(w(jnp.int32(t)))
            expected = _numpy_schedule_free_sgd(rate, 0.9, 8, y0)
            opt = jol.schedule_free_sgd(0.2, warmup_steps=4)
            y0_ = jnp.asarray(y0, jnp.float64 if x64 else jnp.float32)
            run = _trajectory(opt, y0_, 8)
            first_update, first_state = run[0]
            # 0 up to rounding: y - (b1 x + (1 - b1) z) with x, z = y
            np.testing.assert_allclose(first_update, np.zeros(3), atol=4 * rtol)
            assert float(first_state.weight_sum) == 0.0
            assert float(first_state.max_lr) == 0.0
            assert int(first_state.step_count) == 1
            y = y0_
            for (updates, state), (y_np, z_np, weight_sum) in zip(
                run, expected, strict=True
            ):
                y = y + updates
                assert y.dtype == y0_.dtype
                np.testing.assert_allclose(y, y_np, rtol=rtol, atol=rtol)
                np.testing.assert_allclose(state.z, z_np, rtol=rtol, atol=rtol)
                np.testing.assert_allclose(state.weight_sum, weight_sum, rtol=rtol)
            # after the second update all the weight is on z_2: x = z
            x2 = jol.schedule_free_eval_params(run[1][1], y0_ + run[0][0] + run[1][0])
            np.testing.assert_allclose(x2, run[1][1].z, rtol=rtol, atol=rtol)
    theirs = optax_reference(optax.contrib.schedule_free_sgd(0.2, warmup_steps=4))
    _, their_state = theirs.update(
        _grad(jnp.asarray(y0, jnp.float32)),
        theirs.init(jnp.asarray(y0, jnp.float32)),
        jnp.asarray(y0, jnp.float32),
    )
    warmup = jol.warmup_constant_schedule(0.0, 0.2, 4)
    np.testing.assert_allclose(their_state.weight_sum, warmup(jnp.int32(1)) ** 2)


def test_warmup_adamw_first_update_is_zero_and_then_moves():
    opt = jol.schedule_free_adamw(0.1, warmup_steps=3, weight_decay=0.01)
    run = _trajectory(opt, np.array([3.0, 1.0, -1.0], np.float32), 3)
    np.testing.assert_allclose(run[0][0], np.zeros(3), atol=1e-6)
    assert float(run[0][1].weight_sum) == 0.0
    assert np.all(np.abs(run[1][0]) > 0)
    np.testing.assert_allclose(run[2][1].max_lr, 0.1 * 2 / 3, rtol=1e-6)


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        (
            lambda: jol.schedule_free_sgd(0.1, b1=0.8, weight_lr_power=1.5),
            lambda: optax.contrib.schedule_free_sgd(0.1, b1=0.8, weight_lr_power=1.5),
        ),
        (
            lambda: jol.schedule_free_adamw(0.05, b2=0.99, weight_decay=0.1),
            lambda: optax.contrib.schedule_free_adamw(0.05, b2=0.99, weight_decay=0.1),
        ),
    ],
)
def test_constant_rate_matches_optax(ours, theirs):
    """Parameters, evaluation parameters and the averaging state: optax's."""
    y0 = np.array([3.0, 1.0, -1.0], np.float32)
    for (u, s), (v, r) in zip(
        _trajectory(ours(), y0, 6),
        _trajectory(optax_reference(theirs()), y0, 6),
        strict=True,
    ):
        np.testing.assert_allclose(u, v, rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(s.weight_sum, r.weight_sum, rtol=1e-6)
        np.testing.assert_allclose(s.max_lr, r.max_lr, rtol=1e-6)
        np.testing.assert_allclose(s.z, r.z, rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(
            jol.schedule_free_eval_params(s, y0),
            optax.contrib.schedule_free_eval_params(r, y0),
            rtol=1e-6,
        )


def test_state_dtypes_and_eval_params_errors():
    params = {"w": jnp.ones(3, jnp.bfloat16)}
    opt = jol.schedule_free_sgd(0.1, state_dtype=jnp.float32)
    state = opt.init(params)
    assert state.z["w"].dtype == jnp.float32
    assert state.max_lr.dtype == jnp.float32  # at least float32 for bfloat16
    updates, new_state = jax.jit(opt.update)(params, state, params)
    assert updates["w"].dtype == jnp.bfloat16
    dtypes = lambda tree: jax.tree.map(lambda x: x.dtype, tree)
    assert dtypes(new_state) == dtypes(state)
    assert jol.schedule_free_eval_params(new_state, params)["w"].dtype == jnp.bfloat16
    with pytest.raises(ValueError, match="ScheduleFreeState"):
        jol.schedule_free_eval_params(jol.sgd(0.1).init(params), params)
    with pytest.raises(ValueError, match="params"):
        opt.update(params, state)
