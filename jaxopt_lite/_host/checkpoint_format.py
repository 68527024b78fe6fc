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

from jaxopt_lite._host import checkpoint_read

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


def check_metadata(value: Any, where: str, depth: int = 1) -> None:
    """Refuse what JSON cannot hold, or nested deeper than a load accepts."""
    if value is None or isinstance(value, (str, bool, int, float)):
        return
    deep = depth > checkpoint_read.MAX_JSON_DEPTH
    if deep and isinstance(value, (list, tuple, dict)):
        raise ValueError(
            f"{where} nests lists and dicts more than "
            f"{checkpoint_read.MAX_JSON_DEPTH} levels deep, which a checkpoint's "
            "metadata cannot (is it a structure that contains itself?)."
        )
    if isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            check_metadata(item, f"{where}[{i}]", depth + 1)
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(
                    f"{where} has the key {key!r}; metadata dict keys must be str."
                )
            check_metadata(item, f"{where}[{key!r}]", depth + 1)
        return
    hint = " (convert it, e.g. with float(x) or x.tolist())"
    raise TypeError(
        f"{where} is a {type(value).__module__}.{type(value).__qualname__}, which "
        f"is not JSON-able; metadata may hold only dict, list, str, int, float, "
        f"bool and None{hint}."
    )


def json_entry(value: Any, what: str) -> np.ndarray:
    data = json.dumps(value).encode("utf-8")
    if len(data) > checkpoint_read.MAX_JSON_BYTES:
        raise ValueError(
            f"{what} is {len(data)} bytes as JSON; a checkpoint holds at most "
            f"{checkpoint_read.MAX_JSON_BYTES} (store big data in arrays= instead)."
        )
    return np.frombuffer(data, dtype=np.uint8)


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


def read(path: pathlib.Path, names: tuple[str, ...] | None = None) -> dict:
    """The entries of the checkpoint file at ``path`` (only ``names``, when
    given), each checked as untrusted input (see `checkpoint_read`)."""
    with checkpoint_read.Archive(path) as archive:
        wanted = archive.names if names is None else names
        return {n: archive.array(n) for n in wanted if n in archive.names}


def read_json(entries: dict[str, np.ndarray], name: str, path: pathlib.Path) -> Any:
    return checkpoint_read.parse_json(entries.get(name), name, path)


def _dtype(name: Any) -> np.dtype | None:
    """The NumPy dtype of a manifest's dtype name, if numeric and canonical."""
    if not isinstance(name, str) or len(name) > checkpoint_read.MAX_DTYPE_NAME:
        return None
    try:
        dtype = np.dtype(name)
    except Exception:  # whatever NumPy makes of an arbitrary string
        return None
    if str(dtype) != name or dtype.byteorder not in "=|" or not is_numeric(dtype):
        return None
    return dtype


def _entry_problem(fields: Any, name_key: str) -> str | None:
    """What is wrong with one manifest entry describing a stored array."""
    if not isinstance(fields, dict):
        return f"an entry is a {type(fields).__name__}, not a dict"
    for key in (name_key, "dtype", "stored_dtype", "shape"):
        if key not in fields:
            return f"an entry has no {key!r}"
    problem = checkpoint_read.listed_shape_problem(fields["shape"])
    if problem is not None:
        return f"{fields[name_key]!r} has {problem}"
    stored = _dtype(fields["stored_dtype"])
    if stored is None or not stored.isbuiltin:
        return f"{fields[name_key]!r} is stored as {fields['stored_dtype']!r}"
    if not all(isinstance(fields.get(k, ""), str) for k in (name_key, "dtype", "impl")):
        return f"{fields[name_key]!r} has a field that is not a str"
    return None


def read_manifest(archive: checkpoint_read.Archive) -> Any:
    """The checked manifest of ``archive``, whose entries must be exactly the
    ones it lists."""
    path = archive.path
    manifest = archive.json(MANIFEST)
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise checkpoint_read.unreadable(
            path, f"its manifest is not a {FORMAT} manifest"
        )
    if manifest.get("version") != VERSION:
        raise ValueError(
            f"{path} has checkpoint format version {manifest.get('version')!r}; "
            f"this jaxopt_lite reads version {VERSION}."
        )
    leaves, arrays = manifest.get("leaves"), manifest.get("arrays")
    if not isinstance(leaves, list) or not isinstance(arrays, list):
        raise ValueError(f"{path} has a corrupt manifest (no list of leaves).")
    for fields, key in [(f, "path") for f in leaves] + [(f, "name") for f in arrays]:
        problem = _entry_problem(fields, key)
        if problem is not None:
            raise ValueError(f"{path} has a corrupt manifest: {problem}.")
    names = [f["name"] for f in arrays]
    if len(set(names)) != len(names):
        twice = next(n for n in names if names.count(n) > 1)
        raise ValueError(f"{path} has a corrupt manifest: the array {twice!r} twice.")
    listed = [MANIFEST, METADATA]
    listed += [f"leaf_{i}" for i in range(len(leaves))]
    listed += [f"array_{i}" for i in range(len(arrays))]
    missing = [n for n in listed if n not in archive.names]
    extra = sorted(set(archive.names) - set(listed))
    if missing:
        raise checkpoint_read.unreadable(
            path, f"it has no entry {missing[0]}, which its manifest lists"
        )
    if extra:
        raise checkpoint_read.unreadable(
            path, f"it has an entry {extra[0]} that its manifest does not list"
        )
    return manifest


def decode(archive: checkpoint_read.Archive, name: str, fields: Any) -> np.ndarray:
    """Entry ``name`` as the dtype and shape its manifest ``fields`` describe."""
    if "impl" in fields:  # key data: raw uint32 words
        return archive.array(name, fields)
    dtype = _dtype(fields["dtype"])
    stored = np.dtype(fields["stored_dtype"])
    if dtype is None or dtype.itemsize != stored.itemsize:
        raise ValueError(
            f"{archive.path} has a corrupt manifest: entry {name} has dtype "
            f"{fields['dtype']!r}, stored as {fields['stored_dtype']}."
        )
    value = archive.array(name, fields)
    return value if dtype == stored else value.view(dtype)


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
