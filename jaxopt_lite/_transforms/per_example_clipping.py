"""Per-example gradient clipping, as used by differentially private training:
`per_example_global_norm_clip` and `per_example_layer_norm_clip`."""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp

from jaxopt_lite._core import tree_math, validate
from jaxopt_lite._core.dtypes import compute_dtype, div, mul, promote

PyTree = Any


def _check_batch(grads: PyTree, name: str) -> None:
    """``ValueError`` unless every leaf has the same size on axis 0 (the
    batch size)."""
    shapes = [jnp.shape(x) for x in jax.tree.leaves(grads)]
    sizes = {shape[0] if shape else None for shape in shapes}
    if not shapes or None in sizes or len(sizes) > 1:
        raise ValueError(
            f"{name} needs per-example gradients: every leaf with the same batch "
            f"size on axis 0; got shapes {jax.tree.map(jnp.shape, grads)}."
        )


def _clipped_sum(grads: PyTree, clip: Any) -> tuple[PyTree, jax.Array]:
    """The sum over axis 0 of the examples' gradients, each scaled down to
    global norm ``clip`` when larger, and how many were scaled down."""
    norms = jax.vmap(tree_math.tree_global_norm)(grads)
    # min(clip / norm, 1) with 1 where it is NaN (0 / 0), as optax.
    factors = jnp.minimum(*promote(div(clip, norms), 1.0))
    factors = jnp.where(jnp.isnan(factors), jnp.ones_like(factors), factors)
    clipped = jnp.sum(factors < 1, dtype=jnp.int32)

    def one(g):
        f = factors.astype(compute_dtype(g))
        return jnp.tensordot(*promote(f, g), axes=1).astype(g.dtype)

    return jax.tree.map(one, grads), clipped


def per_example_global_norm_clip(
    grads: PyTree, l2_norm_clip: float | jax.Array
) -> tuple[PyTree, jax.Array]:
    r"""Clip each example's gradient to a global norm, then sum the examples.

    $$
    \bar g = \sum_{n} \min\!\left(1, \frac{C}{\lVert g_n \rVert_2}\right) g_n,
    \qquad \text{clipped} = \#\{n : \lVert g_n \rVert_2 > C\}
    $$

    where $g_n$ is example $n$'s gradient (axis 0 of every leaf) and
    $\lVert g_n \rVert_2$ its norm over all leaves. The per-example step of
    DP-SGD (noise is added after). Same numbers as
    ``optax.per_example_global_norm_clip``; the norms do not overflow (see
    `clip_by_global_norm`), an example of norm 0 is kept as it is, and the
    count is int32.

    Args:
        grads: per-example gradients: a tree whose leaves all have the batch
            size on axis 0.
        l2_norm_clip: $C$, a finite number >= 0 (may be traced).

    Returns:
        ``(summed_grads, num_clipped)``: a tree like one example's gradient
        (in each leaf's dtype), and the number of examples scaled down.

    Example:
        >>> import jax.numpy as jnp, jaxopt_lite as jol
        >>> grads = jnp.array([[3.0, 4.0], [0.3, 0.4]])
        >>> jol.per_example_global_norm_clip(grads, 1.0)
        (Array([0.90000004, 1.2       ], dtype=float32), Array(1, dtype=int32))

    References:
        Abadi, Chu, Goodfellow, McMahan, Mironov, Talwar and Zhang, *Deep
        Learning with Differential Privacy*, 2016.
    """
    validate.check_nonnegative("l2_norm_clip", l2_norm_clip)
    _check_batch(grads, "per_example_global_norm_clip")
    return _clipped_sum(grads, l2_norm_clip)


def per_example_layer_norm_clip(
    grads: PyTree, global_l2_norm_clip: float | jax.Array, uniform: bool = True
) -> tuple[PyTree, PyTree]:
    r"""Clip each example's gradient layer by layer, then sum the examples.

    $$
    \bar g^{(l)} = \sum_{n} \min\!\left(1, \frac{C_l}{\lVert g^{(l)}_n
    \rVert_2}\right) g^{(l)}_n, \qquad C_l = \begin{cases} C/\sqrt{L} &
    \text{uniform} \\ C\sqrt{d_l / d} & \text{otherwise} \end{cases}
    $$

    Each leaf $l$ (a layer) of each example $n$ is clipped to its own bound
    $C_l$, where $L$ is the number of leaves, $d_l$ the size of one
    example's leaf and $d$ their total, so that an example's global norm
    stays below $C$. Same numbers as ``optax.per_example_layer_norm_clip``
    (with the conventions of `per_example_global_norm_clip`).

    Args:
        grads: per-example gradients: a tree whose leaves all have the batch
            size on axis 0.
        global_l2_norm_clip: $C$, a finite number >= 0 (may be traced).
        uniform: the same bound for every layer, or bounds in proportion to
            the square roots of the layers' sizes.

    Returns:
        ``(summed_grads, num_clipped)``: two trees like one example's
        gradient structure; the second holds, per leaf, the number of
        examples scaled down (int32).

    Example:
        >>> import jax.numpy as jnp, jaxopt_lite as jol
        >>> grads = {"a": jnp.array([[3.0, 4.0]]), "b": jnp.array([[0.1]])}
        >>> summed, clipped = jol.per_example_layer_norm_clip(grads, 2.0**0.5)
        >>> summed["a"], clipped["a"], clipped["b"]
        (Array([0.6, 0.8], dtype=float32), Array(1, dtype=int32), Array(0, dtype=int32))

    References:
        Andrew, Thakkar, McMahan and Ramaswamy, *Differentially Private
        Learning with Adaptive Clipping*, 2021 (per-layer clipping).
    """
    validate.check_nonnegative("global_l2_norm_clip", global_l2_norm_clip)
    validate.check_bool("uniform", uniform)
    _check_batch(grads, "per_example_layer_norm_clip")
    leaves, structure = jax.tree.flatten(grads)
    sizes = [math.prod(jnp.shape(x)[1:]) for x in leaves]
    total = sum(sizes)
    shares = [1 / len(leaves) if uniform else size / total for size in sizes]
    results = [
        _clipped_sum(x, mul(global_l2_norm_clip, share**0.5))
        for x, share in zip(leaves, shares, strict=True)
    ]
    return (
        jax.tree.unflatten(structure, [r[0] for r in results]),
        jax.tree.unflatten(structure, [r[1] for r in results]),
    )
