"""`minimize`: full-batch, deterministic optimization in one compiled loop."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any, NamedTuple, cast

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.core import Tracer

from jaxopt_lite._core import recipe as _recipe
from jaxopt_lite._core import validate as v
from jaxopt_lite._drivers import checks as _checks
from jaxopt_lite._drivers import programs as _programs
from jaxopt_lite._loop import full_batch as _full_batch
from jaxopt_lite._loop import implicit as _implicit
from jaxopt_lite._transforms import linesearch as _ls

PyTree = Any
_DIFF = ("implicit", "unroll")


class MinimizeResult(NamedTuple):
    """What `minimize` returns.

    Called with concrete inputs, the scalars are Python numbers and the history
    NumPy arrays cut to the steps taken. When the results are traced (under
    ``jax.jit``, ``jax.vmap`` or ``jax.grad``, through the inputs or values
    ``fun`` closes over) every field is an array instead: ``status`` is
    then an int32 index into ``MinimizeResult.STATUSES`` and the history keeps
    all its rows (NaN past the last step).

    Attributes:
        params: the final parameters.
        value: the objective at ``params``.
        grad_norm: the global L2 norm of the gradient at ``params`` (of the
            projected gradient when there are bounds).
        steps: iterations done (each one optimizer update).
        converged: ``status == "converged"``.
        history: ``value``, ``grad_norm`` and (when the optimizer state holds
            one, as line searches do) ``learning_rate`` at each iteration, for
            the first ``history_size`` iterations, in the value's precision.
        opt_state: the final optimizer state.
        aux: the auxiliary output of ``fun`` at ``params`` (``has_aux=True``).
        status: why the loop stopped: ``"converged"``, ``"max_steps"``,
            ``"nonfinite"`` or ``"linesearch_failed"``.
        fun_evals: evaluations of ``fun``, line-search trials included.
        grad_evals: evaluations of its gradient, line-search trials included.
    """

    params: PyTree
    value: Any
    grad_norm: Any
    steps: Any
    converged: Any
    history: dict[str, Any]
    opt_state: PyTree
    aux: Any
    status: Any
    fun_evals: Any
    grad_evals: Any

    STATUSES = _full_batch.STATUSES


def _compiled(
    fun: Callable,
    optimizer: Any,
    cfg: _full_batch.Config,
    with_args: bool,
    implicit: bool,
) -> Callable:
    """The compiled loop for ``fun`` and ``optimizer``, cached by structure
    (numbers and callables as inputs: see `programs`), with its inputs bound."""
    fun_key, fun_inputs = _programs.split_callable(fun)
    opt_key, opt_inputs = _recipe.split(optimizer)
    run = _programs.program(
        ("minimize", fun_key, opt_key, cfg, with_args, implicit),
        lambda: _build(fun_key, opt_key, cfg, with_args, implicit),
    )
    return functools.partial(run, fun_inputs, opt_inputs)


def _build(
    fun_key: tuple,
    opt_key: tuple,
    cfg: _full_batch.Config,
    with_args: bool,
    implicit: bool,
) -> Callable:
    def call(fun_inputs, x, args):
        fun = cast(Callable, _programs.join_callable(fun_key, fun_inputs))
        return fun(x, args) if with_args else fun(x)

    def run_and_pack(fun_inputs, opt_inputs, x0, args, tols, lower, upper):
        # The problem's data, theta, is what the solution is differentiated
        # with respect to: args, the array leaves of a pytree-callable fun,
        # and the tracers fun closes over (hoisted by closure conversion).
        # Everything reaches the loop as an explicit input, never through a
        # closure (see `with_implicit_gradient`).
        converted, hoisted = jax.closure_convert(
            lambda x, a, f: call(f, x, a), x0, args, fun_inputs
        )
        theta = (args, fun_inputs, hoisted)

        def objective(x, t):
            return converted(x, t[0], t[1], *t[2])

        def loop(opt_inputs, theta, x0, tols, lower, upper):
            optimizer = _recipe.rebuild(opt_key, opt_inputs)
            return _full_batch.full_batch_loop(
                objective, optax.with_extra_args_support(optimizer), cfg,
                x0, theta, tols, lower, upper,
            )  # fmt: skip

        if implicit:
            value = (lambda x, t: objective(x, t)[0]) if cfg.has_aux else objective
            loop = _implicit.with_implicit_gradient(loop, value, cfg.bounded)
        final = loop(opt_inputs, theta, x0, tols, lower, upper)
        # The scalars the host reads, packed so that they come back in one go.
        counts = jnp.stack(
            [final.step, final.status, final.fun_evals, final.grad_evals]
        )
        return final, counts, jnp.stack([final.value, final.grad_norm])

    return jax.jit(run_and_pack)


def _check_tolerance(name: str, value: Any) -> None:
    """``None`` or a finite scalar >= 0 (a tracer too: its shape is checked)."""
    if value is None:
        return
    v.check_nonnegative(name, value)
    if np.ndim(value) != 0:
        raise TypeError(
            f"{name} must be a scalar (a number or a 0-d array), got an array of "
            f"shape {np.shape(value)}."
        )


def _tolerance(value: Any, default: float, dtype: Any) -> Any:
    """The threshold as an array of ``dtype`` (a tracer stays one)."""
    value = default if value is None else value
    return (
        jnp.asarray(value, dtype)
        if isinstance(value, Tracer)
        else np.asarray(value, dtype)
    )


def _check_bound_leaf(name: str, b: Any) -> None:
    """A real number or array (``TypeError`` for strings, bytes, booleans,
    complex numbers and other objects)."""
    v.check_number(name, b)
    if not (
        jnp.issubdtype(jnp.result_type(b), jnp.floating)
        or jnp.issubdtype(jnp.result_type(b), jnp.integer)
    ):
        raise TypeError(
            f"{name} must be a real number or an array of them, got dtype "
            f"{jnp.result_type(b)}: {b!r}."
        )


def _bound(name: str, bound: Any, x0: PyTree, fill: float) -> PyTree:
    """``bound`` as a tree like ``x0`` (a scalar applies to every element)."""
    if bound is None:
        return jax.tree.map(lambda x: jnp.full(x.shape, fill, x.dtype), x0)
    if jax.tree_util.treedef_is_leaf(jax.tree.structure(bound)) and not np.ndim(bound):
        _check_bound_leaf(name, bound)
        return jax.tree.map(
            lambda x: jnp.broadcast_to(jnp.asarray(bound, x.dtype), x.shape), x0
        )
    if jax.tree.structure(bound) != jax.tree.structure(x0):
        raise ValueError(
            f"{name} must be a number or a pytree with the structure of x0 "
            f"({jax.tree.structure(x0)}), got {jax.tree.structure(bound)}."
        )

    def leaf(path, b, x):
        _check_bound_leaf(f"{name}{jax.tree_util.keystr(path)}", b)
        if np.ndim(b) and np.shape(b) != x.shape:
            raise ValueError(
                f"{name}{jax.tree_util.keystr(path)} has shape {np.shape(b)}, but "
                f"x0{jax.tree_util.keystr(path)} has shape {x.shape}."
            )
        return jnp.broadcast_to(jnp.asarray(b, x.dtype), x.shape)

    return jax.tree_util.tree_map_with_path(leaf, bound, x0)


def _check_box(lo: PyTree, hi: PyTree) -> None:
    """Every concrete lower bound is below +inf, every upper bound above -inf,
    neither NaN, and lower <= upper."""
    for (path, a), b in zip(
        jax.tree_util.tree_flatten_with_path(lo)[0], jax.tree.leaves(hi), strict=True
    ):
        if _is_traced(a, b):
            continue
        a, b = np.asarray(a), np.asarray(b)
        where = jax.tree_util.keystr(path)
        for side, bound, wrong in (("lower", a, np.inf), ("upper", b, -np.inf)):
            if np.any(bound == wrong):
                raise ValueError(
                    f"{side}{where}={bound.tolist()} is not allowed: a bound of "
                    f"{wrong} leaves no feasible point; lower bounds must be "
                    "< +inf and upper bounds > -inf (-inf and +inf respectively "
                    "mean no bound)."
                )
        if np.any(a > b) or np.any(np.isnan(a)) or np.any(np.isnan(b)):
            raise ValueError(
                f"lower{where} and upper{where} are not ordered (lower {a.tolist()}, "
                f"upper {b.tolist()}): every lower bound must be <= its upper "
                "bound, and neither NaN."
            )


def _value_dtype(fun: Callable, has_aux: bool, x0: PyTree, args: Any) -> Any:
    """Check that ``fun`` returns a real scalar (once per function and input
    shapes) and return its dtype."""
    call_args = (x0,) if args is None else (x0, args)

    def check():
        _checks.check_scalar_output(
            "fun",
            fun,
            call_args,
            has_aux=has_aux,
            argnames=("x", "args")[: len(call_args)],
        )
        out = jax.eval_shape(fun, *call_args)
        return (out[0] if has_aux else out).dtype

    return _programs.check_once(("minimize", has_aux), fun, call_args, check)


def _is_traced(*trees: Any) -> bool:
    return any(isinstance(x, Tracer) for x in jax.tree.leaves(trees))


def minimize(
    fun: Callable[..., jax.Array],
    x0: PyTree,
    optimizer: optax.GradientTransformation,
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
    it holds them, else evaluated once. The stopping tests run inside the loop in
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
            ``jaxopt_lite.gd(0.1)``.
        args: data or hyper-parameters passed to ``fun`` (any pytree); the
            solution is differentiable with respect to it.
        steps: the most iterations, an integer in [1, 2**31 - 1].
        tol: stop once the gradient's global norm is at most ``tol``: a scalar
            >= 0 (it may be traced, e.g. under ``jax.vmap``).
        rtol: relative tolerance $r$ of the value-change and step test (>= 0).
        atol: absolute tolerance $a$ of that test (>= 0); giving either turns
            the test on, the other defaulting to 0.
        lower: lower bounds: a real number or a pytree like ``x0`` (``-inf``:
            none; ``+inf`` is refused).
        upper: upper bounds, likewise (``+inf``: none; ``-inf`` is refused).
        has_aux: ``fun`` returns ``(value, aux)``.
        diff: ``"implicit"`` or ``"unroll"`` (how reverse-mode derivatives
            are computed).
        history_size: record the first ``history_size`` iterations (0 to
            2**31 - 1); memory does not grow with ``steps`` beyond that.

    Returns:
        A `MinimizeResult`.

    Example:
        >>> import jax.numpy as jnp, jaxopt_lite as jol
        >>> result = jol.minimize(lambda x: jnp.sum((x - 3.0) ** 2),
        ...                       jnp.zeros(2), jol.gd(0.1), steps=500, tol=1e-5)
        >>> result.status, result.steps, result.params.round(4)
        ('converged', 62, Array([3., 3.], dtype=float32))
    """
    v.check_callable("fun", fun)
    v.check_transform("optimizer", optimizer)
    _ls.check_count("steps", steps)
    v.check_bool("has_aux", has_aux)
    for name, value in (("tol", tol), ("rtol", rtol), ("atol", atol)):
        _check_tolerance(name, value)
    if diff not in _DIFF:
        raise ValueError(
            f"diff={diff!r} is not allowed: it must be 'implicit' or 'unroll'."
        )
    _ls.check_count("history_size", history_size, minimum=0)
    x0 = _checks.check_params("x0", x0)
    dtype = _value_dtype(fun, has_aux, x0, args)
    lo = hi = None
    if lower is not None or upper is not None:
        lo = _bound("lower", lower, x0, -math.inf)
        hi = _bound("upper", upper, x0, math.inf)
        _check_box(lo, hi)
        x0 = _full_batch.project(x0, lo, hi)

    cfg = _full_batch.Config(
        max_steps=steps,
        history_size=min(steps, history_size),
        has_aux=has_aux,
        cauchy=rtol is not None or atol is not None,
        bounded=lo is not None,
        unroll=diff == "unroll",
    )
    run = _compiled(fun, optimizer, cfg, args is not None, diff == "implicit")
    tols = _full_batch.Tolerances(
        _tolerance(tol, 0.0, dtype),  # a zero gradient always converges
        _tolerance(rtol, 0.0, dtype),
        _tolerance(atol, 0.0, dtype),
    )
    final, counts, floats = run(x0, args, tols, lo, hi)
    # Traced results (under jit, vmap or grad, whether through the inputs or
    # through values fun closes over) stay arrays.
    if _is_traced(counts, floats, final.params):
        taken, status, value, grad_norm = (
            final.step,
            final.status,
            final.value,
            final.grad_norm,
        )
        fun_evals, grad_evals, history = (
            final.fun_evals,
            final.grad_evals,
            final.history,
        )
        converged = status == _full_batch.CONVERGED
    else:
        counts, floats, history = jax.device_get((counts, floats, final.history))
        taken, code, fun_evals, grad_evals = (int(c) for c in counts)
        value, grad_norm = (float(f) for f in floats)
        status = _full_batch.STATUSES[code]
        converged = status == "converged"
        history = {k: np.asarray(h)[:taken] for k, h in history.items()}
    return MinimizeResult(
        params=final.params,
        value=value,
        grad_norm=grad_norm,
        steps=taken,
        converged=converged,
        history=history,
        opt_state=final.opt_state,
        aux=final.aux,
        status=status,
        fun_evals=fun_evals,
        grad_evals=grad_evals,
    )
