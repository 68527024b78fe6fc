"""`chain` and `named_chain`: transforms applied one after another."""

from __future__ import annotations

import collections

import optax

from jaxopt_lite._core.recipe import recipe
from jaxopt_lite._core.tree_math import as_arrays
from jaxopt_lite._core.validate import check_transform


@recipe
def chain(
    *transforms: optax.GradientTransformation,
) -> optax.GradientTransformationExtraArgs:
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
        params = as_arrays(params)
        return tuple(t.init(params) for t in parts)

    def update_fn(updates, state, params=None, **extra_args):
        if not isinstance(state, tuple) or len(state) != len(parts):
            # A tuple of the wrong length is a bad value, anything else a bad
            # kind of state (optax's errors too).
            error = ValueError if isinstance(state, tuple) else TypeError
            raise error(
                f"chain of {len(parts)} transforms got a state that is not a tuple of "
                f"{len(parts)} states: pass the state made by this chain's init."
            )
        # Python-number leaves (params given as floats) become arrays first.
        updates, params = as_arrays(updates), as_arrays(params)
        new_state = []
        for t, s in zip(parts, state, strict=True):
            updates, s = t.update(updates, s, params, **extra_args)
            new_state.append(s)
        return updates, tuple(new_state)

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


@recipe
def named_chain(
    *named_transforms: tuple[str, optax.GradientTransformation],
) -> optax.GradientTransformationExtraArgs:
    r"""Like `chain`, but each transform has a name and its state is found by it.

    $$
    u \leftarrow T_{\text{name}_k}(\dots T_{\text{name}_1}(g))
    $$

    The state is an ``OrderedDict`` (in the transforms' order, as optax's)
    mapping each name to the state of its transform, so ``state["adam"]`` is
    the state of the transform named ``"adam"``.

    Args:
        *named_transforms: ``(name, transform)`` pairs, applied in the order
            given; names are distinct strings.

    Returns:
        An ``optax.GradientTransformationExtraArgs``.

    Example:
        >>> import jax.numpy as jnp, jaxopt_lite as jol
        >>> opt = jol.named_chain(("clip", jol.clip(1.0)),
        ...                       ("lr", jol.scale_by_learning_rate(0.1)))
        >>> updates, state = opt.update(jnp.array([5.0]), opt.init(None))
        >>> updates
        Array([-0.1], dtype=float32)
        >>> state["lr"].applied_rate
        Array(0.1, dtype=float32)
    """
    if not named_transforms:
        raise ValueError("named_chain() needs at least one (name, transform) pair.")
    names = []
    for i, pair in enumerate(named_transforms):
        if not (
            isinstance(pair, tuple) and len(pair) == 2 and isinstance(pair[0], str)
        ):
            raise TypeError(
                f"named_chain() argument {i} must be a (name, transform) pair with "
                f"a string name, got {pair!r}."
            )
        check_transform(f"named_chain() argument {i} ({pair[0]!r})", pair[1])
        names.append(pair[0])
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(f"named_chain() names must be distinct; repeated: {repeated}.")
    parts = [(n, optax.with_extra_args_support(t)) for n, t in named_transforms]

    def init_fn(params):
        return collections.OrderedDict((name, t.init(params)) for name, t in parts)

    def update_fn(updates, state, params=None, **extra_args):
        new_state = collections.OrderedDict()
        for name, t in parts:
            updates, new_state[name] = t.update(
                updates, state[name], params, **extra_args
            )
        return updates, new_state

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)
