"""fit: sampling, determinism, chunking, NaN guard, early stopping, eval,
checkpoints and resume, Ctrl-C, compile reuse, validation."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxopt_lite as jol
from jaxopt_lite._host import pipeline as _fit

KEY = jax.random.key(0)
X = jax.random.normal(jax.random.key(1), (96, 3))
W_TRUE = jnp.array([1.0, -2.0, 0.5])
DATA = {"x": X, "y": X @ W_TRUE + 0.3}
PARAMS = {"w": jnp.zeros(3), "b": jnp.zeros(())}


def loss_fn(p, batch):
    return jnp.mean((batch["x"] @ p["w"] + p["b"] - batch["y"]) ** 2)


OPT = optax.sgd(0.1)


def same(a, b):
    return all(jax.tree.leaves(jax.tree.map(lambda x, y: bool((x == y).all()), a, b)))


def test_fits_linear_regression_and_records_history():
    result = jol.fit(loss_fn, PARAMS, OPT, DATA, epochs=30, batch_size=16, key=KEY)
    np.testing.assert_allclose(result.params["w"], W_TRUE, atol=1e-4)
    np.testing.assert_allclose(result.params["b"], 0.3, atol=1e-4)
    assert result.step == 30 * 6
    h = result.history
    assert h["loss"].shape == h["grad_norm"].shape == h["step"].shape == (180,)
    np.testing.assert_array_equal(h["step"], np.arange(1, 181))
    assert h["loss"][-1] < 1e-8 < h["loss"][0]
    assert h["skipped"].sum() == 0


def test_batch_loss_matches_manual_sgd_in_order():
    # shuffle=False walks the data in order: replay it by hand.
    result = jol.fit(loss_fn, PARAMS, OPT, DATA, steps=7, batch_size=32, shuffle=False)
    p = PARAMS
    for s in range(7):
        start = (s % 3) * 32
        batch = jax.tree.map(lambda x, i=start: x[i : i + 32], DATA)
        g = jax.grad(loss_fn)(p, batch)
        p = jax.tree.map(lambda a, b: a - 0.1 * b, p, g)
    np.testing.assert_allclose(result.params["w"], p["w"], rtol=1e-6)


def test_full_batch_is_gradient_descent_and_matches_minimize():
    result = jol.fit(loss_fn, PARAMS, OPT, DATA, steps=50)
    direct = jol.minimize(lambda p: loss_fn(p, DATA), PARAMS, OPT, steps=50)
    np.testing.assert_allclose(result.params["w"], direct.params["w"], rtol=1e-6)


def test_same_key_is_bit_identical_and_other_key_differs():
    kw = dict(epochs=3, batch_size=8)
    a = jol.fit(loss_fn, PARAMS, OPT, DATA, key=KEY, **kw)
    b = jol.fit(loss_fn, PARAMS, OPT, DATA, key=KEY, **kw)
    c = jol.fit(loss_fn, PARAMS, OPT, DATA, key=jax.random.key(5), **kw)
    assert same(a.params, b.params)
    assert not same(a.params, c.params)
    d = jol.fit(loss_fn, PARAMS, OPT, DATA, key=KEY, replace=True, **kw)
    assert not same(a.params, d.params)


def test_chunking_does_not_change_results():
    kw = dict(epochs=4, batch_size=8, key=KEY, log_every=4)
    one = jol.fit(loss_fn, PARAMS, OPT, DATA, **kw)
    many = jol.fit(loss_fn, PARAMS, OPT, DATA, chunk_size=20, **kw)  # 48 steps
    assert same(one.params, many.params)
    for k in one.history:
        np.testing.assert_array_equal(one.history[k], many.history[k])
    assert one.history["loss"].shape == (12,)


def test_log_every_averages_windows():
    # 4 epochs: the programs of the runs above (same chunk capacities)
    full = jol.fit(loss_fn, PARAMS, OPT, DATA, epochs=4, batch_size=8, key=KEY)
    thin = jol.fit(
        loss_fn, PARAMS, OPT, DATA, epochs=4, batch_size=8, key=KEY, log_every=4
    )
    np.testing.assert_allclose(
        thin.history["loss"], full.history["loss"].reshape(12, 4).mean(1), rtol=1e-6
    )
    np.testing.assert_array_equal(thin.history["step"], np.arange(4, 49, 4))


def test_learning_rate_history_from_schedule():
    opt = optax.inject_hyperparams(optax.sgd)(
        learning_rate=optax.exponential_decay(0.1, 1, 0.5)
    )
    result = jol.fit(loss_fn, PARAMS, opt, DATA, steps=4)
    # The rate recorded is the one each step used.
    np.testing.assert_allclose(
        result.history["learning_rate"], 0.1 * 0.5 ** np.arange(4)
    )


def test_nonfinite_steps_are_skipped_and_counted():
    def spiky(p, batch):
        bad = jnp.any(batch["i"] == 5)
        return loss_fn(p, batch) * jnp.where(bad, jnp.nan, 1.0)

    data = dict(DATA, i=jnp.arange(96))
    result = jol.fit(spiky, PARAMS, OPT, data, epochs=5, batch_size=8, key=KEY)
    assert result.history["skipped"].sum() == 5  # once per epoch
    assert all(np.isfinite(x).all() for x in jax.tree.leaves(result.params))
    assert np.isnan(result.history["loss"]).sum() == 5  # windows with only NaN steps
    unguarded = jol.fit(
        spiky, PARAMS, OPT, data, epochs=5, batch_size=8, key=KEY, skip_nonfinite=False
    )
    assert np.isnan(unguarded.params["w"]).all()


def test_eval_and_early_stopping_inside_the_loop():
    def eval_fn(p, d):
        return {"mse": loss_fn(p, d), "neg": -loss_fn(p, d)}

    stop = jol.EarlyStopping(patience=2, min_delta=1e-3, monitor="mse")
    result = jol.fit(
        loss_fn,
        PARAMS,
        OPT,
        DATA,
        epochs=100,
        batch_size=16,
        key=KEY,
        eval_fn=eval_fn,
        eval_data=DATA,
        eval_every=12,
        early_stopping=stop,
        chunk_size=60,
    )
    h = result.history
    assert result.stopped_early
    np.testing.assert_array_equal(h["eval_step"], np.arange(12, result.step + 1, 12))
    np.testing.assert_allclose(h["eval_neg"], -h["eval_mse"])
    improved = np.flatnonzero(np.diff(np.r_[np.inf, h["eval_mse"]]) < -1e-3)
    # best = last improvement, stop = two checks later.
    assert result.best_step == h["eval_step"][improved[-1]]
    assert result.step == result.best_step + 2 * 12
    np.testing.assert_allclose(
        float(loss_fn(result.params, DATA)), h["eval_mse"][improved[-1]], rtol=1e-6
    )


def test_early_stopping_max_mode_on_training_loss_per_epoch():
    def neg_loss(p, d):
        return -loss_fn(p, d)

    stop = jol.EarlyStopping(
        patience=1, monitor="score", mode="max", restore_best=False
    )
    result = jol.fit(
        loss_fn,
        PARAMS,
        optax.sgd(0.0),
        DATA,
        epochs=10,
        batch_size=16,
        eval_fn=lambda p, d: {"score": neg_loss(p, d)},
        eval_data=DATA,
        early_stopping=stop,
    )
    # Learning rate 0: the score never improves after the first check.
    assert result.stopped_early and result.best_step == 6 and result.step == 12

    stop = jol.EarlyStopping(patience=2, monitor="loss")
    result = jol.fit(
        loss_fn,
        PARAMS,
        optax.sgd(0.0),
        DATA,
        epochs=10,
        batch_size=16,
        early_stopping=stop,
    )
    assert result.stopped_early and result.step == 3 * 6


def test_aux_metrics_are_averaged():
    def with_aux(p, b):
        loss = loss_fn(p, b)
        return loss, {"twice": 2 * loss}

    result = jol.fit(
        with_aux, PARAMS, OPT, DATA, steps=8, batch_size=16, has_aux=True, log_every=2
    )
    np.testing.assert_allclose(
        result.history["twice"], 2 * result.history["loss"], rtol=1e-6
    )


def test_data_none_objective():
    result = jol.fit(lambda p, _: jnp.sum((p - 2.0) ** 2), jnp.zeros(2), OPT, steps=100)
    np.testing.assert_allclose(result.params, 2.0, rtol=1e-5)


def test_second_call_does_not_retrace():
    traces = []

    def counted(p, b):
        traces.append(1)
        return loss_fn(p, b)

    kw = dict(epochs=2, batch_size=8, key=KEY)
    jol.fit(counted, PARAMS, OPT, DATA, **kw)
    first = len(traces)
    other_params = jax.tree.map(lambda x: x + 1.0, PARAMS)
    other_data = jax.tree.map(lambda x: x * 2.0, DATA)
    jol.fit(
        counted,
        other_params,
        OPT,
        other_data,
        key=jax.random.key(9),
        epochs=2,
        batch_size=8,
    )
    assert len(traces) == first


def test_checkpoint_resume_is_bit_identical(tmp_path):
    kw = dict(batch_size=8, key=KEY, chunk_size=12, log_every=2)
    full = jol.fit(loss_fn, PARAMS, OPT, DATA, epochs=6, **kw)
    first = jol.fit(loss_fn, PARAMS, OPT, DATA, epochs=3, checkpoint_dir=tmp_path, **kw)
    assert first.step == 36 and jol.has_checkpoint(tmp_path)
    resumed = jol.fit(
        loss_fn, PARAMS, OPT, DATA, epochs=6, checkpoint_dir=tmp_path, resume=True, **kw
    )
    assert resumed.step == 72
    assert same(full.params, resumed.params)
    assert same(full.opt_state, resumed.opt_state)
    for k in full.history:
        np.testing.assert_array_equal(full.history[k], resumed.history[k])


def test_checkpoint_from_another_model_is_refused(tmp_path):
    jol.fit(loss_fn, PARAMS, OPT, DATA, steps=4, checkpoint_dir=tmp_path)
    bigger = {"w": jnp.zeros(4), "b": jnp.zeros(())}
    data4 = dict(DATA, x=jnp.ones((96, 4)))
    with pytest.raises(ValueError, match="does not match"):
        jol.fit(
            loss_fn, bigger, OPT, data4, steps=8, checkpoint_dir=tmp_path, resume=True
        )
    with pytest.raises(ValueError, match="batch_size"):
        jol.fit(
            loss_fn,
            PARAMS,
            OPT,
            DATA,
            steps=8,
            batch_size=8,
            checkpoint_dir=tmp_path,
            resume=True,
        )


def test_ctrl_c_returns_the_finished_chunks(monkeypatch, tmp_path):
    calls = []
    original = _fit.Progress.update

    def interrupt(self, steps, postfix):
        calls.append(steps)
        if len(calls) == 2:
            raise KeyboardInterrupt
        original(self, steps, postfix)

    monkeypatch.setattr(_fit.Progress, "update", interrupt)
    result = jol.fit(
        loss_fn,
        PARAMS,
        OPT,
        DATA,
        steps=100,
        batch_size=8,
        key=KEY,
        chunk_size=10,
        checkpoint_dir=tmp_path,
    )
    assert result.interrupted
    # The second chunk's numbers were read when Ctrl-C arrived: it is kept.
    assert result.step == 20 and len(result.history["loss"]) == 20
    straight = jol.fit(loss_fn, PARAMS, OPT, DATA, steps=20, batch_size=8, key=KEY)
    assert same(straight.params, result.params)
    # And the run can be resumed from there to the end.
    monkeypatch.setattr(_fit.Progress, "update", original)
    resumed = jol.fit(
        loss_fn,
        PARAMS,
        OPT,
        DATA,
        steps=100,
        batch_size=8,
        key=KEY,
        chunk_size=10,
        checkpoint_dir=tmp_path,
        resume=True,
    )
    full = jol.fit(loss_fn, PARAMS, OPT, DATA, steps=100, batch_size=8, key=KEY)
    assert same(full.params, resumed.params)


def test_progress_bar(capsys):
    pytest.importorskip("tqdm")
    jol.fit(loss_fn, PARAMS, OPT, DATA, steps=40, batch_size=8, progress=True)
    err = capsys.readouterr().err
    assert "40/40" in err and "loss=" in err


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (dict(), ValueError, "exactly one of steps and epochs"),
        (dict(steps=5, epochs=2), ValueError, "exactly one of steps and epochs"),
        (dict(steps=0), ValueError, "steps=0"),
        (dict(steps=2.5), TypeError, "steps must be an integer"),
        (dict(steps=5, batch_size=0), ValueError, "batch_size=0"),
        (dict(steps=5, batch_size=500), ValueError, "larger than the 96 examples"),
        (dict(steps=4, log_every=2, chunk_size=3), ValueError, "multiple of log_every"),
        (
            dict(steps=5, eval_every=2),
            ValueError,
            "eval_every was given without eval_fn",
        ),
        (
            dict(steps=5, key="3"),
            TypeError,
            "key must be an integer seed or a PRNG key",
        ),
        (
            dict(steps=5, key=jax.random.split(jax.random.key(0), 3)),
            ValueError,
            "key must be a single PRNG key",
        ),
        (dict(steps=5, resume=True), ValueError, "resume=True needs checkpoint_dir"),
        (
            dict(steps=5, early_stopping=jol.EarlyStopping(monitor="acc")),
            ValueError,
            "not a recorded metric",
        ),
        (
            dict(steps=5, early_stopping=jol.EarlyStopping(mode="up")),
            ValueError,
            "mode",
        ),
    ],
)
def test_validation(kwargs, error, match):
    with pytest.raises(error, match=match):
        jol.fit(loss_fn, PARAMS, OPT, DATA, **kwargs)


def test_validation_of_inputs(tmp_path):
    with pytest.raises(
        TypeError, match=r"optimizer must be an optax\.GradientTransformation"
    ):
        jol.fit(loss_fn, PARAMS, "adam", DATA, steps=1)
    with pytest.raises(TypeError, match=r"params\['n'\] has dtype int32"):
        jol.fit(loss_fn, dict(PARAMS, n=jnp.int32(1)), OPT, DATA, steps=1)
    with pytest.raises(ValueError, match="leading"):
        jol.fit(loss_fn, PARAMS, OPT, {"x": X, "y": X[:10, 0]}, steps=1)
    with pytest.raises(ValueError, match="empty"):
        jol.fit(loss_fn, PARAMS, OPT, {"x": X[:0], "y": X[:0, 0]}, steps=1)
    with pytest.raises(TypeError, match=r"shape \(16,\)"):
        jol.fit(lambda p, b: b["x"] @ p["w"], PARAMS, OPT, DATA, steps=1, batch_size=16)
    with pytest.raises(TypeError, match="eval_fn must return a scalar"):
        jol.fit(loss_fn, PARAMS, OPT, DATA, steps=1, eval_fn=lambda p, d: p["w"])
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        jol.fit(
            loss_fn, PARAMS, OPT, DATA, steps=1, checkpoint_dir=tmp_path, resume=True
        )
