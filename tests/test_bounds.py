"""minimize with lower= / upper=: the solution of scipy's L-BFGS-B, feasibility."""

import jax
import jax.numpy as jnp
import numpy as np
import scipy.optimize

import jaxopt_lite as jol
from jaxopt_lite.benchmarks import _solvers

LBFGS = jol.lbfgs()


def rosen(x):
    return jnp.sum(100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)


def _scipy_lbfgsb(f, x0, lo, hi):
    value_and_grad = jax.jit(jax.value_and_grad(f))
    # one BLAS thread: OpenBLAS's threads only wait for each other on tiny calls
    with _solvers.one_blas_thread():
        res = scipy.optimize.minimize(
            lambda z: tuple(np.asarray(v) for v in value_and_grad(jnp.asarray(z))),
            np.asarray(x0, np.float64),
            jac=True,
            method="L-BFGS-B",
            bounds=list(zip(lo, hi, strict=True)),
            options={"ftol": 1e-15, "gtol": 1e-11, "maxiter": 10_000},
        )
    return res.x


def test_bounded_rosenbrock_matches_scipy_lbfgsb():
    with jax.enable_x64(True):
        x0 = jnp.linspace(-1.2, 1.0, 6, dtype=jnp.float64)
        lo, hi = np.full(6, -0.5), np.array([0.8, 0.8, 0.8, 2.0, 2.0, 0.7])
        result = jol.minimize(
            rosen, x0, LBFGS, lower=jnp.asarray(lo), upper=jnp.asarray(hi), tol=1e-8
        )
        assert result.status == "converged", result.status
        ref = _scipy_lbfgsb(rosen, np.clip(x0, lo, hi), lo, hi)
        np.testing.assert_allclose(result.params, ref, atol=1e-6)
        assert np.all(result.params >= lo) and np.all(result.params <= hi)
        assert result.params[0] == hi[0]  # the bound is active
        assert abs(rosen(jnp.ones(6))) < 1e-12 < result.value  # excludes the min


def test_bounded_least_squares_matches_scipy_with_pytree_and_scalar_bounds():
    with jax.enable_x64(True):
        rng = np.random.default_rng(3)
        a = jnp.asarray(rng.normal(size=(20, 4)))
        b = jnp.asarray(rng.normal(size=20) * 3)

        def lsq(p):
            return 0.5 * jnp.sum((a @ jnp.concatenate([p["w"], p["c"]]) - b) ** 2)

        x0 = {"w": jnp.zeros(3, jnp.float64), "c": jnp.zeros(1, jnp.float64)}
        ref = _scipy_lbfgsb(
            lambda z: lsq({"w": z[:3], "c": z[3:]}), np.zeros(4), [-0.5] * 3 + [0.0],
            [0.5] * 4,
        )  # fmt: skip
        projected_gd = jol.chain(jol.sgd(1.0), jol.scale_by_backtracking_linesearch(30))
        # Armijo backtracking certifies decrease only while eta |g|^2 exceeds
        # the rounding of f: its tolerance stays above sqrt(eps |f|).
        for opt, tol in ((LBFGS, 1e-9), (projected_gd, 1e-6)):
            result = jol.minimize(
                lsq, x0, opt, lower={"w": -0.5, "c": jnp.array([0.0])}, upper=0.5,
                tol=tol,
            )  # fmt: skip
            assert result.status == "converged"
            got = np.concatenate([result.params["w"], result.params["c"]])
            np.testing.assert_allclose(got, ref, atol=1e-6)
        unconstrained = np.linalg.lstsq(np.asarray(a), np.asarray(b), rcond=None)[0]
        assert np.abs(unconstrained).max() > 0.5  # the box matters


def test_implicit_gradient_with_active_bounds():
    # minimize 0.5 |w - t|^2 over [0, 1]^3: w* = clip(t), dw*/dt = 1 inside.
    def f(w, t):
        return 0.5 * jnp.sum((w - t) ** 2)

    t = jnp.array([0.3, 1.7, -0.4])
    jac = jax.jit(
        jax.jacobian(
            lambda t: (
                jol.minimize(
                    f, jnp.full(3, 0.5), LBFGS, args=t, lower=0.0, upper=1.0, tol=1e-6
                ).params
            )
        )
    )(t)
    np.testing.assert_allclose(jac, np.diag([1.0, 0.0, 0.0]), atol=1e-6)
