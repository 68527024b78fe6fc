"""Line searches: the Wolfe and Armijo conditions hold, optax parity, counts."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxopt_lite as jol


def rosenbrock(x):
    return jnp.sum(100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)


def _points(n, dim=6, seed=0):
    # NumPy's generator: jax.random compiles a program per shape
    rng = np.random.default_rng(seed)
    return jnp.asarray(rng.normal(size=(n, dim)))  # float64 under x64


def _one_search(ls, f, x, d):
    value, grad = jax.value_and_grad(f)(x)
    updates, state = ls.update(d, ls.init(x), x, value=value, grad=grad, value_fn=f)
    return value, grad, updates, state


def test_zoom_step_satisfies_the_strong_wolfe_conditions():
    c1, c2 = 1e-4, 0.9
    ls = jol.scale_by_zoom_linesearch(
        30, slope_rtol=c1, curv_rtol=c2, approx_dec_rtol=None
    )
    xs = _points(6)
    ds = -jax.vmap(jax.grad(rosenbrock))(xs) * 1e-3  # descent, badly scaled
    values, grads, updates, states = jax.jit(
        jax.vmap(lambda x, d: _one_search(ls, rosenbrock, x, d))
    )(xs, ds)
    new_values, new_grads = jax.jit(jax.vmap(jax.value_and_grad(rosenbrock)))(
        xs + updates
    )
    eta = np.asarray(states.learning_rate)[:, None]
    slope0 = np.sum(np.asarray(grads) * np.asarray(ds), axis=1)
    assert np.all(eta > 0)
    np.testing.assert_allclose(updates, eta * ds, rtol=1e-6)
    # Armijo: f(x + eta d) <= f(x) + c1 eta <g, d>
    assert np.all(new_values <= values + c1 * eta[:, 0] * slope0)
    # strong curvature: |<g(x + eta d), d>| <= c2 |<g, d>|
    new_slopes = np.sum(np.asarray(new_grads) * np.asarray(ds), axis=1)
    assert np.all(np.abs(new_slopes) <= c2 * np.abs(slope0))
    # the state holds the value and gradient at the accepted point
    np.testing.assert_allclose(states.value, new_values, rtol=1e-6)
    np.testing.assert_allclose(states.grad, new_grads, rtol=1e-5)
    np.testing.assert_array_equal(states.info.decrease_error, 0.0)
    np.testing.assert_array_equal(states.info.curvature_error, 0.0)


@pytest.mark.parametrize("seed", range(5))
def test_backtracking_step_is_the_first_armijo_step(seed):
    c, beta = 1e-4, 0.5
    ls = jol.scale_by_backtracking_linesearch(
        40, slope_rtol=c, decrease_factor=beta, store_grad=True
    )
    x = _points(1, seed=seed)[0]
    d = -jax.grad(rosenbrock)(x)
    value, grad, updates, state = _one_search(ls, rosenbrock, x, d)
    slope = float(grad @ d)
    # Brute force: the largest eta = beta^k (starting at min(1.5 * 1, 1) = 1)
    # that satisfies the Armijo condition.
    k = next(
        k
        for k in range(41)
        if float(rosenbrock(x + jnp.float32(beta**k) * d))
        <= float(value) + beta**k * c * slope
    )
    np.testing.assert_allclose(state.learning_rate, beta**k, rtol=1e-6)
    assert int(state.info.num_linesearch_steps) == k + 1
    np.testing.assert_allclose(state.value, rosenbrock(x + updates), rtol=1e-6)
    np.testing.assert_allclose(state.grad, jax.grad(rosenbrock)(x + updates), rtol=1e-5)


# The zoom search's defaults (but the initial guess) are lbfgs's, whose
# iterates test_lbfgs compares with optax's; here the branches they leave out.
LINESEARCHES = [
    ("zoom", dict(max_linesearch_steps=3, max_learning_rate=0.01)),
    (
        "zoom",
        dict(max_linesearch_steps=20, approx_dec_rtol=None, curv_rtol=0.1, tol=1e-3),
    ),
    ("backtracking", dict(max_backtracking_steps=3, store_grad=True)),
    (
        "backtracking",
        dict(max_backtracking_steps=30, increase_factor=2.0, max_learning_rate=3.0),
    ),
]


def _make(lib, kind, kwargs):
    if kind == "zoom":
        return lib.scale_by_zoom_linesearch(**kwargs)
    return lib.scale_by_backtracking_linesearch(**kwargs)


@pytest.mark.parametrize(("kind", "kwargs"), LINESEARCHES)
def test_matches_optax_over_repeated_steepest_descent(kind, kwargs):
    def run(ls):
        opt = optax.chain(optax.scale(-1.0), ls)

        def step(carry, _):
            x, state = carry
            value, grad = jax.value_and_grad(rosenbrock)(x)
            u, state = opt.update(
                grad, state, x, value=value, grad=grad, value_fn=rosenbrock
            )
            info = state[1].info
            return (x + u, state), (x + u, info.num_linesearch_steps)

        x0 = _points(1)[0]
        return jax.jit(lambda x0: jax.lax.scan(step, (x0, opt.init(x0)), length=15)[1])(
            x0
        )

    ours, theirs = run(_make(jol, kind, kwargs)), run(_make(optax, kind, kwargs))
    np.testing.assert_allclose(ours[0], theirs[0], rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(ours[1], theirs[1])


def test_float64_state_and_values():
    with jax.enable_x64(True):
        x = jnp.linspace(-1.0, 1.0, 4, dtype=jnp.float64)
        for ls in (
            jol.scale_by_zoom_linesearch(10),
            jol.scale_by_backtracking_linesearch(10, store_grad=True),
        ):
            _, _, updates, state = jax.jit(
                lambda x, ls=ls: _one_search(
                    ls, rosenbrock, x, -jax.grad(rosenbrock)(x)
                )
            )(x)
            dtypes = {a.dtype for a in jax.tree.leaves(state) if a.dtype.kind == "f"}
            assert dtypes == {jnp.dtype("float64")} and updates.dtype == jnp.float64


def test_non_finite_trials_give_a_step_size_of_zero():
    f = lambda x: jnp.sum(jnp.log(x))
    ls = jol.scale_by_backtracking_linesearch(3, decrease_factor=0.9)
    x = jnp.array([1.0])
    _, _, updates, state = _one_search(ls, f, x, jnp.array([-10.0]))
    assert float(state.learning_rate) == 0.0 and float(updates[0]) == 0.0


def test_extra_arguments_reach_value_fn():
    def f(x, scale):
        return scale * jnp.sum(x**2)

    x = jnp.array([1.0, -1.0])
    value, grad = jax.value_and_grad(f)(x, 2.0)

    @jax.jit
    def search(x):
        out = []
        for ls in (
            jol.scale_by_backtracking_linesearch(10, store_grad=True),
            optax.scale_by_backtracking_linesearch(10, store_grad=True),
        ):
            out.append(
                ls.update(
                    -grad, ls.init(x), x, value=value, grad=grad, value_fn=f,
                    scale=2.0,
                )
            )  # fmt: skip
        return out

    (u, state), (u2, _) = search(x)
    np.testing.assert_allclose(u, u2)
    np.testing.assert_allclose(state.grad, jax.grad(f)(x + u, 2.0))
    np.testing.assert_allclose(state.value, f(x + u, 2.0))


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: jol.scale_by_zoom_linesearch(0), "max_linesearch_steps=0"),
        (lambda: jol.scale_by_zoom_linesearch(2.5), "max_linesearch_steps must be"),
        (lambda: jol.scale_by_zoom_linesearch(5, curv_rtol=1.5), "curv_rtol=1.5"),
        (lambda: jol.scale_by_zoom_linesearch(5, slope_rtol=-0.1), "slope_rtol=-0.1"),
        (
            lambda: jol.scale_by_zoom_linesearch(10, slope_rtol=0.5, curv_rtol=0.1),
            r"curv_rtol=0.1 is not allowed: it must be larger than slope_rtol=0.5",
        ),
        (
            lambda: jol.scale_by_zoom_linesearch(10, slope_rtol=0.3, curv_rtol=0.3),
            "curv_rtol=0.3 is not allowed: it must be larger than slope_rtol=0.3",
        ),
        (lambda: jol.scale_by_zoom_linesearch(5, increase_factor=1.0), "increase"),
        (lambda: jol.scale_by_zoom_linesearch(5, max_learning_rate=0.0), "max_lea"),
        (lambda: jol.scale_by_zoom_linesearch(5, tol=-1.0), "tol=-1.0"),
        (
            lambda: jol.scale_by_zoom_linesearch(5, initial_guess_strategy="two"),
            "initial_guess_strategy='two'",
        ),
        (lambda: jol.scale_by_zoom_linesearch(5, verbose=1), "verbose"),
        (lambda: jol.scale_by_backtracking_linesearch(-1), "max_backtracking_steps"),
        (
            lambda: jol.scale_by_backtracking_linesearch(2**31),
            r"max_backtracking_steps=2147483648 .* \[0, 2147483647\]",
        ),
        (
            lambda: jol.scale_by_zoom_linesearch(2**31),
            r"max_linesearch_steps=2147483648 .* \[1, 2147483647\]",
        ),
        (
            lambda: jol.scale_by_backtracking_linesearch(5, decrease_factor=1.0),
            "decrease_factor=1.0",
        ),
        (
            lambda: jol.scale_by_backtracking_linesearch(5, increase_factor=0.5),
            "increase_factor=0.5",
        ),
        (lambda: jol.scale_by_backtracking_linesearch(5, atol=-1.0), "atol=-1.0"),
        (lambda: jol.scale_by_backtracking_linesearch(5, store_grad=None), "store"),
    ],
)
def test_validation(make, match):
    with pytest.raises((ValueError, TypeError), match=match):
        make()


def test_verbose_reports_a_failed_search(capfd):
    ls = jol.scale_by_backtracking_linesearch(2, verbose=True)
    x = jnp.array([1.0])
    f = lambda x: jnp.sum(x**2)
    jax.block_until_ready(_one_search(ls, f, x, jnp.array([1.0])))  # ascent
    assert "no step size gave a sufficient decrease" in capfd.readouterr().out


def test_unused_extra_arguments_are_refused_as_optax_refuses_them():
    f = lambda x: jnp.sum(x**2)
    x = jnp.array([1.0, -1.0])
    value, grad = jax.value_and_grad(f)(x)
    for lib in (jol, optax):  # both raise: the argument reaches no function
        for ls in (
            lib.scale_by_zoom_linesearch(5),
            lib.scale_by_backtracking_linesearch(5),
        ):
            with pytest.raises(
                TypeError, match=r"Unexpected keyword arguments.*unused"
            ):
                ls.update(
                    -grad, ls.init(x), x, value=value, grad=grad, value_fn=f,
                    unused=1.0,
                )  # fmt: skip


@pytest.mark.parametrize("kind", ["zoom", "backtracking"])
def test_slope_rtol_zero_asks_for_any_decrease_as_in_optax(kind):
    kwargs = {"zoom": dict(max_linesearch_steps=20, slope_rtol=0.0)}.get(
        kind, dict(max_backtracking_steps=80, slope_rtol=0.0)
    )
    x = _points(1)[0]

    @jax.jit
    def updates(x):
        value, grad = jax.value_and_grad(rosenbrock)(x)
        return value, [
            _make(lib, kind, kwargs).update(
                -grad, _make(lib, kind, kwargs).init(x), x, value=value, grad=grad,
                value_fn=rosenbrock,
            )[0]
            for lib in (jol, optax)
        ]  # fmt: skip

    value, (ours, theirs) = updates(x)
    np.testing.assert_allclose(ours, theirs, rtol=1e-6)
    assert rosenbrock(x + ours) < value


@pytest.mark.parametrize("x64", [False, True])
@pytest.mark.parametrize("kind", ["zoom", "backtracking"])
def test_the_rate_set_with_optax_tree_set_is_used_as_optax_uses_it(kind, x64):
    # optax.tree.set(state, learning_rate=...) also reaches the line search's
    # own `learning_rate` field, as a Python float: the next update must run.
    def run(lib):
        if kind == "zoom":
            opt = lib.inject_hyperparams(lib.lbfgs)(learning_rate=0.5)
        else:
            opt = lib.inject_hyperparams(
                lambda learning_rate: lib.chain(
                    lib.sgd(learning_rate),
                    lib.scale_by_backtracking_linesearch(10, increase_factor=2.0),
                )
            )(learning_rate=0.5)
        x = _points(1)[0]
        state = optax.tree.set(opt.init(x), learning_rate=0.25)

        def update():
            value, grad = jax.value_and_grad(rosenbrock)(x)
            return opt.update(
                grad, state, x, value=value, grad=grad, value_fn=rosenbrock
            )[0]

        # Ours jitted (one program, not op by op), with the state closed over
        # so that the Python float stays one; optax's only runs eagerly (its
        # zoom search branches in Python on the traced rate).
        return jax.jit(update)() if lib is jol else update()

    with jax.enable_x64(x64):
        ours, theirs = run(jol), run(optax)
    assert ours.dtype == (jnp.float64 if x64 else jnp.float32)
    np.testing.assert_allclose(ours, theirs, rtol=1e-12 if x64 else 1e-6)


@pytest.mark.parametrize("kind", ["zoom", "backtracking"])
def test_bfloat16_params_with_float32_hyper_parameters(kind):
    # Array hyper-parameters of a wider dtype must not change the dtypes the
    # search loop carries; the step is the one found in float32 (optax's
    # updates come back in float32).
    f = lambda x: jnp.sum((x - 1.0) ** 2)
    half = jnp.float32(0.5)
    if kind == "zoom":
        opt = lambda lib: lib.lbfgs(learning_rate=jnp.float32(1.0))
    else:
        opt = lambda lib: lib.chain(
            lib.sgd(jnp.float32(1.0)),
            lib.scale_by_backtracking_linesearch(10, decrease_factor=half),
        )
    x = jnp.array([0.0, 0.5, 3.0], jnp.bfloat16)

    @jax.jit
    def updates(x):
        value, grad = jax.value_and_grad(f)(x)
        return [
            opt(lib).update(
                grad, opt(lib).init(x), x, value=value, grad=grad, value_fn=f
            )[0]
            for lib in (jol, optax)
        ]

    ours, theirs = updates(x)
    assert ours.dtype == jnp.bfloat16 and theirs.dtype == jnp.float32
    np.testing.assert_array_equal(ours, theirs.astype(jnp.bfloat16))
