"""The schedule cases the schedule tests share: optax's names, the parity
table (each case builds a schedule from a module, ``jol`` or ``optax``, with
the same name and arguments) and one valid set of arguments per factory."""

from __future__ import annotations

import jax.numpy as jnp
import optax

import jaxopt_lite as jol

STEPS = jnp.arange(0, 81, dtype=jnp.int32)

# The public schedules, and which of them optax has.
SCHEDULE_NAMES = [
    name
    for name in jol.__all__
    if getattr(jol, name).__module__.startswith("jaxopt_lite._schedules.")
]
OPTAX_NAMES = [name for name in SCHEDULE_NAMES if hasattr(optax, name)]
EXTRA_NAMES = [name for name in SCHEDULE_NAMES if not hasattr(optax, name)]

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
