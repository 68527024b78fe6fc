"""Test settings: strict, deterministic, CPU.

Rank promotion raises everywhere. Dtype promotion is strict
(``jax_numpy_dtype_promotion="strict"``: no implicit mixing of integer and
floating arrays, nor of floating dtypes) in the modules that test layer 1
(`STRICT_PROMOTION`), which computes every dtype on purpose.
"""

import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax
import pytest

jax.config.update("jax_numpy_rank_promotion", "raise")

# Scripts the tests run in subprocesses: they set XLA flags and read argv when
# run, so `--doctest-modules` must not import them.
collect_ignore_glob = ["*_helper.py"]

STRICT_PROMOTION = frozenset(
    {
        "test_transforms",
        "test_optimizers",
        "test_optimizer_behaviour",
        "test_schedules",
        "test_schedule_sweeps",
        "test_schedule_checks",
        "test_schedule_precision",
        "test_schedule_bounds",
        "test_combine",
        "test_clipping",
        "test_inject",
        "test_plateau",
        "test_averaging",
        "test_finite_accumulate",
        "test_float64",
        "test_optax_fidelity",
        "test_nu_dtype",
        "test_more_optimizers",
        "test_wrappers",
        "test_gradient_utilities",
        "test_soap",
        "test_pruning",
        "test_contrib",
        "test_optax_calls",
    }
)


@pytest.fixture(autouse=True)
def _dtype_promotion(request):
    """Strict dtype promotion for the tests of the modules in
    `STRICT_PROMOTION`; the default ("standard") elsewhere."""
    module = request.node.module
    strict = module is not None and module.__name__ in STRICT_PROMOTION
    with jax.numpy_dtype_promotion("strict" if strict else "standard"):
        yield
