"""Checkpoints through Orbax: sharded, multi-process, asynchronous, several kept.

`OrbaxStore` keeps a run's checkpoints with Orbax's ``CheckpointManager``, one
folder per saved step (``<checkpoint_dir>/<step>/``) holding two items:
``arrays`` (every leaf of the run state as ``leaf_<i>`` and every history
column as ``array_<i>``, written by TensorStore: each process writes the
shards it holds, so a sharded leaf is never gathered) and ``manifest`` (JSON:
each leaf's path, shape and dtype, each column's name, and the run's
metadata). Orbax writes a step into a temporary folder and renames it once
every process is done, so a killed save never leaves a half-written step
(its temporary is removed when the next run opens the folder). With
``async_save`` the host only copies the arrays off the devices and the files
are written in a background thread while the next chunk runs. Keep-last-N
and keep-best-N are Orbax preservation policies.

A restore first reads the folder as untrusted input (`orbax_read`), then
asks Orbax for each leaf in the sharding the run gives it, so each process
reads only its own shards. Orbax is imported here only, and only when a run
uses it (the ``orbax`` extra).
"""

from __future__ import annotations

import math
import os
import pathlib
import shutil
from collections.abc import Mapping
from typing import Any

import jax
import numpy as np
from jax.experimental import multihost_utils

from jaxopt_lite._host import checkpoint, checkpoint_format, orbax_read
from jaxopt_lite._host.orbax_read import ARRAYS, FORMAT, MANIFEST, VERSION, unreadable

_TEMPORARY = ".orbax-checkpoint-tmp"  # in the names of unfinished steps
INSTALL = "pip install 'jaxopt-lite[orbax]'"


def import_orbax(what: str) -> Any:
    """``orbax.checkpoint``, or an ``ImportError`` naming the extra."""
    try:
        import orbax.checkpoint as ocp
    except ImportError as e:
        raise ImportError(
            f"{what} needs the orbax-checkpoint package, which is not installed: "
            f"{INSTALL} (or pip install orbax-checkpoint)."
        ) from e
    return ocp


def remove(directory: pathlib.Path, also: tuple[str, ...] = ()) -> None:
    """Delete the Orbax steps in ``directory``, their temporaries and the
    files named in ``also`` (a run that overwrites the folder; process 0
    deletes, every process waits for it)."""
    if jax.process_index() == 0:
        for name in os.listdir(directory) if directory.is_dir() else ():
            if orbax_read.is_step(name) or _TEMPORARY in name or name in also:
                path = directory / name
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path)
                else:
                    path.unlink()
    if jax.process_count() > 1:
        multihost_utils.sync_global_devices("jaxopt_lite: old checkpoints removed")


def _blank(shape: tuple, dtype: Any, sharding: Any, impl: Any) -> jax.Array:
    """A leaf with no elements (Orbax stores none), placed like the run's."""
    if checkpoint_format.is_key(dtype):
        data_shape, data_dtype = orbax_read.stored(shape, dtype)
        data = jax.device_put(np.zeros(data_shape, data_dtype), sharding)
        return jax.random.wrap_key_data(data, impl=str(impl))
    return jax.device_put(np.zeros(shape, dtype), sharding)


def _options(ocp: Any, keep_last: int, keep_best: Any, metric: str, mode: str,
             async_save: bool) -> Any:  # fmt: skip
    from orbax.checkpoint import checkpoint_managers as policies

    keep: list[Any] = [policies.LatestN(n=keep_last)]
    if keep_best is not None:
        worst = math.inf if mode == "min" else -math.inf

        def rank(metrics: Any) -> float:
            value = metrics.get(metric) if isinstance(metrics, dict) else None
            if isinstance(value, (int, float)) and math.isfinite(value):
                return float(value)
            return worst

        keep.append(
            policies.BestN(
                get_metric_fn=rank, reverse=mode == "min", n=keep_best,
                keep_checkpoints_without_metrics=False,
            )
        )  # fmt: skip
    return ocp.CheckpointManagerOptions(
        preservation_policy=policies.AnyPreservationPolicy(keep),
        enable_async_checkpointing=async_save,
        cleanup_tmp_directories=True,
        create=True,
    )


def _manager(ocp: Any, directory: pathlib.Path, options: Any) -> Any:
    class Manager(ocp.CheckpointManager):
        """Orbax's manager, except that it never asks about preemption itself:
        the pipeline does, once per chunk (`interrupts.Preemption`), and
        Orbax's own calls (with step numbers, from its threads) would upset
        the sync point's counting."""

        def reached_preemption(self, step: int) -> bool:
            return False

    registry = ocp.handlers.DefaultCheckpointHandlerRegistry()
    registry.add(ARRAYS, ocp.args.StandardSave)
    registry.add(ARRAYS, ocp.args.StandardRestore)
    registry.add(MANIFEST, ocp.args.JsonSave)
    registry.add(MANIFEST, ocp.args.JsonRestore)
    return Manager(directory, options=options, handler_registry=registry)


class OrbaxStore:
    """A run's checkpoints through Orbax (`checkpoint_store.Store`)."""

    def __init__(
        self,
        directory: pathlib.Path,
        *,
        keep_last: int,
        keep_best: int | None,
        best_metric: str,
        best_mode: str,
        async_save: bool,
        replace: bool,
    ):
        self.ocp = import_orbax("checkpointing with Orbax")
        self.directory, self.keep_best = directory, keep_best
        self.best_metric, self.best_mode = best_metric, best_mode
        self._options = _options(
            self.ocp, keep_last, keep_best, best_metric, best_mode, async_save
        )
        self._replace = replace  # the old steps go at the first save
        self._manager: Any = None
        self._latest: tuple[int, dict] | None = None
        self._pending: int | None = None  # the step being written

    def _open(self) -> Any:
        if self._manager is None:
            if self._replace:
                remove(self.directory, also=(checkpoint_format.FILENAME,))
                self._replace = False
            orbax_read.check_folder(self.directory)
            try:
                self._manager = _manager(self.ocp, self.directory, self._options)
            except Exception as e:  # whatever Orbax makes of a damaged folder
                raise unreadable(self.directory, f"{type(e).__name__}: {e}") from e
        return self._manager

    def _latest_manifest(self) -> tuple[int, dict]:
        if self._latest is None:
            step = self._open().latest_step()
            if step is None:
                raise FileNotFoundError(
                    f"no checkpoint found: {self.directory} holds no finished Orbax "
                    "step (a save that was killed leaves none)."
                )
            self._latest = step, orbax_read.read_manifest(self.directory / str(step))
        return self._latest

    def metadata(self) -> dict[str, Any]:
        return self._latest_manifest()[1]["metadata"]

    def restore(self, like: Any, bound: dict[str, Any]) -> checkpoint.Checkpoint:
        step, manifest = self._latest_manifest()
        where = self.directory / str(step)
        like_leaves, like_def = jax.tree_util.tree_flatten_with_path(like)
        paths = [jax.tree_util.keystr(p) for p, _ in like_leaves]
        expected = [
            checkpoint_format.expected(checkpoint_format.path_name(p), leaf)
            for p, (_, leaf) in zip(paths, like_leaves, strict=True)
        ]
        checkpoint.check_like(where, manifest["leaves"], paths, expected)
        default = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
        targets: dict[str, Any] = {}
        wanted: dict[str, tuple] = {}
        for i, (shape, dtype, sharding) in enumerate(expected):
            if math.prod(shape):
                targets[f"leaf_{i}"] = jax.ShapeDtypeStruct(
                    shape, dtype, sharding=sharding or default
                )
                what = checkpoint_format.path_name(paths[i])
                wanted[f"leaf_{i}"] = (what, *orbax_read.stored(shape, dtype))
        for i, fields in enumerate(manifest["arrays"]):
            shape, limit = tuple(fields["shape"]), bound.get(fields["name"])
            if (
                limit is None
                or fields["dtype"] != str(limit.dtype)
                or not (
                    shape[:-1] == limit.shape[:-1] and shape[-1:] <= limit.shape[-1:]
                )
            ):
                raise unreadable(
                    where, f"its history column {fields['name']!r} is {shape} "
                    f"{fields['dtype']}, not at most {limit}",
                )  # fmt: skip
            if math.prod(shape):
                targets[f"array_{i}"] = np.empty(shape, limit.dtype)
                what = f"history column {fields['name']!r}"
                wanted[f"array_{i}"] = what, shape, np.dtype(limit.dtype)
        restored = self._read(step, targets, wanted) if targets else {}
        leaves = [
            restored[f"leaf_{i}"]
            if f"leaf_{i}" in targets
            else _blank(shape, dtype, sharding or default, fields.get("impl"))
            for i, ((shape, dtype, sharding), fields) in enumerate(
                zip(expected, manifest["leaves"], strict=True)
            )
        ]
        arrays = {
            fields["name"]: np.asarray(restored[f"array_{i}"])
            if f"array_{i}" in targets
            else np.zeros(fields["shape"], bound[fields["name"]].dtype)
            for i, fields in enumerate(manifest["arrays"])
        }
        tree = jax.tree_util.tree_unflatten(like_def, leaves)
        return checkpoint.Checkpoint(tree, arrays, manifest["metadata"])

    def _read(self, step: int, targets: dict, wanted: dict) -> dict[str, Any]:
        """The ``arrays`` item of ``step``, once its metadata is checked."""
        manager, ocp, where = self._open(), self.ocp, self.directory / str(step)
        if not (where / ARRAYS).is_dir():
            raise unreadable(where, f"it has no {ARRAYS} item")
        try:
            found = manager.item_metadata(step)[ARRAYS]
        except Exception as e:  # Orbax's and TensorStore's own errors
            raise unreadable(where, f"{type(e).__name__}: {e}") from e
        orbax_read.check_stored(where, found, wanted)
        args = ocp.args.Composite(**{ARRAYS: ocp.args.StandardRestore(targets)})
        try:
            return manager.restore(step, args=args)[ARRAYS]
        except Exception as e:
            raise unreadable(where, f"{type(e).__name__}: {e}") from e

    def _metrics(self, arrays: Mapping[str, np.ndarray]) -> dict | None:
        """``{best_metric: value}``: the column's latest finite value (the best
        run's in a sweep), or None when it has none yet."""
        if self.keep_best is None:
            return None
        values = np.asarray(arrays[self.best_metric], np.float64)
        if not values.size:  # e.g. before the first evaluation
            return None
        latest = []
        for run in values.reshape(-1, values.shape[-1]):
            finite = run[np.isfinite(run)]
            latest += [float(finite[-1])] if finite.size else []
        if not latest:
            return None
        best = min if self.best_mode == "min" else max
        return {self.best_metric: best(latest)}

    def save(
        self, step: int, tree: Any, arrays: Mapping[str, Any], metadata: dict
    ) -> None:
        manager, ocp = self._open(), self.ocp
        self.wait()  # the previous save, finished (or its error raised)
        leaves_with_path, treedef = jax.tree_util.tree_flatten_with_path(tree)
        items, leaves = {}, []
        for i, (path, leaf) in enumerate(leaves_with_path):
            fields = {"path": jax.tree_util.keystr(path), "shape": list(leaf.shape)}
            fields["dtype"] = str(leaf.dtype)
            if checkpoint_format.is_key(leaf.dtype):
                fields["impl"] = str(jax.random.key_impl(leaf))
            leaves.append(fields)
            if leaf.size:
                items[f"leaf_{i}"] = leaf
        columns = []
        for i, (name, value) in enumerate(arrays.items()):
            value = np.asarray(value)
            columns.append(
                {"name": name, "shape": list(value.shape), "dtype": str(value.dtype)}
            )
            if value.size:
                items[f"array_{i}"] = value
        manifest = {
            "format": FORMAT, "version": VERSION, "treedef": str(treedef),
            "leaves": leaves, "arrays": columns, "metadata": metadata,
        }  # fmt: skip
        parts = {MANIFEST: ocp.args.JsonSave(manifest)}
        if items:
            parts[ARRAYS] = ocp.args.StandardSave(items)
        try:
            if step in manager.all_steps():  # e.g. saved again after a Ctrl-C
                manager.delete(step)
            manager.save(
                step, args=ocp.args.Composite(**parts),
                metrics=self._metrics(arrays), force=True,
            )  # fmt: skip
        except Exception as e:
            raise OSError(
                f"Orbax could not save step {step} in {self.directory}: "
                f"{type(e).__name__}: {e}"
            ) from e
        self._pending = step

    def due(self, wanted: bool) -> bool:
        """Process 0's ``wanted`` on every process: Orbax saves together, and
        clocks disagree (a collective, asked only of paced chunks)."""
        if jax.process_count() == 1:
            return wanted
        return bool(multihost_utils.broadcast_one_to_all(np.asarray(wanted)))

    def wait(self) -> None:
        """Wait for the save in progress; ``OSError`` if it did not finish."""
        if self._manager is None or self._pending is None:
            return
        step, self._pending = self._pending, None
        try:
            self._manager.wait_until_finished()
        except Exception as e:
            raise OSError(
                f"Orbax could not save step {step} in {self.directory}: "
                f"{type(e).__name__}: {e}"
            ) from e
        if step not in self._manager.all_steps():
            raise OSError(
                f"Orbax did not finish saving step {step} in {self.directory} "
                "(its log says why)."
            )

    def close(self) -> None:
        if self._manager is not None:
            try:
                self.wait()
            finally:
                self._manager.close()
                self._manager = None
