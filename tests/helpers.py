"""Helpers shared by the test modules: tree comparisons and a compile counter."""

from __future__ import annotations

import collections
import contextlib
from collections.abc import Iterator
from typing import Any

import jax
import numpy as np

_COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"


def assert_trees_close(
    actual: Any,
    expected: Any,
    rtol: float = 1e-6,
    atol: float = 1e-7,
    *,
    check_dtype: bool = False,
    check_structure: bool = True,
) -> None:
    """Same tree structure (unless ``check_structure`` is off: then only the
    leaves are compared, in order), and every pair of leaves close
    (``assert_allclose``); with ``check_dtype`` the leaves' dtypes must match
    too."""
    if check_structure:
        assert jax.tree.structure(actual) == jax.tree.structure(expected)
    for a, e in zip(jax.tree.leaves(actual), jax.tree.leaves(expected), strict=True):
        if check_dtype:
            assert a.dtype == e.dtype, (a.dtype, e.dtype)
        np.testing.assert_allclose(np.asarray(a), np.asarray(e), rtol=rtol, atol=atol)


@contextlib.contextmanager
def count_compiles() -> Iterator[collections.Counter[str]]:
    """Count XLA backend compilations, by function name, while the block runs
    (``counter["step"]`` for a ``jax.jit``-ed function called ``step``); read
    from `jax.monitoring` events, the public record of compilations."""
    counter: collections.Counter[str] = collections.Counter()

    def listener(event: str, duration_secs: float, **kwargs: Any) -> None:
        del duration_secs
        if event == _COMPILE_EVENT:
            name = str(kwargs.get("fun_name", ""))
            counter[name.removeprefix("jit(").removesuffix(")")] += 1

    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        yield counter
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)
