"""Writing a checkpoint folder: one writer at a time (the writer lock), the
file replaced atomically, the temporaries of killed saves removed only by the
lock's holder, and failures that say what is left on disk.

The lock is an exclusive advisory lock (``fcntl.flock`` on POSIX,
``msvcrt.locking`` on Windows) on ``.checkpoint.lock`` in the folder, with
the holder's pid and host written in it. The operating system releases it
when the holder dies, however it dies, so a killed run never blocks the next
one. Within a process the lock is re-entrant and shared by all threads: the
process holds it while any `WriterLock` of that folder is acquired. On
POSIX the holder deletes the file when it lets go (a process that locked a
deleted file notices and tries again), so a folder holds no lock file between
runs; Windows cannot delete an open file, so there it stays.
"""

from __future__ import annotations

import contextlib
import errno
import os
import pathlib
import re
import socket
import stat
import sys
import tempfile
import threading
import time
import warnings
from typing import Any, NamedTuple

import numpy as np

from jaxopt_lite._host import checkpoint_format

LOCK_NAME = ".checkpoint.lock"
WAIT_SECONDS = 1.0  # how long a writer waits for the lock before refusing
_POLL_SECONDS = 0.05
_TMP_PREFIX, _TMP_SUFFIX = ".checkpoint-", ".tmp"
_TMP_NAME = re.compile(r"\.checkpoint-[A-Za-z0-9_]+\.tmp")
_NO_LOCKS = (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS)  # e.g. some NFS mounts

if sys.platform == "win32":
    import msvcrt

    _WINDOWS_BYTE = 2**30  # locked byte, away from the pid others read

    def _try_lock(fd: int) -> bool:
        os.lseek(fd, _WINDOWS_BYTE, os.SEEK_SET)
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError as e:
            if e.errno in (errno.EACCES, errno.EDEADLOCK):  # locked elsewhere
                return False
            raise
        return True

    def _unlock(fd: int) -> None:
        os.lseek(fd, _WINDOWS_BYTE, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    def _try_lock(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)


class CheckpointBusyError(RuntimeError):
    """Another process holds the writer lock of a checkpoint folder."""


class _Held(NamedTuple):
    fd: int | None  # None where the file system cannot lock
    path: pathlib.Path
    count: int


_HELD: dict[tuple[int, int], _Held] = {}  # (st_dev, st_ino) of the folder
_HELD_LOCK = threading.Lock()
_WRITING: set[str] = set()  # real paths of the temporaries being written now
_WRITING_LOCK = threading.Lock()


def _forget_after_fork() -> None:
    """A forked child does not hold its parent's locks: drop them (closing
    the child's copies of the descriptors leaves the parent's lock alone)."""
    global _HELD_LOCK, _WRITING_LOCK
    for held in _HELD.values():
        if held.fd is not None:
            with contextlib.suppress(OSError):
                os.close(held.fd)
    _HELD.clear()
    _WRITING.clear()
    _HELD_LOCK, _WRITING_LOCK = threading.Lock(), threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_after_fork)


def _owner(fd: int) -> str:
    with contextlib.suppress(OSError, UnicodeDecodeError, ValueError):
        os.lseek(fd, 0, os.SEEK_SET)
        pid, host = os.read(fd, 300).decode("utf-8").split()
        return f"pid {int(pid)} on {host}"
    return "pid unknown"


def _lock_file(directory: pathlib.Path, wait: float) -> int | None:
    """A descriptor of the folder's lock file, locked (None: cannot lock)."""
    path = directory / LOCK_NAME
    flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)
    flags |= getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    deadline = time.monotonic() + wait
    while True:
        fd = os.open(path, flags, 0o644)
        try:
            opened = os.fstat(fd)
            if not stat.S_ISREG(opened.st_mode):
                raise ValueError(f"{path} is not a regular file; delete it.")
            try:
                locked = _try_lock(fd)
            except OSError as e:
                if e.errno not in _NO_LOCKS:
                    raise
                warnings.warn(
                    f"cannot lock {path} ({e.strerror}): a second process writing "
                    f"checkpoints to {directory} would not be detected.",
                    RuntimeWarning,
                    stacklevel=4,
                )
                os.close(fd)
                return None
            if locked:
                with contextlib.suppress(FileNotFoundError):
                    now = os.stat(path, follow_symlinks=False)
                    if (now.st_dev, now.st_ino) == (opened.st_dev, opened.st_ino):
                        os.ftruncate(fd, 0)
                        os.lseek(fd, 0, os.SEEK_SET)
                        os.write(fd, f"{os.getpid()} {socket.gethostname()}\n".encode())
                        return fd
                # The holder deleted the file as it let go: lock the new one.
                _unlock(fd)
                os.close(fd)
                continue
            owner = _owner(fd)
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)
        if time.monotonic() >= deadline:
            raise CheckpointBusyError(
                f"{directory} is being written by another process ({owner}, "
                f"recorded in {path}): one checkpoint folder has one writer. Wait "
                "for that run to end, stop it, or give this one another folder."
            )
        time.sleep(_POLL_SECONDS)


class WriterLock:
    """The right to write the checkpoint folder ``directory``.

    ``acquire`` waits up to ``wait`` seconds (default `WAIT_SECONDS`) for
    another process to let go, then raises `CheckpointBusyError` naming the
    folder and the holder's pid. Re-entrant and thread-safe: the process
    holds the lock from the first ``acquire`` of any `WriterLock` on the
    folder to the matching last ``release``. Also a context manager.
    """

    def __init__(self, directory: str | os.PathLike):
        self.directory = pathlib.Path(directory)
        self._key: tuple[int, int] | None = None
        self._count = 0

    def acquire(self, wait: float | None = None) -> None:
        """Hold the lock (creating the folder if needed)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        st = os.stat(self.directory)
        key = (st.st_dev, st.st_ino)
        with _HELD_LOCK:
            held = _HELD.get(key)
            if held is None:
                fd = _lock_file(self.directory, WAIT_SECONDS if wait is None else wait)
                held = _Held(fd, self.directory / LOCK_NAME, 0)
            _HELD[key] = held._replace(count=held.count + 1)
            self._key, self._count = key, self._count + 1

    def release(self) -> None:
        """Let go once; the last release of the process unlocks the folder."""
        with _HELD_LOCK:
            if self._key is None or self._count == 0:
                raise RuntimeError(f"the writer lock of {self.directory} is not held.")
            self._count -= 1
            held = _HELD.pop(self._key)
            if held.count > 1:
                _HELD[self._key] = held._replace(count=held.count - 1)
            elif held.fd is not None:
                if sys.platform != "win32":  # delete it while still holding it
                    with contextlib.suppress(OSError):
                        ours, there = os.fstat(held.fd), os.lstat(held.path)
                        if (ours.st_dev, ours.st_ino) == (there.st_dev, there.st_ino):
                            os.unlink(held.path)
                with contextlib.suppress(OSError):
                    _unlock(held.fd)
                os.close(held.fd)

    def __enter__(self) -> WriterLock:
        self.acquire()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()


def new_temporary(directory: pathlib.Path) -> tuple[int, str]:
    """A temporary file in ``directory`` (descriptor, path) that cleanups
    leave alone until `forget_temporary`."""
    with _WRITING_LOCK:  # so that a concurrent cleanup never sees it unregistered
        fd, tmp = tempfile.mkstemp(_TMP_SUFFIX, _TMP_PREFIX, directory)
        _WRITING.add(os.path.realpath(tmp))
    return fd, tmp


def forget_temporary(tmp: str) -> None:
    with _WRITING_LOCK:
        _WRITING.discard(os.path.realpath(tmp))


def _stale(directory: pathlib.Path) -> list[str]:
    """Our temporaries in ``directory`` (not below) that no save here writes
    (the caller holds ``_WRITING_LOCK``)."""
    found = []
    with contextlib.suppress(OSError):
        with os.scandir(directory) as entries:
            for entry in entries:
                if (
                    _TMP_NAME.fullmatch(entry.name)
                    and entry.is_file(follow_symlinks=False)
                    and os.path.realpath(entry.path) not in _WRITING
                ):
                    found.append(entry.path)
    return found


def remove_stale_temporaries(directory: pathlib.Path) -> list[pathlib.Path]:
    """Delete the temporaries that killed saves left in ``directory``.

    Only when this process holds the folder's writer lock or can take it
    without waiting (a temporary may be a live writer's file), only plain
    files named like our temporaries, and never one that a save of this
    process is writing. Files that cannot be deleted are left alone.

    Returns:
        The paths removed.
    """
    with _WRITING_LOCK:
        if not _stale(directory):
            return []
    lock = WriterLock(directory)
    try:
        lock.acquire(wait=0)
    except (CheckpointBusyError, OSError, ValueError):  # a writer, or read-only
        return []
    removed = []
    try:
        with _WRITING_LOCK:
            for path in _stale(directory):
                with contextlib.suppress(OSError):
                    os.unlink(path)
                    removed.append(pathlib.Path(path))
    finally:
        lock.release()
    return removed


def _save_failed(directory: pathlib.Path, error: OSError, outcome: str) -> OSError:
    """``error`` again (same errno, so the same OSError subclass), saying
    where the save failed and what is left on disk."""
    if error.errno is None:
        reason = str(error)
    else:
        name = errno.errorcode.get(error.errno, "?")
        reason = f"{error.strerror or error} ({name})"
    message = f"cannot save the checkpoint in {directory}: {reason}. {outcome}"
    return OSError(error.errno, message) if error.errno else OSError(message)


def write(directory: pathlib.Path, entries: dict[str, np.ndarray]) -> pathlib.Path:
    """Write ``entries`` as ``directory``'s checkpoint, atomically, holding
    the folder's writer lock."""
    lock = WriterLock(directory)
    try:
        lock.acquire()  # creates the folder
    except OSError as e:
        raise _save_failed(directory, e, "Nothing was written.") from e
    try:
        target = directory / checkpoint_format.FILENAME
        if os.path.lexists(target) and not target.is_file():
            raise ValueError(f"{target} exists and is not a file; cannot save there.")
        remove_stale_temporaries(directory)
        before = "The previous checkpoint there is unchanged"
        if not target.exists():
            before = "There was no checkpoint there before"
        tmp = None
        try:
            fd, tmp = new_temporary(directory)
            with os.fdopen(fd, "wb") as f:
                checkpoint_format.write_npz(f, entries)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, target)
        except BaseException as e:
            left = ", and no temporary file was left"
            if tmp is not None:
                try:
                    os.unlink(tmp)
                except FileNotFoundError:
                    pass
                except OSError as u:
                    left = f"; its temporary file {tmp} is left ({u.strerror})"
            if isinstance(e, OSError):
                raise _save_failed(directory, e, before + left + ".") from e
            raise
        finally:
            if tmp is not None:
                forget_temporary(tmp)
        try:
            checkpoint_format.fsync_directory(directory)
        except OSError as e:
            done = f"The new checkpoint is {target}, but the folder was not synced."
            raise _save_failed(directory, e, done) from e
    finally:
        lock.release()
    return target
