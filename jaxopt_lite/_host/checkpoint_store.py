"""Where a run's checkpoints go: the `Checkpointing` option, the backend it
picks, and the store the host pipeline saves and restores through.

A store is what `pipeline` needs of a backend (`Store`): the latest
checkpoint's ``metadata`` and its ``restore`` (checked against the run),
``save`` (the run state, its history and metadata at a step), ``due`` (every
process agrees whether a save is due by time), ``wait`` (the last save is on disk, or
its ``OSError`` raised) and ``close``. Two backends implement it: `NpzStore`,
over `checkpoint` (one ``checkpoint.npz`` written by process 0 while the host
waits: small, no dependency, the default) and `orbax_store.OrbaxStore`
(sharded and multi-process saves, writes in the background, several
checkpoints kept). ``backend="auto"`` resumes whichever the folder holds, and
a new run uses Orbax when it has several processes, a state sharded over
devices, or asks for ``keep_last``, ``keep_best`` or ``async_save``.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, NamedTuple, Protocol

import jax

from jaxopt_lite._core import validate
from jaxopt_lite._host import (
    checkpoint,
    checkpoint_format,
    options,
    orbax_read,
    orbax_store,
)

PyTree = Any
BACKENDS = ("auto", "npz", "orbax")


class Checkpointing(NamedTuple):
    r"""How `fit` and `sweep` keep and write the checkpoints of ``checkpoint_dir``.

    Two backends hold the same run state (parameters, optimizer and model
    state, key, step, history, the stream's position), refuse another run's
    checkpoint with the same errors, and resume bit-identically:

    - ``"npz"``: one ``checkpoint.npz`` (see `save_checkpoint`), replaced
      atomically by process 0 at each save while the host waits; the state is
      gathered to the host. No dependency.
    - ``"orbax"``: Orbax's ``CheckpointManager``, one folder per saved step
      (``checkpoint_dir/<step>/``): every process writes the shards it holds,
      the files are written in the background while the next chunk runs, and
      several checkpoints can be kept. Needs ``pip install
      'jaxopt-lite[orbax]'``.
    - ``"auto"`` (the default): ``resume=True`` continues whichever the folder
      holds; a new run uses ``"orbax"`` when it runs on several processes
      (``jax.distributed``), its state is sharded over devices, or
      ``keep_last``, ``keep_best`` or ``async_save=True`` ask for it, and
      ``"npz"`` otherwise.

    Attributes:
        keep_last: how many of the latest checkpoints to keep (>= 1; more
            than one needs Orbax). The latest is always kept: it is the one
            ``resume=True`` continues.
        keep_best: also keep this many checkpoints with the best
            ``best_metric`` (``None``: none; needs Orbax).
        best_metric: the history column that ranks checkpoints for
            ``keep_best``: ``"loss"`` (default), ``"grad_norm"``, an aux metric
            or an eval metric (``"accuracy"`` or ``"eval_accuracy"``). A
            checkpoint is ranked by the column's latest finite value when it
            is saved (in a sweep, the best run's); one without any is kept
            only while among the latest.
        best_mode: ``"min"``, ``"max"`` or ``None`` (default: inferred from
            the metric's name, as for `EarlyStopping`).
        async_save: write in the background while the next chunk runs:
            ``True`` (needs Orbax), ``False`` (the host waits for each save),
            or ``None`` (default: in the background with Orbax). The result is
            returned only once the last save is on disk.
        backend: ``"auto"`` (default), ``"npz"`` or ``"orbax"``.

    Example:
        >>> import jaxopt_lite as jol
        >>> keep = jol.Checkpointing(keep_last=2, keep_best=1, best_metric="accuracy")
        >>> keep.backend, keep.async_save
        ('auto', None)
    """

    keep_last: int = 1
    keep_best: int | None = None
    best_metric: str = "loss"
    best_mode: str | None = None
    async_save: bool | None = None
    backend: str = "auto"


def _asks_orbax(c: Checkpointing) -> bool:
    return c.keep_last > 1 or c.keep_best is not None or c.async_save is True


def check_checkpointing(
    checkpointing: Any, directory: Any, columns: Sequence[str]
) -> Checkpointing:
    """``checkpointing`` (``None``: the defaults) checked, with ``best_metric``
    resolved to a history column among ``columns`` and ``best_mode`` to
    ``"min"`` or ``"max"``."""
    if checkpointing is None:
        return Checkpointing()
    if not isinstance(checkpointing, Checkpointing):
        raise TypeError(
            "checkpointing must be a jaxopt_lite.Checkpointing or None, got "
            f"{checkpointing!r}."
        )
    c = checkpointing
    validate.check_choice("checkpointing.backend", c.backend, BACKENDS)
    validate.check_count("checkpointing.keep_last", c.keep_last)
    validate.check_count("checkpointing.keep_best", c.keep_best, optional=True)
    if c.async_save is not None:
        validate.check_bool("checkpointing.async_save", c.async_save)
    validate.check_choice("checkpointing.best_mode", c.best_mode, (None, "min", "max"))
    if not isinstance(c.best_metric, str):
        raise TypeError(
            f"checkpointing.best_metric must be a str, got {c.best_metric!r}."
        )
    if directory is None:
        raise ValueError("checkpointing was given without checkpoint_dir.")
    metric = c.best_metric
    if metric not in columns and f"eval_{metric}" in columns:
        metric = f"eval_{metric}"
    mode = c.best_mode or options.infer_mode(metric) or "min"
    if c.keep_best is not None:
        if metric not in columns:
            raise ValueError(
                f"checkpointing.best_metric={c.best_metric!r} is not a history "
                f"column; choose one of {list(columns)}."
            )
        if c.best_mode is None and options.infer_mode(metric) is None:
            raise ValueError(
                f"checkpointing.best_metric={c.best_metric!r}: cannot tell whether "
                "it should go down or up; pass best_mode='min' or 'max'."
            )
    if c.backend == "npz" and _asks_orbax(c):
        raise ValueError(
            f"{c}: the 'npz' backend keeps one checkpoint and writes it while the "
            "host waits; keep_last > 1, keep_best and async_save=True need "
            "backend='orbax' (or 'auto')."
        )
    if c.backend == "orbax" or _asks_orbax(c):
        orbax_store.import_orbax(f"checkpointing={c}")
    return c._replace(best_metric=metric, best_mode=mode)


class Store(Protocol):
    """What the pipeline needs of a checkpoint backend."""

    def metadata(self) -> dict[str, Any]:
        """The latest checkpoint's metadata (read before its arrays)."""
        ...

    def restore(self, like: PyTree, bound: dict[str, Any]) -> checkpoint.Checkpoint:
        """The latest checkpoint, checked against ``like`` (the run's state,
        whose placement it gets); ``bound`` maps each history column to a
        ``jax.ShapeDtypeStruct`` of its dtype and largest shape."""
        ...

    def save(
        self, step: int, tree: PyTree, arrays: Mapping[str, Any], metadata: dict
    ) -> None:
        """Save (or start saving) ``tree``, ``arrays`` and ``metadata`` as the
        checkpoint of ``step``; ``OSError`` when writing failed."""
        ...

    def due(self, wanted: bool) -> bool:
        """Whether a save is due by time: ``wanted`` on process 0 (where
        every process must save together, all of them take its decision)."""
        ...

    def wait(self) -> None:
        """Return once the last save is on disk (``OSError`` if it failed)."""
        ...

    def close(self) -> None:
        """Wait for the last save and let go of the folder."""
        ...


class NpzStore:
    """One ``checkpoint.npz``, written by process 0 (`Store`)."""

    def __init__(self, directory: pathlib.Path, replace: bool):
        self.directory = directory
        self._replace = replace  # an Orbax checkpoint there goes at the first save

    def metadata(self) -> dict[str, Any]:
        path = self.directory / checkpoint_format.FILENAME
        entries = checkpoint_format.read(path, (checkpoint_format.METADATA,))
        return checkpoint_format.read_json(entries, checkpoint_format.METADATA, path)

    def restore(self, like: PyTree, bound: dict[str, Any]) -> checkpoint.Checkpoint:
        return checkpoint.load_checkpoint(self.directory, like)

    def save(
        self, step: int, tree: PyTree, arrays: Mapping[str, Any], metadata: dict
    ) -> None:
        if jax.process_index() == 0:  # several processes hold the same run
            checkpoint.save_checkpoint(
                self.directory, tree, arrays=arrays, metadata=metadata
            )
        if self._replace:
            self._replace = False
            orbax_store.remove(self.directory)

    def due(self, wanted: bool) -> bool:
        return wanted  # process 0 alone writes: the others need not agree

    def wait(self) -> None:
        pass

    def close(self) -> None:
        pass


def found(directory: Any) -> str | None:
    """The backend of the checkpoint in ``directory`` (``None``: none; a
    ``ValueError`` when it holds both)."""
    folder = checkpoint_format.checkpoint_dir(directory, "checkpoint_dir")
    npz = os.path.lexists(folder / checkpoint_format.FILENAME)
    steps = orbax_read.step_folders(folder)
    if npz and steps:
        raise ValueError(
            f"checkpoint_dir={os.fspath(directory)!r} holds both a "
            f"{checkpoint_format.FILENAME} and Orbax steps {steps}: move one away "
            "to resume the other."
        )
    return "npz" if npz else "orbax" if steps else None


def check_fresh(directory: Any, *, resume: Any, overwrite: Any) -> None:
    """`checkpoint.check_fresh`, also for a folder that holds Orbax steps."""
    steps = []
    if isinstance(directory, (str, os.PathLike)) and os.fspath(directory):
        steps = orbax_read.step_folders(directory)
    orbax = f"an Orbax checkpoint of steps {steps}" if steps else None
    checkpoint.check_fresh(directory, resume=resume, overwrite=overwrite, found=orbax)


def _sharded(tree: PyTree) -> bool:
    return any(
        isinstance(x, jax.Array) and not x.sharding.is_fully_replicated
        for x in jax.tree.leaves(tree)
    )


def _open(plan: Any, like: PyTree) -> Store:
    c: Checkpointing = plan.checkpointing
    folder = checkpoint_format.checkpoint_dir(plan.checkpoint_dir, "checkpoint_dir")
    on_disk = found(folder) if plan.resume else None
    backend = c.backend
    if backend == "auto":
        wanted = _asks_orbax(c) or jax.process_count() > 1 or _sharded(like)
        backend = on_disk or ("orbax" if wanted else "npz")
    if on_disk is not None and on_disk != backend:
        raise ValueError(
            f"checkpoint_dir={os.fspath(plan.checkpoint_dir)!r} holds a checkpoint "
            f"of the {on_disk!r} backend, but this call has checkpointing={c}; "
            "resume with the backend that wrote it."
        )
    if backend == "orbax":
        return orbax_store.OrbaxStore(
            folder, keep_last=c.keep_last, keep_best=c.keep_best,
            best_metric=c.best_metric, best_mode=c.best_mode or "min",
            async_save=c.async_save is not False, replace=plan.overwrite,
        )  # fmt: skip
    if jax.process_count() > 1 and not all(
        x.is_fully_addressable or x.is_fully_replicated
        for x in jax.tree.leaves(like)
        if isinstance(x, jax.Array)
    ):
        raise ValueError(
            "checkpointing.backend='npz' cannot save a state split over several "
            "processes (process 0 writes the file); use backend='orbax'."
        )
    if _asks_orbax(c):
        raise ValueError(
            f"checkpointing={c} needs Orbax, but checkpoint_dir="
            f"{os.fspath(plan.checkpoint_dir)!r} holds a {checkpoint_format.FILENAME}"
            " checkpoint: resume it without keep_last, keep_best or async_save, "
            "or start a new checkpoint_dir."
        )
    return NpzStore(folder, replace=plan.overwrite)


@contextlib.contextmanager
def opened(plan: Any, like: PyTree) -> Iterator[Store | None]:
    """The store of ``plan.checkpoint_dir`` (``None`` without one), for a run
    whose initial state is ``like``; closed (its last save waited for) at the
    end."""
    if plan.checkpoint_dir is None:
        yield None
        return
    store = _open(plan, like)
    try:
        yield store
    except BaseException:
        with contextlib.suppress(Exception):  # the run's own error goes first
            store.close()
        raise
    store.close()
