"""minimize under jax.grad: implicit differentiation of the solution (closed
forms, finite differences) and unrolled differentiation through the steps."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxopt_lite as jol

LBFGS = jol.lbfgs()
# lbfgs with numbers of its own (program inputs, as every number): the ridge
# test and the lbfgs row of the optimizers' test share its compiled programs
LBFGS_NUMBERS = jol.lbfgs(
    learning_rate=0.5, linesearch=jol.scale_by_zoom_linesearch(20, slope_rtol=1e-3)
)


def _ridge_problem():
    rng = np.random.default_rng(0)
    return jnp.asarray(rng.normal(size=(30, 5))), jnp.asarray(rng.normal(size=30))


def ridge(w, args):
    x, y, lam = args
    return 0.5 * jnp.mean((x @ w - y) ** 2) + 0.5 * lam * jnp.sum(w**2)


def ridge_closed_form(x, y, lam):
    n = x.shape[0]
    return jnp.linalg.solve(x.T @ x / n + lam * jnp.eye(x.shape[1]), x.T @ y / n)


@jax.jit
def exact_derivative(x, y, lam, v):
    """d(v @ w*)/dlam from the closed form (one compiled program, not op by op)."""
    return jax.grad(lambda lam: v @ ridge_closed_form(x, y, lam))(lam)


@jax.jit
def three_gd_steps_by_hand(x, y, lam, w0, v):
    """d(v @ w_3)/dlam for w_{k+1} = w_k - 0.5 grad ridge(w_k), written out."""

    def w3(lam):
        w = w0
        for _ in range(3):
            w = w - 0.5 * jax.grad(ridge)(w, (x, y, lam))
        return v @ w

    return jax.grad(w3)(lam)


def test_implicit_gradient_of_the_ridge_solution_float64():
    with jax.enable_x64(True):
        x, y = _ridge_problem()
        x, y = x.astype(jnp.float64), y.astype(jnp.float64)
        target = jnp.ones(5, jnp.float64)

        def loss(solver_params, lam):
            return jnp.sum((solver_params - target) ** 2)

        def solve(lam):
            return jol.minimize(
                ridge, jnp.zeros(5, jnp.float64), LBFGS_NUMBERS, args=(x, y, lam),
                steps=5000, tol=1e-12,
            )  # fmt: skip

        def outer(lam):
            return loss(solve(lam).params, lam)

        lam = 0.3
        exact = jax.jit(jax.grad(lambda lam: loss(ridge_closed_form(x, y, lam), lam)))(
            lam
        )
        implicit = jax.grad(outer)(lam)
        np.testing.assert_allclose(implicit, exact, rtol=1e-6)
        h = 1e-6
        # the values from value_and_grad: the programs jax.grad just compiled
        plus, minus = (jax.value_and_grad(outer)(lam + d)[0] for d in (h, -h))
        fd = (plus - minus) / (2 * h)
        np.testing.assert_allclose(implicit, fd, rtol=1e-6)
        # the optimal value: d/dlam min_w f = 0.5 |w*|^2 (envelope theorem)
        value_grad = jax.grad(lambda lam: solve(lam).value)(lam)
        w = np.asarray(jax.jit(ridge_closed_form)(x, y, lam))
        np.testing.assert_allclose(value_grad, 0.5 * np.sum(w**2), rtol=1e-6)


def test_unrolled_gradient_through_gradient_descent():
    # 3 unrolled steps of gd: the derivative of x_3 written out by hand.
    x, y = _ridge_problem()
    v = jnp.arange(1.0, 6.0)

    def unrolled(lam):
        w = jol.minimize(
            ridge, jnp.zeros(5), optax.sgd(0.5), args=(x, y, lam), steps=3,
            diff="unroll",
        ).params  # fmt: skip
        return w @ v

    by_hand = three_gd_steps_by_hand(x, y, 0.2, jnp.zeros(5), v)
    np.testing.assert_allclose(jax.grad(unrolled)(0.2), by_hand, rtol=1e-5)


def test_unrolled_gradient_through_lbfgs_approaches_the_solution_derivative():
    x, y = _ridge_problem()
    v = jnp.arange(1.0, 6.0)

    def solution(lam):
        return v @ jol.minimize(
            ridge, jnp.zeros(5), LBFGS, args=(x, y, lam), tol=1e-6, steps=50,
            diff="unroll",
        ).params  # fmt: skip

    exact = exact_derivative(x, y, 0.2, v)
    np.testing.assert_allclose(jax.jit(jax.grad(solution))(0.2), exact, rtol=1e-3)


# Optimizers whose numbers are program inputs (a custom_vjp must not close
# over them), line searches of both kinds and the migration guide's gd with a
# backtracking line search. (One lbfgs row gives both its learning rate and
# its zoom search's slope_rtol.)
OPTIMIZERS = {
    "gd": lambda: jol.gd(0.5),
    "adam": lambda: jol.adam(0.01),
    "lbfgs_learning_rate_zoom_slope_rtol": lambda: LBFGS_NUMBERS,
    "sgd_backtracking": lambda: jol.chain(
        jol.sgd(1.0), jol.scale_by_backtracking_linesearch(30)
    ),
    "sgd_backtracking_store_grad": lambda: jol.chain(
        jol.sgd(1.0), jol.scale_by_backtracking_linesearch(30, store_grad=True)
    ),
}


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_implicit_gradient_for_optimizers_with_numeric_hyperparameters(name):
    optimizer = OPTIMIZERS[name]()
    with jax.enable_x64(True):
        x, y = (a.astype(jnp.float64) for a in _ridge_problem())
        v = jnp.arange(1.0, 6.0, dtype=jnp.float64)

        def solution(lam):
            return v @ jol.minimize(
                ridge, jnp.zeros(5, jnp.float64), optimizer, args=(x, y, lam),
                steps=5000, tol=1e-10,
            ).params  # fmt: skip

        exact = exact_derivative(x, y, 0.3, v)
        # One mode each (each compiles the loop again): under jit, and eagerly
        # for lbfgs, whose eager programs the ridge test compiled (lbfgs's
        # implicit derivatives under jit: test_bounds)
        grad = jax.grad(solution)
        if name != "lbfgs_learning_rate_zoom_slope_rtol":
            grad = jax.jit(grad)
        np.testing.assert_allclose(grad(0.3), exact, rtol=1e-6)


def test_derivatives_with_respect_to_values_closed_over_by_fun():
    # Not passed through args: a closed-over tracer and the leaves of a
    # pytree-callable, in one run (one compiled loop): the Partial's function
    # closes over lam_closed, its leaves hold lam_leaf, and the ridge penalty
    # is their sum. The results under grad are arrays, as under jit.
    with jax.enable_x64(True):
        x, y = (a.astype(jnp.float64) for a in _ridge_problem())
        v = jnp.arange(1.0, 6.0, dtype=jnp.float64)
        exact = exact_derivative(x, y, 0.3, v)
        w0 = jnp.zeros(5, jnp.float64)

        def closure(lam_closed, lam_leaf):
            fun = jax.tree_util.Partial(
                lambda data, w: ridge(w, (data[0], data[1], data[2] + lam_closed)),
                (x, y, lam_leaf),
            )
            result = jol.minimize(fun, w0, LBFGS, tol=1e-10)
            return v @ result.params, result

        implicit, result = jax.grad(closure, (0, 1), has_aux=True)(0.1, 0.2)
        np.testing.assert_allclose(implicit, [exact, exact], rtol=1e-6)
        assert result.status.dtype == jnp.int32 and int(result.status) == 0
        assert result.history["value"].shape == (1000,)

        # unrolled: 3 steps of gd, written out by hand
        def unrolled(lam):
            quad = lambda w: ridge(w, (x, y, lam))
            result = jol.minimize(quad, w0, jol.gd(0.5), steps=3, diff="unroll")
            return v @ result.params

        expected = three_gd_steps_by_hand(x, y, 0.2, w0, v)
        np.testing.assert_allclose(jax.grad(unrolled)(0.2), expected, rtol=1e-12)
        assert abs(float(expected)) > 0.1
