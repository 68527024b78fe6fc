"""Helpers shared by the test modules: tree comparisons, a scanned optimizer
run, a compile counter, optax run under JAX's default dtype promotion, and
the JSON report of a helper script run in a fresh process."""

from __future__ import annotations

import collections
import contextlib
import json
import os
import pathlib
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

_COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"


def _numeric(x: Any) -> np.ndarray:
    """NumPy view of a leaf (typed PRNG keys as their key data)."""
    x = jnp.asarray(x)
    if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
        x = jax.random.key_data(x)
    return np.asarray(x)


def assert_trees_close(
    actual: Any,
    expected: Any,
    rtol: float = 1e-6,
    atol: float = 1e-7,
    *,
    check_dtype: bool = False,
    check_structure: bool | str = True,
) -> None:
    """Same tree structure, and every pair of leaves close
    (``assert_allclose``; typed PRNG keys by their key data); with
    ``check_dtype`` the leaves' dtypes must match too.

    ``check_structure="printed"`` compares the printed structures instead
    (states of ours and optax's whose classes share their names);
    ``False`` compares only the leaves, in order."""
    if check_structure == "printed":
        assert str(jax.tree.structure(actual)) == str(jax.tree.structure(expected))
    elif check_structure:
        assert jax.tree.structure(actual) == jax.tree.structure(expected)
    for a, e in zip(jax.tree.leaves(actual), jax.tree.leaves(expected), strict=True):
        if check_dtype:
            assert a.dtype == e.dtype, (a.dtype, e.dtype)
        np.testing.assert_allclose(_numeric(a), _numeric(e), rtol=rtol, atol=atol)


def run_in_scan(
    opt: optax.GradientTransformation,
    params: Any,
    grads: Sequence[Any] | Callable[[Any, jax.Array], Any],
    steps: int | None = None,
    **extra: Any,
) -> tuple[Any, Any]:
    """``(params, state)`` after updates inside one jitted ``lax.scan`` (so the
    state must keep its type). ``grads`` is a list of gradient trees, one per
    step, or a function ``(params, step) -> gradients`` run for ``steps``
    steps (``step`` a float32 scalar counting from 0); ``extra`` goes to
    every ``update``."""
    if callable(grads):
        assert steps is not None
        xs, grad_at = jnp.arange(steps, dtype=jnp.float32), grads
    else:
        xs = jax.tree.map(lambda *g: jnp.stack(g), *grads)
        grad_at = lambda params, g: g

    def body(carry, x):
        params, state = carry
        updates, state = opt.update(grad_at(params, x), state, params, **extra)
        return (optax.apply_updates(params, updates), state), None

    run = jax.jit(lambda p: jax.lax.scan(body, (p, opt.init(p)), xs)[0])
    return run(params)


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


def standard_promotion() -> contextlib.AbstractContextManager:
    """JAX's default dtype promotion while the block runs: for optax, the
    reference of the layer-1 tests, which conftest.py runs under strict
    promotion but which optax is not written for."""
    return jax.numpy_dtype_promotion("standard")


def optax_reference(
    transform: optax.GradientTransformation,
) -> optax.GradientTransformation:
    """An optax ``transform`` whose ``init`` and ``update`` run under
    `standard_promotion` (the same type of transformation)."""

    def init(params):
        with standard_promotion():
            return transform.init(params)

    def update(updates, state, params=None, **extra):
        with standard_promotion():
            return transform.update(updates, state, params, **extra)

    if isinstance(transform, optax.GradientTransformationExtraArgs):
        return optax.GradientTransformationExtraArgs(init, update)
    return optax.GradientTransformation(init, update)


def helper_report(helper: pathlib.Path, timeout: float = 600) -> dict:
    """Run the script ``helper`` (tests/<name>_helper.py) in a fresh Python
    process (without the caller's ``XLA_FLAGS``, so it can set its own device
    count, with this checkout first on the path) and return the JSON object
    it prints."""
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    root = str(helper.parents[1])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
    proc = subprocess.run(
        [sys.executable, str(helper)],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)
