"""Schedules swept over one hyper-parameter at a time (an array of values):
``jit(vmap)`` over it equals a Python loop with plain numbers, new values
reuse the compiled program, and schedules run inside ``lax.scan`` and an
optimizer."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import count_compiles
from schedule_cases import SGDR_CYCLES, STEPS

import jaxopt_lite as jol

RTOL, ATOL = 1e-6, 1e-7

SWEEPS = {
    "constant.value": (lambda h: jol.constant_schedule(h), [0.1, -2.0, 3.0]),
    "linear.end_value": (lambda h: jol.linear_schedule(1.0, h, 20, 3), [0.0, 0.5, 2]),
    "linear.transition_steps": (lambda h: jol.linear_schedule(1.0, 0.0, h), [1, 7, 30]),
    "linear.transition_begin": (
        lambda h: jol.linear_schedule(1.0, 0.0, 10, h),
        [0, 5, 70],
    ),
    "polynomial.power": (
        lambda h: jol.polynomial_schedule(1.0, 0.1, h, 25, 4),
        [0.5, 1.0, 2.0, 3.5],
    ),
    "polynomial.init_value": (
        lambda h: jol.polynomial_schedule(h, 0.1, 2.0, 25),
        [1.0, 0.3, -1.0],
    ),
    "exponential.decay_rate": (
        lambda h: jol.exponential_decay(1.0, 10, h, 3, False, 0.05),
        [0.1, 0.5, 0.99, 1.0, 1.3],
    ),
    "exponential.end_value": (
        lambda h: jol.exponential_decay(1.0, 10, 0.5, end_value=h),
        [0.0, 0.1, 0.3],
    ),
    "exponential.transition_steps": (
        lambda h: jol.exponential_decay(1.0, h, 0.5, staircase=True),
        [1, 4, 9],
    ),
    "exponential.transition_begin": (
        lambda h: jol.exponential_decay(1.0, 5, 0.5, transition_begin=h),
        [0, 3, 40],
    ),
    "exponential.staircase": (
        lambda h: jol.exponential_decay(1.0, 4, 0.5, 2, h),
        [False, True],
    ),
    "cosine.alpha": (lambda h: jol.cosine_decay_schedule(1.0, 30, h), [0.0, 0.1, 1.5]),
    "cosine.exponent": (
        lambda h: jol.cosine_decay_schedule(1.0, 30, 0.1, h),
        [0.5, 1.0, 3.0],
    ),
    "cosine.decay_steps": (lambda h: jol.cosine_decay_schedule(1.0, h), [1, 10, 75]),
    "warmup_cosine.peak_value": (
        lambda h: jol.warmup_cosine_decay_schedule(0.0, h, 5, 40, 0.05),
        [0.0, 0.5, 1.0],
    ),
    "warmup_cosine.warmup_steps": (
        lambda h: jol.warmup_cosine_decay_schedule(0.0, 1.0, h, 40, 0.05),
        [0, 1, 10],
    ),
    "warmup_cosine.decay_steps": (
        lambda h: jol.warmup_cosine_decay_schedule(0.0, 1.0, 5, h),
        [6, 30, 70],
    ),
    "warmup_exp.decay_rate": (
        lambda h: jol.warmup_exponential_decay_schedule(0.0, 1.0, 5, 4, h),
        [0.3, 0.9, 1.1],
    ),
    "warmup_exp.warmup_steps": (
        lambda h: jol.warmup_exponential_decay_schedule(0.0, 1.0, h, 4, 0.5),
        [0, 3, 12],
    ),
    "warmup_constant.warmup_steps": (
        lambda h: jol.warmup_constant_schedule(0.0, 1.0, h),
        [1, 4, 50],
    ),
    "piecewise_constant.scale": (
        lambda h: jol.piecewise_constant_schedule(1.0, {10: h, 30: 0.5}),
        [0.0, 0.1, 2.0],
    ),
    "piecewise_interpolate.init_value": (
        lambda h: jol.piecewise_interpolate_schedule("cosine", h, {10: 0.1, 30: 2}),
        [1.0, 0.5, 0.01],
    ),
    "piecewise_interpolate.scale": (
        lambda h: jol.piecewise_interpolate_schedule("linear", 1.0, {10: h, 30: 2}),
        [0.0, 0.5, 3.0],
    ),
    "linear_onecycle.peak_value": (
        lambda h: jol.linear_onecycle_schedule(40, h),
        [0.1, 1.0, 3.0],
    ),
    "linear_onecycle.transition_steps": (
        lambda h: jol.linear_onecycle_schedule(h, 1.0),
        [10, 40, 77],
    ),
    "linear_onecycle.pct_start": (
        lambda h: jol.linear_onecycle_schedule(64, 1.0, h),
        [0.0, 0.25, 0.5],
    ),
    "cosine_onecycle.div_factor": (
        lambda h: jol.cosine_onecycle_schedule(40, 1.0, 0.3, h),
        [2.0, 25.0, 100.0],
    ),
    "cosine_onecycle.transition_steps": (
        lambda h: jol.cosine_onecycle_schedule(h, 1.0),
        [10, 40, 77],
    ),
    "sgdr.decay_steps": (
        lambda h: jol.sgdr_schedule(
            [dict(SGDR_CYCLES[0], decay_steps=h), SGDR_CYCLES[1]]
        ),
        [5, 10, 30],
    ),
    "join.boundary": (
        lambda h: jol.join_schedules(
            [jol.constant_schedule(1.0), jol.exponential_decay(1.0, 5, 0.5)], [h]
        ),
        [0, 10, 50],
    ),
    "step_decay.gamma": (lambda h: jol.step_decay(1.0, 7, h), [0.1, 0.5, 1.2]),
    "step_decay.step_size": (lambda h: jol.step_decay(1.0, h, 0.5), [1, 7, 30]),
    "inverse_time.decay_rate": (
        lambda h: jol.inverse_time_decay(1.0, 10, h),
        [0.0, 0.5, 4.0],
    ),
    "inverse_time.staircase": (
        lambda h: jol.inverse_time_decay(1.0, 10, 0.5, h),
        [False, True],
    ),
}


def _as_array(values):
    if isinstance(values[0], bool):
        return jnp.asarray(values, jnp.bool_)
    if all(isinstance(x, int) for x in values):
        return jnp.asarray(values, jnp.int32)
    return jnp.asarray(values, jnp.float32)


@pytest.mark.parametrize("case", list(SWEEPS))
def test_sweep_over_hyperparameter(case):
    """jit(vmap) over the hyper-parameter (steps traced too) gives the loop
    over plain numbers; other values of the same shape reuse the program."""
    factory, values = SWEEPS[case]
    expected = np.stack([np.asarray(factory(h)(STEPS)) for h in values])
    traces = []

    @jax.jit
    def swept(hps, steps):
        traces.append(None)
        return jax.vmap(lambda h: factory(h)(steps))(hps)

    hps = _as_array(values)
    with count_compiles() as compiles:
        got = swept(hps, STEPS)
        again = swept(hps[::-1], STEPS)
    assert len(traces) == 1
    assert compiles["swept"] == 1
    assert got.dtype == jnp.float32
    np.testing.assert_allclose(got, expected, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(again, expected[::-1], rtol=RTOL, atol=ATOL)


def test_schedule_inside_scan_and_optimizer():
    schedule = jol.exponential_decay(0.5, 3, 0.5, staircase=True)

    def body(count, _):
        return count + 1, schedule(count)

    _, values = jax.lax.scan(body, jnp.int32(0), length=9)
    np.testing.assert_allclose(values, 0.5 * 0.5 ** np.floor(np.arange(9) / 3))
    opt = jol.scale_by_learning_rate(schedule)
    state = opt.init(jnp.zeros(2))
    for _ in range(4):
        _, state = opt.update(jnp.ones(2), state)
    np.testing.assert_allclose(jol.current_learning_rate(state), 0.25)
