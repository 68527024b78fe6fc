"""Data-parallel `fit` and `sweep` over a Mesh of 8 simulated CPU devices.

XLA's device count is fixed when JAX starts, so the runs happen in a
subprocess (``tests/mesh_helper.py``) that sets
``--xla_force_host_platform_device_count=8`` first; this file asserts on the
numbers it reports.
"""

from __future__ import annotations

import pathlib

import jax.numpy as jnp
import pytest
from helpers import helper_report

import jaxopt_lite as jol

HELPER = pathlib.Path(__file__).with_name("mesh_helper.py")


@pytest.fixture(scope="module")
def report() -> dict:
    return helper_report(HELPER)


def test_eight_devices(report):
    assert report["devices"] == 8


@pytest.mark.parametrize("mesh", ["auto", "explicit"])
def test_fit_with_mesh_matches_one_device(report, mesh):
    assert report[f"fit_{mesh}_params_rel"] < 1e-5
    assert report[f"fit_{mesh}_loss_rel"] < 1e-5
    assert report[f"fit_{mesh}_params_spec"] == "P()"  # replicated


def test_model_state_is_replicated_and_matches_one_device(report):
    assert report["fit_state_rel"] < 1e-5
    assert report["fit_state_spec"] == "P()"


def test_batches_are_split_and_xla_adds_the_all_reduce(report):
    assert report["data_spec"] == "P('data',)"
    assert report["step_hlo_has_all_reduce"]


@pytest.mark.parametrize("mesh", ["data", "runs", "runs_data"])
def test_sweep_with_mesh_matches_one_device(report, mesh):
    assert report[f"sweep_{mesh}_params_rel"] < 1e-5
    assert report[f"sweep_{mesh}_loss_rel"] < 1e-5


@pytest.mark.parametrize(
    ("mesh", "spec"),
    [("data", "P()"), ("runs", "P('runs',)"), ("runs_data", "P('runs',)")],
)
def test_sweep_runs_axis_splits_the_configurations(report, mesh, spec):
    assert report[f"sweep_{mesh}_params_spec"] == spec


def test_mesh_errors(report):
    assert report["error_batch"].startswith(
        "ValueError: batch_size=12 must be divisible by the size of the mesh's "
        "'data' axis (8)"
    )
    assert report["error_axis"].startswith(
        "ValueError: mesh has axes ('runs',); fit needs an axis named 'data'"
    )
    assert report["error_sweep_batch"].startswith(
        "ValueError: batch_size=18 must be divisible by the size of the mesh's "
        "'data' axis (4)"
    )


def test_mesh_must_be_a_mesh():
    with pytest.raises(TypeError, match=r"mesh must be a jax\.sharding\.Mesh"):
        jol.fit(lambda p, b: jnp.sum(p**2), jnp.ones(2), jol.sgd(0.1), steps=1, mesh=8)
