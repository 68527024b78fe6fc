r"""Parameter-free step sizes from the distance travelled over the gradients
seen (DoG): `scale_by_distance_over_gradients` (optax core: a step size per
parameter array, layer-wise), and `scale_by_dog` and `scale_by_dowg` (optax
contrib: one global step size for the whole parameter tree; DoWG weights the
gradients by the distance).

The scalars of the global states are kept in the parameters' precision
(float32 for float32, bfloat16 or complex64 parameters, float64 for float64
ones; optax uses the lowest floating dtype of the parameters).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
import optax.contrib

from jaxopt_lite._core import tree_math, validate
from jaxopt_lite._core.dtypes import (
    add,
    compute_dtype,
    div,
    mul,
    promoted_dtype,
    sub,
    tree_compute_dtype,
)
from jaxopt_lite._core.recipe import recipe

_INIT_STEPS = ("distance", "learning_rate", "heuristic")


DoGState = optax.contrib.DoGState
"""optax.contrib's class itself (so states equal optax's as trees): whether
no update happened yet (a bool), the starting parameters, the largest distance
from them $\\bar r$ and the sum of squared gradient norms $G$."""

DoWGState = optax.contrib.DoWGState
"""optax.contrib's class itself (so states equal optax's as trees): the
starting parameters, the weighted sum of squared gradient norms $W$ and the
largest squared distance from the start $\\bar r^2$."""


def _from_params(fn: Callable[[Any], jax.Array], params: Any) -> Any:
    """``fn(params)``, or its shape and dtype when ``params`` are abstract
    (``jax.ShapeDtypeStruct`` leaves, given to ``init`` outside
    ``jax.eval_shape``): a value computed from the parameters has no number
    then."""
    if any(isinstance(x, jax.ShapeDtypeStruct) for x in jax.tree.leaves(params)):
        return jax.eval_shape(fn, params)
    return fn(params)


@recipe
def scale_by_dog(
    init_step: tuple[str, float | jax.Array],
    eps: float | jax.Array = 1e-8,
) -> optax.GradientTransformation:
    r"""Rescale updates by DoG: distance travelled over summed gradient norms.

    The step size is the largest distance from the start over the root of
    the summed squared gradient norms:

    $$
    \bar r_t = \max\left(\bar r_{t-1}, \lVert \theta_{t-1} - \theta_0 \rVert\right),
    \quad G_t = G_{t-1} + \lVert g_t \rVert^2, \quad
    u_t = \frac{\bar r_t}{\sqrt{G_t + \epsilon}} \, g_t
    $$

    with norms over the whole tree. ``init_step`` sets the start: for
    ``("distance", r)`` $\bar r_0 = r$; for ``("heuristic", a)`` $\bar r_0 =
    a (1 + \lVert \theta_0 \rVert)$ (so ``init`` needs the real parameters);
    for ``("learning_rate", \eta)`` $\bar r_0 = 0$ and the first step size is
    $\eta$ instead of the formula.

    Args:
        init_step: a pair ``(kind, value)``, ``kind`` one of ``"distance"``,
            ``"learning_rate"``, ``"heuristic"``; ``value >= 0``.
        eps: $\epsilon >= 0$, added to $G_t$.

    Returns:
        An ``optax.GradientTransformation``; ``update`` needs ``params``.

    Example:
        >>> import jax.numpy as jnp, jaxopt_lite as jol
        >>> t = jol.scale_by_dog(("distance", 0.5), eps=0.0)
        >>> p = jnp.array([1.0, 1.0])
        >>> t.update(jnp.array([3.0, -4.0]), t.init(p), p)[0]
        Array([ 0.3, -0.4], dtype=float32)

    References:
        Ivgi, Hinder and Carmon, *DoG is SGD's Best Friend: A Parameter-Free
        Dynamic Step Size Schedule*, 2023.
    """
    if not isinstance(init_step, (tuple, list)) or len(init_step) != 2:
        raise TypeError(
            "init_step must be a pair (kind, value) with kind one of "
            f"{', '.join(map(repr, _INIT_STEPS))}, got {init_step!r}."
        )
    kind, value = init_step
    validate.check_choice("init_step kind", kind, _INIT_STEPS)
    validate.check_nonnegative("init_step value", value)
    validate.check_nonnegative("eps", eps)

    def init_fn(params):
        dtype = tree_compute_dtype(params)
        if kind == "heuristic":
            max_dist = _from_params(
                lambda p: mul(value, add(1, tree_math.tree_global_norm(p))).astype(
                    dtype
                ),
                params,
            )
        else:
            max_dist = jnp.asarray(value if kind == "distance" else 0.0, dtype)
        return DoGState(
            is_init_step=jnp.asarray(True),
            init_params=params,
            max_dist=max_dist,
            sum_sq_norm_grads=jnp.zeros([], dtype),
        )

    def update_fn(updates, state, params=validate.MISSING):  # required, as in optax
        validate.require_params("scale_by_dog", params)
        dtype = state.max_dist.dtype
        dist = tree_math.tree_global_norm(optax.tree.sub(state.init_params, params))
        max_dist = jnp.maximum(state.max_dist, dist.astype(dtype))
        sum_sq = state.sum_sq_norm_grads + tree_math.tree_sum_squares(updates).astype(
            dtype
        )
        rate = max_dist / jnp.sqrt(add(sum_sq, eps)).astype(dtype)
        if kind == "learning_rate":
            rate = jnp.where(state.is_init_step, jnp.asarray(value, dtype), rate)
        new_state = DoGState(jnp.asarray(False), state.init_params, max_dist, sum_sq)
        return tree_math.tree_scale(rate, updates), new_state

    return optax.GradientTransformation(init_fn, update_fn)


@recipe
def scale_by_dowg(
    init_estim_sq_dist: float | jax.Array | None = None,
    eps: float | jax.Array = 1e-4,
) -> optax.GradientTransformation:
    r"""Rescale updates by DoWG: DoG with gradients weighted by the distance.

    $$
    \bar r_t^2 = \max\left(\bar r_{t-1}^2,
    \lVert \theta_{t-1} - \theta_0 \rVert^2\right),
    \quad W_t = W_{t-1} + \bar r_t^2 \lVert g_t \rVert^2, \quad
    u_t = \frac{\bar r_t^2}{\sqrt{W_t} + \epsilon} \, g_t
    $$

    with norms over the whole tree, $W_0 = 0$ and $\bar r_0^2$ =
    ``init_estim_sq_dist`` (or $\epsilon$ when it is ``None``).

    Args:
        init_estim_sq_dist: $\bar r_0^2 >= 0$, a guess of the squared distance
            to the solution; ``None`` uses ``eps``.
        eps: $\epsilon >= 0$, added to the denominator.

    Returns:
        An ``optax.GradientTransformation``; ``update`` needs ``params``.

    Example:
        >>> import jax.numpy as jnp, jaxopt_lite as jol
        >>> t = jol.scale_by_dowg(init_estim_sq_dist=4.0, eps=0.0)
        >>> p = jnp.array([1.0, 1.0])
        >>> t.update(jnp.array([3.0, -4.0]), t.init(p), p)[0]
        Array([ 1.2, -1.6], dtype=float32)

    References:
        Khaled, Mishchenko and Jin, *DoWG Unleashed: An Efficient Universal
        Parameter-Free Gradient Descent Method*, 2023.
    """
    if init_estim_sq_dist is not None:
        validate.check_nonnegative("init_estim_sq_dist", init_estim_sq_dist)
    validate.check_nonnegative("eps", eps)
    start = eps if init_estim_sq_dist is None else init_estim_sq_dist

    def init_fn(params):
        dtype = tree_compute_dtype(params)
        return DoWGState(
            init_params=params,
            weighted_sq_norm_grads=jnp.zeros([], dtype),
            estim_sq_dist=jnp.asarray(start, dtype),
        )

    def update_fn(updates, state, params=validate.MISSING):  # required, as in optax
        validate.require_params("scale_by_dowg", params)
        dtype = state.estim_sq_dist.dtype
        sq_dist = tree_math.tree_sum_squares(optax.tree.sub(state.init_params, params))
        estim = jnp.maximum(state.estim_sq_dist, sq_dist.astype(dtype))
        sq_norm = tree_math.tree_sum_squares(updates).astype(dtype)
        weighted = estim * sq_norm + state.weighted_sq_norm_grads
        rate = div(estim, add(jnp.sqrt(weighted), eps)).astype(dtype)
        new_state = DoWGState(state.init_params, weighted, estim)
        return tree_math.tree_scale(rate, updates), new_state

    return optax.GradientTransformation(init_fn, update_fn)


class ScaleByDistanceOverGradientsState(NamedTuple):
    """Per parameter array: the largest distance from the initial parameters
    seen so far and the running sum of squared gradients (scalars, in the
    array's precision: float32 for bfloat16, float32 and complex64, float64
    for float64), and the initial parameters (in ``param_dtype``). optax's
    field names."""

    max_dist: tree_math.PyTree
    grad_sum_of_squares: tree_math.PyTree
    init_params: tree_math.PyTree


def _initial_dtype(x: jax.Array, param_dtype: Any) -> Any:
    """The dtype the initial value of parameter ``x`` is kept in:
    ``param_dtype`` (its complex counterpart for complex ``x``), or ``x``'s
    own dtype when ``param_dtype`` is ``None``."""
    if param_dtype is None:
        return jnp.result_type(x)
    if jnp.iscomplexobj(x):
        return promoted_dtype(param_dtype, jnp.complex64)
    return param_dtype


@recipe
def scale_by_distance_over_gradients(
    reps_rel: float | jax.Array = 1e-6,
    eps: float | jax.Array = 1e-8,
    param_dtype: Any = jnp.float32,
    global_scale: float | jax.Array = 1.0,
) -> optax.GradientTransformation:
    r"""Scale each parameter array's updates by DoG's distance-over-gradients step.

    For each parameter array $x$ (a layer), with $x_0$ its initial value:

    $$
    r_t = \max\left(r_{t-1}, \lVert x_t - x_0 \rVert\right), \quad
    r_0 = \epsilon_{\text{rel}} (1 + \lVert x_0 \rVert), \quad
    G_t = G_{t-1} + \lVert g_t \rVert^2, \quad
    u_t = s \frac{r_t}{\sqrt{G_t + \epsilon}}\, g_t
    $$

    The step grows with the distance travelled, so it starts tiny
    ($r_0$) and increases until the gradients' sum catches up. Updates
    point along the gradient: use ``global_scale=-1.0`` (or chain a
    negative scaling) to descend. The authors recommend averaging the
    iterates.

    Args:
        reps_rel: $\epsilon_{\text{rel}} > 0$, the first step relative to
            $1 + \lVert x_0 \rVert$ (the paper suggests ``1e-4`` for models
            with batch normalization, ``1e-6`` otherwise).
        eps: $\epsilon >= 0$, added inside the square root.
        param_dtype: the real floating dtype $x_0$ is kept in (its complex
            counterpart for complex parameters); ``None`` keeps each
            parameter's dtype.
        global_scale: $s$, a finite number (typically 1 or -1).

    Returns:
        An ``optax.GradientTransformation`` (``update`` needs ``params``).

    Example:
        >>> import jax.numpy as jnp, jaxopt_lite as jol
        >>> t = jol.scale_by_distance_over_gradients(reps_rel=0.5, eps=0.0)
        >>> params = jnp.array([3.0, 4.0])
        >>> t.update(jnp.array([0.0, 2.0]), t.init(params), params)[0]
        Array([0., 3.], dtype=float32)

    References:
        Ivgi, Hinder and Carmon, *DoG is SGD's Best Friend: A Parameter-Free
        Dynamic Step Size Schedule*, 2023.
    """
    validate.check_positive("reps_rel", reps_rel)
    validate.check_nonnegative("eps", eps)
    param_dtype = validate.check_dtype("param_dtype", param_dtype, kind=jnp.floating)
    validate.check_range("global_scale", global_scale)

    def init_fn(params):
        return ScaleByDistanceOverGradientsState(
            max_dist=jax.tree.map(
                lambda x: mul(reps_rel, add(1.0, tree_math.l2_norm(x))).astype(
                    compute_dtype(x)
                ),
                params,
            ),
            grad_sum_of_squares=jax.tree.map(
                lambda x: jnp.zeros([], compute_dtype(x)), params
            ),
            init_params=jax.tree.map(
                lambda x: jnp.asarray(x).astype(_initial_dtype(x, param_dtype)), params
            ),
        )

    # Each function skips None updates (None out, in the state too).
    def distance(g, p, x0, dist):
        if g is None:
            return None
        return jnp.maximum(dist, tree_math.l2_norm(sub(p, x0)).astype(dist.dtype))

    def sum_of_squares(g, total):
        if g is None:
            return None
        return add(total, jnp.sum(tree_math.abs_sq(g), dtype=total.dtype))

    def step(g, dist, total):
        if g is None:
            return None
        rate = mul(global_scale, div(dist, jnp.sqrt(add(total, eps))))
        return mul(rate, g).astype(g.dtype)

    def update_fn(updates, state, params=validate.MISSING):  # required, as in optax
        validate.require_params("scale_by_distance_over_gradients", params)
        none = lambda x: x is None
        max_dist = jax.tree.map(
            distance, updates, params, state.init_params, state.max_dist, is_leaf=none
        )
        total = jax.tree.map(
            sum_of_squares, updates, state.grad_sum_of_squares, is_leaf=none
        )
        new_updates = jax.tree.map(step, updates, max_dist, total, is_leaf=none)
        return new_updates, ScaleByDistanceOverGradientsState(
            max_dist, total, state.init_params
        )

    return optax.GradientTransformation(init_fn, update_fn)
