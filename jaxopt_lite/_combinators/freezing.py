"""`freeze` and `selective_transform`: parameters held fixed by a mask."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import optax

from jaxopt_lite._combinators.masking import (
    check_mask_leaves,
    is_mask_function,
    masked,
    partition,
)
from jaxopt_lite._combinators.stateless import set_to_zero
from jaxopt_lite._core.recipe import recipe
from jaxopt_lite._core.validate import check_transform

PyTree = Any


@recipe
def freeze(
    mask: PyTree | Callable[[PyTree], PyTree],
) -> optax.GradientTransformationExtraArgs:
    r"""Zero the updates of the leaves the mask selects (they stay fixed).

    $$
    u_i \leftarrow \begin{cases} 0 & m_i = \text{True (frozen)} \\
    g_i & m_i = \text{False} \end{cases}
    $$

    This is ``masked(set_to_zero(), mask)``, as ``optax.freeze``. Put it
    after the optimizer (``chain(adam(1e-3), freeze(mask))``): the frozen
    leaves still cost the optimizer's work and state, and updates are only
    zeroed at the end. `selective_transform` skips that work instead.

    Args:
        mask: ``True`` freezes a leaf, ``False`` leaves it alone. A single
            boolean (everything or nothing), a tree of booleans with the
            structure of the parameters (or a prefix of it), or a function
            ``params -> mask``, as for `masked`.

    Returns:
        An ``optax.GradientTransformationExtraArgs`` whose state is a
        `MaskedState` around ``optax.EmptyState()``.

    Example:
        >>> import jax.numpy as jnp, jaxopt_lite as jol
        >>> params = {"a": jnp.ones(1), "b": jnp.ones(2)}
        >>> opt = jol.chain(jol.sgd(0.1), jol.freeze({"a": True, "b": False}))
        >>> updates, _ = opt.update(params, opt.init(params))
        >>> updates["a"], updates["b"]
        (Array([0.], dtype=float32), Array([-0.1, -0.1], dtype=float32))
    """
    return masked(set_to_zero(), mask)


@recipe
def selective_transform(
    optimizer: optax.GradientTransformation,
    *,
    freeze_mask: PyTree | Callable[[PyTree], PyTree],
) -> optax.GradientTransformationExtraArgs:
    r"""Optimize only the leaves the mask leaves free; the frozen ones get zeros.

    $$
    u_i \leftarrow \begin{cases} 0 & m_i = \text{True (frozen)} \\
    T(g)_i & m_i = \text{False} \end{cases}
    $$

    A `partition` with the labels ``"train"`` (``optimizer``) and
    ``"freeze"`` (`set_to_zero`), as ``optax.selective_transform``: the
    optimizer keeps state for the trained leaves only, and never sees the
    frozen ones. The state is a `PartitionState` whose ``inner_states``
    are ``{"train": ..., "freeze": ...}``.

    ``freeze_mask`` may also be a function ``params -> mask`` here (optax
    maps its labels over the function object itself, so a function freezes
    every leaf: docs/optax-differences.md).

    Args:
        optimizer: the transform applied to the leaves that are not frozen.
        freeze_mask: ``True`` freezes a leaf: a single boolean, a tree of
            booleans with the structure of the parameters (or a prefix of
            it), or a function ``params -> mask``. Keyword only.

    Returns:
        An ``optax.GradientTransformationExtraArgs``.

    Example:
        >>> import jax.numpy as jnp, jaxopt_lite as jol
        >>> params = {"a": jnp.ones(1), "b": jnp.ones(2)}
        >>> opt = jol.selective_transform(jol.sgd(0.1),
        ...                               freeze_mask={"a": True, "b": False})
        >>> updates, _ = opt.update(params, opt.init(params))
        >>> updates["a"], updates["b"]
        (Array([0.], dtype=float32), Array([-0.1, -0.1], dtype=float32))
    """
    check_transform("optimizer", optimizer)
    mask_is_function = is_mask_function(freeze_mask)

    def labels(mask_tree):
        check_mask_leaves(mask_tree)
        return jax.tree.map(lambda m: "freeze" if m else "train", mask_tree)

    transforms = {"train": optimizer, "freeze": set_to_zero()}
    if mask_is_function:
        return partition(transforms, lambda params: labels(freeze_mask(params)))
    return partition(transforms, labels(freeze_mask))
