"""The host-side callbacks of `fit`: the no-op base class, the CSV logger read
back with `csv`, and the TensorBoard logger read back with TensorBoard's own
event reader."""

from __future__ import annotations

import csv
import os
import pathlib
import subprocess
import sys
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxopt_lite as jol

# params, opt_state, history, step, stopped_early, interrupted, best_step
_RESULT = jol.FitResult({}, (), {}, 0, False, False, None)


def _chunk(start: int, windows: int, log_every: int = 2, evals: int = 0) -> dict:
    """History rows of one chunk, as `fit` hands them over: float32 metrics,
    int32 steps, fixed pseudo-random values (some not exactly representable)."""
    rng = np.random.default_rng(start)
    step = np.arange(1, windows + 1, dtype=np.int32) * log_every + start
    rows = {
        "step": step,
        "loss": rng.normal(size=windows).astype(np.float32) / 3,
        "grad_norm": rng.uniform(size=windows).astype(np.float32),
        "skipped": np.array([0] * (windows - 1) + [1], np.int32)[:windows],
        "learning_rate": np.full(windows, 1e-3, np.float32),
        "accuracy": rng.uniform(size=windows).astype(np.float32),
    }
    rows["eval_step"] = step[-1:][:evals]
    rows["eval_loss"] = rng.normal(size=1).astype(np.float32)[:evals]
    rows["eval_accuracy"] = rng.uniform(size=1).astype(np.float32)[:evals]
    return rows


def _concat(chunks: list[dict]) -> dict:
    return {k: np.concatenate([c[k] for c in chunks]) for k in chunks[0]}


def _train(rows: dict) -> dict:
    return {k: v for k, v in rows.items() if not k.startswith("eval_")}


def _evals(rows: dict) -> dict:
    return {k: v for k, v in rows.items() if k.startswith("eval_")}


def _read_csv(path: pathlib.Path) -> tuple[list[str], dict[str, list[str]]]:
    with open(path, newline="", encoding="utf-8") as f:
        header, *lines = list(csv.reader(f))
    return header, {name: [line[i] for line in lines] for i, name in enumerate(header)}


def _assert_csv_equals(path: pathlib.Path, expected: dict) -> None:
    header, columns = _read_csv(path)
    assert sorted(header) == sorted(expected)
    for name, values in expected.items():
        parsed = np.array(columns[name], dtype=values.dtype)
        np.testing.assert_array_equal(parsed, values, strict=True)


# --------------------------------------------------------------------------
# Callback


def test_callback_methods_are_noops():
    callback = jol.Callback()
    rows = _chunk(0, 3)
    assert callback.on_chunk(rows, step=6, elapsed=1.0) is None
    assert callback.on_end(_RESULT) is None
    assert callback.close() is None
    for name in ("on_chunk", "on_end", "close"):
        assert getattr(jol.CSVLogger, name).__doc__
    assert issubclass(jol.CSVLogger, jol.Callback)
    assert issubclass(jol.TensorBoardLogger, jol.Callback)


def test_callback_subclass_overrides_only_what_it_needs():
    seen = []

    class Steps(jol.Callback):
        def on_chunk(self, rows, *, step, elapsed):
            seen.append((step, rows["step"].tolist()))

    callback = Steps()
    callback.on_chunk(_chunk(0, 2), step=4, elapsed=0.5)
    callback.on_end(_RESULT)
    callback.close()
    assert seen == [(4, [2, 4])]


# --------------------------------------------------------------------------
# CSVLogger


def test_csv_round_trips_rows_exactly(tmp_path):
    chunks = [_chunk(0, 3, evals=1), _chunk(6, 3), _chunk(12, 2, evals=1)]
    logger = jol.CSVLogger(tmp_path / "run.csv")
    for c in chunks:
        logger.on_chunk(c, step=int(c["step"][-1]), elapsed=0.1)
        assert (tmp_path / "run.csv").is_file()  # flushed, still open
    logger.on_end(_RESULT)
    logger.close()
    history = _concat(chunks)
    header, _ = _read_csv(tmp_path / "run.csv")
    names = ["step", "loss", "grad_norm", "skipped", "learning_rate", "accuracy"]
    assert header == names
    _assert_csv_equals(tmp_path / "run.csv", _train(history))
    eval_header, _ = _read_csv(tmp_path / "run_eval.csv")
    assert eval_header == ["eval_step", "eval_loss", "eval_accuracy"]
    _assert_csv_equals(tmp_path / "run_eval.csv", _evals(history))
    assert _read_csv(tmp_path / "run_eval.csv")[1]["eval_step"] == ["6", "16"]


def test_csv_flushes_each_chunk_and_needs_no_eval_file(tmp_path):
    logger = jol.CSVLogger(str(tmp_path / "sub" / "run.csv"))
    first = _chunk(0, 2)
    logger.on_chunk(first, step=4, elapsed=0.1)
    _assert_csv_equals(tmp_path / "sub" / "run.csv", _train(first))  # still open
    logger.close()
    assert sorted(p.name for p in (tmp_path / "sub").iterdir()) == ["run.csv"]


def test_csv_float64_and_nonfinite_values_round_trip(tmp_path):
    rows = {
        "step": np.array([1, 2, 3], np.int32),
        "loss": np.array([np.pi, np.nan, np.inf]),
        "tiny": np.array([5e-324, -0.0, 1 / 3]),
    }
    logger = jol.CSVLogger(tmp_path / "run.csv")
    logger.on_chunk(rows, step=3, elapsed=0.0)
    logger.close()
    _assert_csv_equals(tmp_path / "run.csv", rows)


def test_csv_replaces_an_old_file_without_append(tmp_path):
    path = tmp_path / "run.csv"
    path.write_text("old,file\n1,2\n")
    logger = jol.CSVLogger(path)
    rows = _chunk(0, 2)
    logger.on_chunk(rows, step=4, elapsed=0.1)
    logger.close()
    _assert_csv_equals(path, _train(rows))


def test_csv_append_continues_a_resumed_run(tmp_path):
    chunks = [_chunk(0, 2, evals=1), _chunk(4, 2, evals=1), _chunk(8, 2, evals=1)]
    first = jol.CSVLogger(tmp_path / "run.csv")
    first.on_chunk(chunks[0], step=4, elapsed=0.1)
    first.on_chunk(chunks[1], step=8, elapsed=0.1)  # written, then the run died
    first.close()
    # The checkpoint held the first chunk only: the resumed run repeats the
    # second chunk, which must not be written twice.
    resumed = jol.CSVLogger(tmp_path / "run.csv", append=True)
    resumed.on_chunk(chunks[1], step=8, elapsed=0.1)
    resumed.on_chunk(chunks[2], step=12, elapsed=0.1)
    resumed.close()
    history = _concat(chunks)
    _assert_csv_equals(tmp_path / "run.csv", _train(history))
    _assert_csv_equals(tmp_path / "run_eval.csv", _evals(history))


def test_csv_append_creates_a_missing_file(tmp_path):
    logger = jol.CSVLogger(tmp_path / "run.csv", append=True)
    rows = _chunk(0, 3)
    logger.on_chunk(rows, step=6, elapsed=0.1)
    logger.close()
    _assert_csv_equals(tmp_path / "run.csv", _train(rows))


def test_csv_append_refuses_other_columns(tmp_path):
    path = tmp_path / "run.csv"
    path.write_text("step,loss\n1,0.5\n")
    logger = jol.CSVLogger(path, append=True)
    with pytest.raises(ValueError, match=r"append=True but .*run.csv has the col"):
        logger.on_chunk(_chunk(0, 2), step=4, elapsed=0.1)
    logger.close()
    assert path.read_text() == "step,loss\n1,0.5\n"


def test_csv_reopens_after_close_and_appends(tmp_path):
    chunks = [_chunk(0, 2), _chunk(4, 2)]
    logger = jol.CSVLogger(tmp_path / "run.csv")
    logger.on_chunk(chunks[0], step=4, elapsed=0.1)
    logger.close()
    logger.on_chunk(chunks[1], step=8, elapsed=0.1)
    logger.close()
    logger.close()  # idempotent
    _assert_csv_equals(tmp_path / "run.csv", _train(_concat(chunks)))


def test_csv_refuses_changed_columns(tmp_path):
    logger = jol.CSVLogger(tmp_path / "run.csv")
    logger.on_chunk(_chunk(0, 2), step=4, elapsed=0.1)
    rows = _chunk(4, 2)
    rows["extra"] = rows["loss"]
    with pytest.raises(ValueError, match="every chunk must have the same columns"):
        logger.on_chunk(rows, step=8, elapsed=0.1)
    logger.close()


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"path": 3}, TypeError, "path must be a non-empty str or os.PathLike"),
        ({"path": ""}, TypeError, "path must be a non-empty str or os.PathLike"),
        ({"path": "run.csv", "append": 1}, TypeError, "append must be True or Fal"),
    ],
)
def test_csv_bad_arguments(kwargs, error, message):
    with pytest.raises(error, match=message):
        jol.CSVLogger(**kwargs)


def test_csv_path_must_not_be_a_directory(tmp_path):
    with pytest.raises(ValueError, match=r"path=.* is a directory; give a file"):
        jol.CSVLogger(tmp_path)


@pytest.mark.parametrize(
    ("rows", "error", "message"),
    [
        ([1, 2], TypeError, "rows must be a dict of NumPy arrays, got list"),
        ({"loss": np.ones(2)}, ValueError, r"no 'step'"),
        ({"eval_loss": np.ones(1)}, ValueError, r"no 'eval_step'"),
        (
            {"step": np.arange(2), "loss": np.ones(3)},
            ValueError,
            r"\['loss'\] must be one-dimensional arrays as long as rows\['step'\]",
        ),
    ],
)
def test_bad_rows(tmp_path, rows, error, message):
    logger = jol.CSVLogger(tmp_path / "run.csv")
    with pytest.raises(error, match=message):
        logger.on_chunk(rows, step=2, elapsed=0.1)
    logger.close()


# --------------------------------------------------------------------------
# TensorBoardLogger


def _read_scalars(logdir: pathlib.Path) -> dict[str, list[tuple[int, float]]]:
    event_accumulator = pytest.importorskip(
        "tensorboard.backend.event_processing.event_accumulator"
    )
    accumulator = event_accumulator.EventAccumulator(str(logdir))
    accumulator.Reload()
    return {
        tag: [(e.step, e.value) for e in accumulator.Scalars(tag)]
        for tag in accumulator.Tags()["scalars"]
    }


def test_tensorboard_writes_every_column_at_its_step(tmp_path):
    pytest.importorskip("tensorboardX")
    chunks = [_chunk(0, 3, evals=1), _chunk(6, 3), _chunk(12, 2, evals=1)]
    logger = jol.TensorBoardLogger(tmp_path, prefix="train/")
    logger.on_chunk(chunks[0], step=6, elapsed=3.0)
    logger.on_chunk(chunks[1], step=12, elapsed=0.5)
    logger.on_chunk(chunks[2], step=16, elapsed=0.25)
    # Flushed per chunk: readable before close.
    assert len(_read_scalars(tmp_path)["train/loss"]) == 8
    logger.on_end(_RESULT)
    logger.close()

    scalars = _read_scalars(tmp_path)
    history = _concat(chunks)
    expected = {
        name: (history["eval_step" if name.startswith("eval_") else "step"], values)
        for name, values in history.items()
        if name not in ("step", "eval_step")
    }
    assert sorted(scalars) == sorted(
        ["train/steps_per_second"] + [f"train/{name}" for name in expected]
    )
    for name, (steps, values) in expected.items():
        got_steps, got_values = zip(*scalars[f"train/{name}"], strict=True)
        assert list(got_steps) == steps.tolist()
        np.testing.assert_allclose(got_values, values, rtol=1e-7, atol=0)
    # No rate for the first chunk (compilation; unknown start when resumed);
    # then (12 - 6) / 0.5 and (16 - 12) / 0.25.
    rate_steps, rates = zip(*scalars["train/steps_per_second"], strict=True)
    assert rate_steps == (12, 16)
    np.testing.assert_allclose(rates, [12.0, 16.0], rtol=1e-7)


def test_tensorboard_chunk_without_rows_logs_only_the_rate(tmp_path):
    pytest.importorskip("tensorboardX")
    empty = {k: v[:0] for k, v in _chunk(0, 2, evals=1).items()}
    logger = jol.TensorBoardLogger(str(tmp_path))
    logger.on_chunk(_chunk(0, 2), step=4, elapsed=1.0)
    logger.on_chunk(empty, step=10, elapsed=2.0)
    logger.on_chunk(empty, step=10, elapsed=1.0)  # no progress: no rate
    logger.close()
    scalars = _read_scalars(tmp_path)
    assert [s for s, _ in scalars["loss"]] == [2, 4]
    assert scalars["steps_per_second"] == [(10, 3.0)]


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"logdir": None}, TypeError, "logdir must be a non-empty str or os.PathL"),
        ({"logdir": b"runs"}, TypeError, "logdir must be a non-empty str or os.Pa"),
        ({"logdir": "runs", "prefix": 1}, TypeError, "prefix must be a str, got 1"),
    ],
)
def test_tensorboard_bad_arguments(kwargs, error, message):
    with pytest.raises(error, match=message):
        jol.TensorBoardLogger(**kwargs)


def test_tensorboard_logdir_must_not_be_a_file(tmp_path):
    (tmp_path / "runs").write_text("")
    with pytest.raises(ValueError, match=r"logdir=.*runs' is a file"):
        jol.TensorBoardLogger(tmp_path / "runs")


@pytest.mark.parametrize(
    ("step", "elapsed", "error", "message"),
    [
        (2.0, 0.1, TypeError, "step must be an integer, got 2.0"),
        (True, 0.1, TypeError, "step must be an integer, got True"),
        (2, "1s", TypeError, "elapsed must be a number of seconds, got '1s'"),
        (2, -1.0, ValueError, r"elapsed=-1.0 must be a number of seconds >= 0"),
        (2, float("nan"), ValueError, r"elapsed=nan must be a number of seconds"),
    ],
)
def test_tensorboard_bad_step_or_elapsed(tmp_path, step, elapsed, error, message):
    pytest.importorskip("tensorboardX")
    logger = jol.TensorBoardLogger(tmp_path)
    with pytest.raises(error, match=message):
        logger.on_chunk(_chunk(0, 1), step=step, elapsed=elapsed)
    logger.close()
    assert list(tmp_path.iterdir()) == []  # nothing was written


def test_tensorboard_without_tensorboardx_says_how_to_install(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "tensorboardX", None)
    with pytest.raises(ImportError, match=r"pip install 'jaxopt-lite\[tensorboard\]'"):
        jol.TensorBoardLogger(tmp_path)


def test_importing_jaxopt_lite_does_not_import_tensorboardx():
    code = (
        "import sys, jaxopt_lite\n"
        "assert 'tensorboardX' not in sys.modules\n"
        "assert 'tensorboard' not in sys.modules\n"
        "print('ok')"
    )
    out = subprocess.run(
        [sys.executable, "-W", "error", "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=pathlib.Path(__file__).resolve().parents[1],
        env=dict(os.environ, JAX_PLATFORMS="cpu"),
        timeout=120,
    )
    assert out.stdout.strip() == "ok"


def test_loggers_take_a_real_fit_history(tmp_path):
    """The rows of a whole `fit` run (aux metric, learning rate, evaluations)
    round-trip through both loggers."""
    x = jnp.linspace(-1.0, 1.0, 32)
    data = {"x": x, "y": 2 * x}

    def loss_fn(p, b) -> Any:  # (loss, aux): has_aux=True
        err = p * b["x"] - b["y"]
        return jnp.mean(err**2), {"mae": jnp.mean(jnp.abs(err))}

    result = jol.fit(
        loss_fn, jnp.array(0.0), jol.sgd(0.1), data, steps=8, batch_size=8,
        key=jax.random.key(0), has_aux=True, log_every=2, eval_every=4,
        eval_fn=lambda p, d: {"loss": jnp.mean((p * d["x"] - d["y"]) ** 2)},
        eval_data=data,
    )  # fmt: skip
    history = result.history
    assert sorted(history) == sorted(
        ["step", "loss", "grad_norm", "skipped", "learning_rate", "mae",
         "eval_step", "eval_loss"]
    )  # fmt: skip
    csv_logger = jol.CSVLogger(tmp_path / "run.csv")
    csv_logger.on_chunk(history, step=result.step, elapsed=0.1)
    csv_logger.on_end(result)
    csv_logger.close()
    _assert_csv_equals(tmp_path / "run.csv", _train(history))
    _assert_csv_equals(tmp_path / "run_eval.csv", _evals(history))

    pytest.importorskip("tensorboardX")
    tb_logger = jol.TensorBoardLogger(tmp_path / "tb")
    tb_logger.on_chunk(history, step=result.step, elapsed=0.1)
    tb_logger.on_end(result)
    tb_logger.close()
    scalars = _read_scalars(tmp_path / "tb")
    assert [s for s, _ in scalars["mae"]] == [2, 4, 6, 8]
    assert [s for s, _ in scalars["eval_loss"]] == [4, 8]
    np.testing.assert_allclose(
        [v for _, v in scalars["eval_loss"]], history["eval_loss"], rtol=1e-7
    )
