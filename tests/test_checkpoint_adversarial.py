"""Checkpoint files as untrusted input: a battery of hand-crafted files (zip
members and .npy headers written byte by byte), each refused with the exact
error and message, in bounded memory, without hanging; and entries written
in the other byte order, which load exactly."""

from __future__ import annotations

import io
import json
import os
import pathlib
import re
import struct
import threading
import tracemalloc
import warnings
import zipfile

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxopt_lite as jol
from jaxopt_lite._host import checkpoint as _checkpoint

TREE = {"w": jnp.arange(3.0)}
UNREADABLE = (
    "{path} is not a readable jaxopt_lite checkpoint ({reason}): it may be "
    "truncated or damaged, or written by another program. Delete it (or move it "
    "away) to start a fresh checkpoint there."
)
PEAK_BYTES = 4 * 2**20  # what refusing a crafted file may allocate, at most


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> dict[str, bytes]:
    """The members of a real checkpoint: leaf_0, array_0, manifest, metadata."""
    folder = tmp_path_factory.mktemp("base")
    jol.save_checkpoint(folder, TREE, arrays={"h": np.ones(2)}, metadata={"s": 1})
    with zipfile.ZipFile(folder / "checkpoint.npz") as z:
        return {i.filename: z.read(i) for i in z.infolist()}


def _npy(descr, shape, body=b"", fortran=False, version=(1, 0)) -> bytes:
    """A .npy file with a raw header: any descr, shape and body."""
    buffer = io.BytesIO()
    header = {"descr": descr, "fortran_order": fortran, "shape": shape}
    if version == (3, 0):  # NumPy never writes it for our dtypes
        buffer.write(b"\x93NUMPY\x03\x00" + struct.pack("<I", 118) + b" " * 117)
        buffer.write(b"\n")
    else:
        write = {(1, 0): np.lib.format.write_array_header_1_0}
        write[(2, 0)] = np.lib.format.write_array_header_2_0
        write[version](buffer, header)
    return buffer.getvalue() + body


def _save_npy(array) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def _json_npy(text: str) -> bytes:
    return _save_npy(np.frombuffer(text.encode(), np.uint8))


def _manifest(base, **leaf) -> bytes:
    """The manifest with the first leaf's fields changed."""
    manifest = json.loads(np.load(io.BytesIO(base["manifest.npy"])).tobytes())
    manifest["leaves"][0].update(leaf)
    return _json_npy(json.dumps(manifest))


def _two_arrays_named_h(base) -> bytes:
    manifest = json.loads(np.load(io.BytesIO(base["manifest.npy"])).tobytes())
    manifest["arrays"].append(manifest["arrays"][0])
    return _file(base, manifest__npy=_json_npy(json.dumps(manifest)),
                 array_1__npy=base["array_0.npy"])  # fmt: skip


def _zip(members, compress=None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Duplicate name"
        for name, data in members:
            z.writestr(zipfile.ZipInfo(name), data, compress_type=compress)
    return buffer.getvalue()


def _file(base, **changes) -> bytes:
    """The base archive with members replaced (a value of None drops one)."""
    members = {**base, **{k.replace("__", "."): v for k, v in changes.items()}}
    return _zip([(n, d) for n, d in members.items() if d is not None])


def _patch(raw: bytes, name: str, at: int, fmt: str, value: int) -> bytes:
    """``raw`` with a field of member ``name``'s central directory record set."""
    pos = 0
    while True:
        pos = raw.index(b"PK\x01\x02", pos + 1)
        length = struct.unpack_from("<H", raw, pos + 28)[0]
        if raw[pos + 46 : pos + 46 + length] == name.encode():
            out = bytearray(raw)
            struct.pack_into(fmt, out, pos + at, value)
            return bytes(out)


def _offset(raw: bytes, name: str) -> int:
    with zipfile.ZipFile(io.BytesIO(raw)) as z:
        return z.getinfo(name).header_offset


def _zip_bomb(base) -> bytes:
    """array_0 as 64 MiB of zeros (a valid .npy) deflated into about 64 KiB."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        for name, data in base.items():
            info = zipfile.ZipInfo(name)
            if name != "array_0.npy":
                z.writestr(info, data)
                continue
            info.compress_type = zipfile.ZIP_DEFLATED
            with z.open(info, "w") as member:
                member.write(_npy("<f8", (2**23,)))
                for _ in range(64):
                    member.write(bytes(2**20))
    return buffer.getvalue()


def _flipped_data_byte(base) -> bytes:
    """The base archive with the last byte of leaf_0's data changed."""
    raw = bytearray(_file(base))
    raw[raw.index(base["leaf_0.npy"]) + len(base["leaf_0.npy"]) - 1] ^= 0xFF
    return bytes(raw)


def U(reason):
    """The message for an unreadable file, with ``reason``."""
    return lambda path: UNREADABLE.format(path=path, reason=reason)


def X(text):
    """An exact message (``{path}`` is the file)."""
    return lambda path: text.format(path=path)


def M(pattern):
    """A message matching ``pattern`` in full (``{path}`` is the file)."""
    return lambda path: re.compile(pattern.format(path=re.escape(str(path))))


HUGE = {"w": jax.ShapeDtypeStruct((2**28,), jnp.float32)}  # 1 GiB, as the file says
CORRUPT = "{path} has a corrupt manifest: \"['w']\" "
OVERLAP = "that the file does not hold there (truncated, or members that overlap)"
NEVER = "which save_checkpoint never writes"

# (id, file, like, where the problem is, message). "file": has_checkpoint
# refuses it too; "entry": only load_checkpoint reads the entry at fault.
CASES = [
    # Declared sizes: checked against the file before anything is allocated.
    ("npy_header_declares_1GiB", lambda b: _file(b, leaf_0__npy=_npy(
        "<f4", (2**28,), bytes(12))), TREE, "entry", U(
        "entry leaf_0 declares (268435456,) float32 (1073741824 bytes) but holds "
        "12 bytes")),
    ("like_and_manifest_agree_on_1GiB", lambda b: _file(
        b, leaf_0__npy=_npy("<f4", (2**28,), bytes(12)),
        manifest__npy=_manifest(b, shape=[2**28])), HUGE, "entry", U(
        "entry leaf_0 declares (268435456,) float32 (1073741824 bytes) but holds "
        "12 bytes")),
    ("array_declares_8GiB", lambda b: _file(b, array_0__npy=_npy(
        "<f8", (2**30,), bytes(16))), TREE, "entry", U(
        "entry array_0 declares (1073741824,) float64 (8589934592 bytes) but "
        "holds 16 bytes")),
    ("member_size_beyond_the_file", lambda b: _patch(_patch(
        _file(b), "leaf_0.npy", 20, "<I", 2**31 - 1), "leaf_0.npy", 24, "<I",
        2**31 - 1), TREE, "file", U(
        f"its member 'leaf_0.npy' declares 2147483647 bytes {OVERLAP}")),
    ("member_sizes_disagree", lambda b: _patch(
        _file(b), "leaf_0.npy", 24, "<I", 2**31 - 1), TREE, "file", U(
        "its member 'leaf_0.npy' declares 2147483647 bytes but stores 140")),
    ("zip_bomb", _zip_bomb, TREE, "file", U(
        "its member 'array_0.npy' is compressed (method 8); checkpoints store "
        "members uncompressed, so a compressed member may be a zip bomb")),
    ("overlapping_members", lambda b: _patch(
        _file(b), "array_0.npy", 42, "<I", _offset(_file(b), "leaf_0.npy")),
        TREE, "file", U(f"its member 'leaf_0.npy' declares 140 bytes {OVERLAP}")),
    ("duplicate_member", lambda b: _zip([*b.items(), ("leaf_0.npy", b[
        "leaf_0.npy"])]), TREE, "file", U(
        "it has two members named 'leaf_0.npy'")),
    ("encrypted_member", lambda b: _patch(_file(b), "leaf_0.npy", 8, "<H", 1),
        TREE, "file", U("its member 'leaf_0.npy' is encrypted")),
    ("truncated", lambda b: _file(b)[:-30], TREE, "file", U(
        "BadZipFile: File is not a zip file")),
    ("bad_crc", _flipped_data_byte, TREE, "entry", U(
        "entry leaf_0: BadZipFile: Bad CRC-32 for file 'leaf_0.npy'")),
    # Dtypes: plain numbers only.
    ("object_dtype", lambda b: _file(b, leaf_0__npy=_npy("|O", (3,), bytes(24))),
        TREE, "entry", X(
        "refusing to load {path}: it holds pickled Python objects, which could "
        "run code when loaded (save_checkpoint never writes any).")),
    ("void_dtype", lambda b: _file(b, leaf_0__npy=_npy("|V12", (), bytes(12))),
        TREE, "entry", U(f"entry leaf_0 has dtype |V12, {NEVER}")),
    ("structured_dtype", lambda b: _file(b, leaf_0__npy=_npy(
        [("a", "<f4")], (3,), bytes(12))), TREE, "entry", U(
        f"entry leaf_0 has dtype [('a', '<f4')], {NEVER}")),
    ("bytes_dtype", lambda b: _file(b, leaf_0__npy=_npy("|S4", (3,), bytes(12))),
        TREE, "entry", U(f"entry leaf_0 has dtype |S4, {NEVER}")),
    # Shapes.
    ("negative_shape", lambda b: _file(b, leaf_0__npy=_npy("<f4", (-1,))), TREE,
        "entry", U("entry leaf_0 declares a negative dimension in (-1,)")),
    ("over_2_40_elements", lambda b: _file(b, leaf_0__npy=_npy(
        "<f4", (2**21, 2**21))), TREE, "entry", U(
        "entry leaf_0 declares more than 2**40 elements in (2097152, 2097152)")),
    ("fortran_order", lambda b: _file(b, leaf_0__npy=_npy(
        "<f4", (3, 1), bytes(12), fortran=True)), TREE, "entry", U(
        "entry leaf_0 is in Fortran order")),
    ("npy_version_3", lambda b: _file(b, leaf_0__npy=_npy(
        "<f4", (3,), bytes(12), version=(3, 0))), TREE, "entry", U(
        "entry leaf_0: ValueError: .npy format version 3.0")),
    ("npy_header_not_a_dtype", lambda b: _file(b, leaf_0__npy=_npy(
        "<f4; os", (3,), bytes(12))), TREE, "entry", M(
        r"{path} is not a readable jaxopt_lite checkpoint \(entry leaf_0: "
        r"ValueError: .*'<f4; os'.*")),
    # The manifest, and the manifest against the entries.
    ("manifest_negative_shape", lambda b: _file(b, manifest__npy=_manifest(
        b, shape=[-3])), TREE, "file", X(
        CORRUPT + "has a negative dimension in (-3,).")),
    ("manifest_2_41_elements", lambda b: _file(b, manifest__npy=_manifest(
        b, shape=[2**41])), TREE, "file", X(
        CORRUPT + "has more than 2**40 elements in (2199023255552,).")),
    ("manifest_65_dimensions", lambda b: _file(b, manifest__npy=_manifest(
        b, shape=[1] * 65)), TREE, "file", X(
        CORRUPT + "has 65 dimensions (at most 64).")),
    ("manifest_big_endian_name", lambda b: _file(b, manifest__npy=_manifest(
        b, stored_dtype=">f4")), TREE, "file", X(
        CORRUPT + "is stored as '>f4'.")),
    ("entry_differs_from_manifest", lambda b: _file(b, manifest__npy=_manifest(
        b, shape=[4])), {"w": jnp.zeros(4)}, "entry", X(
        "{path} is corrupt: entry leaf_0 does not match its manifest (it holds "
        "float32 (3,); the manifest says float32 (4,)).")),
    ("array_named_twice", _two_arrays_named_h, TREE, "file", X(
        "{path} has a corrupt manifest: the array 'h' twice.")),
    ("listed_entry_missing", lambda b: _file(b, leaf_0__npy=None), TREE, "file",
        U("it has no entry leaf_0, which its manifest lists")),
    ("entry_not_listed", lambda b: _file(b, array_7__npy=b["array_0.npy"]), TREE,
        "file", U("it has an entry array_7 that its manifest does not list")),
    # JSON: bounded in nesting and size.
    ("manifest_nested_100000_deep", lambda b: _file(b, manifest__npy=_json_npy(
        "[" * 100_000 + "]" * 100_000)), TREE, "file", U(
        "its manifest nests deeper than 64 levels")),
    ("metadata_nested_65_deep", lambda b: _file(b, metadata__npy=_json_npy(
        "[" * 65 + "]" * 65)), TREE, "entry", U(
        "its metadata nests deeper than 64 levels")),
    ("manifest_over_32MiB", lambda b: _file(b, manifest__npy=_npy(
        "|u1", (33 * 2**20,), bytes(33 * 2**20))), TREE, "file", U(
        "its manifest is over 33554432 bytes")),
]  # fmt: skip


def _assert_message(message: str, expected) -> None:
    if isinstance(expected, re.Pattern):
        assert expected.fullmatch(message), message
    else:
        assert message == expected


@pytest.mark.parametrize(
    "build, like, where, message", [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_a_crafted_file_is_refused_in_bounded_memory(
    tmp_path, base, build, like, where, message
):
    path = tmp_path / "checkpoint.npz"
    path.write_bytes(build(base))
    tracemalloc.start()
    try:
        with pytest.raises(ValueError) as info:
            jol.load_checkpoint(tmp_path, like)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert type(info.value) is ValueError
    _assert_message(str(info.value), message(path))
    assert peak < PEAK_BYTES, f"refusing it allocated {peak} bytes"
    if where == "file":
        with pytest.raises(ValueError) as info:
            jol.has_checkpoint(tmp_path)
        _assert_message(str(info.value), message(path))
    else:
        assert jol.has_checkpoint(tmp_path)


def test_a_bad_crc_in_a_member_read_in_several_chunks(tmp_path):
    jol.save_checkpoint(tmp_path, TREE, arrays={"h": np.ones(300_000, np.float32)})
    path = tmp_path / "checkpoint.npz"
    raw = bytearray(path.read_bytes())
    raw[raw.index(b"array_0.npy") + 1_100_000] ^= 0xFF  # in its second MiB
    path.write_bytes(bytes(raw))
    with pytest.raises(ValueError) as info:
        jol.load_checkpoint(tmp_path, TREE)
    assert str(info.value) == UNREADABLE.format(
        path=path, reason="entry array_0: BadZipFile: Bad CRC-32 for file 'array_0.npy'"
    )


# --------------------------------------------------------------------------
# The other byte order: converted exactly, never garbage.


def _big_endian(array: np.ndarray) -> bytes:
    """``array`` as a .npy written on a big-endian machine."""
    return _save_npy(array.byteswap().view(array.dtype.newbyteorder(">")))


def test_big_endian_entries_load_exactly(tmp_path):
    nans = np.array([0x7FC00001, 0xFFC12345, 0x80000000], np.uint32).view(np.float32)
    tree = {"w": jnp.asarray(nans), "key": jax.random.key(3)}
    c = np.array([complex(-0.0, np.nan), 1 - 2j], np.complex64)
    jol.save_checkpoint(tmp_path, tree, arrays={"c": c, "i": np.arange(-2, 2)})
    path = tmp_path / "checkpoint.npz"
    with zipfile.ZipFile(path) as z:
        members = {i.filename: z.read(i) for i in z.infolist()}
    for name in ("leaf_0", "leaf_1", "array_0", "array_1"):
        value = np.load(io.BytesIO(members[f"{name}.npy"]))
        members[f"{name}.npy"] = _big_endian(value)
    path.write_bytes(_zip(list(members.items())))
    with zipfile.ZipFile(path) as z:  # the file really is big-endian
        assert np.load(io.BytesIO(z.read("leaf_0.npy"))).dtype == ">u4"  # the key
    ckpt = jol.load_checkpoint(tmp_path, tree)
    assert np.asarray(ckpt.tree["w"]).tobytes() == nans.tobytes()
    assert np.array_equal(
        jax.random.key_data(ckpt.tree["key"]), jax.random.key_data(tree["key"])
    )
    assert ckpt.arrays["c"].dtype == np.complex64
    assert ckpt.arrays["c"].tobytes() == c.tobytes()
    assert ckpt.arrays["i"].tolist() == [-2, -1, 0, 1]


# --------------------------------------------------------------------------
# Files that are not regular files: refused without being opened or read.


def _without_hanging(call, fifo=None):
    """``call()``'s exception; fails (and unblocks it) if it takes over 20 s."""
    outcome = []

    def run():
        try:
            call()
        except BaseException as e:  # handed to the test below
            outcome.append(e)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(20)
    if thread.is_alive():
        if fifo is not None:  # a writer end releases a reader blocked in open()
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        pytest.fail(f"{call} hung")
    assert outcome, f"{call} raised nothing"
    return outcome[0]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_a_named_pipe_is_refused_without_hanging(tmp_path):
    fifo = tmp_path / "checkpoint.npz"
    os.mkfifo(fifo)
    refused = (
        f"{fifo} is a named pipe, not a checkpoint file (a checkpoint is a regular "
        "file; refusing to read it)."
    )
    for call in (
        lambda: jol.load_checkpoint(tmp_path, TREE),
        lambda: jol.has_checkpoint(tmp_path),
        lambda: _checkpoint.check_fresh(tmp_path, resume=True, overwrite=False),
        lambda: jol.fit(
            lambda p, b: jnp.sum((b @ p) ** 2), jnp.ones(2), jol.sgd(0.1),
            jnp.ones((4, 2)), steps=2, checkpoint_dir=tmp_path, resume=True,
        ),
    ):  # fmt: skip
        error = _without_hanging(call, fifo)
        assert type(error) is ValueError and str(error) == refused
    # Through a symbolic link, too.
    link = tmp_path / "linked"
    link.mkdir()
    (link / "checkpoint.npz").symlink_to(fifo)
    error = _without_hanging(lambda: jol.load_checkpoint(link, TREE), fifo)
    assert str(error) == refused.replace(str(fifo), str(link / "checkpoint.npz"))
    # No run may start there, and no save replaces it.
    error = _without_hanging(
        lambda: _checkpoint.check_fresh(tmp_path, resume=False, overwrite=True)
    )
    assert str(error) == (
        f"{fifo} exists and is not a regular file, so no run can save there; move "
        "it away."
    )
    error = _without_hanging(lambda: jol.save_checkpoint(tmp_path, TREE))
    assert str(error) == f"{fifo} exists and is not a file; cannot save there."
    assert pathlib.Path(fifo).is_fifo()


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")
def test_a_link_to_a_device_is_never_opened_and_a_link_to_a_file_loads(tmp_path):
    (tmp_path / "checkpoint.npz").symlink_to("/dev/zero")
    error = _without_hanging(lambda: jol.load_checkpoint(tmp_path, TREE))
    assert str(error) == (
        f"{tmp_path / 'checkpoint.npz'} is a character device, not a checkpoint "
        "file (a checkpoint is a regular file; refusing to read it)."
    )
    real = tmp_path / "real"
    jol.save_checkpoint(real, TREE)
    (tmp_path / "checkpoint.npz").unlink()
    (tmp_path / "checkpoint.npz").symlink_to(real / "checkpoint.npz")
    loaded = jol.load_checkpoint(tmp_path, TREE).tree["w"]
    assert np.asarray(loaded).tolist() == [0.0, 1.0, 2.0]


# --------------------------------------------------------------------------
# What a save writes, a load accepts: the JSON bounds are checked on save.


def test_save_refuses_json_that_a_load_would_refuse(tmp_path):
    deep: list = []  # 64 levels of lists: 65 with the metadata dict
    for _ in range(63):
        deep = [deep]
    with pytest.raises(ValueError) as info:
        jol.save_checkpoint(tmp_path, TREE, metadata={"a": deep})
    assert str(info.value) == (
        "metadata['a']" + "[0]" * 63 + " nests lists and dicts more than 64 levels "
        "deep, which a checkpoint's metadata cannot (is it a structure that "
        "contains itself?)."
    )
    loop: dict = {}
    loop["self"] = loop
    with pytest.raises(ValueError, match=r"more than 64 levels deep"):
        jol.save_checkpoint(tmp_path, TREE, metadata=loop)
    with pytest.raises(ValueError) as info:
        jol.save_checkpoint(tmp_path, TREE, metadata={"log": "x" * 2**25})
    assert str(info.value) == (
        "metadata is 33554443 bytes as JSON; a checkpoint holds at most 33554432 "
        "(store big data in arrays= instead)."
    )
    assert not os.listdir(tmp_path)
    jol.save_checkpoint(tmp_path, TREE, metadata={"a": deep[0]})  # 64 levels
    assert jol.load_checkpoint(tmp_path, TREE).metadata == {"a": deep[0]}
