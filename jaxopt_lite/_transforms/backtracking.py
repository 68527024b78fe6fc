"""`scale_by_backtracking_linesearch`: step sizes that satisfy Armijo's
sufficient-decrease condition, found by shrinking."""

from __future__ import annotations

from typing import Any, NamedTuple, cast

import jax
import jax.numpy as jnp
import optax

from jaxopt_lite._core import validate
from jaxopt_lite._core.recipe import recipe
from jaxopt_lite._transforms import linesearch


class BacktrackingLinesearchInfo(NamedTuple):
    """What the last backtracking search did: evaluations of ``value_fn``
    (``num_linesearch_steps``) and the final sufficient-decrease violation
    (0 when satisfied)."""

    num_linesearch_steps: jax.Array
    decrease_error: jax.Array


class ScaleByBacktrackingLinesearchState(NamedTuple):
    """The accepted step size, the value (and, with ``store_grad``, the
    gradient) at the accepted point, and `BacktrackingLinesearchInfo`."""

    learning_rate: jax.Array
    value: jax.Array
    grad: Any  # None without store_grad
    info: BacktrackingLinesearchInfo


@recipe(static=("max_backtracking_steps",))
def scale_by_backtracking_linesearch(
    max_backtracking_steps: int,
    slope_rtol: float = 1e-4,
    decrease_factor: float = 0.8,
    increase_factor: float = 1.5,
    max_learning_rate: float = 1.0,
    atol: float = 0.0,
    rtol: float = 0.0,
    store_grad: bool = False,
    verbose: bool = False,
) -> optax.GradientTransformationExtraArgs:
    r"""Scale the direction by a step size with sufficient decrease (Armijo).

    $$
    f(w + \eta u) \le (1 + \delta) f(w) + c\, \eta \langle u, \nabla f(w)
    \rangle + \epsilon, \qquad \eta \in \{\eta_0, \beta\eta_0, \beta^2\eta_0,
    \dots\}, \quad \eta_0 = \min(\gamma\,\eta_{\text{prev}}, \eta_{\max})
    $$

    Tries at most ``max_backtracking_steps + 1`` step sizes, shrinking by
    $\beta$ (``decrease_factor``) until the condition holds. A step whose value
    is not finite gives a step size of 0. The value at the accepted point (and
    its gradient with ``store_grad``) is kept in the state for reuse.

    Args:
        max_backtracking_steps: the most step-size reductions, an integer in
            [0, 2**31 - 1].
        slope_rtol: $c \in [0, 1]$, the fraction of the linear decrease
            required (0: any decrease will do).
        decrease_factor: $\beta$ in $(0, 1)$.
        increase_factor: $\gamma \ge 1$: the first trial is the previous step
            size times this (``math.inf``: start at $\eta_{\max}$ every time).
        max_learning_rate: $\eta_{\max} > 0$.
        atol: $\epsilon$, an absolute slack in the condition (>= 0).
        rtol: $\delta$, a relative slack in the condition (>= 0).
        store_grad: also compute the gradient at the accepted point.
        verbose: print a message when no step size satisfies the condition.

    Returns:
        An ``optax.GradientTransformationExtraArgs`` whose ``update`` needs the
        keywords ``value``, ``grad`` and ``value_fn`` (``minimize`` passes them).

    Example:
        >>> import jax, jax.numpy as jnp, jaxopt_lite as jol
        >>> f = lambda x: jnp.sum(x**2)
        >>> opt = jol.chain(jol.sgd(1.0),
        ...                 jol.scale_by_backtracking_linesearch(15))
        >>> x = jnp.array([1.0, 2.0])
        >>> u, _ = opt.update(jax.grad(f)(x), opt.init(x), x,
        ...                   value=f(x), grad=jax.grad(f)(x), value_fn=f)
        >>> x + u
        Array([-0.6, -1.2], dtype=float32)

    References:
        L. Armijo, *Minimization of functions having Lipschitz continuous first
        partial derivatives*, Pacific J. Math., 1966.
    """
    validate.check_count("max_backtracking_steps", max_backtracking_steps, minimum=0)
    validate.check_range("slope_rtol", slope_rtol, 0.0, 1.0)
    validate.check_range(
        "decrease_factor", decrease_factor, 0.0, 1.0, low_closed=False,
        high_closed=False,
    )  # fmt: skip
    if not (isinstance(increase_factor, float) and increase_factor == float("inf")):
        validate.check_range("increase_factor", increase_factor, 1.0)
    validate.check_range("max_learning_rate", max_learning_rate, 0.0, low_closed=False)
    validate.check_nonnegative("atol", atol)
    validate.check_nonnegative("rtol", rtol)
    validate.check_bool("store_grad", store_grad)
    validate.check_bool("verbose", verbose)

    def init_fn(params):
        dtype = linesearch.real_dtype(params)
        return ScaleByBacktrackingLinesearchState(
            learning_rate=jnp.asarray(1.0, dtype),
            value=jnp.asarray(jnp.inf, dtype),
            grad=optax.tree.zeros_like(params) if store_grad else None,
            info=BacktrackingLinesearchInfo(
                jnp.zeros([], jnp.int32), jnp.asarray(jnp.inf, dtype)
            ),
        )

    def update_fn(
        updates, state, params=None, *, value=None, grad=None, value_fn=None,
        **extra_args,
    ):  # fmt: skip
        linesearch.check_update_inputs(
            "scale_by_backtracking_linesearch", params, value, grad, value_fn
        )
        dtype = linesearch.real_dtype(params)
        fn = jax.tree_util.Partial(
            value_fn,
            **linesearch.fn_kwargs(
                "scale_by_backtracking_linesearch", value_fn, extra_args
            ),
        )
        p, d, f0, g0 = jax.lax.stop_gradient((params, updates, value, cast(Any, grad)))
        f0 = jnp.asarray(f0, dtype)
        slope = optax.tree.real(optax.tree.vdot(d, optax.tree.conj(g0)))

        def violation(rate, new_value):
            err = new_value - (1.0 + rtol) * f0 - rate * slope_rtol * slope
            return jnp.maximum(linesearch.nan_to_inf(err), 0.0)

        def keep_going(c):
            return ~(c[3] <= atol) & (c[4] <= max_backtracking_steps)

        def body(c):
            rate, _, new_grad, _, i = c
            rate = jnp.where(i > 0, decrease_factor * rate, rate).astype(dtype)
            trial = optax.tree.add_scale(p, rate, d)
            if store_grad:
                new_value, pullback = jax.vjp(fn, trial)
                err = violation(rate, new_value)
                new_grad = jax.lax.cond(
                    (err <= atol) | (i == max_backtracking_steps),
                    lambda: optax.tree.cast_like(
                        pullback(jnp.ones_like(new_value))[0], new_grad
                    ),
                    lambda: new_grad,
                )
            else:
                new_value = fn(trial)
                err = violation(rate, new_value)
            new_value = jnp.asarray(new_value, dtype)
            return rate, new_value, new_grad, err.astype(dtype), i + 1

        rate0 = jnp.minimum(
            increase_factor * jnp.asarray(state.learning_rate, dtype), max_learning_rate
        )
        init = (
            rate0.astype(dtype),
            f0,
            optax.tree.zeros_like(p) if store_grad else None,
            jnp.asarray(jnp.inf, dtype),
            jnp.zeros([], jnp.int32),
        )
        rate, new_value, new_grad, err, steps = jax.lax.while_loop(
            keep_going, body, init
        )
        if verbose:
            jax.lax.cond(
                err > atol,
                lambda: jax.debug.print(
                    "jaxopt_lite.scale_by_backtracking_linesearch: no step size "
                    "gave a sufficient decrease (step size {r}, error {e}).",
                    r=rate,
                    e=err,
                ),
                lambda: None,
            )
        rate = jnp.where(jnp.isinf(err), jnp.zeros_like(rate), rate)
        new_state = ScaleByBacktrackingLinesearchState(
            rate, new_value, new_grad, BacktrackingLinesearchInfo(steps, err)
        )
        return optax.tree.scale(rate, updates), new_state

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)
