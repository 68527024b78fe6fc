"""The ``jaxopt-lite`` command: help, demo, examples, bench, bad arguments.

The full demo's run (``jaxopt-lite demo --fast``) is tested in
tests/test_examples.py, whose examples it runs: there it reuses their compiled
programs.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

import pytest

from jaxopt_lite import _cli

HAVE_MPL = importlib.util.find_spec("matplotlib") is not None


def test_help_explains_every_command(capsys):
    with pytest.raises(SystemExit) as info:
        _cli.main(["--help"])
    assert info.value.code == 0
    text = capsys.readouterr().out
    for command in ("demo", "examples", "bench"):
        assert f"    {command} " in text
    assert "jaxopt-lite demo --fast" in text


@pytest.mark.parametrize(
    ("command", "words"),
    [
        ("demo", ["--out DIR", "--fast", "jaxopt-lite-demo"]),
        ("examples", ["List the examples"]),
        ("bench", ["--full", "--out FILE"]),
    ],
)
def test_command_help(capsys, command, words):
    with pytest.raises(SystemExit) as info:
        _cli.main([command, "--help"])
    assert info.value.code == 0
    text = capsys.readouterr().out
    for word in words:
        assert word in text


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["frobnicate"],
        ["demo", "--fsat"],
        ["demo", "--out"],
        ["examples", "extra"],
        ["bench", "--full=3"],
    ],
)
def test_bad_arguments_exit_with_status_2(capsys, argv):
    with pytest.raises(SystemExit) as info:
        _cli.main(argv)
    assert info.value.code == 2
    assert "usage: jaxopt-lite" in capsys.readouterr().err


def test_version(capsys):
    with pytest.raises(SystemExit) as info:
        _cli.main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.startswith("jaxopt-lite ")


def test_examples_lists_every_example(capsys):
    from jaxopt_lite import examples

    assert _cli.main(["examples"]) == 0
    text = capsys.readouterr().out
    for name in examples.available():
        assert f"  {name} " in text
    assert "python -m jaxopt_lite.examples.<name> [--fast] [--out DIR]" in text
    assert "`" not in text


def test_format_table_aligns_columns():
    rows = [
        {
            "demo": "a",
            "method": "gd",
            "steps": 3,
            "final_loss": 0.5,
            "accuracy": None,
            "time_s": 1.0,
        },
        {
            "demo": "bb",
            "method": "adam",
            "steps": None,
            "final_loss": 1e-9,
            "accuracy": 0.975,
            "time_s": None,
        },
    ]
    lines = _cli.format_table(rows).splitlines()
    assert lines[0].split() == [
        "demo",
        "method",
        "steps",
        "final",
        "loss",
        "accuracy",
        "time",
        "(s)",
    ]
    assert set(lines[1]) <= {"-", " "}
    assert lines[2].split() == ["a", "gd", "3", "0.5", "-", "1.00"]
    assert lines[3].split() == ["bb", "adam", "-", "1e-09", "97.50%", "-"]
    assert len({len(line) for line in lines[:2]}) == 1


def test_demo_without_matplotlib_says_how_to_get_plots(monkeypatch, capsys, tmp_path):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: (
            None if name.split(".")[0] in ("matplotlib", "sklearn") else real(name, *a)
        ),
    )
    monkeypatch.setattr(_cli, "DEMOS", _cli.DEMOS[:1] + _cli.DEMOS[3:])
    assert _cli.main(["demo", "--fast", "--out", str(tmp_path / "p")]) == 1
    text = capsys.readouterr().out
    assert "plots skipped: matplotlib is not installed" in text
    assert "pip install 'jaxopt-lite[examples]'" in text
    assert "[2/2] digits classifier (digits_mlp): skipped, needs sklearn" in text
    assert not (tmp_path / "p").exists()


def test_bench_forwards_arguments(monkeypatch):
    import types

    calls = []
    fake = types.ModuleType("jaxopt_lite.benchmarks")
    fake.main = lambda argv: calls.append(argv) or 0  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "jaxopt_lite.benchmarks", fake)
    assert _cli.main(["bench"]) == 0
    assert _cli.main(["bench", "--full", "--out", "r.json"]) == 0
    assert _cli.main(["bench", "--smoke", "--only", "loop"]) == 0
    assert calls == [[], ["--full", "--out", "r.json"], ["--smoke", "--only", "loop"]]


def test_bench_without_suite_says_so(monkeypatch, capsys):
    import types

    monkeypatch.setitem(
        sys.modules,
        "jaxopt_lite.benchmarks",
        types.ModuleType("jaxopt_lite.benchmarks"),
    )
    assert _cli.main(["bench"]) == 1
    assert "benchmark suite" in capsys.readouterr().err


def test_python_dash_m_runs_the_command():
    """``python -m jaxopt_lite`` is the command, exit status included (its
    help text is tested in-process above)."""
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    bad = subprocess.run(
        [sys.executable, "-m", "jaxopt_lite", "nope"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
    )
    assert bad.returncode == 2
    assert "usage: jaxopt-lite" in bad.stderr
    assert "invalid choice" in bad.stderr
