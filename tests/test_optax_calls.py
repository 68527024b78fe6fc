"""optax's calls and states: every transform's ``update`` accepts the calls
optax's accepts (``params`` left out or ``None``, ``None`` updates, a state
optax does not read) and raises optax's kind of error where optax raises;
states have optax's structure (the same classes, so equal as trees), apart
from the differences docs/optax-differences.md lists."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax
import optax.contrib
import pytest
from helpers import standard_promotion
from transform_table import TABLE

import jaxopt_lite as jol
from jaxopt_lite._transforms.distance_over_gradients import (
    ScaleByDistanceOverGradientsState,
)
from jaxopt_lite._transforms.optimistic import ScaleByOptimisticGradientState
from jaxopt_lite._transforms.rms import (
    ScaleByRmsWithCountState,
    ScaleByRStdDevWithCountState,
)
from jaxopt_lite._transforms.scaling import ScaleByLearningRateState
from jaxopt_lite._transforms.weight_decay import AddDecayedWeightsScheduleState

PARAMS = {"w": jnp.ones(3), "b": jnp.full(2, 2.0)}
GRADS = {"w": jnp.full(3, 0.5), "b": jnp.full(2, -0.5)}
MASK = {"w": True, "b": False}

# Built the same way from either module (``m`` is ``jol`` or ``optax``).
EXTRA = {
    "scale": lambda m: m.scale(0.5),
    "scale_by_schedule": lambda m: m.scale_by_schedule(lambda c: 0.1),
    "adaptive_grad_clip": lambda m: m.adaptive_grad_clip(0.1),
    "zero_nans": lambda m: m.zero_nans(),
    "scale_by_factored_rms": lambda m: m.scale_by_factored_rms(),
    "scale_by_param_block_rms": lambda m: m.scale_by_param_block_rms(),
    "add_noise": lambda m: m.add_noise(0.1, 0.5, 0),
    "scale_by_lion": lambda m: m.scale_by_lion(),
    "scale_by_novograd": lambda m: m.scale_by_novograd(),
    "scale_by_sign": lambda m: m.scale_by_sign(),
    "scale_by_trust_ratio": lambda m: m.scale_by_trust_ratio(),
    "scale_by_lbfgs": lambda m: m.scale_by_lbfgs(),
    "masked": lambda m: m.masked(m.scale_by_adam(), MASK),
    "chain": lambda m: m.chain(m.trace(0.9), m.scale(0.5)),
    "named_chain": lambda m: m.named_chain(("t", m.trace(0.9)), ("s", m.scale(0.5))),
    "partition": lambda m: m.partition(
        {"a": m.sgd(0.1), "b": m.trace(0.9)}, {"w": "a", "b": "b"}
    ),
    "apply_if_finite": lambda m: m.apply_if_finite(m.sgd(0.1), 3),
    "add_decayed_weights_schedule": lambda m: m.add_decayed_weights(lambda c: 0.1),
    "scale_by_polyak": lambda m: m.scale_by_polyak(),  # (updates need value=)
    "keep_params_nonnegative": lambda m: m.keep_params_nonnegative(),
    "stateless": lambda m: m.stateless(lambda g, p: g),
    "freeze": lambda m: m.freeze(MASK),
    "selective_transform": lambda m: m.selective_transform(
        m.trace(0.9), freeze_mask=MASK
    ),
    "conditionally_transform": lambda m: m.conditionally_transform(
        m.trace(0.9), lambda step: step > 1
    ),
    "conditionally_mask": lambda m: m.conditionally_mask(
        m.trace(0.9), lambda step: step > 1
    ),
    "snapshot": lambda m: m.snapshot("norm", optax.tree.norm),
    "differentially_private_aggregate": lambda m: (
        m.contrib.differentially_private_aggregate(1.0, 0.1, 0)
    ),
    "scale_by_muon": lambda m: m.contrib.scale_by_muon(),
    "split_real_and_imaginary": lambda m: m.contrib.split_real_and_imaginary(
        m.trace(0.9)
    ),
}
# Whole optimizers: those holding the states of the transforms above, and
# those whose chains optax lays out with an `identity` where a step is off
# (sgd and rmsprop without momentum, dog and dowg without weight decay).
OPTIMIZERS = (
    *("sgd", "sgd_momentum", "rmsprop", "rmsprop_centered_momentum", "adamw"),
    *("adamax", "lion", "lamb", "signum", "polyak_sgd", "adafactor_momentum_decay"),
    *("schedule_free_sgd", "schedule_free_adamw", "sam", "dog", "dowg"),
    *("dadapt_adamw", "prodigy", "momo", "momo_adam", "mechanize"),
)
CASES = {
    **{row.name: row for row in TABLE if row.kind != "optimizer"},
    **{row.name: row for row in TABLE if row.name in OPTIMIZERS},
    **EXTRA,
}
# States that differ on purpose (docs/optax-differences.md): the rate
# `scale_by_learning_rate` keeps (dropped before comparing, with optax's
# states of a learning rate), and our documented public state classes (same
# names and fields as optax's, so the same printed structure).
RATE_STATES = (ScaleByLearningRateState, optax.EmptyState, optax.ScaleByScheduleState)
OWN_STATES = (
    jol.MaskedState,
    jol.PartitionState,
    jol.ApplyIfFiniteState,
    jol.ScaleByLBFGSState,
    # optax keeps these classes private: ours have their fields (and names,
    # but for the schedule count of add_decayed_weights).
    AddDecayedWeightsScheduleState,
    ScaleByRmsWithCountState,
    ScaleByRStdDevWithCountState,
    ScaleByOptimisticGradientState,
    ScaleByDistanceOverGradientsState,
)


def _pair(case):
    """Our transform and optax's (built under optax's dtype promotion)."""
    if callable(case):
        with standard_promotion():
            return case(jol), case(optax)
    kwargs = case.kwargs if case.optax_kwargs is None else case.optax_kwargs
    with standard_promotion():
        return case.factory(**case.kwargs), case.optax_factory(**kwargs)


def _outcome(transform, call, state):
    """The kind of error ``call(transform, state)`` raises (``None``: none),
    traced abstractly (``jax.eval_shape``: nothing is compiled)."""
    try:
        jax.eval_shape(lambda s: call(transform, s), state)
    except Exception as error:
        return type(error)
    return None


CALLS = {
    "params left out": lambda t, s: t.update(GRADS, s),
    "params=None": lambda t, s: t.update(GRADS, s, None),
    "a None update": lambda t, s: t.update({"w": None, "b": GRADS["b"]}, s, PARAMS),
    "updates=None": lambda t, s: t.update(None, s, PARAMS),
    "state=0": lambda t, s: t.update(GRADS, 0, PARAMS),
    "init(None)": lambda t, s: t.update(GRADS, t.init(None), PARAMS),
}
# Where ours accepts more than optax (None updates its Adam moments choke on).
MORE = {"a None update", "updates=None"}


@pytest.mark.parametrize("name", list(CASES))
def test_optax_calls_and_states(name):
    """Ours accepts the calls optax's accepts and raises optax's kind of
    error where it raises; its state has the same tree structure as optax's
    (the same classes), the learning rate's state dropped and our documented
    public classes compared by their fields."""
    ours, theirs = _pair(CASES[name])
    with standard_promotion():
        state = jax.eval_shape(ours.init, PARAMS)
        their_state = jax.eval_shape(theirs.init, PARAMS)
        for call_name, call in CALLS.items():
            got = _outcome(ours, call, state)
            want = _outcome(theirs, call, their_state)
            if want is None or call_name not in MORE or got is not None:
                assert got is want, (call_name, got, want)
    if _contains(state, ScaleByLearningRateState):
        state, their_state = _rates_dropped(state), _rates_dropped(their_state)
    if _contains(state, OWN_STATES):
        assert _fields(state) == _fields(their_state)
    else:
        assert jax.tree.structure(state) == jax.tree.structure(their_state)


def _contains(tree, classes):
    found = lambda x: isinstance(x, classes)
    return any(found(x) for x in jax.tree.leaves(tree, is_leaf=found))


def _fields(tree):
    """The paths to the leaves, by field names and keys (not classes)."""
    return [jax.tree_util.keystr(p) for p, _ in jax.tree.leaves_with_path(tree)]


def _rates_dropped(state):
    rate = lambda x: isinstance(x, RATE_STATES)
    return jax.tree.map(lambda x: None if rate(x) else x, state, is_leaf=rate)


def test_add_decayed_weights_state_is_optax():
    """Empty for a constant rate (a state optax's callers may replace by
    anything), a count for a schedule."""
    t = jol.add_decayed_weights(0.5)
    assert t.init(PARAMS) == optax.EmptyState()
    updates, state = t.update(GRADS, 0, PARAMS)  # optax's own test passes 0
    assert state == 0
    assert jnp.allclose(updates["w"], 1.0) and jnp.allclose(updates["b"], 0.5)
    t = jol.add_decayed_weights(lambda n: 0.5 / (n + 1).astype(jnp.float32))
    _, state = t.update(GRADS, t.init(PARAMS), PARAMS)
    updates, state = t.update(GRADS, state, PARAMS)
    assert optax.tree.get(state, "count") == 2
    assert jnp.allclose(updates["w"], 0.75)


def test_loss_reading_updates_take_optax_calls():
    """With the loss given (``value=``), ``params`` left out or ``None`` raise
    optax's kinds of error: momo's are a required argument."""
    calls = {
        "params left out": lambda t, s: t.update(GRADS, s, value=1.0),
        "params=None": lambda t, s: t.update(GRADS, s, None, value=1.0),
        "value left out": lambda t, s: t.update(GRADS, s, PARAMS),
    }
    outcomes = {}
    for name, make in {
        "momo": lambda m: m.contrib.momo(),
        "momo_adam": lambda m: m.contrib.momo_adam(),
        "scale_by_polyak": lambda m: m.scale_by_polyak(),
    }.items():
        ours, theirs = _pair(make)
        with standard_promotion():
            state = jax.eval_shape(ours.init, PARAMS)
            their_state = jax.eval_shape(theirs.init, PARAMS)
            for call_name, call in calls.items():
                got = _outcome(ours, call, state)
                assert got is _outcome(theirs, call, their_state), (name, call_name)
                outcomes[name, call_name] = got
    assert outcomes["momo", "params left out"] is TypeError
    assert outcomes["momo_adam", "params=None"] is ValueError
    assert outcomes["scale_by_polyak", "params left out"] is None
