r"""Parameter-free step sizes from the distance travelled over the gradients
seen: DoG (`scale_by_dog`) and DoWG (`scale_by_dowg`), both with one global
step size for the whole parameter tree.

The scalars of their states are kept in the parameters' precision (float32
for float32, bfloat16 or complex64 parameters, float64 for float64 ones;
optax uses the lowest floating dtype of the parameters).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jaxopt_lite._core import tree as _tree
from jaxopt_lite._core import validate as v
from jaxopt_lite._core.dtypes import add, div, mul, tree_compute_dtype
from jaxopt_lite._core.recipe import recipe

_INIT_STEPS = ("distance", "learning_rate", "heuristic")


class DoGState(NamedTuple):
    """Whether no update happened yet (a bool), the starting parameters, the
    largest distance from them $\\bar r$ and the sum of squared gradient norms
    $G$."""

    is_init_step: jax.Array
    init_params: _tree.PyTree
    max_dist: jax.Array
    sum_sq_norm_grads: jax.Array


class DoWGState(NamedTuple):
    """The starting parameters, the weighted sum of squared gradient norms $W$
    and the largest squared distance from the start $\\bar r^2$."""

    init_params: _tree.PyTree
    weighted_sq_norm_grads: jax.Array
    estim_sq_dist: jax.Array


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
    v.check_choice("init_step kind", kind, _INIT_STEPS)
    v.check_nonnegative("init_step value", value)
    v.check_nonnegative("eps", eps)

    def init_fn(params):
        dtype = tree_compute_dtype(params)
        if kind == "heuristic":
            max_dist = _from_params(
                lambda p: mul(value, add(1, _tree.tree_global_norm(p))).astype(dtype),
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

    def update_fn(updates, state, params=None):
        v.require_params("scale_by_dog", params)
        dtype = state.max_dist.dtype
        dist = _tree.tree_global_norm(optax.tree.sub(state.init_params, params))
        max_dist = jnp.maximum(state.max_dist, dist.astype(dtype))
        sum_sq = state.sum_sq_norm_grads + _tree.tree_sum_squares(updates).astype(dtype)
        rate = max_dist / jnp.sqrt(add(sum_sq, eps)).astype(dtype)
        if kind == "learning_rate":
            rate = jnp.where(state.is_init_step, jnp.asarray(value, dtype), rate)
        new_state = DoGState(jnp.asarray(False), state.init_params, max_dist, sum_sq)
        return _tree.tree_scale(rate, updates), new_state

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
        v.check_nonnegative("init_estim_sq_dist", init_estim_sq_dist)
    v.check_nonnegative("eps", eps)
    start = eps if init_estim_sq_dist is None else init_estim_sq_dist

    def init_fn(params):
        dtype = tree_compute_dtype(params)
        return DoWGState(
            init_params=params,
            weighted_sq_norm_grads=jnp.zeros([], dtype),
            estim_sq_dist=jnp.asarray(start, dtype),
        )

    def update_fn(updates, state, params=None):
        v.require_params("scale_by_dowg", params)
        dtype = state.estim_sq_dist.dtype
        sq_dist = _tree.tree_sum_squares(optax.tree.sub(state.init_params, params))
        estim = jnp.maximum(state.estim_sq_dist, sq_dist.astype(dtype))
        sq_norm = _tree.tree_sum_squares(updates).astype(dtype)
        weighted = estim * sq_norm + state.weighted_sq_norm_grads
        rate = div(estim, add(jnp.sqrt(weighted), eps)).astype(dtype)
        new_state = DoWGState(state.init_params, weighted, estim)
        return _tree.tree_scale(rate, updates), new_state

    return optax.GradientTransformation(init_fn, update_fn)
