"""Schedules: parity with optax, closed forms, jit/vmap over hyper-parameters,
no recompilation, dtypes and argument checks."""

from __future__ import annotations

import inspect
import math
import re

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from helpers import count_compiles, standard_promotion

import jaxopt_lite as jol

RTOL, ATOL = 1e-6, 1e-7
STEPS = jnp.arange(0, 81, dtype=jnp.int32)

OPTAX_NAMES = [
    "constant_schedule",
    "linear_schedule",
    "polynomial_schedule",
    "exponential_decay",
    "cosine_decay_schedule",
    "warmup_cosine_decay_schedule",
    "warmup_exponential_decay_schedule",
    "warmup_constant_schedule",
    "piecewise_constant_schedule",
    "piecewise_interpolate_schedule",
    "linear_onecycle_schedule",
    "cosine_onecycle_schedule",
    "sgdr_schedule",
    "join_schedules",
]
EXTRA_NAMES = ["step_decay", "inverse_time_decay"]

# ----------------------------------------------------------------------------
# Parity with optax: each case builds a schedule from a module (``jol`` or
# ``optax``) with the same name and arguments.

SGDR_CYCLES = [
    dict(init_value=0.0, peak_value=1.0, warmup_steps=3, decay_steps=10),
    dict(
        init_value=0.5, peak_value=0.5, warmup_steps=0, decay_steps=15, end_value=0.05
    ),
    dict(init_value=0.1, peak_value=0.8, warmup_steps=4, decay_steps=20, exponent=2.0),
]

PARITY_CASES = {
    "constant": lambda m: m.constant_schedule(0.3),
    "linear": lambda m: m.linear_schedule(1.0, 0.01, 20),
    "linear_begin": lambda m: m.linear_schedule(0.2, 1.5, 13, transition_begin=7),
    "linear_T1": lambda m: m.linear_schedule(1.0, 0.0, 1),
    "poly_p2_begin": lambda m: m.polynomial_schedule(1.0, 0.01, 2, 20, 5),
    "poly_sqrt": lambda m: m.polynomial_schedule(2.0, 0.5, 0.5, 30),
    "poly_p3_growth": lambda m: m.polynomial_schedule(0.1, 1.0, 3.0, 50, 10),
    "poly_float_T": lambda m: m.polynomial_schedule(1.0, 0.0, 1.5, 12.5),
    "exp": lambda m: m.exponential_decay(1.0, 10, 0.5),
    "exp_staircase": lambda m: m.exponential_decay(0.3, 7, 0.9, staircase=True),
    "exp_begin": lambda m: m.exponential_decay(2.0, 5, 0.7, transition_begin=11),
    "exp_end": lambda m: m.exponential_decay(1.0, 4, 0.5, end_value=0.05),
    "exp_all": lambda m: m.exponential_decay(
        1.0, 6, 0.3, transition_begin=4, staircase=True, end_value=0.02
    ),
    "exp_growth_end": lambda m: m.exponential_decay(0.01, 9, 1.5, end_value=0.2),
    "exp_growth_staircase": lambda m: m.exponential_decay(0.5, 3, 1.1, 2, True),
    "exp_rate_one_end": lambda m: m.exponential_decay(1.0, 5, 1.0, end_value=0.5),
    "exp_end_above_init": lambda m: m.exponential_decay(1.0, 5, 0.5, end_value=1.5),
    "exp_slow": lambda m: m.exponential_decay(1e-3, 1000, 0.1),
    "cosine": lambda m: m.cosine_decay_schedule(1.0, 20),
    "cosine_alpha_exp": lambda m: m.cosine_decay_schedule(0.5, 37, 0.1, 2.0),
    "cosine_T1": lambda m: m.cosine_decay_schedule(1.0, 1, 0.2),
    "warmup_cosine": lambda m: m.warmup_cosine_decay_schedule(0.0, 1.0, 5, 30),
    "warmup_cosine_end": lambda m: m.warmup_cosine_decay_schedule(
        0.1, 2.0, 10, 60, end_value=0.2, exponent=1.5
    ),
    "warmup_cosine_no_warmup": lambda m: m.warmup_cosine_decay_schedule(
        0.0, 1.0, 0, 40, 0.1
    ),
    "warmup_cosine_zero_peak": lambda m: m.warmup_cosine_decay_schedule(
        0.5, 0.0, 4, 20, 0.1
    ),
    "warmup_cosine_rising_end": lambda m: m.warmup_cosine_decay_schedule(
        0.0, 0.5, 3, 25, end_value=1.0
    ),
    "warmup_exp": lambda m: m.warmup_exponential_decay_schedule(0.0, 1.0, 5, 4, 0.5),
    "warmup_exp_all": lambda m: m.warmup_exponential_decay_schedule(
        0.1, 1.0, 8, 5, 0.6, transition_begin=3, staircase=True, end_value=0.2
    ),
    "warmup_exp_no_warmup": lambda m: m.warmup_exponential_decay_schedule(
        0.0, 1.0, 0, 10, 0.9
    ),
    "warmup_constant": lambda m: m.warmup_constant_schedule(0.1, 1.0, 8),
    "warmup_constant_down": lambda m: m.warmup_constant_schedule(1.0, 0.2, 33),
    "pw_const": lambda m: m.piecewise_constant_schedule(
        1.0, {10: 0.5, 20: 0.1, 35: 2.0}
    ),
    "pw_const_none": lambda m: m.piecewise_constant_schedule(0.7),
    "pw_const_empty": lambda m: m.piecewise_constant_schedule(0.7, {}),
    "pw_const_zero": lambda m: m.piecewise_constant_schedule(2.0, {0: 0.5, 40: 0.0}),
    "pw_interp_linear": lambda m: m.piecewise_interpolate_schedule(
        "linear", 1.0, {5: 0.5, 15: 0.1, 16: 3.0, 60: 0.2}
    ),
    "pw_interp_cosine": lambda m: m.piecewise_interpolate_schedule(
        "cosine", 1.0, {5: 0.5, 15: 0.1, 16: 3.0, 60: 0.2}
    ),
    "pw_interp_at_zero": lambda m: m.piecewise_interpolate_schedule(
        "linear", 0.3, {0: 2.0, 10: 0.5}
    ),
    "pw_interp_none": lambda m: m.piecewise_interpolate_schedule("cosine", 0.3),
    "linear_onecycle": lambda m: m.linear_onecycle_schedule(40, 1.0),
    "linear_onecycle_custom": lambda m: m.linear_onecycle_schedule(
        50, 2.0, 0.2, 0.7, 10.0, 100.0
    ),
    "linear_onecycle_odd": lambda m: m.linear_onecycle_schedule(33, 0.1),
    "cosine_onecycle": lambda m: m.cosine_onecycle_schedule(40, 1.0),
    "cosine_onecycle_custom": lambda m: m.cosine_onecycle_schedule(
        33, 2.0, 0.4, 5.0, 50.0
    ),
    "sgdr": lambda m: m.sgdr_schedule(SGDR_CYCLES),
    "sgdr_one": lambda m: m.sgdr_schedule(SGDR_CYCLES[:1]),
    "join": lambda m: m.join_schedules(
        [
            m.linear_schedule(0.0, 1.0, 10),
            m.exponential_decay(1.0, 5, 0.5),
            m.cosine_decay_schedule(0.3, 20),
        ],
        [10, 40],
    ),
}


def _evaluate(schedule, steps=STEPS):
    return np.asarray(jax.jit(jax.vmap(schedule))(steps))


def _evaluate_optax(schedule, steps=STEPS):
    # Eagerly: under jit, XLA turns optax's ``1 - t / T`` into ``1 - t * (1/T)``,
    # which is not 0 at the end (NaN for powers below 1).
    with standard_promotion():  # (optax is not written for strict promotion)
        out = jax.vmap(lambda s: jnp.asarray(schedule(s), jnp.float32))(steps)
    return np.broadcast_to(np.asarray(out), steps.shape)


@pytest.mark.parametrize("case", list(PARITY_CASES))
def test_parity_with_optax(case):
    build = PARITY_CASES[case]
    ours, theirs = build(jol), build(optax)
    expected = _evaluate_optax(theirs)
    got = _evaluate(ours)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, expected, rtol=RTOL, atol=ATOL)
    # An array of steps (eagerly) gives the same values as mapping over them.
    np.testing.assert_allclose(ours(STEPS), expected, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("transition_steps", [7, 25, 30, 1000])
def test_polynomial_reaches_end_value_exactly_under_jit(transition_steps):
    schedule = jol.polynomial_schedule(2.0, 0.5, 0.5, transition_steps, 3)
    end = jax.jit(schedule)(jnp.int32(transition_steps + 3))
    assert end == 0.5
    assert (
        jax.jit(jol.linear_schedule(1.0, 0.0, transition_steps))(transition_steps)
        == 0.0
    )


@pytest.mark.parametrize("case", ["exp_all", "warmup_cosine_end", "pw_interp_linear"])
def test_python_int_steps_match_int32_steps(case):
    schedule = PARITY_CASES[case](jol)
    for step in (0, 3, 4, 10, 17, 60, 80):
        a, b = schedule(step), schedule(jnp.int32(step))
        assert a.dtype == b.dtype == jnp.float32 and a.shape == ()
        np.testing.assert_allclose(a, b, rtol=RTOL, atol=ATOL)


def test_saturated_step_counter():
    top = jnp.iinfo(jnp.int32).max
    assert jol.exponential_decay(1.0, 10, 0.5, end_value=0.01)(top) == np.float32(0.01)
    assert jol.exponential_decay(1.0, 10, 0.5)(top) == 0.0
    assert jol.linear_schedule(1.0, 0.25, 100, 7)(top) == 0.25
    np.testing.assert_allclose(jol.cosine_decay_schedule(2.0, 50, 0.1)(top), 0.2)
    np.testing.assert_allclose(jol.step_decay(1.0, 3, 0.5)(top), 0.0)
    assert np.isfinite(jol.inverse_time_decay(1.0, 10, 0.5)(top))


@pytest.mark.parametrize("name", OPTAX_NAMES)
def test_signature_matches_optax(name):
    ours = inspect.signature(getattr(jol, name)).parameters
    theirs = inspect.signature(getattr(optax, name)).parameters
    assert list(ours) == list(theirs)
    for key in ours:
        assert ours[key].default == theirs[key].default, key
        assert ours[key].kind == theirs[key].kind, key


# ----------------------------------------------------------------------------
# The two schedules optax lacks, against closed forms in float64.


@pytest.mark.parametrize(
    ("init_value", "step_size", "gamma"),
    [(1.0, 10, 0.1), (0.3, 7, 0.5), (2.0, 1, 0.9), (0.5, 30, 1.5), (1.0, 2.5, 0.5)],
)
def test_step_decay_closed_form(init_value, step_size, gamma):
    steps = np.arange(81)
    expected = init_value * gamma ** np.floor(steps / step_size)
    got = jol.step_decay(init_value, step_size, gamma)(jnp.asarray(steps))
    np.testing.assert_allclose(got, expected, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(
        jax.vmap(jol.step_decay(init_value, step_size, gamma))(jnp.asarray(steps)),
        expected,
        rtol=RTOL,
        atol=ATOL,
    )


def test_step_decay_default_gamma_and_integer_floor():
    schedule = jol.step_decay(1.0, 3)
    np.testing.assert_allclose(
        schedule(jnp.array([0, 2, 3, 5, 6, 8, 9])),
        [1.0, 1.0, 0.1, 0.1, 0.01, 0.01, 0.001],
        rtol=RTOL,
    )
    # Large step counts are floored exactly (integer division).
    step = 3 * 5_000_000 - 1
    assert jol.step_decay(1.0, 3, 1.0 - 1e-7)(step) > jol.step_decay(
        1.0, 3, 1.0 - 1e-7
    )(step + 1)


@pytest.mark.parametrize(
    ("init_value", "decay_steps", "decay_rate", "staircase"),
    [
        (1.0, 10, 0.5, False),
        (1.0, 10, 0.5, True),
        (0.1, 3, 2.0, False),
        (0.1, 3, 2.0, True),
        (2.0, 7.5, 0.0, False),
        (0.5, 1, 1.0, True),
    ],
)
def test_inverse_time_decay_closed_form(init_value, decay_steps, decay_rate, staircase):
    steps = np.arange(81)
    progress = steps / decay_steps
    if staircase:
        progress = np.floor(progress)
    expected = init_value / (1 + decay_rate * progress)
    schedule = jol.inverse_time_decay(init_value, decay_steps, decay_rate, staircase)
    np.testing.assert_allclose(
        schedule(jnp.asarray(steps)), expected, rtol=RTOL, atol=ATOL
    )
    np.testing.assert_allclose(
        jax.vmap(schedule)(jnp.asarray(steps)), expected, rtol=RTOL, atol=ATOL
    )


def test_step_decay_is_staircase_exponential_decay():
    a = jol.step_decay(0.7, 6, 0.8)(STEPS)
    b = jol.exponential_decay(0.7, 6, 0.8, staircase=True)(STEPS)
    np.testing.assert_allclose(a, b, rtol=RTOL, atol=ATOL)


# ----------------------------------------------------------------------------
# One hyper-parameter at a time as an array: jit(vmap) over it equals a Python
# loop with plain numbers, and changing it does not recompile.

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
def test_jit_vmap_over_hyperparameter_equals_loop(case):
    factory, values = SWEEPS[case]
    expected = np.stack([np.asarray(factory(h)(STEPS)) for h in values])
    swept = jax.jit(jax.vmap(lambda h: factory(h)(STEPS)))(_as_array(values))
    assert swept.dtype == jnp.float32
    np.testing.assert_allclose(swept, expected, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("case", list(SWEEPS))
def test_no_recompilation_when_hyperparameter_changes(case):
    factory, values = SWEEPS[case]
    traces = []

    @jax.jit
    def value_at(h, step):
        traces.append(None)
        return factory(h)(step)

    hps = _as_array(values)
    with count_compiles() as compiles:
        for i, h in enumerate(values[:2]):
            for step in (9, 31):
                got = value_at(hps[i], jnp.int32(step))
                np.testing.assert_allclose(got, factory(h)(step), rtol=RTOL, atol=ATOL)
    assert len(traces) == 1
    assert compiles["value_at"] == 1


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


# ----------------------------------------------------------------------------
# Dtypes.


def test_dtype_follows_float_inputs():
    step = jnp.int32(5)
    assert jol.exponential_decay(1.0, 10, 0.5)(step).dtype == jnp.float32
    assert jol.constant_schedule(5)(step).dtype == jnp.float32
    bf16 = jnp.asarray(1.0, jnp.bfloat16)
    for schedule in (
        jol.exponential_decay(bf16, 10, 0.5),
        jol.linear_schedule(bf16, 0.0, 10),
        jol.cosine_decay_schedule(bf16, 10),
        jol.warmup_cosine_decay_schedule(0.0, bf16, 2, 10),
        jol.piecewise_constant_schedule(bf16, {2: 0.5}),
        jol.piecewise_interpolate_schedule("linear", bf16, {2: 0.5}),
        jol.linear_onecycle_schedule(10, bf16),
        jol.step_decay(bf16, 3),
        jol.inverse_time_decay(bf16, 3, 0.5),
        jol.constant_schedule(bf16),
    ):
        assert schedule(step).dtype == jnp.bfloat16
    # Computed in float32, rounded once: the same as the float32 value rounded.
    np.testing.assert_array_equal(
        jol.exponential_decay(bf16, 10, 0.37)(STEPS),
        jol.exponential_decay(1.0, 10, 0.37)(STEPS).astype(jnp.bfloat16),
    )
    f64 = np.float64(1.0)
    assert jol.exponential_decay(f64, 10, 0.5)(step).dtype == jnp.float32


def test_x64_gives_float64():
    with jax.enable_x64(True):
        value = jax.jit(jol.exponential_decay(1.0, 3, 0.5))(jnp.int64(3))
        assert value.dtype == jnp.float64 and value == 0.5
        value = jax.jit(jol.exponential_decay(np.float32(1.0), 3, 0.5))(3)
        assert value.dtype == jnp.float32 and value == 0.5


# ----------------------------------------------------------------------------
# Argument checks.

VALID_KWARGS = {
    "constant_schedule": dict(value=1.0),
    "linear_schedule": dict(init_value=1.0, end_value=0.0, transition_steps=10),
    "polynomial_schedule": dict(
        init_value=1.0, end_value=0.0, power=2.0, transition_steps=10
    ),
    "exponential_decay": dict(init_value=1.0, transition_steps=10, decay_rate=0.5),
    "cosine_decay_schedule": dict(init_value=1.0, decay_steps=10),
    "warmup_cosine_decay_schedule": dict(
        init_value=0.0, peak_value=1.0, warmup_steps=2, decay_steps=10
    ),
    "warmup_exponential_decay_schedule": dict(
        init_value=0.0,
        peak_value=1.0,
        warmup_steps=2,
        transition_steps=5,
        decay_rate=0.5,
    ),
    "warmup_constant_schedule": dict(init_value=0.0, peak_value=1.0, warmup_steps=2),
    "piecewise_constant_schedule": dict(init_value=1.0),
    "piecewise_interpolate_schedule": dict(interpolate_type="linear", init_value=1.0),
    "linear_onecycle_schedule": dict(transition_steps=10, peak_value=1.0),
    "cosine_onecycle_schedule": dict(transition_steps=10, peak_value=1.0),
    "sgdr_schedule": dict(cosine_kwargs=SGDR_CYCLES),
    "join_schedules": dict(
        schedules=[jol.constant_schedule(1.0), jol.constant_schedule(0.5)],
        boundaries=[5],
    ),
    "step_decay": dict(init_value=1.0, step_size=10),
    "inverse_time_decay": dict(init_value=1.0, decay_steps=10, decay_rate=0.5),
}

NAN, INF = math.nan, math.inf
BAD_CYCLE = dict(SGDR_CYCLES[1], decay_steps=0)

# (function, argument, bad value, text the message must contain)
BAD_VALUES = [
    ("constant_schedule", "value", NAN, "value"),
    ("linear_schedule", "transition_begin", -1, "transition_begin"),
    ("linear_schedule", "end_value", INF, "end_value"),
    ("polynomial_schedule", "power", 0.0, "power"),
    ("polynomial_schedule", "power", -1.0, "power"),
    ("polynomial_schedule", "init_value", NAN, "init_value"),
    ("exponential_decay", "decay_rate", -0.5, "decay_rate"),
    ("exponential_decay", "decay_rate", np.array([0.5, -0.1]), "decay_rate"),
    ("exponential_decay", "transition_steps", NAN, "transition_steps"),
    ("linear_schedule", "transition_steps", INF, "transition_steps"),
    ("warmup_exponential_decay_schedule", "decay_rate", -1.0, "decay_rate"),
    ("exponential_decay", "transition_begin", -1, "transition_begin"),
    ("exponential_decay", "init_value", INF, "init_value"),
    ("exponential_decay", "end_value", NAN, "end_value"),
    ("cosine_decay_schedule", "decay_steps", 0, "decay_steps"),
    ("cosine_decay_schedule", "exponent", 0.0, "exponent"),
    ("cosine_decay_schedule", "alpha", INF, "alpha"),
    ("warmup_cosine_decay_schedule", "warmup_steps", -1, "warmup_steps"),
    ("warmup_cosine_decay_schedule", "decay_steps", 2, "decay_steps"),
    ("warmup_cosine_decay_schedule", "decay_steps", 0, "decay_steps"),
    ("warmup_cosine_decay_schedule", "end_value", NAN, "end_value"),
    ("warmup_cosine_decay_schedule", "exponent", -1.0, "exponent"),
    ("warmup_exponential_decay_schedule", "warmup_steps", -2, "warmup_steps"),
    ("warmup_exponential_decay_schedule", "transition_begin", -1, "transition_begin"),
    ("warmup_constant_schedule", "warmup_steps", 0, "warmup_steps"),
    ("warmup_constant_schedule", "peak_value", NAN, "peak_value"),
    (
        "piecewise_constant_schedule",
        "boundaries_and_scales",
        {5: -0.1},
        "boundaries_and_scales",
    ),
    (
        "piecewise_constant_schedule",
        "boundaries_and_scales",
        {5: NAN},
        "boundaries_and_scales",
    ),
    (
        "piecewise_interpolate_schedule",
        "interpolate_type",
        "quadratic",
        "interpolate_type",
    ),
    (
        "piecewise_interpolate_schedule",
        "boundaries_and_scales",
        {5: -1.0},
        "boundaries_and_scales",
    ),
    (
        "piecewise_interpolate_schedule",
        "boundaries_and_scales",
        {-5: 1.0},
        "boundaries_and_scales",
    ),
    ("linear_onecycle_schedule", "transition_steps", 0, "transition_steps"),
    ("linear_onecycle_schedule", "pct_start", 1.5, "pct_start"),
    ("linear_onecycle_schedule", "pct_final", 0.1, "pct_final"),
    ("linear_onecycle_schedule", "div_factor", 0.0, "div_factor"),
    ("linear_onecycle_schedule", "final_div_factor", -1.0, "final_div_factor"),
    ("linear_onecycle_schedule", "peak_value", NAN, "peak_value"),
    ("cosine_onecycle_schedule", "transition_steps", -1, "transition_steps"),
    ("cosine_onecycle_schedule", "pct_start", -0.1, "pct_start"),
    ("cosine_onecycle_schedule", "div_factor", 0.0, "div_factor"),
    ("sgdr_schedule", "cosine_kwargs", [], "cosine_kwargs"),
    ("sgdr_schedule", "cosine_kwargs", [SGDR_CYCLES[0], BAD_CYCLE], "cosine_kwargs[1]"),
    ("sgdr_schedule", "cosine_kwargs", [BAD_CYCLE], "decay_steps"),
    ("join_schedules", "boundaries", [], "boundaries"),
    ("join_schedules", "boundaries", [1, 2], "boundaries"),
    ("join_schedules", "boundaries", [NAN], "boundaries[0]"),
    ("join_schedules", "schedules", [], "schedules"),
    ("step_decay", "step_size", 0, "step_size"),
    ("step_decay", "gamma", 0.0, "gamma"),
    ("step_decay", "init_value", NAN, "init_value"),
    ("inverse_time_decay", "decay_steps", 0, "decay_steps"),
    ("inverse_time_decay", "decay_rate", -1.0, "decay_rate"),
]


@pytest.mark.parametrize(
    ("name", "arg", "bad", "text"),
    BAD_VALUES,
    ids=[f"{n}-{a}-{i}" for i, (n, a, _, _) in enumerate(BAD_VALUES)],
)
def test_bad_values_raise_value_error_naming_the_argument(name, arg, bad, text):
    kwargs = dict(VALID_KWARGS[name], **{arg: bad})
    with pytest.raises(ValueError, match=re.escape(text)):
        getattr(jol, name)(**kwargs)


def test_join_schedules_boundaries_must_not_decrease():
    s = jol.constant_schedule(1.0)
    with pytest.raises(ValueError, match=re.escape("boundaries[1]")):
        jol.join_schedules([s, s, s], [10, 5])


BAD_TYPES = [
    ("exponential_decay", "staircase", "yes"),
    ("exponential_decay", "staircase", 1),
    ("exponential_decay", "transition_steps", "10"),
    ("exponential_decay", "decay_rate", True),
    ("exponential_decay", "init_value", 1 + 2j),
    ("inverse_time_decay", "staircase", None),
    ("piecewise_constant_schedule", "boundaries_and_scales", [(10, 0.5)]),
    ("piecewise_interpolate_schedule", "boundaries_and_scales", {"10": 0.5}),
    ("join_schedules", "schedules", [jol.constant_schedule(1.0), 0.5]),
    ("sgdr_schedule", "cosine_kwargs", SGDR_CYCLES[0]),
    ("sgdr_schedule", "cosine_kwargs", [dict(SGDR_CYCLES[0], bogus=1)]),
]


@pytest.mark.parametrize(("name", "arg", "bad"), BAD_TYPES)
def test_bad_types_raise_type_error_naming_the_argument(name, arg, bad):
    kwargs = dict(VALID_KWARGS[name], **{arg: bad})
    with pytest.raises(TypeError, match=re.escape(arg)):
        getattr(jol, name)(**kwargs)


@pytest.mark.parametrize("name", list(VALID_KWARGS))
def test_valid_kwargs_build(name):
    schedule = getattr(jol, name)(**VALID_KWARGS[name])
    assert np.isfinite(schedule(3))


BF16_CASES = [
    # (function, argument, good bfloat16 value, bad bfloat16 value)
    ("exponential_decay", "decay_rate", 0.5, -0.5),
    ("exponential_decay", "init_value", 1.0, NAN),
    ("polynomial_schedule", "power", 2.0, -1.0),
    ("inverse_time_decay", "decay_rate", 0.5, -1.0),
    ("linear_onecycle_schedule", "pct_start", 0.25, 1.5),
    ("cosine_decay_schedule", "alpha", 0.1, INF),
    ("warmup_cosine_decay_schedule", "end_value", 0.1, NAN),
]


@pytest.mark.parametrize(("name", "arg", "good", "bad"), BF16_CASES)
@pytest.mark.parametrize("as_array", [jnp.asarray, np.asarray], ids=["jax", "numpy"])
def test_bfloat16_hyperparameters_are_checked(name, arg, good, bad, as_array):
    def bf16(x):
        return as_array(x, dtype=jnp.bfloat16)

    schedule = getattr(jol, name)(**dict(VALID_KWARGS[name], **{arg: bf16(good)}))
    assert np.isfinite(np.float32(schedule(3)))
    with pytest.raises(ValueError, match=re.escape(arg)):
        getattr(jol, name)(**dict(VALID_KWARGS[name], **{arg: bf16(bad)}))


def test_bfloat16_boundaries_and_scales_are_checked():
    bf16 = np.dtype(jnp.bfloat16).type  # ml_dtypes scalars: hashable dict keys
    sched = jol.piecewise_constant_schedule(1.0, {bf16(2): bf16(0.5)})
    np.testing.assert_array_equal(sched(jnp.arange(4)), [1.0, 1.0, 0.5, 0.5])
    with pytest.raises(ValueError, match="boundaries_and_scales"):
        jol.piecewise_constant_schedule(1.0, {2: jnp.asarray(-0.5, jnp.bfloat16)})
    with pytest.raises(ValueError, match="boundaries_and_scales"):
        jol.piecewise_interpolate_schedule("linear", 1.0, {bf16(-2): 0.5})


def test_traced_hyperparameters_are_not_checked():
    # A value that would be rejected when concrete passes when traced.
    value = jax.jit(lambda r: jol.exponential_decay(1.0, 10, r)(0))(jnp.float32(0.0))
    assert value == 1.0


# ----------------------------------------------------------------------------
# Documentation.


@pytest.mark.parametrize("name", OPTAX_NAMES + EXTRA_NAMES)
def test_public_and_documented(name):
    assert name in jol.__all__
    doc = getattr(jol, name).__doc__
    assert "$$" in doc and ">>>" in doc and "Args:" in doc and "Returns:" in doc
