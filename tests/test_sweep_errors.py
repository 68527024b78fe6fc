"""`sweep`'s errors: every bad argument refused before tracing, with a message
naming the argument, the value and what is allowed."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import pytest

import jaxopt_lite as jol

_X = jax.random.normal(jax.random.key(0), (48, 3))
DATA = {"x": _X, "y": _X @ jnp.array([1.0, -2.0, 0.5]) + 0.3}
PARAMS = {"w": jnp.zeros(3), "b": jnp.zeros(())}
HP = {"learning_rate": [0.1, 0.01]}


def loss_fn(p, batch):
    return jnp.mean((batch["x"] @ p["w"] + p["b"] - batch["y"]) ** 2)


def make_adam(learning_rate, b1):
    return jol.adam(learning_rate, b1=b1)


def make_sgd(learning_rate):
    return jol.sgd(learning_rate)


@pytest.mark.parametrize(
    ("hyperparams", "kwargs", "error", "match"),
    [
        ({}, {}, ValueError, "hyperparams is empty"),
        ([0.1], {}, TypeError, "hyperparams must be a dict"),
        (
            {"learning_rate": [[0.1]]},
            {},
            ValueError,
            r"hyperparams\['learning_rate'\] must be a non-empty 1-D",
        ),
        ({"learning_rate": []}, {}, ValueError, "non-empty 1-D"),
        ({"learning_rate": ["a"]}, {}, TypeError, "real numbers"),
        (
            {"learning_rate": [0.1], "b1": [0.9, 0.5]},
            {"grid": False},
            ValueError,
            "equal lengths",
        ),
        (
            {"lr": [0.1], "b1": [0.9]},
            {},
            ValueError,
            r"names \['lr', 'b1'\] do not fit make_optimizer",
        ),
        ({"learning_rate": [0.1]}, {}, ValueError, "every argument without a default"),
        ({"learning_rate": [-0.1], "b1": [0.9]}, {}, ValueError, "learning_rate"),
        ({"learning_rate": [0.1], "b1": [0.9]}, {"seeds": 0}, ValueError, "seeds=0"),
        (
            {"learning_rate": [0.1], "b1": [0.9]},
            {"max_parallel": 0},
            ValueError,
            "max_parallel=0",
        ),
        (
            {"learning_rate": [0.1], "b1": [0.9]},
            {"seeds": 1.5},
            TypeError,
            "seeds must be an integer",
        ),
        (
            {"learning_rate": [0.1], "b1": [0.9]},
            {"grid": 1},
            TypeError,
            "grid must be True or False",
        ),
        (
            {"learning_rate": [0.1], "b1": [0.9]},
            {"batch_size": 100},
            ValueError,
            "batch_size=100 is larger",
        ),
        (
            {"learning_rate": [0.1], "b1": [0.9]},
            {"steps": None},
            ValueError,
            "exactly one of steps and epochs",
        ),
        (
            {"learning_rate": [0.1], "b1": [0.9]},
            {"key": "0"},
            TypeError,
            "key must be an integer seed or a PRNG key",
        ),
        (
            {"learning_rate": [0.1], "b1": [0.9]},
            {"mesh": "data"},
            TypeError,
            "mesh must be a jax.sharding.Mesh",
        ),
    ],
)
def test_errors_name_the_argument(hyperparams, kwargs, error, match):
    settings = {"steps": 4, "batch_size": 8, **kwargs}
    with pytest.raises(error, match=match):
        jol.sweep(make_adam, hyperparams, loss_fn, PARAMS, DATA, **settings)


def test_errors_for_bad_builders_params_and_losses():
    hp = {"learning_rate": [0.1]}
    with pytest.raises(TypeError, match="make_optimizer must be callable"):
        jol.sweep(None, hp, loss_fn, PARAMS, DATA, steps=1)
    with pytest.raises(
        TypeError,
        match=r"make_optimizer\(\*\*\{'learning_rate': 0.1\}\) returned float",
    ):
        jol.sweep(
            lambda learning_rate: learning_rate, hp, loss_fn, PARAMS, DATA, steps=1
        )
    sgd = lambda learning_rate: jol.sgd(learning_rate)
    with pytest.raises(TypeError, match="dtype int32"):
        jol.sweep(
            sgd, hp, loss_fn, {"w": jnp.zeros(3, jnp.int32), "b": 0.0}, DATA, steps=1
        )
    with pytest.raises(TypeError, match=r"params\(key\)\['w'\] has dtype int32"):
        jol.sweep(
            sgd, hp, loss_fn, lambda k: {"w": jnp.zeros(3, jnp.int32)}, DATA, steps=1
        )
    with pytest.raises(TypeError, match="real floating-point scalar"):
        jol.sweep(sgd, hp, lambda p, b: b["x"] @ p["w"], PARAMS, DATA, steps=1)


INT32 = r"an integer in \[1, 2147483647\] \(the compiled loops count in int32\)"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"steps": 2**31}, rf"steps=2147483648 is not allowed: it must be {INT32}"),
        ({"log_every": 10**10}, rf"log_every=10000000000 .* {INT32}"),
        ({"seeds": 2**31}, rf"seeds=2147483648 .* {INT32}"),
        (
            {"eval_fn": loss_fn, "eval_data": DATA, "eval_every": 10**10},
            rf"eval_every=10000000000 .* {INT32}",
        ),
        (
            {"steps": None, "epochs": 2**30, "batch_size": 16},
            r"epochs=1073741824 makes 3221225472 steps \(3 per epoch\), more than "
            r"the 2147483647",
        ),
    ],
)
def test_counts_beyond_int32_are_refused(kwargs, match):
    settings = {"steps": 4, **kwargs}
    with pytest.raises(ValueError, match=match):
        jol.sweep(make_sgd, HP, loss_fn, PARAMS, DATA, **settings)


def test_swept_integers_beyond_int32_are_refused():
    def make(transition_steps):
        return jol.sgd(jol.exponential_decay(0.1, transition_steps, 0.5))

    with pytest.raises(
        ValueError,
        match=r"hyperparams\['transition_steps'\] holds 10000000000, outside the "
        r"range of int32 \(\[-2147483648, 2147483647\]\)",
    ):
        jol.sweep(make, {"transition_steps": [10, 10**10]}, loss_fn, PARAMS, DATA,
                  steps=2)  # fmt: skip


def test_params_function_must_take_the_key():
    with pytest.raises(
        TypeError, match=r"params is called as params\(key\), but its signature is \(\)"
    ):
        jol.sweep(make_sgd, HP, loss_fn, lambda: PARAMS, DATA, steps=2)


def test_make_optimizer_that_branches_on_a_hyperparameter_is_named():
    def make(learning_rate, b1):  # the structure depends on a value: traced
        return jol.adam(learning_rate, b1=b1) if learning_rate > 0.05 else jol.sgd(0.1)

    with pytest.raises(
        TypeError,
        match=r"make_optimizer needs the value of the hyper-parameter 'learning_rate' "
        r"in Python .*TracerBoolConversionError.*jnp\.where.*one sweep per branch",
    ):
        jol.sweep(make, {"learning_rate": [0.1, 0.01], "b1": [0.9]}, loss_fn, PARAMS,
                  DATA, steps=2)  # fmt: skip


def test_a_branch_that_keeps_the_structure_sweeps_the_right_values():
    # Every configuration builds the same structure: the program takes each
    # one's numbers, so the Python branch is evaluated on concrete values.
    def make(learning_rate):
        return jol.sgd(learning_rate if learning_rate > 0.05 else 2 * learning_rate)

    result = jol.sweep(make, HP, lambda p, _: jnp.sum((p - 1.0) ** 2), jnp.zeros(2),
                       steps=3)  # fmt: skip
    # gradient descent on (p - 1)^2 with rate r: p_t = 1 - (1 - 2r)^t
    rates = jnp.array([0.1, 0.02])
    expected = 1 - (1 - 2 * rates) ** 3
    assert jnp.allclose(result.params[:, 0, 0], expected, rtol=1e-6)


def _with_aux(name):
    def loss(p, batch):
        value = loss_fn(p, batch)
        return value, {name: value}

    return loss


@pytest.mark.parametrize(
    ("aux", "eval_fn", "match"),
    [
        ("loss", None, r"loss_fn's aux metrics \['loss'\] would overwrite"),
        ("skipped", None, r"aux metrics \['skipped'\]"),
        ("learning_rate", None, r"aux metrics \['learning_rate'\]"),
        ("eval_mse", lambda p, d: {"mse": loss_fn(p, d)},
         r"aux metrics \['eval_mse'\]"),
        ("eval_loss", loss_fn, r"aux metrics \['eval_loss'\]"),
        (None, lambda p, d: {"step": loss_fn(p, d)},
         r"eval_fn's metrics \['step'\] would be recorded as \['eval_step'\]"),
    ],
)  # fmt: skip
def test_metric_names_that_clash_with_history_columns_are_refused(aux, eval_fn, match):
    kwargs = {"eval_fn": eval_fn, "eval_data": DATA} if eval_fn is not None else {}
    loss = loss_fn if aux is None else _with_aux(aux)
    with pytest.raises(ValueError, match=match):
        jol.sweep(make_sgd, HP, loss, PARAMS, DATA, steps=2, has_aux=aux is not None,
                  **kwargs)  # fmt: skip
