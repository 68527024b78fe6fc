"""`scale_by_zoom_linesearch`: step sizes that satisfy the strong Wolfe
conditions, found by bracketing and zooming with cubic/quadratic interpolation."""

from __future__ import annotations

from typing import Any, NamedTuple, cast

import jax
import jax.numpy as jnp
import optax

from jaxopt_lite._core import validate
from jaxopt_lite._core.recipe import recipe
from jaxopt_lite._core.tree_math import PyTree
from jaxopt_lite._transforms import linesearch


class ZoomLinesearchInfo(NamedTuple):
    """What the last zoom search did: value-and-gradient evaluations
    (``num_linesearch_steps``) and the final violations of the decrease and
    curvature conditions (0 when satisfied)."""

    num_linesearch_steps: jax.Array
    decrease_error: jax.Array
    curvature_error: jax.Array


class ScaleByZoomLinesearchState(NamedTuple):
    """The accepted step size, the value and gradient at the accepted point
    (reused by ``minimize``), and `ZoomLinesearchInfo`."""

    learning_rate: jax.Array
    value: jax.Array
    grad: PyTree
    info: ZoomLinesearchInfo


class _Point(NamedTuple):
    """A step size with the value and slope of $f$ there."""

    step: jax.Array
    value: jax.Array
    slope: jax.Array


class _Zoom(NamedTuple):
    count: jax.Array
    last: _Point  # the latest trial
    grad: PyTree  # the gradient at the latest trial
    decrease_error: jax.Array
    curvature_error: jax.Array
    bracketed: jax.Array
    done: jax.Array
    failed: jax.Array
    low: _Point
    high: _Point
    ref: _Point  # the third point of the cubic (its slope is unused)
    safe: _Point  # the best step with sufficient decrease so far (0: none)
    safe_grad: PyTree


def _cubic_min(a: _Point, b: _Point, c: _Point) -> jax.Array:
    """The local minimizer of the cubic through ``a`` (value, slope), ``b``
    and ``c`` (values); NaN when it has none."""
    db, dc = b.step - a.step, c.step - a.step
    denom = (db * dc) ** 2 * (db - dc)
    rows = jnp.array([[dc**2, -(db**2)], [-(dc**3), db**3]])
    rhs = jnp.array(
        [b.value - a.value - a.slope * db, c.value - a.value - a.slope * dc]
    )
    p, q = jnp.dot(rows, rhs, precision=jax.lax.Precision.HIGHEST) / denom
    return a.step + (-q + jnp.sqrt(q * q - 3.0 * p * a.slope)) / (3.0 * p)


def _quad_min(a: _Point, b: _Point) -> jax.Array:
    """The minimizer of the parabola through ``a`` (value, slope) and ``b``."""
    db = b.step - a.step
    curv = (b.value - a.value - a.slope * db) / (db**2)
    return a.step - a.slope / (2.0 * curv)


@recipe(static=("max_linesearch_steps",))
def scale_by_zoom_linesearch(
    max_linesearch_steps: int,
    max_learning_rate: float | None = None,
    tol: float = 0.0,
    increase_factor: float = 2.0,
    slope_rtol: float = 1e-4,
    curv_rtol: float = 0.9,
    approx_dec_rtol: float | None = 1e-6,
    stepsize_precision: float = 1e-5,
    initial_guess_strategy: str = "keep",
    verbose: bool = False,
) -> optax.GradientTransformationExtraArgs:
    r"""Scale the direction by a step size satisfying the strong Wolfe conditions.

    $$
    \phi(\eta) = f(w + \eta u):\quad
    \phi(\eta) \le \phi(0) + c_1 \eta\, \phi'(0), \qquad
    |\phi'(\eta)| \le c_2 |\phi'(0)|
    $$

    Algorithms 3.5 and 3.6 of Nocedal and Wright: grow the step by
    ``increase_factor`` until an interval holding an acceptable step is
    bracketed, then shrink it with cubic, quadratic or bisection trials. With
    ``approx_dec_rtol`` the decrease condition is relaxed to Hager and Zhang's
    approximate Wolfe condition
    $\phi'(\eta) \le (2c_1 - 1)\phi'(0)$ and
    $\phi(\eta) \le \phi(0) + \epsilon |\phi(0)|$, which helps near the
    optimum in finite precision. If ``max_linesearch_steps`` trials find no
    acceptable step, the best step with sufficient decrease is taken (or the
    last trial when there is none). Each trial evaluates value and gradient
    once; the state keeps them at the accepted point, so ``minimize`` does
    not evaluate them again.

    Args:
        max_linesearch_steps: the most trials, an integer in [1, 2**31 - 1].
        max_learning_rate: the largest step tried, > 0 (``None``: no cap).
        tol: slack on both conditions (>= 0).
        increase_factor: growth of the trial step while bracketing (> 1).
        slope_rtol: $c_1$ in $[0, 1)$ (0: any decrease will do).
        curv_rtol: $c_2$ in $(c_1, 1)$.
        approx_dec_rtol: $\epsilon \ge 0$ of the approximate condition, or
            ``None`` for the Armijo condition alone.
        stepsize_precision: give up (taking a safe step) once the interval is
            shorter than this (>= 0).
        initial_guess_strategy: ``"keep"`` (start from the previous step size)
            or ``"one"`` (start from 1, best for quasi-Newton directions).
        verbose: print a message when the search ends without an acceptable
            step.

    Returns:
        An ``optax.GradientTransformationExtraArgs`` whose ``update`` needs the
        keywords ``value``, ``grad`` and ``value_fn`` (``minimize`` passes them).

    Example:
        >>> import jax, jax.numpy as jnp, jaxopt_lite as jol
        >>> f = lambda x: jnp.sum((x - 1.0) ** 2)
        >>> ls = jol.scale_by_zoom_linesearch(20)
        >>> x = jnp.zeros(2)
        >>> g = jax.grad(f)(x)
        >>> u, state = ls.update(-g, ls.init(x), x, value=f(x), grad=g,
        ...                      value_fn=f)
        >>> x + u, state.info.num_linesearch_steps
        (Array([1., 1.], dtype=float32), Array(2, dtype=int32))

    References:
        J. Nocedal and S. J. Wright, *Numerical Optimization*, 2nd ed.,
        Springer, 2006, Algorithms 3.5 and 3.6.

        W. W. Hager and H. Zhang, *Algorithm 851: CG_DESCENT*, ACM TOMS, 2006.
    """
    validate.check_count("max_linesearch_steps", max_linesearch_steps)
    if max_learning_rate is not None:
        validate.check_range(
            "max_learning_rate", max_learning_rate, 0.0, low_closed=False
        )
    validate.check_range("increase_factor", increase_factor, 1.0, low_closed=False)
    validate.check_range("slope_rtol", slope_rtol, 0.0, 1.0, high_closed=False)
    validate.check_range(
        "curv_rtol", curv_rtol, 0.0, 1.0, low_closed=False, high_closed=False
    )
    validate.check_less("slope_rtol", slope_rtol, "curv_rtol", curv_rtol, strict=True)
    validate.check_nonnegative("tol", tol)
    validate.check_nonnegative("stepsize_precision", stepsize_precision)
    if approx_dec_rtol is not None:
        validate.check_nonnegative("approx_dec_rtol", approx_dec_rtol)
    if initial_guess_strategy not in ("keep", "one"):
        raise ValueError(
            f"initial_guess_strategy={initial_guess_strategy!r} is not allowed: it "
            "must be 'keep' or 'one'."
        )
    validate.check_bool("verbose", verbose)

    def errors(pt: _Point, init: _Point) -> tuple[jax.Array, jax.Array]:
        dec = pt.value - init.value - slope_rtol * pt.step * init.slope
        if approx_dec_rtol is not None:
            approx = jnp.maximum(
                pt.slope - (2 * slope_rtol - 1.0) * init.slope,
                pt.value - init.value - approx_dec_rtol * jnp.abs(init.value),
            )
            dec = jnp.minimum(approx, dec)
        curv = jnp.abs(pt.slope) - curv_rtol * jnp.abs(init.slope)
        return (
            linesearch.nan_to_inf(jnp.maximum(dec, 0.0)),
            linesearch.nan_to_inf(jnp.maximum(curv, 0.0)),
        )

    def init_fn(params):
        dtype = linesearch.real_dtype(params)
        inf = jnp.asarray(jnp.inf, dtype)
        return ScaleByZoomLinesearchState(
            learning_rate=jnp.asarray(1.0, dtype),
            value=inf,
            grad=optax.tree.zeros_like(params),
            info=ZoomLinesearchInfo(jnp.zeros([], jnp.int32), inf, inf),
        )

    def update_fn(
        updates, state, params=None, *, value=None, grad=None, value_fn=None,
        **extra_args,
    ):  # fmt: skip
        linesearch.check_update_inputs(
            "scale_by_zoom_linesearch", params, value, grad, value_fn
        )
        dtype = linesearch.real_dtype(params)
        fn = jax.tree_util.Partial(
            value_fn,
            **linesearch.fn_kwargs("scale_by_zoom_linesearch", value_fn, extra_args),
        )
        value_and_grad = jax.value_and_grad(fn)
        p, d, f0, g0 = jax.lax.stop_gradient((params, updates, value, cast(Any, grad)))
        f0 = jnp.asarray(f0, dtype)
        zero = jnp.zeros([], dtype)
        init = _Point(zero, f0, optax.tree.real(optax.tree.vdot(d, g0)))
        if initial_guess_strategy == "one":
            guess = jnp.ones([], dtype)
        else:
            guess = jax.lax.stop_gradient(jnp.asarray(state.learning_rate, dtype))

        def trial(step, c: _Zoom):
            new_value, new_grad = value_and_grad(optax.tree.add_scale(p, step, d))
            new_grad = optax.tree.cast_like(new_grad, g0)
            slope = optax.tree.real(optax.tree.vdot(optax.tree.conj(new_grad), d))
            pt = _Point(step, jnp.asarray(new_value, dtype), slope.astype(dtype))
            dec, curv = errors(pt, init)
            return pt, new_grad, dec, curv, jnp.maximum(dec, curv) <= tol

        def bracket(c: _Zoom) -> _Zoom:
            step = jnp.where(c.count == 0, guess, increase_factor * c.last.step)
            capped = jnp.asarray(False)
            if max_learning_rate is not None:
                capped = step >= max_learning_rate
                step = jnp.minimum(step, max_learning_rate)
            pt, g, dec, curv, ok = trial(step, c)
            sufficient = dec <= tol
            safe, safe_grad = optax.tree.where(
                sufficient, (pt, g), (c.safe, c.safe_grad)
            )
            to_high = (dec > 0.0) | ((pt.value >= c.last.value) & (c.count > 0))
            to_low = (pt.slope >= 0.0) & ~to_high
            low, high = optax.tree.where(to_low, (pt, c.last), (c.last, pt))
            bracketed = to_high | to_low | ok
            done = ok | (capped & ~bracketed)
            return _Zoom(
                c.count + 1, pt, g, dec, curv, bracketed, done,
                (c.count + 1 >= max_linesearch_steps) & ~done,
                low, high, low, safe, safe_grad,
            )  # fmt: skip

        def zoom(c: _Zoom) -> _Zoom:
            low, high = c.low, c.high
            width = jnp.abs(high.step - low.step)
            left = jnp.minimum(high.step, low.step)
            right = jnp.maximum(high.step, low.step)
            cubic = _cubic_min(low, high, c.ref)
            use_cubic = (cubic > left + 0.2 * width) & (cubic < right - 0.2 * width)
            quad = _quad_min(low, high)
            use_quad = ~use_cubic & (quad > left + 0.1 * width)
            use_quad &= quad < right - 0.1 * width
            middle = jnp.where(use_cubic, cubic, c.ref.step)
            middle = jnp.where(use_quad, quad, middle)
            middle = jnp.where(
                ~use_cubic & ~use_quad, (low.step + high.step) / 2.0, middle
            )
            pt, g, dec, curv, ok = trial(middle, c)
            better = (dec <= tol) & (pt.value < c.safe.value)
            safe, safe_grad = optax.tree.where(better, (pt, g), (c.safe, c.safe_grad))
            mid_is_high = (dec > 0.0) | (pt.value >= low.value)
            low_is_high = (pt.slope * (high.step - low.step) >= 0.0) & ~mid_is_high
            new_high = optax.tree.where(mid_is_high, pt, high)
            new_high = optax.tree.where(low_is_high, low, new_high)
            new_low = optax.tree.where(mid_is_high, low, pt)
            ref = optax.tree.where(mid_is_high | low_is_high, high, low)
            give_up = (c.count + 1 >= max_linesearch_steps) | (
                (width <= stepsize_precision) & (safe.step > 0.0)
            )
            return _Zoom(
                c.count + 1, pt, g, dec, curv, c.bracketed, ok, give_up & ~ok,
                new_low, new_high, ref, safe, safe_grad,
            )  # fmt: skip

        def fall_back(c: _Zoom) -> _Zoom:
            use_safe = (c.safe.step > 0.0) | jnp.isinf(c.decrease_error)
            last, g = optax.tree.where(
                use_safe, (c.safe, c.safe_grad), (c.last, c.grad)
            )
            return c._replace(last=last, grad=g)

        def body(c: _Zoom) -> _Zoom:
            c = jax.lax.cond(c.bracketed, zoom, bracket, c)
            return jax.lax.cond(c.failed, fall_back, lambda c: c, c)

        inf = jnp.asarray(jnp.inf, dtype)
        start = _Zoom(
            jnp.zeros([], jnp.int32), init, g0, inf, inf, jnp.asarray(False),
            jnp.asarray(False), jnp.asarray(False), init, init, init, init, g0,
        )  # fmt: skip
        c = jax.lax.while_loop(lambda c: ~(c.done | c.failed), body, start)
        if verbose:
            jax.lax.cond(
                c.failed,
                lambda: jax.debug.print(
                    "jaxopt_lite.scale_by_zoom_linesearch: no step satisfied "
                    "the Wolfe conditions in {n} trials (decrease error {d}, "
                    "curvature error {k}); taking step size {s}.",
                    n=c.count,
                    d=c.decrease_error,
                    k=c.curvature_error,
                    s=c.last.step,
                ),
                lambda: None,
            )
        info = ZoomLinesearchInfo(c.count, c.decrease_error, c.curvature_error)
        new_state = ScaleByZoomLinesearchState(c.last.step, c.last.value, c.grad, info)
        return optax.tree.scale(c.last.step, updates), new_state

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)
