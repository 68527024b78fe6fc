"""Clipping and cleaning transforms: element-wise, global-norm, block-RMS and
unit-wise (adaptive) clipping, NaN removal and gradient centralization.

Every transform here keeps each leaf's dtype. Complex leaves are clipped by
modulus (the phase is kept). Norms do not overflow (``_core.tree_math.l2_norm``).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import optax

from jaxopt_lite._core import tree_math, validate
from jaxopt_lite._core.dtypes import div, mul, promote
from jaxopt_lite._core.recipe import recipe

# optax's class itself, so that states compare equal to optax's as trees.
ClipState = optax.ClipState


@recipe
def clip(max_delta: float | jax.Array) -> optax.GradientTransformation:
    r"""Clip every element of the updates to $[-\delta, \delta]$.

    $$
    u_i \leftarrow \min(\max(g_i, -\delta), \delta)
    $$

    A complex element is scaled down to modulus $\delta$ when it is larger,
    keeping its phase.

    Args:
        max_delta: the bound $\delta$, a finite number >= 0 (or a traced
            scalar).

    Returns:
        An ``optax.GradientTransformation``.

    Example:
        >>> import jax.numpy as jnp, jaxopt_lite as jol
        >>> t = jol.clip(1.0)
        >>> t.update(jnp.array([-3.0, 0.5, 2.0]), t.init(None))[0]
        Array([-1. ,  0.5,  1. ], dtype=float32)
    """
    validate.check_nonnegative("max_delta", max_delta)

    def clip_leaf(g):
        if jnp.iscomplexobj(g):
            modulus = jnp.abs(g)
            factor = jnp.where(
                modulus > max_delta, max_delta / jnp.where(modulus > 0, modulus, 1), 1
            )
            return mul(g, factor).astype(g.dtype)
        return jnp.clip(*promote(g, -max_delta, max_delta)).astype(g.dtype)

    def init_fn(params):
        del params
        return ClipState()

    def update_fn(updates, state, params=None):
        del params
        return jax.tree.map(clip_leaf, updates), state

    return optax.GradientTransformation(init_fn, update_fn)


# optax's class itself, so that states compare equal to optax's as trees.
ClipByGlobalNormState = optax.ClipByGlobalNormState


@recipe
def clip_by_global_norm(max_norm: float | jax.Array) -> optax.GradientTransformation:
    r"""Rescale the updates so that their global L2 norm is at most ``max_norm``.

    $$
    u \leftarrow \begin{cases}
        g & \lVert g \rVert_2 < c \\
        c \, g / \lVert g \rVert_2 & \text{otherwise}
    \end{cases}
    $$

    The norm is taken over all leaves together, as one vector (accumulated in
    float32 or wider, and without overflow: a float32 gradient of ``1e19``
    per element is clipped to norm $c$, not to zeros as with optax, whose
    sum of squares overflows; see docs/optax-differences.md).

    Args:
        max_norm: the largest norm $c$ allowed, a finite number > 0.

    Returns:
        An ``optax.GradientTransformation``.

    Example:
        >>> import jax.numpy as jnp, jaxopt_lite as jol
        >>> t = jol.clip_by_global_norm(1.0)
        >>> t.update({"a": jnp.array([3.0]), "b": jnp.array([4.0])}, t.init(None))[0]
        {'a': Array([0.6], dtype=float32), 'b': Array([0.8], dtype=float32)}

    References:
        Pascanu, Mikolov and Bengio, *On the difficulty of training recurrent
        neural networks*, 2013.
    """
    validate.check_positive("max_norm", max_norm)

    def init_fn(params):
        del params
        return ClipByGlobalNormState()

    def update_fn(updates, state, params=None):
        del params
        norm = tree_math.tree_global_norm(updates)
        keep = jnp.less(*promote(norm, max_norm))

        def one(g):
            clipped = mul(div(g, norm), max_norm)
            return jnp.where(keep, *promote(g, clipped)).astype(g.dtype)

        return jax.tree.map(one, updates), state

    return optax.GradientTransformation(init_fn, update_fn)


# optax's counterpart keeps optax.EmptyState (no class of its own).
ClipByBlockRmsState = optax.EmptyState


@recipe
def clip_by_block_rms(threshold: float | jax.Array) -> optax.GradientTransformation:
    r"""Rescale each leaf so that its root-mean-square is at most ``threshold``.

    $$
    u \leftarrow \frac{g}{\max\left(1, \operatorname{rms}(g) / c\right)},
    \qquad \operatorname{rms}(g) = \sqrt{\operatorname{mean}_i |g_i|^2}
    $$

    A block is one leaf of the tree (a weight vector or matrix). `adafactor`
    uses this as its update clipping.

    Args:
        threshold: the largest RMS $c$ allowed per leaf, a finite number > 0.

    Returns:
        An ``optax.GradientTransformation``.

    Example:
        >>> import jax.numpy as jnp, jaxopt_lite as jol
        >>> t = jol.clip_by_block_rms(1.0)
        >>> t.update(jnp.array([3.0, -3.0]), t.init(None))[0]
        Array([ 1., -1.], dtype=float32)

    References:
        Shazeer and Stern, *Adafactor: Adaptive learning rates with sublinear
        memory cost*, 2018.
    """
    validate.check_positive("threshold", threshold)

    def one(g):
        rms = tree_math.l2_norm(g, mean=True)
        return div(g, jnp.maximum(1.0, div(rms, threshold))).astype(g.dtype)

    def init_fn(params):
        del params
        return ClipByBlockRmsState()

    def update_fn(updates, state, params=None):
        del params
        return jax.tree.map(one, updates), state

    return optax.GradientTransformation(init_fn, update_fn)


def _unit_axes(x: jax.Array, axis: int | tuple[int, ...] | None) -> Any:
    """The axes summed over to get the norm of each unit of ``x``."""
    if axis is not None:
        return axis
    if jnp.squeeze(x).ndim <= 1:
        return None
    if x.ndim in (2, 3):
        return (0,)
    if x.ndim in (4, 5):
        return tuple(range(x.ndim - 1))
    raise ValueError(
        f"adaptive_grad_clip cannot infer the units of a leaf of shape {x.shape}: "
        "leaves of rank 0 to 5 are supported; pass axis= for other shapes."
    )


def _unit_norm(x: jax.Array, axis: Any) -> jax.Array:
    """The L2 norm of each unit of ``x``, broadcast back to ``x``'s shape."""
    return jnp.broadcast_to(tree_math.l2_norm(x, axis=axis, keepdims=True), x.shape)


# optax's class itself, so that states compare equal to optax's as trees.
AdaptiveGradClipState = optax.AdaptiveGradClipState


@recipe(static=("axis",))
def adaptive_grad_clip(
    clipping: float | jax.Array,
    eps: float | jax.Array = 1e-3,
    axis: int | tuple[int, ...] | None = None,
) -> optax.GradientTransformation:
    r"""Clip each unit of the updates relative to the norm of its parameters.

    $$
    u_k \leftarrow \begin{cases}
        g_k & \lVert g_k \rVert < \lambda \max(\lVert w_k \rVert, \epsilon) \\
        \lambda \max(\lVert w_k \rVert, \epsilon) \,
            \dfrac{g_k}{\max(\lVert g_k \rVert, 10^{-6})} & \text{otherwise}
    \end{cases}
    $$

    A unit $k$ is a slice of a leaf: the whole leaf for scalars and vectors,
    a column (norm over axis 0) for rank 2 and 3, and a slice of the last axis
    for rank 4 and 5 (convolution kernels ``HWIO`` / ``DHWIO``), unless
    ``axis`` names the axes to take the norm over.

    Args:
        clipping: the largest ratio $\lambda$ of update norm to parameter
            norm, a finite number > 0.
        eps: the parameter norm used when it is smaller (so zero-initialized
            parameters can move), a finite number >= 0.
        axis: ``None`` (infer from the rank, see above), an axis or a tuple of
            axes.

    Returns:
        An ``optax.GradientTransformation`` (``update`` needs ``params``).

    Example:
        >>> import jax.numpy as jnp, jaxopt_lite as jol
        >>> t = jol.adaptive_grad_clip(0.1)
        >>> params = jnp.array([3.0, 4.0])
        >>> t.update(jnp.array([6.0, 8.0]), t.init(params), params)[0]
        Array([0.3, 0.4], dtype=float32)

    References:
        Brock, De, Smith and Simonyan, *High-performance large-scale image
        recognition without normalization*, 2021.
    """
    validate.check_positive("clipping", clipping)
    validate.check_nonnegative("eps", eps)
    validate.check_axis("axis", axis)

    def one(g, p):
        axes = _unit_axes(g, axis)
        g_norm = _unit_norm(g, axes)
        limit = mul(clipping, jnp.maximum(*promote(_unit_norm(p, axes), eps)))
        clipped = mul(g, div(limit, jnp.maximum(g_norm, 1e-6)))
        below = jnp.less(*promote(g_norm, limit))
        return jnp.where(below, *promote(g, clipped)).astype(g.dtype)

    def init_fn(params):
        del params
        return AdaptiveGradClipState()

    def update_fn(updates, state, params=validate.MISSING):  # required, as in optax
        validate.require_params("adaptive_grad_clip", params)
        return jax.tree.map(one, updates, params), state

    return optax.GradientTransformation(init_fn, update_fn)


# optax's class itself, so that states compare equal to optax's as trees.
ZeroNansState = optax.ZeroNansState


@recipe
def zero_nans() -> optax.GradientTransformation:
    r"""Replace NaN elements of the updates by zero.

    $$
    u_i \leftarrow \begin{cases} 0 & g_i \text{ is NaN} \\ g_i & \text{otherwise}
    \end{cases}
    $$

    The state's ``found_nan`` tree (same structure as the parameters) holds,
    for each leaf, whether the last update had a NaN there; the transform
    itself does not read it. Infinities are kept.

    Returns:
        An ``optax.GradientTransformation``.

    Example:
        >>> import jax.numpy as jnp, jaxopt_lite as jol
        >>> t = jol.zero_nans()
        >>> u, state = t.update(jnp.array([1.0, jnp.nan]), t.init(jnp.zeros(2)))
        >>> u, state.found_nan
        (Array([1., 0.], dtype=float32), Array(True, dtype=bool))
    """

    def init_fn(params):
        return ZeroNansState(
            found_nan=jax.tree.map(lambda _: jnp.zeros([], jnp.bool_), params)
        )

    def update_fn(updates, state, params=None):
        del params, state
        found = jax.tree.map(lambda g: jnp.isnan(g).any(), updates)
        updates = jax.tree.map(
            lambda g: jnp.where(jnp.isnan(g), jnp.zeros_like(g), g), updates
        )
        return updates, ZeroNansState(found_nan=found)

    return optax.GradientTransformation(init_fn, update_fn)


# optax's counterpart keeps optax.EmptyState (no class of its own).
CentralizeState = optax.EmptyState


@recipe
def centralize() -> optax.GradientTransformation:
    r"""Subtract from each slice along the first axis its mean (for rank >= 2).

    $$
    u_{k,\cdot} \leftarrow g_{k,\cdot} - \operatorname{mean}(g_{k,\cdot})
    $$

    The mean is over all axes but the first; scalars and vectors are left
    unchanged.

    Returns:
        An ``optax.GradientTransformation``.

    Example:
        >>> import jax.numpy as jnp, jaxopt_lite as jol
        >>> t = jol.centralize()
        >>> t.update(jnp.array([[1.0, 2.0, 3.0], [4.0, 6.0, 8.0]]), t.init(None))[0]
        Array([[-1.,  0.,  1.],
               [-2.,  0.,  2.]], dtype=float32)

    References:
        Yong, Huang, Hua and Zhang, *Gradient centralization: a new
        optimization technique for deep neural networks*, 2020.
    """

    def one(g):
        if g.ndim < 2:
            return g
        axes = tuple(range(1, g.ndim))
        return (g - g.mean(axis=axes, keepdims=True)).astype(g.dtype)

    def init_fn(params):
        del params
        return CentralizeState()

    def update_fn(updates, state, params=None):
        del params
        return jax.tree.map(one, updates), state

    return optax.GradientTransformation(init_fn, update_fn)
