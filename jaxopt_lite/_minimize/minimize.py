"""`minimize`: full-batch, deterministic optimization in one compiled loop."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple, cast

import jax
import optax

from jaxopt_lite._core import validate
from jaxopt_lite._host import programs
from jaxopt_lite._loop import full_batch, implicit, lbfgsb
from jaxopt_lite._minimize import checks, result
from jaxopt_lite._minimize.lbfgsb import LBFGSB, check_use
from jaxopt_lite._minimize.result import MinimizeResult

PyTree = Any


class Program(NamedTuple):
    """The static part of `minimize`'s program."""

    fun: programs.Static  # the objective, its array leaves as inputs
    optimizer: programs.Static  # its recipe tree or `LBFGSB`, numbers as inputs
    cfg: full_batch.Config
    with_args: bool
    implicit: bool


@functools.partial(jax.jit, static_argnums=0)
def minimize_loop(
    program: Program, fun_inputs, opt_inputs, x0, args, tols, lower, upper
):
    """The compiled loop: params, opt_state, aux and the packed rest."""
    cfg = program.cfg

    def call(fun_inputs, x, args):
        fun = cast(Callable, programs.combine(program.fun, fun_inputs))
        return fun(x, args) if program.with_args else fun(x)

    # The problem's data, theta, is what the solution is differentiated with
    # respect to: args, the array leaves of a pytree-callable fun, and the
    # tracers fun closes over (hoisted by closure conversion). Everything
    # reaches the loop as an explicit input, never through a closure (see
    # `implicit.with_implicit_gradient`).
    converted, hoisted = jax.closure_convert(
        lambda x, a, f: call(f, x, a), x0, args, fun_inputs
    )
    theta = (args, fun_inputs, hoisted)

    def objective(x, t):
        return converted(x, t[0], t[1], *t[2])

    def loop(opt_inputs, theta, x0, tols, lower, upper):
        optimizer = programs.join_optimizer(program.optimizer, opt_inputs)
        if isinstance(optimizer, LBFGSB):  # L-BFGS-B runs its own iteration
            return lbfgsb.lbfgsb_loop(
                objective, optimizer, cfg, x0, theta, tols, lower, upper
            )
        return full_batch.full_batch_loop(
            objective, optax.with_extra_args_support(optimizer), cfg,
            x0, theta, tols, lower, upper,
        )  # fmt: skip

    if program.implicit:
        value = (lambda x, t: objective(x, t)[0]) if cfg.has_aux else objective
        loop = implicit.with_implicit_gradient(loop, value, cfg.bounded)
    final = loop(opt_inputs, theta, x0, tols, lower, upper)
    # Only what the result holds: every output costs time on each call.
    return final.params, final.opt_state, final.aux, result.pack(final)


def minimize(
    fun: Callable[..., jax.Array],
    x0: PyTree,
    optimizer: optax.GradientTransformation | LBFGSB,
    *,
    args: Any = None,
    steps: int = 1000,
    tol: float | None = None,
    rtol: float | None = None,
    atol: float | None = None,
    lower: Any = None,
    upper: Any = None,
    has_aux: bool = False,
    diff: str = "implicit",
    history_size: int = 10_000,
) -> MinimizeResult:
    r"""Minimize a deterministic function with full-batch steps, compiled whole.

    $$
    x_{k+1} = P\bigl(x_k + \mathrm{update}(\nabla f(x_k), f, x_k)\bigr),
    \qquad \text{until } \lVert \nabla f(x_k) \rVert_2 \le \mathrm{tol}
    \text{ or } |f_k - f_{k-1}| \le a + r |f_k| \text{ and }
    |x_k - x_{k-1}| \le a + r |x_k|
    $$

    The loop runs as one ``lax.while_loop`` inside ``jax.jit``. Each iteration calls
    ``optimizer.update(grad, state, params, value=, grad=, value_fn=)``, so line
    searches (`lbfgs`, `scale_by_zoom_linesearch`,
    `scale_by_backtracking_linesearch`, and optax's) and Polyak step sizes work; the
    value and gradient at the new point are taken from the line search's state when
    it holds them, else evaluated once (`lbfgsb()` runs its own iteration
    instead: Cauchy point, subspace step, Moré-Thuente search, with its own
    extra stopping tests). The stopping tests run inside the loop in
    the parameters' precision, in this order: a non-finite value or gradient
    (``"nonfinite"``); ``tol`` on the gradient norm (a gradient of exactly zero
    when ``tol`` is not given), or both ``rtol``/``atol`` tests (element-wise on
    $x$) (``"converged"``); a line search that ended with its conditions
    unsatisfied (sufficient decrease; for the zoom search also curvature)
    without a decrease, or no move at all (``"linesearch_failed"``, the previous
    point is kept); ``steps`` iterations (``"max_steps"``). $P$ clips into ``[lower,
    upper]``: with bounds the gradient given to the optimizer is projected (zero
    where a bound holds the element), as is the update, and ``grad_norm`` is that
    projected gradient's norm. Calling again with the same ``fun`` and ``optimizer``
    objects and inputs of the same shapes reuses the compiled loop.

    Differentiating the result (``jax.grad`` of anything computed from
    ``params`` or ``value``) with respect to the problem's data (``args``,
    values ``fun`` closes over, the array leaves of a pytree-callable ``fun``)
    uses, with ``diff="implicit"``, the implicit function theorem at the
    solution: one conjugate-gradient solve with Hessian-vector products.
    ``diff="unroll"`` instead differentiates through every iteration (a
    ``lax.scan`` of ``steps`` iterations; line-search step sizes count as
    constants), with respect to anything, ``x0`` included. Under ``jax.grad``, as under
    ``jax.jit`` and ``jax.vmap``, the result's fields are arrays.

    Args:
        fun: the objective, ``fun(params) -> scalar``, or ``fun(params, args)``
            when ``args`` is given (``(scalar, aux)`` with ``has_aux``).
        x0: initial parameters: any pytree of floating-point arrays (clipped
            into the bounds first).
        optimizer: any optax gradient transformation, e.g. `lbfgs()` or
            ``jaxopt_lite.gd(0.1)``; or `lbfgsb()`, which runs the L-BFGS-B
            method (the bounds enter its model; only ``diff="implicit"``).
        args: data or hyper-parameters passed to ``fun`` (any pytree); the
            solution is differentiable with respect to it.
        steps: the most iterations, an integer in [1, 2**31 - 1].
        tol: stop once the gradient's global norm is at most ``tol``: a scalar
            >= 0 (it may be traced, e.g. under ``jax.vmap``).
        rtol: relative tolerance $r$ of the value-change and step test (>= 0).
        atol: absolute tolerance $a$ of that test (>= 0); giving either turns
            the test on, the other defaulting to 0.
        lower: lower bounds: a real number or a pytree like ``x0`` (``-inf``:
            none; ``+inf`` is refused). The solution is differentiable with
            respect to them where they hold it.
        upper: upper bounds, likewise (``+inf``: none; ``-inf`` is refused).
        has_aux: ``fun`` returns ``(value, aux)``.
        diff: ``"implicit"`` or ``"unroll"`` (how reverse-mode derivatives
            are computed).
        history_size: record the first ``history_size`` iterations (>= 0);
            memory does not grow with ``steps`` beyond that. The rows kept,
            ``min(steps, history_size)``, are allocated up front: at most
            2**27 of them.

    Returns:
        A `MinimizeResult`.

    Example:
        >>> import jax.numpy as jnp, jaxopt_lite as jol
        >>> result = jol.minimize(lambda x: jnp.sum((x - 3.0) ** 2),
        ...                       jnp.zeros(2), jol.gd(0.1), steps=500, tol=1e-5)
        >>> result.status, result.steps, result.params.round(4)
        ('converged', 62, Array([3., 3.], dtype=float32))
    """
    validate.check_callable("fun", fun)
    is_lbfgsb = isinstance(optimizer, LBFGSB)
    if not is_lbfgsb:
        validate.check_transform("optimizer", optimizer)
    checks.check_settings(steps, tol, rtol, atol, has_aux, diff, history_size)
    x0 = checks.check_x0(x0)
    if is_lbfgsb:
        check_use(x0, diff)
    fun_static, fun_inputs = programs.partition(fun, programs.array_inputs)
    dtype = checks.value_dtype(fun, has_aux, x0, args)
    lo = hi = None
    if lower is not None or upper is not None:
        lo, hi = checks.bounds(lower, upper, x0)
        x0 = full_batch.project(x0, lo, hi)
    cfg = full_batch.Config(
        max_steps=steps,
        history_size=min(steps, history_size),
        has_aux=has_aux,
        cauchy=rtol is not None or atol is not None,
        bounded=lo is not None,
        unroll=diff == "unroll",
    )
    if is_lbfgsb:  # its counts are static, its tolerances inputs
        opt_static, opt_inputs = programs.partition(
            optimizer, lambda x: not isinstance(x, int)
        )
    else:
        opt_static, opt_inputs = programs.split_optimizer(optimizer)
    program = Program(fun_static, opt_static, cfg, args is not None, diff == "implicit")
    tols = full_batch.Tolerances(*checks.tolerances(tol, rtol, atol, dtype))
    params, opt_state, aux, packed = minimize_loop(
        program, fun_inputs, opt_inputs, x0, args, tols, lo, hi
    )
    columns = full_batch.history_columns(opt_state)
    return result.unpack(params, opt_state, aux, packed, columns)
