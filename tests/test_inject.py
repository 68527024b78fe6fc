"""inject_hyperparams: parity with optax, readable/changeable/vmappable state."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from helpers import optax_reference

import jaxopt_lite as jol

RTOL = 1e-5
PARAMS = {"w": jnp.array([1.0, -2.0, 0.5]), "b": jnp.asarray(0.3, jnp.float32)}


def _grads(params):
    return jax.tree.map(lambda p: 2.0 * p - 0.1, params)


def _run(opt, params=PARAMS, steps=6):
    state = opt.init(params)
    update = jax.jit(opt.update)
    lrs = []
    for _ in range(steps):
        updates, state = update(_grads(params), state, params)
        params = optax.apply_updates(params, updates)
        lrs.append(float(state.hyperparams["learning_rate"]))
    return params, state, lrs


def test_matches_optax_with_a_schedule():
    ours = jol.inject_hyperparams(jol.adam)(
        learning_rate=jol.exponential_decay(0.1, 2, 0.5), b1=0.8
    )
    theirs = optax_reference(
        optax.inject_hyperparams(optax.adam)(
            learning_rate=optax.exponential_decay(0.1, 2, 0.5), b1=0.8
        )
    )
    p_ours, s_ours, lr_ours = _run(ours)
    p_theirs, s_theirs, lr_theirs = _run(theirs)
    for a, b in zip(jax.tree.leaves(p_ours), jax.tree.leaves(p_theirs), strict=True):
        np.testing.assert_allclose(a, b, rtol=RTOL)
    np.testing.assert_allclose(lr_ours, lr_theirs, rtol=RTOL)
    # The schedule is evaluated at the count: the k-th update uses s(k - 1).
    np.testing.assert_allclose(
        lr_ours, [0.1 * 0.5 ** (k / 2) for k in range(6)], rtol=1e-6
    )
    assert int(s_ours.count) == int(s_theirs.count) == 6
    assert set(s_ours.hyperparams) == set(s_theirs.hyperparams)
    for k in s_ours.hyperparams:
        np.testing.assert_allclose(s_ours.hyperparams[k], s_theirs.hyperparams[k])


def test_state_layout_and_current_learning_rate():
    opt = jol.inject_hyperparams(jol.adam)(learning_rate=0.1)
    state = opt.init(PARAMS)
    assert isinstance(state, jol.InjectHyperparamsState)
    assert state._fields == (
        "count",
        "hyperparams",
        "hyperparams_states",
        "inner_state",
    )
    assert state.count.dtype == jnp.int32
    assert set(state.hyperparams) == {"learning_rate", "b1", "b2", "eps", "eps_root"}
    assert all(x.dtype == jnp.float32 for x in state.hyperparams.values())
    np.testing.assert_allclose(jol.current_learning_rate(state), 0.1)
    state = state._replace(hyperparams={**state.hyperparams, "learning_rate": 0.02})
    _, state = opt.update(_grads(PARAMS), state, PARAMS)
    np.testing.assert_allclose(jol.current_learning_rate(state), 0.02)


def test_changing_a_hyperparameter_between_steps():
    opt = jol.inject_hyperparams(jol.sgd)(learning_rate=0.1)
    state = opt.init(PARAMS)
    updates, state = opt.update(_grads(PARAMS), state)
    np.testing.assert_allclose(updates["w"], -0.1 * _grads(PARAMS)["w"], rtol=1e-6)
    state.hyperparams["learning_rate"] = 0.5  # in place, as optax allows
    updates, state = opt.update(_grads(PARAMS), state)
    np.testing.assert_allclose(updates["w"], -0.5 * _grads(PARAMS)["w"], rtol=1e-6)
    assert state.hyperparams["learning_rate"].dtype == jnp.float32


def test_scheduled_value_cannot_be_overridden():
    opt = jol.inject_hyperparams(jol.sgd)(
        learning_rate=lambda n: 0.1 * (n + 1).astype(float)
    )
    state = opt.init(PARAMS)
    state = state._replace(hyperparams={"learning_rate": jnp.array(9.0)})
    updates, state = opt.update(_grads(PARAMS), state)
    np.testing.assert_allclose(updates["b"], -0.1 * _grads(PARAMS)["b"], rtol=1e-6)


def test_no_recompilation_when_values_change():
    traces = []
    opt = jol.inject_hyperparams(jol.adam)(learning_rate=0.1)

    @jax.jit
    def step(params, state):
        traces.append(1)
        updates, state = opt.update(_grads(params), state, params)
        return optax.apply_updates(params, updates), state

    state = opt.init(PARAMS)
    params, state = step(PARAMS, state)
    # Strongly typed float32 arrays, like the values in the state: a Python
    # float (weakly typed) would cost one more trace.
    state = state._replace(
        hyperparams={
            **state.hyperparams,
            "learning_rate": jnp.asarray(0.01, jnp.float32),
            "b1": jnp.asarray(0.5, jnp.float32),
        }
    )
    params, state = step(params, state)
    assert len(traces) == 1
    np.testing.assert_allclose(jol.current_learning_rate(state), 0.01)


def test_vmap_over_hyperparameters():
    opt = jol.inject_hyperparams(jol.sgd)(learning_rate=0.1, momentum=0.9)

    def run(lr):
        state = opt.init(PARAMS)
        state = state._replace(hyperparams={**state.hyperparams, "learning_rate": lr})
        params = PARAMS
        for _ in range(3):
            updates, state = opt.update(_grads(params), state, params)
            params = optax.apply_updates(params, updates)
        return params["w"]

    lrs = jnp.array([0.01, 0.1, 0.2])
    batched = jax.jit(jax.vmap(run))(lrs)
    for i, lr in enumerate(lrs):
        ref = optax_reference(
            optax.inject_hyperparams(optax.sgd)(learning_rate=float(lr), momentum=0.9)
        )
        state, params, update = ref.init(PARAMS), PARAMS, jax.jit(ref.update)
        for _ in range(3):
            updates, state = update(_grads(params), state, params)
            params = optax.apply_updates(params, updates)
        np.testing.assert_allclose(batched[i], params["w"], rtol=RTOL)


def test_vmap_over_the_factory_argument():
    def run(lr):
        opt = jol.inject_hyperparams(jol.sgd)(learning_rate=lr)
        updates, _ = opt.update(_grads(PARAMS), opt.init(PARAMS))
        return updates["b"]

    out = jax.jit(jax.vmap(run))(jnp.array([0.1, 0.2]))
    np.testing.assert_allclose(
        out, -jnp.array([0.1, 0.2]) * _grads(PARAMS)["b"], rtol=1e-6
    )


def test_scan_keeps_the_state_type():
    opt = jol.inject_hyperparams(jol.adam)(
        learning_rate=jol.linear_schedule(0.1, 0.0, 10)
    )

    def body(carry, _):
        params, state = carry
        updates, state = opt.update(_grads(params), state, params)
        return (optax.apply_updates(params, updates), state), state.hyperparams[
            "learning_rate"
        ]

    (params, _), lrs = jax.jit(
        lambda p: jax.lax.scan(body, (p, opt.init(p)), None, length=5)
    )(PARAMS)
    np.testing.assert_allclose(lrs, 0.1 - 0.01 * jnp.arange(5.0), rtol=1e-5)
    p_ref, _, _ = _run(opt, steps=5)
    np.testing.assert_allclose(params["w"], p_ref["w"], rtol=1e-6)


def test_dtypes():
    # At least float32: optax would store b2=0.999 as bfloat16(1.0) here.
    bf16 = jax.tree.map(lambda x: x.astype(jnp.bfloat16), PARAMS)
    opt = jol.inject_hyperparams(jol.adam)(learning_rate=0.1)
    hyperparams = opt.init(bf16).hyperparams
    assert hyperparams["b2"].dtype == jnp.float32
    np.testing.assert_allclose(hyperparams["b2"], 0.999)
    opt = jol.inject_hyperparams(jol.sgd)(learning_rate=0.1, momentum=0.9)
    c64 = jax.tree.map(lambda x: x.astype(jnp.complex64), PARAMS)
    assert opt.init(c64).hyperparams["learning_rate"].dtype == jnp.float32
    opt = jol.inject_hyperparams(jol.sgd, hyperparam_dtype=jnp.float16)(
        learning_rate=0.1
    )
    assert opt.init(PARAMS).hyperparams["learning_rate"].dtype == jnp.float16
    # Integer hyper-parameters become int32 arrays; strong arrays keep their dtype.
    opt = jol.inject_hyperparams(jol.scale_by_learning_rate)(learning_rate=2)
    assert opt.init(PARAMS).hyperparams["learning_rate"].dtype == jnp.int32
    # (optax.sgd: jol's checks reject concrete bfloat16 arrays for now.)
    opt = jol.inject_hyperparams(optax.sgd)(learning_rate=jnp.array(0.1, jnp.bfloat16))
    assert opt.init(PARAMS).hyperparams["learning_rate"].dtype == jnp.bfloat16


def test_static_and_non_numeric_arguments():
    calls = []

    def factory(learning_rate, fn, flag=True, name="x", extra=None):
        calls.append((fn, flag, name, extra))
        return jol.scale(-learning_rate)

    opt = jol.inject_hyperparams(factory, static_args="fn")(0.1, abs, extra=None)
    state = opt.init(PARAMS)
    assert set(state.hyperparams) == {"learning_rate"}
    opt.update(PARAMS, state)
    assert all(c == (abs, True, "x", None) for c in calls)


def test_dtype_arguments_are_static():
    opt = jol.inject_hyperparams(jol.adam)(learning_rate=0.1, mu_dtype=jnp.bfloat16)
    state = opt.init(PARAMS)
    assert "mu_dtype" not in state.hyperparams
    assert state.inner_state[0].mu["w"].dtype == jnp.bfloat16


def test_var_keyword_factories():
    def factory(**kwargs):
        return jol.scale(-kwargs["learning_rate"])

    opt = jol.inject_hyperparams(factory)(learning_rate=0.5)
    updates, state = opt.update(jnp.ones(1), opt.init(jnp.ones(1)))
    np.testing.assert_allclose(updates, [-0.5])
    assert set(state.hyperparams) == {"learning_rate"}


def test_values_are_checked_when_the_factory_is_called():
    with pytest.raises(ValueError, match="learning_rate"):
        jol.inject_hyperparams(jol.adam)(learning_rate=-1.0)
    with pytest.raises(ValueError, match="b1"):
        jol.inject_hyperparams(jol.adam)(learning_rate=0.1, b1=1.5)
    with pytest.raises(TypeError, match="adam"):
        jol.inject_hyperparams(jol.adam)(learning_rate=0.1, nope=1)

    class Stateful:
        def init(self):
            return ()

        def update(self, state):
            return state

        def __call__(self, state):
            return 0.1

    # a stateful schedule is supported (as in optax) and its value checked
    opt = jol.inject_hyperparams(jol.sgd)(learning_rate=Stateful())
    np.testing.assert_allclose(jol.current_learning_rate(opt.init(PARAMS)), 0.1)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"inner_factory": 3}, TypeError, "inner_factory must be callable"),
        ({"static_args": "lr"}, ValueError, "static_args=\\['lr'\\]"),
        ({"static_args": 3}, TypeError, "static_args"),
        ({"hyperparam_dtype": jnp.int32}, ValueError, "hyperparam_dtype"),
        ({"hyperparam_dtype": "nope"}, TypeError, "hyperparam_dtype"),
    ],
)
def test_argument_errors(kwargs, error, match):
    kwargs = {"inner_factory": jol.sgd, **kwargs}
    with pytest.raises(error, match=match):
        jol.inject_hyperparams(**kwargs)
