"""Checkpoint files that are not ours or not whole: pickles, damaged and foreign
files, leftover temporaries of killed saves, and runs that would overwrite a
checkpoint by accident."""

from __future__ import annotations

import io
import json
import os
import pathlib
import threading
import zipfile

import jax.numpy as jnp
import numpy as np
import pytest

import jaxopt_lite as jol
from jaxopt_lite._host import checkpoint as _checkpoint
from jaxopt_lite._host import checkpoint_write as _write

UNREADABLE = "is not a readable jaxopt_lite checkpoint"
TREE = {"w": jnp.arange(3.0), "b": jnp.int32(7)}


def _assert_saved_values(ckpt):
    np.testing.assert_array_equal(ckpt.tree["w"], [0.0, 1.0, 2.0])
    assert int(ckpt.tree["b"]) == 7
    np.testing.assert_array_equal(ckpt.arrays["h"], [1.0, 1.0])
    assert ckpt.metadata == {"s": 1}


@pytest.fixture
def saved(tmp_path):
    jol.save_checkpoint(tmp_path, TREE, arrays={"h": np.ones(2)}, metadata={"s": 1})
    return tmp_path / "checkpoint.npz"


# --------------------------------------------------------------------------
# No pickle.

_UNPICKLED = []


class _Exploit:
    def __reduce__(self):
        return (_UNPICKLED.append, ("code ran",))


def _write_raw_npz(path: pathlib.Path, **entries):
    path.mkdir(parents=True, exist_ok=True)
    with open(path / "checkpoint.npz", "wb") as f:
        np.savez(f, **entries)


def _json(value):
    return np.frombuffer(json.dumps(value).encode(), np.uint8)


def test_object_arrays_are_refused(tmp_path):
    manifest = {
        "format": "jaxopt_lite.checkpoint",
        "version": 1,
        "treedef": "PyTreeDef({'w': *})",
        "leaves": [{"path": "['w']", "shape": [1], "dtype": "float32",
                    "stored_dtype": "float32"}],
        "arrays": [],
    }  # fmt: skip
    exploit = np.empty(1, dtype=object)
    exploit[0] = _Exploit()
    _write_raw_npz(
        tmp_path, manifest=_json(manifest), metadata=_json({}), leaf_0=exploit
    )
    with pytest.raises(ValueError, match=r"refusing to load .*pickled"):
        jol.load_checkpoint(tmp_path, {"w": jnp.zeros(1)})
    assert _UNPICKLED == []


def test_a_pickle_file_is_refused(tmp_path):
    import pickle

    (tmp_path / "checkpoint.npz").write_bytes(pickle.dumps(_Exploit()))
    with pytest.raises(ValueError, match=r"refusing to load .*pickled"):
        jol.load_checkpoint(tmp_path, {"w": jnp.zeros(1)})
    assert _UNPICKLED == []


@pytest.mark.parametrize(
    "change, message",
    [
        ({"version": 99}, "format version 99"),
        ({"format": "other"}, "not a readable jaxopt_lite checkpoint"),
        ({"leaves": [{"path": "['w']", "shape": "x"}]}, "corrupt manifest"),
        ({"leaves": [{"path": "['w']", "shape": [1], "dtype": "object",
                      "stored_dtype": "float32"}]}, "has dtype object"),
        ({"leaves": [{"path": "['w']", "shape": [1], "dtype": "float32",
                      "stored_dtype": "int32"}]}, "does not match its manifest"),
    ],
)  # fmt: skip
def test_corrupt_manifests_raise_value_error(tmp_path, change, message):
    jol.save_checkpoint(tmp_path, {"w": jnp.zeros(1)})
    with np.load(tmp_path / "checkpoint.npz", allow_pickle=False) as npz:
        entries = {name: npz[name] for name in npz.files}
    manifest = json.loads(entries["manifest"].tobytes())
    entries["manifest"] = _json({**manifest, **change})
    _write_raw_npz(tmp_path, **entries)
    with pytest.raises(ValueError, match=message):
        jol.load_checkpoint(tmp_path, {"w": jnp.zeros(1)})


# --------------------------------------------------------------------------
# Damaged and foreign files.


def _npy_bytes():
    buffer = io.BytesIO()
    np.save(buffer, np.zeros(3))
    return buffer.getvalue()


def _foreign_zip():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        z.writestr("hello.txt", "hi")
    return buffer.getvalue()


def _foreign_npz():
    buffer = io.BytesIO()
    np.savez(buffer, a=np.zeros(3))
    return buffer.getvalue()


@pytest.mark.parametrize(
    "content, reason",
    [
        (b"", "not a zip archive"),
        (b"PK\x03\x04 truncated", "BadZipFile"),
        (np.random.default_rng(0).bytes(1000), "not a zip archive"),
        (_npy_bytes(), "single .npy array"),
        (_foreign_zip(), "no manifest entry"),
        (_foreign_npz(), "no manifest entry"),
    ],
)
def test_foreign_files_are_named_as_unreadable(tmp_path, content, reason):
    path = tmp_path / "checkpoint.npz"
    path.write_bytes(content)
    for call in (
        lambda: jol.load_checkpoint(tmp_path, TREE),
        lambda: jol.has_checkpoint(tmp_path),
    ):
        with pytest.raises(ValueError, match=UNREADABLE) as info:
            call()
        assert str(path) in str(info.value) and reason in str(info.value)


def test_a_damaged_central_directory_is_a_value_error(saved):
    # The "version needed to extract" field of the first central directory
    # entry: zipfile raises NotImplementedError for an unknown version.
    raw = bytearray(saved.read_bytes())
    at = raw.index(b"PK\x01\x02") + 6
    raw[at] = 0xFF
    saved.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match=UNREADABLE + r".*NotImplementedError"):
        jol.load_checkpoint(saved.parent, TREE)


def test_every_truncation_is_a_value_error(saved):
    raw = saved.read_bytes()
    for size in range(len(raw)):
        saved.write_bytes(raw[:size])
        with pytest.raises(ValueError, match=UNREADABLE):
            jol.load_checkpoint(saved.parent, TREE)


def test_a_flipped_byte_never_loads_wrong_values(saved):
    """Every single-byte change is refused with a ValueError, or (in fields
    the zip reader ignores, e.g. timestamps) loads exactly what was saved."""
    raw = saved.read_bytes()
    loaded = refused = 0
    for i in range(len(raw)):
        bad = bytearray(raw)
        bad[i] ^= 0xFF
        saved.write_bytes(bytes(bad))
        try:
            ckpt = jol.load_checkpoint(saved.parent, TREE)
        except ValueError:
            refused += 1
            continue
        _assert_saved_values(ckpt)
        loaded += 1
    assert refused > len(raw) // 2 and loaded + refused == len(raw)


def test_has_checkpoint_reads_only_what_it_needs(saved):
    assert jol.has_checkpoint(saved.parent)
    assert not jol.has_checkpoint(saved.parent / "absent")
    _assert_saved_values(jol.load_checkpoint(saved.parent, TREE))


def test_a_file_given_as_the_folder_is_refused(tmp_path):
    file = tmp_path / "notes.txt"
    file.write_text("x")
    for call in (
        lambda: jol.save_checkpoint(file, TREE),
        lambda: jol.load_checkpoint(file, TREE),
        lambda: jol.has_checkpoint(file),
    ):
        with pytest.raises(ValueError, match="is a file, not a folder"):
            call()
    assert file.read_text() == "x"
    (tmp_path / "d" / "checkpoint.npz").mkdir(parents=True)
    with pytest.raises(ValueError, match="is a folder, not a checkpoint file"):
        jol.load_checkpoint(tmp_path / "d", TREE)
    with pytest.raises(ValueError, match="exists and is not a file"):
        jol.save_checkpoint(tmp_path / "d", TREE)


# --------------------------------------------------------------------------
# Leftover temporaries.


def _leftover(folder: pathlib.Path, name: str = ".checkpoint-k1lled_x.tmp"):
    path = folder / name
    path.write_bytes(b"PK\x03\x04" + bytes(1000))  # half a checkpoint
    return path


def _bystanders(folder: pathlib.Path) -> list[pathlib.Path]:
    """Files that look alike but are not our temporaries (or not in folder)."""
    (folder / "sub").mkdir()
    paths = [
        folder / ".checkpoint-notes.txt",
        folder / "checkpoint-abc.tmp",
        folder / "my.checkpoint-abc.tmp",
        folder / "sub" / ".checkpoint-abcdefgh.tmp",
    ]
    for p in paths:
        p.write_text("keep")
    (folder / ".checkpoint-dir.tmp").mkdir()
    paths.append(folder / ".checkpoint-dir.tmp")
    return paths


def test_save_removes_leftover_temporaries_only(tmp_path):
    stale = [_leftover(tmp_path), _leftover(tmp_path, ".checkpoint-2.tmp")]
    keep = _bystanders(tmp_path)
    jol.save_checkpoint(tmp_path, TREE, arrays={"h": np.ones(2)}, metadata={"s": 1})
    assert not any(p.exists() for p in stale)
    assert all(p.exists() for p in keep)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["checkpoint.npz", "sub", *(p.name for p in keep if p.parent == tmp_path)]
    )
    _assert_saved_values(jol.load_checkpoint(tmp_path, TREE))


def test_load_removes_leftover_temporaries(saved):
    stale = _leftover(saved.parent)
    _assert_saved_values(jol.load_checkpoint(saved.parent, TREE))
    assert not stale.exists()
    assert sorted(os.listdir(saved.parent)) == ["checkpoint.npz"]


def test_a_temporary_being_written_in_this_process_is_kept(saved):
    writing = _leftover(saved.parent, ".checkpoint-inflight.tmp")
    with _write._WRITING_LOCK:
        _write._WRITING.add(os.path.realpath(writing))
    try:
        assert _write.remove_stale_temporaries(saved.parent) == []
        jol.save_checkpoint(saved.parent, TREE, arrays={"h": np.ones(2)})
        assert writing.exists()
    finally:
        with _write._WRITING_LOCK:
            _write._WRITING.discard(os.path.realpath(writing))
    assert _write.remove_stale_temporaries(saved.parent) == [writing]


def test_concurrent_saves_in_one_process_never_remove_each_others_files(tmp_path):
    errors = []

    def saver(value):
        try:
            for _ in range(15):
                jol.save_checkpoint(tmp_path, {"w": jnp.full(3, value)})
        except Exception as e:  # collected for the assertion below
            errors.append(e)

    threads = [threading.Thread(target=saver, args=(float(i),)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert os.listdir(tmp_path) == ["checkpoint.npz"]
    w = np.asarray(jol.load_checkpoint(tmp_path, {"w": jnp.zeros(3)}).tree["w"])
    assert w[0] in (0.0, 1.0, 2.0, 3.0) and np.all(w == w[0])


# --------------------------------------------------------------------------
# Starting a run where a checkpoint already is.


def test_check_fresh_allows_a_fresh_folder(tmp_path):
    for directory in (None, tmp_path, tmp_path / "new"):
        _checkpoint.check_fresh(directory, resume=False, overwrite=False)
    _checkpoint.check_fresh(tmp_path, resume=False, overwrite=True)


def test_check_fresh_refuses_to_overwrite_silently(saved):
    with pytest.raises(ValueError, match=r"already holds a checkpoint") as info:
        _checkpoint.check_fresh(saved.parent, resume=False, overwrite=False)
    assert "resume=True" in str(info.value) and "overwrite=True" in str(info.value)
    _checkpoint.check_fresh(saved.parent, resume=True, overwrite=False)
    _checkpoint.check_fresh(saved.parent, resume=False, overwrite=True)
    _assert_saved_values(jol.load_checkpoint(saved.parent, TREE))  # untouched


def test_check_fresh_on_a_damaged_checkpoint(saved):
    saved.write_bytes(b"garbage")
    with pytest.raises(ValueError, match="already holds a checkpoint"):
        _checkpoint.check_fresh(saved.parent, resume=False, overwrite=False)
    with pytest.raises(ValueError, match=UNREADABLE):
        _checkpoint.check_fresh(saved.parent, resume=True, overwrite=False)
    _checkpoint.check_fresh(saved.parent, resume=False, overwrite=True)


@pytest.mark.parametrize(
    "directory, kwargs, error, message",
    [
        (None, {"resume": True, "overwrite": False}, ValueError,
         r"resume=True needs checkpoint_dir"),
        (None, {"resume": False, "overwrite": True}, ValueError,
         r"overwrite=True needs checkpoint_dir"),
        ("d", {"resume": True, "overwrite": True}, ValueError, "exclude each other"),
        ("d", {"resume": True, "overwrite": False}, FileNotFoundError,
         r"checkpoint_dir=.* holds no checkpoint .*resume=False"),
        ("d", {"resume": 1, "overwrite": False}, TypeError, "resume must be"),
        ("d", {"resume": False, "overwrite": "yes"}, TypeError, "overwrite must be"),
        (3, {"resume": False, "overwrite": False}, TypeError,
         "checkpoint_dir must be"),
    ],
)  # fmt: skip
def test_check_fresh_arguments(tmp_path, directory, kwargs, error, message):
    if directory == "d":
        directory = tmp_path
    with pytest.raises(error, match=message):
        _checkpoint.check_fresh(directory, **kwargs)
