"""Streams of batches for the drivers: stack on the host, one transfer a chunk.

A stream is any iterable of batches (a list, a generator, a grain or torch
data loader, a tf.data NumPy iterator), each a pytree of arrays with a leading
batch axis. `BatchStream` pulls ``n`` batches, writes them into one fresh
host buffer per leaf, and puts the ``(n, batch, ...)`` chunk on the devices
with one call; `BatchStream.prefetch` does the same for the next chunk in a
background thread while the devices run the current one. Over a multi-process
mesh each process reads its own examples (see `_global_batch`).
"""

from __future__ import annotations

import threading
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, Sharding
from jax.sharding import PartitionSpec as P

from jaxopt_lite._host.batch_layout import (
    LOADERS,
    BatchLayout,
    check_epochs,
    is_stream,
    short_repr,
)
from jaxopt_lite._host.global_batch import batch_axes, check_split

PyTree = Any


class _Prefetch:
    """One chunk being assembled in a background thread."""

    def __init__(self, n: int, rows: int):
        self.n, self.rows = n, rows
        self.result: tuple[PyTree | None, int, Any] | None = None
        self.error: BaseException | None = None
        self.thread: threading.Thread | None = None


class BatchStream:
    """Chunks of ``n`` batches from an iterable, stacked and put on the devices.

    The first batch is read at construction and fixes the `spec` (structure,
    shapes, dtypes); every later batch must match it. Chunks hold
    ``(k, *batch_shape)`` arrays with ``k <= n`` (``k < n`` only at the end);
    nothing is padded. At most one background thread exists (see `prefetch`);
    it alone touches the iterator while it runs.

    Args:
        iterable: the batches (see `is_stream`).
        drop_remainder: drop a shorter last batch (of each epoch) instead of
            raising.
        epochs: iterate ``iterable`` this many times, each time afresh (it must
            be re-iterable: a list or a data loader, not an iterator);
            ``None``: once.
        sharding: how one batch is laid out (e.g. ``NamedSharding(mesh,
            P("data"))``); chunks get the same layout with an unsplit leading
            step axis. ``None``: the default device. Over a multi-process mesh
            each process iterates its own examples and `spec` is the global
            batch.

    Attributes:
        spec: one (global) batch as a pytree of `jax.ShapeDtypeStruct` (dtypes
            as the devices hold them).
        batch_size: examples per batch read by this process.
        len_hint: ``len(iterable)`` when it has one (counting a short last
            batch that ``drop_remainder`` drops), else ``None``: the batches of
            one epoch.
        resumable: the iterator has ``get_state``/``set_state`` (grain's do).

    Example:
        >>> import numpy as np
        >>> batches = [{"x": np.full((2, 3), i, np.float32)} for i in range(5)]
        >>> with BatchStream(batches) as stream:
        ...     chunk, k = stream.next_chunk(4)
        ...     print(k, chunk["x"].shape, stream.next_chunk(4)[1])
        ...     print(stream.next_chunk(4))
        4 (4, 2, 3) 1
        (None, 0)
        >>> with BatchStream(batches, epochs=2) as stream:
        ...     chunk, k = stream.next_chunk(8, rows=12)
        ...     print(k, chunk["x"][:, 0, 0], stream.next_chunk(8)[1])
        8 [0. 1. 2. 3. 4. 0. 1. 2. 0. 0. 0. 0.] 2
    """

    def __init__(
        self,
        iterable: Any,
        *,
        drop_remainder: bool = True,
        sharding: Sharding | None = None,
        epochs: int | None = None,
    ):
        if not is_stream(iterable):
            raise TypeError(
                f"data={short_repr(iterable)} is not a stream of batches: a stream is "
                "an iterable (list, generator, data loader) yielding pytrees of "
                "arrays with a leading batch axis; a dict, tuple or array is "
                "in-memory data."
            )
        if not isinstance(drop_remainder, bool):
            raise TypeError(f"drop_remainder must be a bool, got {drop_remainder!r}.")
        if sharding is not None and not isinstance(sharding, Sharding):
            raise TypeError(
                f"sharding must be a jax.sharding.Sharding or None, got {sharding!r}."
            )
        check_epochs(iterable, epochs)
        try:
            self.len_hint: int | None = len(iterable)
        except TypeError:
            self.len_hint = None
        self._iterable, self._epochs, self._epoch = iterable, epochs or 1, 0
        self._it = iter(iterable)
        self._drop = drop_remainder
        self.resumable = callable(getattr(self._it, "get_state", None)) and callable(
            getattr(self._it, "set_state", None)
        )
        self._state = self._get_state()
        self._step = 0  # batches pulled from the iterator (and checked)
        self._position = 0  # batches handed out by next_chunk or skipped
        self._exhausted = False
        self._closed = False
        self._job: _Prefetch | None = None
        self._stop = threading.Event()

        try:
            first = next(self._it)
        except StopIteration:
            raise ValueError(f"data={short_repr(iterable)} yielded no batch.") from None
        layout = self._batch = BatchLayout(first)
        self.batch_size = layout.batch_size
        self._peeked: list[np.ndarray] | None = layout.first
        self._put_sharding = sharding
        scale = 1
        if isinstance(sharding, NamedSharding):
            mesh, axes = sharding.mesh, batch_axes(sharding)
            if not isinstance(mesh, Mesh):
                raise TypeError(f"sharding={sharding!r} needs a concrete Mesh.")
            self._put_sharding = NamedSharding(
                mesh, P(None, *sharding.spec), memory_kind=sharding.memory_kind
            )
            if axes:
                scale = check_split(self.batch_size, mesh, axes, "data")
        self.spec: PyTree = layout.treedef.unflatten(
            [
                jax.ShapeDtypeStruct(
                    (s[0] * scale, *s[1:]), jax.dtypes.canonicalize_dtype(d)
                )
                for s, d in zip(layout.shapes, layout.dtypes, strict=True)
            ]
        )

    # ---------------------------------------------------------------- reading

    def _pull(self) -> list[np.ndarray] | None:
        """The next checked batch, or ``None`` at the end."""
        if self._peeked is not None:
            arrays, self._peeked = self._peeked, None
            self._step += 1
            return arrays
        while not self._exhausted:
            try:
                batch = next(self._it)
            except StopIteration:
                self._next_epoch()
                continue
            arrays = self._checked(batch)
            if arrays is not None:
                self._step += 1
                return arrays
        return None

    def _next_epoch(self) -> None:
        """Start the next epoch's iterator, or mark the stream exhausted."""
        if self._epoch + 1 >= self._epochs:
            self._exhausted = True
        else:
            self._epoch += 1
            self._it = iter(self._iterable)

    def _checked(self, batch: Any) -> list[np.ndarray] | None:
        """The batch's arrays, or ``None`` for a short last batch that is
        dropped (its epoch is then over)."""
        step = self._step
        try:
            arrays, short = self._batch.check(step, batch)
        except ValueError as error:
            if not isinstance(self._iterable, list):
                raise
            raise ValueError(
                f"{error} Note: data is a list, which is read as a stream of "
                f"batches (one batch per element: {len(self._iterable)} here); "
                "to train on arrays held in memory, pass a tuple (X, y) or a "
                "dict {'x': X, 'y': y} instead."
            ) from None
        if not short:
            return arrays
        size = arrays[0].shape[0]
        try:
            next(self._it)
        except StopIteration:
            if not self._drop:
                self._exhausted = True
                raise ValueError(
                    f"batch {step} of data, the last, has {size} examples where "
                    f"the others have {self.batch_size}; pass drop_remainder=True "
                    f"to drop it, or make the loader drop it ({LOADERS})."
                ) from None
            self._next_epoch()
            return None
        raise ValueError(
            f"batch {step} of data has {size} examples where batch 0 has "
            f"{self.batch_size}; only the last batch of a stream may be shorter."
        )

    def _assemble(self, n: int, rows: int) -> tuple[PyTree | None, int, Any]:
        """Read up to ``n`` batches into fresh host buffers of ``rows`` rows
        (zeros after the batches) and transfer them."""
        first = self._pull()
        if first is None:
            return None, 0, self._get_state()
        buffers = [np.empty((rows, *a.shape), a.dtype) for a in first]
        for buffer, a in zip(buffers, first, strict=True):
            buffer[0] = a
        k = 1
        while k < n and not self._stop.is_set():
            arrays = self._pull()
            if arrays is None:
                break
            for buffer, a in zip(buffers, arrays, strict=True):
                buffer[k] = a
            k += 1
        state = self._get_state()
        if self._stop.is_set():  # cancelled: the chunk would be dropped
            return None, k, state
        for buffer in buffers:
            buffer[k:] = 0
        return self._put(buffers), k, state

    def _put(self, buffers: list[np.ndarray]) -> PyTree:
        tree = self._batch.treedef.unflatten(buffers)
        sharding = self._put_sharding
        if sharding is None:
            return jax.device_put(tree)
        if sharding.is_fully_addressable:
            return jax.device_put(tree, sharding)
        return jax.make_array_from_process_local_data(sharding, tree)

    def zeros(self, rows: int) -> PyTree:
        """A chunk of ``rows`` rows of zeros, laid out as `next_chunk`'s."""
        return self._put(
            [
                np.zeros((rows, *s), d)
                for s, d in zip(self._batch.shapes, self._batch.dtypes, strict=True)
            ]
        )

    def _get_state(self) -> Any:
        if not self.resumable:
            return None
        return {"epoch": self._epoch, "iterator": self._it.get_state()}

    # ----------------------------------------------------------------- public

    def next_chunk(self, n: int, rows: int | None = None) -> tuple[PyTree | None, int]:
        """The next ``n`` batches stacked on the devices, and how many there are.

        Returns ``(chunk, k)``: leaves of shape ``(rows, *batch_shape)``
        (``rows`` defaults to ``n``) whose first ``k`` rows are the batches and
        the rest zeros; ``k < n`` only when the stream ends; ``(None, 0)``
        once it has ended. An error of the iterator, also one met while
        prefetching, is raised here.
        """
        rows = self._check_n("next_chunk", n, rows)
        job = self._job
        if job is not None:
            if (job.n, job.rows) != (n, rows):
                raise ValueError(
                    f"next_chunk(n={n}, rows={rows}) after prefetch(n={job.n}, "
                    f"rows={job.rows}): ask for the prefetched chunk."
                )
            self._join()
            if job.error is not None:
                raise job.error
            assert job.result is not None
            chunk, k, state = job.result
        else:
            chunk, k, state = self._assemble(n, rows)
        self._state = state
        self._position += k
        return chunk, k

    def prefetch(self, n: int, rows: int | None = None) -> None:
        """Start assembling and transferring the next chunk of ``n`` batches
        (in ``rows`` rows) in a background thread; the next `next_chunk` (with
        the same arguments) returns it. Does nothing when that chunk is
        already on its way."""
        rows = self._check_n("prefetch", n, rows)
        if self._job is not None:
            if (self._job.n, self._job.rows) == (n, rows):
                return
            raise ValueError(
                f"prefetch(n={n}) while a chunk of {self._job.n} is prefetched."
            )
        job = _Prefetch(n, rows)
        # JAX's x64 and default-device settings are thread-local: carry them.
        x64 = jax.dtypes.canonicalize_dtype(np.float64) == np.float64
        device = jax.config.jax_default_device  # pyright: ignore[reportAttributeAccessIssue]

        def work() -> None:
            try:
                with jax.enable_x64(x64), jax.default_device(device):
                    job.result = self._assemble(n, rows)
            except BaseException as error:  # re-raised by next_chunk
                job.error = error

        job.thread = threading.Thread(
            target=work, name="jaxopt_lite-BatchStream", daemon=True
        )
        self._job = job
        job.thread.start()

    @property
    def position(self) -> int:
        """Batches handed out by `next_chunk` or dropped by `skip` so far."""
        return self._position

    def state(self) -> Any:
        """Where the batches returned so far (not those prefetched) end:
        ``{"epoch": e, "iterator": it.get_state()}`` (JSON-able when the
        iterator's state is), or ``None`` when it has no ``get_state``."""
        return self._state

    def restore(self, state: Any, *, step: int = 0) -> None:
        """Continue after the batches described by ``state`` (from `state`);
        ``step`` is the index of the next batch, for error messages. A
        prefetched chunk is dropped."""
        self._check_open()
        if not self.resumable:
            raise TypeError(
                f"the data iterator ({type(self._it).__name__}) has no "
                "get_state/set_state; resume by counting batches with skip(k)."
            )
        self._cancel()
        if int(state["epoch"]) != self._epoch:  # only re-iterables have epochs
            self._epoch, self._it = int(state["epoch"]), iter(self._iterable)
        self._it.set_state(state["iterator"])
        self._state = state
        self._peeked = None
        self._exhausted = False
        self._step = self._position = step

    def skip(self, k: int) -> int:
        """Read and drop ``k`` batches; return how many there were (< ``k`` when
        the stream ends first)."""
        self._check_open()
        if not (isinstance(k, int) and not isinstance(k, bool) and k >= 0):
            raise ValueError(f"k={k!r} is not allowed: it must be an integer >= 0.")
        if self._job is not None:
            raise RuntimeError("skip() cannot follow prefetch(); skip first.")
        skipped = 0
        while skipped < k and self._pull() is not None:
            skipped += 1
        self._position += skipped
        self._state = self._get_state()
        return skipped

    def close(self) -> None:
        """Stop and join the background thread (waiting for at most the batch it
        is reading); later calls to read raise. Idempotent."""
        self._cancel()
        self._closed = True

    def __enter__(self) -> BatchStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -------------------------------------------------------------- internals

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("this BatchStream is closed.")

    def _check_n(self, name: str, n: Any, rows: Any) -> int:
        self._check_open()
        if not (isinstance(n, int) and not isinstance(n, bool) and n >= 1):
            raise ValueError(
                f"{name}(n={n!r}) is not allowed: n must be an integer >= 1."
            )
        if rows is None:
            return n
        if not (isinstance(rows, int) and not isinstance(rows, bool) and rows >= n):
            raise ValueError(
                f"{name}(rows={rows!r}) is not allowed: rows must be an integer "
                f">= n={n}."
            )
        return rows

    def _join(self) -> None:
        job = self._job
        if job is not None and job.thread is not None:
            job.thread.join()  # may be interrupted: then the job stays known
        self._job = None

    def _cancel(self) -> None:
        self._stop.set()
        try:
            self._join()
        finally:
            self._stop.clear()
