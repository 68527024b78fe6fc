"""Nothing lost: a failed checkpoint save, a Ctrl-C (once or twice, during a
save, a callback or the compiler) never costs finished work, and loggers and
checkpoints agree after any interruption and resume (every row exactly once).
"""

from __future__ import annotations

import csv
import errno
import logging
import os
import signal
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxopt_lite as jol
from jaxopt_lite._host import checkpoint

X = np.linspace(-1.0, 1.0, 64, dtype=np.float32)
DATA = {"x": X, "y": 3.0 * X + 1.0}
PARAMS = {"w": jnp.zeros([]), "b": jnp.zeros([])}
OPTIONS = dict(steps=24, batch_size=8, chunk_size=4, key=jax.random.key(0))


def loss_fn(p, batch):
    return jnp.mean((p["w"] * batch["x"] + p["b"] - batch["y"]) ** 2)


def run(**options):
    return jol.fit(loss_fn, PARAMS, jol.adam(0.1), DATA, **{**OPTIONS, **options})


def _same(a, b):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


class Interrupt(jol.Callback):
    """Ctrl-C at the ``at``-th chunk: raised (``signal=False``) or a real
    SIGINT sent to this process (``signal=True``)."""

    def __init__(self, at, signal=False):
        self.at, self.seen, self.signal = at, 0, signal

    def on_chunk(self, rows, *, step, elapsed):
        self.seen += 1
        if self.seen == self.at:
            if self.signal:
                os.kill(os.getpid(), signal.SIGINT)
            else:
                raise KeyboardInterrupt


def test_a_failed_save_is_reported_and_loses_nothing(tmp_path, monkeypatch):
    def full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(checkpoint, "save_checkpoint", full_disk)
    with pytest.warns(RuntimeWarning, match="No space left on device"):
        result = run(checkpoint_dir=tmp_path)
    assert result.step == 24 and "No space left on device" in result.save_error
    _same(result.params, run().params)
    assert "save_error=" in repr(result)


def test_a_second_ctrl_c_during_the_final_save_is_absorbed(tmp_path, monkeypatch):
    save = checkpoint.save_checkpoint

    def interrupted_save(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGINT)  # the second Ctrl-C, during the save
        return save(*args, **kwargs)

    monkeypatch.setattr(checkpoint, "save_checkpoint", interrupted_save)
    # paced chunks: the only save is the final one, after the first Ctrl-C
    result = run(checkpoint_dir=tmp_path, callbacks=[Interrupt(2)], chunk_size=None)
    assert result.interrupted
    saved = jol.load_checkpoint(tmp_path, _like())
    assert 0 < int(saved.tree.step) <= result.step <= 24
    monkeypatch.setattr(checkpoint, "save_checkpoint", save)
    resumed = run(checkpoint_dir=tmp_path, resume=True, chunk_size=None)
    _same(resumed.params, run().params)


def _like():
    """A state tree shaped like the saved one (a fresh run's initial state)."""
    from jaxopt_lite._fit.engine import FitEngine
    from jaxopt_lite._host.options import RunOptions
    from jaxopt_lite._host.plan import plan_run

    plan = plan_run(loss_fn, PARAMS, DATA, RunOptions(**OPTIONS))
    return FitEngine(plan, jol.adam(0.1)).init()


@pytest.mark.parametrize("signalled", [False, True], ids=["raised", "sigint"])
@pytest.mark.parametrize("first", [True, False], ids=["before", "after"])
def test_loggers_have_every_row_once_after_interrupt_and_resume(
    tmp_path, signalled, first
):
    path = tmp_path / "log.csv"

    def callbacks(*extra):
        logger = jol.CSVLogger(path, append=True)
        return [*extra, logger] if first else [logger, *extra]

    part = run(checkpoint_dir=tmp_path / "ckpt",
               callbacks=callbacks(Interrupt(3, signalled)))  # fmt: skip
    assert part.interrupted
    rest = run(checkpoint_dir=tmp_path / "ckpt", resume=True, callbacks=callbacks())
    whole = run()
    with open(path) as f:
        steps = [int(r["step"]) for r in csv.DictReader(f)]
    assert steps == list(range(1, 25))
    _same(rest.params, whole.params)
    np.testing.assert_array_equal(rest.history["loss"], whole.history["loss"])


def test_tensorboard_has_every_step_once_after_interrupt_and_resume(tmp_path):
    from tensorboard.backend.event_processing import event_accumulator

    logs = tmp_path / "tb"
    run(checkpoint_dir=tmp_path / "ckpt",
        callbacks=[jol.TensorBoardLogger(logs), Interrupt(3)])  # fmt: skip
    run(checkpoint_dir=tmp_path / "ckpt", resume=True,
        callbacks=[jol.TensorBoardLogger(logs)])  # fmt: skip
    events = event_accumulator.EventAccumulator(str(logs), purge_orphaned_data=True)
    events.Reload()
    steps = [e.step for e in events.Scalars("loss")]
    assert steps == list(range(1, 25))


def test_callbacks_can_read_the_parameters_and_state():
    class Snapshots(jol.Callback):
        def __init__(self):
            self.seen = []

        def on_chunk(self, rows, *, step, elapsed, params, state):
            self.seen.append((step, float(params["w"]), state))

    snapshots = Snapshots()
    result = run(callbacks=[snapshots])
    assert [s for s, _, _ in snapshots.seen] == [4, 8, 12, 16, 20, 24]
    assert snapshots.seen[-1][1] == float(result.params["w"])
    assert snapshots.seen[0][2] is None


def test_a_result_prints_as_a_short_summary():
    result = run(eval_fn=lambda p, d: {"accuracy": -loss_fn(p, d)}, eval_data=DATA,
                 eval_every=8)  # fmt: skip
    text = repr(result)
    assert text.startswith("FitResult(step=24, loss=") and "eval_accuracy=" in text
    assert len(text) < 200 and "Array" not in text


def test_without_a_terminal_a_run_logs_its_progress(caplog):
    with caplog.at_level(logging.INFO, logger="jaxopt_lite"):
        run(progress=None)  # pytest's stderr is not a terminal
    assert "fit: step 24/24, loss " in caplog.text


def test_an_interrupted_run_says_so_loudly(caplog):
    result = run(progress=False, callbacks=[Interrupt(2)])
    assert result.interrupted
    assert caplog.records[-1].levelno == logging.WARNING
    assert "fit was interrupted (Ctrl-C) at step 8 of 24" in caplog.text


def test_without_logging_configured_the_lines_go_to_stderr(capsys, monkeypatch):
    from jaxopt_lite._host import progress

    monkeypatch.setattr(progress.logger, "hasHandlers", lambda: False)
    run(progress=None, callbacks=[Interrupt(2)])
    err = capsys.readouterr().err
    assert "[jaxopt_lite] fit: step 8/24" in err
    assert "[jaxopt_lite] fit was interrupted (Ctrl-C) at step 8 of 24" in err


_CHILD = textwrap.dedent(
    """
    import sys, jax, jax.numpy as jnp, numpy as np, jaxopt_lite as jol
    x = np.random.default_rng(0).normal(size=(256, 8, 8, 1)).astype(np.float32)
    def loss(p, b):
        y = jax.lax.conv(b, p["k"], (1, 1), "SAME")
        for _ in range(8):  # a compile of a few seconds, for the Ctrl-C to land in
            y = jnp.tanh(jax.lax.conv(y, p["k2"], (1, 1), "SAME"))
        return jnp.mean(y ** 2)
    p = {"k": jnp.ones((4, 1, 3, 3)) * 0.1, "k2": jnp.ones((4, 4, 3, 3)) * 0.1}
    print("ready", flush=True)
    try:
        r = jol.fit(loss, p, jol.adam(1e-3), x.transpose(0, 3, 1, 2), steps=50,
                    batch_size=32, progress=False, checkpoint_dir=sys.argv[1])
        print("returned", r.interrupted, flush=True)
    except KeyboardInterrupt:
        print("raised", flush=True)
    """
)


@pytest.mark.parametrize("delay", [0.5, 1.5])
def test_ctrl_c_during_compilation_ends_cleanly(tmp_path, delay):
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(tmp_path)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert child.stdout.readline().strip() == "ready"
    try:
        child.wait(timeout=delay)
    except subprocess.TimeoutExpired:
        child.send_signal(signal.SIGINT)
    out, err = child.communicate(timeout=120)
    assert child.returncode == 0, err
    assert out.strip() in ("returned True", "returned False", "raised")
