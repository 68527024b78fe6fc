"""The checkpoint file format: an ``.npz`` of plain arrays plus a JSON manifest
(no pickle, so loading cannot run code); leaf encoding, reading and the
structure checks of `load_checkpoint`."""

from __future__ import annotations

import errno
import json
import numbers
import os
import pathlib
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.core import Tracer

FILENAME = "checkpoint.npz"


FORMAT = "jaxopt_lite.checkpoint"


VERSION = 1


MANIFEST = "manifest"


METADATA = "metadata"


def checkpoint_dir(directory: Any, name: str = "directory") -> pathlib.Path:
    """``directory`` (the argument ``name``) as a folder's path."""
    if isinstance(directory, (str, os.PathLike)):
        path = os.fspath(directory)
        if isinstance(path, str) and path:
            folder = pathlib.Path(path)
            if folder.exists() and not folder.is_dir():
                raise ValueError(
                    f"{name}={path!r} is a file, not a folder: give the folder "
                    f"that holds (or will hold) {FILENAME}."
                )
            return folder
    raise TypeError(
        f"{name} must be a non-empty str or os.PathLike naming a folder, "
        f"got {directory!r}."
    )


def unreadable(path: pathlib.Path, reason: Any) -> ValueError:
    return ValueError(
        f"{path} is not a readable jaxopt_lite checkpoint ({reason}): it may be "
        "truncated or damaged, or written by another program. Delete it (or "
        "move it away) to start a fresh checkpoint there."
    )


def is_key(dtype: Any) -> bool:
    return jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key)


def native(dtype: np.dtype) -> np.dtype:
    return dtype.newbyteorder("=") if dtype.byteorder not in "=|" else dtype


def is_numeric(dtype: np.dtype) -> bool:
    return dtype == np.bool_ or jax.dtypes.issubdtype(dtype, np.number)


def encode(value: np.ndarray, what: str) -> tuple[np.ndarray, dict[str, Any]]:
    """A numeric array as (array NumPy can store, manifest fields)."""
    dtype = value.dtype
    if not is_numeric(dtype):
        raise TypeError(
            f"{what} has dtype {dtype}, which a checkpoint cannot hold: only "
            "bool, integer, floating (bfloat16 included) and complex arrays "
            "are allowed."
        )
    value = np.asarray(value, dtype=native(dtype), order="C")
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


def leaf_to_numpy(where: str, leaf: Any) -> tuple[np.ndarray, dict[str, Any]]:
    """One tree leaf as (array to store, manifest fields)."""
    if isinstance(leaf, Tracer):
        raise TypeError(
            f"{where} is a traced value; save checkpoints outside jit/vmap/grad."
        )
    if isinstance(leaf, (bool, numbers.Number)) and not isinstance(leaf, np.generic):
        try:
            return leaf_to_numpy(where, jnp.asarray(leaf))
        except (OverflowError, TypeError) as e:
            raise ValueError(f"{where}={leaf!r} cannot be stored: {e}") from None
    if isinstance(leaf, jax.Array):
        if not leaf.is_fully_addressable and leaf.is_fully_replicated:
            leaf = leaf.addressable_shards[0].data  # this process's whole copy
        if not leaf.is_fully_addressable:
            raise ValueError(
                f"{where} is sharded over devices this process cannot address; "
                "gather it first (e.g. with jax.experimental.multihost_utils."
                "process_allgather) or save from every process to its own folder."
            )
        if is_key(leaf.dtype):
            data = np.asarray(jax.device_get(jax.random.key_data(leaf)))
            stored, fields = encode(data, where)
            fields["shape"] = list(leaf.shape)
            fields["dtype"] = str(leaf.dtype)
            fields["impl"] = str(jax.random.key_impl(leaf))
            return stored, fields
        return encode(np.asarray(jax.device_get(leaf)), where)
    if isinstance(leaf, (np.ndarray, np.generic)):
        return encode(np.asarray(leaf), where)
    raise TypeError(
        f"{where} is a {type(leaf).__name__}; checkpoint leaves must be JAX or "
        "NumPy arrays, PRNG keys or Python numbers."
    )


def path_name(path: str) -> str:
    return "tree" + path


def check_metadata(value: Any, where: str) -> None:
    if value is None or isinstance(value, (str, bool, int, float)):
        return
    if isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            check_metadata(item, f"{where}[{i}]")
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(
                    f"{where} has the key {key!r}; metadata dict keys must be str."
                )
            check_metadata(item, f"{where}[{key!r}]")
        return
    hint = " (convert it, e.g. with float(x) or x.tolist())"
    raise TypeError(
        f"{where} is a {type(value).__module__}.{type(value).__qualname__}, which "
        f"is not JSON-able; metadata may hold only dict, list, str, int, float, "
        f"bool and None{hint}."
    )


def json_entry(value: Any) -> np.ndarray:
    return np.frombuffer(json.dumps(value).encode("utf-8"), dtype=np.uint8)


def write_npz(file: Any, entries: dict[str, np.ndarray]) -> None:
    np.savez(file, allow_pickle=False, **entries)


def fsync_directory(directory: pathlib.Path) -> None:
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


_PICKLED = (
    "refusing to load {}: it holds pickled Python objects, which could run "
    "code when loaded (save_checkpoint never writes any)."
)


def read(path: pathlib.Path, names: tuple[str, ...] | None = None) -> dict:
    """The entries of the archive at ``path`` (only ``names``, when given)."""
    try:
        with open(path, "rb") as file:
            magic = file.read(6)
            file.seek(0)
            if magic.startswith(b"\x80"):  # pickle protocol 2 and later
                raise ValueError(_PICKLED.format(path))
            if magic == b"\x93NUMPY":
                raise unreadable(path, "it is a single .npy array, not an archive")
            if not magic.startswith((b"PK\x03\x04", b"PK\x05\x06")):
                raise unreadable(path, "it is not a zip archive")
            try:
                with np.load(file, allow_pickle=False) as npz:
                    wanted = npz.files if names is None else names
                    return {n: npz[n] for n in wanted if n in npz.files}
            except Exception as e:  # whatever the zip or .npy parser raises
                if isinstance(e, ValueError) and "pickle" in str(e):
                    raise ValueError(_PICKLED.format(path)) from None  # objects
                raise unreadable(path, f"{type(e).__name__}: {e}") from None
    except IsADirectoryError:
        raise ValueError(f"{path} is a folder, not a checkpoint file.") from None


def read_json(entries: dict[str, np.ndarray], name: str, path: pathlib.Path) -> Any:
    entry = entries.get(name)
    if entry is None or entry.dtype != np.uint8 or entry.ndim != 1:
        raise unreadable(path, f"it has no {name} entry")
    try:
        return json.loads(entry.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise unreadable(path, f"its {name} is corrupt: {e}") from None


def is_entry(fields: Any, name_key: str) -> bool:
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


def read_manifest(entries: dict[str, np.ndarray], path: pathlib.Path) -> Any:
    manifest = read_json(entries, MANIFEST, path)
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise unreadable(path, f"its manifest is not a {FORMAT} manifest")
    if manifest.get("version") != VERSION:
        raise ValueError(
            f"{path} has checkpoint format version {manifest.get('version')!r}; "
            f"this jaxopt_lite reads version {VERSION}."
        )
    leaves, arrays = manifest.get("leaves"), manifest.get("arrays")
    if (
        not isinstance(leaves, list)
        or not isinstance(arrays, list)
        or not all(is_entry(f, "path") for f in leaves)
        or not all(is_entry(f, "name") for f in arrays)
    ):
        raise ValueError(f"{path} has a corrupt manifest.")
    return manifest


def decode(
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
        bad_shape = stored.shape != shape or not is_numeric(dtype)
    if stored.dtype != stored_dtype or bad_shape:
        raise ValueError(
            f"{path} is corrupt: entry {name} does not match its manifest."
        )
    if dtype is None or dtype == stored_dtype:
        return stored
    if dtype.itemsize != stored_dtype.itemsize:
        raise ValueError(f"{path} is corrupt: entry {name} has the wrong item size.")
    return stored.view(dtype)


def expected(where: str, leaf: Any) -> tuple[tuple[int, ...], Any, Any]:
    """(shape, dtype, sharding or None) that a leaf of ``like`` asks for."""
    if isinstance(leaf, Tracer):
        return tuple(leaf.shape), leaf.dtype, None
    if isinstance(leaf, jax.Array):
        sharding = leaf.sharding if leaf.committed else None
        return tuple(leaf.shape), leaf.dtype, sharding
    if isinstance(leaf, jax.ShapeDtypeStruct):
        return tuple(leaf.shape), leaf.dtype, leaf.sharding
    if isinstance(leaf, (np.ndarray, np.generic)):
        return tuple(leaf.shape), native(leaf.dtype), None
    if isinstance(leaf, (bool, numbers.Number)):
        dtype = jax.dtypes.canonicalize_dtype(np.asarray(leaf).dtype)
        return (), dtype, None
    raise TypeError(
        f"like: {where} is a {type(leaf).__name__}; leaves of like must be "
        "arrays, jax.ShapeDtypeStruct or Python numbers."
    )


def structure_mismatch(stored: list[str], here: list[str]) -> str:
    only_stored = [p for p in stored if p not in set(here)]
    only_here = [p for p in here if p not in set(stored)]
    if only_stored:
        return f"{path_name(only_stored[0])} is in the checkpoint but not here"
    if only_here:
        return f"{path_name(only_here[0])} is here but not in the checkpoint"
    for a, b in zip(stored, here, strict=False):
        if a != b:
            return (
                f"the leaves are in a different order ({path_name(a)} in the "
                f"checkpoint where {path_name(b)} is here)"
            )
    return f"the checkpoint has {len(stored)} leaves but this run has {len(here)}"
