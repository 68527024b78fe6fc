"""apply_if_finite and accumulate_gradients: parity with optax, scan, errors."""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import optax
import pytest
from helpers import assert_trees_close, optax_reference, run_in_scan

import jaxopt_lite as jol

RTOL = 1e-5
NAN, INF = math.nan, math.inf
PARAMS = {"w": jnp.array([1.0, -2.0, 0.5]), "b": jnp.asarray(0.3, jnp.float32)}


def _grad_sequence(bad_steps=(), n=9):
    """Deterministic gradients; the steps in ``bad_steps`` hold a NaN or an inf."""
    out = []
    for k in range(n):
        g = {
            "w": jnp.array([0.5, -1.0, 2.0]) * (k + 1) / 3.0,
            "b": jnp.asarray(0.1 * (k - 4), jnp.float32),
        }
        if k in bad_steps:
            g["w"] = g["w"].at[1].set(NAN if k % 2 else INF)
        out.append(g)
    return out


def _run(opt, grads, params=PARAMS, **extra):
    state = opt.init(params)
    update = jax.jit(opt.update)
    trace = []
    for g in grads:
        updates, state = update(g, state, params, **extra)
        params = optax.apply_updates(params, updates)
        trace.append((updates, state))
    return params, trace


# Our states and optax's differ in structure; their leaves are compared.
_close = functools.partial(assert_trees_close, rtol=RTOL, check_structure=False)


# --- apply_if_finite -----------------------------------------------------


@pytest.mark.parametrize("max_errors", [0, 2])
def test_apply_if_finite_matches_optax(max_errors):
    # Steps 2..5 are bad: with max_errors=2 the 3rd and 4th bad ones get through.
    grads = _grad_sequence(bad_steps=(2, 3, 4, 5, 7))
    ours = jol.apply_if_finite(jol.adam(0.1), max_errors)
    theirs = optax_reference(optax.apply_if_finite(optax.adam(0.1), max_errors))
    p_ours, t_ours = _run(ours, grads)
    p_theirs, t_theirs = _run(theirs, grads)
    _close(p_ours, p_theirs)
    for (u_o, s_o), (u_t, s_t) in zip(t_ours, t_theirs, strict=True):
        _close(u_o, u_t)
        assert s_o.notfinite_count == s_t.notfinite_count
        assert s_o.last_finite == s_t.last_finite
        assert s_o.total_notfinite == s_t.total_notfinite
        _close(s_o.inner_state[0], s_t.inner_state[0])
    final = t_ours[-1][1]
    assert final._fields == (
        "notfinite_count",
        "last_finite",
        "total_notfinite",
        "inner_state",
    )
    assert int(final.total_notfinite) == 5
    assert final.notfinite_count.dtype == final.total_notfinite.dtype == jnp.int32


def test_apply_if_finite_skips_with_zero_updates_and_keeps_state():
    opt = jol.apply_if_finite(jol.sgd(0.1, momentum=0.9), 3)
    state = opt.init(PARAMS)
    _, state = opt.update(_grad_sequence()[0], state)
    updates, skipped = opt.update(_grad_sequence(bad_steps=(1,))[1], state)
    assert all(bool((u == 0).all()) for u in jax.tree.leaves(updates))
    _close(skipped.inner_state, state.inner_state)
    assert int(skipped.notfinite_count) == 1 and not bool(skipped.last_finite)


def test_apply_if_finite_in_scan_with_traced_limit():
    grads = _grad_sequence(bad_steps=(1, 2))

    def run(limit):
        return run_in_scan(jol.apply_if_finite(jol.sgd(0.1), limit), PARAMS, grads)

    p_scan, state = run(1)
    p_ref, _ = _run(jol.apply_if_finite(jol.sgd(0.1), 1), grads)
    _close(p_scan, p_ref)
    assert int(state.total_notfinite) == 2
    # The limit may be a traced value (one compile for several limits).
    batched = jax.vmap(lambda n: run(n)[0]["b"])(jnp.array([0, 5]))
    assert batched.shape == (2,)


@pytest.mark.parametrize(
    ("value", "error"), [(-1, ValueError), (1.5, TypeError), (True, TypeError)]
)
def test_apply_if_finite_errors(value, error):
    with pytest.raises(error, match="max_consecutive_errors"):
        jol.apply_if_finite(jol.sgd(0.1), value)
    with pytest.raises(TypeError, match="inner"):
        jol.apply_if_finite("sgd", 1)


# --- accumulate_gradients ------------------------------------------------


@pytest.mark.parametrize(("k", "use_grad_mean"), [(1, True), (3, True), (3, False)])
def test_accumulate_matches_optax_multisteps(k, use_grad_mean):
    grads = _grad_sequence()
    ours = jol.accumulate_gradients(jol.adam(0.1), k, use_grad_mean=use_grad_mean)
    theirs = optax_reference(
        optax.MultiSteps(
            optax.adam(0.1), k, use_grad_mean=use_grad_mean
        ).gradient_transformation()
    )
    p_ours, t_ours = _run(ours, grads)
    p_theirs, t_theirs = _run(theirs, grads)
    _close(p_ours, p_theirs)
    for (u_o, s_o), (u_t, s_t) in zip(t_ours, t_theirs, strict=True):
        _close(u_o, u_t)
        assert s_o.mini_step == s_t.mini_step
        assert s_o.gradient_step == s_t.gradient_step
        _close(s_o.acc_grads, s_t.acc_grads)
        _close(s_o.inner_opt_state[0], s_t.inner_opt_state[0])
    assert int(t_ours[-1][1].gradient_step) == 9 // k


def test_accumulate_is_the_mean_of_k_gradients():
    opt = jol.accumulate_gradients(jol.sgd(1.0), 3)
    grads = _grad_sequence(n=3)
    _, trace = _run(opt, grads)
    for updates, _ in trace[:2]:
        assert all(bool((u == 0).all()) for u in jax.tree.leaves(updates))
    mean = jax.tree.map(lambda *g: -sum(g) / 3, *grads)
    _close(trace[2][0], mean)


def test_accumulate_with_a_k_schedule_matches_optax():
    grads = _grad_sequence(n=9)
    schedule = lambda step: jnp.minimum(step + 1, 3)  # k = 1, 2, 3, 3
    ours = jol.accumulate_gradients(jol.sgd(0.1, momentum=0.9), schedule)
    theirs = optax_reference(
        optax.MultiSteps(
            optax.sgd(0.1, momentum=0.9), schedule
        ).gradient_transformation()
    )
    p_ours, t_ours = _run(ours, grads)
    p_theirs, _ = _run(theirs, grads)
    _close(p_ours, p_theirs)
    assert [int(s.gradient_step) for _, s in t_ours] == [1, 1, 2, 2, 2, 3, 3, 3, 4]


def test_accumulate_skip_nonfinite_matches_optax():
    grads = _grad_sequence(bad_steps=(1, 5))
    ours = jol.accumulate_gradients(jol.adam(0.1), 2, skip_nonfinite=True)
    theirs = optax_reference(
        optax.MultiSteps(
            optax.adam(0.1), 2, should_skip_update_fn=optax.skip_not_finite
        ).gradient_transformation()
    )
    p_ours, t_ours = _run(ours, grads)
    p_theirs, t_theirs = _run(theirs, grads)
    _close(p_ours, p_theirs)
    for (u_o, s_o), (u_t, s_t) in zip(t_ours, t_theirs, strict=True):
        _close(u_o, u_t)
        assert s_o.mini_step == s_t.mini_step
    assert int(t_ours[-1][1].total_skipped) == 2


def test_accumulate_passes_extra_args_only_on_final_steps():
    seen = []

    def spy():
        def update_fn(updates, state, params=None, *, value, **extra):
            jax.debug.callback(lambda v: seen.append(float(v)), value)
            return updates, state

        return optax.GradientTransformationExtraArgs(
            lambda p: optax.EmptyState(), update_fn
        )

    opt = jol.accumulate_gradients(spy(), 2)
    state = opt.init(PARAMS)
    for k, g in enumerate(_grad_sequence(n=4)):
        _, state = opt.update(g, state, value=float(k))
    assert seen == [1.0, 3.0]


def test_accumulate_dtypes_and_scan():
    bf16 = jax.tree.map(lambda x: x.astype(jnp.bfloat16), PARAMS)
    opt = jol.accumulate_gradients(jol.scale(-0.1), 2)
    state = opt.init(bf16)
    assert all(a.dtype == jnp.float32 for a in jax.tree.leaves(state.acc_grads))
    assert state.mini_step.dtype == state.gradient_step.dtype == jnp.int32
    grads = [
        jax.tree.map(lambda x: x.astype(jnp.bfloat16), g) for g in _grad_sequence()
    ]
    params, state = run_in_scan(opt, bf16, grads)
    assert all(p.dtype == jnp.bfloat16 for p in jax.tree.leaves(params))
    p_ref, _ = _run(opt, grads, bf16)
    _close(params, p_ref)
    c64 = jax.tree.map(lambda x: x.astype(jnp.complex64), PARAMS)
    state = jol.accumulate_gradients(jol.scale(1.0), 2).init(c64)
    assert all(a.dtype == jnp.complex64 for a in jax.tree.leaves(state.acc_grads))


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"every_k_schedule": 0}, ValueError, "every_k_schedule=0"),
        ({"every_k_schedule": 2.0}, TypeError, "every_k_schedule"),
        ({"use_grad_mean": 1}, TypeError, "use_grad_mean"),
        ({"skip_nonfinite": None}, TypeError, "skip_nonfinite"),
        ({"accumulator_dtype": jnp.int32}, ValueError, "accumulator_dtype"),
    ],
)
def test_accumulate_errors(kwargs, error, match):
    kwargs = {"every_k_schedule": 2, **kwargs}
    with pytest.raises(error, match=match):
        jol.accumulate_gradients(jol.sgd(0.1), **kwargs)
