"""Schedule arguments: bad values raise ``ValueError`` and bad kinds
``TypeError`` naming the argument (bfloat16 values included), traced values
pass unchecked, and the output dtype follows the float hyper-parameters."""

from __future__ import annotations

import math
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from schedule_cases import SGDR_CYCLES, STEPS, VALID_KWARGS

import jaxopt_lite as jol

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
