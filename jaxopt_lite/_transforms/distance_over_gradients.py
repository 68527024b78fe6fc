r"""Distance over gradients (`scale_by_distance_over_gradients`): a step
size per parameter array from how far it has moved and how large its
gradients have been, with no learning rate to tune (layer-wise DoG).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jaxopt_lite._core import tree as _tree
from jaxopt_lite._core import validate as v
from jaxopt_lite._core.dtypes import (
    add,
    compute_dtype,
    div,
    mul,
    promoted_dtype,
    sub,
)
from jaxopt_lite._core.recipe import recipe


class ScaleByDistanceOverGradientsState(NamedTuple):
    """Per parameter array: the largest distance from the initial parameters
    seen so far and the running sum of squared gradients (scalars, in the
    array's precision: float32 for bfloat16, float32 and complex64, float64
    for float64), and the initial parameters (in ``param_dtype``). optax's
    field names."""

    max_dist: _tree.PyTree
    grad_sum_of_squares: _tree.PyTree
    init_params: _tree.PyTree


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
    v.check_positive("reps_rel", reps_rel)
    v.check_nonnegative("eps", eps)
    param_dtype = v.check_dtype("param_dtype", param_dtype, kind=jnp.floating)
    v.check_range("global_scale", global_scale)

    def init_fn(params):
        return ScaleByDistanceOverGradientsState(
            max_dist=jax.tree.map(
                lambda x: mul(reps_rel, add(1.0, _tree.l2_norm(x))).astype(
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

    def one(g, p, x0, dist, total):
        dist = jnp.maximum(dist, _tree.l2_norm(sub(p, x0)).astype(dist.dtype))
        total = add(total, jnp.sum(_tree.abs_sq(g), dtype=total.dtype))
        step = mul(global_scale, div(dist, jnp.sqrt(add(total, eps))))
        return mul(step, g).astype(g.dtype), dist, total

    def update_fn(updates, state, params=None):
        v.require_params("scale_by_distance_over_gradients", params)
        out = jax.tree.map(
            one,
            updates,
            params,
            state.init_params,
            state.max_dist,
            state.grad_sum_of_squares,
        )
        structure = jax.tree.structure(updates)
        new_updates, max_dist, total = jax.tree.transpose(
            structure, jax.tree.structure((0, 0, 0)), out
        )
        return new_updates, ScaleByDistanceOverGradientsState(
            max_dist, total, state.init_params
        )

    return optax.GradientTransformation(init_fn, update_fn)
