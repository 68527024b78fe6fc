"""Schedules under x64 are float64 to the last bits: at the optimizer's int32
step count as at Python-int steps, compiled or not, for every family, and in
every transform that evaluates a schedule (the rate an optimizer applies is
the schedule's float64 value).

optax's schedules divide an int32 count in float32 even under x64, so the
reference here is optax at int64 (or Python-int) steps, where its
arithmetic is float64, or a closed form in NumPy's float64."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from helpers import standard_promotion
from schedule_cases import PARITY_CASES

import jaxopt_lite as jol

RTOL = 4e-15  # a few float64 roundings (float32 would be ~1e-8)
STEPS = np.arange(90)
PY_STEPS = (0, 1, 7, 20, 41, 89)

# Non-dyadic values (0.02 is not a float32 number) for every family.
CYCLE = dict(init_value=0.001, peak_value=0.02, warmup_steps=6, decay_steps=23)
X64_CASES = {
    "constant": lambda m: m.constant_schedule(0.02),
    "linear": lambda m: m.linear_schedule(0.02, 0.001, 37, 5),
    "polynomial": lambda m: m.polynomial_schedule(0.02, 0.001, 2.5, 41, 3),
    "exponential": lambda m: m.exponential_decay(0.02, 7, 0.83, 4, False, 0.003),
    "exponential_staircase": lambda m: m.exponential_decay(0.02, 7, 0.83, 4, True),
    "cosine": lambda m: m.cosine_decay_schedule(0.02, 43, 0.1, 1.7),
    "warmup_cosine": lambda m: m.warmup_cosine_decay_schedule(
        0.0, 0.02, 7, 50, 0.001, 1.3
    ),
    "warmup_exponential": lambda m: m.warmup_exponential_decay_schedule(
        0.001, 0.02, 6, 5, 0.7, 2, False, 0.002
    ),
    "warmup_constant": lambda m: m.warmup_constant_schedule(0.001, 0.02, 9),
    "piecewise_constant": lambda m: m.piecewise_constant_schedule(
        0.02, {7: 0.3, 19: 0.7}
    ),
    "piecewise_linear": lambda m: m.piecewise_interpolate_schedule(
        "linear", 0.02, {6: 0.3, 17: 2.5, 40: 0.1}
    ),
    "piecewise_cosine": lambda m: m.piecewise_interpolate_schedule(
        "cosine", 0.02, {6: 0.3, 17: 2.5, 40: 0.1}
    ),
    "linear_onecycle": lambda m: m.linear_onecycle_schedule(47, 0.02, 0.3, 0.8),
    "cosine_onecycle": lambda m: m.cosine_onecycle_schedule(47, 0.02, 0.3),
    "sgdr": lambda m: m.sgdr_schedule([CYCLE, dict(CYCLE, decay_steps=31)]),
    "join": lambda m: m.join_schedules(
        [m.linear_schedule(0.0, 0.02, 10), m.cosine_decay_schedule(0.02, 33)],
        [10],
    ),
}
# The two schedules optax lacks: builders and NumPy closed forms.
CLOSED_FORMS = {
    "step_decay": (
        lambda: jol.step_decay(0.02, 7, 0.83),
        lambda t: 0.02 * 0.83 ** np.floor(t / 7),
    ),
    "inverse_time": (
        lambda: jol.inverse_time_decay(0.02, 9, 0.37),
        lambda t: 0.02 / (1 + 0.37 * t / 9),
    ),
    "inverse_time_staircase": (
        lambda: jol.inverse_time_decay(0.02, 9, 0.37, True),
        lambda t: 0.02 / (1 + 0.37 * np.floor(t / 9)),
    ),
}


def _assert_float64_close(got, expected, msg):
    got = np.asarray(got)
    assert got.dtype == np.float64, msg
    np.testing.assert_allclose(got, expected, rtol=RTOL, atol=1e-300, err_msg=msg)


def _optax_float64(cases):
    """optax's values at int64 steps 0 to 89 (float64 arithmetic)."""
    expected = {}
    with standard_promotion():
        for name, build in cases.items():
            schedule = build(optax)
            values = jax.vmap(lambda s, f=schedule: jnp.asarray(f(s)))(STEPS)
            expected[name] = np.broadcast_to(np.asarray(values), STEPS.shape)
    return expected


def _all(schedules, steps):
    return {name: schedule(steps) for name, schedule in schedules.items()}


def test_every_family_is_float64_at_int32_and_python_int_steps():
    """Every family (non-dyadic values) at int32 steps, eagerly and in one
    compiled program (with the float32 parity table), at Python-int steps
    and at a compiled scalar int32 count."""
    with jax.enable_x64(True):
        ours = {name: build(jol) for name, build in X64_CASES.items()}
        expected = _optax_float64(X64_CASES)
        for name, (make, closed_form) in CLOSED_FORMS.items():
            ours[name], expected[name] = make(), closed_form(STEPS.astype(float))
        table = {f"table {n}": build for n, build in PARITY_CASES.items()}
        expected.update(_optax_float64(table))
        table = {name: build(jol) for name, build in table.items()}
        steps32 = jnp.asarray(STEPS, jnp.int32)
        everything = {**ours, **table}
        compiled = jax.jit(lambda s: _all(everything, s))(steps32)
        for name, schedule in everything.items():
            _assert_float64_close(compiled[name], expected[name], f"{name} jit")
            if name in ours:  # (the table's cases eagerly: in float32 only)
                _assert_float64_close(schedule(steps32), expected[name], name)
        counter = jax.jit(lambda s: _all(ours, s))
        at_count = [counter(jnp.int32(s)) for s in PY_STEPS]
        for name, schedule in ours.items():
            picked = expected[name][list(PY_STEPS)]
            python_int = [schedule(s) for s in PY_STEPS]
            _assert_float64_close(python_int, picked, f"{name} Python int")
            count = [values[name] for values in at_count]
            _assert_float64_close(count, picked, f"{name} jit int32 count")


def test_float32_hyperparameters_stay_float32_under_x64():
    with jax.enable_x64(True):
        value = jax.jit(jol.exponential_decay(1.0, 3, 0.5))(jnp.int64(3))
        assert value.dtype == jnp.float64 and value == 0.5
        value = jax.jit(jol.exponential_decay(np.float32(1.0), 3, 0.5))(3)
        assert value.dtype == jnp.float32 and value == 0.5
        linear = jol.linear_schedule(np.float32(0.02), 0.0, 20)(jnp.int32(5))
        assert linear.dtype == jnp.float32
        assert linear == np.float32(0.02) - np.float32(0.02) * np.float32(0.25)


# --- transforms that evaluate a schedule ------------------------------------


def _warmup(module):
    return module.warmup_cosine_decay_schedule(0.0, 0.02, 3, 12, 0.001)


def _rates(schedule, steps=12):
    """``schedule`` at Python-int steps 0, 1, ... (float64 arithmetic in
    optax's schedules: call under x64)."""
    return [float(schedule(t)) for t in range(steps)]


def _applied_factors(opt, init_arg):
    """``-update / gradient`` at steps 0 to 11 (one compiled scan) after
    ``opt.init(init_arg)``, for float64 parameters of 1 and gradients of 1."""
    params = jnp.ones(1)

    def step(state, _):
        updates, state = opt.update(jnp.ones(1), state, params)
        return state, -updates[0]

    return jax.jit(lambda: jax.lax.scan(step, opt.init(init_arg), None, 12)[1])()


@pytest.mark.parametrize(
    "make",
    [
        lambda s: jol.sgd(s),
        lambda s: jol.scale_by_learning_rate(s),
        lambda s: jol.chain(jol.scale_by_schedule(s), jol.scale(-1.0)),
        lambda s: jol.inject_hyperparams(jol.sgd)(learning_rate=s),
        lambda s: jol.inject_hyperparams(jol.scale_by_learning_rate)(s),
    ],
    ids=["sgd", "scale_by_learning_rate", "scale_by_schedule", "inject", "inject2"],
)
@pytest.mark.parametrize("init_arg", ["params", None], ids=["params", "None"])
def test_transforms_apply_the_float64_schedule_value(make, init_arg):
    """The factor applied at each step is the schedule's float64 value at
    that step, including after ``init(None)`` (optax's default float)."""
    with jax.enable_x64(True):
        opt = make(_warmup(jol))
        factors = _applied_factors(opt, jnp.ones(1) if init_arg else None)
        assert factors.dtype == jnp.float64
        np.testing.assert_allclose(factors, _rates(_warmup(optax)), rtol=RTOL, atol=0)
        assert factors[0] == 0.0 and factors[3] == 0.02


def test_add_decayed_weights_schedule_in_float64():
    with jax.enable_x64(True):
        opt = jol.add_decayed_weights(_warmup(jol))
        params = jnp.full(1, 2.0)

        def step(state, _):
            updates, state = opt.update(jnp.zeros(1), state, params)
            return state, updates[0] / 2.0

        rates = jax.jit(lambda: jax.lax.scan(step, opt.init(params), None, 12)[1])()
        assert rates.dtype == jnp.float64
        np.testing.assert_allclose(rates, _rates(_warmup(optax)), rtol=RTOL, atol=0)


def _numpy_adam(grad, x, rates, b1=0.9, b2=0.999, eps=1e-8):
    """Adam in NumPy float64 (torch.optim.Adam's rule with a per-step rate)."""
    m, v = np.zeros_like(x), np.zeros_like(x)
    for t, rate in enumerate(rates, start=1):
        g = grad(x)
        m, v = b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g * g
        m_hat, v_hat = m / (1 - b1**t), v / (1 - b2**t)
        x = x - rate * m_hat / (np.sqrt(v_hat) + eps)
    return x


def test_adam_with_warmup_matches_a_float64_adam():
    """Adam with a warm-up schedule ends where a float64 Adam with the same
    per-step rates ends (it was 2.65e-9 away when the rates were float32)."""
    rng = np.random.default_rng(0)
    a = rng.normal(size=(4, 4))
    hess, lin, x0 = a @ a.T / 4 + 0.3 * np.eye(4), rng.normal(size=4), np.ones(4)
    steps = 30
    with jax.enable_x64(True):
        rates = _rates(optax.warmup_cosine_decay_schedule(0.0, 0.05, 5, 25), steps)
        expected = _numpy_adam(lambda x: hess @ x - lin, x0, rates)
        opt = jol.adam(jol.warmup_cosine_decay_schedule(0.0, 0.05, 5, 25))
        h, c = jnp.asarray(hess), jnp.asarray(lin)

        def step(carry, _):
            x, state = carry
            updates, state = opt.update(h @ x - c, state, x)
            return (x + updates, state), None

        x = jnp.asarray(x0)
        run = jax.jit(lambda: jax.lax.scan(step, (x, opt.init(x)), None, steps))
        (x, _), _ = run()
    assert x.dtype == jnp.float64
    np.testing.assert_allclose(x, expected, rtol=1e-12, atol=1e-13)
