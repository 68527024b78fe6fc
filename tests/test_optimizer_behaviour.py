"""Behaviour of optimizers and primitives that the shared table
(``transform_table.py``, with its generic checks) cannot express: Polyak's
``value=``, reproducible noise, Lion's modes, trust ratios, Adafactor's
factored moments on matrices, and argument validation."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from helpers import assert_trees_close, optax_reference

import jaxopt_lite as jol

_close = assert_trees_close


def _grads_like(params, step):
    return jax.tree.map(
        lambda p: (jnp.sin((3.0 * p).astype(jnp.float32) + step) * (step + 1.0)).astype(
            p.dtype
        ),
        params,
    )


def _updates(opt, params, steps=4, **extra):
    """The updates of ``steps`` calls with fixed pseudo-gradients, compiled as
    one scan."""

    @jax.jit
    def run():
        def body(state, step):
            updates, state = opt.update(
                _grads_like(params, step), state, params, **extra
            )
            return state, updates

        return jax.lax.scan(
            body, opt.init(params), jnp.arange(steps, dtype=jnp.float32)
        )

    return run()


def _matrix_params(big=(130, 129)):
    """Leaves of rank 1 to 3; ``big`` is large enough for Adafactor's default
    factoring (both axes >= 128)."""
    rng = np.random.default_rng(0)
    shapes = {"big": big, "tall": (3, 40), "cube": (4, 2, 5), "vec": (6,)}
    return {
        k: jnp.asarray(rng.standard_normal(s), jnp.float32) for k, s in shapes.items()
    }


# --- Polyak -------------------------------------------------------------------


def test_polyak_sgd_reproduces_the_classical_step():
    """On ``sum(x**2)`` from [1, 2, 3] each step halves x (optax's example)."""
    f = lambda x: jnp.sum(x**2)
    opt = jol.polyak_sgd()
    params = jnp.array([1.0, 2.0, 3.0])
    state = opt.init(params)
    values = []
    for _ in range(4):
        value, grad = jax.value_and_grad(f)(params)
        updates, state = opt.update(grad, state, params, value=value)
        params = optax.apply_updates(params, updates)
        values.append(float(f(params)))
    np.testing.assert_allclose(values, [3.5, 0.875, 0.21875, 0.0546875], rtol=1e-6)


def test_polyak_needs_value():
    opt = jol.polyak_sgd()
    with pytest.raises(TypeError, match="value"):
        opt.update(jnp.ones(2), opt.init(jnp.ones(2)), jnp.ones(2))


def test_polyak_step_rules():
    t = jol.scale_by_polyak(f_min=1.0, max_learning_rate=0.25)
    g = jnp.array([1.0, 1.0])  # squared norm 2
    step = lambda t, g, value: t.update(g, t.init(g), value=jnp.float32(value))[0]
    np.testing.assert_allclose(step(t, g, 1.2), 0.1 * g, rtol=1e-6)  # gap / |g|^2
    np.testing.assert_allclose(step(t, g, 9.0), 0.25 * g, rtol=1e-6)  # capped
    np.testing.assert_allclose(step(t, g, 0.0), -0.5 * g, rtol=1e-6)  # sps: negative
    plus = jol.scale_by_polyak(f_min=1.0, variant="sps+")
    np.testing.assert_array_equal(step(plus, g, 0.0), [0.0, 0.0])  # sps+: clipped
    np.testing.assert_array_equal(step(t, jnp.zeros(2), 5.0), [0.0, 0.0])  # |g| = 0


def test_polyak_matches_optax_with_value_in_a_chain():
    params = _matrix_params(big=(5, 4))
    value = jnp.float32(3.0)
    for kwargs in ({}, {"scaling": 0.5, "f_min": -1.0, "eps": 1e-3, "variant": "sps+"}):
        ours = _updates(jol.polyak_sgd(**kwargs), params, value=value)[1]
        theirs = _updates(
            optax_reference(optax.polyak_sgd(**kwargs)), params, value=value
        )[1]
        _close(ours, theirs, rtol=1e-5)
    # The value reaches scale_by_polyak through our chain (and optax's).
    opt = jol.chain(jol.clip(10.0), jol.scale_by_polyak(max_learning_rate=1.0))
    u, _ = opt.update(jnp.ones(4), opt.init(jnp.ones(4)), value=jnp.float32(0.4))
    np.testing.assert_allclose(u, jnp.full(4, 0.1), rtol=1e-6)


# --- noise --------------------------------------------------------------------


def test_noisy_sgd_is_deterministic_and_matches_optax():
    params = {"w": jnp.ones((3, 4)), "b": jnp.ones(5)}
    makers = {
        "int": lambda: jol.noisy_sgd(0.1, eta=0.5, key=42),
        "int_again": lambda: jol.noisy_sgd(0.1, eta=0.5, key=42),
        "typed": lambda: jol.noisy_sgd(0.1, eta=0.5, key=jax.random.key(42)),
        "raw": lambda: jol.noisy_sgd(0.1, eta=0.5, key=jax.random.PRNGKey(42)),
        "seed": lambda: jol.noisy_sgd(0.1, eta=0.5, seed=42),
        "optax": lambda: optax_reference(optax.noisy_sgd(0.1, eta=0.5, key=42)),
        "other_key": lambda: jol.noisy_sgd(0.1, eta=0.5, key=43),
    }

    @jax.jit
    def run_all():
        out = {}
        for name, make in makers.items():
            opt, state = make(), make().init(params)
            steps = []
            for step in range(2):
                updates, state = opt.update(_grads_like(params, step), state, params)
                steps.append(updates)
            out[name] = steps
        return out

    out = run_all()
    for name in ("int_again", "typed", "raw", "seed"):
        _close(out[name], out["int"], rtol=0, atol=0)
    _close(out["int"], out["optax"], rtol=1e-6)
    assert not np.allclose(out["other_key"][0]["w"], out["int"][0]["w"])
    # Each step draws new noise.
    noise = [
        u["w"] + 0.1 * _grads_like(params, i)["w"] for i, u in enumerate(out["int"])
    ]
    assert not np.allclose(noise[0], noise[1])


def test_add_noise_statistics_and_annealing():
    g = jnp.zeros(20_000)
    t = jol.add_noise(eta=4.0, gamma=1.0, key=0)
    state = t.init(g)
    u1, state = t.update(g, state)
    u2, state = t.update(g, state)
    # variance eta / t**gamma: 4 at t = 1, 2 at t = 2.
    np.testing.assert_allclose(jnp.var(u1), 4.0, rtol=0.05)
    np.testing.assert_allclose(jnp.var(u2), 2.0, rtol=0.05)
    assert abs(float(jnp.mean(u1))) < 0.05
    assert int(state.count) == 2
    # eta = 0 adds nothing.
    z = jol.add_noise(0.0, 0.55, key=1)
    np.testing.assert_array_equal(z.update(jnp.ones(3), z.init(None))[0], jnp.ones(3))


def test_noise_keys_can_be_vmapped():
    g = jnp.zeros(4)

    def noise(key):
        t = jol.add_noise(1.0, 0.55, key)
        return t.update(g, t.init(g))[0]

    keys = jax.random.split(jax.random.key(0), 3)
    batched = jax.jit(jax.vmap(noise))(keys)
    for i in range(3):
        _close(batched[i], noise(keys[i]), rtol=1e-6)
    assert not np.allclose(batched[0], batched[1])


def test_noise_key_errors():
    with pytest.raises(ValueError, match="key"):
        jol.noisy_sgd(0.1, key=0, seed=1)
    with pytest.raises(TypeError, match="key"):
        jol.add_noise(0.1, 0.5, key="seed")
    with pytest.raises(ValueError, match="key"):
        jol.add_noise(0.1, 0.5, key=jax.random.split(jax.random.key(0), 2))
    with pytest.raises(ValueError, match="eta"):
        jol.add_noise(-0.1, 0.5, key=0)


# --- sign and trust-ratio -----------------------------------------------------


@pytest.mark.parametrize("mode", ["hard", "smooth", "refined"])
def test_scale_by_lion_modes_match_optax(mode):
    params = _matrix_params(big=(5, 4))
    ours = _updates(jol.scale_by_lion(mode=mode, smooth_beta=0.5), params)
    theirs = _updates(
        optax_reference(optax.scale_by_lion(mode=mode, smooth_beta=0.5)), params
    )
    _close(ours[1], theirs[1])
    _close(ours[0].mu, theirs[0].mu)


def test_lion_momentum_dtype():
    params = {"w": jnp.ones(3, jnp.bfloat16)}
    opt = jol.lion(0.1, mu_dtype=jnp.float32)
    state, updates = _updates(opt, params)
    assert state[0].mu["w"].dtype == jnp.float32
    assert updates["w"].dtype == jnp.bfloat16
    with pytest.raises(ValueError, match="mode"):
        jol.scale_by_lion(mode="soft")
    with pytest.raises(TypeError, match="mu_dtype"):
        jol.lion(0.1, mu_dtype="not a dtype")


def test_trust_ratio_per_leaf():
    t = jol.scale_by_trust_ratio(trust_coefficient=0.5)
    params = {"a": jnp.array([3.0, 4.0]), "zero": jnp.zeros(2), "b": jnp.ones(4)}
    grads = {"a": jnp.array([0.0, 0.1]), "zero": jnp.ones(2), "b": jnp.zeros(4)}
    out = t.update(grads, t.init(params), params)[0]
    np.testing.assert_allclose(out["a"], [0.0, 2.5], rtol=1e-6)  # 0.5 * 5 / 0.1
    np.testing.assert_array_equal(out["zero"], grads["zero"])  # ratio 1
    np.testing.assert_array_equal(out["b"], grads["b"])
    with pytest.raises(TypeError, match="params"):  # a required argument (optax)
        t.update(grads, t.init(params))
    with pytest.raises(ValueError, match="params"):
        t.update(grads, t.init(params), None)


def test_lamb_lars_novograd_match_optax_on_matrices():
    params = _matrix_params(big=(5, 4))
    mask = {"big": True, "tall": False, "cube": True, "vec": False}
    for name, kwargs in (
        ("lamb", {"learning_rate": 0.1, "weight_decay": 0.01, "mask": mask}),
        (
            "lars",
            {"learning_rate": 0.1, "weight_decay": 0.01, "trust_ratio_mask": mask},
        ),
        ("novograd", {"learning_rate": 0.1, "weight_decay": 0.01, "eps_root": 1e-4}),
    ):
        ours = _updates(getattr(jol, name)(**kwargs), params)[1]
        theirs = _updates(optax_reference(getattr(optax, name)(**kwargs)), params)[1]
        _close(ours, theirs, rtol=1e-5, atol=1e-7)


def test_novograd_second_moment_is_one_real_scalar_per_leaf():
    params = {"w": jnp.ones((2, 3), jnp.complex64), "b": jnp.ones(2)}
    state = jol.scale_by_novograd().init(params)
    assert jax.tree.map(lambda x: (x.shape, x.dtype), state.nu) == {
        "w": ((), jnp.float32),
        "b": ((), jnp.float32),
    }


# --- Adafactor ----------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"learning_rate": 0.01},
        {},
        {"min_dim_size_to_factor": 3, "decay_rate": 0.5, "decay_offset": -2},
        {"learning_rate": 0.01, "factored": False, "clipping_threshold": None},
        {
            "learning_rate": 0.01,
            "min_dim_size_to_factor": 3,
            "momentum": 0.9,
            "weight_decay_rate": 0.01,
            "weight_decay_mask": {
                "big": True,
                "tall": False,
                "cube": True,
                "vec": False,
            },
            "multiply_by_parameter_scale": False,
        },
    ],
    ids=["lr", "default", "small_dims", "unfactored", "momentum_decay"],
)
def test_adafactor_matches_optax_on_matrices(kwargs):
    # Only the default factoring threshold (128) needs the big matrix.
    small = kwargs.get("min_dim_size_to_factor") or not kwargs.get("factored", True)
    params = _matrix_params(big=(5, 4) if small else (130, 129))
    ours = _updates(jol.adafactor(**kwargs), params)[1]
    theirs = _updates(optax_reference(optax.adafactor(**kwargs)), params)[1]
    _close(ours, theirs, rtol=2e-6, atol=1e-8)


def test_factored_state_shapes():
    params = _matrix_params()
    state = jol.scale_by_factored_rms(min_dim_size_to_factor=3).init(params)
    shapes = lambda tree: jax.tree.map(lambda x: x.shape, tree)
    # 'big' (130, 129), 'tall' (3, 40) and 'cube' (4, 2, 5) are factored over
    # their two largest axes (v_row drops the largest, v_col the second
    # largest); 'vec' keeps a full moment.
    assert shapes(state.v_row) == {
        "big": (129,),
        "tall": (3,),
        "cube": (4, 2),
        "vec": (1,),
    }
    assert shapes(state.v_col) == {
        "big": (130,),
        "tall": (40,),
        "cube": (2, 5),
        "vec": (1,),
    }
    assert shapes(state.v) == {"big": (1,), "tall": (1,), "cube": (1,), "vec": (6,)}
    theirs = optax.scale_by_factored_rms(min_dim_size_to_factor=3).init(params)
    assert shapes(theirs.v_row) == shapes(state.v_row)
    assert shapes(theirs.v_col) == shapes(state.v_col)
    # Memory: 130 + 129 numbers instead of 130 * 129.
    default = jol.scale_by_factored_rms().init(params)
    assert shapes(default.v)["big"] == (1,)
    assert shapes(default.v)["tall"] == (3, 40)


def test_adafactor_learning_rate_is_readable():
    params = _matrix_params()
    state = _updates(jol.adafactor(learning_rate=0.02), params)[0]
    np.testing.assert_allclose(jol.current_learning_rate(state), 0.02)
    assert jol.current_learning_rate(jol.adafactor().init(params)) is None


@pytest.mark.parametrize(
    ("factory", "kwargs", "name"),
    [
        (jol.adafactor, {"clipping_threshold": -1.0}, "clipping_threshold"),
        (jol.adafactor, {"min_dim_size_to_factor": -3}, "min_dim_size_to_factor"),
        (jol.adafactor, {"momentum": 1.5}, "momentum"),
        (jol.adafactor, {"eps": float("nan")}, "eps"),
        (jol.lion, {"learning_rate": 0.1, "b1": 1.5}, "b1"),
        (jol.lion, {"learning_rate": -0.1}, "learning_rate"),
        (jol.lamb, {"learning_rate": 0.1, "weight_decay": -1.0}, "weight_decay"),
        (jol.lars, {"learning_rate": 0.1, "momentum": 1.5}, "momentum"),
        (
            jol.lars,
            {"learning_rate": 0.1, "trust_coefficient": -1.0},
            "trust_coefficient",
        ),
        (jol.novograd, {"learning_rate": 0.1, "b2": 1.0}, "b2"),
        (jol.noisy_sgd, {"learning_rate": 0.1, "gamma": -1.0}, "gamma"),
        (jol.polyak_sgd, {"max_learning_rate": -1.0}, "max_learning_rate"),
        (jol.polyak_sgd, {"variant": "sps++"}, "variant"),
        (jol.scale_by_trust_ratio, {"min_norm": -1.0}, "min_norm"),
        (jol.scale_by_param_block_rms, {"min_scale": -1.0}, "min_scale"),
        (jol.scale_by_factored_rms, {"epsilon": -1.0}, "epsilon"),
    ],
)
def test_invalid_arguments(factory, kwargs, name):
    with pytest.raises(ValueError, match=name):
        factory(**kwargs)


def test_wrong_types():
    with pytest.raises(TypeError, match="factored"):
        jol.adafactor(factored=1)
    with pytest.raises(TypeError, match="multiply_by_parameter_scale"):
        jol.adafactor(multiply_by_parameter_scale="yes")
    with pytest.raises(TypeError, match="decay_rate_fn"):
        jol.scale_by_factored_rms(decay_rate_fn=0.8)
    with pytest.raises(TypeError, match="learning_rate"):
        jol.sign_sgd("0.1")
