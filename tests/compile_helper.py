"""Fewer XLA optimization passes for tests whose cost is compiling programs
that run for milliseconds (the examples, the benchmark smoke run, the CLI
demo, documentation pages).

``jax_disable_most_optimizations`` roughly halves XLA:CPU compile times; the
programs compute the same numbers (to float rounding) and run slower, which
these tests never time. tests/docs_code.py does the same for the docs pages.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import jax

_FLAG = "jax_disable_most_optimizations"
_ENV = "JAX_DISABLE_MOST_OPTIMIZATIONS"


@contextlib.contextmanager
def fewer_xla_optimizations() -> Iterator[None]:
    """Compile with fewer XLA passes inside the block, in this process and in
    the child processes it starts (through the environment); afterwards, drop
    the programs compiled that way, so later tests of this worker compile
    their own."""
    before, env_before = jax.config.read(_FLAG), os.environ.get(_ENV)
    jax.config.update(_FLAG, True)
    os.environ[_ENV] = "1"
    try:
        yield
    finally:
        jax.config.update(_FLAG, before)
        if env_before is None:
            os.environ.pop(_ENV, None)
        else:
            os.environ[_ENV] = env_before
        jax.clear_caches()
