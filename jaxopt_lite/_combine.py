"""Combinators: transforms built from other transforms.

`chain` and `named_chain` compose transforms in sequence; `masked` and
`partition` apply transforms to parts of the parameter tree. The other
combinators live in ``_inject.py``, ``_finite.py``, ``_accumulate.py``,
``_averaging.py`` and ``_plateau.py``; the small private helpers they share
are at the end of this file.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Hashable, Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.core import Tracer

from jaxopt_lite import _validate as v

PyTree = Any


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
        return tuple(t.init(params) for t in parts)

    def update_fn(updates, state, params=None, **extra_args):
        if not isinstance(state, tuple) or len(state) != len(parts):
            raise ValueError(
                f"chain of {len(parts)} transforms got a state that is not a tuple of "
                f"{len(parts)} states: pass the state made by this chain's init."
            )
        new_state = []
        for t, s in zip(parts, state, strict=True):
            updates, s = t.update(updates, s, params, **extra_args)
            new_state.append(s)
        return updates, tuple(new_state)

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def named_chain(
    *named_transforms: tuple[str, optax.GradientTransformation],
) -> optax.GradientTransformationExtraArgs:
    r"""Like `chain`, but each transform has a name and its state is found by it.

    $$
    u \leftarrow T_{\text{name}_k}(\dots T_{\text{name}_1}(g))
    $$

    The state is a ``dict`` mapping each name to the state of its transform,
    so ``state["adam"]`` is the state of the transform named ``"adam"``.

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
        >>> state["lr"].learning_rate
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
        return {name: t.init(params) for name, t in parts}

    def update_fn(updates, state, params=None, **extra_args):
        new_state = {}
        for name, t in parts:
            updates, new_state[name] = t.update(
                updates, state[name], params, **extra_args
            )
        return updates, new_state

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


class MaskedState(NamedTuple):
    """The state of the inner transform (which only sees the masked-in leaves)."""

    inner_state: Any


def masked(
    inner: optax.GradientTransformation,
    mask: PyTree | Callable[[PyTree], PyTree],
    *,
    mask_compatible_extra_args: bool = False,
) -> optax.GradientTransformationExtraArgs:
    r"""Apply ``inner`` to the leaves selected by ``mask``; pass the others through.

    $$
    u_i \leftarrow \begin{cases} T(g)_i & m_i = \text{True} \\
    g_i & m_i = \text{False} \end{cases}
    $$

    ``inner`` only sees (and keeps state for) the selected leaves; the others
    are replaced by ``optax.MaskedNode()`` in what it receives, exactly as in
    ``optax.masked``. A typical use is weight decay on matrices only.

    Args:
        inner: the transform to apply to the selected leaves.
        mask: a tree of Python booleans with the structure of the parameters
            (or a prefix of it: one boolean then covers a whole subtree), or a
            function ``params -> mask`` (called with the parameters in ``init``
            and with the updates in ``update``). The mask must be known at
            trace time (booleans, not traced arrays). A mask whose structure
            does not fit the parameters raises a ``ValueError`` that shows both
            structures.
        mask_compatible_extra_args: also mask extra keyword arguments of
            ``update`` whose tree structure equals that of the updates.

    Returns:
        An ``optax.GradientTransformationExtraArgs``.

    Example:
        >>> import jax.numpy as jnp, jaxopt_lite as jol
        >>> params = {"w": jnp.ones(2), "b": jnp.ones(1)}
        >>> opt = jol.masked(jol.scale(10.0), {"w": True, "b": False})
        >>> updates, _ = opt.update(params, opt.init(params))
        >>> updates["w"], updates["b"]
        (Array([10., 10.], dtype=float32), Array([1.], dtype=float32))
    """
    check_transform("inner", inner)
    if not isinstance(mask_compatible_extra_args, bool):
        raise TypeError(
            "mask_compatible_extra_args must be a bool, got "
            f"{mask_compatible_extra_args!r}."
        )
    if not callable(mask):
        _check_mask_leaves(mask)
    inner = optax.with_extra_args_support(inner)

    def mask_for(tree, what):
        mask_tree = mask(tree) if callable(mask) else mask
        if callable(mask):
            _check_mask_leaves(mask_tree)
        check_prefix("mask", mask_tree, tree, what)
        return mask_tree

    def select(mask_tree, tree):
        return jax.tree.map(
            lambda m, x: x if m else optax.MaskedNode(), mask_tree, tree
        )

    def init_fn(params):
        return MaskedState(inner.init(select(mask_for(params, "params"), params)))

    def update_fn(updates, state, params=None, **extra_args):
        mask_tree = mask_for(updates, "updates")
        if mask_compatible_extra_args:
            structure = jax.tree.structure(updates)
            extra_args = {
                k: select(mask_tree, a) if jax.tree.structure(a) == structure else a
                for k, a in extra_args.items()
            }
        inner_updates, inner_state = inner.update(
            select(mask_tree, updates),
            state.inner_state,
            None if params is None else select(mask_tree, params),
            **extra_args,
        )
        updates = jax.tree.map(
            lambda m, new, old: new if m else old, mask_tree, inner_updates, updates
        )
        return updates, MaskedState(inner_state)

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


class PartitionState(NamedTuple):
    """One `masked` state per label, in a dict keyed by label."""

    inner_states: dict[Hashable, Any]


def partition(
    transforms: Mapping[Hashable, optax.GradientTransformation],
    param_labels: PyTree | Callable[[PyTree], PyTree],
    *,
    mask_compatible_extra_args: bool = False,
) -> optax.GradientTransformationExtraArgs:
    r"""Parameter groups: each label's leaves get their own transform.

    $$
    u_i \leftarrow T_{\ell_i}(g)_i \quad \text{where } \ell_i \text{ is the
    label of leaf } i
    $$

    Same semantics and state layout as ``optax.partition`` (formerly
    ``multi_transform``): each transform is applied, through `masked`, to
    the leaves carrying its label. A transform whose label no leaf carries
    is allowed and sees an empty tree.

    Args:
        transforms: a mapping ``label -> transform``.
        param_labels: a tree of labels with the structure of the parameters
            (or a prefix of it), or a function ``params -> labels``. Every label
            must be a key of ``transforms`` (else ``ValueError``).
        mask_compatible_extra_args: passed on to `masked`.

    Returns:
        An ``optax.GradientTransformationExtraArgs``.

    Example:
        >>> import jax.numpy as jnp, jaxopt_lite as jol
        >>> params = {"w": jnp.ones(2), "b": jnp.ones(1)}
        >>> opt = jol.partition(
        ...     {"fast": jol.scale_by_learning_rate(1.0),
        ...      "slow": jol.scale_by_learning_rate(0.1)},
        ...     {"w": "fast", "b": "slow"})
        >>> updates, _ = opt.update(params, opt.init(params))
        >>> updates["w"], updates["b"]
        (Array([-1., -1.], dtype=float32), Array([-0.1], dtype=float32))
    """
    if not isinstance(transforms, Mapping) or not transforms:
        raise TypeError(
            "transforms must be a non-empty mapping label -> transform, "
            f"got {transforms!r}."
        )
    for label, t in transforms.items():
        check_transform(f"transforms[{label!r}]", t)
    if not callable(param_labels):
        _check_labels(param_labels, transforms)
    groups = {
        label: optax.with_extra_args_support(t) for label, t in transforms.items()
    }

    def labels_for(tree, what):
        labels = param_labels(tree) if callable(param_labels) else param_labels
        if callable(param_labels):
            _check_labels(labels, transforms)
        check_prefix("param_labels", labels, tree, what)
        return labels

    def group_masked(labels, label):
        mask = jax.tree.map(lambda x: x == label, labels)
        return masked(
            groups[label], mask, mask_compatible_extra_args=mask_compatible_extra_args
        )

    def init_fn(params):
        labels = labels_for(params, "params")
        return PartitionState(
            {label: group_masked(labels, label).init(params) for label in groups}
        )

    def update_fn(updates, state, params=None, **extra_args):
        labels = labels_for(updates, "updates")
        new_states = {}
        for label in groups:
            updates, new_states[label] = group_masked(labels, label).update(
                updates, state.inner_states[label], params, **extra_args
            )
        return updates, PartitionState(new_states)

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


# --- helpers shared by the combinator modules -----------------------------


def check_transform(name: str, value: Any) -> None:
    """``TypeError`` unless ``value`` is an ``optax.GradientTransformation``."""
    if not isinstance(value, optax.GradientTransformation):
        raise TypeError(
            f"{name} must be an optax.GradientTransformation, "
            f"got {type(value).__name__}."
        )


def check_count(name: str, value: Any, *, minimum: int) -> None:
    """An integer hyper-parameter ``>= minimum``: a Python or NumPy integer or a
    concrete integer array. Tracers pass unchecked."""
    if isinstance(value, Tracer):
        return
    array = v.concrete_values(value)
    if (
        isinstance(value, bool)
        or array is None
        or array.shape != ()
        or not (
            isinstance(value, numbers.Integral)
            or np.issubdtype(array.dtype, np.integer)
        )
    ):
        raise TypeError(f"{name} must be an integer, got {value!r}.")
    if int(array) < minimum:
        raise ValueError(
            f"{name}={int(array)!r} is not allowed: it must be an integer >= {minimum}."
        )


def check_bool(name: str, value: Any) -> None:
    """``TypeError`` unless ``value`` is a Python bool."""
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool, got {value!r}.")


def check_dtype(name: str, value: Any, *, kind: Any = jnp.floating) -> Any:
    """``None`` or a NumPy/JAX dtype of the given kind (real floating by
    default), returned as a ``jnp.dtype``; ``ValueError`` otherwise."""
    if value is None:
        return None
    try:
        dtype = jnp.dtype(value)
    except TypeError:
        dtype = None
    if dtype is None or not jnp.issubdtype(dtype, kind):
        what = "real floating" if kind is jnp.floating else "floating or complex"
        raise ValueError(
            f"{name}={value!r} is not allowed: it must be None or a {what} dtype "
            "such as jnp.float32."
        )
    return dtype


def real_float_dtype(tree: PyTree, which: str = "highest") -> Any:
    """The highest (or lowest) real floating dtype among the leaves of ``tree``
    (complex leaves count as their real part); float32 when there is none."""
    dtypes = []
    for leaf in jax.tree.leaves(tree):
        dtype = jnp.result_type(leaf)
        if jnp.issubdtype(dtype, jnp.complexfloating):
            dtype = jnp.finfo(dtype).dtype
        if jnp.issubdtype(dtype, jnp.floating):
            dtypes.append(jnp.dtype(dtype))
    if not dtypes:
        return jnp.dtype(jnp.float32)
    pick = max if which == "highest" else min
    return pick(dtypes, key=lambda d: jnp.finfo(d).bits)


def check_prefix(name: str, prefix: PyTree, tree: PyTree, what: str) -> None:
    """``ValueError`` naming ``name`` unless ``prefix``'s structure is a prefix of
    (or equal to) ``tree``'s, showing both structures."""
    try:
        jax.tree.map(lambda _p, _t: None, prefix, tree)
    except (ValueError, TypeError):
        raise ValueError(
            f"{name} does not match the {what}: its tree structure must be the "
            f"{what}' structure or a prefix of it.\n"
            f"  {name} structure: {jax.tree.structure(prefix)}\n"
            f"  {what} structure: {jax.tree.structure(tree)}"
        ) from None


def _check_mask_leaves(mask_tree: PyTree) -> None:
    for leaf in jax.tree.leaves(mask_tree):
        if isinstance(leaf, (bool, np.bool_)):
            continue
        if (
            isinstance(leaf, (np.ndarray, jax.Array))
            and not isinstance(leaf, Tracer)
            and leaf.shape == ()
            and leaf.dtype == np.bool_
        ):
            continue
        raise TypeError(
            "mask leaves must be booleans known at trace time (True: apply the "
            f"transform, False: pass through), got {leaf!r}."
        )


def _check_labels(labels: PyTree, transforms: Mapping[Hashable, Any]) -> None:
    leaves = jax.tree.leaves(labels)
    for leaf in leaves:
        if isinstance(leaf, Tracer) or not isinstance(leaf, Hashable):
            raise TypeError(
                "param_labels leaves must be hashable labels known at trace time "
                f"(keys of transforms), got {leaf!r}."
            )
    unknown = [x for x in dict.fromkeys(leaves) if x not in transforms]
    if unknown:
        raise ValueError(
            f"param_labels has labels with no transform: {unknown}; the labels "
            f"of transforms are {list(transforms)}."
        )
