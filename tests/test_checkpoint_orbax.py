"""Checkpoints through Orbax (``checkpointing=``): resuming `fit` and `sweep`
bit-identically, saves written while the next chunk runs, keep-last-N and
keep-best-N, a stream's position, preemption notices, refusals, a save killed
midway, crafted folders, and a two-process run resumed in fresh processes.

The killed save and the two-process run happen in subprocesses
(``tests/orbax_helper.py``), each bounded in time.
"""

from __future__ import annotations

import json
import logging
import os
import pathlib
import shutil
import sys
import threading

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.experimental import multihost_utils

import jaxopt_lite as jol
from jaxopt_lite._host import checkpoint_store, orbax_read, orbax_store

ocp = pytest.importorskip("orbax.checkpoint")

import processes  # noqa: E402
from orbax_helper import DATA, PARAMS, loss_fn, run  # noqa: E402

HELPER = pathlib.Path(__file__).with_name("orbax_helper.py")
ORBAX = jol.Checkpointing(backend="orbax")


def same(a, b) -> None:
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def parts(result):
    return result.params, result.opt_state, result.history


@pytest.fixture(scope="module")
def whole():
    return run()


class Interrupt(jol.Callback):
    def __init__(self, at):
        self.at = at

    def on_chunk(self, rows, *, step, elapsed):
        if step == self.at:
            raise KeyboardInterrupt


def notice_at(monkeypatch, call: int) -> list[int]:
    """JAX's preemption sync point, reached at its ``call``-th query."""
    calls: list[int] = []

    def reached(index):
        calls.append(index)
        return index == call

    monkeypatch.setattr(multihost_utils, "reached_preemption_sync_point", reached)
    return calls


def test_resume_is_bit_identical_and_the_last_n_are_kept(tmp_path, whole):
    keep = jol.Checkpointing(keep_last=2)  # more than one: Orbax, by itself
    part = run(checkpoint_dir=tmp_path, checkpointing=keep, callbacks=[Interrupt(12)])
    assert part.interrupted and not part.preempted and part.step == 12
    assert orbax_read.step_folders(tmp_path) == [4, 8]  # 12 the callback never saw
    assert not jol.has_checkpoint(tmp_path)  # no .npz beside it
    rest = run(checkpoint_dir=tmp_path, checkpointing=keep, resume=True)
    assert rest.step == 24 and not rest.interrupted
    same(parts(rest), parts(whole))
    assert sorted(os.listdir(tmp_path)) == ["20", "24"]  # no lock, no temporary


def test_a_preemption_notice_saves_and_stops(tmp_path, monkeypatch, caplog, whole):
    calls = notice_at(monkeypatch, 2)
    with caplog.at_level(logging.WARNING, logger="jaxopt_lite"):
        part = run(checkpoint_dir=tmp_path / "orbax", checkpointing=ORBAX)
    assert "fit was interrupted (preempted) at step 12 of 24" in caplog.text
    assert calls == [0, 1, 2]  # once per chunk, counted: the sync point's ids
    assert (part.step, part.preempted, part.interrupted) == (12, True, True)
    assert "preempted=True" in repr(part)
    assert orbax_read.step_folders(tmp_path / "orbax") == [12]
    notice_at(monkeypatch, 1)
    npz = run(checkpoint_dir=tmp_path / "npz")  # the same with the .npz
    assert npz.preempted and npz.step == 8
    monkeypatch.undo()
    for folder, ck in (("orbax", ORBAX), ("npz", None)):
        rest = run(checkpoint_dir=tmp_path / folder, resume=True, checkpointing=ck)
        same(parts(rest), parts(whole))


def test_a_sweep_resumes_through_orbax_bit_identically(tmp_path, monkeypatch):
    def sweep(**more):
        return jol.sweep(
            lambda learning_rate: jol.adam(learning_rate),
            {"learning_rate": [0.05, 0.1]}, loss_fn, PARAMS, DATA, steps=12,
            batch_size=8, chunk_size=4, seeds=2, key=jax.random.key(1),
            progress=False, **more,
        )  # fmt: skip

    straight = sweep()
    notice_at(monkeypatch, 0)
    part = sweep(checkpoint_dir=tmp_path, checkpointing=ORBAX)
    assert part.preempted and part.interrupted and part.step == 4
    monkeypatch.undo()
    rest = sweep(checkpoint_dir=tmp_path, checkpointing=ORBAX, resume=True)
    assert rest.step == 12 and not rest.preempted
    same((*parts(rest), rest.score), (*parts(straight), straight.score))


@pytest.mark.parametrize("background", [True, False], ids=["async", "sync"])
def test_saves_are_written_while_the_next_chunk_runs(tmp_path, monkeypatch, background):
    """The first save's files are held back until the callbacks saw the next
    chunk (which the host dispatched before reading): in the background the
    run goes on meanwhile; a synchronous save is written first."""
    from orbax.checkpoint._src.handlers import json_checkpoint_handler as handler

    write, events, release = (
        handler.JsonCheckpointHandler._save_fn,
        [],
        threading.Event(),
    )

    async def held(self, x, directory):
        if isinstance(x, dict) and "leaves" in x:  # our manifest
            if background and "written" not in events:
                release.wait(timeout=60)
            await write(self, x, directory)
            events.append("written")
            return
        await write(self, x, directory)

    class Watch(jol.Callback):
        def on_chunk(self, rows, *, step, elapsed):
            events.append(step)
            if step == 8:  # chunk 12 was dispatched before chunk 8 was read
                release.set()

    monkeypatch.setattr(handler.JsonCheckpointHandler, "_save_fn", held)
    keep = jol.Checkpointing(async_save=background, backend="orbax")
    result = run(checkpoint_dir=tmp_path, checkpointing=keep, callbacks=[Watch()])
    # saves after steps 4, 8, ..., 24: each written before the next, all on disk
    assert events.count("written") == 6 and events[-1] == "written"
    if background:  # the host went on while the first save was held back
        assert events[:3] == [4, 8, "written"]
    else:
        assert events[:3] == [4, "written", 8]
    assert result.save_error is None and orbax_read.step_folders(tmp_path) == [24]


def test_keep_best_keeps_the_best_steps_by_a_history_column(tmp_path):
    keep = jol.Checkpointing(keep_last=1, keep_best=2, best_mode="max")  # the worst
    result = run(checkpoint_dir=tmp_path, checkpointing=keep, log_every=4)
    history = result.history
    loss = dict(zip(history["step"].tolist(), history["loss"].tolist(), strict=True))
    highest = sorted(loss, key=loss.__getitem__)[-2:]
    assert orbax_read.step_folders(tmp_path) == sorted({*highest, 24})
    assert highest != [20, 24]  # the latest alone would not pass
    # an eval metric: no value before the first evaluation (step 8)
    keep = jol.Checkpointing(keep_last=1, keep_best=1, best_metric="score")
    scored = run(
        checkpoint_dir=tmp_path / "eval", checkpointing=keep, eval_every=8,
        eval_fn=lambda p, d: {"score": -loss_fn(p, d)}, eval_data=DATA,
    )  # fmt: skip
    history = scored.history
    evals = dict(zip(history["eval_step"].tolist(), history["eval_score"].tolist(),
                     strict=True))  # fmt: skip
    best = max(evals, key=evals.__getitem__)  # a score: higher is better
    assert orbax_read.step_folders(tmp_path / "eval") == sorted({best, 24})
    resolved = checkpoint_store.check_checkpointing(
        jol.Checkpointing(keep_best=1, best_metric="accuracy"), tmp_path,
        ["loss", "grad_norm", "eval_accuracy"],
    )  # fmt: skip
    assert (resolved.best_metric, resolved.best_mode) == ("eval_accuracy", "max")


def test_a_grain_stream_resumes_through_orbax_exactly(tmp_path):
    grain = pytest.importorskip("grain")
    x = np.random.default_rng(0).normal(size=(96, 3)).astype(np.float32)
    y = x @ np.array([1.0, -2.0, 0.5], np.float32)

    def loader():
        source = grain.MapDataset.range(96).shuffle(seed=5)
        batches = source.map(lambda i: {"x": x[i], "y": y[i]}).batch(8)
        options = grain.ReadOptions(num_threads=0, prefetch_buffer_size=0)
        return iter(batches.to_iter_dataset(options))

    def fit(**more):
        return jol.fit(
            lambda p, b: jnp.mean((b["x"] @ p - b["y"]) ** 2), jnp.zeros(3),
            jol.adam(0.05), loader(), steps=12, chunk_size=3, progress=False,
            **more,
        )  # fmt: skip

    cut = fit(checkpoint_dir=tmp_path, checkpointing=ORBAX, callbacks=[Interrupt(9)])
    assert cut.interrupted and orbax_read.step_folders(tmp_path) == [6]
    resumed = fit(checkpoint_dir=tmp_path, checkpointing=ORBAX, resume=True)
    same(parts(resumed), parts(fit()))


def test_another_runs_checkpoint_is_refused_and_overwrite_replaces_it(tmp_path):
    run(checkpoint_dir=tmp_path, checkpointing=ORBAX, steps=8)
    with pytest.raises(ValueError, match="written with batch_size=8, but this call"):
        run(checkpoint_dir=tmp_path, resume=True, batch_size=16)
    other = {**PARAMS, "c": np.float32(0.0)}
    with pytest.raises(ValueError, match=r"\['c'\] is here but not in the checkpoint"):
        jol.fit(loss_fn, other, jol.adam(0.1), DATA, checkpoint_dir=tmp_path,
                resume=True, steps=24, batch_size=8, chunk_size=4,
                key=jax.random.key(0))  # fmt: skip
    with pytest.raises(ValueError, match="holds a checkpoint of the 'orbax' backend"):
        run(checkpoint_dir=tmp_path, resume=True, checkpointing=jol.Checkpointing(
            backend="npz"))  # fmt: skip
    with pytest.raises(ValueError, match=r"holds a checkpoint \(an Orbax checkpoint"):
        run(checkpoint_dir=tmp_path)
    run(checkpoint_dir=tmp_path, overwrite=True, steps=8)  # auto: the .npz
    assert jol.has_checkpoint(tmp_path) and orbax_read.step_folders(tmp_path) == []
    run(checkpoint_dir=tmp_path, overwrite=True, steps=4, checkpointing=ORBAX)
    assert os.listdir(tmp_path) == ["4"]


@pytest.mark.parametrize(
    "checkpointing, error, match",
    [
        (jol.Checkpointing(keep_last=2, backend="npz"), ValueError, "'npz' backend"),
        (jol.Checkpointing(keep_last=0), ValueError, "keep_last=0 is not allowed"),
        (jol.Checkpointing(backend="zip"), ValueError, "backend='zip' is not allowed"),
        (jol.Checkpointing(keep_best=1, best_metric="acc2"), ValueError, "not a hist"),
        (jol.Checkpointing(best_mode="up"), ValueError, "best_mode='up' is not"),
        (jol.Checkpointing(async_save=1), TypeError, "async_save must be True or"),
        ({"keep_last": 2}, TypeError, "must be a jaxopt_lite.Checkpointing"),
    ],
)
def test_checkpointing_options_are_checked(tmp_path, checkpointing, error, match):
    with pytest.raises(error, match=match):
        run(checkpoint_dir=tmp_path, checkpointing=checkpointing)
    assert not os.listdir(tmp_path)


def test_without_orbax_its_features_name_the_extra(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="checkpointing was given without checkpoint"):
        run(checkpointing=ORBAX)
    monkeypatch.setitem(sys.modules, "orbax.checkpoint", None)
    with pytest.raises(ImportError, match=r"pip install 'jaxopt-lite\[orbax\]'"):
        run(checkpoint_dir=tmp_path, checkpointing=jol.Checkpointing(keep_last=3))
    assert run(checkpoint_dir=tmp_path).step == 24  # the .npz needs nothing


# --- the folder as untrusted input -------------------------------------------

LIKE = {
    "w": jnp.arange(3.0),
    "key": jax.random.key(7),
    "n": jnp.int32(5),
    "none": jnp.zeros((0, 2), jnp.bfloat16),
}
BOUND = {
    "loss": jax.ShapeDtypeStruct((10,), np.float32),
    "eval": jax.ShapeDtypeStruct((10,), np.float32),
}


def store(folder) -> orbax_store.OrbaxStore:
    return orbax_store.OrbaxStore(
        pathlib.Path(folder), keep_last=1, keep_best=None, best_metric="loss",
        best_mode="min", async_save=False, replace=False,
    )  # fmt: skip


def restore(folder, like=LIKE):
    s = store(folder)
    try:
        return s.restore(jax.tree.map(jnp.zeros_like, like), BOUND)
    finally:
        s.close()


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> pathlib.Path:
    folder = tmp_path_factory.mktemp("orbax") / "run"
    s = store(folder)
    arrays = {
        "loss": np.array([2.0, -0.0], np.float32),
        "eval": np.zeros(0, np.float32),
    }
    s.save(3, LIKE, arrays, {"note": [1, "a"]})
    s.close()
    big = folder.parent / "big"  # a million elements, a few bytes on disk
    s = store(big)
    s.save(3, {**LIKE, "w": jnp.zeros(2**20)}, arrays, {})
    s.close()
    return folder


def copy(saved, tmp_path) -> pathlib.Path:
    return pathlib.Path(shutil.copytree(saved, tmp_path / "run"))


def test_a_restore_is_exact_and_checked_against_the_run(saved, tmp_path):
    got = restore(saved)
    same(jax.random.key_data(got.tree["key"]), jax.random.key_data(LIKE["key"]))
    same({**got.tree, "key": 0}, {**LIKE, "key": 0})
    assert got.tree["none"].dtype == jnp.bfloat16 and got.metadata == {"note": [1, "a"]}
    assert got.arrays["loss"].tobytes() == np.array([2.0, -0.0], np.float32).tobytes()
    assert got.arrays["eval"].shape == (0,)
    with pytest.raises(ValueError, match=r"\['w'\] has shape \(3,\) in the checkpoint"):
        restore(saved, {**LIKE, "w": jnp.zeros(4)})
    with pytest.raises(ValueError, match=r"\['n'\] has dtype int32 in the checkpoint"):
        restore(saved, {**LIKE, "n": jnp.float32(0)})


def _fifo(folder, saved):
    path = folder / "3" / "manifest" / "metadata"
    path.unlink()
    os.mkfifo(path)


def _garbage(folder, saved):
    (folder / "3" / "manifest" / "metadata").write_bytes(b"\x00{not json")


def _no_arrays(folder, saved):
    shutil.rmtree(folder / "3" / "arrays")


def _link(folder, saved):
    (folder / "3" / "arrays" / "link").symlink_to("/dev/zero")


def _long_history(folder, saved):
    path = folder / "3" / "manifest" / "metadata"
    manifest = json.loads(path.read_text())
    manifest["arrays"][0]["shape"] = [10**12]
    path.write_text(json.dumps(manifest))


def _swapped_arrays(folder, saved):  # a million elements where (3,) should be
    shutil.rmtree(folder / "3" / "arrays")
    shutil.copytree(saved.parent / "big" / "3" / "arrays", folder / "3" / "arrays")


def _empty_step(folder, saved):
    (folder / "9").mkdir()


@pytest.mark.parametrize(
    "damage, match",
    [
        (_fifo, "not a folder or a regular file"),
        (_garbage, "manifest is corrupt"),
        (_no_arrays, "it has no arrays item"),
        (_link, "not a folder or a regular file"),
        (_long_history, r"'loss' is \(1000000000000,\) float32, not at most"),
        (_swapped_arrays, r"tree\['w'\] is stored with shape \(1048576,\)"),
        (_empty_step, "9 is not a readable jaxopt_lite Orbax checkpoint"),
    ],
    ids=lambda x: getattr(x, "__name__", "")[1:],
)
def test_a_damaged_or_crafted_folder_is_refused_with_a_clear_error(
    saved, tmp_path, damage, match
):
    folder = copy(saved, tmp_path)
    damage(folder, saved)
    with pytest.raises(ValueError, match=match):
        restore(folder)


# --- in other processes --------------------------------------------------------


def test_a_save_killed_midway_leaves_the_previous_checkpoint(tmp_path, whole):
    child = processes.start(HELPER, "killed", str(tmp_path))
    watchdog = threading.Timer(120, child.kill)
    watchdog.start()
    try:
        line = child.stdout.readline()  # the second save is being written
        child.kill()
        _, err = child.communicate(timeout=60)
    finally:
        watchdog.cancel()
    assert line == "writing\n", err
    names = sorted(n for n in os.listdir(tmp_path) if n != ".checkpoint.lock")
    assert names[0] == "4" and names[1].startswith("8.orbax-checkpoint-tmp"), names
    assert len(names) == 2
    rest = run(checkpoint_dir=tmp_path, checkpointing=ORBAX, resume=True)
    same(parts(rest), parts(whole))
    assert os.listdir(tmp_path) == ["24"]  # the temporary went as the run began


def both(tmp_path, phase: str, folder: str) -> list[dict]:
    port = processes.free_port()
    calls = [["scale", str(p), port, folder, phase] for p in (0, 1)]
    (tmp_path / phase).mkdir()
    return processes.reports(HELPER, tmp_path / phase, calls, timeout=150)


def test_a_two_process_run_resumes_in_fresh_processes_bit_identically(tmp_path):
    folder = str(tmp_path / "run")
    first = both(tmp_path, "first", folder)
    then = both(tmp_path, "resume", folder)
    values = np.arange(16.0, dtype=np.float32).reshape(8, 2)
    for process, (a, b) in enumerate(zip(first, then, strict=True)):
        assert a["calls"] == [0, 1] * 2 and a["steps"] == [8]  # two runs, each from 0
        assert (a["part"]["step"], a["part"]["preempted"]) == (8, True)
        whole, resumed = a["whole"], b["resumed"]
        assert resumed["step"] == 16 and not resumed["interrupted"]
        assert resumed["leaves"] == whole["leaves"]  # bit for bit (JSON floats)
        assert resumed["history"] == whole["history"]
        assert resumed["specs"] == whole["specs"]  # the run's own placement
        assert a["part_npz"]["step"] == 8 and b["resumed_npz"] == resumed  # .npz
        # a state split over both processes' devices: restored split or whole
        split, full = b["sharded"]["split"], b["sharded"]["copy"]
        assert split["spec"] == "P('data',)" and full["spec"] == "P()"
        assert [s[:2] for s in split["shards"]] == [
            [4 * process, 4 * process + 2],
            [4 * process + 2, 4 * process + 4],
        ]
        for begin, end, shard in split["shards"] + full["shards"]:
            np.testing.assert_array_equal(shard, values[begin:end])
        assert split["key"] == [0, 42] and split["loss"] == [0.0, 1.0, 2.0]
        assert split["metadata"] == {"a": 1}
