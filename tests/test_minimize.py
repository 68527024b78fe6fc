"""minimize: convergence, tolerance, history, value=, validation, reuse."""

import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxopt_lite as jol

GD = optax.sgd(0.1)


def rosenbrock(p):
    x, y = p["x"], p["y"]
    return (1 - x) ** 2 + 100 * (y - x**2) ** 2


def test_gradient_descent_on_a_parabola_follows_the_closed_form():
    # f(x) = x^2, x <- x - 0.1 * 2x = 0.8 x.
    result = jol.minimize(lambda x: jnp.sum(x**2), jnp.array([1.0, -2.0]), GD, steps=30)
    np.testing.assert_allclose(
        result.params, 0.8**30 * np.array([1.0, -2.0]), rtol=1e-5
    )
    np.testing.assert_allclose(
        result.history["value"], 5 * 0.64 ** np.arange(30), rtol=1e-5
    )
    assert result.steps == 30 and not result.converged


def test_tolerance_stops_inside_the_loop():
    result = jol.minimize(
        lambda x: jnp.sum(x**2), jnp.array([1.0]), GD, steps=1000, tol=1e-3
    )
    # |grad| = 2 * 0.8^k <= 1e-3  <=>  k >= 34.06
    assert result.converged and result.steps == 35
    assert result.grad_norm <= 1e-3 < result.history["grad_norm"][-1]
    assert len(result.history["value"]) == 35


def test_rosenbrock_with_adam_and_pytree_params():
    x0 = {"x": jnp.array(-1.0), "y": jnp.array(1.0)}
    result = jol.minimize(rosenbrock, x0, optax.adam(0.05), steps=3000, tol=1e-4)
    assert result.converged
    np.testing.assert_allclose([result.params["x"], result.params["y"]], 1.0, atol=1e-3)


def test_value_is_passed_to_the_optimizer():
    # Polyak's step size (f - f*) / |g|^2 needs value=; on x^2 it halves x.
    result = jol.minimize(
        lambda x: jnp.sum(x**2), jnp.array([3.0]), optax.polyak_sgd(), steps=3
    )
    np.testing.assert_allclose(result.params, [3.0 * 0.5**3], rtol=1e-6)


def test_has_aux_and_learning_rate_history():
    opt = optax.inject_hyperparams(optax.sgd)(
        learning_rate=optax.linear_schedule(0.1, 0.0, 10)
    )
    result = jol.minimize(
        lambda x: (jnp.sum(x**2), {"x": x}), jnp.ones(2), opt, steps=10, has_aux=True
    )
    np.testing.assert_allclose(
        result.history["learning_rate"], 0.1 - 0.01 * np.arange(10), atol=1e-7
    )
    np.testing.assert_array_equal(result.aux["x"], result.params)


def test_non_finite_value_stops():
    result = jol.minimize(
        lambda x: jnp.sum(jnp.log(x)), jnp.array([1.0]), optax.sgd(2.0), steps=100
    )
    assert not np.isfinite(result.value) and result.steps < 100 and not result.converged


def test_reuses_the_compiled_loop():
    traces = []

    def f(x):
        traces.append(1)
        return jnp.sum(x**2)

    jol.minimize(f, jnp.ones(3), GD, steps=5, tol=1e-3)
    n = len(traces)
    jol.minimize(f, jnp.zeros(3) + 2.0, GD, steps=5, tol=1e-5)
    assert len(traces) == n


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (dict(steps=0), ValueError, "steps=0"),
        (dict(tol=-1.0), ValueError, "tol=-1.0"),
        (dict(tol=float("nan")), ValueError, "tol=nan"),
        (dict(tol="small"), TypeError, "tol must be a number"),
        (dict(has_aux=1), TypeError, "has_aux"),
    ],
)
def test_validation(kwargs, error, match):
    with pytest.raises(error, match=match):
        jol.minimize(lambda x: jnp.sum(x**2), jnp.ones(2), GD, **kwargs)


def test_validation_of_fun_and_params():
    with pytest.raises(TypeError, match="fun must be callable"):
        jol.minimize(3, jnp.ones(2), GD)
    with pytest.raises(TypeError, match=r"shape \(2,\)"):
        jol.minimize(lambda x: x**2, jnp.ones(2), GD)
    with pytest.raises(TypeError, match=r"x0\['k'\] has dtype int32"):
        jol.minimize(
            lambda p: jnp.sum(p["a"] ** 2), {"a": jnp.ones(2), "k": jnp.int32(1)}, GD
        )
    with pytest.raises(TypeError, match="optimizer"):
        jol.minimize(lambda x: jnp.sum(x**2), jnp.ones(2), optax.sgd)
    with pytest.raises(TypeError, match="has_aux=True"):
        jol.minimize(lambda x: jnp.sum(x**2), jnp.ones(2), GD, has_aux=True)
