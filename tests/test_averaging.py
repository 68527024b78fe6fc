"""ema_params / ema_of and lookahead / slow_params_of: closed forms, optax
parity, scan, errors."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import optax
import pytest
from helpers import assert_trees_close, optax_reference, run_in_scan

import jaxopt_lite as jol

RTOL = 1e-5
PARAMS = {"w": jnp.array([1.0, -2.0, 0.5]), "b": jnp.asarray(0.3, jnp.float32)}


def _grads(params, step=None):
    del step  # the same function of the parameters at every step
    return jax.tree.map(lambda p: 2.0 * p - 0.4, params)


_close = functools.partial(assert_trees_close, rtol=RTOL)


def _trajectory(opt, steps, params=PARAMS):
    """Parameters after each step (index 0: the initial ones) and the states."""
    state = opt.init(params)
    update = jax.jit(opt.update)
    path, states = [params], [state]
    for _ in range(steps):
        updates, state = update(_grads(params), state, params)
        params = optax.apply_updates(params, updates)
        path.append(params)
        states.append(state)
    return path, states


# --- ema_params ----------------------------------------------------------


def _weighted_sum(weights, trees):
    return jax.tree.map(
        lambda *xs: sum(w * x for w, x in zip(weights, xs, strict=True)), *trees
    )


@pytest.mark.parametrize("debias", [False, True])
def test_ema_params_closed_form(debias):
    decay, steps = 0.8, 4
    opt = jol.ema_params(jol.sgd(0.1, momentum=0.5), decay, debias=debias)
    path, states = _trajectory(opt, steps)
    # The updates are the inner optimizer's.
    ref_path, _ = _trajectory(jol.sgd(0.1, momentum=0.5), steps)
    _close(path[-1], ref_path[-1])
    for t in range(steps + 1):
        if debias and t > 0:  # the normalised average of theta_1 .. theta_t
            weights = [
                (1 - decay) * decay ** (t - i) / (1 - decay**t) for i in range(1, t + 1)
            ]
            expected = _weighted_sum(weights, path[1 : t + 1])
        else:  # theta_0 carries the weight decay**t
            weights = [decay**t] + [
                (1 - decay) * decay ** (t - i) for i in range(1, t + 1)
            ]
            expected = _weighted_sum(weights, path[: t + 1])
        _close(jol.ema_of(states[t]), expected)
        assert int(states[t].count) == t


def test_ema_params_debiased_matches_optax_ema_of_the_parameters():
    opt = jol.ema_params(jol.adam(0.1), 0.9)
    path, states = _trajectory(opt, 5)
    ema = optax_reference(optax.ema(0.9, debias=True))
    ema_state = ema.init(PARAMS)
    for t in range(1, 6):
        expected, ema_state = ema.update(path[t], ema_state)
        _close(jol.ema_of(states[t]), expected)


def test_ema_of_finds_a_nested_state_and_scan():
    opt = jol.apply_if_finite(
        jol.chain(jol.clip(1.0), jol.ema_params(jol.sgd(0.1), 0.5, debias=False)), 2
    )
    params, state = run_in_scan(opt, PARAMS, _grads, steps=3)
    path, states = _trajectory(opt, 3)
    _close(params, path[-1])
    _close(jol.ema_of(state), jol.ema_of(states[-1]))
    assert state.inner_state[1].count.dtype == jnp.int32


def test_ema_params_accumulator_dtype():
    bf16 = jax.tree.map(lambda x: x.astype(jnp.bfloat16), PARAMS)
    opt = jol.ema_params(jol.scale(-0.1), 0.99, accumulator_dtype=jnp.float32)
    state = opt.init(bf16)
    assert all(x.dtype == jnp.float32 for x in jax.tree.leaves(jol.ema_of(state)))
    _, state = opt.update(_grads(bf16), state, bf16)
    assert all(x.dtype == jnp.float32 for x in jax.tree.leaves(jol.ema_of(state)))


def test_ema_params_errors():
    with pytest.raises(ValueError, match="decay"):
        jol.ema_params(jol.sgd(0.1), 1.0)
    with pytest.raises(TypeError, match="debias"):
        jol.ema_params(jol.sgd(0.1), 0.9, debias="yes")
    with pytest.raises(ValueError, match="accumulator_dtype"):
        jol.ema_params(jol.sgd(0.1), 0.9, accumulator_dtype=jnp.int32)
    opt = jol.ema_params(jol.sgd(0.1), 0.9)
    with pytest.raises(ValueError, match="needs the parameters"):
        opt.update(PARAMS, opt.init(PARAMS))
    with pytest.raises(ValueError, match="holds no EmaParamsState"):
        jol.ema_of(jol.sgd(0.1).init(PARAMS))


# --- lookahead -----------------------------------------------------------


def _optax_lookahead_trajectory(opt, steps):
    params = optax.LookaheadParams.init_synced(PARAMS)
    state = opt.init(params)
    update = jax.jit(opt.update)
    out = []
    for _ in range(steps):
        updates, state = update(_grads(params.fast), state, params)
        params = optax.apply_updates(params, updates)
        out.append(params)
    return out


@pytest.mark.parametrize("reset_state", [False, True])
def test_lookahead_matches_optax(reset_state):
    steps = 7
    ours = jol.lookahead(jol.adam(0.1), 3, 0.5, reset_state=reset_state)
    theirs = optax_reference(
        optax.lookahead(optax.adam(0.1), 3, 0.5, reset_state=reset_state)
    )
    path, states = _trajectory(ours, steps)
    expected = _optax_lookahead_trajectory(theirs, steps)
    for t in range(steps):
        _close(path[t + 1], expected[t].fast)
        _close(jol.slow_params_of(states[t + 1]), expected[t].slow)
    assert [int(s.steps_since_sync) for s in states] == [0, 1, 2, 0, 1, 2, 0, 1]


def test_lookahead_closed_form():
    # sgd with a constant gradient step of -1, k = 2, alpha = 0.5.
    opt = jol.lookahead(jol.scale(-1.0), sync_period=2, slow_step_size=0.5)
    params, state = jnp.array([0.0]), None
    state = opt.init(params)
    trail = []
    for _ in range(4):
        updates, state = opt.update(jnp.array([-1.0]), state, params)
        params = params + updates
        trail.append((float(params[0]), float(jol.slow_params_of(state)[0])))
    assert trail == [(1.0, 0.0), (1.0, 1.0), (2.0, 1.0), (2.0, 2.0)]


def test_lookahead_scan_and_traced_hyperparameters():
    def run(alpha):
        return run_in_scan(jol.lookahead(jol.sgd(0.1), 2, alpha), PARAMS, _grads, 5)

    params, state = run(0.5)
    path, states = _trajectory(jol.lookahead(jol.sgd(0.1), 2, 0.5), 5)
    _close(params, path[-1])
    _close(jol.slow_params_of(state), jol.slow_params_of(states[-1]))
    batched = jax.vmap(lambda a: run(a)[0]["b"])(jnp.array([0.0, 0.5, 1.0]))
    assert batched.shape == (3,)


def test_lookahead_errors():
    with pytest.raises(ValueError, match="sync_period=0"):
        jol.lookahead(jol.sgd(0.1), 0, 0.5)
    with pytest.raises(TypeError, match="sync_period"):
        jol.lookahead(jol.sgd(0.1), 1.5, 0.5)
    with pytest.raises(ValueError, match="slow_step_size"):
        jol.lookahead(jol.sgd(0.1), 2, 1.5)
    with pytest.raises(TypeError, match="reset_state"):
        jol.lookahead(jol.sgd(0.1), 2, 0.5, reset_state=1)
    opt = jol.lookahead(jol.sgd(0.1), 2, 0.5)
    with pytest.raises(TypeError, match=r"not optax\.LookaheadParams"):
        opt.init(optax.LookaheadParams.init_synced(PARAMS))
    with pytest.raises(TypeError, match="required positional argument: 'params'"):
        opt.update(PARAMS, opt.init(PARAMS))  # as optax's
    with pytest.raises(ValueError, match="needs the parameters"):
        opt.update(PARAMS, opt.init(PARAMS), None)
    with pytest.raises(ValueError, match="holds no LookaheadState"):
        jol.slow_params_of(opt.init(PARAMS).fast_state)
