"""Feeds: what each compiled chunk of a training run gets, from in-memory
data or from a stream of batches.

In-memory data (`ArrayFeed`) is on the devices already: a chunk gets the
whole data and the number of steps to run, fixed (``chunk_size``) or paced by
measured time (`pacing`). A stream (`batch_layout.is_stream`: a list of
batches, a generator, a grain, torch or tf.data loader) gives one ready batch
per step. Each compiled chunk scans
over a fixed number of batches stacked on the host and sent in one transfer
(`streams.BatchStream`), and the next chunk is read and transferred in a
background thread while the devices run the current one. The chunk's buffer
has a fixed number of rows, so the last, shorter chunk of a run compiles
nothing new.
"""

from __future__ import annotations

import math
import warnings
from typing import Any, NamedTuple

import jax
import numpy as np
from jax.experimental import multihost_utils

from jaxopt_lite._core import validate
from jaxopt_lite._host.pacing import paced
from jaxopt_lite._host.streams import BatchStream

PyTree = Any
# A chunk holds at most this many batches, and at most this many bytes of them.
MAX_ROWS = 256
MAX_BYTES = 64 * 2**20


class StreamLayout(NamedTuple):
    """How a streamed run is laid out."""

    stream: BatchStream
    batch_size: int  # examples per (global) batch
    steps_per_epoch: int | None  # None: the stream has no length
    total_steps: int  # steps=, or epochs x the batches of an epoch
    rows: int  # batches per chunk


def plan_stream(
    data: Any,
    *,
    batch_size: Any,
    steps: Any,
    epochs: Any,
    shuffle: Any,
    replace: Any,
    drop_remainder: Any,
    chunk_size: Any,
    sharding: Any,
) -> StreamLayout:
    """Check the arguments that mean something else for a stream, open it
    (reading its first batch) and lay the run out."""
    if batch_size is not None:
        raise ValueError(
            f"batch_size={batch_size!r} cannot be used with a stream of batches: "
            "its batches come made (batch in the data loader) and batch_size must "
            "be None."
        )
    for name, value in (("shuffle", shuffle), ("replace", replace)):
        if value:
            raise ValueError(
                f"{name}={value!r} cannot be used with a stream of batches: the "
                "batches are used in the order the stream yields them (shuffle in "
                "the data loader)."
            )
    if (steps is None) == (epochs is None):
        raise ValueError(
            "give exactly one of steps and epochs "
            f"(got steps={steps!r}, epochs={epochs!r})."
        )
    validate.check_count("steps", steps, optional=True)
    stream = BatchStream(
        data, drop_remainder=drop_remainder, sharding=sharding, epochs=epochs
    )
    try:
        per_epoch = stream.len_hint
        if epochs is not None:
            if per_epoch is None:
                raise ValueError(
                    f"epochs={epochs} needs a stream with a length (len(data)); "
                    f"{type(data).__name__} has none: give steps= instead."
                )
            steps = epochs * per_epoch
            if steps > validate.INT32_MAX:
                raise ValueError(
                    f"epochs={epochs} of {per_epoch} batches make more steps than "
                    f"the {validate.INT32_MAX} a run can count."
                )
        batch = jax.tree.leaves(stream.spec)[0].shape[0]
        return StreamLayout(
            stream, batch, per_epoch, steps, _rows(stream.spec, steps, chunk_size)
        )
    except BaseException:
        stream.close()
        raise


def _rows(spec: PyTree, total_steps: int, chunk_size: int | None) -> int:
    """Batches per chunk: ``chunk_size``, or as many as fit in `MAX_BYTES`
    (at most `MAX_ROWS`, at least one)."""
    if chunk_size is not None:
        return min(chunk_size, total_steps)
    size = sum(
        math.prod(s.shape) * np.dtype(s.dtype).itemsize for s in jax.tree.leaves(spec)
    )
    fits = max(1, MAX_BYTES // max(size, 1))
    return max(1, min(total_steps, MAX_ROWS, fits))


class ArrayFeed:
    """The chunks of a run on in-memory data: fixed sizes, or paced by
    measured time. A paced run measures its first chunk (one history row)
    before sending the next, then sizes every chunk from the rate of the last
    one to take about `pacing.TARGET_SECONDS`; until it has measured, it does
    not run ``ahead``. (The interface of `StreamFeed`.)"""

    def __init__(self, data: PyTree, total: int, unit: int, cap: int, fixed: bool):
        self.data, self.total, self.unit, self.cap = data, total, unit, cap
        self.fixed = self.ahead = fixed
        self.size = cap if fixed else min(unit, cap)

    def next(self, planned: int, open_row: bool) -> tuple[PyTree, int, int] | None:
        """The chunk after ``planned`` steps: ``(data, steps, total)``."""
        del open_row  # the run's length is known: its last chunk writes the row
        if planned >= self.total:
            return None
        return self.data, min(self.size, self.total - planned), self.total

    def observe(self, steps: int, elapsed: float) -> None:
        """A chunk of ``steps`` steps took ``elapsed`` seconds."""
        self.ahead = True
        if not self.fixed and steps > 0:
            self.size = paced(steps, elapsed, self.unit, self.cap)
            if jax.process_count() > 1:  # every process runs the same chunks:
                # process 0's clock decides (each one's own would drift apart
                # and leave the others waiting in a collective)
                self.size = int(
                    multihost_utils.broadcast_one_to_all(np.int32(self.size))
                )

    def state(self, step: int) -> None:
        del step

    def close(self) -> None:
        pass


class StreamFeed:
    """The chunks of a streamed run, each read while the previous one runs.

    `next` returns ``(batches, steps, total)`` for the next chunk to dispatch,
    or ``None`` when the run has nothing more to do; ``total`` is the run's
    length as far as it is known (a stream that ends early shortens it).
    `state` is where the stream stands after the last chunk returned.
    """

    def __init__(self, layout: StreamLayout, steps_given: bool):
        self.stream, self.rows = layout.stream, layout.rows
        self.total = layout.total_steps
        self._warn = steps_given
        self._ended = False

    def next(self, planned: int, open_row: bool) -> tuple[PyTree, int, int] | None:
        """The chunk after ``planned`` steps (``open_row``: the last row of the
        run is not written yet, so an ended stream needs a closing chunk)."""
        if self._ended or planned >= self.total:
            return None
        n = min(self.rows, self.total - planned)
        batches, k = self.stream.next_chunk(n, self.rows)
        if k < n:
            self._end(planned + k)
        if k == 0:
            # The stream ended at a chunk boundary: a chunk of no steps writes
            # the run's last (open) row.
            return (self.stream.zeros(self.rows), 0, planned) if open_row else None
        if not self._ended and planned + k < self.total:
            self.stream.prefetch(min(self.rows, self.total - planned - k), self.rows)
        return batches, k, self.total

    def _end(self, reached: int) -> None:
        self._ended = True
        if self._warn:
            warnings.warn(
                f"data ran out after {reached} batches, before the {self.total} "
                f"steps asked for (steps={self.total}); the run stops there.",
                RuntimeWarning,
                stacklevel=5,
            )
        self.total = reached

    ahead = True  # chunks are read and sent one ahead of the device

    def observe(self, steps: int, elapsed: float) -> None:
        del steps, elapsed  # a chunk's size is its buffer's: fixed

    def state(self, step: int) -> dict[str, Any]:
        """What a checkpoint at ``step`` records about the stream."""
        return {"position": step, "iterator": self.stream.state()}

    def close(self) -> None:
        self.stream.close()


def resume_stream(stream: BatchStream, saved: Any, step: int, how: Any) -> None:
    """Continue ``stream`` after the ``step`` batches a checkpoint used:
    from the iterator state it saved, or (``how == "skip"``) by reading and
    dropping that many batches."""
    if not isinstance(saved, dict) or saved.get("position") != step:
        raise ValueError(
            f"the checkpoint does not record where the stream stood at step {step}: "
            "it was not written by a streamed run."
        )
    if how == "skip":
        read = stream.skip(step)
        if read < step:
            raise ValueError(
                f"resume='skip' needs the {step} batches the checkpoint was trained "
                f"on, but data yields only {read}."
            )
        return
    if saved["iterator"] is None or not stream.resumable:
        raise ValueError(
            "cannot resume: the data iterator has no get_state/set_state, so it "
            "cannot be put back where the checkpoint left it. "
            "Use a resumable loader (grain's DatasetIterator), or pass "
            f"resume='skip' to read and drop the {step} batches already used "
            "(exact only if data yields the same batches in the same order)."
        )
    stream.restore(saved["iterator"], step=step)
