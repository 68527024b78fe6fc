"""fit with models from flax (linen and nnx) and equinox, when installed."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxopt_lite as jol

X = jax.random.normal(jax.random.key(0), (64, 4))
DATA = {"x": X, "y": jnp.tanh(X @ jnp.array([1.0, -1.0, 0.5, 0.0]))[:, None]}
OPT = optax.adam(0.02)


def mse(pred, y):
    return jnp.mean((pred - y) ** 2)


def test_flax_linen():
    nn = pytest.importorskip("flax.linen")

    class MLP(nn.Module):
        @nn.compact
        def __call__(self, x):
            return nn.Dense(1)(nn.tanh(nn.Dense(16)(x)))

    model = MLP()
    params = model.init(jax.random.key(1), X[:1])["params"]

    def loss_fn(p, b):
        return mse(model.apply({"params": p}, b["x"]), b["y"])

    start = float(loss_fn(params, DATA))
    result = jol.fit(loss_fn, params, OPT, DATA, epochs=100, batch_size=16)
    assert float(loss_fn(result.params, DATA)) < 0.05 * start
    assert jax.tree.structure(result.params) == jax.tree.structure(params)


def test_flax_nnx():
    nnx = pytest.importorskip("flax.nnx")

    class MLP(nnx.Module):
        def __init__(self, rngs):
            self.hidden = nnx.Linear(4, 16, rngs=rngs)
            self.out = nnx.Linear(16, 1, rngs=rngs)

        def __call__(self, x):
            return self.out(jnp.tanh(self.hidden(x)))

    graphdef, params = nnx.split(MLP(nnx.Rngs(1)), nnx.Param)

    def loss_fn(p, b):
        return mse(nnx.merge(graphdef, p)(b["x"]), b["y"])

    start = float(loss_fn(params, DATA))
    result = jol.fit(loss_fn, params, OPT, DATA, epochs=100, batch_size=16)
    assert float(loss_fn(result.params, DATA)) < 0.05 * start
    trained = nnx.merge(graphdef, result.params)
    np.testing.assert_allclose(
        mse(trained(DATA["x"]), DATA["y"]), loss_fn(result.params, DATA), rtol=1e-6
    )
    assert not np.allclose(trained.hidden.kernel[...], params["hidden"]["kernel"][...])


def test_equinox_partition_pattern():
    eqx = pytest.importorskip("equinox")
    model = eqx.nn.MLP(4, 1, 16, 1, activation=jnp.tanh, key=jax.random.key(1))
    # fit differentiates every leaf of params: keep only the float arrays there.
    params, static = eqx.partition(model, eqx.is_inexact_array)

    def loss_fn(p, b):
        net = eqx.combine(p, static)
        return mse(jax.vmap(net)(b["x"]), b["y"])

    start = float(loss_fn(params, DATA))
    result = jol.fit(loss_fn, params, OPT, DATA, epochs=100, batch_size=16)
    assert float(loss_fn(result.params, DATA)) < 0.05 * start
    trained = eqx.combine(result.params, static)
    assert isinstance(trained, eqx.nn.MLP)
