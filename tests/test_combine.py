"""chain, named_chain, masked and partition: parity with optax, errors, scan."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from helpers import assert_trees_close, optax_reference, run_in_scan

import jaxopt_lite as jol

RTOL = 1e-5


def _params():
    return {
        "w": jnp.array([[1.0, -2.0], [0.5, 3.0]]),
        "b": jnp.array([0.1, -0.2]),
        "s": jnp.array(2.0),
    }


def _grads(params, step):
    # A fixed, step-dependent gradient of a quadratic.
    return jax.tree.map(lambda p: (step + 1.0) * 0.3 * p + 0.1, params)


def _run(opt, params, steps=5, **extra):
    state = opt.init(params)
    for step in range(steps):
        updates, state = opt.update(_grads(params, step), state, params, **extra)
        params = optax.apply_updates(params, updates)
    return params, state


# Printed structures are compared: our state classes share optax's names.
_close = functools.partial(
    assert_trees_close, rtol=RTOL, atol=0.0, check_structure="printed"
)


# --- chain ---------------------------------------------------------------


def test_chain_matches_optax():
    ours = jol.chain(
        jol.clip(0.5),
        optax_reference(optax.scale_by_adam()),
        jol.scale_by_learning_rate(0.1),
    )
    theirs = optax.chain(optax.clip(0.5), optax.scale_by_adam(), optax.scale(-0.1))
    theirs = optax_reference(theirs)
    _close(_run(ours, _params())[0], _run(theirs, _params())[0])


def test_chain_rejects_a_foreign_state():
    opt = jol.chain(jol.scale(1.0), jol.scale(2.0))
    with pytest.raises(ValueError, match="tuple of 2 states"):
        opt.update(jnp.ones(1), (jol.scale(1.0).init(None),))
    with pytest.raises(TypeError, match="tuple of 2 states"):  # as optax's
        opt.update(jnp.ones(1), 0)


# --- named_chain -----------------------------------------------------------


def test_named_chain_matches_optax_and_names_states():
    ours = jol.named_chain(("clip", jol.clip(0.5)), ("adam", jol.adam(0.1)))
    theirs = optax_reference(
        optax.named_chain(("clip", optax.clip(0.5)), ("adam", optax.adam(0.1)))
    )
    p_ours, s_ours = _run(ours, _params())
    p_theirs, _ = _run(theirs, _params())
    _close(p_ours, p_theirs)
    assert set(s_ours) == {"clip", "adam"}
    assert int(s_ours["adam"][0].count) == 5
    np.testing.assert_allclose(jol.current_learning_rate(s_ours), 0.1)


def test_named_chain_passes_extra_args():
    opt = jol.named_chain(("scale", jol.scale(1.0)), ("polyak", jol.polyak_sgd()))
    ref = optax_reference(
        optax.named_chain(("scale", optax.scale(1.0)), ("polyak", optax.polyak_sgd()))
    )
    u, _ = opt.update(jnp.array([2.0]), opt.init(jnp.ones(1)), jnp.ones(1), value=3.0)
    r, _ = ref.update(jnp.array([2.0]), ref.init(jnp.ones(1)), jnp.ones(1), value=3.0)
    np.testing.assert_allclose(u, r, rtol=RTOL)


def test_named_chain_in_scan():
    opt = jol.named_chain(("m", jol.sgd(0.1, momentum=0.9)), ("clip", jol.clip(1.0)))
    params, _ = run_in_scan(opt, _params(), _grads, steps=4)
    _close(params, _run(opt, _params(), steps=4)[0], rtol=1e-6)


@pytest.mark.parametrize(
    ("args", "error", "match"),
    [
        ((), ValueError, "at least one"),
        (
            (("a", jol.scale(1.0)), ("a", jol.scale(2.0))),
            ValueError,
            "repeated: \\['a'\\]",
        ),
        ((jol.scale(1.0),), TypeError, "argument 0"),
        ((("a", 3.0),), TypeError, "GradientTransformation"),
    ],
)
def test_named_chain_errors(args, error, match):
    with pytest.raises(error, match=match):
        jol.named_chain(*args)


# --- masked --------------------------------------------------------------


MASK = {"w": True, "b": False, "s": True}


@pytest.mark.parametrize("callable_mask", [False, True])
def test_masked_matches_optax(callable_mask):
    mask = (lambda p: MASK) if callable_mask else MASK
    ours = jol.masked(jol.adam(0.1), mask)
    theirs = optax_reference(optax.masked(optax.adam(0.1), mask))
    p_ours, s_ours = _run(ours, _params())
    p_theirs, s_theirs = _run(theirs, _params())
    _close(p_ours, p_theirs)
    # The inner state only holds the masked-in leaves, as in optax.
    _close(s_ours.inner_state[0], s_theirs.inner_state[0])


def test_masked_passes_unmasked_updates_through():
    params = _params()
    opt = jol.masked(jol.scale(10.0), MASK)
    updates, _ = opt.update(params, opt.init(params))
    np.testing.assert_array_equal(updates["b"], params["b"])
    np.testing.assert_array_equal(updates["w"], 10.0 * params["w"])


def test_masked_prefix_mask():
    params = {"layer": {"w": jnp.ones(2), "b": jnp.ones(1)}, "head": jnp.ones(3)}
    opt = jol.masked(jol.scale(2.0), {"layer": True, "head": False})
    updates, _ = opt.update(params, opt.init(params))
    np.testing.assert_array_equal(updates["layer"]["w"], 2.0 * jnp.ones(2))
    np.testing.assert_array_equal(updates["head"], jnp.ones(3))


def test_masked_mismatched_mask_is_a_clear_error():
    opt = jol.masked(jol.scale(2.0), {"w": True, "bias": False})
    with pytest.raises(ValueError) as info:
        opt.init({"w": jnp.ones(2), "b": jnp.ones(1)})
    message = str(info.value)
    assert "mask does not match the params" in message
    assert "mask structure: PyTreeDef({'bias': *, 'w': *})" in message
    assert "params structure: PyTreeDef({'b': *, 'w': *})" in message


def test_masked_mismatched_callable_mask_on_update():
    opt = jol.masked(jol.scale(2.0), lambda p: {"w": True})
    with pytest.raises(ValueError, match="mask does not match the updates"):
        opt.update({"w": jnp.ones(1), "b": jnp.ones(1)}, jol.MaskedState(()))


@pytest.mark.parametrize("bad", [{"w": 1}, {"w": jnp.ones(2, bool)}, {"w": "yes"}])
def test_masked_rejects_non_boolean_leaves(bad):
    with pytest.raises(TypeError, match="mask leaves must be booleans"):
        jol.masked(jol.scale(1.0), bad)


def test_masked_rejects_traced_mask():
    opt = jol.masked(jol.scale(1.0), lambda p: jax.tree.map(lambda x: x.sum() > 0, p))
    with pytest.raises(TypeError, match="mask leaves must be booleans"):
        jax.jit(opt.init)(jnp.ones(2))


def test_masked_extra_args_masking():
    seen = {}

    def spy():
        def init_fn(params):
            return optax.EmptyState()

        def update_fn(updates, state, params=None, *, tags=None, **extra):
            seen["tags"] = tags
            return updates, state

        return optax.GradientTransformationExtraArgs(init_fn, update_fn)

    params = {"w": jnp.ones(1), "b": jnp.ones(1)}
    tags = {"w": jnp.array([1.0]), "b": jnp.array([2.0])}
    opt = jol.masked(spy(), {"w": True, "b": False}, mask_compatible_extra_args=True)
    opt.update(params, opt.init(params), params, tags=tags)
    assert isinstance(seen["tags"]["b"], optax.MaskedNode)
    np.testing.assert_array_equal(seen["tags"]["w"], tags["w"])


def test_masked_in_scan():
    opt = jol.masked(jol.adam(0.1), MASK)
    params, _ = run_in_scan(opt, _params(), _grads, steps=4)
    _close(params, _run(opt, _params(), steps=4)[0], rtol=1e-6)


# --- partition -----------------------------------------------------------


LABELS = {"w": "adam", "b": "sgd", "s": "sgd"}


@pytest.mark.parametrize("callable_labels", [False, True])
def test_partition_matches_optax(callable_labels):
    labels = (lambda p: LABELS) if callable_labels else LABELS
    ours = jol.partition(
        {"adam": jol.adam(0.1), "sgd": jol.sgd(0.05, momentum=0.9)}, labels
    )
    theirs = optax_reference(
        optax.partition(
            {"adam": optax.adam(0.1), "sgd": optax.sgd(0.05, momentum=0.9)}, labels
        )
    )
    p_ours, s_ours = _run(ours, _params())
    p_theirs, s_theirs = _run(theirs, _params())
    _close(p_ours, p_theirs)
    assert set(s_ours.inner_states) == {"adam", "sgd"}
    _close(
        s_ours.inner_states["adam"].inner_state[0],
        s_theirs.inner_states["adam"].inner_state[0],
    )


def test_partition_prefix_labels_and_unused_label():
    params = ({"x": jnp.ones(2)}, jnp.ones(3))
    opt = jol.partition(
        {"a": jol.scale(2.0), "b": jol.scale(3.0), "unused": jol.adam(1.0)}, ("a", "b")
    )
    updates, _ = opt.update(params, opt.init(params))
    np.testing.assert_array_equal(updates[0]["x"], 2.0 * jnp.ones(2))
    np.testing.assert_array_equal(updates[1], 3.0 * jnp.ones(3))


def test_partition_unknown_label():
    with pytest.raises(ValueError, match=r"labels with no transform: \['c'\]"):
        jol.partition({"a": jol.scale(1.0)}, {"w": "a", "b": "c"})
    opt = jol.partition({"a": jol.scale(1.0)}, lambda p: jax.tree.map(lambda _: "z", p))
    with pytest.raises(ValueError, match=r"labels with no transform: \['z'\]"):
        opt.init({"w": jnp.ones(1)})


def test_partition_missing_keys_is_a_clear_error():
    opt = jol.partition({"a": jol.scale(1.0)}, {"w": "a"})
    with pytest.raises(ValueError) as info:
        opt.init({"w": jnp.ones(1), "b": jnp.ones(1)})
    message = str(info.value)
    assert "param_labels does not match the params" in message
    assert "PyTreeDef({'w': *})" in message and "PyTreeDef({'b': *, 'w': *})" in message


def test_partition_bad_transforms():
    with pytest.raises(TypeError, match="non-empty mapping"):
        jol.partition({}, {})
    with pytest.raises(TypeError, match=r"transforms\['a'\]"):
        jol.partition({"a": "sgd"}, {"w": "a"})


def test_partition_in_scan():
    opt = jol.partition({"adam": jol.adam(0.1), "sgd": jol.sgd(0.05)}, LABELS)
    params, _ = run_in_scan(opt, _params(), _grads, steps=4)
    _close(params, _run(opt, _params(), steps=4)[0], rtol=1e-6)


# --- every combinator: scan-safe state for float32, bfloat16, complex64 ------


COMBINATORS = {
    "chain": lambda: jol.chain(jol.clip(1.0), jol.adam(0.1)),
    "named_chain": lambda: jol.named_chain(("a", jol.adam(0.1)), ("c", jol.clip(1.0))),
    "masked": lambda: jol.masked(jol.adam(0.1), MASK),
    "partition": lambda: jol.partition(
        {"a": jol.adam(0.1), "s": jol.sgd(0.1)}, LABELS_AS
    ),
    "inject_hyperparams": lambda: jol.inject_hyperparams(jol.adam)(
        learning_rate=jol.exponential_decay(0.1, 2, 0.5)
    ),
    "apply_if_finite": lambda: jol.apply_if_finite(jol.adam(0.1), 2),
    "accumulate_gradients": lambda: jol.accumulate_gradients(jol.adam(0.1), 2),
    "ema_params": lambda: jol.ema_params(jol.adam(0.1), 0.9),
    "lookahead": lambda: jol.lookahead(jol.adam(0.1), 2, 0.5, reset_state=True),
    "reduce_on_plateau": lambda: jol.chain(jol.adam(0.1), jol.reduce_on_plateau()),
    "multi_transform": lambda: jol.multi_transform(
        {"a": jol.adam(0.1), "s": jol.sgd(0.1)}, LABELS_AS
    ),
    "freeze": lambda: jol.chain(jol.adam(0.1), jol.freeze(MASK)),
    "selective_transform": lambda: jol.selective_transform(
        jol.adam(0.1), freeze_mask=lambda p: jax.tree.map(lambda x: x.ndim == 0, p)
    ),
    "conditionally_transform": lambda: jol.conditionally_transform(
        jol.adam(0.1), lambda t: t % 2 == 0
    ),
    "conditionally_mask": lambda: jol.conditionally_mask(
        jol.adam(0.1), lambda t, value: value > 0, forward_extra_args=True
    ),
    "apply_every": lambda: jol.chain(jol.adam(0.1), jol.apply_every(2)),
    "flatten": lambda: jol.flatten(jol.adam(0.1)),
    "monitor": lambda: jol.chain(
        jol.snapshot("raw", optax.tree.norm),
        jol.monitor(
            {
                "norm": optax.tree.norm,
                "big": jol.measure_with_ema(lambda g: optax.tree.norm(g) > 1, 0.9),
            }
        ),
        jol.adam(0.1),
    ),
}
LABELS_AS = {"w": "a", "b": "s", "s": "s"}


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16, jnp.complex64])
@pytest.mark.parametrize("name", sorted(COMBINATORS))
def test_state_structure_and_dtypes_are_stable(name, dtype):
    opt = COMBINATORS[name]()
    params = jax.tree.map(lambda x: x.astype(dtype), _params())
    state = opt.init(params)
    out_updates, out_state = jax.eval_shape(
        lambda g, s, p: opt.update(g, s, p, value=jnp.float32(1.0)),
        params,
        state,
        params,
    )
    assert jax.tree.structure(out_state) == jax.tree.structure(state)
    for before, after in zip(
        jax.tree.leaves(state), jax.tree.leaves(out_state), strict=True
    ):
        assert (after.shape, after.dtype) == (
            jnp.shape(before),
            jnp.result_type(before),
        )
    for u, p in zip(jax.tree.leaves(out_updates), jax.tree.leaves(params), strict=True):
        assert (u.shape, u.dtype) == (p.shape, p.dtype)
