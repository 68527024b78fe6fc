"""Transforms without state: `identity`, `set_to_zero`, and `stateless` and
`stateless_with_tree_map`, which turn a function of the updates into a
transform.

They live among the combinators because combinators build on them (`freeze`
masks `set_to_zero`, `monitor` wraps plain measuring functions)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax

from jaxopt_lite._core.recipe import recipe
from jaxopt_lite._core.validate import check_callable

PyTree = Any


def _empty_state(params: PyTree) -> optax.EmptyState:
    del params
    return optax.EmptyState()


@recipe
def identity() -> optax.GradientTransformation:
    r"""Return the updates unchanged.

    $$
    u \leftarrow g
    $$

    The neutral element of `chain`: a placeholder where a transform is
    expected (a label of `partition` that should train as is, for example).
    Its state is ``optax.EmptyState()``, as in ``optax.identity``.

    Returns:
        An ``optax.GradientTransformation``.

    Example:
        >>> import jax.numpy as jnp, jaxopt_lite as jol
        >>> t = jol.identity()
        >>> t.update(jnp.array([1.0, -2.0]), t.init(None))[0]
        Array([ 1., -2.], dtype=float32)
    """

    def update_fn(updates, state, params=None):
        del params
        return updates, state

    return optax.GradientTransformation(_empty_state, update_fn)


@recipe
def set_to_zero() -> optax.GradientTransformation:
    r"""Replace every update by zeros.

    $$
    u \leftarrow 0
    $$

    Parameters updated with it stay where they are: combined with `masked`
    it freezes part of a model (that is `freeze`). The zeros keep each
    update's shape and dtype; the state is ``optax.EmptyState()``.

    Returns:
        An ``optax.GradientTransformation``.

    Example:
        >>> import jax.numpy as jnp, jaxopt_lite as jol
        >>> t = jol.set_to_zero()
        >>> t.update(jnp.array([1.0, -2.0]), t.init(None))[0]
        Array([0., 0.], dtype=float32)
    """

    def update_fn(updates, state, params=None):
        del params
        return jax.tree.map(jnp.zeros_like, updates), state

    return optax.GradientTransformation(_empty_state, update_fn)


@recipe
def stateless(
    f: Callable[[PyTree, PyTree | None], PyTree],
) -> optax.GradientTransformation:
    r"""Make a transform from a function of the updates and the parameters.

    $$
    u \leftarrow f(g, \theta)
    $$

    ``f`` receives the whole updates tree and the parameters (``None`` when
    ``update`` is called without them) and returns the new updates. The
    state is ``optax.EmptyState()``.

    Args:
        f: a function ``(updates, params) -> updates``.

    Returns:
        An ``optax.GradientTransformation``.

    Example:
        >>> import jax, jax.numpy as jnp, jaxopt_lite as jol
        >>> halve = jol.stateless(
        ...     lambda g, p: jax.tree.map(lambda x: x / 2, g))
        >>> halve.update({"w": jnp.array([4.0])}, halve.init(None))[0]
        {'w': Array([2.], dtype=float32)}
    """
    check_callable("f", f)

    def update_fn(updates, state, params=None):
        del state
        return f(updates, params), optax.EmptyState()

    return optax.GradientTransformation(_empty_state, update_fn)


@recipe
def stateless_with_tree_map(
    f: Callable[[jax.Array, jax.Array | None], jax.Array],
) -> optax.GradientTransformation:
    r"""Make a transform from a function applied to each leaf.

    $$
    u_i \leftarrow f(g_i, \theta_i)
    $$

    ``f`` is mapped over the leaves of the updates and of the parameters;
    when ``update`` is called without parameters it receives ``None`` as
    its second argument. The state is ``optax.EmptyState()``.

    Args:
        f: a function ``(update_leaf, param_leaf_or_None) -> update_leaf``.

    Returns:
        An ``optax.GradientTransformation``.

    Example:
        >>> import jax.numpy as jnp, jaxopt_lite as jol
        >>> t = jol.stateless_with_tree_map(lambda g, p: g * p)
        >>> params = {"w": jnp.array([3.0])}
        >>> t.update({"w": jnp.array([2.0])}, t.init(params), params)[0]
        {'w': Array([6.], dtype=float32)}
    """
    check_callable("f", f)

    def update_fn(updates, state, params=None):
        del state
        if params is None:
            return jax.tree.map(lambda g: f(g, None), updates), optax.EmptyState()
        return jax.tree.map(f, updates, params), optax.EmptyState()

    return optax.GradientTransformation(_empty_state, update_fn)
