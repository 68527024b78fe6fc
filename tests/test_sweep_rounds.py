"""`sweep` in rounds of chunks: memory bounded by the rows run, Ctrl-C keeps
the finished work, and runs whose every step is non-finite are named and never
ranked best."""

from __future__ import annotations

import itertools
import os
import signal
import threading

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxopt_lite as jol
from jaxopt_lite._sweep.engine import SweepEngine

KEY = jax.random.key(0)
_X = jax.random.normal(jax.random.key(0), (48, 3))
DATA = {"x": _X, "y": _X @ jnp.array([1.0, -2.0, 0.5]) + 0.3}
PARAMS = {"w": jnp.zeros(3), "b": jnp.zeros(())}
RATES = {"learning_rate": [0.01, 0.1]}


def loss_fn(p, batch):
    return jnp.mean((batch["x"] @ p["w"] + p["b"] - batch["y"]) ** 2)


def make(learning_rate):
    return jol.sgd(learning_rate)


def _fit(rate, steps, **kwargs):
    key = jax.random.fold_in(KEY, 0)
    return jol.fit(loss_fn, PARAMS, make(rate), DATA, steps=steps, batch_size=8,
                   key=key, progress=False, **kwargs)  # fmt: skip


def _assert_runs_match_fit(result, steps, **kwargs):
    for i, rate in enumerate(RATES["learning_rate"]):
        one = _fit(rate, steps, **kwargs)
        np.testing.assert_allclose(result.params["w"][i, 0], one.params["w"],
                                   rtol=1e-5, atol=1e-7)  # fmt: skip
        np.testing.assert_allclose(result.history["loss"][i, 0], one.history["loss"],
                                   rtol=1e-5, atol=1e-7)  # fmt: skip


# --------------------------------------------------------------------------
# Memory: the rows that ran, not the steps asked for.


def test_a_bound_the_run_never_reaches_costs_nothing():
    # 2**31 - 1 steps asked for, early stopping after 3 epochs of 6 steps: the
    # history (and every buffer) holds the 18 rows that ran.
    stop = jol.EarlyStopping(patience=2, min_delta=1e9)
    result = jol.sweep(make, RATES, loss_fn, PARAMS, DATA, steps=2**31 - 1,
                       batch_size=8, early_stopping=stop)  # fmt: skip
    assert result.stopped_early.all() and not result.interrupted
    assert result.step == 18  # checks at 6 (best), 12, 18 (patience 2)
    assert result.history["loss"].shape == (2, 1, 18)
    assert result.history["step"][0, 0].tolist() == list(range(1, 19))
    _assert_runs_match_fit(result, 2**31 - 1, early_stopping=stop)


def test_rounds_and_blocks_of_runs_that_stop_at_different_steps_match_fit():
    stop = jol.EarlyStopping(patience=2, min_delta=1e-3, monitor="mse")
    kw = dict(steps=400, batch_size=8, eval_fn=lambda p, d: {"mse": loss_fn(p, d)},
              eval_data=DATA, eval_every=3, early_stopping=stop,
              log_every=2)  # fmt: skip
    rates = [0.0, 0.01, 0.05, 0.2]
    result = jol.sweep(make, {"learning_rate": rates}, loss_fn, PARAMS, DATA,
                       max_parallel=1, key=KEY, **kw)  # fmt: skip
    steps = []
    for i, rate in enumerate(rates):
        one = jol.fit(loss_fn, PARAMS, make(rate), DATA, progress=False,
                      key=jax.random.fold_in(KEY, 0), **kw)  # fmt: skip
        steps.append(one.history["step"][-1])
        n = len(one.history["loss"])
        np.testing.assert_allclose(result.history["loss"][i, 0, :n],
                                   one.history["loss"], rtol=1e-5)  # fmt: skip
        assert np.isnan(result.history["loss"][i, 0, n:]).all()
        assert (result.history["step"][i, 0, n:] == -1).all()
        n = len(one.history["eval_step"])
        np.testing.assert_array_equal(result.history["eval_step"][i, 0, :n],
                                      one.history["eval_step"])  # fmt: skip
        np.testing.assert_allclose(result.params["w"][i, 0], one.params["w"],
                                   rtol=1e-5, atol=1e-7)  # fmt: skip
        assert bool(result.stopped_early[i, 0]) == one.stopped_early
    assert len(set(steps)) > 1  # the runs did stop at different steps
    assert result.step == max(steps)


# --------------------------------------------------------------------------
# Ctrl-C: the rounds read so far come back, flagged.


def test_ctrl_c_while_a_round_runs_returns_the_rounds_read(monkeypatch):
    reads = itertools.count()
    read = SweepEngine.rows

    def interrupted_at_the_fourth_read(engine, outs):
        if next(reads) == 3:
            raise KeyboardInterrupt
        return read(engine, outs)

    monkeypatch.setattr(SweepEngine, "rows", interrupted_at_the_fourth_read)
    result = jol.sweep(make, RATES, loss_fn, PARAMS, DATA, steps=10**6, batch_size=8)
    assert result.interrupted
    assert 3 <= result.step < 10**6  # three rounds of at least one step each
    assert result.history["step"][0, 0].tolist() == list(range(1, result.step + 1))
    np.testing.assert_array_equal(result.skipped, 0)
    _assert_runs_match_fit(result, result.step)
    assert result.table().splitlines()[0].endswith(f"{result.step} steps (interrupted)")


def test_ctrl_c_before_any_round_finished_returns_the_initial_state(monkeypatch):
    def interrupted(engine, outs):
        raise KeyboardInterrupt

    monkeypatch.setattr(SweepEngine, "rows", interrupted)
    result = jol.sweep(make, RATES, loss_fn, PARAMS, DATA, steps=100, batch_size=8,
                       eval_fn=lambda p, d: loss_fn(p, d), eval_data=DATA)  # fmt: skip
    assert result.interrupted and result.step == 0
    assert {k: v.shape for k, v in result.history.items()} == dict.fromkeys(
        ["loss", "grad_norm", "skipped", "step", "learning_rate", "eval_step",
         "eval_loss"], (2, 1, 0))  # fmt: skip
    np.testing.assert_array_equal(result.params["w"], 0.0)
    assert np.isnan(result.final_loss).all() and np.isnan(result.score).all()
    with pytest.raises(ValueError, match="no configuration has a finite tail_loss"):
        result.best()


def test_a_real_sigint_during_the_sweep_returns_the_finished_work(monkeypatch):
    # SIGINT from another thread once three rounds were read: it lands wherever
    # the host is then (waiting for a round, dispatching one), as Ctrl-C would.
    reads = itertools.count()
    read = SweepEngine.rows

    def signalled_after_the_third_read(engine, outs):
        if next(reads) == 3:
            kill = lambda: os.kill(os.getpid(), signal.SIGINT)
            threading.Thread(target=kill, daemon=True).start()
        return read(engine, outs)

    monkeypatch.setattr(SweepEngine, "rows", signalled_after_the_third_read)
    result = jol.sweep(make, RATES, loss_fn, PARAMS, DATA, steps=10**6, batch_size=8)
    assert result.interrupted and 3 <= result.step < 10**6
    assert result.history["loss"].shape == (2, 1, result.step)
    _assert_runs_match_fit(result, result.step)


# --------------------------------------------------------------------------
# Runs whose every step is non-finite.


def test_every_step_nonfinite_is_counted_warned_and_never_best():
    data = {"x": jnp.linspace(-1.0, 1.0, 32)}

    def bad(p, b):  # NaN at the initial parameters, so every step is skipped
        return jnp.mean(jnp.sqrt(-1.0 - p["w"]) * b["x"])

    with pytest.warns(
        RuntimeWarning,
        match=r"sweep: in 2 of 2 runs every step had a non-finite loss or gradient "
        r"and was skipped: their parameters are the initial ones\. They rank last\. "
        r"Runs: \{'lr': 0\.1\} \(every seed\); \{'lr': 0\.2\} \(every seed\)\.",
    ):
        result = jol.sweep(lambda lr: jol.adam(lr), {"lr": [0.1, 0.2]}, bad,
                           {"w": 0.0}, data, steps=5)  # fmt: skip
    np.testing.assert_array_equal(result.skipped, [[5], [5]])
    np.testing.assert_array_equal(result.history["skipped"].sum(-1), [[5], [5]])
    np.testing.assert_array_equal(result.params["w"], 0.0)
    assert np.isnan(result.score).all()
    for by in ("score", "final", "best"):
        with pytest.raises(ValueError, match="no configuration has a finite"):
            result.best(by=by)
    lines = result.table().splitlines()
    assert not any(line.endswith("*") for line in lines[1:])
    assert lines[-1] == (
        "no configuration has a finite tail_loss in every seed: none is best"
    )
    assert [r["rank"] for r in result.to_rows()] == [None, None]


def test_the_runs_named_are_those_whose_every_step_was_skipped():
    def init(key):  # w > 0 for some seeds: their every step is non-finite
        return {"w": jax.random.normal(key, ())}

    def loss(p, _):
        return (p["w"] + 1.0) ** 2 + jnp.sqrt(-p["w"])

    positive = [s for s in range(4) if init(jax.random.fold_in(KEY, s))["w"] > 0]
    assert 0 < len(positive) < 4
    seeds = ", ".join(map(str, positive))
    plural = "s" if len(positive) > 1 else ""
    with pytest.warns(
        RuntimeWarning,
        match=rf"in {2 * len(positive)} of 8 runs every step .* Runs: "
        rf"\{{'lr': 0\.01\}} \(seed{plural} {seeds}\); \{{'lr': 0\.02\}} "
        rf"\(seed{plural} {seeds}\)\.",
    ):
        result = jol.sweep(lambda lr: jol.sgd(lr), {"lr": [0.01, 0.02]}, loss, init,
                           seeds=4, steps=6, key=KEY)  # fmt: skip
    np.testing.assert_array_equal(result.skipped[:, positive], 6)
    finite = [s for s in range(4) if s not in positive]
    assert (result.skipped[:, finite] < 6).all()


def test_skipped_counts_are_zero_when_nonfinite_steps_are_applied():
    with pytest.warns(
        RuntimeWarning, match=r"and was applied \(skip_nonfinite=False\)"
    ):
        result = jol.sweep(lambda lr: jol.sgd(lr), {"lr": [0.1]},
                           lambda p, _: jnp.sum(jnp.sqrt(-1.0 - p)), jnp.zeros(2),
                           steps=3, skip_nonfinite=False)  # fmt: skip
    np.testing.assert_array_equal(result.skipped, 0)
    np.testing.assert_array_equal(result.history["skipped"], 0)
