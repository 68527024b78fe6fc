"""Reading a checkpoint file as untrusted input.

Every size a file declares is checked against the file before anything is
allocated: a member's bytes must lie inside the file and not overlap another
member, its ``.npy`` header's shape times item size must equal the bytes it
holds, and JSON entries have a size and nesting bound. Only regular files are
opened (never a pipe or device, which could block or have side effects), only
uncompressed members of plain numeric dtypes are read (no zip bombs, no
pickles), CRCs are verified, and entries stored in the other byte order are
byte-swapped to native order, exactly. Every refusal is a ``ValueError`` that
names the file and the problem.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import pathlib
import stat
import zipfile
from typing import Any, BinaryIO

import numpy as np

MAX_ELEMENTS = 2**40  # per array: about 4 TB of float32, far beyond any real leaf
MAX_NDIM = 64  # NumPy's own limit
MAX_JSON_BYTES = 32 * 2**20  # the manifest or the metadata, each
MAX_JSON_DEPTH = 64  # nested lists and dicts
MAX_DTYPE_NAME = 64  # characters of a dtype's name in the manifest
_CHUNK = 2**20  # bytes read at a time

_PICKLED = (
    "refusing to load {}: it holds pickled Python objects, which could run "
    "code when loaded (save_checkpoint never writes any)."
)
_KINDS = {
    stat.S_IFDIR: "a folder",
    stat.S_IFIFO: "a named pipe",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
}


def unreadable(path: pathlib.Path, reason: Any) -> ValueError:
    return ValueError(
        f"{path} is not a readable jaxopt_lite checkpoint ({reason}): it may be "
        "truncated or damaged, or written by another program. Delete it (or "
        "move it away) to start a fresh checkpoint there."
    )


def _require_regular(path: pathlib.Path, mode: int) -> None:
    if not stat.S_ISREG(mode):
        kind = _KINDS.get(stat.S_IFMT(mode), "not a regular file")
        raise ValueError(
            f"{path} is {kind}, not a checkpoint file (a checkpoint is a "
            "regular file; refusing to read it)."
        )


def open_regular(path: pathlib.Path) -> BinaryIO:
    """``path`` opened for reading, if (a link to) a regular file.

    Checked before opening (so a device is never opened) and again on the
    opened descriptor (so a file swapped in between is caught); opened
    non-blocking, so even a pipe swapped in between cannot hang the caller.
    """
    _require_regular(path, os.stat(path).st_mode)
    flags = os.O_RDONLY | getattr(os, "O_BINARY", 0) | getattr(os, "O_CLOEXEC", 0)
    flags |= getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
    fd = os.open(path, flags)
    try:
        _require_regular(path, os.fstat(fd).st_mode)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def shape_problem(shape: Any) -> str | None:
    """Why ``shape`` (a sequence of ints) is absurd, or None."""
    if len(shape) > MAX_NDIM:
        return f"{len(shape)} dimensions (at most {MAX_NDIM})"
    if any(n < 0 for n in shape):
        return f"a negative dimension in {tuple(shape)}"
    if any(n > MAX_ELEMENTS for n in shape) or math.prod(shape) > MAX_ELEMENTS:
        return f"more than 2**40 elements in {tuple(shape)}"
    return None


def listed_shape_problem(shape: Any) -> str | None:
    """Why ``shape`` (a manifest's field) is not the list of ints of a sane
    array's shape, or None."""
    if not isinstance(shape, list) or not all(
        isinstance(n, int) and not isinstance(n, bool) for n in shape
    ):
        return f"the shape {shape!r}"
    return shape_problem(shape)


def json_depth(value: Any) -> int:
    """How deeply lists and dicts nest in ``value`` (without recursion)."""
    deepest, stack = 0, [(value, 1)]
    while stack and deepest <= MAX_JSON_DEPTH:
        item, depth = stack.pop()
        if isinstance(item, dict):
            item = list(item.values())
        if isinstance(item, (list, tuple)):
            deepest = max(deepest, depth)
            stack.extend((x, depth + 1) for x in item)
    return deepest


def parse_json(entry: np.ndarray | None, name: str, path: pathlib.Path) -> Any:
    """The JSON document stored as the ``uint8`` entry ``name``, bounded."""
    if entry is None or entry.dtype != np.uint8 or entry.ndim != 1:
        raise unreadable(path, f"it has no {name} entry")
    if entry.size > MAX_JSON_BYTES:
        raise unreadable(path, f"its {name} is over {MAX_JSON_BYTES} bytes")
    deep = unreadable(path, f"its {name} nests deeper than {MAX_JSON_DEPTH} levels")
    try:
        value = json.loads(entry.tobytes().decode("utf-8"))
    except RecursionError:
        raise deep from None
    except ValueError as e:  # JSONDecodeError, UnicodeDecodeError, huge ints
        raise unreadable(path, f"its {name} is corrupt: {e}") from None
    if json_depth(value) > MAX_JSON_DEPTH:
        raise deep
    return value


def _read_header(member: Any) -> tuple[tuple[int, ...], bool, np.dtype]:
    version = np.lib.format.read_magic(member)
    if version == (1, 0):
        return np.lib.format.read_array_header_1_0(member)
    if version == (2, 0):
        return np.lib.format.read_array_header_2_0(member)
    raise ValueError(f".npy format version {version[0]}.{version[1]}")


def _check_dtype(path: pathlib.Path, name: str, dtype: np.dtype) -> None:
    if dtype.hasobject:
        raise ValueError(_PICKLED.format(path))
    if dtype.kind not in "biufc" or dtype.fields is not None or dtype.subdtype:
        raise unreadable(
            path, f"entry {name} has dtype {dtype}, which save_checkpoint never writes"
        )


class Archive:
    """An open checkpoint file whose member table has been checked; entries
    are read (and checked) one at a time, on demand."""

    def __init__(self, path: pathlib.Path):
        self.path = path
        self._file = open_regular(path)
        try:
            self._zip, self._members = self._open(os.fstat(self._file.fileno()))
        except BaseException:
            self._file.close()
            raise

    def __enter__(self) -> Archive:
        return self

    def __exit__(self, *exc: Any) -> None:
        self._zip.close()
        self._file.close()

    @property
    def names(self) -> list[str]:
        """The entries' names (the members' names less ``.npy``)."""
        return list(self._members)

    def _open(self, st: os.stat_result) -> tuple[zipfile.ZipFile, dict]:
        path = self.path
        magic = self._file.read(6)
        self._file.seek(0)
        if magic.startswith(b"\x80"):  # pickle protocol 2 and later
            raise ValueError(_PICKLED.format(path))
        if magic == b"\x93NUMPY":
            raise unreadable(path, "it is a single .npy array, not an archive")
        if not magic.startswith((b"PK\x03\x04", b"PK\x05\x06")):
            raise unreadable(path, "it is not a zip archive")
        try:  # the central directory: bounded by the file's size
            archive = zipfile.ZipFile(self._file)
        except Exception as e:  # whatever the zip parser raises
            raise unreadable(path, f"{type(e).__name__}: {e}") from None
        members: dict[str, zipfile.ZipInfo] = {}
        for info in archive.infolist():
            what = f"its member {info.filename!r}"
            name = info.filename.removesuffix(".npy")
            if name in members:
                raise unreadable(path, f"it has two members named {info.filename!r}")
            if info.flag_bits & 0x1:
                raise unreadable(path, f"{what} is encrypted")
            if info.compress_type != zipfile.ZIP_STORED:
                raise unreadable(
                    path,
                    f"{what} is compressed (method {info.compress_type}); "
                    "checkpoints store members uncompressed, so a compressed "
                    "member may be a zip bomb",
                )
            if info.compress_size != info.file_size:
                raise unreadable(
                    path,
                    f"{what} declares {info.file_size} bytes but stores "
                    f"{info.compress_size}",
                )
            members[name] = info
        ordered = sorted(members.values(), key=lambda i: i.header_offset)
        ends = [i.header_offset for i in ordered[1:]] + [st.st_size]
        for info, end in zip(ordered, ends, strict=True):
            if info.header_offset < 0 or info.header_offset + info.file_size > end:
                raise unreadable(
                    path,
                    f"its member {info.filename!r} declares {info.file_size} bytes "
                    "that the file does not hold there (truncated, or members "
                    "that overlap)",
                )
        return archive, members

    def size(self, name: str) -> int | None:
        """The bytes member ``name`` declares (header included), or None."""
        info = self._members.get(name)
        return None if info is None else info.file_size

    def array(self, name: str, fields: dict | None = None) -> np.ndarray:
        """Entry ``name`` in native byte order; with ``fields`` (its manifest
        entry) the stored dtype and shape are checked before reading."""
        path, info = self.path, self._members.get(name)
        if info is None:
            raise unreadable(path, f"it has no entry {name}")
        with contextlib.ExitStack() as stack:
            try:
                member = stack.enter_context(self._zip.open(info))
                shape, fortran, dtype = _read_header(member)
                data_bytes = info.file_size - member.tell()
            except Exception as e:  # the zip or .npy parser's errors
                reason = f"entry {name}: {type(e).__name__}: {e}"
                raise unreadable(path, reason) from None
            _check_dtype(path, name, dtype)
            problem = shape_problem(shape)
            if problem is not None:
                raise unreadable(path, f"entry {name} declares {problem}")
            if fortran and len(shape) > 1:
                raise unreadable(path, f"entry {name} is in Fortran order")
            declared = math.prod(shape) * dtype.itemsize
            if declared != data_bytes:
                raise unreadable(
                    path,
                    f"entry {name} declares {shape} {dtype} ({declared} bytes) but "
                    f"holds {data_bytes} bytes",
                )
            native = dtype.newbyteorder("=")
            if fields is not None:
                _check_against_manifest(path, name, fields, shape, native)
            buffer = bytearray(declared)
            view = memoryview(buffer)
            try:  # zipfile checks the CRC as the member's last byte is read
                for start in range(0, declared, _CHUNK):
                    chunk = member.read(min(_CHUNK, declared - start))
                    if len(chunk) != min(_CHUNK, declared - start):
                        raise EOFError("the member ends early")
                    view[start : start + len(chunk)] = chunk
            except Exception as e:
                reason = f"entry {name}: {type(e).__name__}: {e}"
                raise unreadable(path, reason) from None
        value = np.frombuffer(buffer, dtype=native).reshape(shape)
        if native != dtype:  # written in the other byte order: swap, exactly
            value.byteswap(inplace=True)
        return value

    def json(self, name: str) -> Any:
        """The JSON entry ``name``, its declared size checked first."""
        size = self.size(name)
        if size is not None and size > MAX_JSON_BYTES + 2**16:  # header included
            raise unreadable(self.path, f"its {name} is over {MAX_JSON_BYTES} bytes")
        entry = None if size is None else self.array(name)
        return parse_json(entry, name, self.path)


def _check_against_manifest(
    path: pathlib.Path, name: str, fields: dict, shape: tuple, dtype: np.dtype
) -> None:
    want_shape, want_dtype = tuple(fields["shape"]), fields["stored_dtype"]
    if "impl" in fields:  # key data: the key's shape plus the impl's dims
        shape_ok = shape[: len(want_shape)] == want_shape
    else:
        shape_ok = shape == want_shape
    if not shape_ok or str(dtype) != want_dtype:
        raise ValueError(
            f"{path} is corrupt: entry {name} does not match its manifest (it "
            f"holds {dtype} {shape}; the manifest says {want_dtype} {want_shape})."
        )
