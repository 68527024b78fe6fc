"""Schedules: parity with optax in float32 (one compiled program for the
whole table, and eagerly), Python-int steps, the two schedules optax lacks
against closed forms, signatures and documentation. Sweeps over
hyper-parameters are in test_schedule_sweeps.py, argument checks and dtypes
in test_schedule_checks.py, float64, end points, signs and big steps in
test_schedule_precision.py."""

from __future__ import annotations

import inspect

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from helpers import standard_promotion
from schedule_cases import EXTRA_NAMES, OPTAX_NAMES, PARITY_CASES, STEPS

import jaxopt_lite as jol

RTOL, ATOL = 1e-6, 1e-7


def _optax_values(case):
    # Eagerly: under jit, XLA turns optax's ``1 - t / T`` into ``1 - t * (1/T)``,
    # which is not 0 at the end (NaN for powers below 1).
    with standard_promotion():  # (optax is not written for strict promotion)
        schedule = PARITY_CASES[case](optax)
        out = jax.vmap(lambda s: jnp.asarray(schedule(s), jnp.float32))(STEPS)
    return np.broadcast_to(np.asarray(out), STEPS.shape)


def test_parity_with_optax():
    """Every case of the table gives optax's numbers at steps 0 to 80: all
    of them from one compiled program (jit of vmap), and eagerly from an
    array of steps."""
    ours = {case: build(jol) for case, build in PARITY_CASES.items()}
    compiled = jax.jit(lambda s: {c: jax.vmap(f)(s) for c, f in ours.items()})(STEPS)
    for case, schedule in ours.items():
        expected = _optax_values(case)
        assert compiled[case].dtype == jnp.float32, case
        np.testing.assert_allclose(
            compiled[case], expected, rtol=RTOL, atol=ATOL, err_msg=case
        )
        np.testing.assert_allclose(
            schedule(STEPS), expected, rtol=RTOL, atol=ATOL, err_msg=case
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
# Documentation.


@pytest.mark.parametrize("name", OPTAX_NAMES + EXTRA_NAMES)
def test_public_and_documented(name):
    assert name in jol.__all__
    doc = getattr(jol, name).__doc__
    assert "$$" in doc and ">>>" in doc and "Args:" in doc and "Returns:" in doc
