"""reduce_on_plateau: optax parity on positive losses, negative losses, scan."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from helpers import optax_reference

import jaxopt_lite as jol

PARAMS = jnp.zeros(2)
GRAD = jnp.array([1.0, -2.0])

# Improves, plateaus (within rtol), improves again, then flat for long.
POSITIVE = [5.0, 4.0, 4.0, 3.9999, 4.1, 4.0, 3.0, 3.0, 3.0, 3.0, 3.0, 3.0, 3.0, 3.0]


def _scales(opt, values):
    state = opt.init(PARAMS)
    update = jax.jit(opt.update)
    scales, updates = [], []
    for value in values:
        u, state = update(GRAD, state, PARAMS, value=value)
        scales.append(float(state.scale))
        updates.append(u)
    return scales, updates, state


@pytest.mark.parametrize(
    "kwargs",
    [
        {"factor": 0.5, "patience": 2},
        {"factor": 0.5, "patience": 1, "cooldown": 2, "min_scale": 0.1},
        {"factor": 0.1, "patience": 1, "accumulation_size": 2, "atol": 0.5},
        {"factor": 0.5, "patience": 3, "rtol": 0.0, "atol": 1e-3},
    ],
)
def test_matches_optax_on_positive_losses(kwargs):
    ours, u_ours, s_ours = _scales(jol.reduce_on_plateau(**kwargs), POSITIVE)
    theirs, u_theirs, s_theirs = _scales(
        optax_reference(optax.contrib.reduce_on_plateau(**kwargs)), POSITIVE
    )
    assert ours == theirs
    assert min(ours) < 1.0  # something happened
    for a, b in zip(u_ours, u_theirs, strict=True):
        np.testing.assert_array_equal(a, b)
    for field in s_ours._fields:
        np.testing.assert_array_equal(getattr(s_ours, field), getattr(s_theirs, field))


def test_negative_losses_reduce_after_patience_and_not_before():
    opt = jol.reduce_on_plateau(factor=0.5, patience=3)
    # A flat negative loss: the first value is an improvement (on +inf), the
    # next three are not, so the 4th update reduces the scale.
    scales, updates, state = _scales(opt, [-2.0] * 8)
    assert scales == [1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.25, 0.25]
    np.testing.assert_allclose(updates[3], 0.5 * GRAD)
    assert float(state.best_value) == -2.0
    # Tiny improvements (below rtol * |best|) of a negative loss are a plateau too.
    creeping = [-2.0 - 1e-6 * k for k in range(5)]
    assert _scales(opt, creeping)[0] == [1.0, 1.0, 1.0, 0.5, 0.5]
    # Real improvements of a negative loss are not.
    falling = [-2.0 * 1.01**k for k in range(8)]
    assert _scales(opt, falling)[0] == [1.0] * 8


def test_negative_losses_match_the_mirror_of_positive_ones():
    # With atol only, the decisions depend on differences, not on the sign.
    kwargs = {"factor": 0.5, "patience": 2, "rtol": 0.0, "atol": 0.05}
    shifted = [v - 100.0 for v in POSITIVE]
    ours = _scales(jol.reduce_on_plateau(**kwargs), shifted)[0]
    ref = _scales(optax_reference(optax.contrib.reduce_on_plateau(**kwargs)), POSITIVE)[
        0
    ]
    assert ours == ref


def test_patience_zero_reduces_on_every_evaluation_without_improvement():
    scales = _scales(
        jol.reduce_on_plateau(factor=0.5, patience=0), [3.0, 2.0, 2.0, 2.0]
    )[0]
    assert scales == [1.0, 1.0, 0.5, 0.25]


def test_state_layout_and_nonfinite_losses():
    opt = jol.reduce_on_plateau(patience=1, factor=0.5)
    state = opt.init({"a": jnp.zeros(1, jnp.bfloat16)})
    assert state._fields == (
        "scale",
        "best_value",
        "plateau_count",
        "cooldown_count",
        "count",
        "avg_value",
    )
    assert state.scale.dtype == state.best_value.dtype == jnp.float32
    assert state.plateau_count.dtype == state.count.dtype == jnp.int32
    scales = _scales(opt, [1.0, math.nan, math.inf])[0]
    assert scales == [1.0, 0.5, 0.25]


def test_scan_with_traced_factor():
    values = jnp.array([-1.0, -1.0, -1.0, -1.0, -1.0])

    def run(factor):
        opt = jol.reduce_on_plateau(factor=factor, patience=2)

        def body(state, value):
            updates, state = opt.update(GRAD, state, PARAMS, value=value)
            return state, updates[0]

        return jax.lax.scan(body, opt.init(PARAMS), values)

    state, first = jax.jit(run)(0.5)
    np.testing.assert_allclose(first, [1.0, 1.0, 0.5, 0.5, 0.25])
    assert state.plateau_count.dtype == jnp.int32
    batched = jax.vmap(lambda f: run(f)[0].scale)(jnp.array([0.5, 0.1]))
    np.testing.assert_allclose(batched, [0.25, 0.01], rtol=1e-6)


def test_chained_after_an_optimizer_with_value():
    opt = jol.chain(jol.sgd(0.1), jol.reduce_on_plateau(factor=0.5, patience=1))
    state = opt.init(PARAMS)
    for value in [1.0, 1.0]:
        updates, state = opt.update(GRAD, state, PARAMS, value=value)
    np.testing.assert_allclose(updates, -0.05 * GRAD)


def test_update_needs_a_scalar_value():
    opt = jol.reduce_on_plateau()
    state = opt.init(PARAMS)
    with pytest.raises(TypeError, match="value=loss"):
        opt.update(GRAD, state)
    with pytest.raises(ValueError, match="scalar loss"):
        opt.update(GRAD, state, value=jnp.ones(2))


@pytest.mark.parametrize(
    ("kwargs", "error", "name"),
    [
        ({"factor": 0.0}, ValueError, "factor"),
        ({"factor": 1.5}, ValueError, "factor"),
        ({"patience": -1}, ValueError, "patience"),
        ({"patience": 2.5}, TypeError, "patience"),
        ({"rtol": -0.1}, ValueError, "rtol"),
        ({"rtol": 1.5}, ValueError, "rtol"),
        ({"atol": -1.0}, ValueError, "atol"),
        ({"rtol": 0.0, "atol": 0.0}, ValueError, "rtol=0.0 and atol=0.0"),
        ({"cooldown": -1}, ValueError, "cooldown"),
        ({"accumulation_size": 0}, ValueError, "accumulation_size"),
        ({"min_scale": -0.5}, ValueError, "min_scale"),
    ],
)
def test_argument_errors(kwargs, error, name):
    with pytest.raises(error, match=name):
        jol.reduce_on_plateau(**kwargs)


def test_factor_one_is_allowed():
    assert (
        _scales(jol.reduce_on_plateau(factor=1.0, patience=1), [1.0] * 4)[0]
        == [1.0] * 4
    )
