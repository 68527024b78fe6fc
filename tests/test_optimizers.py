"""Generic optimizer tests, parametrized over the ``"optimizer"`` rows of the
shared table (``tests/transform_table.py``): parity with optax, convergence, scan-safe
state for float32 / bfloat16 / complex64, jit == no-jit, no recompilation,
traced hyper-parameters, `current_learning_rate` and argument validation.

Each test compiles one small function per row (and dtype) to stay fast.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from helpers import assert_trees_close, count_compiles
from table_row import Row
from transform_table import TABLE, rows

import jaxopt_lite as jol

PARITY_STEPS = 100
ROWS = rows("optimizer")
ROWS_BY_NAME = {row.name: row for row in ROWS}
DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16, "complex64": jnp.complex64}


# --- problems ---------------------------------------------------------------


def _abs_sq(x):
    return (x.conj() * x).real


def _quadratic():
    """A random, well-conditioned quadratic in a two-leaf dict (fixed key)."""
    k1, k2 = jax.random.split(jax.random.key(0))
    a = jax.random.normal(k1, (5, 5))
    hess = a @ a.T / 5 + 0.2 * jnp.eye(5)
    lin = jax.random.normal(k2, (5,))

    def loss(params):
        x = jnp.concatenate([params["w"], params["b"]])
        return 0.5 * x @ hess @ x - lin @ x

    return {"w": jnp.ones(3), "b": -jnp.ones(2)}, loss


def _parity_problem():
    """The quadratic (as one leaf ``q``) plus a Rosenbrock valley (leaf ``r``,
    from optax's start ``(0, 0)``) in one tree, so one compiled run covers both."""
    params, quadratic = _quadratic()

    def loss(p):
        q, x = p["q"], p["r"]
        # Scaled by 0.1 so that plain gradient descent at the table's rates
        # stays stable in the valley.
        return quadratic({"w": q[:3], "b": q[3:]}) + 0.1 * (
            (1.0 - x[0]) ** 2 + 100.0 * (x[1] - x[0] ** 2) ** 2
        )

    q = jnp.concatenate([params["w"], params["b"]])
    return {"q": q, "r": jnp.zeros(2)}, loss


# optax's convergence targets (optax/_src/alias_test.py).
def _parabola(dtype):
    initial = jnp.array([-1.0, 10.0, 1.0], dtype=dtype)
    final = jnp.array([1.0, -1.0, 1.0], dtype=dtype)
    if jnp.iscomplexobj(initial):
        final = final * (1 + 1j)
    return initial, final, lambda p: jnp.sum(_abs_sq(p - final))


def _rosenbrock(dtype):
    a, b = 1.0, 100.0
    if jnp.issubdtype(dtype, jnp.complexfloating):
        a = a * (1 + 1j)
    initial = jnp.zeros(2, dtype)
    final = jnp.array([a, a**2], dtype=dtype)
    loss = lambda p: _abs_sq(a - p[0]) + b * _abs_sq(p[1] - p[0] ** 2)
    return initial, final, loss


CONVERGENCE_PROBLEMS = {"parabola": _parabola, "rosenbrock": _rosenbrock}


# --- helpers ----------------------------------------------------------------


def _step(opt, loss):
    """One optimization step ``carry -> (carry, updates)``, for ``lax.scan``;
    complex gradients are conjugated (as in optax's tests) so that
    ``params - lr * grad`` descends."""

    def step(carry, _=None):
        params, state = carry
        value, grads = jax.value_and_grad(loss)(params)
        grads = jax.tree.map(jnp.conj, grads)
        updates, state = opt.update(grads, state, params, value=value)
        return (optax.apply_updates(params, updates), state), updates

    return step


def _run(opt, loss, params, steps):
    (params, state), _ = jax.lax.scan(
        _step(opt, loss), (params, opt.init(params)), None, steps
    )
    return params, state


def _avals(tree):
    return jax.tree.map(lambda x: jax.typeof(jnp.asarray(x)), tree)


def _assert_carry_close(actual, expected):
    """Params to 1e-5 relative; states to 1e-4, since bias corrections such as
    $1 - 0.999^t$ lose digits to cancellation and 1-ulp differences between
    compiled and eager ``pow`` show up at 1e-5 in the corrected moments."""
    assert_trees_close(actual[0], expected[0], rtol=1e-5, atol=1e-6)
    assert_trees_close(actual[1], expected[1], rtol=1e-4, atol=1e-6)


def _rows(predicate=lambda row: True):
    return [pytest.param(row, id=row.name) for row in ROWS if predicate(row)]


def test_table_names_are_unique():
    names = [row.name for row in TABLE]
    assert len(set(names)) == len(names), names


# --- parity with optax ------------------------------------------------------


@pytest.mark.parametrize("row", _rows())
def test_parity_with_optax(row: Row):
    """100 steps on the quadratic + Rosenbrock problem: same params as optax."""
    if row.optax_make is None:
        pytest.skip(f"optax has no equivalent of {row.name}")
    params, loss = _parity_problem()
    ours, theirs = jax.jit(
        lambda: [
            _run(make(), loss, params, PARITY_STEPS)[0]
            for make in (row.make, row.optax_make)
        ]
    )()
    for name in ("q", "r"):
        assert np.all(np.isfinite(np.asarray(ours[name])))
        assert not np.allclose(np.asarray(ours[name]), np.asarray(params[name]))
        np.testing.assert_allclose(
            np.asarray(ours[name]),
            np.asarray(theirs[name]),
            rtol=row.parity_rtol,
            atol=1e-7,
            err_msg=f"leaf {name!r}",
        )


# --- convergence --------------------------------------------------------------


@pytest.mark.parametrize("row", _rows())
def test_convergence(row: Row):
    """optax's criterion: 10 000 steps, then within rtol = atol = 3e-2."""
    if row.converge_kwargs is None:
        pytest.skip(f"{row.name}: no convergence hyper-parameters in the table")
    dtypes = [jnp.float32] + ([jnp.complex64] if row.complex_ok else [])
    cases = [
        (name, dtype)
        for name in CONVERGENCE_PROBLEMS
        if name not in row.converge_skip
        for dtype in dtypes
        if f"{name}/{jnp.dtype(dtype).name}" not in row.converge_skip
    ]

    @jax.jit
    def solve():
        out = []
        for name, dtype in cases:
            initial, _, loss = CONVERGENCE_PROBLEMS[name](dtype)
            out.append(_run(row.make_converge(), loss, initial, row.converge_steps)[0])
        return out

    for (name, dtype), params in zip(cases, solve(), strict=True):
        final = CONVERGENCE_PROBLEMS[name](dtype)[1]
        np.testing.assert_allclose(
            np.asarray(params),
            np.asarray(final),
            rtol=3e-2,
            atol=3e-2,
            err_msg=f"{row.name} on {name} ({jnp.dtype(dtype).name})",
        )


# --- scan-safe state, dtypes ------------------------------------------------


def _supported_dtypes(row: Row) -> list[str]:
    return [
        name
        for name in ("bfloat16", "complex64")
        if (name != "bfloat16" or row.bf16_ok)
        and (name != "complex64" or row.complex_ok)
    ]


@functools.cache
def _scan_results(name: str):
    """For bfloat16 and complex64 (those the row supports), in one compiled
    function: params and state before and after 3 scanned steps, and the updates
    of the first step. (float32 uses the jitted quadratic trajectory.)"""
    row = ROWS_BY_NAME[name]
    opt = row.make()
    problems = {}
    for dtype_name in _supported_dtypes(row):
        initial, _, loss = _parabola(DTYPES[dtype_name])
        problems[dtype_name] = (initial, loss)

    @jax.jit
    def run():
        out = {}
        for dtype_name, (params, loss) in problems.items():
            state0 = opt.init(params)
            (params3, state3), updates = jax.lax.scan(
                _step(opt, loss), (params, state0), None, 3
            )
            first_updates = jax.tree.map(lambda u: u[0], updates)
            out[dtype_name] = (params, state0, first_updates, params3, state3)
        return out

    return run() if problems else {}


@pytest.mark.parametrize("dtype_name", list(DTYPES))
@pytest.mark.parametrize("row", _rows())
def test_state_is_scan_safe(row: Row, dtype_name: str):
    """Inside jit + scan the state keeps its tree structure and dtypes, the
    params their dtypes, and updates come out in the gradients' dtype."""
    if dtype_name == "bfloat16" and not row.bf16_ok:
        pytest.skip(row.bf16_reason or f"{row.name} does not support bfloat16")
    if dtype_name == "complex64" and not row.complex_ok:
        pytest.skip(row.complex_reason or f"{row.name} does not support complex64")
    if dtype_name == "float32":
        carries = _trajectory(row.name)[0]
        (params, state0), (params3, state3) = carries[0], carries[-1]
        updates = jax.tree.map(jnp.subtract, carries[1][0], params)
    else:
        params, state0, updates, params3, state3 = _scan_results(row.name)[dtype_name]
    assert jax.tree.structure(state3) == jax.tree.structure(state0)
    assert _avals(state3) == _avals(state0)
    assert _avals(params3) == _avals(params)
    assert _avals(updates) == _avals(params), "updates must keep the gradients' dtype"
    for leaf in jax.tree.leaves(params3):
        assert np.all(np.isfinite(np.asarray(leaf.astype(jnp.complex64))))


# --- jit == no-jit, no recompilation, traced hyper-parameters -----------------

TRAJECTORY_STEPS = 12
EAGER_STEPS = 2


def _base_hyper(row: Row) -> dict[str, float]:
    return {name: float(row.hyper_value(name)) for name in row.traced}


def _changed_hyper(row: Row) -> dict[str, float]:
    return {
        name: value * 0.5 if value else 1e-3 for name, value in _base_hyper(row).items()
    }


def _as_arrays(hyper: dict[str, float]) -> dict[str, jax.Array]:
    return {name: jnp.asarray(value, jnp.float32) for name, value in hyper.items()}


def _eager(row: Row, hyper: dict[str, float], steps: int = EAGER_STEPS):
    """(params, state) after ``steps`` un-jitted steps on the quadratic, with the
    hyper-parameters in ``hyper`` given as concrete values."""
    params, loss = _quadratic()
    opt = row.factory(**{**row.kwargs, **hyper})
    carry = (params, opt.init(params))
    for _ in range(steps):
        carry, _ = _step(opt, loss)(carry)
    return carry


@functools.cache
def _trajectory(name: str):
    """One jitted step on the quadratic, with the optimizer built inside ``jit``
    from the row's ``traced`` hyper-parameters passed as float32 arrays (the
    row's own values). Returns (params, state) after 0..12 steps and the
    jitted step."""
    row = ROWS_BY_NAME[name]
    params, loss = _quadratic()

    @jax.jit
    def step(carry, hyper):
        return _step(row.factory(**{**row.kwargs, **hyper}), loss)(carry)[0]

    hyper = _as_arrays(_base_hyper(row))
    carries = [(params, row.make().init(params))]
    with count_compiles() as compiles:
        for _ in range(TRAJECTORY_STEPS):
            carries.append(step(carries[-1], hyper))
    return carries, step, compiles["step"]


@pytest.mark.parametrize("row", _rows())
def test_jit_matches_eager_and_does_not_recompile(row: Row):
    carries, _, compiles = _trajectory(row.name)
    _assert_carry_close(carries[EAGER_STEPS], _eager(row, {}))
    assert compiles == 1, "a later call recompiled: the state changed type"


@pytest.mark.parametrize("row", _rows(lambda row: bool(row.traced)))
def test_traced_hyperparameters_do_not_recompile(row: Row):
    """The optimizer is built inside ``jit`` from traced hyper-parameters: new
    values reuse the compiled step and give the numbers of concrete values."""
    carries, step, _ = _trajectory(row.name)
    changed = _changed_hyper(row)
    # Initial values may depend on hyper-parameters (initial_accumulator_value).
    params = carries[0][0]
    carry = (params, row.factory(**{**row.kwargs, **changed}).init(params))
    with count_compiles() as compiles:
        for _ in range(EAGER_STEPS):
            carry = step(carry, _as_arrays(changed))
    assert compiles["step"] == 0, "new hyper-parameter values recompiled"
    _assert_carry_close(carry, _eager(row, changed))


# --- learning rate, validation ----------------------------------------------


@pytest.mark.parametrize("row", _rows(lambda row: row.lr_arg is not None))
def test_current_learning_rate(row: Row):
    """Before any update: the rate of step 0; after n updates: the rate the
    last one used (step n - 1)."""
    assert row.lr_arg is not None
    rate = row.hyper_value(row.lr_arg)
    expected = (lambda n: rate(n)) if callable(rate) else (lambda n: rate)
    carries = _trajectory(row.name)[0]
    for n, (_, state) in enumerate(carries):
        np.testing.assert_allclose(
            jol.current_learning_rate(state), expected(max(n - 1, 0)), rtol=1e-6
        )


@pytest.mark.parametrize(
    ("row", "name", "bad"),
    [
        pytest.param(row, name, bad, id=f"{row.name}-{name}={bad}")
        for row in ROWS
        for name, bad in row.invalid
    ],
)
def test_invalid_arguments_raise(row: Row, name: str, bad: float):
    with pytest.raises(ValueError, match=name):
        row.factory(**{**row.kwargs, name: bad})


@pytest.mark.parametrize("row", _rows(lambda row: row.lr_arg is not None))
def test_learning_rate_of_the_wrong_type_raises(row: Row):
    assert row.lr_arg is not None
    with pytest.raises(TypeError, match=row.lr_arg):
        row.factory(**{**row.kwargs, row.lr_arg: "0.1"})


@pytest.mark.parametrize("row", _rows(lambda row: row.lr_arg is not None))
def test_learning_rate_array_is_accepted(row: Row):
    """A concrete array learning rate gives the same numbers as a float."""
    assert row.lr_arg is not None
    rate = row.hyper_value(row.lr_arg)
    if callable(rate):
        pytest.skip("the row's learning rate is a schedule")
    as_array = _eager(row, {row.lr_arg: jnp.asarray(rate)})
    _assert_carry_close(as_array, _trajectory(row.name)[0][EAGER_STEPS])
