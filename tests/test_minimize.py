"""minimize: convergence, tolerance, history, value=, validation, reuse.

Compilations dominate this file's time: tests share module-level objectives
(a new function object is a new program), step limits and dtypes, so that
the runs with the same optimizer structure reuse one compiled loop.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxopt_lite as jol

GD = optax.sgd(0.1)


def quad(x):
    return jnp.sum(x**2)


def log_sum(x):
    return jnp.sum(jnp.log(x))


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
    result = jol.minimize(log_sum, jnp.array([1.0]), optax.sgd(2.0))
    assert not np.isfinite(result.value) and result.steps < 1000
    assert result.status == "nonfinite" and not result.converged


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


# --- full-batch solver: line searches, statuses, counts ---------------------


def rosen(x):
    return jnp.sum(100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)


LBFGS = jol.lbfgs()
X0 = jnp.linspace(-1.2, 1.0, 6)
CALLS = []  # one entry per evaluation of `signed` or `counted`


def _mixed(x, mix):
    jax.debug.callback(lambda: CALLS.append(1))
    quadratic = jnp.sum(jnp.arange(1.0, 7.0, dtype=x.dtype) * (x - 1.0) ** 2)
    return mix * rosen(x) + (1 - mix) * quadratic


@jax.custom_jvp
def signed(x, args):
    """mix rosen(x) + (1 - mix) sum_i i (x_i - 1)^2 on six variables, for
    args = (mix, sign), differentiated times sign (-1: an ascent direction;
    zero at x = 1 either way), counting its evaluations in CALLS. The zoom
    search tests below all run it: one compiled program per optimizer and
    dtype."""
    return _mixed(x, args[0])


@signed.defjvp
def _signed_jvp(primals, tangents):
    (x, (mix, sign)), (dx, _) = primals, tangents
    value, grad = jax.value_and_grad(_mixed)(x, mix)
    return value, sign * jnp.sum(grad * dx)


def test_lbfgs_converges_and_counts_every_evaluation():
    CALLS.clear()
    result = jol.minimize(signed, X0, LBFGS, args=(1.0, 1.0), steps=300, tol=1e-5)
    assert result.status == "converged" and result.converged
    assert result.grad_norm <= 1e-5
    np.testing.assert_allclose(result.params, 1.0, atol=1e-4)
    # value and gradient come from the line search: one initial evaluation
    # plus one per line-search trial, each a value-and-gradient
    assert result.fun_evals == result.grad_evals == len(CALLS)
    assert result.steps < result.fun_evals < 3 * result.steps
    assert set(result.history) == {"value", "grad_norm", "learning_rate"}


def counted(x):
    """sum_i i (x_i - 1)^2, counting its evaluations in CALLS."""
    jax.debug.callback(lambda: CALLS.append(1))
    return jnp.sum((x - 1.0) ** 2 * jnp.arange(1.0, 4.0))


def test_gradient_descent_with_backtracking_counts_evaluations():
    results = []
    for store_grad in (False, True):
        CALLS.clear()
        ls = jol.scale_by_backtracking_linesearch(20, store_grad=store_grad)
        result = jol.minimize(
            counted, jnp.zeros(3), jol.chain(jol.sgd(1.0), ls), steps=200, tol=1e-5
        )
        assert result.status == "converged"
        np.testing.assert_allclose(result.params, 1.0, atol=1e-5)
        assert result.fun_evals == len(CALLS)
        assert result.grad_evals == result.steps + 1
        results.append(result)
    plain, stored = results
    # the same iterates; without store_grad each iteration evaluates f once more
    np.testing.assert_array_equal(plain.params, stored.params)
    assert plain.fun_evals == stored.fun_evals + plain.steps


def test_optax_backtracking_and_ours_give_the_same_run():
    # ours: the previous test's program (the same objective and settings)
    runs = [
        jol.minimize(
            counted,
            jnp.zeros(3),
            lib.chain(lib.sgd(1.0), lib.scale_by_backtracking_linesearch(20)),
            steps=200,
            tol=1e-5,
        )
        for lib in (jol, optax)
    ]
    np.testing.assert_allclose(runs[0].params, runs[1].params, rtol=1e-6)
    assert [r.steps for r in runs[:1]] == [runs[1].steps]
    assert runs[0].fun_evals == runs[1].fun_evals


def test_statuses():
    assert jol.minimize(quad, jnp.ones(2), GD, steps=3).status == "max_steps"
    bad = jol.minimize(log_sum, jnp.ones(1), optax.sgd(2.0))
    assert bad.status == "nonfinite" and not bad.converged
    # an ascent direction: no step size decreases f; the start is kept
    ascent = jol.chain(jol.scale(1.0), jol.scale_by_backtracking_linesearch(5))
    failed = jol.minimize(quad, jnp.ones(2), ascent, steps=50, tol=1e-6)
    assert failed.status == "linesearch_failed" and failed.steps == 1
    np.testing.assert_array_equal(failed.params, [1.0, 1.0])
    assert failed.value == 2.0
    # already optimal: converged before any step
    done = jol.minimize(
        signed, jnp.ones(6), LBFGS, args=(0.0, 1.0), steps=300, tol=1e-6
    )
    assert (done.status, done.steps, done.fun_evals) == ("converged", 0, 1)


SGD_ZOOM = jol.chain(jol.sgd(1.0), jol.scale_by_zoom_linesearch(20))


def test_a_zero_gradient_converges_without_a_tolerance():
    # No tol given: a stationary point still meets "any tol >= 0" and stops.
    # (sgd with the zoom search in float64: the next test's program)
    with jax.enable_x64(True):
        x0 = jnp.ones(6, jnp.float64)
        done = jol.minimize(signed, x0, SGD_ZOOM, args=(0.0, 1.0), steps=300)
        assert (done.status, done.steps, done.fun_evals) == ("converged", 0, 1)
    for opt in (LBFGS, GD):
        done = jol.minimize(signed, jnp.ones(6), opt, args=(0.0, 1.0), steps=300)
        assert (done.status, done.steps, done.fun_evals) == ("converged", 0, 1)
    # gd(0.5) on (x - 1)^2 lands exactly on 1 after one step
    quad1 = lambda x: jnp.sum((x - 1.0) ** 2)
    exact = jol.minimize(quad1, jnp.zeros(2), jol.gd(0.5), steps=50)
    assert (exact.status, exact.steps, exact.grad_norm) == ("converged", 1, 0.0)
    np.testing.assert_array_equal(exact.params, [1.0, 1.0])


# Each optimizer once, each precision once: the failure is detected in the
# zoom search and minimize's loop, which both optimizers share.
@pytest.mark.parametrize(("name", "x64"), [("lbfgs", False), ("sgd_zoom", True)])
def test_no_progress_with_the_zoom_search_is_a_failed_line_search(name, x64):
    # A gradient of the wrong sign: the zoom search only finds vanishing steps
    # that do not decrease f (and violate the curvature condition). They used
    # to be accepted until max_steps (300 iterations, f creeping up).
    opt = {"lbfgs": LBFGS, "sgd_zoom": SGD_ZOOM}
    with jax.enable_x64(x64):
        x0 = jnp.zeros(6, jnp.float64 if x64 else jnp.float32)
        result = jol.minimize(
            signed, x0, opt[name], args=(0.0, -1.0), steps=300, tol=1e-6
        )
        assert (result.status, result.steps, result.value) == (
            "linesearch_failed", 1, 21.0,
        )  # fmt: skip
        np.testing.assert_array_equal(result.params, x0)


def test_value_and_step_tolerances_stop_as_documented():
    # x_k = 0.8^k, f_k = x_k^2. |f_k - f_{k-1}| = 0.36 * 0.64^(k-1) and
    # |x_k - x_{k-1}| = 0.2 * 0.8^(k-1); with atol=1e-3 the step test is the
    # later one: 0.2 * 0.8^(k-1) <= 1e-3 <=> k >= 24.74.
    f = lambda x: jnp.sum(x**2)
    result = jol.minimize(f, jnp.array([1.0]), GD, steps=1000, atol=1e-3)
    assert (result.status, result.steps) == ("converged", 25)
    # rtol alone: |dx| <= r |x_k|: 0.25 <= r fails for r=0.2; the value
    # test 0.36 * 0.64^(k-1) <= r 0.64^k <=> 0.5625 <= r.
    result = jol.minimize(f, jnp.array([1.0]), GD, steps=100, rtol=0.6)
    assert (result.status, result.steps) == ("converged", 1)
    assert jol.minimize(f, jnp.array([1.0]), GD, steps=100, rtol=0.3).steps == 100


def test_huge_step_limits_do_not_allocate_their_history():
    f = lambda x: jnp.sum((x - 2.0) ** 2)
    # |grad f(x_k)| = 4 sqrt(3) 0.8^k <= 1e-3  <=>  k >= 39.6
    for steps in (10**8, 10**9):
        result = jol.minimize(f, jnp.zeros(3), GD, steps=steps, tol=1e-3)
        assert result.status == "converged" and result.steps == 40
        assert len(result.history["value"]) == 40
    short = jol.minimize(f, jnp.zeros(3), GD, steps=100, history_size=5)
    assert short.steps == 100 and len(short.history["grad_norm"]) == 5
    np.testing.assert_allclose(
        short.history["value"], 12 * 0.64 ** np.arange(5), rtol=1e-5
    )
    empty = jol.minimize(f, jnp.zeros(3), GD, steps=10, history_size=0).history
    assert {k: len(h) for k, h in empty.items()} == {"value": 0, "grad_norm": 0}


@pytest.mark.parametrize("history_size", [7, 8, 9, 24, 1000])
def test_history_rows_across_blocks_and_the_sink(history_size):
    # Rows are written in blocks of 8; those past history_size go nowhere.
    f = lambda x: jnp.sum((x - 2.0) ** 2)
    result = jol.minimize(f, jnp.zeros(3), GD, steps=30, history_size=history_size)
    kept = min(30, history_size)
    assert {k: len(h) for k, h in result.history.items()} == {
        "value": kept, "grad_norm": kept,
    }  # fmt: skip
    k = np.arange(kept)
    # float32 iterates: the relative rounding grows as the values shrink
    np.testing.assert_allclose(result.history["value"], 12 * 0.64**k, rtol=1e-4)
    np.testing.assert_allclose(
        result.history["grad_norm"], 4 * np.sqrt(3) * 0.8**k, rtol=1e-4
    )


def test_counts_stay_exact_in_a_low_precision():
    # Counts travel with the bfloat16 values but bit for bit: 257 is not a
    # bfloat16 number.
    f = lambda x: jnp.sum((x - 2.0) ** 2)
    x0 = jnp.zeros(3, jnp.bfloat16)
    result = jol.minimize(f, x0, jol.gd(1e-3), steps=257, history_size=300)
    assert (result.status, result.steps, result.fun_evals) == ("max_steps", 257, 258)
    assert result.history["value"].dtype == jnp.bfloat16
    assert len(result.history["value"]) == 257


# --- args, jit, vmap --------------------------------------------------------


def _ridge_problem():
    rng = np.random.default_rng(0)
    return jnp.asarray(rng.normal(size=(30, 5))), jnp.asarray(rng.normal(size=30))


def ridge(w, args):
    x, y, lam = args
    return 0.5 * jnp.mean((x @ w - y) ** 2) + 0.5 * lam * jnp.sum(w**2)


def ridge_closed_form(x, y, lam):
    n = x.shape[0]
    return jnp.linalg.solve(x.T @ x / n + lam * jnp.eye(x.shape[1]), x.T @ y / n)


def _smooth_convex(x):
    a = jnp.asarray(np.random.default_rng(4).normal(size=(10, 6)), x.dtype)
    return jax.nn.logsumexp(a @ x) + 0.5 * jnp.sum(x**2) + jnp.sum(x**4) / 4


def _solve_smooth_convex(x0, tol):
    return jol.minimize(_smooth_convex, x0, LBFGS, tol=tol)


def test_float64_everywhere_under_x64():
    # the unbatched program of the next test (tol is an input)
    with jax.enable_x64(True):
        x0 = jnp.linspace(-1.2, 1.0, 6, dtype=jnp.float64)
        result = _solve_smooth_convex(x0, 1e-10)
        assert result.status == "converged" and result.grad_norm <= 1e-10
        assert result.params.dtype == jnp.float64
        assert {h.dtype for h in result.history.values()} == {np.dtype("float64")}
        grad = jax.jit(jax.grad(_smooth_convex))(result.params)
        assert jnp.linalg.norm(grad) <= 1e-10


def test_vmap_over_starting_points_equals_sequential_calls():
    # float64, so that batched and single runs (whose float rounding differs)
    # take the same decisions and reach the same point.
    with jax.enable_x64(True):
        x0s = jnp.asarray(3 * np.random.default_rng(0).normal(size=(8, 6)))

        def solve(x0):
            return _solve_smooth_convex(x0, 1e-8)

        batched = jax.vmap(solve)(x0s)
        assert batched.status.shape == (8,)
        assert batched.history["value"].shape == (8, 1000)
        # read on the host: slicing device arrays compiles a program per shape
        params, steps, evals, statuses, values = map(
            np.asarray,
            (batched.params, batched.steps, batched.fun_evals, batched.status,
             batched.history["value"]),
        )  # fmt: skip
        for i, x0 in enumerate(np.asarray(x0s)):
            single = solve(jnp.asarray(x0))
            np.testing.assert_allclose(params[i], single.params, rtol=1e-10)
            assert (steps[i], evals[i]) == (single.steps, single.fun_evals)
            status = jol.MinimizeResult.STATUSES[statuses[i]]
            assert status == single.status == "converged"
            np.testing.assert_allclose(
                values[i, : single.steps], single.history["value"], rtol=1e-10
            )


def test_args_are_passed_to_fun_under_vmap_over_datasets_and_jit():
    x, y = _ridge_problem()
    ys = jnp.stack([y, 2 * y, -y])

    @jax.jit
    def solve(y):
        return jol.minimize(ridge, jnp.zeros(5), LBFGS, args=(x, y, 0.1), tol=1e-6)

    batched = jax.vmap(solve)(ys)
    np.testing.assert_array_equal(batched.converged, True)
    exact = jax.jit(jax.vmap(ridge_closed_form, (None, 0, None)))(x, ys, 0.1)
    np.testing.assert_allclose(batched.params, exact, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (dict(rtol=-1.0), ValueError, "rtol=-1.0"),
        (dict(atol=float("inf")), ValueError, "atol=inf"),
        (dict(diff="reverse"), ValueError, "diff='reverse'"),
        (dict(history_size=-1), ValueError, "history_size=-1"),
        (dict(history_size=2.5), TypeError, "history_size must be an integer"),
        (dict(lower=1.0, upper=0.0), ValueError, "not ordered"),
        (dict(lower=[0.0, 0.0]), ValueError, "structure of x0"),
        (dict(lower=jnp.zeros(3)), ValueError, "structure of x0|shape"),
        (dict(upper=True), TypeError, "upper must be a number"),
        (dict(atol=jnp.array([1e-3, 1e-3])), TypeError, r"atol must be a scalar"),
        (dict(tol=np.ones((1,))), TypeError, r"tol must be a scalar .* \(1,\)"),
        (dict(lower="0"), TypeError, "lower must be a number or an array, got '0'"),
        (dict(lower=b"1"), TypeError, "lower must be a number or an array, got b'1'"),
        (dict(upper=1 + 2j), TypeError, r"upper must be a number .* \(1\+2j\)"),
        (
            dict(upper=jnp.ones(2, jnp.complex64)),
            TypeError,
            "upper must be a real number .* complex64",
        ),
        (dict(lower=float("inf")), ValueError, r"lower=\[inf, inf\] is not allowed"),
        (dict(upper=-float("inf")), ValueError, r"upper=\[-inf, -inf\] is not"),
        (dict(upper=np.array([1.0, -np.inf])), ValueError, r"upper=\[1.0, -inf\]"),
    ],
)
def test_validation_of_new_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        jol.minimize(lambda x: jnp.sum(x**2), jnp.ones(2), GD, **kwargs)


@pytest.mark.parametrize("x64", [False, True])
@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("steps", 2**31),
        ("steps", 10**10),
        ("steps", 10**30),
        ("steps", np.int64(2**31)),
        ("history_size", 2**31),
        ("history_size", np.array(2**40)),
    ],
)
def test_counts_beyond_int32_are_refused(name, value, x64):
    # They used to wrap silently under x64 (steps=2**31 ran 0 steps) and
    # overflow, without naming the argument, otherwise.
    with jax.enable_x64(x64), pytest.raises(ValueError, match=rf"{name}={int(value)}"):
        jol.minimize(
            lambda x: jnp.sum(x**2), jnp.ones(2), GD, tol=1e-3, **{name: value}
        )


def test_the_largest_int32_step_limit_runs():
    f = lambda x: jnp.sum((x - 2.0) ** 2)
    result = jol.minimize(f, jnp.zeros(3), GD, steps=2**31 - 1, tol=1e-3)
    assert (result.status, result.steps) == ("converged", 40)


def test_validation_of_pytree_bounds_names_the_leaf():
    f = lambda p: jnp.sum(p["a"] ** 2)
    with pytest.raises(TypeError, match=r"lower\['a'\] must be a number .* '0'"):
        jol.minimize(f, {"a": jnp.ones(2)}, GD, lower={"a": "0"})
    with pytest.raises(ValueError, match=r"lower\['a'\]=\[0.0, inf\]"):
        jol.minimize(f, {"a": jnp.ones(2)}, GD, lower={"a": jnp.array([0.0, jnp.inf])})


def test_a_traced_tolerance_is_supported():
    # |grad| = 2 * 0.8^k <= tol: k >= 10.3 for 0.2, 34.06 for 1e-3.
    f = lambda x: jnp.sum(x**2)

    def steps(tol):
        return jol.minimize(f, jnp.array([1.0]), GD, steps=1000, tol=tol).steps

    assert int(jax.jit(steps)(1e-3)) == steps(1e-3) == 35
    np.testing.assert_array_equal(jax.vmap(steps)(jnp.array([0.2, 1e-3])), [11, 35])
    with pytest.raises(TypeError, match=r"tol must be a scalar .* \(2,\)"):
        jax.jit(steps)(jnp.ones(2))


def test_validation_under_jit_still_checks_concrete_arguments():
    with pytest.raises(ValueError, match=r"rtol=-1\.0"):
        jax.jit(lambda x0: jol.minimize(rosen, x0, LBFGS, rtol=-1.0).params)(X0)


# lbfgs once (its float64 runs are those of the other tests)
@pytest.mark.parametrize(
    ("opt", "x64"),
    [(GD, False), (GD, True), (LBFGS, False)],
    ids=["gd-float32", "gd-float64", "lbfgs-float32"],
)
def test_zero_size_leaves_in_x0_take_no_part(opt, x64):
    with jax.enable_x64(x64):
        x0 = {"a": jnp.ones(2), "empty": jnp.zeros((0, 3))}
        f = lambda x: jnp.sum((x["a"] - 3.0) ** 2) + jnp.sum(x["empty"])
        result = jol.minimize(f, x0, opt, steps=500, tol=1e-4)
    assert result.status == "converged" and result.params["empty"].shape == (0, 3)
    assert result.params["a"].dtype == (jnp.float64 if x64 else jnp.float32)
    np.testing.assert_allclose(result.params["a"], [3.0, 3.0], atol=1e-4)
