"""minimize with lbfgsb(): scipy's L-BFGS-B step for step, optimality,
statuses, jit/vmap, float32, implicit derivatives, validation.

Compilations dominate this file's time, so the problems share programs: one
objective whose args select a bounded quadratic, a bounded Rosenbrock
function or both, with a gradient that args can make wrong (to make the line
search fail), all on five variables with array bounds (infinite ones mean no
bound, as in scipy). Every unbatched run records the points it evaluates
(`recorded`, read by the step-by-step test), so that all of them, in float64,
run one compiled program.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.optimize

import jaxopt_lite as jol
from jaxopt_lite.benchmarks import _solvers

N = 5
STEPS = 60
SOLVER = jol.lbfgsb()


def rosen(x):
    return jnp.sum(100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)


def objective(x, args):
    """0.5 x'Ax - b'x + c rosen(x), whose gradient is multiplied by k."""
    a, b, c, k = args
    f = 0.5 * x @ a @ x - b @ x + c * rosen(x)
    fixed = jax.lax.stop_gradient(f)
    return fixed + k * (f - fixed)


GRAD = jax.jit(jax.grad(objective))
VALUE_AND_GRAD = jax.jit(jax.value_and_grad(objective))
POINTS = []  # the points `recorded` evaluated, as uint32 bits


def _record(bits):  # float64 as uint32 pairs: the callback runs without x64
    POINTS.append(np.asarray(bits))


def recorded(x, args):
    """`objective`, recording each point it is evaluated at, in order."""
    jax.debug.callback(
        _record, jax.lax.bitcast_convert_type(x, jnp.uint32), ordered=True
    )
    return objective(x, args)


def spd(seed, n=N):
    q = np.random.default_rng(seed).normal(size=(n, n))
    return q @ q.T / n + np.eye(n)


def quadratic(seed=0):
    rng = np.random.default_rng(seed)
    return (spd(seed), 3 * rng.normal(size=N), 0.0, 1.0)


ROSENBROCK = (np.zeros((N, N)), np.zeros(N), 1.0, 1.0)
INF = np.full(N, np.inf)
# name: args, x0, lower, upper
PROBLEMS = {
    "quadratic, active bounds": (
        quadratic(),
        np.zeros(N),
        np.full(N, -0.5),
        np.array([0.3, 0.5, 0.6, 2.0, 1.0]),
    ),
    "rosenbrock, active bounds": (
        ROSENBROCK,
        np.array([-1.2, 1.0, -0.5, 0.7, 0.0]),
        np.full(N, -0.5),
        np.array([0.8, 0.8, 0.8, 2.0, 0.7]),
    ),
    "rosenbrock, inactive bounds": (
        ROSENBROCK,
        np.array([-1.2, 1.0, -1.2, 1.0, -1.2]),
        np.full(N, -10.0),
        np.full(N, 10.0),
    ),
    "rosenbrock, lower bounds only": (
        ROSENBROCK,
        np.array([-1.2, 1.0, -1.2, 1.0, -1.2]),
        np.array([-2.0, 0.0, -np.inf, 0.5, -2.0]),
        INF,
    ),
    "quadratic, no bounds": (quadratic(1), np.ones(N), -INF, INF),
    "rosenbrock plus a quadratic, mixed bounds, one fixed": (
        (spd(7) / 10, np.random.default_rng(7).normal(size=N), 1.0, 1.0),
        np.array([0.5, -0.3, 0.8, -1.0, 0.0]),
        np.array([-np.inf, 0.2, -1.0, -np.inf, -0.3]),
        np.array([0.1, 0.2, np.inf, 0.4, np.inf]),
    ),
}


def as_jax(problem, dtype=jnp.float64):
    args, x0, lo, hi = problem
    args = tuple(jnp.asarray(a, dtype) for a in args)
    return args, *(jnp.asarray(v, dtype) for v in (x0, lo, hi))


def scipy_run(problem, **options):
    """scipy's L-BFGS-B: every point it evaluated, and its result."""
    args = as_jax(problem)[0]
    points = []

    def fg(x):
        points.append(np.array(x))
        value, grad = VALUE_AND_GRAD(jnp.asarray(x), args)
        return float(value), np.asarray(grad)

    bounds = [
        (None if np.isinf(a) else a, None if np.isinf(b) else b)
        for a, b in zip(problem[2], problem[3], strict=True)
    ]
    with _solvers.one_blas_thread():  # OpenBLAS's threads only wait on tiny BLAS calls
        res = scipy.optimize.minimize(
            fg, problem[1], jac=True, method="L-BFGS-B", bounds=bounds, options=options
        )
    return np.array(points), res


def kkt_violation(x, g, lo, hi):
    """The largest element of the projected gradient x - P(x - g)."""
    return float(np.max(np.abs(x - np.clip(x - g, lo, hi))))


TIGHT = jol.lbfgsb(ftol=0.0, gtol=1e-9)  # its tolerances are inputs: SOLVER's program


def solve(problem, solver=SOLVER, dtype=jnp.float64, **kwargs):
    args, x0, lo, hi = as_jax(problem, dtype)
    return jol.minimize(
        recorded, x0, solver, args=args, lower=lo, upper=hi, steps=STEPS, **kwargs
    )


def test_every_evaluation_matches_scipy_step_by_step():
    # The objective records each point it is evaluated at (one compiled
    # program for every problem): the same sequence as scipy's, line-search
    # trials included, to 1e-8, and the same counts.
    with jax.enable_x64(True):
        for name, problem in PROBLEMS.items():
            ref_points, ref = scipy_run(problem)
            POINTS.clear()
            result = solve(problem)
            ours = np.array([p.view(np.float64).reshape(-1) for p in POINTS])
            assert ours.shape == ref_points.shape, name
            np.testing.assert_allclose(
                ours, ref_points, rtol=0, atol=1e-8, err_msg=name
            )
            assert (result.steps, result.fun_evals) == (ref.nit, ref.nfev), name
            assert result.status == "converged" and ref.success, name
            np.testing.assert_allclose(
                result.params, ref.x, rtol=0, atol=1e-8, err_msg=name
            )
            assert result.value == pytest.approx(ref.fun, rel=1e-10, abs=1e-14)
            assert result.grad_evals == result.fun_evals
            np.testing.assert_array_equal(result.params, ours[-1])  # the last trial


def test_optimality_conditions_and_stopping_tests():
    with jax.enable_x64(True):
        for name, problem in PROBLEMS.items():
            result = solve(problem, TIGHT)
            x, lo, hi = (np.asarray(v) for v in (result.params, *problem[2:]))
            g = np.asarray(GRAD(result.params, as_jax(problem)[0]))
            # KKT: zero gradient inside, pointing out of the box at a bound
            assert kkt_violation(x, g, lo, hi) < 1e-7, name
            assert np.all(np.abs(g[(x > lo) & (x < hi)]) < 1e-7), name
            at_lo, at_hi = (x == lo) & (lo < hi), (x == hi) & (lo < hi)  # not fixed
            assert np.all(g[at_lo] > -1e-7) and np.all(g[at_hi] < 1e-7), name
            assert np.all((x >= lo) & (x <= hi)), name
            # gtol 1e-9 is at the edge of float64: converged, or the line
            # search could not certify a further decrease
            assert result.status in ("converged", "linesearch_failed"), name
        # each stopping test, on the bounded Rosenbrock problem
        problem = PROBLEMS["rosenbrock, active bounds"]
        default = solve(problem)
        x, lo, hi = default.params, *problem[2:]
        g = GRAD(x, as_jax(problem)[0])
        assert default.status == "converged"
        assert kkt_violation(np.asarray(x), np.asarray(g), lo, hi) <= 1e-5
        loose = solve(problem, jol.lbfgsb(ftol=1e-3))
        f = np.append(loose.history["value"], loose.value)
        reduction = (f[:-1] - f[1:]) / np.maximum(
            np.maximum(abs(f[:-1]), abs(f[1:])), 1
        )
        assert loose.status == "converged" and loose.steps < default.steps
        assert reduction[-1] <= 1e-3 < reduction[:-1].min()
        by_norm = solve(problem, tol=1e-2)  # minimize's own test, on the L2 norm
        assert by_norm.status == "converged" and by_norm.grad_norm <= 1e-2
        assert by_norm.history["grad_norm"].min() > 1e-2
        np.testing.assert_array_equal(
            loose.history["learning_rate"][:3], default.history["learning_rate"][:3]
        )
        assert loose.history["learning_rate"][0] < 1  # the first step: 1 / |d|


def test_statuses_are_honest():
    with jax.enable_x64(True):
        problem = PROBLEMS["rosenbrock, active bounds"]
        args, x0, lo, hi = problem
        # a gradient pointing uphill: the line search fails from the start
        wrong = solve(((*args[:3], -1.0), x0, lo, hi))
        assert wrong.status == "linesearch_failed" and not wrong.converged
        np.testing.assert_array_equal(wrong.params, np.clip(x0, lo, hi))
        assert wrong.steps == 1 and wrong.fun_evals == 1 + 20
        nan = solve(((*args[:2], np.nan, 1.0), x0, lo, hi))
        assert nan.status == "nonfinite" and nan.steps == 0
    # float32 at a local minimum, where gtol=1e-5 is below what the values
    # resolve: "converged" only because a test fired (here f stopped
    # decreasing: a relative reduction of 0 <= ftol). Without x64, as in the
    # next test: one compiled program.
    problem = PROBLEMS["rosenbrock, lower bounds only"]
    f32 = solve(problem, dtype=jnp.float32)
    g = GRAD(f32.params, as_jax(problem, jnp.float32)[0])
    pg = kkt_violation(*(np.asarray(v) for v in (f32.params, g)), *problem[2:])
    previous = float(f32.history["value"][-1])
    reduction = (previous - f32.value) / max(abs(previous), abs(f32.value), 1)
    assert f32.status == "converged" and f32.params.dtype == jnp.float32
    assert pg <= 1e-5 or reduction <= 2.220446049250313e-09


def test_float32_stays_float32_and_agrees_with_float64():
    for name in ("quadratic, active bounds", "rosenbrock, active bounds"):
        problem = PROBLEMS[name]
        result = solve(problem, dtype=jnp.float32)
        assert result.status == "converged", name
        assert result.params.dtype == jnp.float32
        assert result.history["value"].dtype == np.float32
        with jax.enable_x64(True):
            reference = solve(problem, TIGHT).params
        np.testing.assert_allclose(result.params, reference, atol=2e-3, err_msg=name)
        lo, hi = problem[2:]
        assert np.all((result.params >= lo) & (result.params <= hi))


def test_jit_and_vmap_over_starts_args_and_bounds():
    with jax.enable_x64(True):
        problems = list(PROBLEMS.values())[:4]
        batch = jax.tree.map(lambda *a: jnp.stack(a), *(as_jax(p) for p in problems))

        @jax.jit
        @jax.vmap
        def batched(args, x0, lo, hi):
            r = jol.minimize(
                objective, x0, SOLVER, args=args, lower=lo, upper=hi, steps=STEPS
            )
            return r.params, r.steps, r.status, r.fun_evals

        params, steps, status, evals = batched(*batch)
        for i, problem in enumerate(problems):
            one = solve(problem)
            np.testing.assert_allclose(params[i], one.params, rtol=0, atol=1e-12)
            assert (int(steps[i]), int(evals[i])) == (one.steps, one.fun_evals)
            assert jol.MinimizeResult.STATUSES[int(status[i])] == one.status


def test_implicit_derivatives_with_active_bounds():
    # the quadratic 0.5 x'Ax - b'x: on the free set F, A_FF x_F = b_F - A_FH x_H
    # with x_H at its bounds, so dx_F/db_F = A_FF^-1 and dx_F/du_H = -A_FF^-1 A_FH
    with jax.enable_x64(True):
        problem = PROBLEMS["quadratic, active bounds"]
        args, x0, lo, hi = as_jax(problem)

        def solution(args, hi):
            return jol.minimize(
                objective, x0, TIGHT, args=args, lower=lo, upper=hi, steps=STEPS
            ).params

        jacobian = jax.jit(jax.jacobian(solution, argnums=(0, 1)))
        (_, d_b, _, _), d_hi = jacobian(args, hi)
        x = np.asarray(solve(problem, TIGHT).params)  # the same solution, run unbatched
        g = np.asarray(args[0]) @ x - np.asarray(args[1])
        at_lo, at_hi = (x == problem[2]) & (g > 0), (x == problem[3]) & (g < 0)
        free = ~(at_lo | at_hi)
        assert at_lo.any() and at_hi.any() and free.sum() >= 2
        a = np.asarray(args[0])
        inv = np.linalg.inv(a[np.ix_(free, free)])
        want_b = np.zeros((N, N))
        want_b[np.ix_(free, free)] = inv
        want_hi = np.zeros((N, N))
        want_hi[np.ix_(free, at_hi)] = -inv @ a[np.ix_(free, at_hi)]
        want_hi[at_hi, at_hi] = 1.0
        np.testing.assert_allclose(d_b, want_b, rtol=0, atol=1e-7)
        np.testing.assert_allclose(d_hi, want_hi, rtol=0, atol=1e-7)

        # a quadratic plus a Rosenbrock term: the same program, finite
        # differences in c
        mixed = ((*quadratic(2)[:2], 0.5, 1.0), np.zeros(N), *problem[2:])
        args, x0, lo, hi = as_jax(mixed)
        (_, _, d_c, _), _ = jacobian(args, hi)
        h = 1e-5

        def at(c):
            return np.asarray(
                solve(((*mixed[0][:2], c, 1.0), *mixed[1:]), TIGHT).params
            )

        fd = (at(0.5 + h) - at(0.5 - h)) / (2 * h)
        assert np.abs(fd).max() > 1e-2
        np.testing.assert_allclose(d_c, fd, rtol=0, atol=1e-5)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"memory_size": 0}, ValueError, "memory_size=0 is not allowed"),
        ({"memory_size": 2.5}, TypeError, "memory_size must be an integer"),
        ({"ftol": -1.0}, ValueError, "ftol"),
        ({"gtol": np.ones(2)}, TypeError, "gtol must be a scalar"),
        ({"max_linesearch_steps": 0}, ValueError, "max_linesearch_steps=0"),
    ],
)
def test_validation_of_the_settings(kwargs, error, match):
    with pytest.raises(error, match=match):
        jol.lbfgsb(**kwargs)


def test_validation_of_its_use():
    x0 = jnp.zeros(3)
    quad = lambda x: jnp.sum(x**2)
    with pytest.raises(ValueError, match='diff="implicit"'):
        jol.minimize(quad, x0, SOLVER, diff="unroll")
    with pytest.raises(TypeError, match="real parameters"):
        jol.minimize(lambda x: jnp.sum(jnp.abs(x) ** 2), x0 + 0j, SOLVER)
    with pytest.raises(ValueError, match="not ordered"):
        jol.minimize(quad, x0, SOLVER, lower=1.0, upper=jnp.array([0.0, 2.0, 2.0]))
    with pytest.raises(ValueError, match="has shape"):
        jol.minimize(quad, x0, SOLVER, lower=jnp.zeros(2))
    with pytest.raises(TypeError, match="GradientTransformation"):
        jol.minimize(quad, x0, {"memory_size": 10})


def test_pytree_parameters_aux_and_no_bounds_match_scipy():
    def fun(p):
        x = jnp.concatenate([p["a"], p["b"]])
        return rosen(x) + jnp.sum(p["none"]), {"first": x[0]}

    with jax.enable_x64(True):
        x0 = {
            "a": jnp.array([-1.2, 1.0]),
            "b": jnp.array([-1.2, 1.0, 0.5]),
            "none": jnp.zeros((0, 3)),  # a zero-size leaf takes no part
        }
        result = jol.minimize(fun, x0, SOLVER, has_aux=True, steps=STEPS)
        flat = jax.jit(jax.value_and_grad(lambda x: rosen(x)))
        with _solvers.one_blas_thread():
            ref = scipy.optimize.minimize(
                lambda x: tuple(np.asarray(v) for v in flat(jnp.asarray(x))),
                np.array([-1.2, 1.0, -1.2, 1.0, 0.5]),
                jac=True,
                method="L-BFGS-B",
            )
        assert result.status == "converged"
        assert (result.steps, result.fun_evals) == (ref.nit, ref.nfev)
        got = np.concatenate([result.params["a"], result.params["b"]])
        np.testing.assert_allclose(got, ref.x, rtol=0, atol=1e-10)
        assert result.aux["first"] == result.params["a"][0]
        assert result.params["none"].shape == (0, 3)
        assert isinstance(result.opt_state, jol.LBFGSBState)
