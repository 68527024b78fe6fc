"""float64 is float64: with x64 enabled, every optimizer of the shared table
(``tests/transform_table.py``) computes and stores in float64 and matches
optax's float64 trajectory to ~1e-12; combinators keep float64 too (schedules
are tested in test_schedule_precision.py). With x64 off, float32 trajectories
stay bit-identical to optax's where they were before (pinned here).

x64 is switched on with the ``jax.enable_x64`` context inside each test (the
rest of the suite runs with it off). The table's schedules were built with
x64 off (float32), so rows are rebuilt inside the context.
"""

from __future__ import annotations

import importlib
import inspect

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from helpers import optax_reference
from table_row import Row
from transform_table import rows

import jaxopt_lite as jol

STEPS = 50
ROWS_BY_NAME = {row.name: row for row in rows("optimizer")}


def _rebuilt(kwargs, module):
    """The row's hyper-parameters with a schedule learning rate rebuilt under
    x64 (the table's exponential decay, from its initial value). optax's
    schedules divide the optimizer's int32 count in float32 even under x64
    (ours are float64: docs/optax-differences.md): the oracle's gets the
    count as a float64."""
    kwargs = dict(kwargs)
    rate = kwargs.get("learning_rate")
    if callable(rate):
        init = float(str(np.float32(rate(0))))  # 0.01, not float32(0.01)
        schedule = module.exponential_decay(init, 10, 0.5)
        if module is optax:
            schedule = lambda n, s=schedule: s(jnp.asarray(n, jnp.float64))
        kwargs["learning_rate"] = schedule
    return kwargs


def _problem():
    """A float64 quadratic (leaf ``q``) plus a Rosenbrock valley (leaf ``r``)."""
    k1, k2 = jax.random.split(jax.random.key(0))
    a = jax.random.normal(k1, (5, 5), jnp.float64)
    hess = a @ a.T / 5 + 0.2 * jnp.eye(5)
    lin = jax.random.normal(k2, (5,), jnp.float64)

    def loss(p):
        q, x = p["q"], p["r"]
        valley = (1.0 - x[0]) ** 2 + 100.0 * (x[1] - x[0] ** 2) ** 2
        return 0.5 * q @ hess @ q - lin @ q + 0.1 * valley

    params = {"q": jnp.array([1.0, 1.0, 1.0, -1.0, -1.0]), "r": jnp.zeros(2)}
    return params, loss


def _run(opt, loss, params, steps=STEPS):
    def step(carry, _):
        p, s = carry
        value, grads = jax.value_and_grad(loss)(p)
        updates, s = opt.update(grads, s, p, value=value)
        return (optax.apply_updates(p, updates), s), None

    return jax.lax.scan(step, (params, opt.init(params)), None, steps)[0]


def _optax_adafactor_decay_in_float64(monkeypatch):
    """optax computes adafactor's decay ``1 - t**-0.8`` in float32 even under
    x64 (we use float64: docs/optax-differences.md); the oracle gets a float64
    decay through the default of optax's ``scale_by_factored_rms``."""
    fn = optax.scale_by_factored_rms
    names = list(inspect.signature(fn).parameters)
    defaults = list(fn.__defaults__)
    index = names.index("decay_rate_fn") - (len(names) - len(defaults))
    defaults[index] = lambda step, exponent=0.8: (
        1.0 - jnp.asarray(step + 1, jnp.float64) ** (-exponent)
    )
    monkeypatch.setattr(fn, "__defaults__", tuple(defaults))


def _in_float64(schedule):
    """``schedule`` with its values given as float64: optax's schedules of an
    int32 count return float32 under x64 (ours return the same values as
    float64), and optax's ``fromage`` computes its shrink factor
    ``1 / sqrt(1 + rate**2)`` from them in float32 (ours in float64:
    docs/optax-differences.md); so the oracle gets float64 values."""
    return lambda count: jnp.asarray(schedule(count), jnp.float64)


class _FloatRoots:
    """``jax.numpy`` whose ``sqrt`` of an integer array is taken in float64."""

    def __getattr__(self, name):
        return getattr(jnp, name)

    @staticmethod
    def sqrt(x):
        x = jnp.asarray(x)
        return jnp.sqrt(x.astype(jnp.float64) if x.dtype == jnp.int32 else x)


def _optax_madgrad_root_in_float64(monkeypatch):
    """optax takes MADGRAD's sqrt(k) of the int32 count, in float32 even
    under x64 (ours is float64: docs/optax-differences.md); the oracle's
    module gets a ``jnp`` whose root of an integer is float64."""
    monkeypatch.setattr(
        importlib.import_module("optax.contrib._madgrad"), "jnp", _FloatRoots()
    )


def _float_dtypes(tree):
    return {
        jnp.dtype(x.dtype).name
        for x in jax.tree.leaves(tree)
        if jnp.issubdtype(x.dtype, jnp.floating)
    }


@pytest.mark.parametrize("row", [pytest.param(r, id=r.name) for r in rows("optimizer")])
def test_float64_parity_with_optax(row: Row, monkeypatch):
    if row.optax_factory is None:
        pytest.skip(f"optax has no equivalent of {row.name}")
    if "adafactor" in row.name:
        _optax_adafactor_decay_in_float64(monkeypatch)
    if row.name == "madgrad":
        _optax_madgrad_root_in_float64(monkeypatch)
    with jax.enable_x64(True):
        params, loss = _problem()
        theirs_kwargs = row.kwargs if row.optax_kwargs is None else row.optax_kwargs
        ours = row.factory(**_rebuilt(row.kwargs, jol))
        theirs_kwargs = _rebuilt(theirs_kwargs, optax)
        if row.name == "fromage_schedule":
            theirs_kwargs["learning_rate"] = _in_float64(theirs_kwargs["learning_rate"])
        theirs = optax_reference(row.optax_factory(**theirs_kwargs))
        (p_ours, s_ours), (p_theirs, _) = jax.jit(
            lambda: (_run(ours, loss, params), _run(theirs, loss, params))
        )()
        for name in params:
            assert p_ours[name].dtype == jnp.float64
            np.testing.assert_allclose(
                p_ours[name], p_theirs[name], rtol=1e-12, atol=1e-13, err_msg=name
            )
        # adafactor's momentum buffer is float32 by its dtype_momentum default
        # (optax's); every other float in every state is float64.
        explicit_float32 = row.name == "adafactor_momentum_decay"
        assert _float_dtypes(s_ours) == (
            {"float32", "float64"} if explicit_float32 else {"float64"}
        )


@pytest.mark.parametrize("row", [pytest.param(r, id=r.name) for r in rows("transform")])
def test_float64_primitive_parity_with_optax(row: Row, monkeypatch):
    """Every primitive of the table: four float64 gradients at fixed float64
    parameters give optax's updates to ~1e-12, in float64, with a float64
    state (`scale_by_distance_over_gradients` keeps the initial parameters
    in its ``param_dtype``, float32 by default, as optax does)."""
    if row.name == "scale_by_madgrad":
        _optax_madgrad_root_in_float64(monkeypatch)
    with jax.enable_x64(True):
        params = {"w": jnp.array([1.0, -2.0, 0.5]), "b": jnp.array([0.3, 3.0])}
        keys = jax.random.split(jax.random.key(42), 8).reshape(4, 2)
        grads = [
            {"w": jax.random.normal(k[0], (3,)), "b": jax.random.normal(k[1], (2,))}
            for k in keys
        ]
        assert row.optax_make is not None

        def run(t):
            state, updates = t.init(params), []
            for g in grads:
                u, state = t.update(g, state, params)
                updates.append(u)
            return updates, state

        (ours, state), (theirs, _) = jax.jit(
            lambda: (run(row.make()), run(row.optax_make()))
        )()
        for u, e in zip(ours, theirs, strict=True):
            for a, b in zip(jax.tree.leaves(u), jax.tree.leaves(e), strict=True):
                assert a.dtype == jnp.float64
                np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
        if type(state).__name__ == "ScaleByDistanceOverGradientsState":
            assert _float_dtypes(state.init_params) == {"float32"}
            state = state._replace(init_params=())
        assert _float_dtypes(state) <= {"float64"}


def test_learning_rate_is_applied_in_float64():
    """``sgd(0.1)`` applies 0.1 in float64, not float32(0.1)."""
    with jax.enable_x64(True):
        opt = jol.sgd(0.1)
        params = jnp.ones(2)
        updates, state = opt.update(jnp.ones(2), opt.init(params), params)
        assert updates.dtype == jnp.float64
        np.testing.assert_array_equal(updates, [-0.1, -0.1])
        assert jol.current_learning_rate(state).dtype == jnp.float64


def test_float32_parameters_keep_float32_state_under_x64():
    with jax.enable_x64(True):
        opt = jol.adamw(jol.exponential_decay(0.1, 10, 0.5))
        params = jnp.ones(3, jnp.float32)
        updates, state = opt.update(jnp.ones(3, jnp.float32), opt.init(params), params)
        assert updates.dtype == jnp.float32
        assert _float_dtypes(state) == {"float32"}


def test_combinators_keep_float64():
    """inject_hyperparams, reduce_on_plateau, ema_params, lookahead and
    accumulate_gradients hold float64 numbers for float64 parameters, and
    inject_hyperparams(adam) gives optax's float64 numbers."""
    with jax.enable_x64(True):
        params, loss = _problem()
        ours = jol.chain(
            jol.inject_hyperparams(jol.adam)(learning_rate=0.01, b2=0.99),
            jol.reduce_on_plateau(patience=2),
        )
        theirs = optax_reference(
            optax.chain(
                optax.inject_hyperparams(optax.adam)(learning_rate=0.01, b2=0.99),
                optax.contrib.reduce_on_plateau(patience=2),
            )
        )
        (p_ours, s_ours), (p_theirs, _) = jax.jit(
            lambda: (_run(ours, loss, params), _run(theirs, loss, params))
        )()
        for name in params:
            np.testing.assert_allclose(p_ours[name], p_theirs[name], rtol=1e-12)
        assert _float_dtypes(s_ours) == {"float64"}
        for opt in (
            jol.ema_params(jol.adam(0.01), 0.9),
            jol.lookahead(jol.adam(0.01), 3, 0.5),
            jol.accumulate_gradients(jol.adam(0.01), 2),
        ):
            _, state = jax.jit(lambda opt=opt: _run(opt, loss, params, 4))()
            assert _float_dtypes(state) == {"float64"}


# --- float32 stays bit-identical to optax where it was ------------------------

BIT_IDENTICAL = [
    "sgd_momentum",
    "sgd_nesterov",
    "adagrad",
    "rmsprop",
    "lion",
    "lars",
    "novograd",
    "adafactor",
]


@pytest.mark.parametrize("name", BIT_IDENTICAL)
def test_float32_trajectories_bit_identical_to_optax(name):
    row = ROWS_BY_NAME[name]
    k1, k2 = jax.random.split(jax.random.key(1))
    a = jax.random.normal(k1, (4, 4))
    hess, lin = a @ a.T / 4 + 0.3 * jnp.eye(4), jax.random.normal(k2, (4,))
    params = {"q": jnp.ones(4)}

    def loss(p):
        return 0.5 * p["q"] @ hess @ p["q"] - lin @ p["q"]

    assert row.optax_make is not None
    ours, theirs = jax.jit(
        lambda: [_run(m(), loss, params, 30)[0] for m in (row.make, row.optax_make)]
    )()
    assert ours["q"].dtype == jnp.float32
    np.testing.assert_array_equal(ours["q"], theirs["q"])
