"""Combinators: transforms built from other transforms."""

from __future__ import annotations

import optax


def chain(*transforms: optax.GradientTransformation) -> optax.GradientTransformationExtraArgs:
    r"""Apply transforms one after another; the state is the tuple of their states.

    $$
    u \leftarrow T_k(\dots T_2(T_1(g)))
    $$

    Extra keyword arguments of ``update`` (such as ``value=``) reach every
    transform that accepts them.

    Args:
        *transforms: one or more gradient transformations (ours or optax's).

    Returns:
        An ``optax.GradientTransformationExtraArgs``.

    Example:
        >>> import jax.numpy as jnp, jaxopt_lite as jol
        >>> opt = jol.chain(jol.clip(1.0), jol.scale_by_learning_rate(0.1))
        >>> opt.update(jnp.array([5.0]), opt.init(None))[0]
        Array([-0.1], dtype=float32)
    """
    if not transforms:
        raise ValueError("chain() needs at least one transform, got none.")
    for i, t in enumerate(transforms):
        if not isinstance(t, optax.GradientTransformation):
            raise TypeError(
                f"chain() argument {i} must be an optax.GradientTransformation, "
                f"got {type(t).__name__}."
            )
    parts = [optax.with_extra_args_support(t) for t in transforms]

    def init_fn(params):
        return tuple(t.init(params) for t in parts)

    def update_fn(updates, state, params=None, **extra_args):
        new_state = []
        for t, s in zip(parts, state):
            updates, s = t.update(updates, s, params, **extra_args)
            new_state.append(s)
        return updates, tuple(new_state)

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)
