"""`sweep`: parity with `fit`, one compilation, blocks, schedules, results, errors."""

from __future__ import annotations

import importlib.util

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import count_compiles

import jaxopt_lite as jol

KEY = jax.random.key(42)
_X = jax.random.normal(jax.random.key(0), (48, 3))
DATA = {"x": _X, "y": _X @ jnp.array([1.0, -2.0, 0.5]) + 0.3}


def loss_fn(p, batch):
    return jnp.mean((batch["x"] @ p["w"] + p["b"] - batch["y"]) ** 2)


def init(key):
    return {"w": 0.1 * jax.random.normal(key, (3,)), "b": jnp.zeros(())}


PARAMS = {"w": jnp.zeros(3), "b": jnp.zeros(())}


def make_adam(learning_rate, b1):
    return jol.adam(learning_rate, b1=b1)


def test_matches_fit_for_every_configuration_and_seed():
    hp = {"learning_rate": [0.01, 0.05, 0.2], "b1": [0.5, 0.9, 0.8]}
    settings = dict(epochs=3, batch_size=8, log_every=2)
    result = jol.sweep(
        make_adam, hp, loss_fn, init, DATA, seeds=2, grid=False, key=KEY, **settings
    )
    assert result.final_loss.shape == (3, 2)
    assert result.history["loss"].shape == (3, 2, 9)
    assert result.params["w"].shape == (3, 2, 3)
    assert result.step == 18
    for c in range(3):
        config = result.config(c)
        optimizer = make_adam(**config)  # one optimizer object: one fit compile
        for s in range(2):
            seed_key = jax.random.fold_in(KEY, s)
            alone = jol.fit(
                loss_fn,
                init(seed_key),
                optimizer,
                DATA,
                key=seed_key,
                progress=False,
                **settings,
            )
            for name in ("w", "b"):
                np.testing.assert_allclose(
                    result.params[name][c, s], alone.params[name], rtol=1e-5, atol=1e-7
                )
            for name in ("loss", "grad_norm", "learning_rate", "step"):
                np.testing.assert_allclose(
                    result.history[name][c, s], alone.history[name], rtol=1e-5
                )
            assert result.final_loss[c, s] == result.history["loss"][c, s, -1]
        # The seeds differ (initialization and batches).
        assert result.history["loss"][c, 0, 0] != result.history["loss"][c, 1, 0]


def test_grid_is_a_cartesian_product_and_zip_pairs_values():
    hp = {"learning_rate": [0.1, 0.2, 0.3], "b1": [0.5, 0.9]}
    grid = jol.sweep(make_adam, hp, loss_fn, PARAMS, DATA, steps=2)
    np.testing.assert_allclose(
        grid.hyperparams["learning_rate"], [0.1] * 2 + [0.2] * 2 + [0.3] * 2
    )
    np.testing.assert_allclose(grid.hyperparams["b1"], [0.5, 0.9] * 3)
    # The same six configurations zipped (same shapes: the compiled loop is reused).
    zipped = jol.sweep(
        make_adam,
        {"learning_rate": [0.3, 0.3, 0.2, 0.2, 0.1, 0.1], "b1": [0.9, 0.5] * 3},
        loss_fn,
        PARAMS,
        DATA,
        steps=2,
        grid=False,
    )
    row = zipped.to_rows()[1]
    assert row.pop("rank") in (1, 2, 3, 4, 5, 6)  # the order differs: ties
    assert row == {
        "learning_rate": 0.3,
        "b1": 0.5,
        "tail_loss": pytest.approx(grid.to_rows()[4]["tail_loss"]),
        "final_loss": pytest.approx(grid.to_rows()[4]["final_loss"]),
        "best_loss": pytest.approx(grid.to_rows()[4]["best_loss"]),
    }
    np.testing.assert_array_equal(zipped.params["w"][::-1], grid.params["w"])


def test_one_compile_whatever_the_number_of_configurations_and_blocks():
    def make(learning_rate):
        return jol.sgd(learning_rate)

    def quadratic(p, _):
        return jnp.sum((p - 1.0) ** 2)

    rates = np.linspace(0.01, 0.3, 10)
    with count_compiles() as compiles:
        whole = jol.sweep(
            make, {"learning_rate": rates}, quadratic, jnp.zeros(4), steps=5
        )
    # 10 configurations, one compilation of each block program (the first
    # states, and the chunk that advances them, whatever its steps).
    assert compiles["sweep_init"] == compiles["sweep_chunk"] == 1
    # At most 4 at once: blocks of 4, 4 and 2 padded to 4 reuse one compilation.
    with count_compiles() as compiles:
        blocks = jol.sweep(
            make,
            {"learning_rate": rates},
            quadratic,
            jnp.zeros(4),
            steps=5,
            max_parallel=4,
        )
    # one more compilation of each, not three
    assert compiles["sweep_init"] == compiles["sweep_chunk"] == 1
    np.testing.assert_allclose(blocks.params, whole.params, rtol=1e-6)
    np.testing.assert_allclose(blocks.final_loss, whole.final_loss, rtol=1e-6)
    assert blocks.params.shape == (10, 1, 4)
    # Closed form of gradient descent on (p - 1)^2: p_t = 1 - (1 - 2 lr)^t.
    expected = 1 - (1 - 2 * rates) ** 5
    np.testing.assert_allclose(whole.params[:, 0, 0], expected, rtol=1e-5)


def test_max_parallel_splits_seeds_and_configurations():
    hp = {"learning_rate": [0.01, 0.05, 0.1]}
    settings = dict(seeds=3, steps=6, batch_size=8, key=KEY, shuffle=False)
    whole = jol.sweep(
        lambda learning_rate: jol.sgd(learning_rate),
        hp,
        loss_fn,
        init,
        DATA,
        **settings,
    )
    for max_parallel in (2,):  # 3 x 2 blocks of [1 config, 2 seeds], seeds padded
        split = jol.sweep(
            lambda learning_rate: jol.sgd(learning_rate),
            hp,
            loss_fn,
            init,
            DATA,
            max_parallel=max_parallel,
            **settings,
        )
        np.testing.assert_allclose(split.params["w"], whole.params["w"], rtol=1e-6)
        np.testing.assert_allclose(
            split.history["loss"], whole.history["loss"], rtol=1e-6
        )


def test_schedule_hyperparameters_are_swept_without_recompiling():
    def make(decay_rate, transition_steps):
        return jol.sgd(jol.exponential_decay(0.1, transition_steps, decay_rate))

    result = jol.sweep(
        make,
        {"decay_rate": [0.5, 0.9], "transition_steps": [2, 5]},
        lambda p, _: jnp.sum(p**2),
        jnp.ones(3),
        steps=6,
    )
    step = np.arange(6)
    for c in range(4):
        config = result.config(c)
        expected = 0.1 * config["decay_rate"] ** (step / config["transition_steps"])
        np.testing.assert_allclose(
            result.history["learning_rate"][c, 0], expected, rtol=1e-5
        )

    warmup = jol.sweep(
        lambda warmup_steps: jol.adam(
            jol.warmup_cosine_decay_schedule(0.0, 0.1, warmup_steps, 20)
        ),
        {"warmup_steps": [2, 5]},
        lambda p, _: jnp.sum(p**2),
        jnp.ones(3),
        steps=6,
    )
    np.testing.assert_allclose(
        warmup.history["learning_rate"][1, 0],
        [0, 0.02, 0.04, 0.06, 0.08, 0.1],
        atol=1e-7,
    )


def test_result_ranking_rows_and_table():
    result = jol.sweep(
        lambda learning_rate: jol.sgd(learning_rate),
        {"learning_rate": [0.01, 0.1, 10.0]},  # 10.0 diverges
        lambda p, _: jnp.sum(p**2),
        jnp.ones(2),
        seeds=2,
        steps=40,
        log_every=10,
    )
    assert result.best() == ({"learning_rate": 0.1}, 1)
    assert result.best(by="best") == ({"learning_rate": 0.1}, 1)
    assert not np.isfinite(result.final_loss[2]).any()  # diverged: ranked last
    assert result.history["skipped"][2].sum() > 0  # non-finite steps were skipped
    assert np.isfinite(result.params[2]).all()
    rows = result.to_rows()
    assert [r["learning_rate"] for r in rows] == [0.01, 0.1, 10.0]
    assert list(rows[0]) == [
        "learning_rate",
        "tail_loss",
        "tail_loss_std",
        "final_loss",
        "final_loss_std",
        "best_loss",
        "best_loss_std",
        "rank",
    ]
    assert [r["rank"] for r in rows] == [2, 1, None]  # the diverged one: no rank
    assert rows[1]["final_loss"] == pytest.approx(float(result.final_loss[1].mean()))
    assert rows[1]["tail_loss"] == pytest.approx(float(result.score[1].mean()))
    np.testing.assert_array_equal(
        result.best_loss, np.fmin.reduce(result.history["loss"], axis=-1)
    )
    text = str(result)
    assert text == result.table()
    lines = text.splitlines()
    assert lines[0] == "sweep: 3 configurations x 2 seeds, 40 steps"
    assert lines[1].split() == ["learning_rate", "tail_loss", "final_loss", "best_loss"]
    assert lines[3].endswith("*") and not lines[2].endswith("*")
    assert lines[-1].startswith("* best by tail_loss (the mean loss of the last")
    # any history column ranks too, in the direction its name suggests
    assert result.best("loss") == ({"learning_rate": 0.1}, 1)
    with pytest.raises(ValueError, match="by='last'"):
        result.best(by="last")


def test_aux_metrics_are_recorded():
    def with_aux(p, batch):
        loss = loss_fn(p, batch)
        return loss, {"rmse": jnp.sqrt(loss)}

    result = jol.sweep(
        lambda learning_rate: jol.sgd(learning_rate),
        {"learning_rate": [0.01, 0.1]},
        with_aux,
        PARAMS,
        DATA,
        steps=4,
        batch_size=16,
        has_aux=True,
    )
    np.testing.assert_allclose(
        result.history["rmse"] ** 2, result.history["loss"], rtol=1e-5
    )


@pytest.mark.skipif(
    importlib.util.find_spec("sklearn") is None, reason="needs scikit-learn"
)
def test_lr_sweep_example_fast(tmp_path):
    from jaxopt_lite.examples import lr_sweep

    numbers = lr_sweep.run(fast=True, out=str(tmp_path))
    rates = numbers["learning_rate"]
    assert len(rates) == len(numbers["final_loss"]) >= 4
    assert np.all(np.diff(rates) > 0)
    best = numbers["best_learning_rate"]
    assert best in rates
    # A good rate trains: its loss is far below the untrained loss (log 10).
    assert min(numbers["final_loss"]) < 0.5 * np.log(10)
    if importlib.util.find_spec("matplotlib") is not None:
        assert numbers["plots"] == [str(tmp_path / "lr_sweep.png")]
        assert (tmp_path / "lr_sweep.png").stat().st_size > 0


def test_default_blocks_on_cpu_keep_the_stacked_parameters_small():
    from jaxopt_lite._sweep import engine as _sweep

    megabyte = {"w": jax.ShapeDtypeStruct((2**18,), jnp.float32)}  # 1 MiB per run
    assert jax.default_backend() == "cpu"
    assert _sweep.default_parallel(megabyte, 64, None) == 2
    assert _sweep.default_parallel(PARAMS, 64, None) == 64
    assert _sweep.default_parallel(megabyte, 64, mesh=object()) == 64
    assert _sweep.even(64, 13) == 13  # 5 blocks: 65 runs, 1 padded
    assert _sweep.even(10, 4) == 4
    assert _sweep.even(12, 5) == 4  # 3 blocks of 4 rather than 5, 5, 2 (+3 padded)
    assert _sweep.even(3, 7) == 3


def test_swept_values_promote_like_python_numbers_bfloat16():
    # A traced float32 learning rate must not turn bfloat16 updates into
    # float32: the sweep equals fit with a Python float, bit for bit.
    x = _X.astype(jnp.bfloat16)
    data = {"x": x, "y": x @ jnp.array([1.0, -2.0, 0.5], jnp.bfloat16)}

    def loss(p, b):
        return jnp.mean((b["x"] @ p["w"] - b["y"]) ** 2).astype(jnp.float32)

    params = {"w": jnp.zeros(3, jnp.bfloat16)}

    def make(learning_rate):
        return jol.chain(jol.scale(-learning_rate), jol.trace(0.9))

    result = jol.sweep(
        make, {"learning_rate": [0.1]}, loss, params, data, steps=6, batch_size=8
    )
    alone = jol.fit(
        loss,
        params,
        make(0.1),
        data,
        steps=6,
        batch_size=8,
        key=jax.random.fold_in(jax.random.key(0), 0),
        progress=False,
    )
    assert result.params["w"].dtype == jnp.bfloat16
    assert all(
        x.dtype == jnp.bfloat16
        for x in jax.tree.leaves(result.opt_state)
        if x.ndim == 3
    )
    np.testing.assert_array_equal(result.params["w"][0, 0], alone.params["w"])
