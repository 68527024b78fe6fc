"""`masked` and `partition`: transforms applied to parts of the parameter tree."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from typing import Any, NamedTuple

import jax
import numpy as np
import optax
from jax.core import Tracer

from jaxopt_lite._core.recipe import recipe
from jaxopt_lite._core.validate import check_bool, check_prefix, check_transform

PyTree = Any


class MaskedState(NamedTuple):
    """The state of the inner transform (which only sees the masked-in leaves)."""

    inner_state: Any


@recipe
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
    check_bool("mask_compatible_extra_args", mask_compatible_extra_args)
    mask_is_function = is_mask_function(mask)
    if not mask_is_function:
        check_mask_leaves(mask)
    inner = optax.with_extra_args_support(inner)

    def mask_for(tree, what):
        mask_tree = mask(tree) if mask_is_function else mask
        if mask_is_function:
            check_mask_leaves(mask_tree)
        check_prefix("mask", mask_tree, tree, what)
        return mask_tree

    def select(mask_tree, tree):
        return jax.tree.map(
            lambda m, x: x if m else optax.MaskedNode(), mask_tree, tree
        )

    def init_fn(params):
        if is_params_placeholder(params):  # optax.tree.map_params
            return MaskedState(inner.init(params))
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


@recipe
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
    labels_are_function = is_mask_function(param_labels)
    if not labels_are_function:
        _check_labels(param_labels, transforms)
    groups = {
        label: optax.with_extra_args_support(t) for label, t in transforms.items()
    }

    def labels_for(tree, what):
        labels = param_labels(tree) if labels_are_function else param_labels
        if labels_are_function:
            _check_labels(labels, transforms)
        check_prefix("param_labels", labels, tree, what)
        return labels

    def group_masked(labels, label):
        mask = jax.tree.map(lambda x: x == label, labels)
        return masked(
            groups[label], mask, mask_compatible_extra_args=mask_compatible_extra_args
        )

    def init_fn(params):
        if is_params_placeholder(params):  # optax.tree.map_params
            return PartitionState(
                {label: masked(t, True).init(params) for label, t in groups.items()}
            )
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


@recipe
def multi_transform(
    transforms: Mapping[Hashable, optax.GradientTransformation],
    param_labels: PyTree | Callable[[PyTree], PyTree],
    *,
    mask_compatible_extra_args: bool = False,
) -> optax.GradientTransformationExtraArgs:
    r"""`partition` under its former optax name.

    $$
    u_i \leftarrow T_{\ell_i}(g)_i \quad \text{where } \ell_i \text{ is the
    label of leaf } i
    $$

    optax keeps ``multi_transform`` as the former name of ``partition``;
    this one calls `partition`, so it takes the same arguments and gives the
    same numbers and state (a `PartitionState`).

    Args:
        transforms: a mapping ``label -> transform``.
        param_labels: a tree of labels (or a prefix of one), or a function
            ``params -> labels``, as for `partition`.
        mask_compatible_extra_args: passed on to `masked`.

    Returns:
        An ``optax.GradientTransformationExtraArgs``.

    Example:
        >>> import jax.numpy as jnp, jaxopt_lite as jol
        >>> params = (jnp.ones(1), jnp.ones(1))
        >>> opt = jol.multi_transform(
        ...     {"a": jol.scale(2.0), "b": jol.set_to_zero()}, ("a", "b"))
        >>> opt.update(params, opt.init(params))[0]
        (Array([2.], dtype=float32), Array([0.], dtype=float32))
    """
    return partition(
        transforms, param_labels, mask_compatible_extra_args=mask_compatible_extra_args
    )


# --- helpers shared by the combinator modules -----------------------------


def is_mask_function(mask: Any) -> bool:
    """optax's rule: a mask (or labels) is a function ``params -> mask`` when
    every leaf of the tree it forms is callable. A callable pytree (an
    equinox ``Module`` whose leaves are booleans) is a mask tree, not a
    function."""
    leaves = jax.tree.leaves(jax.tree.map(callable, mask))
    return bool(leaves) and all(leaves)


def is_params_placeholder(params: Any) -> bool:
    """Whether ``init`` was given the leafless stand-in for the parameters
    that ``optax.tree.map_params`` uses to locate parameter-shaped subtrees
    (``init`` then returns the inner states built from the stand-in, as
    ``optax.masked`` does)."""
    return type(params).__name__ == "_ParamsPlaceholder" and not jax.tree.leaves(params)


def check_mask_leaves(mask_tree: PyTree) -> None:
    """``TypeError`` unless every leaf of ``mask_tree`` is a boolean known at
    trace time (a Python or NumPy bool, or a concrete 0-d bool array)."""
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
