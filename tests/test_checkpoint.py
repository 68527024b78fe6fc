"""Checkpoints: bit-exact round trips, mismatch errors, atomic writes, no pickle."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxopt_lite as jol
from jaxopt_lite._host import checkpoint as _checkpoint
from jaxopt_lite._host import checkpoint_format as _format


class Pair(NamedTuple):
    first: object
    second: object


def _bits(x):
    """A leaf's (kind, dtype, shape, raw bytes): equal iff bit-identical."""
    if isinstance(x, jax.Array) and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
        data = np.asarray(jax.random.key_data(x))
        return ("key", str(x.dtype), x.shape, data.tobytes())
    array = np.asarray(x)
    return ("array", str(array.dtype), array.shape, array.tobytes())


def _assert_bit_identical(restored, saved):
    assert jax.tree.structure(restored) == jax.tree.structure(saved)
    for r, s in zip(jax.tree.leaves(restored), jax.tree.leaves(saved), strict=True):
        assert _bits(r) == _bits(s)


def _f32_from_bits(*bits):
    return np.array(bits, np.uint32).view(np.float32)


def _every_kind_of_leaf():
    nan_payloads = _f32_from_bits(0x7FC00001, 0xFFC12345, 0x7F800001, 0x80000000)
    bf16 = np.array([0x7FC1, 0xFFA0, 0x8000, 0x3F80], np.uint16).view(jnp.bfloat16)
    return {
        "f32": jnp.asarray(nan_payloads),
        "neg_zero": jnp.array(-0.0),
        "bf16": jnp.asarray(bf16),
        "c64": jnp.array([complex(-0.0, np.nan), 1 - 2j], jnp.complex64),
        "i32": jnp.array([[-(2**31), 2**31 - 1]], jnp.int32),
        "u32": jnp.array([0, 2**32 - 1], jnp.uint32),
        "bool": jnp.array([True, False]),
        "empty": jnp.zeros((0, 3)),
        "np_f32": np.array([1.5, -0.0], np.float32),
        "scalars": [1.25, 7, True, 2j],
        "keys": Pair(jax.random.key(42), jax.random.split(jax.random.key(1), 3)),
        "rbg": jax.random.key(3, impl="rbg"),
        "raw_key": jax.random.PRNGKey(5),
        "nothing": None,
        "tuple": (jnp.arange(3), (jnp.ones((2, 2), jnp.float32),)),
    }


def test_round_trip_every_leaf_kind_is_bit_identical(tmp_path):
    tree = _every_kind_of_leaf()
    path = jol.save_checkpoint(tmp_path / "run", tree)
    assert path == tmp_path / "run" / "checkpoint.npz"
    assert sorted(os.listdir(tmp_path / "run")) == ["checkpoint.npz"]
    ckpt = jol.load_checkpoint(tmp_path / "run", tree)
    assert isinstance(ckpt, jol.Checkpoint)
    assert ckpt.arrays == {} and ckpt.metadata == {}
    expected = jax.tree.map(jnp.asarray, tree)  # Python scalars -> JAX dtypes
    _assert_bit_identical(ckpt.tree, expected)
    assert all(isinstance(leaf, jax.Array) for leaf in jax.tree.leaves(ckpt.tree))
    assert isinstance(ckpt.tree["keys"], Pair)
    # The restored keys work as keys.
    np.testing.assert_array_equal(
        jax.random.normal(ckpt.tree["keys"].first, (3,)),
        jax.random.normal(jax.random.key(42), (3,)),
    )
    assert ckpt.tree["rbg"].dtype == jax.random.key(0, impl="rbg").dtype


def test_like_may_be_shape_dtype_structs_or_python_numbers(tmp_path):
    tree = _every_kind_of_leaf()
    jol.save_checkpoint(tmp_path, tree)
    abstract = jax.eval_shape(lambda: jax.tree.map(jnp.asarray, tree))
    ckpt = jol.load_checkpoint(str(tmp_path), abstract)
    _assert_bit_identical(ckpt.tree, jax.tree.map(jnp.asarray, tree))


def test_float64_leaves(tmp_path):
    x = np.array([0.1, -0.0, np.nan], np.float64)
    jol.save_checkpoint(tmp_path, {"x": x})
    # With x64 off JAX would round float64, so the exact NumPy array comes back.
    restored = jol.load_checkpoint(tmp_path, {"x": x}).tree["x"]
    assert isinstance(restored, np.ndarray)
    assert _bits(restored) == _bits(x)
    with jax.enable_x64(True):
        restored = jol.load_checkpoint(tmp_path, {"x": jnp.asarray(x)}).tree["x"]
        assert isinstance(restored, jax.Array)
        assert _bits(restored) == _bits(x)


def test_optax_state_round_trip_resumes_bit_for_bit(tmp_path):
    params = {"w": jnp.linspace(-1.0, 1.0, 6).reshape(2, 3), "b": jnp.zeros(3)}
    opt = optax.adam(1e-2)

    def loss(p, x):
        return jnp.sum((x @ p["w"] + p["b"][None, :]) ** 2)

    @jax.jit
    def step(state):
        p, s, key, n = state
        key, sub = jax.random.split(key)
        g = jax.grad(loss)(p, jax.random.normal(sub, (4, 2)))
        u, s = opt.update(g, s, p)
        return optax.apply_updates(p, u), s, key, n + 1

    state = (params, opt.init(params), jax.random.key(0), jnp.int32(0))
    for _ in range(3):
        state = step(state)
    jol.save_checkpoint(tmp_path, state, metadata={"step": 3})
    fresh = (params, opt.init(params), jax.random.key(7), jnp.int32(0))
    ckpt = jol.load_checkpoint(tmp_path, fresh)
    _assert_bit_identical(ckpt.tree, state)
    assert ckpt.metadata == {"step": 3}
    a, b = state, ckpt.tree
    for _ in range(3):
        a, b = step(a), step(b)
    _assert_bit_identical(b, a)


def test_arrays_and_metadata_round_trip(tmp_path):
    history = {
        "loss": np.array([3.0, 2.5, np.nan], np.float32),
        "lr": jnp.array([0.1, 0.05]),
        "skipped": np.array([False, True]),
        "f64": np.array([0.1], np.float64),
        "bf16": jnp.array([1.5, -0.0], jnp.bfloat16),
        "steps": [0, 10, 20],
    }
    metadata = {
        "step": 20,
        "done": False,
        "lr": 0.1,
        "name": "run/ä",
        "nested": {"shape": (2, 3), "none": None},
    }
    jol.save_checkpoint(tmp_path, {"w": jnp.ones(2)}, arrays=history, metadata=metadata)
    ckpt = jol.load_checkpoint(tmp_path, {"w": jnp.ones(2)})
    assert list(ckpt.arrays) == list(history)
    for name, value in history.items():
        assert isinstance(ckpt.arrays[name], np.ndarray)
        assert _bits(ckpt.arrays[name]) == _bits(np.asarray(value))
    assert ckpt.metadata == {**metadata, "nested": {"shape": [2, 3], "none": None}}
    # Arrays may change length from one save to the next; the latest wins.
    jol.save_checkpoint(
        tmp_path, {"w": jnp.ones(2)}, arrays={"loss": np.zeros(5, np.float32)}
    )
    ckpt = jol.load_checkpoint(tmp_path, {"w": jnp.ones(2)})
    assert list(ckpt.arrays) == ["loss"] and ckpt.arrays["loss"].shape == (5,)
    assert ckpt.metadata == {}


def test_has_checkpoint(tmp_path):
    assert not jol.has_checkpoint(tmp_path / "missing")
    assert not jol.has_checkpoint(tmp_path)
    jol.save_checkpoint(tmp_path / "a" / "b", [jnp.ones(1)])
    assert jol.has_checkpoint(tmp_path / "a" / "b")
    assert jol.has_checkpoint(str(tmp_path / "a" / "b"))


def test_missing_checkpoint_raises_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nowhere/checkpoint\.npz"):
        jol.load_checkpoint(tmp_path / "nowhere", {"w": jnp.ones(2)})


# --------------------------------------------------------------------------
# Mismatches.


@pytest.fixture
def saved_params(tmp_path):
    tree = {"params": {"w1": jnp.zeros((64, 32)), "b1": jnp.zeros(32)}}
    jol.save_checkpoint(tmp_path, tree)
    return tmp_path, tree


def test_shape_mismatch_names_the_leaf(saved_params):
    directory, _ = saved_params
    like = {"params": {"w1": jnp.zeros((64, 16)), "b1": jnp.zeros(32)}}
    message = (
        f"checkpoint in {directory} does not match this run: "
        "tree['params']['w1'] has shape (64, 32) in the checkpoint but (64, 16) here"
    )
    with pytest.raises(ValueError) as info:
        jol.load_checkpoint(directory, like)
    assert str(info.value) == message


def test_dtype_mismatch_names_the_leaf(saved_params):
    directory, _ = saved_params
    like = {"params": {"w1": jnp.zeros((64, 32)), "b1": jnp.zeros(32, jnp.bfloat16)}}
    with pytest.raises(
        ValueError,
        match=r"tree\['params'\]\['b1'\] has dtype float32 in the checkpoint "
        r"but bfloat16 here",
    ):
        jol.load_checkpoint(directory, like)


@pytest.mark.parametrize(
    "like, message",
    [
        (
            {"params": {"w1": jnp.zeros((64, 32))}},
            r"tree\['params'\]\['b1'\] is in the checkpoint but not here",
        ),
        (
            {"params": {"w1": 0.0, "b1": 0.0, "w2": 0.0}},
            r"tree\['params'\]\['w2'\] is here but not in the checkpoint",
        ),
        (
            {"params": Pair(jnp.zeros((64, 32)), jnp.zeros(32))},
            r"tree\['params'\]\['b1'\] is in the checkpoint but not here",
        ),
        (jnp.zeros(3), r"tree\['params'\]\['b1'\] is in the checkpoint"),
    ],
)
def test_structure_mismatch_names_the_leaf(saved_params, like, message):
    directory, _ = saved_params
    with pytest.raises(ValueError, match="does not match this run: " + message):
        jol.load_checkpoint(directory, like)


def test_key_mismatches(tmp_path):
    jol.save_checkpoint(tmp_path, {"key": jax.random.key(0)})
    with pytest.raises(ValueError, match=r"has dtype key<fry> in the checkpoint"):
        jol.load_checkpoint(tmp_path, {"key": jax.random.key(0, impl="rbg")})
    with pytest.raises(ValueError, match=r"dtype key<fry> .* but uint32 here"):
        jol.load_checkpoint(tmp_path, {"key": jax.random.PRNGKey(0)})
    with pytest.raises(ValueError, match=r"has shape \(\) in the checkpoint"):
        jol.load_checkpoint(tmp_path, {"key": jax.random.split(jax.random.key(0))})


# --------------------------------------------------------------------------
# Atomic writes.


def _interrupted_write(file, entries):
    file.write(b"PK\x03\x04 half a zip file")
    raise OSError("disk full (simulated)")


def test_failed_write_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    old = {"w": jnp.array([1.0, 2.0])}
    jol.save_checkpoint(tmp_path, old, metadata={"step": 1})
    monkeypatch.setattr(_format, "write_npz", _interrupted_write)
    with pytest.raises(OSError, match="simulated"):
        jol.save_checkpoint(
            tmp_path, {"w": jnp.array([3.0, 4.0])}, metadata={"step": 2}
        )
    assert sorted(os.listdir(tmp_path)) == ["checkpoint.npz"]  # no temp file left
    ckpt = jol.load_checkpoint(tmp_path, old)
    _assert_bit_identical(ckpt.tree, old)
    assert ckpt.metadata == {"step": 1}


@pytest.mark.parametrize("fails", ["fsync", "replace"])
def test_failed_sync_or_rename_keeps_the_previous_checkpoint(
    tmp_path, monkeypatch, fails
):
    old = {"w": jnp.array([1.0, 2.0])}
    jol.save_checkpoint(tmp_path, old)

    def broken(*args):
        raise OSError(f"{fails} failed (simulated)")

    monkeypatch.setattr(_checkpoint.os, fails, broken)
    with pytest.raises(OSError, match="simulated"):
        jol.save_checkpoint(tmp_path, {"w": jnp.array([3.0, 4.0])})
    monkeypatch.undo()
    assert sorted(os.listdir(tmp_path)) == ["checkpoint.npz"]
    _assert_bit_identical(jol.load_checkpoint(tmp_path, old).tree, old)


def test_invalid_arguments_touch_nothing_on_disk(tmp_path):
    with pytest.raises(TypeError, match=r"tree\['bad'\] is a str"):
        jol.save_checkpoint(tmp_path / "new", {"ok": jnp.ones(1), "bad": "text"})
    assert not (tmp_path / "new").exists()


def test_files_never_hold_pickles(tmp_path):
    jol.save_checkpoint(tmp_path, _every_kind_of_leaf(), arrays={"h": np.ones(2)})
    with np.load(tmp_path / "checkpoint.npz", allow_pickle=False) as npz:
        assert all(npz[name].dtype != object for name in npz.files)


# --------------------------------------------------------------------------
# Validation.


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"directory": 3}, TypeError, "directory must be"),
        ({"directory": ""}, TypeError, "directory must be"),
        ({"tree": {"s": jax.ShapeDtypeStruct((2,), jnp.float32)}}, TypeError,
         r"tree\['s'\] is a ShapeDtypeStruct"),
        ({"tree": [np.array(["a"])]}, TypeError, r"tree\[0\] has dtype <U1"),
        ({"tree": [2**40]}, ValueError, r"tree\[0\]=1099511627776 cannot be stored"),
        ({"arrays": [1, 2]}, TypeError, "arrays must be a dict"),
        ({"arrays": {"a": np.array(["x"])}}, TypeError, r"arrays\['a'\] has dtype"),
        ({"arrays": {"a": object()}}, TypeError, r"arrays\['a'\] has dtype object"),
        ({"arrays": {1: np.ones(1)}}, TypeError, "arrays has the key 1"),
        ({"arrays": {"k": jax.random.key(0)}}, TypeError, r"arrays\['k'\] is a PRNG"),
        ({"metadata": "x"}, TypeError, "metadata must be a dict"),
        ({"metadata": {"loss": np.float32(1.0)}}, TypeError,
         r"metadata\['loss'\] is a numpy.float32, which is not JSON-able"),
        ({"metadata": {"a": [{1: 2}]}}, TypeError,
         r"metadata\['a'\]\[0\] has the key 1"),
    ],
)  # fmt: skip
def test_save_validates_arguments(tmp_path, kwargs, error, message):
    call = {"directory": tmp_path, "tree": {"w": jnp.ones(2)}, **kwargs}
    with pytest.raises(error, match=message):
        jol.save_checkpoint(call.pop("directory"), call.pop("tree"), **call)


def test_save_refuses_traced_values(tmp_path):
    @jax.jit
    def inside(x):
        jol.save_checkpoint(tmp_path, {"x": x})
        return x

    with pytest.raises(TypeError, match=r"tree\['x'\] is a traced value"):
        inside(jnp.ones(2))


def test_load_and_has_validate_arguments(tmp_path):
    jol.save_checkpoint(tmp_path, {"w": jnp.ones(2)})
    with pytest.raises(TypeError, match=r"like: tree\['w'\] is a str"):
        jol.load_checkpoint(tmp_path, {"w": "float32"})
    with pytest.raises(TypeError, match="directory must be"):
        jol.load_checkpoint(None, {"w": jnp.ones(2)})
    with pytest.raises(TypeError, match="directory must be"):
        jol.has_checkpoint(b"bytes")


# --------------------------------------------------------------------------
# Shardings.


def test_committed_like_leaves_give_the_placement(tmp_path):
    device = jax.devices()[0]
    tree = {"a": jnp.arange(3.0), "b": jnp.ones(2)}
    jol.save_checkpoint(tmp_path, tree)
    like = {"a": jax.device_put(jnp.zeros(3), device), "b": jnp.zeros(2)}
    assert like["a"].committed and not like["b"].committed
    ckpt = jol.load_checkpoint(tmp_path, like)
    assert ckpt.tree["a"].committed and ckpt.tree["a"].sharding == like["a"].sharding
    assert not ckpt.tree["b"].committed
    _assert_bit_identical(ckpt.tree, tree)


_SHARDED_SCRIPT = textwrap.dedent(
    """
    import sys
    import jax, jax.numpy as jnp, numpy as np
    import jaxopt_lite as jol
    from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

    mesh = Mesh(np.array(jax.devices()), ("data",))
    sharded = NamedSharding(mesh, P("data"))
    replicated = NamedSharding(mesh, P())
    x = jax.device_put(jnp.arange(8.0).reshape(4, 2), sharded)
    keys = jax.device_put(jax.random.split(jax.random.key(0), 4), sharded)
    tree = {"x": x, "keys": keys, "y": jax.device_put(jnp.ones(3), replicated)}
    jol.save_checkpoint(sys.argv[1], tree)
    like = jax.tree.map(lambda a: jax.device_put(jnp.zeros_like(a), a.sharding),
                        {"x": x, "y": tree["y"]})
    like["keys"] = jax.device_put(jax.random.split(jax.random.key(9), 4), sharded)
    out = jol.load_checkpoint(sys.argv[1], like).tree
    for name in tree:
        assert out[name].sharding == tree[name].sharding, name
    assert len(out["x"].addressable_shards) == 4
    np.testing.assert_array_equal(out["x"], x)
    np.testing.assert_array_equal(jax.random.key_data(out["keys"]),
                                  jax.random.key_data(keys))
    print("ok")
    """
)


def test_sharded_arrays_round_trip_on_four_cpu_devices(tmp_path):
    env = dict(
        os.environ,
        JAX_PLATFORMS="cpu",
        XLA_FLAGS="--xla_force_host_platform_device_count=4",
    )
    proc = subprocess.run(
        [sys.executable, "-c", _SHARDED_SCRIPT, str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip() == "ok"
