"""Gradient noise: the piece of `noisy_sgd`."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import optax

from jaxopt_lite._core import tree_math, validate
from jaxopt_lite._core.dtypes import add, compute_dtype, div, mul, promote
from jaxopt_lite._core.recipe import recipe


def resolve_key(key: Any, seed: Any) -> jax.Array:
    """``key`` or its older spelling ``seed`` (not both); ``None`` means 0."""
    if seed is not None:
        if key is not None:
            raise ValueError(
                "Give only one of key and seed (seed is the older name of key), "
                f"got key={key!r} and seed={seed!r}."
            )
        return validate.check_key("seed", seed)
    return validate.check_key("key", key)


# optax's class itself, so that states compare equal to optax's as trees.
AddNoiseState = optax.AddNoiseState


@recipe
def add_noise(
    eta: float | jax.Array,
    gamma: float | jax.Array,
    key: Any = None,
    *,
    seed: int | None = None,
) -> optax.GradientTransformation:
    r"""Add annealed Gaussian noise to the updates.

    $$
    u_t \leftarrow g_t + \sigma_t \, \xi_t, \qquad
    \sigma_t^2 = \frac{\eta}{t^{\gamma}}, \qquad \xi_t \sim \mathcal{N}(0, I)
    $$

    for the $t$-th update ($t = 1, 2, \dots$). The key is split once per
    update (the next key is kept in the state) and once more per leaf, as
    optax does, so the same key gives optax's numbers. Noise for complex
    leaves is complex normal.

    Args:
        eta: the initial variance $\eta$, a finite number >= 0.
        gamma: the annealing exponent $\gamma$, a finite number >= 0.
        key: an integer seed, a key from ``jax.random.key`` (possibly traced,
            e.g. ``vmap``-ed over seeds) or a raw ``jax.random.PRNGKey``;
            ``None`` means seed 0.
        seed: the older name of ``key`` (give one of them).

    Returns:
        An ``optax.GradientTransformation``.

    Example:
        >>> import jax.numpy as jnp, jaxopt_lite as jol
        >>> t = jol.add_noise(eta=0.0, gamma=0.55, key=0)
        >>> t.update(jnp.array([1.0, 2.0]), t.init(None))[0]
        Array([1., 2.], dtype=float32)
        >>> t = jol.add_noise(eta=0.01, gamma=0.55, key=0)
        >>> u, state = t.update(jnp.zeros(3), t.init(None))
        >>> u.shape, int(state.count)
        ((3,), 1)

    References:
        Neelakantan et al., *Adding gradient noise improves learning for very
        deep networks*, 2015.
    """
    validate.check_nonnegative("eta", eta)
    validate.check_nonnegative("gamma", gamma)
    rng_key = resolve_key(key, seed)

    def init_fn(params):
        del params
        return AddNoiseState(count=jnp.zeros([], jnp.int32), rng_key=rng_key)

    def update_fn(updates, state, params=None):
        del params
        count = tree_math.safe_increment(state.count)
        next_key, sample_key = jax.random.split(state.rng_key)
        leaves, treedef = jax.tree.flatten(updates)
        keys = jax.random.split(sample_key, len(leaves))

        def noisy_leaf(g, k):
            # sigma in the leaf's precision (float32, float64 for float64 leaves)
            steps = jnp.asarray(count).astype(compute_dtype(g))
            std = jnp.sqrt(div(eta, jnp.power(*promote(steps, gamma))))
            return add(g, mul(std, jax.random.normal(k, g.shape, g.dtype))).astype(
                g.dtype
            )

        noisy = [noisy_leaf(g, k) for g, k in zip(leaves, keys, strict=True)]
        new_state = AddNoiseState(count=count, rng_key=next_key)
        return jax.tree.unflatten(treedef, noisy), new_state

    return optax.GradientTransformation(init_fn, update_fn)
