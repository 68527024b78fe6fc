r"""Parameters seen as matrices: which axes form the matrix, the reshape of a
leaf into a batch of matrices and back, and per-leaf dimension numbers.

Shared by `scale_by_muon` (Newton-Schulz orthogonalization) and
`scale_by_galore` (low-rank projection). A leaf of shape ``s`` with
reduction axes $R$, output axes $O$ and the remaining (batch) axes $B$ is
viewed as $\prod_B s$ matrices of shape $\prod_R s \times \prod_O s$; the
order of the axes inside each group does not change the matrices' rows and
columns, only their order.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax

from jaxopt_lite._combinators.masking import is_mask_function

PyTree = Any


class MatrixAxes(NamedTuple):
    """The batch, reduction (rows) and output (columns) axes of a leaf, as
    non-negative axis numbers."""

    batch: tuple[int, ...]
    reduction: tuple[int, ...]
    output: tuple[int, ...]


def _axis_tuple(name: str, axes: Any, ndim: int, shape: tuple[int, ...]) -> tuple:
    if isinstance(axes, numbers.Integral) and not isinstance(axes, bool):
        axes = (axes,)
    if not isinstance(axes, Sequence) or not all(
        isinstance(a, numbers.Integral) and not isinstance(a, bool) for a in axes
    ):
        raise TypeError(
            f"{name} must be an integer or a tuple of integers, got {axes!r}."
        )
    if not axes or any(not -ndim <= a < ndim for a in axes):
        raise ValueError(
            f"{name}={tuple(axes)!r} is not allowed for a leaf of shape {shape}: it "
            f"must name one or more axes in [-{ndim}, {ndim})."
        )
    return tuple(int(a) % ndim for a in axes)


def matrix_axes(
    shape: tuple[int, ...], reduction_axis: Any, output_axis: Any, *, what: str
) -> MatrixAxes:
    """The `MatrixAxes` of a leaf of ``shape``. ``ValueError`` (naming
    ``what``, the transform) for a leaf of rank < 2 and for overlapping or
    repeated axes."""
    shape = tuple(shape)
    ndim = len(shape)
    if ndim < 2:
        raise ValueError(
            f"{what} works on matrices: a leaf of shape {shape} (rank {ndim}) "
            "cannot be seen as one. Give it no dimension numbers (None) so it "
            "is left out."
        )
    reduction = _axis_tuple("reduction_axis", reduction_axis, ndim, shape)
    output = _axis_tuple("output_axis", output_axis, ndim, shape)
    named = reduction + output
    if len(set(named)) != len(named):
        raise ValueError(
            f"reduction_axis {reduction} and output_axis {output} of a leaf of "
            f"shape {shape} must be distinct axes."
        )
    batch = tuple(a for a in range(ndim) if a not in named)
    return MatrixAxes(batch, reduction, output)


def matrix_sizes(shape: tuple[int, ...], axes: MatrixAxes) -> tuple[int, int, int]:
    """``(batch, rows, columns)``: the number of matrices and their shape."""
    size = lambda group: math.prod(shape[a] for a in group)
    return size(axes.batch), size(axes.reduction), size(axes.output)


def to_matrices(x: jax.Array, axes: MatrixAxes) -> jax.Array:
    """``x`` as an array of shape ``(batch, rows, columns)``."""
    order = axes.batch + axes.reduction + axes.output
    return x.transpose(order).reshape(matrix_sizes(x.shape, axes))


def from_matrices(y: jax.Array, shape: tuple[int, ...], axes: MatrixAxes) -> jax.Array:
    """The inverse of `to_matrices` for a leaf of ``shape``."""
    order = axes.batch + axes.reduction + axes.output
    inverse = sorted(range(len(order)), key=order.__getitem__)
    return y.reshape([shape[a] for a in order]).transpose(inverse)


def check_spec_tree(
    spec: PyTree, *, name: str, is_spec: Callable[[Any], bool]
) -> tuple[list[Any], Any]:
    """The leaves (specs and ``None``) and structure of a tree of dimension
    numbers; ``TypeError`` naming ``name`` for any other leaf. A function
    (see `leaf_specs`) passes unchecked."""
    if is_mask_function(spec):
        return [], None
    is_leaf = lambda x: x is None or is_spec(x)
    specs, treedef = jax.tree.flatten(spec, is_leaf=is_leaf)
    for s in specs:
        if not is_leaf(s):
            raise TypeError(
                f"{name} leaves must be dimension numbers or None, got {s!r}."
            )
    return specs, treedef


def leaf_specs(
    spec: PyTree | Callable[[PyTree], PyTree],
    tree: PyTree,
    *,
    name: str,
    is_spec: Callable[[Any], bool],
) -> list[Any]:
    """The dimension numbers (or ``None``) of every leaf of ``tree``, in the
    order of ``jax.tree.leaves(tree)``.

    ``spec`` is a function ``tree -> specs`` (optax's rule: every leaf of it
    is callable) or a tree of specs and ``None`` whose structure is a prefix
    of ``tree``'s: a spec or ``None`` covers a whole subtree. Subtrees of
    ``tree`` without leaves (``optax.MaskedNode()``, inside `masked` or
    `partition`) get nothing. ``ValueError`` naming ``name`` when the
    structures do not fit; ``TypeError`` for leaves that are neither specs
    nor ``None``."""
    if is_mask_function(spec):
        spec = spec(tree)
    specs, treedef = check_spec_tree(spec, name=name, is_spec=is_spec)
    try:
        subtrees = treedef.flatten_up_to(tree)
    except (ValueError, TypeError):
        raise ValueError(
            f"{name} does not match the parameters: its tree structure must be "
            "theirs or a prefix of it.\n"
            f"  {name} structure: {treedef}\n"
            f"  parameters structure: {jax.tree.structure(tree)}"
        ) from None
    return [
        s for s, sub in zip(specs, subtrees, strict=True) for _ in jax.tree.leaves(sub)
    ]
