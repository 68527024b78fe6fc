"""Writing checkpoints: one writer per folder (a lock, tested with real
processes, a killed writer and a fork), and failed saves (a full disk) that
lose nothing and say so."""

from __future__ import annotations

import errno
import os
import pathlib
import queue
import shutil
import socket
import subprocess
import sys
import textwrap
import threading
import warnings

import jax.numpy as jnp
import numpy as np
import pytest

import jaxopt_lite as jol
from jaxopt_lite._host import checkpoint_format as _format
from jaxopt_lite._host import checkpoint_write as _write

OLD = {"w": jnp.array([1.0, 2.0])}
NEW = {"w": jnp.array([3.0, 4.0])}


def _busy(folder: pathlib.Path, pid: int) -> str:
    return (
        f"{folder} is being written by another process (pid {pid} on "
        f"{socket.gethostname()}, recorded in {folder / '.checkpoint.lock'}): one "
        "checkpoint folder has one writer. Wait for that run to end, stop it, or "
        "give this one another folder."
    )


def _values(folder) -> list[float]:
    return np.asarray(jol.load_checkpoint(folder, OLD).tree["w"]).tolist()


# --------------------------------------------------------------------------
# A second process.

_WRITER = textwrap.dedent(
    """
    import os, pathlib, sys
    import numpy as np
    import jaxopt_lite as jol
    from jaxopt_lite._host import checkpoint_write as w

    folder = pathlib.Path(sys.argv[1])
    print("ready", os.getpid(), flush=True)
    for line in sys.stdin:
        if line.strip() == "race":  # save while the test process saves too
            busy = 0
            for _ in range(20):
                try:
                    jol.save_checkpoint(folder, {"w": np.full(2, 5.0, np.float32)})
                except w.CheckpointBusyError:
                    busy += 1
            print("raced", busy, flush=True)
        elif line.strip() == "hold":  # a run in the middle of a save
            w.WriterLock(folder).acquire()
            fd, tmp = w.new_temporary(folder)
            os.write(fd, b"PK\\x03\\x04 half written")
            print("holding", tmp, flush=True)
    """
)


class _Process:
    """A writer process and its output lines, read with a timeout."""

    def __init__(self, folder: pathlib.Path):
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(folder)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=dict(os.environ, JAX_PLATFORMS="cpu"),
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put("")

    def kill(self) -> None:
        """Kill it (SIGKILL: no cleanup runs), then close its pipes."""
        self.proc.kill()
        self.proc.wait(timeout=60)
        self.reader.join(timeout=60)
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None:
                pipe.close()

    def send(self, command: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()

    def expect(self, word: str) -> list[str]:
        seen = []
        while True:
            line = self.lines.get(timeout=180)
            seen.append(line)
            if not line or line.split()[0] == word:
                break
        assert line, "the writer process died:\n" + "".join(seen)
        return line.split()[1:]


def test_a_second_process_is_refused_and_destroys_nothing(tmp_path, monkeypatch):
    writer = _Process(tmp_path)
    try:
        (pid,) = writer.expect("ready")
        # Two processes saving to one folder at once: each save waits for the
        # other's or is refused, and nothing else fails (before the lock, each
        # process deleted the other's temporary and crashed).
        writer.send("race")
        for _ in range(20):
            try:
                jol.save_checkpoint(tmp_path, OLD)
            except _write.CheckpointBusyError:  # it kept the lock over a second
                pass
        writer.expect("raced")
        assert os.listdir(tmp_path) == ["checkpoint.npz"]
        assert _values(tmp_path) in ([1.0, 2.0], [5.0, 5.0])
        jol.save_checkpoint(tmp_path, OLD)
        # A writer in the middle of a save: a second writer is refused ...
        writer.send("hold")
        (tmp,) = writer.expect("holding")
        monkeypatch.setattr(_write, "WAIT_SECONDS", 0.2)
        with pytest.raises(_write.CheckpointBusyError) as info:
            jol.save_checkpoint(tmp_path, NEW)
        assert isinstance(info.value, RuntimeError)
        assert str(info.value) == _busy(tmp_path, int(pid))
        # ... readers still read, and nobody's file is touched.
        assert jol.has_checkpoint(tmp_path) and _values(tmp_path) == [1.0, 2.0]
        assert pathlib.Path(tmp).exists()
        assert sorted(os.listdir(tmp_path)) == sorted(
            [".checkpoint.lock", "checkpoint.npz", pathlib.Path(tmp).name]
        )
        # Killed, the writer lets go (the OS releases its lock): the next
        # save goes ahead and removes the temporary the killed one left.
        writer.kill()
        jol.save_checkpoint(tmp_path, NEW)
        assert os.listdir(tmp_path) == ["checkpoint.npz"]
        assert _values(tmp_path) == [3.0, 4.0]
    finally:
        writer.kill()


def test_a_reader_cleans_up_only_when_no_writer_holds_the_folder(tmp_path):
    jol.save_checkpoint(tmp_path, OLD)
    stale = tmp_path / ".checkpoint-k1lled.tmp"
    stale.write_bytes(b"PK\x03\x04")
    assert jol.has_checkpoint(tmp_path) and stale.exists()  # has never deletes
    assert _values(tmp_path) == [1.0, 2.0] and not stale.exists()
    assert os.listdir(tmp_path) == ["checkpoint.npz"]


def test_the_lock_is_reentrant_in_a_process_and_not_inherited_by_a_fork(tmp_path):
    run = _write.WriterLock(tmp_path)
    with run:  # e.g. fit holding it for the whole run
        jol.save_checkpoint(tmp_path, OLD)  # the same process: not refused
        assert (tmp_path / ".checkpoint.lock").read_text().split()[0] == str(
            os.getpid()
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # JAX's fork warning
            for _ in range(2):  # the second child: the first one's exit kept it
                child = os.fork()
                if child == 0:
                    try:
                        _write.WriterLock(tmp_path).acquire(wait=0)
                    except _write.CheckpointBusyError:
                        os._exit(7)
                    os._exit(1)
                assert os.waitpid(child, 0)[1] >> 8 == 7
        assert (tmp_path / ".checkpoint.lock").exists()
    assert os.listdir(tmp_path) == ["checkpoint.npz"]
    with pytest.raises(RuntimeError, match="is not held"):
        run.release()


# --------------------------------------------------------------------------
# Failed saves.


def _error(code: int) -> OSError:
    return OSError(code, os.strerror(code))


def _disk_full(file, entries):
    file.write(b"PK\x03\x04 half a zip file")
    raise _error(errno.ENOSPC)


def _fails(error):
    def raiser(*args):
        raise error

    return raiser


UNCHANGED = (
    "The previous checkpoint there is unchanged, and no temporary file was left."
)


@pytest.mark.parametrize(
    "target, replacement, error, outcome",
    [
        (_format, ("write_npz", _disk_full), OSError, UNCHANGED),
        (_write.tempfile, ("mkstemp", _fails(_error(errno.EACCES))),
         PermissionError, UNCHANGED),
        (_format, ("fsync_directory", _fails(_error(errno.EIO))),
         OSError, "The new checkpoint is {target}, but the folder was not synced."),
    ],
)  # fmt: skip
def test_a_failed_save_loses_nothing_and_says_so(
    tmp_path, monkeypatch, target, replacement, error, outcome
):
    jol.save_checkpoint(tmp_path, OLD)
    monkeypatch.setattr(target, *replacement)
    with pytest.raises(OSError) as info:
        jol.save_checkpoint(tmp_path, NEW)
    monkeypatch.undo()
    raised = info.value
    assert type(raised) is error and raised.errno == info.value.__cause__.errno
    code = raised.errno
    assert str(raised) == (
        f"[Errno {code}] cannot save the checkpoint in {tmp_path}: "
        f"{os.strerror(code)} ({errno.errorcode[code]}). "
        + outcome.format(target=tmp_path / "checkpoint.npz")
    )
    assert os.listdir(tmp_path) == ["checkpoint.npz"]  # no temporary, no lock
    assert _values(tmp_path) == ([1.0, 2.0] if "unchanged" in outcome else [3.0, 4.0])


def test_a_first_save_failing_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(_format, "write_npz", _disk_full)
    with pytest.raises(OSError) as info:
        jol.save_checkpoint(tmp_path / "run", OLD)
    assert str(info.value).endswith(
        ": No space left on device (ENOSPC). There was no checkpoint there "
        "before, and no temporary file was left."
    )
    assert os.listdir(tmp_path / "run") == []


_TINY_DISK = textwrap.dedent(
    """
    import os, sys
    import numpy as np
    import jaxopt_lite as jol

    folder = sys.argv[1]
    jol.save_checkpoint(folder, {"w": np.ones(4, np.float32)})
    try:
        jol.save_checkpoint(folder, {"w": np.ones(2**17, np.float32)})  # 512 KiB
    except OSError as e:
        print(type(e).__name__, e.errno)
        print(e)
    print(sorted(os.listdir(folder)))
    w = jol.load_checkpoint(folder, {"w": np.zeros(4, np.float32)}).tree["w"]
    print(np.asarray(w).tolist())
    """
)


@pytest.mark.skipif(shutil.which("unshare") is None, reason="needs unshare")
def test_a_full_disk_loses_nothing(tmp_path):
    """A real full disk: a 256 KiB tmpfs, mounted in a user namespace."""
    mount = ["unshare", "-rm", "sh", "-c"]
    tiny = f"mount -t tmpfs -o size=256k none '{tmp_path}'"
    probe = subprocess.run([*mount, tiny], capture_output=True, check=False)
    if probe.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {probe.stderr.decode().strip()}")
    proc = subprocess.run(
        [*mount, f'{tiny} && exec "$0" -c "$1" "$2"', sys.executable, _TINY_DISK,
         str(tmp_path)],
        capture_output=True, text=True, timeout=300, check=False,
        env=dict(os.environ, JAX_PLATFORMS="cpu"),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.splitlines() == [
        "OSError 28",
        f"[Errno 28] cannot save the checkpoint in {tmp_path}: No space left on "
        f"device (ENOSPC). {UNCHANGED}",
        "['checkpoint.npz']",
        "[1.0, 1.0, 1.0, 1.0]",
    ]


def test_a_file_system_without_locks_warns_and_saves(tmp_path, monkeypatch):
    monkeypatch.setattr(_write, "_try_lock", _fails(_error(errno.ENOLCK)))
    with pytest.warns(RuntimeWarning) as caught:
        jol.save_checkpoint(tmp_path, OLD)
    assert [str(w.message) for w in caught] == [
        f"cannot lock {tmp_path / '.checkpoint.lock'} (No locks available): a "
        f"second process writing checkpoints to {tmp_path} would not be detected."
    ]
    assert _values(tmp_path) == [1.0, 2.0]
