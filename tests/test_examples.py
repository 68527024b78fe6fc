"""Every shipped example runs in fast mode and reaches its advertised numbers."""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import io
import math
import os

import pytest
from compile_helper import fewer_xla_optimizations

from jaxopt_lite import _cli, examples

HAVE_MPL = importlib.util.find_spec("matplotlib") is not None
HAVE_SKLEARN = importlib.util.find_spec("sklearn") is not None
OWN = [
    "gd_parabola",
    "sgd_least_squares",
    "lr_decay",
    "digits_mlp",
    "text_classification",
    "recommender",
    "flax_equinox",
    "pruning",
]


# The CNN examples compile one training step per call instead of fit's 8 on
# CPU (the same numbers, to float rounding; an eighth of the unrolled program)
SIZES = {
    name: {"unroll": 1} for name in ("cnn_flax_linen", "cnn_flax_nnx", "cnn_equinox")
}


@pytest.fixture(scope="module", autouse=True)
def _compile_less():
    """The examples' cost is compiling their programs."""
    with fewer_xla_optimizations():
        yield


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """Run each example once (fast mode, plots into a temporary folder)."""
    cache: dict[str, tuple[dict, object]] = {}

    def get(name: str):
        if name not in cache:
            out = tmp_path_factory.mktemp(name)
            module = importlib.import_module(f"jaxopt_lite.examples.{name}")
            result = module.run(fast=True, out=str(out), **SIZES.get(name, {}))
            cache[name] = (result, out)
        return cache[name]

    return get


def test_listing_names_every_module_with_a_summary():
    names = examples.available()
    assert names[:6] == OWN[:6]  # simplest first
    assert set(OWN) <= set(names)
    assert not any(name.startswith("_") for name in names)
    for name in names:
        module = importlib.import_module(f"jaxopt_lite.examples.{name}")
        assert callable(module.run) and callable(module.main), name
        assert examples.describe(name).endswith("."), name


def _check_common(result: dict, out, plots: list[str]) -> None:
    for row in result["methods"]:
        assert set(row) == {"method", "steps", "final_loss", "accuracy", "time_s"}
        assert math.isfinite(row["final_loss"])
    if HAVE_MPL:
        assert sorted(p.name for p in out.iterdir()) == sorted(plots)
        assert [p.rsplit("/", 1)[-1] for p in result["plots"]] == plots
    else:
        assert result["plots"] == []


def test_gd_parabola(results):
    r, out = results("gd_parabola")
    _check_common(r, out, ["gd_parabola.png"])
    assert r["converged"]
    assert abs(r["theta"]) < 1e-4
    # theta_t = (1 - 2 eta)^t theta_0, up to float32 rounding.
    assert r["theta"] == pytest.approx(r["closed_form_theta"], rel=1e-4)
    assert r["max_rel_error"] < 1e-4
    assert r["steps_by_rate"][0.5] == 1
    assert r["steps_by_rate"][1.05] is None  # |1 - 2 eta| > 1 diverges


def test_sgd_least_squares(results):
    r, out = results("sgd_least_squares")
    _check_common(r, out, ["sgd_least_squares.png"])
    assert r["gd"]["distance"] < 1e-3
    assert r["gd"]["loss"] == pytest.approx(r["lstsq_loss"], rel=1e-4)
    # Constant-rate SGD ends in a small ball around the least-squares solution.
    assert r["sgd1"]["distance"] < 0.15
    assert r["sgd32"]["distance"] < 0.05
    for key in ("sgd1", "sgd32"):
        assert r["lstsq_loss"] <= r[key]["loss"] < 1.1 * r["lstsq_loss"]
    assert r["sgd1"]["steps"] == 3 * 500


def test_lr_decay(results):
    r, out = results("lr_decay")
    _check_common(r, out, ["lr_decay.png", "schedules.png"])
    excess = r["final_excess"]
    assert set(excess) == {"constant", "exponential_decay", "warmup_cosine_decay"}
    assert all(v > -1e-6 for v in excess.values())
    # Decaying rates get below the constant rate's noise floor.
    assert excess["exponential_decay"] < 0.2 * excess["constant"]
    assert excess["warmup_cosine_decay"] < 0.2 * excess["constant"]


def test_digits_mlp(results):
    pytest.importorskip("sklearn")
    r, out = results("digits_mlp")
    _check_common(r, out, ["digits_mlp.png"])
    assert r["test_accuracy"] > 0.94
    assert r["best_val_accuracy"] > 0.94
    assert r["methods"][0]["accuracy"] == r["test_accuracy"]
    assert r["epochs_run"] <= r["max_epochs"]
    if r["stopped_early"]:
        assert r["best_step"] < r["steps"]


def test_pruning(results):
    """The digits MLP with 90% of its weight-matrix entries exactly zero loses
    at most one point of test accuracy against the same training without
    pruning (fast mode: 97.78% dense, 98.22% pruned on CPU)."""
    pytest.importorskip("sklearn")
    r, out = results("pruning")
    _check_common(r, out, ["pruning.png"])
    assert r["weights"] == 64 * 256 + 256 * 10
    assert r["zero_weights"] == round(0.9 * 64 * 256) + round(0.9 * 256 * 10)
    assert r["sparsity"] == pytest.approx(0.9, abs=1e-4)
    assert r["sparsity_of_state"] == pytest.approx(r["sparsity"])
    assert r["dense_zero_weights"] == 0
    assert r["dense_test_accuracy"] > 0.96
    assert r["accuracy_drop"] <= 0.01
    assert [row["accuracy"] for row in r["methods"]] == [
        r["dense_test_accuracy"],
        r["pruned_test_accuracy"],
    ]


def test_text_classification(results):
    r, out = results("text_classification")
    _check_common(r, out, ["text_classification.png"])
    assert r["test_accuracy"] > 0.9
    assert r["train_accuracy"] > 0.9
    # The words the model leans on are the topic words.
    assert "sugar" not in r["top_words"]["sports"]
    for topic, words in r["top_words"].items():
        assert len(words) == 5, topic


def test_recommender(results):
    r, out = results("recommender")
    _check_common(r, out, ["recommender.png"])
    assert r["rmse_biases"] is None  # the biases-only baseline is skipped in fast mode
    assert r["rmse"] < 0.5 * r["rmse_global_mean"]
    assert r["rmse"] > r["noise"] * 0.9  # no model beats the noise by much


def test_flax_equinox(results):
    r, out = results("flax_equinox")
    ran = [
        name for name in ("flax.linen", "flax.nnx", "equinox") if r[name] is not None
    ]
    _check_common(r, out, ["flax_equinox.png"] if ran else [])
    for name in ran:
        assert r[name]["loss"] < 0.05 < r[name]["initial_loss"], name
    expected_skips = [
        lib for lib in ("flax", "equinox") if importlib.util.find_spec(lib) is None
    ]
    assert r["skipped"] == expected_skips


def test_flax_equinox_skips_missing_libraries(monkeypatch, capsys):
    from jaxopt_lite.examples import flax_equinox

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name in ("flax", "equinox") else real(name, *a),
    )
    with pytest.raises(SystemExit, match="skipped: needs flax, equinox"):
        flax_equinox.main(["--fast"])
    text = capsys.readouterr().out
    assert "flax.linen  skipped: flax is not installed (pip install " in text
    assert "'jaxopt-lite[examples]'" in text
    assert "equinox     skipped: equinox is not installed" in text


@pytest.mark.parametrize("lib", ["flax", "equinox"])
def test_flax_equinox_parts_with_library(results, lib):
    pytest.importorskip(lib)
    r, _ = results("flax_equinox")
    names = ["flax.linen", "flax.nnx"] if lib == "flax" else ["equinox"]
    for name in names:
        assert r[name] is not None and r[name]["steps"] == 100 * 256 // 32


def test_main_prints_a_report(capsys, tmp_path):
    from jaxopt_lite.examples import gd_parabola

    gd_parabola.main(["--fast"])
    text = capsys.readouterr().out
    assert "(1 \u2212 2\u03b7)" in text and "converged = True" in text
    assert "pass --out DIR" in text


def test_main_rejects_bad_arguments(capsys):
    from jaxopt_lite.examples import gd_parabola

    with pytest.raises(SystemExit) as info:
        gd_parabola.main(["--fsat"])
    assert info.value.code == 2


@pytest.mark.parametrize(
    ("name", "library"),
    [("cnn_flax_linen", "flax"), ("cnn_flax_nnx", "flax"), ("cnn_equinox", "equinox")],
)
def test_cnn_examples_train_batch_norm_and_dropout_models(results, name, library):
    pytest.importorskip(library)
    pytest.importorskip("sklearn")
    r, out = results(name)
    _check_common(r, out, [f"{name}.png"])
    assert r["skipped"] is None
    # Fast mode: 5 epochs of 21 steps; the full run (30 epochs) reaches ~99%.
    assert r["steps"] == 5 * 21
    assert r["test_accuracy"] >= 0.95
    assert r["accuracy_by_epoch"][-1] == pytest.approx(r["test_accuracy"], abs=1e-6)
    assert r["accuracy_by_epoch"][-1] > r["accuracy_by_epoch"][0]


def test_cnn_examples_skip_a_missing_library(monkeypatch):
    from jaxopt_lite.examples import _digits_cnn, cnn_equinox

    monkeypatch.setattr(_digits_cnn, "missing", lambda library: True)
    assert cnn_equinox.run(fast=True) == {
        "skipped": "equinox", "test_accuracy": None, "methods": [], "plots": []
    }  # fmt: skip


# `jaxopt-lite demo --fast`, here because it runs the examples above


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    """One fast demo run, shared by the assertions below. It runs examples
    tested above (gd_parabola, sgd_least_squares, lr_decay, digits_mlp) in
    fast mode, reusing their compiled programs."""
    out = tmp_path_factory.mktemp("demo") / "plots"
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        code = _cli.main(["demo", "--fast", "--out", str(out)])
    return code, buffer.getvalue(), out


def test_demo_prints_progress_and_table(demo_run):
    code, text, _ = demo_run
    assert code == 0
    lines = text.splitlines()
    progress = [line for line in lines if line.startswith("[")]
    assert [p.split("]")[0] for p in progress] == ["[1/4", "[2/4", "[3/4", "[4/4"]
    header = next(line for line in lines if line.startswith("demo "))
    assert header.split() == [
        "demo",
        "method",
        "steps",
        "final",
        "loss",
        "accuracy",
        "time",
        "(s)",
    ]
    for name in ("gd_parabola", "sgd_least_squares", "lr_decay"):
        assert any(line.startswith(name + " ") for line in lines), name
    assert "total wall time:" in text
    if HAVE_SKLEARN:
        digits = next(line for line in lines if line.startswith("digits_mlp "))
        accuracy = float(digits.split()[-2].rstrip("%")) / 100
        assert accuracy > 0.94
    else:
        assert "skipped, needs sklearn" in text


def test_demo_writes_plots(demo_run):
    _, text, out = demo_run
    if not HAVE_MPL:
        assert "plots skipped: matplotlib is not installed" in text
        assert not out.exists()
        return
    expected = {
        "gd_parabola.png",
        "sgd_least_squares.png",
        "lr_decay.png",
        "schedules.png",
    }
    if HAVE_SKLEARN:
        expected.add("digits_mlp.png")
    assert set(os.listdir(out)) == expected
    for name in expected:
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"plots written to {out}" in text
