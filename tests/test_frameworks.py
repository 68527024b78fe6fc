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


# --- models with state (batch norm) and dropout (a key per step) ---

STEP_KEY = jax.random.key(3)


def test_flax_linen_batch_stats_and_dropout_match_a_hand_written_loop():
    nn = pytest.importorskip("flax.linen")
    from jaxopt_lite._loop.train import step_key

    class Net(nn.Module):
        @nn.compact
        def __call__(self, x, train):
            # No bias before batch norm: its gradient is rounding noise, which
            # adam would amplify into steps of the learning rate's size.
            x = nn.Dense(8, use_bias=False)(x)
            x = nn.BatchNorm(use_running_average=not train, momentum=0.9)(x)
            x = nn.Dropout(0.5, deterministic=not train)(nn.relu(x))
            return nn.Dense(1)(x)

    model = Net()
    variables = model.init(jax.random.key(1), X[:1], train=False)
    params, state = variables["params"], {"batch_stats": variables["batch_stats"]}

    def loss_fn(p, s, b, key):
        pred, new_state = model.apply(
            {"params": p, **s}, b["x"], train=True, rngs={"dropout": key},
            mutable=["batch_stats"],
        )  # fmt: skip
        return mse(pred, b["y"]), new_state

    result = jol.fit(loss_fn, params, OPT, DATA, state=state, step_key=True,
                     steps=6, batch_size=16, shuffle=False, key=STEP_KEY)  # fmt: skip

    @jax.jit  # one compile for the six steps (eager flax dispatches op by op)
    def hand_step(p, s, o, b, key):
        g, s = jax.grad(loss_fn, has_aux=True)(p, s, b, key)
        u, o = OPT.update(g, o, p)
        return optax.apply_updates(p, u), s, o

    p, s, o = params, state, OPT.init(params)
    for i in range(6):
        b = jax.tree.map(lambda x, i=i: x[(i % 4) * 16 : (i % 4) * 16 + 16], DATA)
        p, s, o = hand_step(p, s, o, b, step_key(STEP_KEY, i))
    assert jax.tree.structure(result.state) == jax.tree.structure(state)
    for got, want in zip(jax.tree.leaves((result.params, result.state)),
                         jax.tree.leaves((p, s)), strict=True):  # fmt: skip
        np.testing.assert_allclose(got, want, rtol=2e-5, atol=1e-6)


def test_flax_nnx_batch_norm_dropout_and_learning_rate():
    nnx = pytest.importorskip("flax.nnx")

    class Net(nnx.Module):
        def __init__(self, rngs):
            self.hidden = nnx.Linear(4, 16, rngs=rngs)
            self.norm = nnx.BatchNorm(16, momentum=0.9, rngs=rngs)
            self.dropout = nnx.Dropout(0.2)
            self.out = nnx.Linear(16, 1, rngs=rngs)

        def __call__(self, x, key=None):
            x = nnx.relu(self.norm(self.hidden(x)))
            return self.out(self.dropout(x, rngs=key))

    model = Net(nnx.Rngs(1))
    graphdef, params, stats = nnx.split(model, nnx.Param, nnx.BatchStat)

    def loss_fn(p, s, b, key):
        net = nnx.merge(graphdef, p, s, copy=True)
        return mse(net(b["x"], key), b["y"]), nnx.state(net, nnx.BatchStat)

    start = float(loss_fn(params, stats, DATA, jax.random.key(0))[0])
    kw = dict(state=stats, step_key=True, epochs=60, batch_size=16, key=STEP_KEY)
    result = jol.fit(loss_fn, params, OPT, DATA, **kw)
    again = jol.fit(loss_fn, params, OPT, DATA, **kw)
    assert float(loss_fn(result.params, result.state, DATA, jax.random.key(0))[0]) < (
        0.2 * start
    )
    assert jax.tree.all(jax.tree.map(lambda a, b: bool((a == b).all()),
                                     result.state, again.state))  # fmt: skip
    assert not np.allclose(result.state["norm"]["mean"][...], 0.0)
    nnx.update(model, result.params, result.state)
    np.testing.assert_array_equal(
        model.norm.mean[...], result.state["norm"]["mean"][...]
    )

    schedule = optax.inject_hyperparams(optax.adam)(learning_rate=0.02)
    optimizer = nnx.Optimizer(model, schedule, wrt=nnx.Param)
    np.testing.assert_allclose(jol.current_learning_rate(optimizer.opt_state), 0.02)


def test_flax_nnx_rng_state_in_params_names_nnx_and_the_fix():
    nnx = pytest.importorskip("flax.nnx")
    model = nnx.Dropout(0.5, rngs=nnx.Rngs(0))
    _, everything = nnx.split(model)
    with pytest.raises(TypeError, match=r"uint32.*flax\.nnx model.*nnx\.split\(model"):
        jol.fit(lambda p, b: jnp.zeros(()), everything, OPT, DATA, steps=1)


def test_equinox_state_batch_norm_under_vmap_and_dropout():
    eqx = pytest.importorskip("equinox")

    class Net(eqx.Module):
        hidden: eqx.nn.Linear
        norm: eqx.nn.BatchNorm
        dropout: eqx.nn.Dropout
        out: eqx.nn.Linear

        def __init__(self, key):
            k1, k2 = jax.random.split(key)
            self.hidden = eqx.nn.Linear(4, 16, key=k1)
            self.norm = eqx.nn.BatchNorm(
                16, axis_name="batch", momentum=0.9, mode="ema"
            )
            self.dropout = eqx.nn.Dropout(0.2)
            self.out = eqx.nn.Linear(16, 1, key=k2)

        def __call__(self, x, state, key):
            x, state = self.norm(self.hidden(x), state)
            return self.out(self.dropout(jax.nn.relu(x), key=key)), state

    model, state = eqx.nn.make_with_state(Net)(jax.random.key(1))
    params, static = eqx.partition(model, eqx.is_inexact_array)

    def loss_fn(p, s, b, key):
        net = eqx.combine(p, static)
        keys = jax.random.split(key, b["x"].shape[0])
        pred, s = jax.vmap(net, axis_name="batch", in_axes=(0, None, 0),
                           out_axes=(0, None))(b["x"], s, keys)  # fmt: skip
        return mse(pred, b["y"]), s

    def eval_fn(p, s, d):
        net = eqx.nn.inference_mode(eqx.combine(p, static))
        pred, _ = jax.vmap(net, axis_name="batch", in_axes=(0, None, None),
                           out_axes=(0, None))(d["x"], s, None)  # fmt: skip
        return {"mse": mse(pred, d["y"])}

    start = float(eval_fn(params, state, DATA)["mse"])
    result = jol.fit(loss_fn, params, OPT, DATA, state=state, step_key=True,
                     epochs=60, batch_size=16, key=STEP_KEY, eval_fn=eval_fn,
                     eval_data=DATA, eval_every=40)  # fmt: skip
    assert isinstance(result.state, eqx.nn.State)
    final = float(eval_fn(result.params, result.state, DATA)["mse"])
    assert final < 0.2 * start
    np.testing.assert_allclose(result.history["eval_mse"][-1], final, rtol=1e-6)
    assert result.history["eval_step"].tolist() == list(range(40, 241, 40))


def test_equinox_model_with_functions_in_params_names_equinox_and_the_fix():
    eqx = pytest.importorskip("equinox")
    model = eqx.nn.MLP(4, 1, 8, 1, activation=jax.nn.relu, key=jax.random.key(0))
    with pytest.raises(TypeError, match=r"equinox model.*eqx\.partition"):
        jol.fit(lambda p, b: jnp.zeros(()), model, OPT, DATA, steps=1)
