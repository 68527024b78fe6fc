"""Clear errors for wrong inputs: each names the argument, the value and what
is allowed, before anything is traced or compiled (through `fit`, `minimize`
and `sweep` where the drivers call the checks, else the checks directly)."""

from __future__ import annotations

import functools
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from flax.core import FrozenDict

import jaxopt_lite as jol
from jaxopt_lite._host import checks as _checks
from jaxopt_lite._host import options
from jaxopt_lite._host import run_checks as _settings

X = jax.random.normal(jax.random.key(1), (16, 2))
DATA = {"x": X, "y": X @ jnp.array([1.0, -2.0])}
PARAMS = {"w": jnp.zeros(2)}
OPT = jol.sgd(0.1)


def loss_fn(p, b):
    return jnp.mean((b["x"] @ p["w"] - b["y"]) ** 2)


def quadratic(x):
    return jnp.sum((x["w"] - 3.0) ** 2)


def _minimized(fun):
    """``fun`` accepted by `minimize`: it must reach the minimum at 3."""
    result = jol.minimize(fun, PARAMS, jol.gd(0.25), steps=200, tol=1e-6)
    np.testing.assert_allclose(result.params["w"], [3.0, 3.0], atol=1e-5)


# --------------------------------------------------------------------------
# Losses that return Python or NumPy constants.


@pytest.mark.parametrize("constant", [1.0, 2, jnp.asarray(0.5)])
def test_a_constant_loss_is_refused(constant):
    message = r"loss_fn returned a constant, such as a Python number"
    with pytest.raises(TypeError, match=message):
        jol.fit(lambda p, b: constant, PARAMS, OPT, DATA, steps=2)
    with pytest.raises(
        TypeError,
        match=r"fun returned a constant, .*no gradient with respect to x",
    ):
        jol.minimize(lambda x: constant, PARAMS, OPT, steps=2)
    with pytest.raises(TypeError, match=r"loss_fn returned a constant"):
        jol.fit(lambda p, b: (constant, {}), PARAMS, OPT, DATA, steps=2, has_aux=True)
    with pytest.raises(TypeError, match=r"loss_fn returned a constant"):
        jol.sweep(
            lambda learning_rate: jol.sgd(learning_rate),
            {"learning_rate": [0.1]},
            lambda p, b: constant,
            PARAMS,
            DATA,
            steps=2,
        )


def test_outputs_that_are_not_arrays_are_named():
    with pytest.raises(TypeError, match=r"fun returned a value that is not an array"):
        jol.minimize(lambda x: (quadratic(x), {"name": "x"}), PARAMS, OPT, has_aux=True)
    with pytest.raises(TypeError, match=r"fun returned a value that is not an array"):
        jol.minimize(lambda x: "v", PARAMS, OPT)
    with pytest.raises(
        TypeError, match=r"loss_fn returned a value that is not an array"
    ):
        jol.fit(lambda p, b: ("a", {}), PARAMS, OPT, DATA, steps=2, has_aux=True)


# --------------------------------------------------------------------------
# Functions called with the wrong number of arguments.


class _Loss:
    def __call__(self, p, b):
        return loss_fn(p, b)


class _EqxLoss(eqx.Module):
    scale: float  # hashable: fit caches its compiled loop by loss_fn

    def __call__(self, p, b):
        return self.scale * loss_fn(p, b)


class _EqxWrongArity(eqx.Module):
    def __call__(self, p):
        return quadratic(p)


@pytest.mark.parametrize(
    "fun, signature",
    [
        (lambda p: quadratic(p), r"\(p\)"),
        (lambda p, b, c: loss_fn(p, b), r"\(p, b, c\)"),
        (functools.partial(lambda s, p, b, c: loss_fn(p, b), 1.0), r"\(p, b, c\)"),
        (lambda p, b, *, k: loss_fn(p, b), r"\(p, b, \*, k\)"),
        (_EqxWrongArity(), r"\(p\)"),
    ],
)
def test_fit_names_a_wrong_arity_loss_fn(fun, signature):
    message = r"loss_fn is called as loss_fn\(params, batch\), but its signature is "
    with pytest.raises(TypeError, match=message + signature):
        jol.fit(fun, PARAMS, OPT, DATA, steps=2)


@pytest.mark.parametrize(
    "loss",
    [
        loss_fn,
        lambda *args: loss_fn(*args),
        lambda p, b, c=2.0: loss_fn(p, b),
        functools.partial(lambda s, p, b: s * loss_fn(p, b), 1.0),
        _Loss(),
        _EqxLoss(1.0),
        jax.jit(loss_fn),
    ],
)
def test_fit_accepts_every_callable_of_two_arguments(loss):
    result = jol.fit(loss, PARAMS, jol.sgd(0.3), DATA, steps=300)
    np.testing.assert_allclose(result.params["w"], [1.0, -2.0], atol=1e-4)


def test_minimize_names_a_wrong_arity_fun():
    with pytest.raises(TypeError, match=r"fun is called as fun\(x\), .*\(x, y\)"):
        jol.minimize(lambda x, y: quadratic(x), PARAMS, OPT)
    with pytest.raises(TypeError, match=r"fun is called as fun\(x\), .*\(\)"):
        jol.minimize(lambda: 0.0, PARAMS, OPT)
    _minimized(lambda x, scale=1.0: scale * quadratic(x))
    _minimized(functools.partial(lambda s, x: s * quadratic(x), 2.0))


class _NoSignature:
    """A callable whose signature cannot be read (as for some builtins)."""

    @property
    def __signature__(self):
        raise ValueError("no signature")

    def __call__(self, p):
        return quadratic(p)


def test_without_a_signature_the_failed_call_is_named():
    with pytest.raises(TypeError, match=r"loss_fn is called as loss_fn\(params, "):
        jol.fit(_NoSignature(), PARAMS, OPT, DATA, steps=2)
    _minimized(_NoSignature())


def test_a_type_error_inside_the_function_is_not_renamed():
    def bad(p, b):
        return jnp.sum(p["w"]) + "text"

    with pytest.raises(TypeError) as info:
        jol.fit(bad, PARAMS, OPT, DATA, steps=2)
    assert "loss_fn is called as" not in str(info.value)


# --------------------------------------------------------------------------
# Data that cannot go to the device.


@pytest.mark.parametrize(
    "data, message",
    [
        ({"x": np.array([{"a": 1}] * 16)}, r"data\['x'\] has dtype object"),
        ({"x": np.array(["a"] * 16), "y": X[:, 0]}, r"data\['x'\] has dtype <U1"),
        ({"x": X, "name": "train"}, r"data\['name'\] is the str 'train'"),
        ({"x": np.zeros(16, "datetime64[s]")}, r"data\['x'\] has dtype datetime64"),
    ],
)  # fmt: skip
def test_data_leaves_must_be_numeric(data, message):
    with pytest.raises(TypeError, match=message + r".*numeric arrays"):
        jol.fit(loss_fn, PARAMS, OPT, data, steps=2)
    with pytest.raises(TypeError, match=message):
        _checks.check_data("data", data)


@pytest.mark.parametrize(
    "data, outer",
    [
        ({"x": [[1.0, 2.0], [3.0]], "y": [1.0, 2.0]}, r"data\['x'\]"),
        ({"x": X, "y": [float(i) for i in range(16)]}, r"data\['y'\]"),
    ],
)
def test_python_lists_in_data_are_explained(data, outer):
    message = outer + r" is a \(nested\) Python list or tuple of numbers"
    with pytest.raises(ValueError, match=message + r".*np\.asarray"):
        jol.fit(loss_fn, PARAMS, OPT, data, steps=2)


def test_a_list_of_numbers_is_read_as_a_stream_and_explained():
    # A list is a stream of batches; its first "batch" [1.0, 2.0] has no batch axis.
    with pytest.raises(ValueError, match=r"list of numbers .* np\.asarray\(data\)"):
        jol.fit(loss_fn, PARAMS, OPT, [[1.0, 2.0], [3.0, 4.0]], steps=2)


def test_a_scalar_next_to_arrays_is_not_called_a_list():
    with pytest.raises(ValueError, match=r"data\[1\]=3.0 is a scalar"):
        jol.fit(loss_fn, PARAMS, OPT, (X, 3.0), steps=2)


def test_numeric_data_of_every_kind_is_accepted():
    data = {
        "x": np.asarray(X, np.float64),
        "y": np.asarray(DATA["y"]),
        "mask": np.ones(16, bool),
        "id": np.arange(16, dtype=np.uint8),
        "key": jax.random.split(jax.random.key(0), 16),
    }
    converted = _checks.check_data("data", data)
    assert all(isinstance(x, jax.Array) for x in jax.tree.leaves(converted))
    result = jol.fit(loss_fn, PARAMS, jol.sgd(0.3), data, steps=300)
    np.testing.assert_allclose(result.params["w"], [1.0, -2.0], atol=1e-4)


def test_check_eval_fn():
    with pytest.raises(TypeError, match=r"eval_data\['x'\] has dtype <U1"):
        _settings.check_eval_fn(lambda p, d: 0.0, (PARAMS,), {"x": np.array(["a"])})
    with pytest.raises(TypeError, match=r"eval_fn is called as eval_fn\(params, "):
        _settings.check_eval_fn(lambda p: 0.0, (PARAMS,), DATA)
    with pytest.raises(TypeError, match="eval_fn must return a scalar or a dict"):
        _settings.check_eval_fn(lambda p, d: p["w"], (PARAMS,), DATA)
    eval_data, names = _settings.check_eval_fn(
        lambda p, d: {"mse": loss_fn(p, d), "n": jnp.float32(d["x"].shape[0])},
        (PARAMS,),
        {"x": np.asarray(X), "y": np.asarray(DATA["y"])},
    )
    assert names == ["eval_mse", "eval_n"]
    np.testing.assert_array_equal(eval_data["x"], X)
    assert _settings.check_eval_fn(lambda p, d: quadratic(p), (PARAMS,), None) == (
        None,
        ["eval_loss"],
    )


class _Stopping(NamedTuple):
    patience: object = 5
    min_delta: object = 0.0
    monitor: object = "loss"
    mode: object = "min"
    restore_best: object = True


def _check_fields(stop):
    # the field checks, through an EarlyStopping whose fields are anything
    options._check_fields(jol.EarlyStopping(*stop))


@pytest.mark.parametrize(
    "fields, error, message",
    [
        ({"monitor": 3}, TypeError, r"early_stopping.monitor must be .* got 3"),
        ({"monitor": ""}, TypeError, r"early_stopping.monitor must be"),
        ({"min_delta": float("inf")}, ValueError, r"min_delta=inf is not allowed"),
        ({"min_delta": -1.0}, ValueError, r"min_delta=-1.0 is not allowed"),
        ({"min_delta": "0"}, TypeError, r"min_delta must be a number"),
        ({"restore_best": "no"}, TypeError, r"restore_best must be True or False"),
        ({"patience": 0}, ValueError, r"patience=0 is not allowed"),
        ({"mode": "up"}, ValueError, r"mode='up'"),
    ],
)
def test_check_early_stopping(fields, error, message):
    with pytest.raises(error, match=message):
        _check_fields(_Stopping(**fields))
    _check_fields(jol.EarlyStopping(min_delta=1e-3, mode="max"))


# --------------------------------------------------------------------------
# Model state in params: the hint names the library in use.


class _NnxModel(nnx.Module):
    def __init__(self, rngs):
        self.linear = nnx.Linear(2, 1, rngs=rngs)
        self.dropout = nnx.Dropout(0.5, rngs=rngs)


class _EqxModel(eqx.Module):
    weight: jax.Array
    steps: jax.Array


def test_nnx_state_gets_the_nnx_hint():
    model = _NnxModel(nnx.Rngs(0))
    for params in (model, nnx.state(model)):
        with pytest.raises(TypeError, match=r"dropout.*has dtype uint32") as info:
            jol.minimize(lambda m: jnp.float32(0.0), params, OPT)
        assert "nnx.split(model, nnx.Param, ...)" in str(info.value)
        assert "eqx" not in str(info.value)
    _, trainable, _ = nnx.split(model, nnx.Param, ...)
    assert _checks.check_params("params", trainable) is not None


def test_equinox_modules_get_the_equinox_hint():
    model = _EqxModel(jnp.ones(2), jnp.int32(3))
    with pytest.raises(TypeError, match=r"params\.steps has dtype int32") as info:
        jol.fit(lambda p, b: jnp.sum(p.weight), model, OPT, DATA, steps=2)
    assert "eqx.partition(model, eqx.is_inexact_array)" in str(info.value)
    assert "nnx" not in str(info.value)
    mlp = eqx.nn.MLP(2, 1, 4, 1, key=jax.random.key(0))
    with pytest.raises(
        TypeError, match=r"x0.activation is a custom_jvp, not an array.*eqx.partition"
    ):
        jol.minimize(lambda m: jnp.sum(m.layers[0].weight), mlp, OPT)
    trainable, _ = eqx.partition(mlp, eqx.is_inexact_array)
    assert len(jax.tree.leaves(_checks.check_params("x0", trainable))) == 4


def test_linen_variables_and_plain_trees_get_their_hints():
    variables = FrozenDict({"params": {"w": jnp.ones(2)}, "stats": {"n": jnp.int32(1)}})
    with pytest.raises(TypeError, match=r"variables\['params'\]"):
        jol.minimize(lambda v: jnp.sum(v["params"]["w"]), variables, OPT)
    with pytest.raises(TypeError, match=r"params\['n'\] has dtype int32") as info:
        _checks.check_params("params", {"w": jnp.ones(2), "n": jnp.int32(1)})
    assert "close over it in the loss" in str(info.value)


def test_empty_params_are_named():
    for params in (None, {}, [], {"a": None}):
        with pytest.raises(ValueError, match=r"x0=.* has no array leaves"):
            jol.minimize(quadratic, params, OPT)


@pytest.mark.parametrize(
    ("aux", "evals", "error", "match"),
    [
        ({"loss": 1.0}, None, ValueError, r"aux metrics \['loss'\] would overwrite"),
        ({"grad_norm": 1.0}, None, ValueError, r"aux metrics \['grad_norm'\]"),
        ({"eval_acc": 1.0}, {"acc": 1.0}, ValueError, r"aux metrics \['eval_acc'\]"),
        ({1: 1.0}, None, TypeError, r"aux metric names must be strings; got \[1\]"),
        (None, {"step": 1.0}, ValueError, r"metrics \['step'\] would be recorded"),
        (None, {2: 1.0}, TypeError, r"eval_fn's metric names must be strings"),
    ],
)
def test_metric_names_never_overwrite_history_columns(aux, evals, error, match):
    def loss(p, b):
        if aux is None:
            return loss_fn(p, b)
        return loss_fn(p, b), {k: 0.0 * loss_fn(p, b) + v for k, v in aux.items()}

    def eval_fn(p, d):
        return {k: 0.0 * loss_fn(p, d) + v for k, v in evals.items()}

    extra = {} if evals is None else {"eval_fn": eval_fn, "eval_data": DATA}
    with pytest.raises(error, match=match):
        jol.fit(loss, PARAMS, OPT, DATA, steps=2, has_aux=aux is not None, **extra)


class _Slots:
    __slots__ = ()

    def __call__(self, p, b):
        return loss_fn(p, b)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"loss_fn": _Slots()}, TypeError, "does not support weak references"),
        (
            {"params": {"w": np.array([1, None], dtype=object)}},
            TypeError,
            r"params\['w'\] has dtype object",
        ),
        (
            {"state": {"s": jnp.zeros(())}},
            TypeError,
            r"loss_fn is called as loss_fn\(params, state, batch\)",
        ),
        ({"steps": 2**31}, ValueError, r"steps=2147483648 is not allowed: .* int32"),
        ({"log_every": 10**10}, ValueError, r"log_every=10000000000 is not allowed"),
        ({"eval_every": 2**40}, ValueError, r"eval_every=1099511627776 is not"),
        ({"checkpoint_dir": __file__}, ValueError, r"^checkpoint_dir='.*' is a file"),
    ],
)
def test_fit_arguments_jax_cannot_take_are_named(kwargs, error, match):
    call = {"loss_fn": loss_fn, "params": PARAMS, "steps": 2} | kwargs
    if "eval_every" in kwargs:
        call.update(eval_fn=lambda p, d: loss_fn(p, d), eval_data=DATA)
    with pytest.raises(error, match=match):
        jol.fit(optimizer=OPT, data=DATA, **call)


def test_early_stopping_keeps_the_last_partial_row():
    result = jol.fit(
        loss_fn, PARAMS, jol.adam(0.01), DATA, steps=60, log_every=10, batch_size=4,
        early_stopping=jol.EarlyStopping(patience=2, min_delta=1e9),
    )  # fmt: skip
    # 4 steps an epoch: the best check at step 4, two more without improvement
    assert result.stopped_early and result.step == 12
    assert result.history["step"].tolist() == [10, 12]
    straight = jol.fit(
        loss_fn, PARAMS, jol.adam(0.01), DATA, steps=12, log_every=10, batch_size=4
    )
    np.testing.assert_array_equal(result.history["loss"], straight.history["loss"])


def test_unguarded_nonfinite_steps_are_applied_shown_and_not_called_skipped():
    def bad(p, b):
        return jnp.mean(jnp.sqrt(-1.0 - p["w"])) * loss_fn(p, b)

    with pytest.warns(RuntimeWarning, match=r"was applied \(skip_nonfinite=False\)"):
        result = jol.fit(bad, PARAMS, OPT, DATA, steps=3, skip_nonfinite=False)
    assert result.skipped == 0 and result.history["skipped"].tolist() == [0, 0, 0]
    assert np.isnan(result.history["loss"]).all()
    with pytest.warns(RuntimeWarning, match="was skipped: the parameters are the"):
        guarded = jol.fit(bad, PARAMS, OPT, DATA, steps=3)
    assert guarded.skipped == 3 and guarded.history["skipped"].tolist() == [1, 1, 1]


def test_a_history_too_large_to_allocate_is_refused_by_name():
    with pytest.raises(ValueError, match=r"history_size=2147483647 with steps="):
        jol.minimize(quadratic, PARAMS, OPT, steps=2**31 - 1, history_size=2**31 - 1)
    result = jol.minimize(quadratic, PARAMS, OPT, steps=2**31 - 1, tol=1e-3)
    assert result.converged and len(result.history["value"]) == result.steps
