"""Primitive transforms (the ``"transform"`` rows of ``transform_table.py``):
parity with optax (float32 and complex64), dtype care, masks and schedules,
validation, saturating counters, `current_learning_rate`."""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from helpers import assert_trees_close, optax_reference
from transform_table import rows

import jaxopt_lite as jol

STEPS = 4


def _grads(dtype, steps=STEPS):
    """A fixed sequence of gradient trees {"w": (3,), "b": (2,)}."""
    keys = jax.random.split(jax.random.key(42), 2 * steps)
    out = []
    for i in range(steps):
        w = jax.random.normal(keys[2 * i], (3,))
        b = jax.random.normal(keys[2 * i + 1], (2,))
        if jnp.issubdtype(dtype, jnp.complexfloating):
            w = jax.lax.complex(w, jnp.roll(w, 1))  # w + 1j * roll(w)
            b = jax.lax.complex(b, -0.5 * b[::-1])  # b - 0.5j * b[::-1]
        out.append({"w": w.astype(dtype), "b": b.astype(dtype)})
    return out


def _params(dtype):
    return {"w": jnp.array([1.0, -2.0, 0.5], dtype), "b": jnp.array([0.3, 3.0], dtype)}


def _updates(t, dtype, steps=STEPS):
    """The updates ``t`` makes over the gradient sequence (params fixed)."""
    params = _params(dtype)
    state = t.init(params)
    out = []
    for g in _grads(dtype, steps):
        u, state = t.update(g, state, params)
        out.append(u)
    return out, state


@functools.cache
def _ours(name, dtype):
    """``(initial state, updates, final state)`` of the row's transform over
    the gradient sequence, eagerly (shared by the tests that read them)."""
    t = TRANSFORMS[name].make()
    state0 = t.init(_params(dtype))
    return (state0, *_updates(t, dtype))


_close = functools.partial(assert_trees_close, rtol=1e-5, check_dtype=True)


TRANSFORMS = {row.name: row for row in rows("transform")}
COMPLEX_PARITY = [
    name
    for name, row in TRANSFORMS.items()
    if row.complex_ok and not row.complex_parity_skip
]


def _reference(row):
    make = row.optax_make
    assert make is not None
    return make()


@pytest.mark.parametrize("name", list(TRANSFORMS))
def test_primitive_parity_with_optax_float32(name):
    row = TRANSFORMS[name]
    _close(_ours(name, jnp.float32)[1], _updates(_reference(row), jnp.float32)[0])


@pytest.mark.parametrize("name", COMPLEX_PARITY)
def test_primitive_parity_with_optax_complex64(name):
    row = TRANSFORMS[name]
    _close(_ours(name, jnp.complex64)[1], _updates(_reference(row), jnp.complex64)[0])


# State fields holding second moments or norms, real for complex parameters
# (SM3 calls its momentum ``nu`` and its accumulators ``mu``).
SECOND_MOMENTS = (
    "nu",
    "nu_max",
    "sum_of_squares",
    "e_g",
    "e_x",
    "n",
    "max_dist",
    "grad_sum_of_squares",
)
REAL_FIELDS = {"ScaleBySM3State": ("mu",)}


@pytest.mark.parametrize("name", list(TRANSFORMS))
@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.complex64])
def test_primitive_keeps_dtypes(name, dtype):
    """Updates keep the gradients' dtype; the state keeps its avals; second
    moments of complex parameters are real."""
    row = TRANSFORMS[name]
    if dtype == jnp.complex64 and not row.complex_ok:
        pytest.skip(row.complex_reason)
    params = _params(dtype)
    state0, updates, state = _ours(name, dtype)
    for u in updates:
        assert jax.tree.map(lambda x: x.dtype, u) == jax.tree.map(
            lambda x: x.dtype, params
        )
    avals = lambda s: jax.tree.map(lambda x: jax.typeof(jnp.asarray(x)), s)
    assert avals(state) == avals(state0)
    for field in REAL_FIELDS.get(type(state).__name__, SECOND_MOMENTS):
        for leaf in jax.tree.leaves(getattr(state, field, None)):
            assert not jnp.iscomplexobj(leaf), f"{field} should be real"


@pytest.mark.parametrize("name", list(TRANSFORMS))
def test_primitive_in_jit_and_scan(name):
    t = TRANSFORMS[name].make()
    params = _params(jnp.float32)
    grads = jax.tree.map(lambda *xs: jnp.stack(xs), *_grads(jnp.float32))

    @jax.jit
    def run(state):
        def body(state, g):
            u, state = t.update(g, state, params)
            return state, u

        return jax.lax.scan(body, state, grads)

    _, updates = run(t.init(params))
    eager = _ours(name, jnp.float32)[1]
    _close(jax.tree.map(lambda x: x[-1], updates), eager[-1], rtol=1e-5, atol=1e-6)


# --- dtypes -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "field"),
    [
        (lambda d: jol.trace(0.9, accumulator_dtype=d), "trace"),
        (lambda d: jol.scale_by_adam(mu_dtype=d), "mu"),
        (lambda d: jol.scale_by_amsgrad(mu_dtype=d), "mu"),
    ],
)
@pytest.mark.parametrize("state_dtype", [None, jnp.bfloat16, jnp.float32])
def test_accumulator_dtype_is_honoured(make, field, state_dtype):
    t = make(state_dtype)
    params = _params(jnp.float32)
    state = t.init(params)
    expected = jnp.float32 if state_dtype is None else state_dtype
    assert all(x.dtype == expected for x in jax.tree.leaves(getattr(state, field)))
    updates, state = t.update(_grads(jnp.float32)[0], state, params)
    assert all(x.dtype == expected for x in jax.tree.leaves(getattr(state, field)))
    assert all(x.dtype == jnp.float32 for x in jax.tree.leaves(updates))


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        (
            lambda: jol.sgd(0.1, momentum=0.9, accumulator_dtype=jnp.bfloat16),
            lambda: optax.sgd(0.1, momentum=0.9, accumulator_dtype=jnp.bfloat16),
        ),
        (
            lambda: jol.adam(0.1, mu_dtype=jnp.bfloat16),
            lambda: optax.adam(0.1, mu_dtype=jnp.bfloat16),
        ),
        (
            lambda: jol.adamw(0.1, mu_dtype=jnp.bfloat16),
            lambda: optax.adamw(0.1, mu_dtype=jnp.bfloat16),
        ),
        (
            lambda: jol.nadam(0.1, mu_dtype=jnp.bfloat16),
            lambda: optax.nadam(0.1, mu_dtype=jnp.bfloat16),
        ),
        (
            lambda: jol.amsgrad(0.1, mu_dtype=jnp.bfloat16),
            lambda: optax.amsgrad(0.1, mu_dtype=jnp.bfloat16),
        ),
    ],
)
def test_optimizer_with_bfloat16_moment(ours, theirs):
    """A bfloat16 first moment stays bfloat16, updates stay float32, and the
    numbers stay close to optax's (bfloat16 rounding happens at slightly
    different points, hence the loose tolerance)."""
    updates, state = _updates(ours(), jnp.float32)
    expected, _ = _updates(optax_reference(theirs()), jnp.float32)
    assert any(x.dtype == jnp.bfloat16 for x in jax.tree.leaves(state))
    _close(updates, expected, rtol=2e-2, atol=1e-3)


def test_traced_decay_keeps_bfloat16_state():
    """A float32 traced hyper-parameter must not promote bfloat16 state."""
    params = _params(jnp.bfloat16)

    @jax.jit
    def run(b1, momentum):
        out = []
        for t in (jol.scale_by_adam(b1=b1), jol.trace(momentum), jol.scale_by_rms(b1)):
            state = t.init(params)
            updates, new_state = t.update(_grads(jnp.bfloat16)[0], state, params)
            out.append((state, updates, new_state))
        return out

    for state, updates, new_state in run(jnp.float32(0.8), jnp.float32(0.5)):
        dtypes = lambda tree: jax.tree.map(lambda x: x.dtype, tree)
        assert dtypes(new_state) == dtypes(state)
        assert dtypes(updates) == dtypes(params)


# --- weight decay -----------------------------------------------------------


def test_add_decayed_weights_needs_params():
    """As optax's: a required argument (TypeError when left out); None is a
    ValueError."""
    t = jol.add_decayed_weights(0.1)
    grads = _grads(jnp.float32)[0]
    with pytest.raises(TypeError, match="params"):
        t.update(grads, t.init(None))
    with pytest.raises(ValueError, match="params"):
        t.update(grads, t.init(None), None)


def test_add_decayed_weights_prefix_mask_and_schedule_count():
    params = {"layer": {"w": jnp.ones(2), "b": jnp.ones(1)}, "head": jnp.ones(3)}
    t = jol.add_decayed_weights(
        lambda n: 0.5 * (n + 1).astype(jnp.float32), mask={"layer": True, "head": False}
    )
    grads = jax.tree.map(jnp.zeros_like, params)
    state = t.init(params)
    for expected in (0.5, 1.0):
        updates, state = t.update(grads, state, params)
        np.testing.assert_allclose(updates["layer"]["w"], [expected, expected])
        np.testing.assert_allclose(updates["layer"]["b"], [expected])
        np.testing.assert_allclose(updates["head"], [0.0, 0.0, 0.0])


def test_add_decayed_weights_bad_mask_raises():
    t = jol.add_decayed_weights(0.1, mask={"x": True})
    with pytest.raises(ValueError, match="mask"):
        t.init(_params(jnp.float32))


# --- optimizers beyond the table ------------------------------------------------


def test_gd_equals_sgd_without_momentum_and_optax():
    params = _params(jnp.float32)
    for opt in (jol.gd(0.3), jol.sgd(0.3), optax_reference(optax.sgd(0.3))):
        state = opt.init(params)
        updates, _ = opt.update(_grads(jnp.float32)[0], state, params)
        _close(updates, jax.tree.map(lambda g: -0.3 * g, _grads(jnp.float32)[0]))


def test_adadelta_without_learning_rate_descends():
    """``adadelta()`` uses rate 1 and steps downhill (optax's default steps
    uphill because it drops the minus sign with the learning rate)."""
    params = _params(jnp.float32)
    grads = _grads(jnp.float32)[0]
    ours = jol.adadelta()
    updates, state = ours.update(grads, ours.init(params), params)
    reference = jol.adadelta(1.0)
    expected, _ = reference.update(grads, reference.init(params), params)
    _close(updates, expected)
    assert jol.current_learning_rate(state) == 1.0
    descent = sum(
        jnp.vdot(g, u)
        for g, u in zip(jax.tree.leaves(grads), jax.tree.leaves(updates), strict=True)
    )
    assert descent < 0


def test_adamw_mask_matches_optax():
    mask = {"w": True, "b": False}
    ours, _ = _updates(jol.adamw(0.1, weight_decay=0.5, mask=mask), jnp.float32)
    theirs, _ = _updates(
        optax_reference(optax.adamw(0.1, weight_decay=0.5, mask=mask)), jnp.float32
    )
    _close(ours, theirs)


def test_adamw_weight_decay_schedule_matches_optax():
    decay = lambda n: 0.1 / (n + 1).astype(jnp.float32)
    ours, _ = _updates(jol.adamw(0.1, weight_decay=decay), jnp.float32)
    theirs, _ = _updates(
        optax_reference(optax.adamw(0.1, weight_decay=decay)), jnp.float32
    )
    _close(ours, theirs)


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        (
            lambda: jol.amsgrad(0.1, bias_correction_mu=False),
            lambda: optax.amsgrad(0.1, bias_correction_mu=False),
        ),
        (
            lambda: jol.radam(0.1, nesterov=True),
            lambda: optax.radam(0.1, nesterov=True),
        ),
        (
            lambda: jol.adabelief(0.1, nesterov=True),
            lambda: optax.adabelief(0.1, nesterov=True),
        ),
        (
            lambda: jol.rmsprop(0.1, momentum=0.5),
            lambda: optax.rmsprop(0.1, momentum=0.5),
        ),
    ],
)
def test_optimizer_variants_match_optax_on_complex(ours, theirs):
    _close(
        _updates(ours(), jnp.complex64)[0],
        _updates(optax_reference(theirs()), jnp.complex64)[0],
    )


# --- counters, learning rates ---------------------------------------------------


def test_counters_saturate():
    params = _params(jnp.float32)
    t = jol.scale_by_adam()
    state = t.init(params)._replace(
        count=jnp.asarray(jnp.iinfo(jnp.int32).max, jnp.int32)
    )
    updates, state = t.update(_grads(jnp.float32)[0], state, params)
    assert state.count == jnp.iinfo(jnp.int32).max
    assert all(np.all(np.isfinite(x)) for x in jax.tree.leaves(updates))


def test_current_learning_rate_reads_schedules_and_inject_hyperparams():
    opt = jol.adam(lambda n: 0.5 ** n.astype(jnp.float32))
    params = _params(jnp.float32)
    state = opt.init(params)
    assert jol.current_learning_rate(state) == 1.0
    for expected in (1.0, 0.5, 0.25):
        _, state = opt.update(_grads(jnp.float32)[0], state, params)
        assert jol.current_learning_rate(state) == expected
    injected = optax_reference(optax.inject_hyperparams(optax.sgd)(learning_rate=0.3))
    np.testing.assert_allclose(jol.current_learning_rate(injected.init(params)), 0.3)
    assert jol.current_learning_rate(jol.trace(0.9).init(params)) is None


# --- validation -----------------------------------------------------------------

NAN = math.nan


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda: jol.trace(-0.1), "decay"),
        (lambda: jol.trace(1.5), "decay"),
        (lambda: jol.add_decayed_weights(NAN), "weight_decay"),
        (lambda: jol.scale_by_rss(-1.0), "initial_accumulator_value"),
        (lambda: jol.scale_by_rss(eps=-1.0), "eps"),
        (lambda: jol.scale_by_rms(1.0), "decay"),
        (lambda: jol.scale_by_rms(initial_scale=-1.0), "initial_scale"),
        (lambda: jol.scale_by_stddev(eps=NAN), "eps"),
        (lambda: jol.scale_by_adadelta(rho=1.0), "rho"),
        (lambda: jol.scale_by_adam(b1=1.0), "b1"),
        (lambda: jol.scale_by_adam(b2=-0.1), "b2"),
        (lambda: jol.scale_by_adam(eps=-1e-8), "eps"),
        (lambda: jol.scale_by_adam(eps_root=NAN), "eps_root"),
        (lambda: jol.scale_by_amsgrad(b2=1.0), "b2"),
        (lambda: jol.scale_by_adamax(b1=NAN), "b1"),
        (lambda: jol.scale_by_radam(threshold=NAN), "threshold"),
        (lambda: jol.scale_by_belief(eps_root=-1.0), "eps_root"),
        (
            lambda: jol.scale_by_yogi(initial_accumulator_value=-1.0),
            "initial_accumulator_value",
        ),
        (lambda: jol.gd(-0.1), "learning_rate"),
        (lambda: jol.gd(math.inf), "learning_rate"),
        (lambda: jol.gd(jnp.array([0.1, -0.1])), "learning_rate"),
        (lambda: jol.sgd(0.1, momentum=1.5), "momentum"),
        (lambda: jol.rmsprop(0.1, momentum=-0.5), "momentum"),
        (lambda: jol.adadelta(-1.0), "learning_rate"),
        (lambda: jol.adamw(0.1, weight_decay=-0.1), "weight_decay"),
        (lambda: jol.trace(0.9, accumulator_dtype=jnp.int32), "accumulator_dtype"),
        (lambda: jol.scale_by_adam(mu_dtype=jnp.int8), "mu_dtype"),
    ],
)
def test_invalid_values_raise_value_error(call, name):
    """Including a dtype of the wrong kind (a value: ``TypeError`` is for
    arguments that are not dtypes at all)."""
    with pytest.raises(ValueError, match=name):
        call()


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda: jol.trace(0.9, nesterov=1), "nesterov"),
        (lambda: jol.trace(0.9, accumulator_dtype="not a dtype"), "accumulator_dtype"),
        (lambda: jol.scale_by_adam(nesterov=None), "nesterov"),
        (lambda: jol.scale_by_rms(eps_in_sqrt="yes"), "eps_in_sqrt"),
        (lambda: jol.scale_by_amsgrad(bias_correction_mu=0), "bias_correction_mu"),
        (lambda: jol.rmsprop(0.1, centered=None), "centered"),
        (lambda: jol.sgd("0.1"), "learning_rate"),
        (lambda: jol.adam(0.1, b1="0.9"), "b1"),
        (
            lambda: jol.add_decayed_weights(0.1, mask={"w": 1}).init(
                {"w": jnp.ones(1)}
            ),
            "mask",
        ),
    ],
)
def test_invalid_types_raise_type_error(call, name):
    with pytest.raises(TypeError, match=name):
        call()


def test_traced_hyperparameters_are_not_checked():
    """Values only known at run time pass (a negative traced rate included)."""

    @jax.jit
    def run(rate, b1):
        opt = jol.adam(rate, b1=b1)
        params = _params(jnp.float32)
        return opt.update(_grads(jnp.float32)[0], opt.init(params), params)[0]

    assert all(np.all(np.isfinite(x)) for x in jax.tree.leaves(run(-0.1, 0.5)))


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        (lambda: jol.sgd(0.1, momentum=1.0), lambda: optax.sgd(0.1, momentum=1.0)),
        (
            lambda: jol.rmsprop(0.1, momentum=1.0),
            lambda: optax.rmsprop(0.1, momentum=1.0),
        ),
        (lambda: jol.lars(0.1, momentum=1.0), lambda: optax.lars(0.1, momentum=1.0)),
    ],
)
def test_momentum_one_is_accepted_like_optax(ours, theirs):
    """A momentum of 1 (a plain sum of the updates) is allowed, as by `trace`
    and optax; the numbers are optax's."""
    _close(
        _updates(ours(), jnp.float32)[0],
        _updates(optax_reference(theirs()), jnp.float32)[0],
    )
    jol.adafactor(0.1, momentum=1.0)  # its momentum shares the rule
