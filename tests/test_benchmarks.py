"""The benchmark suite runs end to end (smoke mode) and writes complete JSON.

No timing is asserted: only that every section ran and every number is a
positive, finite number.
"""

from __future__ import annotations

import json
import math

import pytest
from compile_helper import fewer_xla_optimizations

from jaxopt_lite import benchmarks
from jaxopt_lite.benchmarks import _harness, _updates


def _numbers(tree, path=""):
    """Every int/float leaf of a JSON tree, with its path (bools excluded)."""
    if isinstance(tree, dict):
        for k, v in tree.items():
            yield from _numbers(v, f"{path}.{k}")
    elif isinstance(tree, list):
        for i, v in enumerate(tree):
            yield from _numbers(v, f"{path}[{i}]")
    elif isinstance(tree, (int, float)) and not isinstance(tree, bool):
        yield path, tree


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench") / "smoke.json"
    with fewer_xla_optimizations():  # the cost of this run is compilation
        assert benchmarks.main(["--smoke", "--out", str(out)]) == 0
    return json.loads(out.read_text(encoding="utf-8"))


def test_every_section_is_reported(report):
    assert set(report["sections"]) == set(benchmarks.SECTIONS)
    for name, section in report["sections"].items():
        assert section["rows"], f"section {name} has no rows"


def test_machine_and_versions_are_recorded(report):
    assert report["mode"] == "smoke"
    assert report["machine"]["cpu_count"] >= 1
    assert report["machine"]["device_kind"]
    for package in ("python", "jax", "jaxlib", "optax"):
        assert report["versions"][package]
    assert report["date"][:2] == "20"


def test_numbers_are_positive_and_finite(report):
    numbers = list(_numbers(report["sections"]))
    assert len(numbers) > 50

    # a compile time is 0 when an earlier contestant compiled the same loop;
    # the solvers section records objective values and gradient norms, which
    # can be exactly 0 at a solution; the compile section counts the
    # compilations of later calls, which must be 0; the bounded section counts
    # problems (none of a size in smoke mode) and records projected gradients
    def zero_ok(path):
        return path.endswith(("compile_s", "_later")) or path.startswith(
            (".solvers.runs", ".bounded.")
        )

    # the checkpoints section reports differences of times (a save's cost,
    # the part of it hidden), which noise can make negative in smoke mode
    def any_sign(path):
        return path.startswith(".checkpoints.") and path.endswith(
            ("save_ms", "hidden_fraction")
        )

    bad = [
        (p, v)
        for p, v in numbers
        if not (math.isfinite(v) and (v > 0 or (v == 0 and zero_ok(p)) or any_sign(p)))
    ]
    assert not bad, f"non-positive or non-finite numbers: {bad}"


def test_sections_have_their_key_numbers(report):
    s = report["sections"]
    loop = {r["contestant"] for r in s["loop"]["rows"]}
    assert {"fit", "optax scan", "optax python loop"} <= loop
    assert "fit_vs_optax_scan" in s["loop"]["ratios"][0]
    minimize = s["minimize"]["ratios"][0]
    assert minimize["steps_to_tol_minimize"] == minimize["steps_to_tol_python_loop"]
    assert {r["K"] for r in s["sweep"]["rows"]} == {2}
    assert {r["contestant"] for r in s["update"]["rows"]} == {
        "copy",
        "jaxopt_lite",
        "optax",
        "optax.flatten",
    }
    assert {r["variant"] for r in s["overhead"]["rows"]} >= {
        "default",
        "scan: optax.adam",
    }
    solvers = s["solvers"]
    assert "scipy L-BFGS-B" in solvers["solvers"]
    assert {r["problem"] for r in solvers["runs"]} == {"beale"}
    assert all(r["solved"] for r in solvers["runs"])
    bounded = s["bounded"]["ratios"][0]
    assert bounded["problems"] == len(s["bounded"]["rows"]) >= 1
    assert bounded["solved jaxopt_lite"] == bounded["problems"]
    if "scipy L-BFGS-B" in s["bounded"]["columns"]:
        assert bounded["scipy solved, jaxopt_lite not"] == []
    streams = s["streams"]["ratios"][0]
    assert streams["stream_equals_in_memory"]  # the same batches, in order
    assert {r["variant"] for r in s["checkpoints"]["rows"]} == {
        "no checkpoint", "npz", "orbax, sync", "orbax, async",
    }  # fmt: skip
    assert {"fit", "scan", "python loop"} <= {
        r["contestant"] for r in s["models"]["rows"]
    } or s["models"].get("skipped")


def test_split_tree_sizes():
    tree = _updates.split_tree(10, 3)
    assert [x.size for x in tree.values()] == [4, 3, 3]


def test_table_aligns_columns():
    text = _harness.table("t", [{"a": 1, "b": 2.5}, {"a": 1000, "b": None}], ["a", "b"])
    lines = text.splitlines()
    assert lines[2:] == ["a        b", "1      2.5", "1,000    -"]


def test_bad_arguments_exit_with_usage():
    with pytest.raises(SystemExit):
        benchmarks.main(["--only", "nope"])
    with pytest.raises(ValueError, match="mode='slow'"):
        benchmarks.run("slow")
