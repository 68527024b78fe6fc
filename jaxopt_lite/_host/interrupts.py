"""Ctrl-C held off where it would leave a run half-done; preemption notices.

The host pipeline lets Ctrl-C through between chunks, never inside the few
host steps that must finish once started: compiling and dispatching a chunk
(an interrupt inside XLA's compiler can crash the process on exit), a round
of callbacks (every logger sees a chunk, or none does), and a checkpoint save
(the checkpoint on disk always matches what the loggers saw). Inside
`deferred`, SIGINT is recorded instead of raised; when the block ends, the
interrupt is delivered as it would have been.

A cluster that is about to preempt a multi-process job tells JAX's
distributed runtime; `Preemption` asks it between chunks, so that every
process stops at the same chunk, after saving.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

from jax.experimental import multihost_utils


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """Hold SIGINT while the block runs; deliver it when the block is done
    (``KeyboardInterrupt`` under Python's default handler, else the handler
    that was installed). Outside the main thread, where signals cannot be
    handled, the block runs as it is."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    try:
        previous = signal.signal(signal.SIGINT, lambda sig, _: received.append(sig))
    except ValueError:  # an interpreter that does not let us install handlers
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if received:
        _deliver(previous)


def _deliver(handler: object) -> None:
    if handler in (signal.default_int_handler, signal.SIG_DFL, None):
        raise KeyboardInterrupt
    if callable(handler):
        handler(signal.SIGINT, None)


class Preemption:
    """Whether a preemption notice reached the job, asked once per chunk.

    `reached` calls ``jax.experimental.multihost_utils.
    reached_preemption_sync_point`` with a count of its calls: JAX's sync point
    is the count after the highest one any process reported when the notice
    came, so every process must call it at the same places with the same
    consecutive numbers, which the chunk boundaries give (step numbers, which
    jump by whole chunks, would miss it). Outside ``jax.distributed``, or with
    its preemption service off, it is never reached.
    """

    def __init__(self) -> None:
        self.calls = 0

    def reached(self) -> bool:
        """Call on every process between the same two chunks."""
        calls, self.calls = self.calls, self.calls + 1
        try:
            return bool(multihost_utils.reached_preemption_sync_point(calls))
        except RuntimeError:  # the preemption service is off
            return False
