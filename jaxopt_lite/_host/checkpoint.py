"""Checkpoints: a run's whole state in one file, written atomically, no pickle.

A checkpoint directory holds one file, ``checkpoint.npz``: a NumPy ``.npz``
archive with one entry per tree leaf, one per named array, and two JSON
documents stored as ``uint8`` entries (a manifest describing every leaf, and
the user's metadata). Loading uses ``np.load(..., allow_pickle=False)`` and
``json.loads`` only, so opening a checkpoint can never run code.

A save writes ``.checkpoint-<random>.tmp`` next to the file and renames it;
a process killed mid-write leaves that temporary behind. Every save and load
removes such leftovers from its folder, except the ones that a save running
in this process (another thread) is still writing: those are registered in
``_WRITING`` while they exist. Saves from other processes are not tracked:
one folder has one writer (as `save_checkpoint` documents).
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import re
import tempfile
import threading
from collections.abc import Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.core import Tracer

from jaxopt_lite._core import validate as v
from jaxopt_lite._host import checkpoint_format

PyTree = Any

_TMP_PREFIX, _TMP_SUFFIX = ".checkpoint-", ".tmp"
_TMP_NAME = re.compile(r"\.checkpoint-[A-Za-z0-9_]+\.tmp")
_WRITING: set[str] = set()  # real paths of the temporaries being written now
_WRITING_LOCK = threading.Lock()


def remove_stale_temporaries(directory: pathlib.Path) -> list[pathlib.Path]:
    """Delete the temporaries that killed saves left in ``directory``.

    Only plain files named like our own temporaries, only in that folder (not
    below it), and never one that a save of this process is writing. Files
    that cannot be deleted (a read-only folder) are left alone.

    Returns:
        The paths removed.
    """
    removed = []
    with _WRITING_LOCK, contextlib.suppress(OSError):
        with os.scandir(directory) as entries:
            for entry in entries:
                if (
                    _TMP_NAME.fullmatch(entry.name)
                    and entry.is_file(follow_symlinks=False)
                    and os.path.realpath(entry.path) not in _WRITING
                ):
                    with contextlib.suppress(OSError):
                        os.unlink(entry.path)
                        removed.append(pathlib.Path(entry.path))
    return removed


class Checkpoint(NamedTuple):
    r"""What `load_checkpoint` returns.


    Attributes:
        tree: the saved pytree, with the structure of the ``like`` tree given
            to `load_checkpoint`; its leaves are JAX arrays, bit for bit the
            ones saved (typed PRNG keys come back as typed keys).
        arrays: the named NumPy arrays saved with ``arrays=`` (``{}`` if none).
        metadata: the JSON-able dict saved with ``metadata=`` (``{}`` if none);
            JSON turns tuples into lists.
    """

    tree: PyTree
    arrays: dict[str, np.ndarray]
    metadata: dict[str, Any]


def save_checkpoint(
    directory: str | os.PathLike,
    tree: PyTree,
    *,
    arrays: Mapping[str, Any] | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> pathlib.Path:
    r"""Save a pytree (plus named arrays and metadata) atomically, without pickle.


    The file is written next to its final name, flushed to disk and renamed
    over the previous checkpoint (then the folder is synced), so a crash at
    any point leaves either the old or the new checkpoint, never a mix.
    Leaves may be JAX arrays (sharded ones are gathered to the host), NumPy
    arrays, Python numbers (stored with JAX's default dtype), arrays of any
    bool, integer, floating or complex dtype including ``bfloat16`` (kept as
    its bit pattern), raw ``uint32`` keys and typed keys from
    ``jax.random.key`` (kept as key data plus the implementation's name).
    Values are stored bit for bit, NaN payloads and signed zeros included.
    Temporaries left in ``directory`` by earlier killed saves are removed.
    One folder has one writer: in a multi-process run, call it from one
    process only.

    Args:
        directory: the folder (created if needed) that holds the checkpoint.
        tree: the pytree to save, e.g. ``(params, opt_state, key, step)``.
        arrays: optional ``{name: array}`` of numeric arrays whose shapes may
            vary between saves (e.g. the loss history so far); loaded back
            as-is, not checked against anything.
        metadata: optional dict of JSON values (dict with str keys, list,
            str, int, float, bool, None).

    Returns:
        The ``pathlib.Path`` of the file written, ``directory/checkpoint.npz``.

    Example:
        >>> import tempfile, jax.numpy as jnp, jaxopt_lite as jol
        >>> with tempfile.TemporaryDirectory() as d:
        ...     path = jol.save_checkpoint(d, {"w": jnp.ones(2)}, metadata={"step": 3})
        ...     print(path.name, jol.has_checkpoint(d))
        checkpoint.npz True
    """
    directory = checkpoint_format.checkpoint_dir(directory)
    if arrays is None:
        arrays = {}
    if not isinstance(arrays, Mapping):
        raise TypeError(
            f"arrays must be a dict of name -> numeric array, got {arrays!r}."
        )
    if metadata is None:
        metadata = {}
    if not isinstance(metadata, Mapping):
        raise TypeError(
            f"metadata must be a dict of JSON-able values, got {metadata!r}."
        )
    metadata = dict(metadata)
    checkpoint_format.check_metadata(metadata, "metadata")

    entries: dict[str, np.ndarray] = {}
    leaves_with_path, treedef = jax.tree_util.tree_flatten_with_path(tree)
    leaf_fields = []
    for i, (key_path, leaf) in enumerate(leaves_with_path):
        path = jax.tree_util.keystr(key_path)
        stored, fields = checkpoint_format.leaf_to_numpy(
            checkpoint_format.path_name(path), leaf
        )
        entries[f"leaf_{i}"] = stored
        leaf_fields.append({"path": path, **fields})
    array_fields = []
    for i, (name, value) in enumerate(arrays.items()):
        where = f"arrays[{name!r}]"
        if not isinstance(name, str):
            raise TypeError(f"arrays has the key {name!r}; names must be str.")
        if isinstance(value, jax.Array) and checkpoint_format.is_key(value.dtype):
            raise TypeError(f"{where} is a PRNG key; put keys in the tree instead.")
        if isinstance(value, Tracer):
            raise TypeError(f"{where} is a traced value; save outside jit/vmap/grad.")
        try:
            array = np.asarray(jax.device_get(value))
        except Exception as e:
            raise TypeError(f"{where} is not an array: {e}") from None
        stored, fields = checkpoint_format.encode(array, where)
        entries[f"array_{i}"] = stored
        array_fields.append({"name": name, **fields})
    manifest = {
        "format": checkpoint_format.FORMAT,
        "version": checkpoint_format.VERSION,
        "treedef": str(treedef),
        "leaves": leaf_fields,
        "arrays": array_fields,
    }
    entries[checkpoint_format.MANIFEST] = checkpoint_format.json_entry(manifest)
    entries[checkpoint_format.METADATA] = checkpoint_format.json_entry(metadata)

    directory.mkdir(parents=True, exist_ok=True)
    target = directory / checkpoint_format.FILENAME
    if target.exists() and not target.is_file():
        raise ValueError(f"{target} exists and is not a file; cannot save there.")
    with _WRITING_LOCK:  # so that a concurrent cleanup never sees it unregistered
        fd, tmp = tempfile.mkstemp(
            prefix=_TMP_PREFIX, suffix=_TMP_SUFFIX, dir=directory
        )
        registered = os.path.realpath(tmp)
        _WRITING.add(registered)
    try:
        remove_stale_temporaries(directory)
        with os.fdopen(fd, "wb") as f:
            checkpoint_format.write_npz(f, entries)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    finally:
        with _WRITING_LOCK:
            _WRITING.discard(registered)
    checkpoint_format.fsync_directory(directory)
    return target


def has_checkpoint(directory: str | os.PathLike) -> bool:
    r"""Whether ``directory`` holds a checkpoint written by `save_checkpoint`.


    Only the small manifest entry is read, to tell a checkpoint from a file
    that merely has its name.

    Args:
        directory: the folder to look in (it need not exist).

    Returns:
        ``True`` when ``directory/checkpoint.npz`` is a jaxopt_lite checkpoint,
        ``False`` when there is no such file.

    Raises:
        ValueError: the file exists but is not a readable jaxopt_lite
            checkpoint (truncated, damaged, or written by another program), or
            ``directory`` is a file.

    Example:
        >>> import tempfile, jaxopt_lite as jol
        >>> with tempfile.TemporaryDirectory() as d:
        ...     print(jol.has_checkpoint(d))
        False
    """
    path = checkpoint_format.checkpoint_dir(directory) / checkpoint_format.FILENAME
    if not path.exists():
        return False
    checkpoint_format.read_manifest(
        checkpoint_format.read(path, (checkpoint_format.MANIFEST,)), path
    )
    return True


def check_fresh(directory: Any, *, resume: Any, overwrite: Any) -> None:
    """Refuse to start a run over an existing checkpoint by accident.

    For a driver taking ``checkpoint_dir``, ``resume`` and ``overwrite``: with
    ``resume=True`` the folder must hold a readable checkpoint; without it, a
    file ``checkpoint.npz`` already there (readable or not) is an error unless
    ``overwrite=True``. The old checkpoint is not deleted here: the run's
    first save replaces it atomically, so a run that fails before saving
    loses nothing.

    Raises:
        TypeError: ``resume`` or ``overwrite`` is not a bool.
        ValueError: the combination is contradictory, or the folder holds a
            checkpoint and neither flag was given, or that checkpoint is not
            readable (with ``resume=True``).
        FileNotFoundError: ``resume=True`` and there is no checkpoint.
    """
    v.check_bool("resume", resume)
    v.check_bool("overwrite", overwrite)
    if directory is None:
        for flag, given in (("resume", resume), ("overwrite", overwrite)):
            if given:
                raise ValueError(f"{flag}=True needs checkpoint_dir.")
        return
    if resume and overwrite:
        raise ValueError(
            "resume=True and overwrite=True exclude each other: resume continues "
            "the checkpoint in checkpoint_dir, overwrite starts over and replaces "
            "it."
        )
    folder = checkpoint_format.checkpoint_dir(directory, "checkpoint_dir")
    if resume:
        if not has_checkpoint(folder):
            raise FileNotFoundError(
                f"resume=True but there is no checkpoint in {folder} "
                f"({folder / checkpoint_format.FILENAME} does not exist)."
            )
        return
    path = folder / checkpoint_format.FILENAME
    if path.exists() and not overwrite:
        raise ValueError(
            f"checkpoint_dir={os.fspath(directory)!r} already holds a checkpoint "
            f"({path}), which this run would overwrite. Pass resume=True to "
            "continue that run, or overwrite=True to start over and replace it "
            "(or delete the file)."
        )


def load_checkpoint(directory: str | os.PathLike, like: PyTree) -> Checkpoint:
    r"""Load the checkpoint in ``directory``, checked against the tree ``like``.


    The stored leaves must match ``like`` leaf for leaf (same paths, shapes and
    dtypes); the first difference raises a ``ValueError`` that names it.
    Leaves come back as JAX arrays, bit for bit as saved; where the leaf of
    ``like`` is a committed ``jax.Array`` (or a ``jax.ShapeDtypeStruct`` with a
    sharding) the restored leaf is placed with that sharding. A 64-bit leaf
    loaded while ``jax_enable_x64`` is off comes back as a NumPy array, since
    JAX would round it. The file is read with ``allow_pickle=False``: a file
    holding pickled objects is refused with a ``ValueError``, and so is one
    that is truncated, damaged or not a jaxopt_lite checkpoint. Temporaries
    left in ``directory`` by killed saves are removed.

    Args:
        directory: the folder given to `save_checkpoint`.
        like: a pytree with the expected structure whose leaves are arrays,
            ``jax.ShapeDtypeStruct`` s or Python numbers (e.g. the freshly
            initialised state of the run being resumed). Only shapes, dtypes
            and shardings are read from it.

    Returns:
        A `Checkpoint` ``(tree, arrays, metadata)``.

    Example:
        >>> import tempfile, jax, jax.numpy as jnp, jaxopt_lite as jol
        >>> state = {"w": jnp.array([1.5, -0.0]), "key": jax.random.key(0)}
        >>> with tempfile.TemporaryDirectory() as d:
        ...     _ = jol.save_checkpoint(d, state, metadata={"step": 3})
        ...     ckpt = jol.load_checkpoint(d, jax.eval_shape(lambda: state))
        >>> ckpt.tree["w"], ckpt.metadata
        (Array([ 1.5, -0. ], dtype=float32), {'step': 3})
    """
    directory = checkpoint_format.checkpoint_dir(directory)
    path = directory / checkpoint_format.FILENAME
    like_leaves, like_def = jax.tree_util.tree_flatten_with_path(like)
    like_paths = [jax.tree_util.keystr(p) for p, _ in like_leaves]
    expected = [
        checkpoint_format.expected(checkpoint_format.path_name(p), leaf)
        for p, (_, leaf) in zip(like_paths, like_leaves, strict=True)
    ]
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint found: {path} does not exist.")
    remove_stale_temporaries(directory)

    entries = checkpoint_format.read(path)
    manifest = checkpoint_format.read_manifest(entries, path)
    metadata = checkpoint_format.read_json(entries, checkpoint_format.METADATA, path)
    if not isinstance(metadata, dict):
        raise ValueError(f"{path} has a corrupt metadata entry.")

    mismatch = f"checkpoint in {directory} does not match this run: "
    stored_fields = manifest["leaves"]
    stored_paths = [f["path"] for f in stored_fields]
    if stored_paths != like_paths:
        raise ValueError(
            mismatch + checkpoint_format.structure_mismatch(stored_paths, like_paths)
        )

    leaves = []
    for i, (p, fields, (shape, dtype, sharding)) in enumerate(
        zip(like_paths, stored_fields, expected, strict=True)
    ):
        where = checkpoint_format.path_name(p)
        stored_dtype = fields["dtype"]
        if stored_dtype != str(dtype):
            raise ValueError(
                f"{mismatch}{where} has dtype {stored_dtype} in the checkpoint "
                f"but {dtype} here"
            )
        stored_shape = tuple(fields["shape"])
        if stored_shape != shape:
            raise ValueError(
                f"{mismatch}{where} has shape {stored_shape} in the checkpoint "
                f"but {shape} here"
            )
        value = checkpoint_format.decode(entries, f"leaf_{i}", fields, path)
        if checkpoint_format.is_key(dtype):
            try:
                leaf = jax.random.wrap_key_data(
                    jnp.asarray(value), impl=str(fields["impl"])
                )
            except Exception as e:
                msg = f"{path}: cannot restore the key {where}: {e}"
                raise ValueError(msg) from None
        elif jax.dtypes.canonicalize_dtype(value.dtype) != value.dtype:
            leaves.append(value)  # 64-bit with x64 off: keep it exact, in NumPy.
            continue
        else:
            leaf = jnp.asarray(value)
        leaves.append(leaf if sharding is None else jax.device_put(leaf, sharding))

    arrays = {}
    for i, fields in enumerate(manifest["arrays"]):
        arrays[fields["name"]] = checkpoint_format.decode(
            entries, f"array_{i}", fields, path
        )
    return Checkpoint(jax.tree_util.tree_unflatten(like_def, leaves), arrays, metadata)
