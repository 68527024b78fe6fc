"""Host-side callbacks for `fit`: the protocol, and CSV and TensorBoard loggers.

`fit` runs in compiled chunks; between two chunks, on the host, it hands every
callback the chunk's new history rows. Nothing here runs on the device (JAX
is asked only which process this is), and ``tensorboardX`` is imported only
when a `TensorBoardLogger` is built.
"""

from __future__ import annotations

import csv
import numbers
import os
import pathlib
import time
from collections.abc import Mapping
from typing import Any

import jax
import numpy as np

_TENSORBOARD_INSTALL = "pip install 'jaxopt-lite[tensorboard]'"
_STEPS = ("step", "eval_step")  # the step columns of the two row groups


class Callback:
    """Base class for the host-side callbacks of `fit`; every method does nothing.

    Subclass it and override what you need. Between two compiled chunks `fit`
    calls ``on_chunk`` with the chunk's new history rows; at the end of the run
    (also after Ctrl-C, or when another callback raised) it calls ``on_end``
    once and then ``close``.

    ``rows`` holds NumPy arrays named as in `FitResult` ``history``: the
    training rows share the ``"step"`` column (``step``, ``loss``,
    ``grad_norm``, ``skipped``, ``learning_rate`` when recorded, aux metrics),
    the evaluation rows share the ``"eval_step"`` column (every name starting
    with ``eval_``). Either group may have no rows in a chunk.

    Example:
        >>> import numpy as np, jaxopt_lite as jol
        >>> class LastLoss(jol.Callback):
        ...     def on_chunk(self, rows, *, step, elapsed):
        ...         if len(rows["step"]):
        ...             print(step, float(rows["loss"][-1]))
        >>> LastLoss().on_chunk({"step": np.array([10]), "loss": np.array([0.5])},
        ...                     step=10, elapsed=0.1)
        10 0.5
    """

    def on_chunk(
        self, rows: dict[str, np.ndarray], *, step: int, elapsed: float
    ) -> None:
        """Receive one chunk's new history rows.

        Args:
            rows: the new rows, NumPy arrays keyed like `FitResult` ``history``.
            step: the global step reached at the end of the chunk.
            elapsed: wall-clock seconds the chunk took.
        """

    def on_end(self, result: Any) -> None:
        """Receive the result (a `FitResult` or `SweepResult`) once, when the run
        ends for any reason."""

    def close(self) -> None:
        """Release files or other resources; called once after ``on_end``."""


def _path(name: str, value: Any) -> pathlib.Path:
    if isinstance(value, (str, os.PathLike)):
        text = os.fspath(value)
        if isinstance(text, str) and text:
            return pathlib.Path(text)
    raise TypeError(f"{name} must be a non-empty str or os.PathLike, got {value!r}.")


def _group(columns: dict[str, np.ndarray], step_key: str) -> dict[str, np.ndarray]:
    """The columns of one row group with its step column first, checked to be
    one-dimensional and of one length."""
    if not columns:
        return {}
    if step_key not in columns:
        raise ValueError(f"rows has columns {sorted(columns)} but no {step_key!r}.")
    size = columns[step_key].shape
    bad = [k for k, v in columns.items() if v.ndim != 1 or v.shape != size]
    if bad:
        raise ValueError(
            f"rows columns {bad} must be one-dimensional arrays as long as "
            f"rows[{step_key!r}] (shape {size})."
        )
    return {step_key: columns[step_key], **columns}


def _split(rows: Any) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Split ``rows`` into its training group and its evaluation group."""
    if not isinstance(rows, Mapping):
        raise TypeError(
            f"rows must be a dict of NumPy arrays, got {type(rows).__name__}."
        )
    train = {k: np.asarray(v) for k, v in rows.items() if not k.startswith("eval_")}
    evals = {k: np.asarray(v) for k, v in rows.items() if k.startswith("eval_")}
    return _group(train, "step"), _group(evals, "eval_step")


class _Table:
    """One CSV file for one row group, opened at its first rows."""

    def __init__(self, path: pathlib.Path, step_key: str, append: bool):
        self.path = path
        self.step_key = step_key
        self.append = append
        self.columns: list[str] = []  # known once the file was first opened
        self.after: int | None = None
        self.file: Any = None
        self.writer: Any = None

    def _resume(self, columns: list[str]) -> tuple[list[str], bool]:
        """The columns to write (the file's own order when appending to it)
        and whether the file already has its header."""
        existing: list[list[str]] = []
        if self.append and self.path.is_file():
            with open(self.path, newline="", encoding="utf-8") as f:
                existing = list(csv.reader(f))
        if not existing:
            return columns, False
        header = existing[0]
        if sorted(header) != sorted(columns):
            raise ValueError(
                f"append=True but {self.path} has the columns {header} and "
                f"these rows have {columns}; append only to the log of the "
                "same run, or use append=False to start a new file."
            )
        if len(existing) > 1:
            self.after = int(existing[-1][header.index(self.step_key)])
        return header, True

    def write(self, group: dict[str, np.ndarray]) -> None:
        if not group or not len(group[self.step_key]):
            return
        file = self.file
        if file is None:
            has_header = bool(self.columns)  # reopened after close: keep writing
            if not has_header:
                self.columns, has_header = self._resume(list(group))
            self.path.parent.mkdir(parents=True, exist_ok=True)
            mode = "a" if has_header else "w"
            file = self.file = open(self.path, mode, newline="", encoding="utf-8")
            self.writer = csv.writer(file, lineterminator="\n")
            if not has_header:
                self.writer.writerow(self.columns)
        if sorted(self.columns) != sorted(group):
            raise ValueError(
                f"{self.path} has the columns {self.columns}, but these rows have "
                f"{list(group)}; every chunk must have the same columns."
            )
        keep = np.ones(len(group[self.step_key]), bool)
        if self.after is not None:  # a resumed run repeats no written step
            keep = group[self.step_key] > self.after
        for i in np.flatnonzero(keep):
            self.writer.writerow([group[c][i] for c in self.columns])
        file.flush()

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
            self.file = None


class CSVLogger(Callback):
    """Write `fit`'s history rows to CSV files, flushed after every chunk.

    The training rows go to ``path``, one line per row, with the columns of the
    first chunk (``step`` first). Evaluation rows, when there are any, go to a
    second file next to it with ``_eval`` before the suffix (``run.csv`` and
    ``run_eval.csv``), ``eval_step`` first: the two kinds of rows are logged at
    different steps, so neither file has empty cells. Numbers are written in
    their shortest exact form, so reading a file back gives the history's
    values bit for bit. An interrupted run keeps every chunk written so far.
    In a run over several processes only process 0 writes.

    Args:
        path: the training CSV file (created with its parent folders; an
            existing file is replaced unless ``append``).
        append: continue existing files, for a run resumed from a checkpoint:
            the header must hold the same columns (else `ValueError`), and rows
            at steps the file already reaches are not written again.

    Example:
        >>> import pathlib, tempfile, numpy as np, jaxopt_lite as jol
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     logger = jol.CSVLogger(pathlib.Path(tmp) / "run.csv")
        ...     rows = {"step": np.array([1, 2]), "loss": np.array([0.5, 0.25]),
        ...             "eval_step": np.array([2]), "eval_loss": np.array([0.3])}
        ...     logger.on_chunk(rows, step=2, elapsed=0.01)
        ...     logger.close()
        ...     print(logger.path.read_text(), end="")
        ...     print(logger.eval_path.read_text(), end="")
        step,loss
        1,0.5
        2,0.25
        eval_step,eval_loss
        2,0.3
    """

    def __init__(self, path: str | os.PathLike, *, append: bool = False):
        path = _path("path", path)
        if path.is_dir():
            raise ValueError(
                f"path={os.fspath(path)!r} is a directory; give a file name "
                f"such as {os.fspath(path / 'history.csv')!r}."
            )
        if not isinstance(append, bool):
            raise TypeError(f"append must be True or False, got {append!r}.")
        self.path = path
        self.eval_path = path.with_name(f"{path.stem}_eval{path.suffix}")
        self._tables = (
            _Table(path, "step", append),
            _Table(self.eval_path, "eval_step", append),
        )

    def on_chunk(
        self, rows: dict[str, np.ndarray], *, step: int, elapsed: float
    ) -> None:
        """Append the chunk's rows to the CSV files and flush them."""
        if jax.process_index() != 0:  # one writer for a multi-process run
            return
        for table, group in zip(self._tables, _split(rows), strict=True):
            table.write(group)

    def close(self) -> None:
        """Close the files (a later chunk opens them again, appending)."""
        for table in self._tables:
            table.close()


class TensorBoardLogger(Callback):
    r"""Write `fit`'s history as TensorBoard scalars, flushed after every chunk.

    Every history column becomes one scalar series named ``prefix + column``
    (``loss``, ``grad_norm``, ``skipped``, ``learning_rate``, aux metrics) with
    one point per row at that row's ``step``; the ``eval_*`` columns are
    written at ``eval_step``. Each chunk after the first also adds
    ``steps_per_second`` at the chunk's last step:

    $$
    \text{steps\_per\_second} = \frac{\text{step} - \text{step}_{\text{previous
    chunk}}}{\text{elapsed}}
    $$

    (the first chunk holds the compilation, and on a resumed run its start is
    not known, so it has no rate). The first rows written purge the events
    that an earlier run left in ``logdir`` at their steps and after, so a run
    resumed from a checkpoint shows every step once. Built on
    ``tensorboardX.SummaryWriter``, imported only here: ``pip install
    'jaxopt-lite[tensorboard]'``. In a run over several processes only
    process 0 writes.

    Args:
        logdir: the folder for the event files (created if needed).
        prefix: prepended to every tag, e.g. ``"train/"``.

    Example:
        >>> import os, tempfile, numpy as np, jaxopt_lite as jol
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     logger = jol.TensorBoardLogger(tmp, prefix="fit/")
        ...     logger.on_chunk({"step": np.array([5]), "loss": np.array([0.5])},
        ...                     step=5, elapsed=0.2)
        ...     logger.close()
        ...     print(len(os.listdir(tmp)), "event file")
        1 event file
    """

    def __init__(self, logdir: str | os.PathLike, *, prefix: str = ""):
        logdir = _path("logdir", logdir)
        if logdir.exists() and not logdir.is_dir():
            raise ValueError(
                f"logdir={os.fspath(logdir)!r} is a file; TensorBoard needs a folder."
            )
        if not isinstance(prefix, str):
            raise TypeError(f"prefix must be a str, got {prefix!r}.")
        try:
            from tensorboardX import SummaryWriter
        except ImportError as error:
            raise ImportError(
                f"TensorBoardLogger needs tensorboardX: {_TENSORBOARD_INSTALL}."
            ) from error
        self.logdir = logdir
        self.prefix = prefix
        self._make_writer = SummaryWriter
        self._writer: Any = None
        self._last_step: int | None = None

    def on_chunk(
        self, rows: dict[str, np.ndarray], *, step: int, elapsed: float
    ) -> None:
        """Add the chunk's rows and its rate as scalars and flush the file."""
        if isinstance(step, bool) or not isinstance(step, numbers.Integral):
            raise TypeError(f"step must be an integer, got {step!r}.")
        if isinstance(elapsed, bool) or not isinstance(elapsed, numbers.Real):
            raise TypeError(f"elapsed must be a number of seconds, got {elapsed!r}.")
        if not elapsed >= 0:
            raise ValueError(f"elapsed={elapsed!r} must be a number of seconds >= 0.")
        if jax.process_index() != 0:  # one writer for a multi-process run
            return
        groups = _split(rows)
        if self._writer is None:
            # Events from an earlier (interrupted) run at the steps this run
            # writes again are purged: a resumed run shows every step once.
            starts = [
                int(g[k][0])
                for g, k in zip(groups, _STEPS, strict=True)
                if len(g.get(k, ()))
            ]
            self._writer = self._make_writer(
                logdir=os.fspath(self.logdir),
                purge_step=min(starts, default=None),
                # tensorboardX names files by the second and the host: two
                # writers started within a second would share (and clobber)
                # one file without a suffix of their own, which keeps them in
                # the order they were made (readers load files in name order)
                filename_suffix=f".{time.time_ns() % 10**9:09d}.{os.getpid()}",
            )
        for group, step_key in zip(groups, _STEPS, strict=True):
            steps = group.get(step_key, ())
            for name, values in group.items():
                if name == step_key:
                    continue
                for at, value in zip(steps, values, strict=True):
                    self._writer.add_scalar(
                        self.prefix + name, float(value), global_step=int(at)
                    )
        step = int(step)
        if self._last_step is not None and elapsed > 0 and step > self._last_step:
            rate = (step - self._last_step) / float(elapsed)
            self._writer.add_scalar(
                self.prefix + "steps_per_second", rate, global_step=step
            )
        self._last_step = step
        self._writer.flush()

    def close(self) -> None:
        """Close the event file (a later chunk starts a new one in ``logdir``)."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None
