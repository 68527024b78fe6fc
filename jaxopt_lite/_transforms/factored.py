"""Adafactor's pieces: the factored second-moment estimate and the scaling by
each parameter block's RMS."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxopt_lite._core import tree_math, validate
from jaxopt_lite._core.dtypes import add, compute_dtype, mul, promote, state_dtype
from jaxopt_lite._core.recipe import recipe
from jaxopt_lite._core.validate import check_bool


def _decay_rate_pow(step: jax.Array, exponent: jax.typing.ArrayLike = 0.8) -> jax.Array:
    """Adafactor's second-moment decay ``1 - (step + 1) ** -exponent``, in the
    default float dtype (float32, or float64 with x64: optax uses float32)."""
    t = jnp.asarray(step + 1, float)
    return 1.0 - t ** (-jnp.asarray(exponent))


def _factored_axes(
    shape: tuple[int, ...], factored: bool, min_dim_size_to_factor: int
) -> tuple[int, int] | None:
    """The (second largest, largest) axes of ``shape`` when the leaf's moment
    is factored, else ``None``."""
    if not factored or len(shape) < 2:
        return None
    order = np.argsort(shape, kind="stable")
    if shape[order[-2]] < min_dim_size_to_factor:
        return None
    return int(order[-2]), int(order[-1])


# optax's class itself, so that states compare equal to optax's as trees.
FactoredState = optax.FactoredState


@recipe(static=("min_dim_size_to_factor",))
def scale_by_factored_rms(
    factored: bool = True,
    decay_rate: float | jax.Array = 0.8,
    step_offset: int | jax.Array = 0,
    min_dim_size_to_factor: int = 128,
    epsilon: float | jax.Array = 1e-30,
    decay_rate_fn: Callable[[jax.Array, Any], jax.Array] = _decay_rate_pow,
) -> optax.GradientTransformation:
    r"""Divide updates by a factored estimate of their root-mean-square (Adafactor).

    For a matrix leaf whose two largest axes both have at least
    ``min_dim_size_to_factor`` elements, only row and column averages of
    $g^2$ are kept:

    $$
    \begin{aligned}
    \beta_t &= 1 - (t - t_0 + 1)^{-c}, \qquad G_t = g_t^2 + \epsilon \\
    R_t &= \beta_t R_{t-1} + (1 - \beta_t) \operatorname{mean}_{\text{cols}} G_t, \qquad
    C_t = \beta_t C_{t-1} + (1 - \beta_t) \operatorname{mean}_{\text{rows}} G_t \\
    u_t &= g_t \Big/ \sqrt{\frac{R_t}{\operatorname{mean}(R_t)} \, C_t^{\top}}
    \end{aligned}
    $$

    where $t$ counts updates from 0, $c$ is ``decay_rate`` and $t_0$ is
    ``step_offset``. Other leaves keep a full average
    $V_t = \beta_t V_{t-1} + (1 - \beta_t) G_t$ and get $u_t = g_t / \sqrt{V_t}$.
    Leaves of rank >= 3 are factored over their two largest axes.

    Args:
        factored: factor the estimate of large matrices (``False``: keep a full
            average for every leaf).
        decay_rate: the exponent $c$ of the decay schedule, a finite number
            >= 0.
        step_offset: $t_0$, the step at which a fine-tuning phase started.
        min_dim_size_to_factor: factor a leaf only when its two largest axes
            are at least this long (an integer >= 0).
        epsilon: $\epsilon$ added to $g^2$, a finite number >= 0.
        decay_rate_fn: the schedule ``(step - step_offset, decay_rate) ->``
            $\beta_t$ (default: the power law above).

    Returns:
        An ``optax.GradientTransformation`` (``update`` needs ``params``).

    Example:
        >>> import jax.numpy as jnp, jaxopt_lite as jol
        >>> t = jol.scale_by_factored_rms(min_dim_size_to_factor=2)
        >>> params = jnp.zeros((2, 2))
        >>> g = jnp.array([[1.0, 2.0], [3.0, 4.0]])
        >>> u, state = t.update(g, t.init(params), params)
        >>> state.v_row.shape, state.v_col.shape, state.v.shape
        ((2,), (2,), (1,))

    References:
        Shazeer and Stern, *Adafactor: adaptive learning rates with sublinear
        memory cost*, 2018.
    """
    check_bool("factored", factored)
    validate.check_nonnegative("decay_rate", decay_rate)
    validate.check_range("step_offset", step_offset)
    validate.check_int("min_dim_size_to_factor", min_dim_size_to_factor, minimum=0)
    validate.check_nonnegative("epsilon", epsilon)
    validate.check_callable("decay_rate_fn", decay_rate_fn)

    def axes_of(x):
        return _factored_axes(x.shape, factored, min_dim_size_to_factor)

    def init_leaf(p):
        dtype = state_dtype(p, real=True)
        unused = jnp.zeros((1,), dtype)
        axes = axes_of(p)
        if axes is None:
            return unused, unused, jnp.zeros_like(p, dtype)  # p's sharding too
        second, first = axes
        row = jnp.zeros(np.delete(p.shape, first).tolist(), dtype)
        col = jnp.zeros(np.delete(p.shape, second).tolist(), dtype)
        return row, col, unused

    def update_leaf(g, row, col, full, p, decay):
        decay = jnp.asarray(decay).astype(compute_dtype(full))
        sq = add(tree_math.abs_sq(g), epsilon)
        axes = axes_of(p)
        if axes is None:
            full = tree_math.ema(decay, full, sq).astype(full.dtype)
            return mul(g, full**-0.5).astype(g.dtype), row, col, full
        second, first = axes
        row = tree_math.ema(decay, row, sq.mean(axis=first)).astype(row.dtype)
        col = tree_math.ema(decay, col, sq.mean(axis=second)).astype(col.dtype)
        row_axis = second - 1 if second > first else second
        row_factor = (row / row.mean(axis=row_axis, keepdims=True)) ** -0.5
        col_factor = col**-0.5
        u = mul(
            mul(g, jnp.expand_dims(row_factor, axis=first)),
            jnp.expand_dims(col_factor, axis=second),
        )
        return u.astype(g.dtype), row, col, full

    def init_fn(params):
        leaves, treedef = jax.tree.flatten(params)
        slots = [init_leaf(p) for p in leaves]
        rows, cols, fulls = ([slot[i] for slot in slots] for i in range(3))
        return FactoredState(
            count=jnp.zeros([], jnp.int32),
            v_row=jax.tree.unflatten(treedef, rows),
            v_col=jax.tree.unflatten(treedef, cols),
            v=jax.tree.unflatten(treedef, fulls),
        )

    def update_fn(updates, state, params=validate.MISSING):  # required, as in optax
        validate.require_params("scale_by_factored_rms", params)
        decay = decay_rate_fn(state.count - step_offset, decay_rate)
        leaves, treedef = jax.tree.flatten(updates)
        parts = [
            jax.tree.leaves(t) for t in (state.v_row, state.v_col, state.v, params)
        ]
        out = [
            update_leaf(g, row, col, full, p, decay)
            for g, row, col, full, p in zip(leaves, *parts, strict=True)
        ]
        new = [jax.tree.unflatten(treedef, [o[i] for o in out]) for i in range(4)]
        count = tree_math.safe_increment(state.count)
        return new[0], FactoredState(count, new[1], new[2], new[3])

    return optax.GradientTransformation(init_fn, update_fn)


# optax's counterpart keeps optax.EmptyState (no class of its own).
ScaleByParamBlockRmsState = optax.EmptyState


@recipe
def scale_by_param_block_rms(
    min_scale: float | jax.Array = 1e-3,
) -> optax.GradientTransformation:
    r"""Multiply each leaf of the updates by the RMS of its parameters.

    $$
    u \leftarrow g \cdot \max\left(\sqrt{\operatorname{mean}_i |w_i|^2},\;
        s_{\min}\right)
    $$

    so steps are relative to the size of each parameter block (as in
    `adafactor` with ``multiply_by_parameter_scale=True``).

    Args:
        min_scale: the floor $s_{\min}$ of the factor, a finite number >= 0.

    Returns:
        An ``optax.GradientTransformation`` (``update`` needs ``params``).

    Example:
        >>> import jax.numpy as jnp, jaxopt_lite as jol
        >>> t = jol.scale_by_param_block_rms()
        >>> params = jnp.array([3.0, -3.0])
        >>> t.update(jnp.array([1.0, 2.0]), t.init(params), params)[0]
        Array([3., 6.], dtype=float32)
    """
    validate.check_nonnegative("min_scale", min_scale)

    def one(g, p):
        # (Not `tree_math.safe_norm(p, min_scale, mean=True)`: the same numbers
        # eagerly, but fused differently under jit, 1 ulp off optax's.)
        rms = jnp.sqrt(jnp.mean(tree_math.abs_sq(p)))
        small = jnp.less_equal(*promote(rms, min_scale))
        p = jnp.where(small, jnp.ones_like(p), p)
        rms = jnp.sqrt(jnp.mean(tree_math.abs_sq(p)))
        return mul(g, jnp.where(small, *promote(min_scale, rms))).astype(g.dtype)

    def init_fn(params):
        del params
        return ScaleByParamBlockRmsState()

    def update_fn(updates, state, params=validate.MISSING):  # required, as in optax
        validate.require_params("scale_by_param_block_rms", params)
        return jax.tree.map(one, updates, params), state

    return optax.GradientTransformation(init_fn, update_fn)
