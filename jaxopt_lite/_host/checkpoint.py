"""Checkpoints: a run's whole state in one file, written atomically, no pickle.

A checkpoint directory holds one file, ``checkpoint.npz``: a NumPy ``.npz``
archive with one entry per tree leaf, one per named array, and two JSON
documents stored as ``uint8`` entries (a manifest describing every leaf, and
the user's metadata). Loading reads the file as untrusted input
(`checkpoint_read`: sizes checked before anything is allocated, no pickle,
regular files only), so opening a checkpoint can never run code, hang, or
exhaust memory.

A save writes ``.checkpoint-<random>.tmp`` next to the file and renames it,
holding the folder's writer lock (`checkpoint_write`): a second process that
tries to write the folder meanwhile is refused, and a process killed
mid-write leaves only that temporary behind, which the next holder of the
lock removes.
"""

from __future__ import annotations

import os
import pathlib
from collections.abc import Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.core import Tracer

from jaxopt_lite._core import validate
from jaxopt_lite._host import checkpoint_format, checkpoint_read, checkpoint_write

PyTree = Any


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
    One folder has one writer: the save holds the folder's writer lock (a
    ``.checkpoint.lock`` file, gone again when it ends on POSIX), and a save
    from another process while one holds it waits a second, then raises
    ``RuntimeError``.
    Temporaries left in ``directory`` by earlier killed saves are removed.

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

    Raises:
        TypeError: an argument of the wrong kind (nothing touched on disk).
        ValueError: a value that cannot be stored (nothing touched on disk),
            or ``directory/checkpoint.npz`` is not a regular file.
        RuntimeError: another process is writing checkpoints to
            ``directory`` (its pid is in the message); nothing was written.
        OSError: writing failed (disk full, permissions, ...): the message
            names the folder and the errno, which is kept (so e.g. a
            ``PermissionError`` stays one). The previous checkpoint is left
            intact and the temporary file removed.

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
    entries[checkpoint_format.MANIFEST] = checkpoint_format.json_entry(
        manifest, "the manifest (one entry per leaf)"
    )
    entries[checkpoint_format.METADATA] = checkpoint_format.json_entry(
        metadata, "metadata"
    )

    return checkpoint_write.write(directory, entries)


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
    with checkpoint_read.Archive(path) as archive:
        checkpoint_format.read_manifest(archive)
    return True


def check_fresh(
    directory: Any, *, resume: Any, overwrite: Any, found: str | None = None
) -> None:
    """Refuse to start a run over an existing checkpoint by accident.

    For a driver taking ``checkpoint_dir``, ``resume`` and ``overwrite``: with
    ``resume=True`` the folder must hold a readable checkpoint; without it, a
    file ``checkpoint.npz`` already there (readable or not) is an error unless
    ``overwrite=True``. ``found`` describes a checkpoint of another format
    that the folder holds (an Orbax one), which counts as well. The old
    checkpoint is not deleted here: the run's first save replaces it, so a
    run that fails before saving loses nothing.

    Raises:
        TypeError: ``resume`` or ``overwrite`` is not a bool.
        ValueError: the combination is contradictory, or the folder holds a
            checkpoint and neither flag was given, or that checkpoint is not
            readable (with ``resume=True``).
        FileNotFoundError: ``resume=True`` and there is no checkpoint.
    """
    validate.check_bool("resume", resume)
    validate.check_bool("overwrite", overwrite)
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
        if found is None and not has_checkpoint(folder):
            raise FileNotFoundError(
                f"resume=True but checkpoint_dir={os.fspath(directory)!r} holds no "
                f"checkpoint ({folder / checkpoint_format.FILENAME} does not "
                "exist: nothing was saved there yet, as when a run stops before "
                "its first save); start the run with resume=False."
            )
        return
    path = folder / checkpoint_format.FILENAME
    if os.path.lexists(path) and not path.is_file():
        raise ValueError(
            f"{path} exists and is not a regular file, so no run can save "
            "there; move it away."
        )
    if (path.exists() or found is not None) and not overwrite:
        raise ValueError(
            f"checkpoint_dir={os.fspath(directory)!r} already holds a checkpoint "
            f"({found or path}), which this run would overwrite. Pass resume=True to "
            "continue that run, or overwrite=True to start over and replace it "
            "(or delete it)."
        )


def load_checkpoint(directory: str | os.PathLike, like: PyTree) -> Checkpoint:
    r"""Load the checkpoint in ``directory``, checked against the tree ``like``.


    The stored leaves must match ``like`` leaf for leaf (same paths, shapes and
    dtypes); the first difference raises a ``ValueError`` that names it.
    Leaves come back as JAX arrays, bit for bit as saved; where the leaf of
    ``like`` is a committed ``jax.Array`` (or a ``jax.ShapeDtypeStruct`` with a
    sharding) the restored leaf is placed with that sharding. A 64-bit leaf
    loaded while ``jax_enable_x64`` is off comes back as a NumPy array, since
    JAX would round it. The file is read as untrusted input, never with
    pickle: every size it declares is checked against the file (and against
    ``like``) before memory is allocated, and a file that holds pickled
    objects, is truncated, damaged, crafted, not a regular file (a pipe is
    never opened) or not a jaxopt_lite checkpoint is refused with a
    ``ValueError`` naming the file and the problem. Entries written on a
    machine of the other byte order are byte-swapped, exactly. Temporaries
    left in ``directory`` by killed saves are removed, unless another
    process is writing checkpoints there.

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
    checkpoint_write.remove_stale_temporaries(directory)
    with checkpoint_read.Archive(path) as archive:
        manifest = checkpoint_format.read_manifest(archive)
        metadata = archive.json(checkpoint_format.METADATA)
        if not isinstance(metadata, dict):
            raise ValueError(f"{path} has a corrupt metadata entry.")
        check_like(directory, manifest["leaves"], like_paths, expected)
        values = [
            checkpoint_format.decode(archive, f"leaf_{i}", fields)
            for i, fields in enumerate(manifest["leaves"])
        ]
        arrays = {
            fields["name"]: checkpoint_format.decode(archive, f"array_{i}", fields)
            for i, fields in enumerate(manifest["arrays"])
        }
    leaves = []
    for p, fields, value, (_, dtype, sharding) in zip(
        like_paths, manifest["leaves"], values, expected, strict=True
    ):
        if checkpoint_format.is_key(dtype):
            if sharding is not None and not sharding.is_fully_addressable:
                # device_put cannot place keys over other processes: their data
                value, sharding = jax.device_put(value, sharding), None
            try:
                leaf = jax.random.wrap_key_data(
                    jnp.asarray(value), impl=str(fields["impl"])
                )
            except Exception as e:
                where = checkpoint_format.path_name(p)
                msg = f"{path}: cannot restore the key {where}: {e}"
                raise ValueError(msg) from None
        elif jax.dtypes.canonicalize_dtype(value.dtype) != value.dtype:
            leaves.append(value)  # 64-bit with x64 off: keep it exact, in NumPy.
            continue
        else:
            leaf = jnp.asarray(value)
        leaves.append(leaf if sharding is None else jax.device_put(leaf, sharding))
    return Checkpoint(jax.tree_util.tree_unflatten(like_def, leaves), arrays, metadata)


def check_like(
    directory: pathlib.Path, stored: list[dict], like_paths: list[str], expected: list
) -> None:
    """Refuse a manifest whose leaves (``path``, ``shape``, ``dtype``) differ
    from ``like``'s (before any leaf is read)."""
    mismatch = f"checkpoint in {directory} does not match this run: "
    stored_paths = [f["path"] for f in stored]
    if stored_paths != like_paths:
        raise ValueError(
            mismatch + checkpoint_format.structure_mismatch(stored_paths, like_paths)
        )
    for p, fields, (shape, dtype, _) in zip(like_paths, stored, expected, strict=True):
        where = checkpoint_format.path_name(p)
        if fields["dtype"] != str(dtype):
            raise ValueError(
                f"{mismatch}{where} has dtype {fields['dtype']} in the checkpoint "
                f"but {dtype} here"
            )
        if tuple(fields["shape"]) != shape:
            raise ValueError(
                f"{mismatch}{where} has shape {tuple(fields['shape'])} in the "
                f"checkpoint but {shape} here"
            )
