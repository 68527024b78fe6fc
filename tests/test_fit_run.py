"""fit: model state, step keys, exact evaluation steps, partial rows, paced
chunks, callbacks, Ctrl-C, and the checks added with them."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxopt_lite as jol
from jaxopt_lite._loop import chunk as _chunk
from jaxopt_lite._loop import train as _loop

KEY = jax.random.key(0)
X = jax.random.normal(jax.random.key(1), (96, 3))
DATA = {"x": X, "y": X @ jnp.array([1.0, -2.0, 0.5]) + 0.3}
PARAMS = {"w": jnp.zeros(3), "b": jnp.zeros(())}
OPT = optax.sgd(0.1)


def loss_fn(p, batch):
    return jnp.mean((batch["x"] @ p["w"] + p["b"] - batch["y"]) ** 2)


def same(a, b):
    return all(jax.tree.leaves(jax.tree.map(lambda x, y: bool((x == y).all()), a, b)))


def stateful(p, s, batch):
    """A running mean of the targets (like batch-norm statistics): state."""
    mean = 0.9 * s["mean"] + 0.1 * jnp.mean(batch["y"])
    return loss_fn(p, batch), {"mean": mean, "count": s["count"] + 1}


STATE = {"mean": jnp.zeros(()), "count": jnp.zeros((), jnp.int32)}


def test_model_state_is_carried_and_never_differentiated():
    result = jol.fit(
        stateful, PARAMS, OPT, DATA, state=STATE, steps=7, batch_size=32,
        shuffle=False,
    )  # fmt: skip
    p, s = PARAMS, STATE
    for i in range(7):
        batch = jax.tree.map(lambda x, i=i: x[(i % 3) * 32 : (i % 3) * 32 + 32], DATA)
        g = jax.grad(loss_fn)(p, batch)
        s = stateful(p, s, batch)[1]
        p = jax.tree.map(lambda a, b: a - 0.1 * b, p, g)
    np.testing.assert_allclose(result.params["w"], p["w"], rtol=1e-6)
    np.testing.assert_allclose(result.state["mean"], s["mean"], rtol=1e-6)
    assert int(result.state["count"]) == 7 and result.state["count"].dtype == jnp.int32


def test_model_state_checkpoint_resume_and_eval_and_restore_best(tmp_path):
    def eval_fn(p, s, d):
        return {"mse": loss_fn(p, d), "mean": s["mean"]}

    kw = dict(
        state=STATE, batch_size=16, key=KEY, chunk_size=6, eval_fn=eval_fn,
        eval_data=DATA, eval_every=6,
    )  # fmt: skip
    full = jol.fit(stateful, PARAMS, OPT, DATA, steps=36, **kw)
    jol.fit(stateful, PARAMS, OPT, DATA, steps=18, checkpoint_dir=tmp_path, **kw)
    resumed = jol.fit(
        stateful, PARAMS, OPT, DATA, steps=36, checkpoint_dir=tmp_path, resume=True,
        **kw,
    )  # fmt: skip
    assert same(full.state, resumed.state) and same(full.params, resumed.params)
    np.testing.assert_array_equal(
        full.history["eval_mean"], resumed.history["eval_mean"]
    )
    # eval_fn sees the state of its step: the running mean after 6, 12, ... steps.
    assert full.history["eval_step"].tolist() == [6, 12, 18, 24, 30, 36]
    # restore_best returns the state of the best check with its parameters.
    stop = jol.EarlyStopping(patience=1, monitor="mse", mode="max")
    best = jol.fit(stateful, PARAMS, OPT, DATA, steps=36, early_stopping=stop, **kw)
    assert best.best_step == 6 and best.stopped_early
    np.testing.assert_allclose(best.state["mean"], best.history["eval_mean"][0])
    assert int(best.state["count"]) == 6


def test_step_key_is_fresh_deterministic_and_independent_of_chunking(tmp_path):
    def noisy(p, batch, key):
        noise = jax.random.normal(key, batch["y"].shape)
        loss = jnp.mean((batch["x"] @ p["w"] + p["b"] - batch["y"] - noise) ** 2)
        return loss, {"u": jax.random.uniform(key)}

    kw = dict(steps=24, batch_size=16, step_key=True, has_aux=True)
    a = jol.fit(noisy, PARAMS, OPT, DATA, key=KEY, **kw)
    # chunks of 4: the program of the resumed runs below (one compile fewer)
    b = jol.fit(noisy, PARAMS, OPT, DATA, key=KEY, chunk_size=4, **kw)
    c = jol.fit(noisy, PARAMS, OPT, DATA, key=jax.random.key(3), **kw)
    assert same(a.params, b.params) and not same(a.params, c.params)
    np.testing.assert_array_equal(a.history["u"], b.history["u"])
    expected = [jax.random.uniform(_loop.step_key(KEY, s)) for s in range(24)]
    np.testing.assert_array_equal(a.history["u"], np.array(expected, np.float32))
    assert len(set(a.history["u"].tolist())) == 24
    jol.fit(noisy, PARAMS, OPT, DATA, key=KEY, chunk_size=4, checkpoint_dir=tmp_path,
            **dict(kw, steps=12))  # fmt: skip
    resumed = jol.fit(noisy, PARAMS, OPT, DATA, key=KEY, chunk_size=4,
                      checkpoint_dir=tmp_path, resume=True, **kw)  # fmt: skip
    assert same(a.params, resumed.params)


def test_last_row_may_be_partial():
    full = jol.fit(loss_fn, PARAMS, OPT, DATA, steps=17, batch_size=8, key=KEY)
    thin = jol.fit(
        loss_fn, PARAMS, OPT, DATA, steps=17, batch_size=8, key=KEY, log_every=5
    )
    assert thin.history["step"].tolist() == [5, 10, 15, 17]
    means = [full.history["loss"][a:b].mean() for a, b in [(0, 5), (5, 10), (10, 15)]]
    means.append(full.history["loss"][15:].mean())
    np.testing.assert_allclose(thin.history["loss"], means, rtol=1e-6)
    assert same(full.params, thin.params)


@pytest.mark.parametrize(
    ("eval_every", "log_every", "expected"),
    [(5, 60, list(range(5, 61, 5))), (15, 10, [15, 30, 45, 60])],
)
def test_evaluation_at_every_multiple_of_eval_every(eval_every, log_every, expected):
    result = jol.fit(
        loss_fn, PARAMS, OPT, DATA, steps=60, batch_size=8, key=KEY,
        eval_fn=lambda p, d: {"mse": loss_fn(p, d)}, eval_data=DATA,
        eval_every=eval_every, log_every=log_every,
    )  # fmt: skip
    assert result.history["eval_step"].tolist() == expected
    at = jol.fit(loss_fn, PARAMS, OPT, DATA, steps=expected[1], batch_size=8, key=KEY)
    np.testing.assert_allclose(
        result.history["eval_mse"][1], loss_fn(at.params, DATA), rtol=1e-6
    )


def test_the_pacer_measures_one_row_then_sizes_chunks_by_rate():
    from jaxopt_lite._host.feeds import ArrayFeed

    feed = ArrayFeed(None, total=9000, unit=3, cap=3000, fixed=False)
    assert (feed.size, feed.ahead) == (3, False)  # one row, measured alone
    feed.observe(3, 0.002)  # 1,500 steps/s: 1,500 steps in a second
    assert (feed.size, feed.ahead) == (1500, True)
    feed.observe(1500, 0.25)  # faster than that: as large as the buffers allow
    assert feed.size == 3000
    feed.observe(3000, 4.0)  # 4 s: back to a second's worth, whole rows
    assert feed.size == 750
    feed.observe(750, 1000.0)  # never below one row
    assert feed.size == 3
    fixed = ArrayFeed(None, total=9000, unit=3, cap=3000, fixed=True)
    fixed.observe(3000, 100.0)
    assert (fixed.size, fixed.ahead) == (3000, True)


def test_paced_chunks_start_from_one_row_and_do_not_change_results():
    class Steps(jol.Callback):
        def __init__(self):
            self.steps, self.ended = [], None

        def on_chunk(self, rows, *, step, elapsed):
            self.steps.append(step)

        def on_end(self, result):
            self.ended = result.step

    seen = Steps()
    kw = dict(steps=300, batch_size=8, key=KEY, log_every=3)
    paced = jol.fit(loss_fn, PARAMS, OPT, DATA, callbacks=[seen], **kw)
    fixed = jol.fit(loss_fn, PARAMS, OPT, DATA, chunk_size=300, **kw)
    assert seen.steps[0] == 3 and seen.steps[-1] == 300 and seen.ended == 300
    assert seen.steps == sorted(seen.steps) and len(seen.steps) >= 2
    assert same(paced.params, fixed.params)
    for k in fixed.history:
        np.testing.assert_array_equal(paced.history[k], fixed.history[k])


def test_ctrl_c_in_a_callback_keeps_the_chunks_every_callback_saw(tmp_path):
    class Interrupt(jol.Callback):
        def __init__(self):
            self.calls = 0

        def on_chunk(self, rows, *, step, elapsed):
            assert not jol.has_checkpoint(tmp_path)  # callbacks run first
            self.calls += 1
            if self.calls == 2:
                raise KeyboardInterrupt

    result = jol.fit(
        loss_fn, PARAMS, OPT, DATA, steps=100, batch_size=8, key=KEY,
        callbacks=[Interrupt()], checkpoint_dir=tmp_path, log_every=4,
    )  # fmt: skip
    # The result holds both chunks; the checkpoint only the first: the second
    # was not seen by every callback, and a resumed run shows it to them.
    assert result.interrupted and result.step > 4
    straight = jol.fit(
        loss_fn, PARAMS, OPT, DATA, steps=result.step, batch_size=8, key=KEY
    )
    assert same(straight.params, result.params)
    resumed = jol.fit(
        loss_fn, PARAMS, OPT, DATA, steps=8, batch_size=8, key=KEY,
        checkpoint_dir=tmp_path, resume=True, log_every=4,
    )  # fmt: skip
    assert resumed.history["step"].tolist() == [4, 8]


def test_ctrl_c_before_any_chunk_returns_every_history_key():
    calls = []

    def interrupted(p, b):
        calls.append(1)
        if len(calls) > 1:  # the first trace is fit's own check
            raise KeyboardInterrupt
        return loss_fn(p, b), {"twice": 2 * loss_fn(p, b)}

    result = jol.fit(
        interrupted, PARAMS, OPT, DATA, steps=10, has_aux=True,
        eval_fn=lambda p, d: loss_fn(p, d), eval_data=DATA,
    )  # fmt: skip
    assert result.interrupted and result.step == 0
    assert sorted(result.history) == sorted(
        ["step", "loss", "grad_norm", "skipped", "twice", "eval_step", "eval_loss"]
    )
    assert all(v.shape == (0,) for v in result.history.values())
    assert same(result.params, PARAMS)


def test_a_raising_callback_stops_the_run_with_its_work_and_warns():
    class Broken(jol.Callback):
        def __init__(self):
            self.calls, self.closed = 0, False

        def on_chunk(self, rows, *, step, elapsed):
            self.calls += 1
            if self.calls == 2:
                raise OSError("disk full")

        def close(self):
            self.closed = True

    broken = Broken()
    with pytest.warns(RuntimeWarning, match="Broken.on_chunk raised OSError"):
        result = jol.fit(
            loss_fn, PARAMS, OPT, DATA, steps=40, batch_size=8, key=KEY,
            chunk_size=10, callbacks=[broken],
        )  # fmt: skip
    assert result.error == "Broken.on_chunk raised OSError: disk full"
    assert result.step == 20 and len(result.history["loss"]) == 20 and broken.closed


def test_every_step_nonfinite_warns_and_counts():
    with pytest.warns(RuntimeWarning, match="every one of the 6 steps"):
        result = jol.fit(lambda p, b: jnp.nan * loss_fn(p, b), PARAMS, OPT, DATA,
                         steps=6, batch_size=8)  # fmt: skip
    assert result.skipped == 6 and same(result.params, PARAMS)


@pytest.mark.parametrize(
    ("stop", "error", "match"),
    [
        (jol.EarlyStopping(min_delta=float("inf")), ValueError, "min_delta=inf"),
        (jol.EarlyStopping(restore_best="yes"), TypeError, "restore_best"),
        (jol.EarlyStopping(monitor=None), TypeError, "monitor must be .* got None"),
    ],
)
def test_early_stopping_settings_are_checked(stop, error, match):
    with pytest.raises(error, match=match):
        jol.fit(loss_fn, PARAMS, OPT, DATA, steps=4, early_stopping=stop)


def test_resume_refuses_fewer_steps_and_changed_history_columns(tmp_path):
    def eval_fn(p, d):
        return {"mse": loss_fn(p, d)}

    kw = dict(batch_size=8, key=KEY, checkpoint_dir=tmp_path)
    jol.fit(loss_fn, PARAMS, OPT, DATA, steps=12, eval_fn=eval_fn, eval_data=DATA, **kw)
    with pytest.raises(ValueError, match="at step 12, beyond the 8 steps"):
        jol.fit(loss_fn, PARAMS, OPT, DATA, steps=8, resume=True, eval_fn=eval_fn,
                eval_data=DATA, **kw)  # fmt: skip
    with pytest.raises(ValueError, match=r"history columns.*eval_fn or has_aux"):
        jol.fit(loss_fn, PARAMS, OPT, DATA, steps=24, resume=True, **kw)

    def with_aux(p, b):
        return loss_fn(p, b), {"twice": 2 * loss_fn(p, b)}

    with pytest.raises(ValueError, match="history columns"):
        jol.fit(with_aux, PARAMS, OPT, DATA, steps=24, resume=True, has_aux=True,
                eval_fn=eval_fn, eval_data=DATA, **kw)  # fmt: skip


def test_state_and_loss_fn_outputs_are_checked():
    with pytest.raises(TypeError, match=r"\(loss, new_state\)"):
        jol.fit(lambda p, s, b: loss_fn(p, b), PARAMS, OPT, DATA, state=STATE, steps=1)
    with pytest.raises(TypeError, match="structure, shapes and dtypes of state"):
        jol.fit(lambda p, s, b: (loss_fn(p, b), {"mean": s["mean"]}), PARAMS, OPT,
                DATA, state=STATE, steps=1)  # fmt: skip
    with pytest.raises(TypeError, match="callbacks must be a list"):
        jol.fit(loss_fn, PARAMS, OPT, DATA, steps=1, callbacks=jol.Callback())


def test_the_next_boundary_never_overflows_int32():
    from types import SimpleNamespace

    cfg = SimpleNamespace(log_every=1000, eval=None, stop=None)
    last = jnp.int32(2**31 - 1)
    assert int(_chunk._next_boundary(cfg, jnp.int32(2147483000), last)) == 2**31 - 1
    assert int(_chunk._next_boundary(cfg, jnp.int32(1500), jnp.int32(5000))) == 2000
