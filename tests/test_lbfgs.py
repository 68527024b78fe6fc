"""L-BFGS: iterate parity with optax.lbfgs (float32 and float64), the two-loop
recursion against the dense BFGS update, validation."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxopt_lite as jol


def rosenbrock(x):
    return jnp.sum(100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)


def objective(x, data):
    """c rosenbrock(x) + 0.5 x'Qx - b'x: ``data`` = (c, Q, b) selects the
    Rosenbrock function (1, 0, 0) or a quadratic (0, Q, b), exactly, so that
    both problems run one compiled program."""
    c, q, b = data
    return c * rosenbrock(x) + 0.5 * x @ q @ x - b @ x


def _problems(dtype):
    a = np.random.default_rng(0).normal(size=(10, 10))
    q = a @ a.T + 0.1 * np.eye(10)
    b = np.random.default_rng(1).normal(size=10)
    problems = {
        "rosenbrock": (
            np.linspace(-1.2, 1.0, 10),
            (1.0, np.zeros((10, 10)), np.zeros(10)),
        ),
        "quadratic": (np.zeros(10), (0.0, q, b)),
    }
    return {
        name: jax.tree.map(lambda v: jnp.asarray(v, dtype), problem)
        for name, problem in problems.items()
    }


@functools.partial(jax.jit, static_argnums=0)
def _iterates(opt, x0, data):
    """35 iterations of the loop optax documents for its lbfgs."""
    value_and_grad = optax.value_and_grad_from_state(objective)

    def step(carry, _):
        x, state = carry
        value, grad = value_and_grad(x, data, state=state)
        u, state = opt.update(
            grad, state, x, value=value, grad=grad, value_fn=objective, data=data
        )
        x = optax.apply_updates(x, u)
        return (x, state), x

    return jax.lax.scan(step, (x0, opt.init(x0)), length=35)[1]


VARIANTS = [{}, {"memory_size": 3, "scale_init_precond": False, "learning_rate": 0.5}]
# one object per variant: _iterates compiles once per optimizer and dtype
OURS = [jol.lbfgs(**kwargs) for kwargs in VARIANTS]
THEIRS = [optax.lbfgs(**kwargs) for kwargs in VARIANTS]


def _check_parity(dtype, rtol, variants):
    for name, (x0, data) in _problems(dtype).items():
        for i in variants:
            ours = _iterates(OURS[i], x0, data)
            theirs = _iterates(THEIRS[i], x0, data)
            assert ours.dtype == dtype, name
            np.testing.assert_allclose(
                ours, theirs, rtol=rtol, atol=rtol * 1e-3, err_msg=f"{name} {i}"
            )
            assert not np.allclose(theirs[0], theirs[-1])  # it moved


def test_iterates_match_optax_lbfgs_in_float32():
    _check_parity(jnp.float32, 1e-6, range(len(VARIANTS)))


def test_iterates_match_optax_lbfgs_in_float64():
    with jax.enable_x64(True):
        _check_parity(jnp.float64, 1e-12, [0])


def test_minimize_with_ours_or_optax_lbfgs_is_the_same_run():
    x0 = jnp.linspace(-1.2, 1.0, 10)
    ours = jol.minimize(rosenbrock, x0, jol.lbfgs(), steps=500, tol=1e-4)
    theirs = jol.minimize(rosenbrock, x0, optax.lbfgs(), steps=500, tol=1e-4)
    np.testing.assert_allclose(ours.params, theirs.params, rtol=1e-6)
    assert (ours.steps, ours.fun_evals, ours.grad_evals, ours.status) == (
        theirs.steps,
        theirs.fun_evals,
        theirs.grad_evals,
        theirs.status,
    )
    assert ours.status == "converged"
    np.testing.assert_allclose(ours.params, 1.0, atol=1e-3)


def test_two_loop_recursion_equals_the_dense_bfgs_inverse():
    # After a few steps, the direction must be H g with
    # H <- (I - rho s y^T) H (I - rho y s^T) + rho s s^T from H0 = gamma I.
    t = jol.scale_by_lbfgs(memory_size=4)
    rng = np.random.default_rng(2)
    xs = rng.normal(size=(7, 5)).astype(np.float32)
    gs = rng.normal(size=(7, 5)).astype(np.float32)
    update = jax.jit(t.update)
    state = t.init(jnp.zeros(5))
    for x, g in zip(xs[:-1], gs[:-1], strict=True):
        _, state = update(jnp.asarray(g), state, jnp.asarray(x))
    direction, _ = update(jnp.asarray(gs[-1]), state, jnp.asarray(xs[-1]))
    pairs = [(xs[i + 1] - xs[i], gs[i + 1] - gs[i]) for i in range(len(xs) - 1)][-4:]
    s_last, y_last = pairs[-1]
    h = np.eye(5) * (s_last @ y_last) / (y_last @ y_last)
    for s, y in pairs:
        rho = 1.0 / (s @ y)
        v = np.eye(5) - rho * np.outer(y, s)
        h = v.T @ h @ v + rho * np.outer(s, s)
    np.testing.assert_allclose(direction, h @ gs[-1], rtol=2e-4, atol=1e-5)


def test_first_direction_is_the_gradient_capped_at_norm_one():
    t = jol.scale_by_lbfgs()
    update = jax.jit(t.update)
    for g, expected in ([[3.0, 4.0], [0.6, 0.8]], [[0.3, 0.4], [0.3, 0.4]]):
        d, _ = update(jnp.array(g), t.init(jnp.zeros(2)), jnp.zeros(2))
        np.testing.assert_allclose(d, expected, rtol=1e-6)


def test_without_line_search_the_step_is_minus_the_scaled_direction():
    opt = jol.lbfgs(learning_rate=0.1, linesearch=None)
    g = jnp.array([3.0, 4.0])
    u, _ = jax.jit(opt.update)(g, opt.init(jnp.zeros(2)), jnp.zeros(2))
    np.testing.assert_allclose(u, [-0.06, -0.08], rtol=1e-6)


def test_state_keeps_float64():
    with jax.enable_x64(True):
        t = jol.lbfgs()
        state = t.init(jnp.zeros(3, jnp.float64))
        floats = {a.dtype for a in jax.tree.leaves(state) if a.dtype.kind == "f"}
        assert floats == {jnp.dtype("float64")}


@pytest.mark.parametrize(
    ("make", "error", "match"),
    [
        (lambda: jol.scale_by_lbfgs(memory_size=0), ValueError, "memory_size=0"),
        (lambda: jol.scale_by_lbfgs(memory_size=2.0), TypeError, "memory_size"),
        (lambda: jol.lbfgs(memory_size=2**31), ValueError, "memory_size=2147483648"),
        (
            lambda: jol.scale_by_lbfgs(scale_init_precond=1),
            TypeError,
            "scale_init_precond",
        ),
        (lambda: jol.lbfgs(learning_rate=-1.0), ValueError, "learning_rate=-1.0"),
        (lambda: jol.lbfgs(linesearch="zoom"), TypeError, "linesearch must be"),
    ],
)
def test_validation(make, error, match):
    with pytest.raises(error, match=match):
        make()
