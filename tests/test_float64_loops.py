"""Under x64, fit and sweep keep losses, metrics and histories in float64 for
float64 parameters (and float32 otherwise), matching a float64 oracle."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax

import jaxopt_lite as jol


def _problem():
    x = np.random.default_rng(0).normal(size=(64, 3))
    y = x @ np.array([1.0, -2.0, 0.5]) + 1e6  # large offset: float32 loses digits
    return {"x": x, "y": y}


def _loss(p, batch):
    return jnp.mean((batch["x"] @ p["w"] + p["b"] - batch["y"]) ** 2)


def test_fit_history_is_float64_and_matches_a_float64_loop():
    with jax.enable_x64(True):
        data = jax.tree.map(jnp.asarray, _problem())
        params = {"w": jnp.zeros(3), "b": jnp.zeros(())}
        opt = jol.sgd(0.1, momentum=0.5)
        result = jol.fit(_loss, params, opt, data, steps=20, progress=False)
        for name in ("loss", "grad_norm", "learning_rate"):
            assert result.history[name].dtype == np.float64, name
        # The oracle: optax's SGD on the full batch (batch_size=None), in float64.
        ref = optax.sgd(0.1, momentum=0.5)

        @jax.jit
        def step(p, state):
            value, grad = jax.value_and_grad(_loss)(p, data)
            updates, state = ref.update(grad, state, p)
            return optax.apply_updates(p, updates), state, value

        state, p, losses = ref.init(params), params, []
        for _ in range(20):
            p, state, value = step(p, state)
            losses.append(float(value))
        np.testing.assert_allclose(result.history["loss"], losses, rtol=1e-12)
        assert len(set(result.history["loss"].tolist())) == 20  # no float32 ties
        assert result.history["learning_rate"][0] == 0.1  # not 0.10000000149


def test_sweep_history_is_float64():
    with jax.enable_x64(True):
        data = jax.tree.map(jnp.asarray, _problem())
        params = {"w": jnp.zeros(3), "b": jnp.zeros(())}
        result = jol.sweep(
            lambda learning_rate: jol.sgd(learning_rate),
            {"learning_rate": [0.01, 0.1]},
            _loss,
            params,
            data,
            steps=5,
        )
        assert result.history["loss"].dtype == np.float64


def test_float32_parameters_keep_float32_histories_under_x64():
    with jax.enable_x64(True):
        data = jax.tree.map(lambda a: jnp.asarray(a, jnp.float32), _problem())
        params = {"w": jnp.zeros(3, jnp.float32), "b": jnp.zeros((), jnp.float32)}
        result = jol.fit(_loss, params, jol.sgd(0.1), data, steps=3, progress=False)
        assert result.history["loss"].dtype == np.float32
