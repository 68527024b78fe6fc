"""Checkpoints: a run's whole state in one file, written atomically, no pickle.

A checkpoint directory holds one file, ``checkpoint.npz``: a NumPy ``.npz``
archive with one entry per tree leaf, one per named array, and two JSON
documents stored as ``uint8`` entries (a manifest describing every leaf, and
the user's metadata). Loading uses ``np.load(..., allow_pickle=False)`` and
``json.loads`` only, so opening a checkpoint can never run code.
"""

from __future__ import annotations

import contextlib
import errno
import json
import numbers
import os
import pathlib
import tempfile
import zipfile
from collections.abc import Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.core import Tracer

PyTree = Any

FILENAME = "checkpoint.npz"
_FORMAT = "jaxopt_lite.checkpoint"
_VERSION = 1
_MANIFEST = "manifest"
_METADATA = "metadata"


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


# --------------------------------------------------------------------------
# Argument checks and leaf encoding.


def _checkpoint_dir(directory: Any) -> pathlib.Path:
    if isinstance(directory, (str, os.PathLike)):
        path = os.fspath(directory)
        if isinstance(path, str) and path:
            return pathlib.Path(path)
    raise TypeError(
        f"directory must be a non-empty str or os.PathLike naming a folder, "
        f"got {directory!r}."
    )


def _is_key(dtype: Any) -> bool:
    return jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key)


def _native(dtype: np.dtype) -> np.dtype:
    return dtype.newbyteorder("=") if dtype.byteorder not in "=|" else dtype


def _is_numeric(dtype: np.dtype) -> bool:
    return dtype == np.bool_ or jax.dtypes.issubdtype(dtype, np.number)


def _encode(value: np.ndarray, what: str) -> tuple[np.ndarray, dict[str, Any]]:
    """A numeric array as (array NumPy can store, manifest fields)."""
    dtype = value.dtype
    if not _is_numeric(dtype):
        raise TypeError(
            f"{what} has dtype {dtype}, which a checkpoint cannot hold: only "
            "bool, integer, floating (bfloat16 included) and complex arrays "
            "are allowed."
        )
    value = np.asarray(value, dtype=_native(dtype), order="C")
    dtype = value.dtype
    if dtype.isbuiltin == 1:
        stored = value
    else:  # ml_dtypes (bfloat16, float8, int4, ...): keep the bit pattern.
        stored = value.view(np.dtype(f"uint{8 * dtype.itemsize}"))
    if np.dtype(str(dtype)) != dtype:
        raise TypeError(f"{what} has dtype {dtype}, which has no portable name.")
    fields = {
        "shape": list(value.shape),
        "dtype": str(dtype),
        "stored_dtype": str(stored.dtype),
    }
    return stored, fields


def _leaf_to_numpy(where: str, leaf: Any) -> tuple[np.ndarray, dict[str, Any]]:
    """One tree leaf as (array to store, manifest fields)."""
    if isinstance(leaf, Tracer):
        raise TypeError(
            f"{where} is a traced value; save checkpoints outside jit/vmap/grad."
        )
    if isinstance(leaf, (bool, numbers.Number)) and not isinstance(leaf, np.generic):
        try:
            return _leaf_to_numpy(where, jnp.asarray(leaf))
        except (OverflowError, TypeError) as e:
            raise ValueError(f"{where}={leaf!r} cannot be stored: {e}") from None
    if isinstance(leaf, jax.Array):
        if not leaf.is_fully_addressable:
            raise ValueError(
                f"{where} is sharded over devices this process cannot address; "
                "gather it first (e.g. with jax.experimental.multihost_utils."
                "process_allgather) or save from every process to its own folder."
            )
        if _is_key(leaf.dtype):
            data = np.asarray(jax.device_get(jax.random.key_data(leaf)))
            stored, fields = _encode(data, where)
            fields["shape"] = list(leaf.shape)
            fields["dtype"] = str(leaf.dtype)
            fields["impl"] = str(jax.random.key_impl(leaf))
            return stored, fields
        return _encode(np.asarray(jax.device_get(leaf)), where)
    if isinstance(leaf, (np.ndarray, np.generic)):
        return _encode(np.asarray(leaf), where)
    raise TypeError(
        f"{where} is a {type(leaf).__name__}; checkpoint leaves must be JAX or "
        "NumPy arrays, PRNG keys or Python numbers."
    )


def _path_name(path: str) -> str:
    return "tree" + path


def _check_metadata(value: Any, where: str) -> None:
    if value is None or isinstance(value, (str, bool, int, float)):
        return
    if isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            _check_metadata(item, f"{where}[{i}]")
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(
                    f"{where} has the key {key!r}; metadata dict keys must be str."
                )
            _check_metadata(item, f"{where}[{key!r}]")
        return
    hint = " (convert it, e.g. with float(x) or x.tolist())"
    raise TypeError(
        f"{where} is a {type(value).__module__}.{type(value).__qualname__}, which "
        f"is not JSON-able; metadata may hold only dict, list, str, int, float, "
        f"bool and None{hint}."
    )


def _json_entry(value: Any) -> np.ndarray:
    return np.frombuffer(json.dumps(value).encode("utf-8"), dtype=np.uint8)


def _write_npz(file: Any, entries: dict[str, np.ndarray]) -> None:
    np.savez(file, allow_pickle=False, **entries)


def _fsync_directory(directory: pathlib.Path) -> None:
    if os.name == "nt":  # Windows cannot open a folder to fsync it.
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError as e:  # some file systems do not support it
        if e.errno not in (errno.EINVAL, errno.ENOTSUP):
            raise
    finally:
        os.close(fd)


# --------------------------------------------------------------------------
# Public API.


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
    In a multi-process run, call it from one process only.

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
    directory = _checkpoint_dir(directory)
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
    _check_metadata(metadata, "metadata")

    entries: dict[str, np.ndarray] = {}
    leaves_with_path, treedef = jax.tree_util.tree_flatten_with_path(tree)
    leaf_fields = []
    for i, (key_path, leaf) in enumerate(leaves_with_path):
        path = jax.tree_util.keystr(key_path)
        stored, fields = _leaf_to_numpy(_path_name(path), leaf)
        entries[f"leaf_{i}"] = stored
        leaf_fields.append({"path": path, **fields})
    array_fields = []
    for i, (name, value) in enumerate(arrays.items()):
        where = f"arrays[{name!r}]"
        if not isinstance(name, str):
            raise TypeError(f"arrays has the key {name!r}; names must be str.")
        if isinstance(value, jax.Array) and _is_key(value.dtype):
            raise TypeError(f"{where} is a PRNG key; put keys in the tree instead.")
        if isinstance(value, Tracer):
            raise TypeError(f"{where} is a traced value; save outside jit/vmap/grad.")
        try:
            array = np.asarray(jax.device_get(value))
        except Exception as e:
            raise TypeError(f"{where} is not an array: {e}") from None
        stored, fields = _encode(array, where)
        entries[f"array_{i}"] = stored
        array_fields.append({"name": name, **fields})
    manifest = {
        "format": _FORMAT,
        "version": _VERSION,
        "treedef": str(treedef),
        "leaves": leaf_fields,
        "arrays": array_fields,
    }
    entries[_MANIFEST] = _json_entry(manifest)
    entries[_METADATA] = _json_entry(metadata)

    directory.mkdir(parents=True, exist_ok=True)
    target = directory / FILENAME
    fd, tmp = tempfile.mkstemp(prefix=".checkpoint-", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            _write_npz(f, entries)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_directory(directory)
    return target


def has_checkpoint(directory: str | os.PathLike) -> bool:
    r"""Whether ``directory`` holds a checkpoint written by `save_checkpoint`.


    Args:
        directory: the folder to look in (it need not exist).

    Returns:
        ``True`` when ``directory/checkpoint.npz`` is a file.

    Example:
        >>> import tempfile, jaxopt_lite as jol
        >>> with tempfile.TemporaryDirectory() as d:
        ...     print(jol.has_checkpoint(d))
        False
    """
    return (_checkpoint_dir(directory) / FILENAME).is_file()


def _read(path: pathlib.Path) -> dict[str, np.ndarray]:
    try:
        with open(path, "rb") as file:
            npz = np.load(file, allow_pickle=False)
            if not isinstance(npz, np.lib.npyio.NpzFile):  # a bare .npy file
                raise ValueError("it is a single .npy array, not an .npz archive")
            with npz:
                return {name: npz[name] for name in npz.files}
    except ValueError as e:
        if "pickle" in str(e):
            raise ValueError(
                f"refusing to load {path}: it holds pickled Python objects, which "
                "could run code when loaded (save_checkpoint never writes any)."
            ) from None
        raise ValueError(f"{path} is not a valid checkpoint: {e}") from None
    except (zipfile.BadZipFile, EOFError, OSError) as e:
        raise ValueError(f"{path} is not a valid checkpoint: {e}") from None


def _read_json(entries: dict[str, np.ndarray], name: str, path: pathlib.Path) -> Any:
    entry = entries.get(name)
    if entry is None or entry.dtype != np.uint8 or entry.ndim != 1:
        raise ValueError(f"{path} is not a valid checkpoint: no {name} entry.")
    try:
        return json.loads(entry.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{path} has a corrupt {name}: {e}") from None


def _is_entry(fields: Any, name_key: str) -> bool:
    """Whether ``fields`` is a well-formed manifest entry for one stored array."""
    return (
        isinstance(fields, dict)
        and isinstance(fields.get(name_key), str)
        and isinstance(fields.get("dtype"), str)
        and isinstance(fields.get("stored_dtype"), str)
        and isinstance(fields.get("impl", ""), str)
        and isinstance(fields.get("shape"), list)
        and all(
            isinstance(n, int) and not isinstance(n, bool) and n >= 0
            for n in fields["shape"]
        )
    )


def _read_manifest(entries: dict[str, np.ndarray], path: pathlib.Path) -> Any:
    manifest = _read_json(entries, _MANIFEST, path)
    if not isinstance(manifest, dict) or manifest.get("format") != _FORMAT:
        raise ValueError(f"{path} is not a jaxopt_lite checkpoint.")
    if manifest.get("version") != _VERSION:
        raise ValueError(
            f"{path} has checkpoint format version {manifest.get('version')!r}; "
            f"this jaxopt_lite reads version {_VERSION}."
        )
    leaves, arrays = manifest.get("leaves"), manifest.get("arrays")
    if (
        not isinstance(leaves, list)
        or not isinstance(arrays, list)
        or not all(_is_entry(f, "path") for f in leaves)
        or not all(_is_entry(f, "name") for f in arrays)
    ):
        raise ValueError(f"{path} has a corrupt manifest.")
    return manifest


def _decode(
    entries: dict[str, np.ndarray], name: str, fields: Any, path: pathlib.Path
) -> np.ndarray:
    """Stored entry ``name`` back to the dtype and shape described by ``fields``."""
    try:
        stored = entries[name]
        shape = tuple(fields["shape"])
        dtype = np.dtype(fields["dtype"]) if "impl" not in fields else None
        stored_dtype = np.dtype(fields["stored_dtype"])
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"{path} has a corrupt manifest ({name}): {e!r}") from None
    if dtype is None:  # key data: the key's shape plus the impl's trailing dims
        bad_shape = stored.shape[: len(shape)] != shape
    else:
        bad_shape = stored.shape != shape or not _is_numeric(dtype)
    if stored.dtype != stored_dtype or bad_shape:
        raise ValueError(
            f"{path} is corrupt: entry {name} does not match its manifest."
        )
    if dtype is None or dtype == stored_dtype:
        return stored
    if dtype.itemsize != stored_dtype.itemsize:
        raise ValueError(f"{path} is corrupt: entry {name} has the wrong item size.")
    return stored.view(dtype)


def _expected(where: str, leaf: Any) -> tuple[tuple[int, ...], Any, Any]:
    """(shape, dtype, sharding or None) that a leaf of ``like`` asks for."""
    if isinstance(leaf, Tracer):
        return tuple(leaf.shape), leaf.dtype, None
    if isinstance(leaf, jax.Array):
        sharding = leaf.sharding if leaf.committed else None
        return tuple(leaf.shape), leaf.dtype, sharding
    if isinstance(leaf, jax.ShapeDtypeStruct):
        return tuple(leaf.shape), leaf.dtype, leaf.sharding
    if isinstance(leaf, (np.ndarray, np.generic)):
        return tuple(leaf.shape), _native(leaf.dtype), None
    if isinstance(leaf, (bool, numbers.Number)):
        dtype = jax.dtypes.canonicalize_dtype(np.asarray(leaf).dtype)
        return (), dtype, None
    raise TypeError(
        f"like: {where} is a {type(leaf).__name__}; leaves of like must be "
        "arrays, jax.ShapeDtypeStruct or Python numbers."
    )


def _structure_mismatch(stored: list[str], here: list[str]) -> str:
    only_stored = [p for p in stored if p not in set(here)]
    only_here = [p for p in here if p not in set(stored)]
    if only_stored:
        return f"{_path_name(only_stored[0])} is in the checkpoint but not here"
    if only_here:
        return f"{_path_name(only_here[0])} is here but not in the checkpoint"
    for a, b in zip(stored, here, strict=False):
        if a != b:
            return (
                f"the leaves are in a different order ({_path_name(a)} in the "
                f"checkpoint where {_path_name(b)} is here)"
            )
    return f"the checkpoint has {len(stored)} leaves but this run has {len(here)}"


def load_checkpoint(directory: str | os.PathLike, like: PyTree) -> Checkpoint:
    r"""Load the checkpoint in ``directory``, checked against the tree ``like``.


    The stored leaves must match ``like`` leaf for leaf (same paths, shapes and
    dtypes); the first difference raises a ``ValueError`` that names it.
    Leaves come back as JAX arrays, bit for bit as saved; where the leaf of
    ``like`` is a committed ``jax.Array`` (or a ``jax.ShapeDtypeStruct`` with a
    sharding) the restored leaf is placed with that sharding. A 64-bit leaf
    loaded while ``jax_enable_x64`` is off comes back as a NumPy array, since
    JAX would round it. The file is read with ``allow_pickle=False``: a file
    holding pickled objects is refused with a ``ValueError``.

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
    directory = _checkpoint_dir(directory)
    path = directory / FILENAME
    like_leaves, like_def = jax.tree_util.tree_flatten_with_path(like)
    like_paths = [jax.tree_util.keystr(p) for p, _ in like_leaves]
    expected = [
        _expected(_path_name(p), leaf)
        for p, (_, leaf) in zip(like_paths, like_leaves, strict=True)
    ]
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint found: {path} does not exist.")

    entries = _read(path)
    manifest = _read_manifest(entries, path)
    metadata = _read_json(entries, _METADATA, path)
    if not isinstance(metadata, dict):
        raise ValueError(f"{path} has a corrupt metadata entry.")

    mismatch = f"checkpoint in {directory} does not match this run: "
    stored_fields = manifest["leaves"]
    stored_paths = [f["path"] for f in stored_fields]
    if stored_paths != like_paths:
        raise ValueError(mismatch + _structure_mismatch(stored_paths, like_paths))

    leaves = []
    for i, (p, fields, (shape, dtype, sharding)) in enumerate(
        zip(like_paths, stored_fields, expected, strict=True)
    ):
        where = _path_name(p)
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
        value = _decode(entries, f"leaf_{i}", fields, path)
        if _is_key(dtype):
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
        arrays[fields["name"]] = _decode(entries, f"array_{i}", fields, path)
    return Checkpoint(jax.tree_util.tree_unflatten(like_def, leaves), arrays, metadata)
