r"""Differential privacy: `differentially_private_aggregate`, the per-example
clipping and Gaussian noise of DP-SGD."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import optax
import optax.contrib

from jaxopt_lite._core import tree_math, validate
from jaxopt_lite._core.dtypes import add, div, mul
from jaxopt_lite._core.recipe import recipe
from jaxopt_lite._transforms.noise import resolve_key

DifferentiallyPrivateAggregateState = optax.contrib.DifferentiallyPrivateAggregateState
"""optax.contrib's class itself (so states equal optax's as trees): the PRNG
key of the next draw."""


def _clipped_sum(grads: list[jax.Array], clip: Any) -> list[jax.Array]:
    r"""$\sum_i g_i \min(1, C / \lVert g_i \rVert)$ over the examples $i$ (axis
    0 of every leaf), the norm taken over all leaves of example $i$; an
    example of norm 0 keeps factor 1."""
    norms = jax.vmap(tree_math.tree_global_norm)(grads)
    factors = jnp.nan_to_num(jnp.minimum(div(clip, norms), 1.0), nan=1.0)
    return [
        jnp.tensordot(factors.astype(g.dtype), g, axes=1).astype(g.dtype) for g in grads
    ]


@recipe
def differentially_private_aggregate(
    l2_norm_clip: float | jax.Array,
    noise_multiplier: float | jax.Array,
    key: Any = None,
    *,
    seed: int | None = None,
) -> optax.GradientTransformation:
    r"""Aggregate per-example gradients as DP-SGD: clip each, sum, add noise.

    $$
    u = \frac{1}{B} \left( \sum_{i=1}^{B} g_i
    \min\left(1, \frac{C}{\lVert g_i \rVert_2}\right)
    + \sigma C \, \xi \right), \qquad \xi \sim \mathcal{N}(0, I)
    $$

    The updates must hold per-example gradients: every leaf has the batch
    of $B$ examples on axis 0 (``jax.vmap`` of ``jax.grad`` gives them); the
    result has the parameters' shapes. $\lVert g_i \rVert$ is the norm of
    example $i$ over all leaves. The key is split once per update into the
    next key and one key per leaf, as optax does, so the same key gives
    optax's numbers. Use it first in a chain (`dpsgd` does).

    Args:
        l2_norm_clip: $C$, a finite number >= 0.
        noise_multiplier: $\sigma$, a finite number >= 0.
        key: an integer seed or a PRNG key (``None`` means seed 0).
        seed: the older name of ``key`` (give one of them).

    Returns:
        An ``optax.GradientTransformation``.

    Example:
        >>> import jax.numpy as jnp, jaxopt_lite as jol
        >>> t = jol.differentially_private_aggregate(2.5, 0.0, key=0)
        >>> per_example = jnp.array([[3.0, 4.0], [1.0, 0.0]])  # norms 5 and 1
        >>> t.update(per_example, t.init(None))[0]  # ([1.5, 2] + [1, 0]) / 2
        Array([1.25, 1.  ], dtype=float32)

    References:
        Abadi et al., *Deep Learning with Differential Privacy*, 2016.
    """
    validate.check_nonnegative("l2_norm_clip", l2_norm_clip)
    validate.check_nonnegative("noise_multiplier", noise_multiplier)
    rng_key = resolve_key(key, seed)

    def init_fn(params):
        del params
        return DifferentiallyPrivateAggregateState(rng_key=rng_key)

    def update_fn(updates, state, params=None):
        del params
        leaves, treedef = jax.tree.flatten(updates)
        if not leaves:
            return updates, state
        batch = jnp.shape(leaves[0])[:1]
        if any(jnp.ndim(g) < 1 or jnp.shape(g)[:1] != batch for g in leaves):
            raise ValueError(
                "differentially_private_aggregate needs per-example gradients: "
                "every leaf with the same batch size on axis 0, got shapes "
                f"{[jnp.shape(g) for g in leaves]}."
            )
        next_key, *keys = jax.random.split(state.rng_key, len(leaves) + 1)
        std = mul(l2_norm_clip, noise_multiplier)
        noisy = [
            div(
                add(g, mul(std, jax.random.normal(k, g.shape, g.dtype))), batch[0]
            ).astype(g.dtype)
            for g, k in zip(_clipped_sum(leaves, l2_norm_clip), keys, strict=True)
        ]
        return treedef.unflatten(noisy), DifferentiallyPrivateAggregateState(next_key)

    return optax.GradientTransformation(init_fn, update_fn)
