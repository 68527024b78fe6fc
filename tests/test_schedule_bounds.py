"""Schedules hit their end points exactly and never change sign, compiled or
not, in float32 and float64; step counts and lengths beyond int32 work.

End points: the initial value at the start, the end value at the end, the
peak at the peak and each piece's first value at a join, whatever rounding
does in between (a linear warm-up from 0.0 once gave -1.5e-8 at step 0 under
``jit``, so the first update went uphill)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from helpers import standard_promotion

import jaxopt_lite as jol
from jaxopt_lite._host import programs

CYCLE = dict(init_value=0.0, peak_value=0.02, warmup_steps=3, decay_steps=17)

# name: (schedule, {step: the exact value there}); every end is >= 0.
END_POINTS = {
    "constant": (lambda: jol.constant_schedule(0.02), {0: 0.02, 99: 0.02}),
    "linear_up": (lambda: jol.linear_schedule(0.0, 0.02, 7), {0: 0.0, 7: 0.02}),
    "linear_down": (
        lambda: jol.linear_schedule(0.02, 0.0, 49, 3),
        {0: 0.02, 3: 0.02, 52: 0.0, 99: 0.0},
    ),
    "linear_between": (lambda: jol.linear_schedule(0.3, 0.1, 49), {0: 0.3, 49: 0.1}),
    "polynomial_sqrt": (
        lambda: jol.polynomial_schedule(0.02, 0.0, 0.5, 49, 2),
        {0: 0.02, 2: 0.02, 51: 0.0},
    ),
    "polynomial_up": (
        lambda: jol.polynomial_schedule(0.0, 0.3, 3, 13),
        {0: 0.0, 13: 0.3},
    ),
    "exponential": (
        lambda: jol.exponential_decay(0.02, 7, 0.3, 5, end_value=0.001),
        {0: 0.02, 5: 0.02, 99: 0.001},
    ),
    "staircase": (
        lambda: jol.exponential_decay(0.02, 49, 0.1, staircase=True),
        {0: 0.02, 48: 0.02},
    ),
    "cosine": (lambda: jol.cosine_decay_schedule(0.02, 49), {0: 0.02, 49: 0.0}),
    "cosine_alpha": (
        lambda: jol.cosine_decay_schedule(0.02, 49, 0.05, 2.0),
        {0: 0.02, 49: 0.02 * 0.05, 99: 0.02 * 0.05},
    ),
    "warmup_cosine": (
        lambda: jol.warmup_cosine_decay_schedule(0.0, 0.02, 7, 49, 0.001),
        {0: 0.0, 7: 0.02, 49: 0.001, 99: 0.001},
    ),
    "warmup_cosine_to_zero": (
        lambda: jol.warmup_cosine_decay_schedule(0.0, 0.02, 3, 40, exponent=0.7),
        {0: 0.0, 3: 0.02, 40: 0.0},
    ),
    "warmup_cosine_no_warmup": (
        lambda: jol.warmup_cosine_decay_schedule(0.0, 0.02, 0, 30),
        {0: 0.02, 30: 0.0},
    ),
    "warmup_exponential": (
        lambda: jol.warmup_exponential_decay_schedule(0.0, 0.02, 7, 5, 0.5, 2),
        {0: 0.0, 7: 0.02, 9: 0.02},
    ),
    "warmup_constant": (
        lambda: jol.warmup_constant_schedule(0.0, 0.02, 7),
        {0: 0.0, 7: 0.02, 99: 0.02},
    ),
    "piecewise_constant": (
        lambda: jol.piecewise_constant_schedule(0.02, {7: 0.5}),
        {0: 0.02, 6: 0.02, 7: 0.01},
    ),
    "piecewise_cosine": (
        lambda: jol.piecewise_interpolate_schedule("cosine", 0.02, {7: 0.0, 20: 1}),
        {0: 0.02, 7: 0.0, 20: 0.0},
    ),
    "piecewise_linear": (
        lambda: jol.piecewise_interpolate_schedule("linear", 0.02, {7: 2, 30: 0.25}),
        {0: 0.02, 7: 0.04, 30: 0.01},
    ),
    "linear_onecycle": (
        lambda: jol.linear_onecycle_schedule(49, 0.02),
        {0: 0.02 / 25, 14: 0.02, 41: 0.02 / 25, 49: 0.02 / (25 * 1e4)},
    ),
    "cosine_onecycle": (
        lambda: jol.cosine_onecycle_schedule(49, 0.02),
        {0: 0.02 / 25, 14: 0.02, 49: 0.02 / (25 * 1e4)},
    ),
    "sgdr": (
        lambda: jol.sgdr_schedule([CYCLE, CYCLE]),
        {0: 0.0, 3: 0.02, 17: 0.0, 20: 0.02, 34: 0.0},
    ),
    "join": (
        lambda: jol.join_schedules(
            [jol.linear_schedule(0.0, 0.02, 7), jol.cosine_decay_schedule(0.02, 13)],
            [7],
        ),
        {0: 0.0, 7: 0.02, 20: 0.0},
    ),
    "step_decay": (lambda: jol.step_decay(0.02, 7, 0.5), {0: 0.02, 6: 0.02, 7: 0.01}),
    "inverse_time": (lambda: jol.inverse_time_decay(0.02, 7, 1.0), {0: 0.02}),
}
RANGE = jnp.arange(100, dtype=jnp.int32)


def _all(schedules, steps):
    return {name: schedule(steps) for name, schedule in schedules.items()}


def _traced(schedules):
    """The schedules rebuilt inside ``jit`` with every number traced (as
    ``fit`` and ``sweep`` compile them)."""
    keys, numbers = {}, {}
    for name, schedule in schedules.items():
        keys[name], numbers[name] = programs.split_optimizer(schedule)

    @jax.jit
    def run(numbers, steps):
        rebuilt = {n: programs.join_optimizer(k, numbers[n]) for n, k in keys.items()}
        return _all(rebuilt, steps)

    return lambda steps: run(numbers, steps)


@pytest.mark.parametrize("x64", [False, True], ids=["float32", "float64"])
def test_end_points_are_exact_and_signs_never_change(x64):
    with jax.enable_x64(x64):
        dtype = jnp.float64 if x64 else jnp.float32
        schedules = {name: make() for name, (make, _) in END_POINTS.items()}
        compiled = jax.jit(lambda s: _all(schedules, s))
        at_count = jax.jit(lambda s: _all(schedules, s))  # a scalar int32 count
        runs = {
            "eager": _all(schedules, RANGE),
            "jit": compiled(RANGE),
            "traced": _traced(schedules)(RANGE),
        }
        steps = {step for _, points in END_POINTS.values() for step in points}
        counts = {step: at_count(jnp.int32(step)) for step in steps}
        for name, (_, points) in END_POINTS.items():
            for how, values in runs.items():
                values = np.asarray(values[name])
                assert values.dtype == dtype, (name, how)
                assert (values >= 0).all(), (name, how, values.min())
                for step, want in points.items():
                    assert values[step] == np.asarray(want, dtype), (name, how, step)
            for step, want in points.items():
                want = np.asarray(want, dtype)
                assert schedules[name](step) == want, (name, "Python int", step)
                assert counts[step][name] == want, (name, "count", step)


def test_staircase_drops_at_exact_multiples_under_jit():
    """``floor(49 / 49)`` is 1 even where XLA computes ``49 * (1 / 49)``,
    which is just below 1 in float64 (integer and float lengths)."""
    with jax.enable_x64(True):
        for schedule, steps, want in (
            (
                jol.exponential_decay(1.0, 49, 0.5, 3, True),
                [51, 52, 101],
                [1, 0.5, 0.25],
            ),
            (
                jol.exponential_decay(1.0, 49.0, 0.5, 3, True),
                [51, 52, 101],
                [1, 0.5, 0.25],
            ),
            (jol.step_decay(1.0, 49.0, 0.5), [48, 49, 98], [1, 0.5, 0.25]),
            (
                jol.inverse_time_decay(1.0, 49.0, 1.0, True),
                [48, 49, 98],
                [1, 0.5, 1 / 3],
            ),
        ):
            got = jax.jit(schedule)(jnp.asarray(steps, jnp.int32))
            np.testing.assert_array_equal(got, want)


# --- big steps and lengths ----------------------------------------------------

G = 10**9
BIG = {
    "cosine": lambda m: m.cosine_decay_schedule(10.0, 20 * G, 0.0),
    "linear": lambda m: m.linear_schedule(1.0, 0.0, 2**40, 2**33),
    "polynomial": lambda m: m.polynomial_schedule(1.0, 0.0, 2.0, 10 * G),
    "exponential": lambda m: m.exponential_decay(1.0, 10 * G, 0.5, 3 * G, True),
    "warmup_cosine": lambda m: m.warmup_cosine_decay_schedule(0.0, 1.0, 3 * G, 10 * G),
    "warmup_exponential": lambda m: m.warmup_exponential_decay_schedule(
        0.0, 1.0, 3 * G, G, 0.5
    ),
    "warmup_constant": lambda m: m.warmup_constant_schedule(0.0, 1.0, 4 * G),
    "piecewise_constant": lambda m: m.piecewise_constant_schedule(1.0, {3 * G: 0.5}),
    "piecewise_linear": lambda m: m.piecewise_interpolate_schedule(
        "linear", 1.0, {4 * G: 0.5}
    ),
    "linear_onecycle": lambda m: m.linear_onecycle_schedule(10 * G, 1.0),
    "cosine_onecycle": lambda m: m.cosine_onecycle_schedule(10 * G, 1.0),
    "sgdr": lambda m: m.sgdr_schedule(
        [dict(init_value=0.0, peak_value=1.0, warmup_steps=G, decay_steps=3 * G)] * 2
    ),
    "join": lambda m: m.join_schedules(
        [m.constant_schedule(1.0), m.constant_schedule(0.5)], [3 * G]
    ),
}
BIG_STEPS = [0, 2**31 - 1, 3 * G - 1, 3 * G, 4 * G + 7, 25 * G]
BIG_CLOSED_FORMS = {  # the two schedules optax lacks
    "step_decay": (
        lambda: jol.step_decay(1.0, 3 * G, 0.5),
        lambda t: 0.5 ** (t // (3 * G)),
    ),
    "inverse_time": (
        lambda: jol.inverse_time_decay(1.0, 10 * G, 1.0),
        lambda t: 1 / (1 + t / 1e10),
    ),
}


@pytest.mark.parametrize("x64", [False, True], ids=["float32", "float64"])
def test_big_steps_and_lengths(x64):
    """Lengths and steps beyond int32: Python and NumPy integers, float steps,
    the saturated int32 counter (and int64 steps under x64) give optax's
    numbers at Python-int steps under x64 (closed forms for the others)."""
    rtol = 1e-14 if x64 else 2e-6
    with jax.enable_x64(True), standard_promotion():
        expected = {n: [float(b(optax)(t)) for t in BIG_STEPS] for n, b in BIG.items()}
    for name, (_, closed_form) in BIG_CLOSED_FORMS.items():
        expected[name] = [closed_form(t) for t in BIG_STEPS]
    with jax.enable_x64(x64):
        ours = {n: b(jol) for n, b in BIG.items()}
        ours.update({n: make() for n, (make, _) in BIG_CLOSED_FORMS.items()})
        top = jnp.int32(2**31 - 1)
        counter = jax.jit(lambda s: _all(ours, s))(top)
        if x64:  # int64 steps, every schedule in one compiled program
            at_int64 = jax.jit(lambda s: _all(ours, s))(
                jnp.asarray(BIG_STEPS, jnp.int64)
            )
        for name, schedule in ours.items():
            want = expected[name]
            got = [schedule(t) for t in BIG_STEPS]
            np.testing.assert_allclose(got, want, rtol=rtol, atol=1e-30, err_msg=name)
            got = [schedule(np.int64(t)) for t in BIG_STEPS[:4]]
            np.testing.assert_allclose(got, want[:4], rtol=rtol, err_msg=name)
            got = schedule(float(BIG_STEPS[4]))
            np.testing.assert_allclose(got, want[4], rtol=rtol, err_msg=name)
            np.testing.assert_allclose(counter[name], want[1], rtol=rtol, err_msg=name)
            if x64:
                np.testing.assert_allclose(
                    at_int64[name], want, rtol=rtol, atol=1e-30, err_msg=name
                )


def test_big_lengths_are_settings_of_compiled_programs():
    """An integer beyond int32 cannot be an int32 argument of a compiled
    program: `recipe.split` keeps it in the structure (``fit`` and ``sweep``
    compile schedules that way), the other numbers stay arguments."""
    schedule = jol.cosine_decay_schedule(10.0, 20 * G, 0.5)
    key, numbers = programs.split_optimizer(schedule)
    assert numbers == [10.0, 0.5]
    rebuilt = jax.jit(lambda n, s: programs.join_optimizer(key, n)(s))
    np.testing.assert_allclose(rebuilt(numbers, 3e9), schedule(3 * G), rtol=1e-6)
    huge = jol.cosine_decay_schedule(1.0, 10**20)  # beyond int64 too
    assert 10**20 not in programs.split_optimizer(huge)[1]
    np.testing.assert_allclose(huge(3 * 10**19), 0.5 * (1 + np.cos(0.3 * np.pi)))
    assert programs.split_optimizer(jol.cosine_decay_schedule(10.0, 2 * G, 0.5))[1] == [
        10.0,
        2 * G,
        0.5,
    ]
