"""Optimizer states of sharded parameters are sharded like them, for every
``"optimizer"`` row of the shared table (``tests/transform_table.py``), from
concrete arrays and from abstract ``jax.ShapeDtypeStruct`` parameters (under
``jax.eval_shape``). optax builds some states with ``jnp.zeros(shape)``, which
puts them on one device.

The checks run in a subprocess with 4 simulated CPU devices
(``tests/sharded_state_helper.py``); this file asserts on its report.
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import pytest
from transform_table import rows

HELPER = pathlib.Path(__file__).with_name("sharded_state_helper.py")


@pytest.fixture(scope="module")
def report() -> dict:
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    tests, root = str(HELPER.parent), str(HELPER.parents[1])
    env["PYTHONPATH"] = os.pathsep.join(
        filter(None, [root, tests, env.get("PYTHONPATH")])
    )
    proc = subprocess.run(
        [sys.executable, str(HELPER)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_every_optimizer_row_was_checked_on_four_devices(report):
    assert report["devices"] == 4
    assert report["rows"] == [row.name for row in rows("optimizer")]


def test_states_of_sharded_parameters_keep_their_shardings(report):
    assert report["concrete"] == {}


def test_abstract_states_keep_the_parameters_shardings(report):
    assert report["abstract"] == {}
