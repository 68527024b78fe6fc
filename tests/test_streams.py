"""BatchStream and global_batch: stacking, checks, prefetching, resuming, sharding.

The 8-device mesh and the two-process run need fresh JAX processes, so they
happen in subprocesses (``tests/streams_helper.py``) whose measurements are
asserted here.
"""

from __future__ import annotations

import pathlib
import threading
import time
import traceback

import jax
import numpy as np
import processes
import pytest

from jaxopt_lite._host.batch_layout import is_stream
from jaxopt_lite._host.global_batch import global_batch
from jaxopt_lite._host.streams import BatchStream

HELPER = pathlib.Path(__file__).with_name("streams_helper.py")


def make_batches(count: int, size: int = 4, dtype=np.float32) -> list[dict]:
    rng = np.random.default_rng(0)
    return [
        {
            "x": rng.normal(size=(size, 3)).astype(dtype),
            "pair": (np.arange(size, dtype=np.int32) + 10 * i, rng.random(size) < 0.5),
        }
        for i in range(count)
    ]


def stacked(batches: list[dict], rows: int | None = None) -> dict:
    """The batches stacked, padded with zero rows to ``rows``."""
    out = jax.tree.map(lambda *leaves: np.stack(leaves), *batches)
    pad = (rows or len(batches)) - len(batches)
    return jax.tree.map(
        lambda a: np.concatenate([a, np.zeros((pad, *a.shape[1:]), a.dtype)]), out
    )


def assert_tree_equal(got, want) -> None:
    assert jax.tree.structure(got) == jax.tree.structure(want)
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_array_equal(np.asarray(a), b)


@pytest.fixture(autouse=True)
def no_leaked_threads():
    before = set(threading.enumerate())
    yield
    # grain's own reader threads (a pool it keeps) are not ours to join.
    new = set(threading.enumerate()) - before
    assert not [t.name for t in new if not t.name.startswith("grain-")]


def test_chunks_equal_np_stack_and_end_short():
    batches = make_batches(10)
    with BatchStream(batches) as stream:
        assert stream.len_hint == 10 and stream.batch_size == 4
        assert jax.tree.map(lambda s: (s.shape, str(s.dtype)), stream.spec) == {
            "x": ((4, 3), "float32"),
            "pair": (((4,), "int32"), ((4,), "bool")),
        }
        sizes = []
        for start in (0, 4, 8):
            chunk, k = stream.next_chunk(4)
            sizes.append(k)
            assert_tree_equal(chunk, stacked(batches[start : start + k], 4))
            assert isinstance(chunk["x"], jax.Array)
        assert sizes == [4, 4, 2]
        assert stream.next_chunk(4) == (None, 0)
        assert stream.next_chunk(1) == (None, 0)
        assert stream.position == 10


def test_generator_with_prefetch_gives_the_same_chunks():
    batches = make_batches(7)
    stream = BatchStream(b for b in batches)
    assert stream.len_hint is None and not stream.resumable and stream.state() is None
    got = []
    chunk, k = stream.next_chunk(3)
    while k:
        got.append((k, chunk))
        stream.prefetch(3)
        stream.prefetch(3)  # already on its way: no second thread
        chunk, k = stream.next_chunk(3)
    stream.close()
    assert [k for k, _ in got] == [3, 3, 1]
    for i, (k, chunk) in enumerate(got):
        assert_tree_equal(chunk, stacked(batches[3 * i : 3 * i + k], 3))


@pytest.mark.parametrize("x64", [False, True])
def test_prefetched_dtype_follows_x64(x64):
    batches = [{"x": np.full((2,), i, np.float64)} for i in range(4)]
    with jax.enable_x64(x64), BatchStream(batches) as stream:
        want = np.float64 if x64 else np.float32
        assert stream.spec["x"].dtype == want
        stream.prefetch(2)  # a background thread: JAX's settings are carried
        chunk, _ = stream.next_chunk(2)
        assert chunk["x"].dtype == want
        np.testing.assert_array_equal(chunk["x"], [[0.0, 0.0], [1.0, 1.0]])


@pytest.mark.parametrize(
    "data", [{"x": np.ones(3)}, np.ones((4, 2)), jax.numpy.ones(3), (np.ones(2),), 5]
)
def test_in_memory_data_is_not_a_stream(data):
    assert not is_stream(data)
    with pytest.raises(TypeError, match=r"^data=.* is not a stream of batches"):
        BatchStream(data)


def test_what_is_a_stream():
    assert is_stream([{"x": np.ones(2)}]) and is_stream(iter([]))
    assert not is_stream(None) and not is_stream("batches")
    with pytest.raises(ValueError, match=r"data=\[\] yielded no batch"):
        BatchStream([])


def mutate(batches: list[dict], step: int, **change) -> list[dict]:
    out = list(batches)
    out[step] = {**batches[step], **change}
    return out


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"x": np.zeros((4, 2), np.float32)},
            r"batch 5 of data: leaf \['x'\] has shape \(4, 2\), expected \(4, 3\)",
        ),
        (
            {"x": np.zeros((4, 3), np.float64)},
            r"batch 5 of data: leaf \['x'\] has dtype float64, expected float32",
        ),
        ({"extra": np.zeros(4)}, r"batch 5 of data has structure .*, expected"),
        (
            {"x": np.zeros((6, 3), np.float32)},
            r"batch 5 of data: leaf \['x'\] has shape \(6, 3\)",
        ),
    ],
)
@pytest.mark.parametrize("prefetch", [False, True])
def test_mismatch_names_the_step(change, message, prefetch):
    with BatchStream(mutate(make_batches(8), 5, **change)) as stream:
        assert stream.next_chunk(4)[1] == 4
        if prefetch:
            stream.prefetch(4)
        with pytest.raises(ValueError, match=message):
            stream.next_chunk(4)


def test_short_batch_inside_the_stream_is_an_error():
    short = {"x": np.zeros((2, 3), np.float32), "pair": (np.zeros(2, np.int32),) * 2}
    batches = make_batches(6)
    batches[3] = {**short, "pair": (short["pair"][0], np.zeros(2, bool))}
    with (
        BatchStream(batches) as stream,
        pytest.raises(ValueError, match=r"batch 3 of data has 2 examples .* only"),
    ):
        stream.next_chunk(6)


@pytest.mark.parametrize("drop", [True, False])
def test_short_last_batch(drop):
    batches = [{"x": np.full((4,), i, np.int32)} for i in range(5)]
    batches.append({"x": np.full((3,), 5, np.int32)})
    with BatchStream(batches, drop_remainder=drop) as stream:
        chunk, k = stream.next_chunk(4)
        assert k == 4
        if drop:
            chunk, k = stream.next_chunk(4)
            assert k == 1
            np.testing.assert_array_equal(chunk["x"], [[4] * 4] + [[0] * 4] * 3)
            assert stream.next_chunk(4) == (None, 0)
        else:
            with pytest.raises(ValueError, match=r"batch 5 of data, the last, has 3"):
                stream.next_chunk(4)
            assert stream.next_chunk(4) == (None, 0)


def test_leaf_types():
    with pytest.raises(TypeError, match=r"batch 0 of data: leaf \['label'\] has dtype"):
        BatchStream([{"x": np.ones(2), "label": np.array(["a", "b"], object)}])
    with pytest.raises(ValueError, match=r"leaf \['lr'\] is a scalar"):
        BatchStream([{"x": np.ones(2), "lr": 0.1}])
    with pytest.raises(ValueError, match="disagree on the batch size"):
        BatchStream([{"x": np.ones(2), "y": np.ones(3)}])
    bad = [{"x": np.ones(2)}, {"x": np.array([None, None])}]
    with (
        BatchStream(bad) as stream,
        pytest.raises(TypeError, match=r"batch 1 of data: leaf \['x'\]"),
    ):
        stream.next_chunk(2)


def test_argument_errors():
    with pytest.raises(TypeError, match="drop_remainder must be a bool"):
        BatchStream([np.ones(2)], drop_remainder=1)
    with pytest.raises(TypeError, match=r"sharding must be a jax\.sharding\.Sharding"):
        BatchStream([np.ones(2)], sharding="data")
    with BatchStream([np.ones(2)] * 4) as stream:
        with pytest.raises(ValueError, match=r"next_chunk\(n=0\) is not allowed"):
            stream.next_chunk(0)
        stream.prefetch(2)
        with pytest.raises(
            ValueError, match=r"next_chunk\(n=3, rows=3\) after prefetch"
        ):
            stream.next_chunk(3)
        with pytest.raises(ValueError, match=r"prefetch\(n=3\) while a chunk of 2"):
            stream.prefetch(3)
        with pytest.raises(RuntimeError, match="skip"):
            stream.skip(1)
        assert stream.next_chunk(2)[1] == 2
    with pytest.raises(RuntimeError, match="closed"):
        stream.next_chunk(2)
    stream.close()  # idempotent
    with pytest.raises(TypeError, match="resume by counting batches with skip"):
        BatchStream([np.ones(2)]).restore({})
    with BatchStream([np.ones(2)] * 4) as stream:
        with pytest.raises(ValueError, match=r"next_chunk\(rows=1\) is not allowed"):
            stream.next_chunk(2, rows=1)
    with pytest.raises(ValueError, match=r"epochs=2 needs data that can be iterated"):
        BatchStream(iter([np.ones(2)] * 4), epochs=2)
    with pytest.raises(ValueError, match=r"epochs=0 is not allowed"):
        BatchStream([np.ones(2)], epochs=0)


class SlowLoader:
    """20 ms per batch; records who produced which batch."""

    def __init__(self, count: int):
        self.count = count
        self.produced: list[tuple[int, str]] = []
        self.reached = {i: threading.Event() for i in range(count)}

    def __iter__(self):
        for i in range(self.count):
            time.sleep(0.02)
            self.produced.append((i, threading.current_thread().name))
            self.reached[i].set()
            yield {"x": np.full((2,), i, np.float32)}


def test_prefetch_assembles_the_next_chunk_during_compute():
    loader = SlowLoader(12)
    with BatchStream(loader) as stream:
        chunk, k = stream.next_chunk(4)
        assert len(loader.produced) == 4
        stream.prefetch(4)
        # "compute": the main thread waits; the loader goes on meanwhile.
        assert loader.reached[7].wait(timeout=10)
        assert len(loader.produced) == 8  # the chunk is read before it is asked for
        chunk, k = stream.next_chunk(4)
        assert k == 4 and len(loader.produced) == 8  # and nothing beyond it
        np.testing.assert_array_equal(chunk["x"][:, 0], [4, 5, 6, 7])
        main = threading.current_thread().name
        assert {name for i, name in loader.produced if i < 4} == {main}
        assert {name for i, name in loader.produced if i >= 4} == {
            "jaxopt_lite-BatchStream"
        }


def test_close_while_prefetching_stops_between_batches():
    loader = SlowLoader(50)
    stream = BatchStream(loader)
    stream.prefetch(40)
    assert loader.reached[3].wait(timeout=10)
    stream.close()
    assert len(loader.produced) < 40


def failing(count: int, at: int):
    for i in range(count):
        if i == at:
            raise RuntimeError(f"loader broke at {i}")
        yield {"x": np.full((2,), i)}


@pytest.mark.parametrize("prefetch", [False, True])
def test_iterator_errors_reach_the_caller_with_their_traceback(prefetch):
    with BatchStream(failing(10, 6)) as stream:
        assert stream.next_chunk(4)[1] == 4
        if prefetch:
            stream.prefetch(4)
        with pytest.raises(RuntimeError, match="loader broke at 6") as info:
            stream.next_chunk(4)
    frames = [f.name for f in traceback.extract_tb(info.value.__traceback__)]
    assert "failing" in frames


def test_skip_resumes_by_counting():
    batches = make_batches(9)
    with BatchStream(batches) as stream:
        assert stream.skip(5) == 5 and stream.position == 5
        chunk, k = stream.next_chunk(3)
        assert k == 3
        assert_tree_equal(chunk, stacked(batches[5:8]))
        assert stream.skip(4) == 1


def sample(i):
    return {
        "x": np.sin(np.arange(3, dtype=np.float32) + i),
        "i": np.array([i], np.int32),
    }


@pytest.mark.parametrize("threads", [0, None])
def test_grain_state_restore_continues_bit_identically(threads):
    grain = pytest.importorskip("grain")
    options = grain.ReadOptions()  # a pool of reader threads
    if threads == 0:
        options = grain.ReadOptions(num_threads=0, prefetch_buffer_size=0)

    def dataset():
        shuffled = grain.MapDataset.range(60).shuffle(seed=3).map(sample)
        return shuffled.batch(5).to_iter_dataset(options)

    first = BatchStream(iter(dataset()))
    assert first.resumable and first.len_hint is None
    assert first.state() == {"epoch": 0, "iterator": {"next_index": 0}}
    first.next_chunk(3)
    first.prefetch(3)  # six batches read, three consumed
    state = first.state()
    assert state == {"epoch": 0, "iterator": {"next_index": 3}}
    rest = [first.next_chunk(3)[0] for _ in range(2)]
    first.close()

    second = BatchStream(iter(dataset()))
    second.restore(state, step=3)
    assert second.position == 3
    again = [second.next_chunk(3)[0] for _ in range(2)]
    second.close()
    for a, b in zip(again, rest, strict=True):
        assert_tree_equal(a, jax.tree.map(np.asarray, b))
    # The oracle: batches 3..8 of the shuffled dataset, read directly.
    direct = list(dataset())[3:9]
    assert_tree_equal(again[0], stacked(direct[:3]))
    assert_tree_equal(again[1], stacked(direct[3:]))


def test_global_batch_on_one_process():
    mesh = jax.make_mesh((1,), ("data",))
    local = {"x": np.arange(6.0).reshape(2, 3)}
    placed = global_batch(local, mesh)
    np.testing.assert_array_equal(placed["x"], local["x"])
    assert placed["x"].sharding.spec == jax.sharding.PartitionSpec("data")
    chunk = global_batch({"x": np.ones((3, 2))}, mesh, stacked=True)
    assert chunk["x"].sharding.spec == jax.sharding.PartitionSpec(None, "data")
    with pytest.raises(ValueError, match="axis='batch' is not an axis"):
        global_batch(local, mesh, "batch")
    with pytest.raises(ValueError, match=r"needs a batch axis at position 1"):
        global_batch({"x": np.ones(3)}, mesh, stacked=True)


def reports(tmp_path, calls: list[list[str]], timeout: float) -> list[dict]:
    return processes.reports(HELPER, tmp_path, calls, timeout)


def test_sharded_chunks_on_eight_devices(tmp_path):
    (r,) = reports(tmp_path, [["mesh"]], timeout=120)
    assert r["devices"] == 8
    assert (r["k"], r["shape"], r["spec"]) == (4, [4, 16, 3], "P(None, 'data')")
    assert r["shards"] == [[4, 2, 3]] * 8 and r["max_diff"] == 0.0
    assert r["rest_k"] == 1 and r["rest_shards"] == [[4, 2]] * 8  # padded rows
    # ("runs", "data") = (2, 4): split 4 ways, copied over "runs".
    assert r["grid_spec"] == "P(None, 'data')" and r["grid_shards"] == [[2, 4, 3]] * 8
    assert r["global_spec"] == "P('data',)" and r["global_shards"] == [[2, 3]] * 8
    assert r["global_diff"] == 0.0
    assert r["error_split"].startswith(
        "data: the local batch has 12 examples, which cannot be split evenly over "
        "this process's 8 devices"
    )


def test_two_processes_assemble_one_global_batch(tmp_path):
    port = processes.free_port()
    both = reports(
        tmp_path,
        [["distributed", "0", port], ["distributed", "1", port]],
        timeout=60,
    )
    # The helper's data: batch i of process p is 1000 i + 100 p + arange(12).
    parts = []
    for p in (0, 1):
        xs = [np.arange(12.0).reshape(4, 3) + 1000 * i + 100 * p for i in range(3)]
        parts.append([{"x": x, "y": x.sum(axis=1)} for x in xs])
    want_x = [np.concatenate([parts[0][i]["x"], parts[1][i]["x"]]) for i in range(3)]
    want_sum = sum(float(b["x"].sum() + b["y"].sum()) for p in parts for b in p)
    first_sum = sum(float(p[0]["x"].sum() + p[0]["y"].sum()) for p in parts)
    for process, r in enumerate(both):
        assert (r["process"], r["devices"], r["local_devices"]) == (process, 4, 2)
        assert r["global_shape"] == [8, 3] and r["spec_shape"] == [8, 3]
        assert r["global_sum"] == first_sum
        np.testing.assert_array_equal(r["global_x"], want_x[0])
        assert (r["chunk_k"], r["chunk_shape"]) == (3, [3, 8, 3])
        assert r["chunk_spec"] == "P(None, 'data')"
        assert r["chunk_sum"] == want_sum
        np.testing.assert_array_equal(r["chunk_x"], np.stack(want_x))


def test_two_processes_fit_like_one_process_on_the_same_global_batches(tmp_path):
    from streams_helper import fit_data, fit_loss

    import jaxopt_lite as jol

    port = processes.free_port()
    folder = str(tmp_path / "run")
    both = reports(
        tmp_path, [["fit", str(p), port, folder] for p in (0, 1)], timeout=120
    )
    data = fit_data()
    params = {"w": np.zeros(3, np.float32), "b": np.zeros((), np.float32)}
    memory = jol.fit(
        fit_loss, params, jol.adam(0.05), data, steps=12, batch_size=16,
        key=jax.random.key(4), log_every=4,
    )  # fmt: skip
    batches = [{k: a[16 * i : 16 * i + 16] for k, a in data.items()} for i in range(4)]
    streamed = jol.fit(fit_loss, params, jol.adam(0.05), batches, epochs=2)
    for r in both:  # the same numbers on both processes, as on one
        np.testing.assert_allclose(r["memory_w"], memory.params["w"], rtol=1e-5)
        np.testing.assert_allclose(r["memory_loss"], memory.history["loss"], rtol=1e-5)
        np.testing.assert_allclose(r["stream_w"], streamed.params["w"], rtol=1e-5)
        np.testing.assert_allclose(
            r["stream_loss"], streamed.history["loss"], rtol=1e-5
        )
    like = {"w": np.zeros(3, np.float32), "b": np.zeros((), np.float32)}
    saved = jol.fit(
        fit_loss, like, jol.adam(0.05), data, steps=12, batch_size=16,
        key=jax.random.key(4), log_every=4, checkpoint_dir=folder, resume=True,
    )  # fmt: skip
    assert saved.step == 12  # written once, by process 0, and complete
    np.testing.assert_allclose(saved.params["w"], memory.params["w"], rtol=1e-5)

    # FSDP: mesh (2, 2) ("data", "model"), "model" inside each process
    from streams_helper import fsdp_loss, fsdp_params, fsdp_settings

    alone = jol.fit(fsdp_loss, fsdp_params(), jol.adam(0.01, eps=1e-3), data,
                    **fsdp_settings())  # fmt: skip
    for r in both:
        assert r["fsdp_mesh_processes"] == [[0, 0], [1, 1]]
        assert r["fsdp_spec"] == "P(None, 'model')"
        assert r["fsdp_local_shape"] == [3, 4096]  # half of w1 on each device
        for name in ("w1", "w2"):
            want = alone.params[name]
            error = np.max(np.abs(np.asarray(r[f"fsdp_{name}"]) - want))
            assert error <= 2e-5 * np.max(np.abs(want)), name
        np.testing.assert_allclose(r["fsdp_loss"], alone.history["loss"], rtol=2e-6)
    # (checkpoints of states split across processes go through Orbax:
    # tests/test_checkpoint_orbax.py resumes one in two fresh processes)
