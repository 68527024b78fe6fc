"""Reading a jaxopt_lite Orbax checkpoint folder as untrusted input.

Before Orbax opens anything, the steps of a folder may hold only folders and
regular files (a link, pipe or device could make a read hang or go
elsewhere), a bounded number of them, and metadata files of bounded size (only
TensorStore's data files, in its ``d`` folders, may be large). The manifest
(bounded JSON, from a regular file) must be well formed, and the shapes,
dtypes and chunk sizes that TensorStore reports for the stored arrays must be
the manifest's: no size a small folder declares can make a restore allocate
more than the run's own state. Every refusal is a ``ValueError`` naming the
step and the problem. Orbax itself is not imported here.
"""

from __future__ import annotations

import os
import pathlib
import stat
from collections.abc import Mapping
from typing import Any

import jax
import numpy as np

from jaxopt_lite._host import checkpoint_format, checkpoint_read

FORMAT = "jaxopt_lite.orbax"
VERSION = 1
ARRAYS, MANIFEST = "arrays", "manifest"  # the two items of a step
_JSON_FILE = "metadata"  # the file Orbax's JSON handler writes in its item
_DATA = "d"  # TensorStore's data folders: their files may be of any size
MAX_METADATA_BYTES = 256 * 2**20  # any other file in a step (Orbax's metadata)
MAX_ENTRIES = 2**20  # files and folders in a checkpoint folder


def is_step(name: str) -> bool:
    """Whether ``name`` names a step's folder (a number)."""
    return name.isascii() and name.isdigit()


def step_folders(directory: Any) -> list[int]:
    """The steps of the Orbax checkpoint in ``directory`` (its entries named
    by a number), found without Orbax; ``[]`` when there is none."""
    try:
        with os.scandir(directory) as entries:
            return sorted(int(e.name) for e in entries if is_step(e.name))
    except (FileNotFoundError, NotADirectoryError):
        return []


def unreadable(where: Any, reason: str) -> ValueError:
    return ValueError(
        f"{where} is not a readable jaxopt_lite Orbax checkpoint ({reason}): it may "
        "be damaged, or written by another program. Move that step folder away "
        "to resume from the one before, or start a new checkpoint_dir."
    )


def check_folder(directory: pathlib.Path) -> None:
    """Refuse a checkpoint folder whose steps hold anything but folders and
    regular files (a link, pipe or device could make a read hang or go
    elsewhere), too many entries, or an oversized metadata file."""
    if not directory.is_dir():
        return
    pending, seen = [directory], 0
    while pending:
        folder = pending.pop()
        with os.scandir(folder) as entries:
            for entry in entries:
                if folder == directory and not is_step(entry.name):
                    continue  # the lock, a temporary (deleted unread), the user's
                seen += 1
                if seen > MAX_ENTRIES:
                    raise unreadable(directory, f"over {MAX_ENTRIES} files")
                mode = entry.stat(follow_symlinks=False)
                if stat.S_ISDIR(mode.st_mode):
                    pending.append(pathlib.Path(entry.path))
                elif not stat.S_ISREG(mode.st_mode) or folder == directory:
                    raise unreadable(
                        entry.path, "it is not a folder or a regular file"
                        if folder != directory else "a step is a folder",
                    )  # fmt: skip
                elif folder.name != _DATA and mode.st_size > MAX_METADATA_BYTES:
                    raise unreadable(entry.path, "an oversized metadata file")


def manifest_problem(manifest: Any) -> str | None:
    """What is wrong with a manifest read from disk, or None."""
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        return f"its manifest is not a {FORMAT} manifest"
    if manifest.get("version") != VERSION:
        return (
            f"it has format version {manifest.get('version')!r}; this jaxopt_lite "
            f"reads version {VERSION}"
        )
    leaves, arrays = manifest.get("leaves"), manifest.get("arrays")
    if not (
        isinstance(leaves, list)
        and isinstance(arrays, list)
        and isinstance(manifest.get("metadata"), dict)
    ):
        return "its manifest has no lists of leaves and arrays"
    for fields, key in [(f, "path") for f in leaves] + [(f, "name") for f in arrays]:
        if not isinstance(fields, dict) or not all(
            isinstance(fields.get(k, ""), str) for k in (key, "dtype", "impl")
        ):
            return "an entry of its manifest is not a dict of str fields"
        problem = checkpoint_read.listed_shape_problem(fields.get("shape"))
        if problem is not None:
            return f"{fields.get(key)!r} has {problem}"
    names = [f["name"] for f in arrays]
    if len(set(names)) != len(names):
        return "its manifest names an array twice"
    return None


def read_manifest(step: pathlib.Path) -> dict[str, Any]:
    """The checked manifest of the step folder ``step``."""
    path = step / MANIFEST / _JSON_FILE
    try:
        with checkpoint_read.open_regular(path) as f:
            data = f.read(checkpoint_read.MAX_JSON_BYTES + 1)
    except FileNotFoundError:
        raise unreadable(step, f"it has no {MANIFEST} item") from None
    except OSError as e:
        raise unreadable(step, f"its {MANIFEST} cannot be read: {e}") from None
    manifest = checkpoint_read.parse_json(np.frombuffer(data, np.uint8), MANIFEST, path)
    problem = manifest_problem(manifest)
    if problem is not None:
        raise unreadable(step, problem)
    return manifest


def stored(shape: tuple[int, ...], dtype: Any) -> tuple[tuple[int, ...], np.dtype]:
    """The shape and dtype TensorStore holds for a leaf (a key's data)."""
    if checkpoint_format.is_key(dtype):
        data = jax.eval_shape(jax.random.key_data, jax.ShapeDtypeStruct(shape, dtype))
        return tuple(data.shape), np.dtype(data.dtype)
    return tuple(shape), np.dtype(dtype)


def check_stored(step: pathlib.Path, found: Any, wanted: dict[str, tuple]) -> None:
    """Refuse arrays whose stored shape, dtype or chunks (as TensorStore reads
    them from the files) differ from what the manifest and the run expect;
    ``wanted`` maps each stored name to (what it is, shape, dtype)."""
    tree = getattr(found, "tree", found)
    names = set(tree) if isinstance(tree, Mapping) else set()
    if names != set(wanted):
        odd = sorted(set(wanted) - names) or sorted(names - set(wanted))
        raise unreadable(step, f"its {ARRAYS} item and its manifest differ: {odd[0]}")
    for name, (what, shape, dtype) in wanted.items():
        meta = tree[name]
        got = tuple(getattr(meta, "shape", None) or ()), getattr(meta, "dtype", None)
        if got[0] != shape or got[1] is None or np.dtype(got[1]) != dtype:
            raise unreadable(
                step, f"{what} is stored with shape {got[0]} and dtype {got[1]}, "
                f"not the {shape} and {dtype} of its manifest",
            )  # fmt: skip
        chunk = getattr(getattr(meta, "storage", None), "chunk_shape", None)
        if chunk is not None and (
            len(chunk) != len(shape)
            or any(c > max(n, 1) for c, n in zip(chunk, shape, strict=True))
        ):
            raise unreadable(step, f"{what} has chunks {chunk} larger than {shape}")
