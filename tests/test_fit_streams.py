"""fit on streams of batches: the same numbers as in-memory data, every feature
of fit, resuming, and the errors a stream can meet."""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from helpers import count_compiles

import jaxopt_lite as jol

RNG = np.random.default_rng(0)
X = RNG.normal(size=(96, 3)).astype(np.float32)
Y = (X @ np.array([1.0, -2.0, 0.5], np.float32) + 0.3).astype(np.float32)
DATA = {"x": X, "y": Y}
BATCHES = [{"x": X[i : i + 8], "y": Y[i : i + 8]} for i in range(0, 96, 8)]
PARAMS = {"w": jnp.zeros(3), "b": jnp.zeros(())}
OPT = optax.adam(0.05)


def loss_fn(p, batch):
    return jnp.mean((batch["x"] @ p["w"] + p["b"] - batch["y"]) ** 2)


def generate(batches):
    yield from batches


def in_order(**kwargs):
    """The in-memory run that walks DATA in order: the stream's oracle."""
    return jol.fit(
        loss_fn, PARAMS, OPT, DATA, batch_size=8, shuffle=False, **kwargs
    )  # fmt: skip


def assert_same(a, b):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


@pytest.mark.parametrize(
    "source", [list, generate, iter], ids=["list", "generator", "iterator"]
)
@pytest.mark.parametrize("chunk_size", [None, 5])
def test_a_stream_gives_the_numbers_of_in_memory_data_in_order(source, chunk_size):
    streamed = jol.fit(
        loss_fn, PARAMS, OPT, source(BATCHES), steps=12, log_every=5,
        chunk_size=chunk_size,
    )  # fmt: skip
    memory = in_order(steps=12, log_every=5)
    assert streamed.step == 12
    assert_same(streamed.params, memory.params)
    assert_same(streamed.opt_state, memory.opt_state)
    assert streamed.history.keys() == memory.history.keys()
    for k in memory.history:
        np.testing.assert_array_equal(streamed.history[k], memory.history[k])
    assert streamed.history["step"].tolist() == [5, 10, 12]


def test_epochs_iterate_a_loader_again_and_float64_stays_float64():
    with jax.enable_x64(True):
        batches = [jax.tree.map(lambda a: a.astype(np.float64), b) for b in BATCHES]
        params = jax.tree.map(lambda a: a.astype(jnp.float64), PARAMS)
        streamed = jol.fit(loss_fn, params, optax.sgd(0.05), batches, epochs=3)
        data = jax.tree.map(lambda a: a.astype(np.float64), DATA)
        memory = jol.fit(
            loss_fn, params, optax.sgd(0.05), data, epochs=3, batch_size=8,
            shuffle=False,
        )  # fmt: skip
    assert streamed.step == 36 and streamed.params["w"].dtype == jnp.float64
    assert streamed.history["loss"].dtype == np.float64
    assert_same(streamed.params, memory.params)
    np.testing.assert_array_equal(streamed.history["loss"], memory.history["loss"])


def test_a_short_last_batch_is_dropped_each_epoch_or_refused():
    short = [*BATCHES[:4], {"x": X[:3], "y": Y[:3]}]
    result = jol.fit(loss_fn, PARAMS, OPT, short, epochs=2, log_every=3)
    assert result.step == 8 and result.history["step"].tolist() == [3, 6, 8]
    with pytest.raises(ValueError, match=r"batch 4 of data, the last, has 3 examples"):
        jol.fit(loss_fn, PARAMS, OPT, short, epochs=1, drop_remainder=False)


def test_a_stream_ending_at_a_chunk_boundary_still_writes_its_last_row():
    with pytest.warns(RuntimeWarning, match=r"data ran out after 6 batches"):
        result = jol.fit(
            loss_fn, PARAMS, OPT, generate(BATCHES[:6]), steps=20, log_every=4,
            chunk_size=3,
        )  # fmt: skip
    assert result.step == 6 and result.history["step"].tolist() == [4, 6]
    memory = in_order(steps=6, log_every=4)
    np.testing.assert_array_equal(result.history["loss"], memory.history["loss"])


def test_state_step_keys_eval_and_callbacks_work_on_streams():
    def stateful(p, s, batch, key):
        noise = 1e-3 * jax.random.normal(key, ())
        return loss_fn(p, batch) + noise, {"seen": s["seen"] + batch["x"].shape[0]}

    seen = []

    class Record(jol.Callback):
        def on_chunk(self, rows, *, step, elapsed):
            seen.append(step)

    def run(source, **kwargs):
        return jol.fit(
            stateful, PARAMS, OPT, source, state={"seen": jnp.zeros((), jnp.int32)},
            step_key=True, key=jax.random.key(3), eval_fn=lambda p, s, d: loss_fn(p, d),
            eval_data=DATA, eval_every=4, **kwargs,
        )  # fmt: skip

    streamed = run(generate(BATCHES), steps=12, chunk_size=5, callbacks=[Record()])
    memory = run(DATA, steps=12, batch_size=8, shuffle=False)
    assert seen == [5, 10, 12]
    assert int(streamed.state["seen"]) == 96
    assert_same(streamed.params, memory.params)
    assert streamed.history["eval_step"].tolist() == [4, 8, 12]
    np.testing.assert_array_equal(
        streamed.history["eval_loss"], memory.history["eval_loss"]
    )


def test_nan_batches_are_skipped_in_streams_too():
    bad = [dict(b) for b in BATCHES]
    bad[3] = {"x": np.full_like(X[:8], np.nan), "y": Y[:8]}
    result = jol.fit(loss_fn, PARAMS, OPT, bad, steps=12)
    assert result.skipped == 1 and result.history["skipped"].tolist()[3] == 1
    assert np.isfinite(np.asarray(result.params["w"])).all()


def test_a_mismatched_batch_names_its_step_and_keeps_the_finished_work(tmp_path):
    batches = [dict(b) for b in BATCHES]
    batches[7] = {"x": X[:8, :2], "y": Y[:8]}
    with pytest.raises(ValueError, match=r"batch 7 of data: leaf \['x'\] has shape"):
        jol.fit(
            loss_fn, PARAMS, OPT, generate(batches), steps=12, chunk_size=3,
            checkpoint_dir=tmp_path,
        )  # fmt: skip
    assert jol.has_checkpoint(tmp_path)  # the chunks before the bad one: saved
    resumed = jol.fit(
        loss_fn, PARAMS, OPT, BATCHES, steps=12, chunk_size=3,
        checkpoint_dir=tmp_path, resume="skip",
    )  # fmt: skip
    assert_same(resumed.params, in_order(steps=12).params)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"steps": 4, "batch_size": 8}, ValueError, "batch_size=8 cannot be used"),
        ({"steps": 4, "shuffle": True}, ValueError, "shuffle=True cannot be used"),
        ({"steps": 4, "replace": True}, ValueError, "replace=True cannot be used"),
        ({"epochs": 2, "data": "gen"}, ValueError, "epochs=2 needs data that can"),
        ({"steps": 4, "drop_remainder": 1}, TypeError, "drop_remainder must be"),
        (
            {"steps": 4, "eval_fn": lambda p, d: 0.0 * p["b"], "data": "gen"},
            ValueError,
            "eval_fn needs eval_every= with a stream without a length",
        ),
        (
            {"steps": 4, "early_stopping": jol.EarlyStopping(), "data": "gen"},
            ValueError,
            "monitor='loss' checks once per epoch",
        ),
        ({"steps": 4, "resume": "yes"}, TypeError, "resume must be"),
    ],
)
def test_stream_arguments_are_checked(kwargs, error, match):
    kwargs = dict(kwargs)
    data = generate(BATCHES) if kwargs.pop("data", None) == "gen" else BATCHES
    with pytest.raises(error, match=match):
        jol.fit(loss_fn, PARAMS, OPT, data, **kwargs)


def test_epochs_need_a_length_and_skip_needs_a_stream():
    class Endless:
        def __iter__(self):
            while True:
                yield BATCHES[0]

    with pytest.raises(ValueError, match=r"epochs=1 needs a stream with a length"):
        jol.fit(loss_fn, PARAMS, OPT, Endless(), epochs=1)
    result = jol.fit(loss_fn, PARAMS, OPT, Endless(), steps=5)
    assert result.step == 5
    with pytest.raises(ValueError, match=r"resume='skip' .* needs data to be a stream"):
        jol.fit(loss_fn, PARAMS, OPT, DATA, steps=4, batch_size=8, resume="skip")
    with pytest.raises(ValueError, match="drop_remainder=False is for streams"):
        jol.fit(loss_fn, PARAMS, OPT, DATA, steps=4, batch_size=8, drop_remainder=False)


def test_resuming_a_stream_without_state_is_refused_or_skips_ahead(tmp_path):
    first = jol.fit(
        loss_fn, PARAMS, OPT, generate(BATCHES[:5]), steps=5, checkpoint_dir=tmp_path
    )
    assert first.step == 5
    with pytest.raises(ValueError, match="cannot resume: the data iterator has no"):
        jol.fit(
            loss_fn, PARAMS, OPT, generate(BATCHES), steps=12,
            checkpoint_dir=tmp_path, resume=True,
        )  # fmt: skip
    resumed = jol.fit(
        loss_fn, PARAMS, OPT, generate(BATCHES), steps=12, checkpoint_dir=tmp_path,
        resume="skip",
    )  # fmt: skip
    straight = in_order(steps=12)
    assert_same(resumed.params, straight.params)
    np.testing.assert_array_equal(resumed.history["loss"], straight.history["loss"])


def test_a_grain_stream_resumes_bit_identically(tmp_path):
    grain = pytest.importorskip("grain")

    def loader():
        source = grain.MapDataset.range(96).shuffle(seed=5)
        batches = source.map(lambda i: {"x": X[i], "y": Y[i]}).batch(8)
        options = grain.ReadOptions(num_threads=0, prefetch_buffer_size=0)
        return iter(batches.to_iter_dataset(options))

    class StopAt(jol.Callback):
        def on_chunk(self, rows, *, step, elapsed):
            if step >= 6:
                raise KeyboardInterrupt

    cut = jol.fit(
        loss_fn, PARAMS, OPT, loader(), steps=12, chunk_size=3,
        checkpoint_dir=tmp_path, callbacks=[StopAt()],
    )  # fmt: skip
    assert cut.interrupted and cut.step == 6
    resumed = jol.fit(
        loss_fn, PARAMS, OPT, loader(), steps=12, chunk_size=3,
        checkpoint_dir=tmp_path, resume=True,
    )  # fmt: skip
    straight = jol.fit(loss_fn, PARAMS, OPT, loader(), steps=12, chunk_size=3)
    assert resumed.step == 12
    assert_same(resumed.params, straight.params)
    np.testing.assert_array_equal(resumed.history["loss"], straight.history["loss"])


def test_resuming_an_in_memory_checkpoint_with_a_stream_is_refused(tmp_path):
    in_order(steps=4, checkpoint_dir=tmp_path)
    with pytest.raises(ValueError, match="written with stream=False"):
        jol.fit(
            loss_fn, PARAMS, OPT, BATCHES, steps=8, checkpoint_dir=tmp_path,
            resume=True,
        )  # fmt: skip


def test_the_stream_reuses_one_compiled_chunk():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # generate runs out
        jol.fit(loss_fn, PARAMS, OPT, BATCHES, steps=11, chunk_size=4)
        # a last chunk of 3 (11 = 4 + 4 + 3), another length, another stream
        with count_compiles() as compiles:
            jol.fit(loss_fn, PARAMS, OPT, generate(BATCHES), steps=10, chunk_size=4)
            jol.fit(loss_fn, PARAMS, OPT, BATCHES[:6], steps=10, chunk_size=4)
    assert sum(compiles.values()) == 0, compiles
