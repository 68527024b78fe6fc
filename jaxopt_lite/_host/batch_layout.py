"""What a stream of batches must look like: which data is a stream, and the
layout (structure, shapes, dtypes) that its first batch fixes for the others.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

PyTree = Any
LOADERS = (
    "grain: .batch(n, drop_remainder=True); torch: DataLoader(..., "
    "drop_last=True); tf.data: .batch(n, drop_remainder=True)"
)


def is_stream(data: Any) -> bool:
    """Whether ``data`` is an iterable of batches rather than in-memory data.

    ``None``, arrays, mappings, tuples and strings are not streams (a dict or
    tuple of arrays is a dataset held in memory); lists, generators, iterators
    and data-loader objects are.
    """
    if data is None or isinstance(
        data, (Mapping, tuple, str, bytes, np.ndarray, np.generic, jax.Array)
    ):
        return False
    if hasattr(data, "__array__") or hasattr(data, "__dlpack__"):
        return False  # a tensor of another framework: in-memory data
    return hasattr(type(data), "__iter__")


def short_repr(value: Any) -> str:
    """``repr(value)``, or its type's name when that is long."""
    text = repr(value)
    return text if len(text) <= 60 else f"{type(value).__name__}(...)"


def check_epochs(iterable: Any, epochs: Any) -> None:
    """``epochs`` (``None`` or an int >= 1) of a stream; more than one needs an
    iterable that starts afresh at every ``iter()``."""
    if epochs is None:
        return
    if isinstance(epochs, bool) or not isinstance(epochs, int):
        raise TypeError(f"epochs must be an int or None, got {epochs!r}.")
    if epochs < 1:
        raise ValueError(f"epochs={epochs} is not allowed: it must be >= 1.")
    if epochs > 1 and iter(iterable) is iterable:
        raise ValueError(
            f"epochs={epochs} needs data that can be iterated again for each "
            f"epoch (a list, a data loader); data={short_repr(iterable)} is an "
            "iterator, which is used up after one pass: give steps= instead, or "
            "pass the loader itself rather than iter(loader)."
        )


class BatchLayout:
    """The layout of a stream's batch 0, and the checks of later batches.

    Attributes:
        treedef: the batches' structure.
        paths: each leaf's path (for messages).
        shapes, dtypes: each leaf's shape and host dtype.
        batch_size: the leading size shared by every leaf.
        first: batch 0's leaves as NumPy arrays.
    """

    def __init__(self, first: Any):
        flat, self.treedef = jax.tree_util.tree_flatten_with_path(first)
        if not flat:
            raise ValueError("the first batch of data has no array leaves.")
        self.paths = [jax.tree_util.keystr(path) for path, _ in flat]
        self.first = [self._array(0, i, leaf) for i, (_, leaf) in enumerate(flat)]
        self.shapes = [a.shape for a in self.first]
        self.dtypes = [a.dtype for a in self.first]
        self._layout = [(a.shape, a.dtype) for a in self.first]
        sizes = {a.shape[0] for a in self.first}
        if len(sizes) > 1:
            found = dict(zip(self.paths, self.shapes, strict=True))
            raise ValueError(
                f"the leaves of the first batch disagree on the batch size: {found}."
            )
        self.batch_size: int = sizes.pop()

    def _array(self, step: int, i: int, leaf: Any) -> np.ndarray:
        array = np.asarray(leaf)
        if not (
            jnp.issubdtype(array.dtype, jnp.number)
            or jnp.issubdtype(array.dtype, jnp.bool_)
        ):
            raise TypeError(
                f"batch {step} of data: leaf {self.paths[i]} has dtype "
                f"{array.dtype}; batches may hold only numeric or boolean arrays."
            )
        if array.ndim == 0:
            hint = ""
            if isinstance(leaf, (int, float, complex)):
                hint = (
                    " (a list is a stream of batches: to pass a (nested) Python "
                    "list of numbers as data, make it an array, np.asarray(data))"
                )
            raise ValueError(
                f"batch {step} of data: leaf {self.paths[i]} is a scalar; every "
                f"leaf needs a leading batch axis{hint}."
            )
        return array

    def check(self, step: int, batch: Any) -> tuple[list[np.ndarray], bool]:
        """Batch ``step``'s leaves, and whether it is shorter (a last batch)."""
        flat, treedef = jax.tree_util.tree_flatten(batch)
        if treedef != self.treedef:
            raise ValueError(
                f"batch {step} of data has structure {treedef}, expected "
                f"{self.treedef} (that of batch 0)."
            )
        arrays = [np.asarray(leaf) for leaf in flat]
        if [(a.shape, a.dtype) for a in arrays] == self._layout:
            return arrays, False  # the usual case: exactly like batch 0
        arrays = [self._array(step, i, leaf) for i, leaf in enumerate(flat)]
        for path, a, dtype in zip(self.paths, arrays, self.dtypes, strict=True):
            if a.dtype != dtype:
                raise ValueError(
                    f"batch {step} of data: leaf {path} has dtype {a.dtype}, "
                    f"expected {dtype} (as in batch 0)."
                )
        sizes = {a.shape[0] for a in arrays}
        trailing = [a.shape[1:] for a in arrays] == [s[1:] for s in self.shapes]
        if trailing and len(sizes) == 1 and sizes.pop() < self.batch_size:
            return arrays, True
        for path, a, shape in zip(self.paths, arrays, self.shapes, strict=True):
            if a.shape != shape:
                raise ValueError(
                    f"batch {step} of data: leaf {path} has shape {a.shape}, "
                    f"expected {shape} (as in batch 0); every batch must have "
                    "the same shapes."
                )
        return arrays, False
