"""Magnitude pruning: `polynomial_sparsity_schedule` against Zhu and Gupta's
formula, and `prune_by_magnitude` holding exact zeros over many scanned steps,
reaching the schedule's sparsity with monotone masks that drop the smallest
magnitudes, per leaf and globally, in float32 and float64; the readers and the
argument errors."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxopt_lite as jol

# --- the schedule -------------------------------------------------------------

SCHEDULES = {
    # (final, begin, end, initial, frequency, power)
    "zhu_gupta": (0.9, 5, 45, 0.0, 10, 3),
    "uneven_span": (0.8, 2, 9, 0.1, 2, 3),
    "every_step_quadratic": (0.5, 0, 6, 0.0, 1, 2),
}


def _expected(t, final, begin, end, initial, frequency, power):
    """Zhu and Gupta's s_t, held between pruning steps, reaching s_f at end."""
    if t < begin:
        return 0.0
    tau = end if t >= end else begin + frequency * ((t - begin) // frequency)
    return final + (initial - final) * (1 - (tau - begin) / (end - begin)) ** power


@pytest.mark.parametrize("name", list(SCHEDULES))
def test_schedule_is_zhu_and_guptas(name):
    args = SCHEDULES[name]
    steps = np.arange(60)
    expected = [_expected(int(t), *args) for t in steps]
    schedule = jol.polynomial_sparsity_schedule(*args)
    values = jax.jit(schedule)(jnp.asarray(steps, jnp.int32))
    assert values.dtype == jnp.float32
    np.testing.assert_allclose(values, expected, rtol=1e-6, atol=1e-7)
    assert float(schedule(7)) == pytest.approx(expected[7], rel=1e-6)
    with jax.enable_x64(True):
        values64 = jol.polynomial_sparsity_schedule(*args)(steps)
        assert values64.dtype == jnp.float64
        np.testing.assert_allclose(values64, expected, rtol=1e-14, atol=1e-15)


def test_schedule_pruning_steps_and_traced_hyperparameters():
    """At t0 + k dt the value is s_f + (s_i - s_f)(1 - k / n)^3; vmapped over
    traced sparsities and steps, it gives the concrete values."""
    final, begin, every, n = 0.9, 5, 10, 4
    schedule = jol.polynomial_sparsity_schedule(
        final, begin, begin + n * every, 0.1, every
    )
    for k in range(n + 1):
        t = begin + k * every
        assert float(schedule(t)) == pytest.approx(
            final + (0.1 - final) * (1 - k / n) ** 3, rel=1e-6
        )

    def at(final, begin, t):
        return jol.polynomial_sparsity_schedule(final, begin, 45, 0.0, 10)(t)

    finals, begins = jnp.array([0.9, 0.5]), jnp.array([5, 15])
    traced = jax.jit(jax.vmap(at, in_axes=(0, 0, None)))(finals, begins, 30)
    expected = [_expected(30, f, b, 45, 0, 10, 3) for f, b in ((0.9, 5), (0.5, 15))]
    np.testing.assert_allclose(traced, expected, rtol=1e-6)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"final_sparsity": 1.5}, ValueError, "final_sparsity=1.5"),
        ({"initial_sparsity": 0.95}, ValueError, "final_sparsity=0.9.*initial"),
        ({"begin_step": -1}, ValueError, "begin_step=-1"),
        ({"end_step": 5}, ValueError, "end_step=5"),
        ({"frequency": 0}, ValueError, "frequency=0"),
        ({"frequency": 2.5}, TypeError, "frequency"),
        ({"power": 0.0}, ValueError, "power=0.0"),
    ],
)
def test_schedule_invalid_arguments(kwargs, error, match):
    args = {"final_sparsity": 0.9, "begin_step": 5, "end_step": 45, **kwargs}
    with pytest.raises(error, match=match):
        jol.polynomial_sparsity_schedule(**args)


# --- the transform ------------------------------------------------------------

STEPS = 60
SCHEDULE_ARGS = (0.9, 5, 45, 0.0, 10)


def _params(dtype=jnp.float32):
    keys = jax.random.split(jax.random.key(0), 3)
    return {
        "w": jax.random.normal(keys[0], (6, 5), dtype),
        "v": jax.random.normal(keys[1], (4, 3), dtype),
        "b": jax.random.normal(keys[2], (1, 5), dtype),  # (1, n): a bias
    }


def _loss(p):
    """Separable, so pruning ``w`` and ``v`` leaves ``b``'s steps alone."""
    return (
        jnp.sum((p["w"] - 0.3) ** 2)
        + jnp.sum(jnp.sin(3 * p["v"]))
        + jnp.sum((p["b"] - 1) ** 2)
    )


def _run(prune, dtype=jnp.float32):
    """60 steps of adam(0.05) then ``prune`` (`chain` written out, to record
    the weights adam proposes), and plain adam alongside: per step, the
    masks, the proposed and the resulting parameters, the readers' values;
    and the last states."""
    adam = jol.adam(0.05)

    def body(carry, _):
        p, adam_state, prune_state, plain, plain_state = carry
        u, adam_state = adam.update(jax.grad(_loss)(p), adam_state, p)
        proposed = optax.apply_updates(p, u)
        u, prune_state = prune.update(u, prune_state, p)
        p = optax.apply_updates(p, u)
        v, plain_state = adam.update(jax.grad(_loss)(plain), plain_state, plain)
        plain = optax.apply_updates(plain, v)
        record = (
            jol.pruning_masks_of(prune_state),
            proposed,
            p,
            plain,
            jol.sparsity_of(prune_state),
        )
        return (p, adam_state, prune_state, plain, plain_state), record

    params = _params(dtype)
    init = (params, adam.init(params), prune.init(params), params, adam.init(params))
    return jax.jit(lambda: jax.lax.scan(body, init, None, STEPS))()


@pytest.mark.parametrize("scope", ["leaf", "global"])
def test_pruning_holds_zeros_and_reaches_the_schedule(scope):
    schedule = jol.polynomial_sparsity_schedule(*SCHEDULE_ARGS)
    carry, (masks, proposed, params, plain, read) = _run(
        jol.prune_by_magnitude(schedule, scope=scope)
    )
    targets = np.asarray(schedule(jnp.arange(STEPS)))
    assert masks["b"] is None
    sizes = {name: masks[name][0].size for name in ("w", "v")}
    total = sum(sizes.values())
    checked = 0  # pruning steps (per group) whose new zeros were checked
    for t in range(STEPS):
        kept = {name: np.asarray(masks[name][t]) for name in sizes}
        # exact zeros where pruned, and pruned is forever
        for name, mask in kept.items():
            assert np.all(np.asarray(params[name][t])[~mask] == 0), (t, name)
            if t:
                assert np.all(mask <= np.asarray(masks[name][t - 1])), (t, name)
        # the sparsity reached is the schedule's, rounded to whole weights
        pruned = {name: sizes[name] - int(mask.sum()) for name, mask in kept.items()}
        if scope == "leaf":
            for name, n in sizes.items():
                assert pruned[name] == round(targets[t] * n), (t, name)
        else:
            assert sum(pruned.values()) == round(targets[t] * total), t
        assert float(read[t]) == pytest.approx(sum(pruned.values()) / total)
        # the weights pruned at a step were the smallest of those kept
        if t and targets[t] > targets[t - 1]:
            magnitude = np.concatenate(
                [np.abs(np.asarray(proposed[n][t])).ravel() for n in sizes]
            )
            before = np.concatenate(
                [np.asarray(masks[n][t - 1]).ravel() for n in sizes]
            )
            now = np.concatenate([kept[n].ravel() for n in sizes])
            new = before & ~now
            groups = (
                [slice(0, 42)] if scope == "global" else [slice(0, 30), slice(30, 42)]
            )
            for g in groups:
                if new[g].any():
                    assert magnitude[g][new[g]].max() <= magnitude[g][now[g]].min(), t
                    checked += 1
        # kept weights move as adam moves them (XLA may fuse adam's step
        # differently in the two uses: to rounding)
        for name, mask in kept.items():
            np.testing.assert_allclose(
                np.asarray(params[name][t])[mask],
                np.asarray(proposed[name][t])[mask],
                rtol=1e-6,
            )
    counts = [total] if scope == "global" else list(sizes.values())
    rounded = np.round(np.outer(targets, counts))  # (half to even, as jnp)
    assert checked == np.sum(np.diff(rounded, axis=0) > 0) >= 4
    assert np.asarray(read)[-1] == pytest.approx(
        (round(0.9 * 30) + round(0.9 * 12)) / 42 if scope == "leaf" else 38 / 42
    )
    np.testing.assert_array_equal(params["b"], plain["b"])  # not pruned
    state = carry[2].inner_state
    assert state.sparsity.dtype == jnp.float32 and state.count == STEPS
    assert float(state.sparsity) == pytest.approx(0.9)


def test_one_shot_float64_masks_and_a_falling_schedule():
    """Sparsity 0.5 from the first update, then 0.25: held at 0.5; float64
    parameters get float64 updates and state; an explicit mask selects
    leaves. A constant sparsity prunes at the first update too."""
    with jax.enable_x64(True):

        def falling(step):
            return jnp.where(step < 3, 0.5, 0.25)

        mask = {"w": True, "v": False, "b": True}
        carry, (masks, _, params, _, read) = _run(
            jol.prune_by_magnitude(falling, mask=mask), jnp.float64
        )
        assert masks["v"] is None
        for name, n in (("w", 30), ("b", 5)):
            kept = np.asarray(masks[name]).reshape(STEPS, -1).sum(1)
            np.testing.assert_array_equal(kept, n - round(0.5 * n))
            assert params[name].dtype == jnp.float64
            assert np.all(np.asarray(params[name])[~np.asarray(masks[name])] == 0)
        np.testing.assert_allclose(read, 17 / 35)
        state = carry[2].inner_state
        assert state.sparsity.dtype == jnp.float64 and float(state.sparsity) == 0.5
        assert np.all(np.asarray(params["v"]) != 0)

        one_shot = jol.prune_by_magnitude(0.5, mask=mask)
        p = _params(jnp.float64)
        updates, state = one_shot.update(p, one_shot.init(p), p)  # doubles p
        assert jax.tree.map(lambda u: u.dtype, updates) == jax.tree.map(
            lambda _: jnp.dtype("float64"), p
        )
        np.testing.assert_array_equal(updates["v"], p["v"])
        doubled = {k: 2 * np.asarray(x) for k, x in p.items()}
        for name in ("w", "b"):
            new = np.asarray(optax.apply_updates(p[name], updates[name]))
            kept = np.asarray(jol.pruning_masks_of(state)[name])
            np.testing.assert_array_equal(new, np.where(kept, doubled[name], 0))
            smallest = np.sort(np.abs(doubled[name]).ravel())[: kept.size - kept.sum()]
            np.testing.assert_array_equal(
                np.sort(np.abs(doubled[name][~kept])), smallest
            )


def test_state_structure_abstract_init_and_readers():
    prune = jol.prune_by_magnitude(jol.polynomial_sparsity_schedule(*SCHEDULE_ARGS))
    params = _params()
    abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), params)
    shaped = jax.eval_shape(prune.init, abstract)
    state = prune.init(params)
    assert jax.tree.structure(shaped) == jax.tree.structure(state)
    masks = jol.pruning_masks_of(state)
    assert masks["b"] is None and masks["w"].shape == (6, 5) and bool(masks["w"].all())
    assert float(jol.sparsity_of(jol.chain(jol.sgd(0.1), prune).init(params))) == 0.0
    with pytest.raises(ValueError, match="holds no PruneByMagnitudeState"):
        jol.sparsity_of(jol.adam(0.1).init(params))
    with pytest.raises(ValueError, match="needs the parameters"):
        prune.update(params, state)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"sparsity": 1.5}, ValueError, "sparsity=1.5"),
        ({"sparsity": -0.1}, ValueError, "sparsity=-0.1"),
        ({"sparsity": math.nan}, ValueError, "sparsity=nan"),
        ({"sparsity": "0.5"}, TypeError, "sparsity"),
        ({"scope": "layer"}, ValueError, "scope='layer'"),
        ({"mask": {"w": 1}}, TypeError, "mask"),
    ],
)
def test_invalid_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        jol.prune_by_magnitude(**{"sparsity": 0.5, **kwargs})


def test_mask_that_does_not_fit_the_parameters():
    prune = jol.prune_by_magnitude(0.5, mask={"w": True, "x": False})
    with pytest.raises(ValueError, match="mask does not match"):
        prune.init(_params())
