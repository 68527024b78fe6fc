"""Wrappers and small transforms of optax's catalog: `conditionally_transform`,
`conditionally_mask`, `freeze`, `selective_transform`, `multi_transform`,
`flatten`, `keep_params_nonnegative`, `stateless`, `snapshot`, `monitor`,
`measure_with_ema`, `ema` (accumulator dtype), `apply_every`,
`skip_not_finite`, `skip_large_updates` and `inject_stateful_hyperparams`.

Parity with optax in float32 (1e-5) and float64 (1e-12); states read with
``optax.tree.get``; ``params=None``; extra arguments such as ``value=``
passed through; masks as trees, booleans or callables; and the deliberate
differences of docs/optax-differences.md."""

from __future__ import annotations

import functools
import math
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from helpers import assert_trees_close, optax_reference, run_in_scan

import jaxopt_lite as jol

STEPS = 4  # enough for every period and condition below


def _params(dtype=jnp.float32):
    return {"w": jnp.array([1.0, -2.0, 0.5], dtype), "b": jnp.array([0.3, 3.0], dtype)}


def _grads(dtype=jnp.float32, steps=STEPS):
    """A fixed sequence of gradients (NumPy generated: nothing to compile)."""
    rng = np.random.default_rng(3)
    return [
        {
            "w": jnp.asarray(rng.standard_normal(3), dtype),
            "b": jnp.asarray(3 * rng.standard_normal(2), dtype),
        }
        for _ in range(steps)
    ]


def _trajectory(opt, dtype, params=None, grads=None, **extra):
    """Updates and states of the steps over ``grads`` (the parameters move)."""
    params = _params(dtype) if params is None else params
    state = opt.init(params)
    out = []
    for g in _grads(dtype) if grads is None else grads:
        updates, state = opt.update(g, state, params, **extra)
        params = optax.apply_updates(params, updates)
        out.append((updates, state))
    return out


def _norm_above(threshold):
    return lambda g: optax.tree.norm(g) > threshold


# name -> (factory of the transform from a module, jaxopt_lite or optax;
#          whether the states have the same leaves as optax's)
CASES = {
    "ema": (lambda m: m.ema(0.8), True),
    "ema_not_debiased": (lambda m: m.ema(0.8, debias=False), True),
    "ema_bfloat16_accumulator": (
        lambda m: m.ema(0.8, accumulator_dtype=jnp.bfloat16),
        True,
    ),
    "conditionally_transform": (
        lambda m: m.conditionally_transform(m.scale_by_adam(), lambda t: t % 2 == 0),
        True,
    ),
    "conditionally_mask": (
        lambda m: m.conditionally_mask(m.trace(0.8), lambda t: t % 3 != 1),
        True,
    ),
    "freeze": (
        lambda m: m.chain(m.trace(0.5), m.freeze({"w": True, "b": False})),
        True,
    ),
    "freeze_callable": (
        lambda m: m.chain(m.trace(0.9), m.freeze(lambda p: {"w": False, "b": True})),
        True,
    ),
    "freeze_everything": (lambda m: m.freeze(True), True),
    "selective_transform": (
        lambda m: m.selective_transform(
            m.trace(0.5), freeze_mask={"w": False, "b": True}
        ),
        True,
    ),
    "selective_transform_nothing_frozen": (
        lambda m: m.selective_transform(m.trace(0.5), freeze_mask=False),
        True,
    ),
    "multi_transform": (
        lambda m: m.multi_transform(
            {"a": m.scale_by_adam(), "t": m.trace(0.9)}, {"w": "a", "b": "t"}
        ),
        True,
    ),
    "multi_transform_callable": (
        lambda m: m.multi_transform(
            {"a": m.scale(2.0), "t": m.trace(0.9)},
            lambda p: {"w": "t", "b": "a"},
        ),
        True,
    ),
    "flatten": (lambda m: m.flatten(m.scale_by_adam()), True),
    "flatten_clip": (lambda m: m.flatten(m.clip_by_global_norm(1.0)), True),
    "keep_params_nonnegative": (
        lambda m: m.chain(m.trace(0.5), m.keep_params_nonnegative()),
        True,
    ),
    "stateless": (
        lambda m: m.stateless(lambda g, p: jax.tree.map(lambda x, y: x * y, g, p)),
        True,
    ),
    "snapshot": (
        lambda m: m.chain(m.snapshot("norm", optax.tree.norm), m.trace(0.5)),
        True,
    ),
    "monitor": (
        lambda m: m.chain(
            m.monitor(
                {
                    "norm": optax.tree.norm,
                    "clipped": m.measure_with_ema(_norm_above(2.0), 0.7),
                }
            ),
            m.trace(0.9),
        ),
        False,  # optax's initial measurements are an empty dict
    ),
    "apply_every": (lambda m: m.chain(m.trace(0.5), m.apply_every(2)), True),
}


def test_parity_with_optax_float32_and_float64():
    """Every case, ours and optax's, over ``STEPS`` steps: one compiled
    program per dtype (compiling each case apart costs many seconds)."""
    for dtype, rtol in ((jnp.float32, 1e-5), (jnp.float64, 1e-12)):
        with jax.enable_x64(dtype == jnp.float64):
            runs = jax.jit(
                lambda p, g, dtype=dtype: {
                    name: [
                        _trajectory(make(jol), dtype, p, g),
                        _trajectory(optax_reference(make(optax)), dtype, p, g),
                    ]
                    for name, (make, _) in CASES.items()
                }
            )(_params(dtype), _grads(dtype))
        for name, (ours, theirs) in runs.items():
            for (u_o, s_o), (u_t, s_t) in zip(ours, theirs, strict=True):
                close = functools.partial(assert_trees_close, rtol=rtol, atol=0.0)
                try:
                    close(u_o, u_t, check_dtype=True)
                    if CASES[name][1]:
                        close(s_o, s_t, check_structure=False)
                except AssertionError as e:
                    raise AssertionError(f"{name}, {jnp.dtype(dtype).name}") from e
            # Every float of our states is in the parameters' dtype.
            floats = {
                x.dtype
                for x in jax.tree.leaves(ours[-1][1])
                if jnp.issubdtype(x.dtype, jnp.floating)
            }
            expected = {jnp.dtype(dtype)}
            if name == "ema_bfloat16_accumulator":
                expected = {jnp.dtype(jnp.bfloat16)}
            assert floats <= expected, (name, floats)
        # The measurements of `monitor`, read by name.
        for key in ("norm", "clipped"):
            assert_trees_close(
                optax.tree.get(runs["monitor"][0][-1][1], key),
                optax.tree.get(runs["monitor"][1][-1][1], key),
                rtol=rtol,
                check_dtype=True,
            )


def test_init_from_abstract_shapes():
    params = _params()
    abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), params)
    for name, (make, _) in CASES.items():
        opt = make(jol)
        shapes = jax.eval_shape(opt.init, abstract)
        state = opt.init(params)
        assert jax.tree.structure(shapes) == jax.tree.structure(state), name
        for s, x in zip(jax.tree.leaves(shapes), jax.tree.leaves(state), strict=True):
            assert (s.shape, s.dtype) == (jnp.shape(x), jnp.result_type(x)), name


# --- params=None, value= and optax.tree.get ----------------------------------


def test_params_none():
    makers = (
        lambda m: m.conditionally_transform(m.scale_by_adam(), lambda t: t == 0),
        lambda m: m.conditionally_mask(m.scale_by_adam(), lambda t: t == 1),
        lambda m: m.flatten(m.scale_by_adam()),
        lambda m: m.stateless_with_tree_map(lambda u, p: u * 2 if p is None else u),
    )

    @jax.jit
    def both(g):
        out = []
        for make in makers:
            ours, theirs = make(jol), optax_reference(make(optax))
            out.append((ours.update(g, ours.init(g)), theirs.update(g, theirs.init(g))))
        return out

    for (u_o, _), (u_t, _) in both(_grads()[0]):
        assert_trees_close(u_o, u_t)
    g = _grads()[0]
    opt = jol.keep_params_nonnegative()
    with pytest.raises(ValueError, match="keep_params_nonnegative needs the param"):
        opt.update(g, opt.init(g), None)
    with pytest.raises(TypeError, match="required positional argument: 'params'"):
        opt.update(g, opt.init(g))  # as optax's


def _value_reader():
    """A transform that returns the ``value=`` it receives (0 without one),
    shaped like the updates."""

    def update_fn(updates, state, params=None, *, value=0.0, **extra):
        return jax.tree.map(lambda g: jnp.full_like(g, value), updates), state

    return optax.GradientTransformationExtraArgs(
        lambda p: optax.EmptyState(), update_fn
    )


def test_extra_arguments_reach_the_inner_transforms():
    params, g = _params(), _grads()[0]
    cases = [
        lambda m: m.conditionally_mask(
            m.polyak_sgd(), lambda t, value: value > 1.0, forward_extra_args=True
        ),
        lambda m: m.conditionally_transform(
            m.polyak_sgd(), lambda t, value: value > 1.0, forward_extra_args=True
        ),
        lambda m: m.flatten(m.polyak_sgd()),
        lambda m: m.selective_transform(
            m.polyak_sgd(), freeze_mask={"w": True, "b": False}
        ),
        lambda m: m.multi_transform({"p": m.polyak_sgd()}, "p"),
    ]

    @jax.jit
    def both(value):
        out = []
        for make in cases:
            for opt in (make(jol), optax_reference(make(optax))):
                out.append(opt.update(g, opt.init(params), params, value=value)[0])
        return out

    for value in (0.5, 3.0):
        updates = both(jnp.float32(value))
        for u_o, u_t in zip(updates[::2], updates[1::2], strict=True):
            assert_trees_close(u_o, u_t, rtol=1e-6)
    # A measuring transform of `monitor` receives them too.
    opt = jol.monitor({"loss": _value_reader()})
    _, state = opt.update(g, opt.init(params), params, value=jnp.float32(2.5))
    np.testing.assert_array_equal(optax.tree.get(state, "loss")["w"], [2.5] * 3)


def test_nested_states_are_read_with_optax_tree_get():
    params, g = _params(), _grads()[0]
    opt = jol.chain(
        jol.snapshot("raw", optax.tree.norm),
        jol.conditionally_mask(jol.ema(0.5, debias=False), lambda t: t >= 0),
        jol.monitor({"after": optax.tree.norm}),
        jol.selective_transform(jol.sgd(1.0), freeze_mask={"w": True, "b": False}),
    )
    updates, state = opt.update(g, opt.init(params), params)
    np.testing.assert_allclose(optax.tree.get(state, "raw"), optax.tree.norm(g))
    assert_trees_close(optax.tree.get(state, "ema"), jax.tree.map(lambda x: x / 2, g))
    np.testing.assert_allclose(
        optax.tree.get(state, "after"), optax.tree.norm(g) / 2, rtol=1e-6
    )
    assert int(optax.tree.get(state, "step")) == 1
    assert isinstance(optax.tree.get(state, "freeze"), jol.MaskedState)
    np.testing.assert_array_equal(updates["w"], jnp.zeros(3))
    np.testing.assert_allclose(updates["b"], -g["b"] / 2)


# --- conditions ---------------------------------------------------------------


def test_conditions_numbers_and_errors():
    g = jnp.ones(2)
    # A number is true where it is not 0 (lax.cond's rule, which optax uses).
    for module in (jol, optax):
        opt = module.conditionally_mask(module.scale(3.0), lambda t: t % 2)
        state = opt.init(g)
        first, state = opt.update(g, state)
        second, state = opt.update(g, state)
        np.testing.assert_array_equal(first, [0.0, 0.0])
        np.testing.assert_array_equal(second, [3.0, 3.0])
    opt = jol.conditionally_transform(jol.scale(3.0), lambda t: jnp.ones(2, bool))
    with pytest.raises(ValueError, match="scalar"):
        opt.update(g, opt.init(g))
    # The step counter saturates.
    opt = jol.conditionally_transform(jol.scale(3.0), lambda t: True)
    state = jol.ConditionallyTransformState(optax.EmptyState(), jnp.int32(2**31 - 1))
    assert int(opt.update(g, state)[1].step) == 2**31 - 1


# --- masks ------------------------------------------------------------------


def test_selective_transform_takes_a_callable_mask():
    """optax maps its labels over a function object, which freezes every leaf;
    ours calls it (docs/optax-differences.md)."""
    params, g = _params(), _grads()[0]
    tree = jol.selective_transform(jol.sgd(1.0), freeze_mask={"w": True, "b": False})
    call = jol.selective_transform(
        jol.sgd(1.0), freeze_mask=lambda p: {"w": True, "b": False}
    )
    expected = {"w": jnp.zeros(3), "b": -g["b"]}
    for opt in (tree, call):
        assert_trees_close(opt.update(g, opt.init(params), params)[0], expected)
    theirs = optax.selective_transform(
        optax.sgd(1.0), freeze_mask=lambda p: {"w": True, "b": False}
    )
    frozen = theirs.update(g, theirs.init(params), params)[0]
    assert_trees_close(frozen, jax.tree.map(jnp.zeros_like, g))


@pytest.mark.parametrize(
    ("make", "error", "match"),
    [
        (lambda: jol.freeze({"w": 1}), TypeError, "mask leaves must be booleans"),
        (
            lambda: jol.selective_transform(jol.sgd(0.1), freeze_mask={"w": "yes"}),
            TypeError,
            "mask leaves must be booleans",
        ),
        (
            lambda: jol.selective_transform("sgd", freeze_mask=True),
            TypeError,
            "optimizer",
        ),
        (
            lambda: jol.conditionally_mask(jol.sgd(0.1), 3),
            TypeError,
            "should_transform",
        ),
        (
            lambda: jol.conditionally_transform(jol.sgd(0.1), bool, "yes"),
            TypeError,
            "forward_extra_args",
        ),
        (lambda: jol.flatten(None), TypeError, "inner"),
        (lambda: jol.stateless(3), TypeError, "f must be callable"),
        (lambda: jol.snapshot(3, jnp.sum), TypeError, "measure_name"),
        (lambda: jol.monitor([jnp.sum]), TypeError, "measures must be a dict"),
        (lambda: jol.monitor({"a": 3}), TypeError, r"measures\['a'\]"),
        (lambda: jol.apply_every(0), ValueError, "k=0"),
        (lambda: jol.apply_every(1.5), TypeError, "k must be an integer"),
        (lambda: jol.ema(1.0), ValueError, "decay=1.0"),
        (lambda: jol.ema(0.9, accumulator_dtype=jnp.int32), ValueError, "accumul"),
        (lambda: jol.measure_with_ema(jnp.sum, -0.1), ValueError, "decay"),
        (
            lambda: jol.skip_large_updates(jnp.ones(1), 0, None, "big"),
            TypeError,
            "max_squared_norm",
        ),
    ],
)
def test_validation(make, error, match):
    with pytest.raises(error, match=match):
        make()


# --- flatten ------------------------------------------------------------------


def test_flatten_keeps_each_leafs_dtype_and_takes_empty_trees():
    params = {"a": jnp.ones(2, jnp.bfloat16), "b": jnp.ones((1, 2), jnp.float32)}
    opt = jol.flatten(jol.scale_by_rms())
    state = opt.init(params)
    assert state.nu.dtype == jnp.float32 and state.nu.shape == (4,)
    updates, _ = jax.jit(opt.update)(params, state, params)
    assert updates["a"].dtype == jnp.bfloat16 and updates["b"].shape == (1, 2)
    for u in jax.tree.leaves(updates):
        np.testing.assert_allclose(u.astype(jnp.float32), 10**0.5, rtol=1e-2)
    empty = jol.flatten(jol.scale_by_rms())
    assert empty.update({}, empty.init({}))[0] == {}


# --- monitoring: the states keep their structure (differences from optax) ----


def test_monitor_and_measure_with_ema_states_are_scan_safe():
    params = _params()
    opt = jol.chain(
        jol.monitor(
            {
                "norm": optax.tree.norm,
                "big": jol.measure_with_ema(_norm_above(3.0), 0.5),
            }
        ),
        jol.sgd(0.1),
    )
    state = opt.init(params)
    # Zeros of the measurements' shapes and dtypes before the first update
    # (optax's monitor starts with an empty dict).
    assert optax.tree.get(state, "norm").dtype == jnp.float32
    assert optax.tree.get(state, "big").dtype == jnp.float32  # optax: bool
    assert (
        optax.tree.get(optax.monitor({"n": optax.tree.norm}).init(params), "n") is None
    )
    # A boolean measurement is averaged as float32 from the start (optax's
    # state starts as a bool and becomes float32).
    theirs = optax.measure_with_ema(_norm_above(3.0), 0.5)
    assert optax.tree.get(theirs.init(params), "ema").dtype == jnp.bool_
    _, scanned = run_in_scan(opt, params, _grads())
    eager = _trajectory(opt, jnp.float32)[-1][1]
    assert_trees_close(scanned, eager, rtol=1e-6)
    # the debiased average of the flags "norm > 3" of the steps
    flags = np.array([float(optax.tree.norm(g) > 3.0) for g in _grads()])
    weights = 0.5 ** np.arange(STEPS)[::-1]
    np.testing.assert_allclose(
        optax.tree.get(eager, "big"), (flags * weights).sum() / weights.sum(), rtol=1e-6
    )


def test_ema_of_integer_measurements_matches_optax():
    ours = jol.measure_with_ema(lambda g: jnp.sum(g > 0), 0.9)
    theirs = optax_reference(optax.measure_with_ema(lambda g: jnp.sum(g > 0), 0.9))
    g = jnp.array([1.0, -1.0, 2.0])
    u_o, s_o = ours.update(g, ours.init(g))
    u_t, _ = theirs.update(g, theirs.init(g))
    np.testing.assert_allclose(u_o, u_t, rtol=1e-6)
    assert u_o.dtype == optax.tree.get(s_o, "ema").dtype == jnp.float32


# --- apply_every ----------------------------------------------------------------


def test_apply_every_nan_stays_in_its_round():
    """A NaN update spoils only its round's sum; optax's multiplications by 0
    and 1 spread it to every later update (docs/optax-differences.md)."""
    grads = [jnp.array([1.0]), jnp.array([jnp.nan]), jnp.array([2.0]), jnp.array([3.0])]
    results = {}
    for name, t in (
        ("ours", jol.apply_every(2)),
        ("optax", optax_reference(optax.apply_every(2))),
    ):
        state = t.init(jnp.zeros(1))
        out = []
        for g in grads:
            u, state = t.update(g, state)
            out.append(float(u[0]))
        results[name] = out
    np.testing.assert_array_equal(results["ours"], [0.0, math.nan, 0.0, 5.0])
    np.testing.assert_array_equal(results["optax"], [0.0] + [math.nan] * 3)


# --- the skip tests of optax.MultiSteps ------------------------------------------


def test_skip_functions_in_optax_multisteps():
    grads = _grads()
    grads[1] = {"w": grads[1]["w"].at[0].set(jnp.nan), "b": grads[1]["b"]}
    grads[2] = jax.tree.map(lambda x: 100 * x, grads[2])
    pairs = [
        (jol.skip_not_finite, optax.skip_not_finite),
        (
            functools.partial(jol.skip_large_updates, max_squared_norm=1000.0),
            functools.partial(optax.skip_large_updates, max_squared_norm=1000.0),
        ),
    ]

    @jax.jit
    def runs(params, grads):
        out = []
        for pair in pairs:
            for skip in pair:
                opt = optax.MultiSteps(optax.sgd(0.1), 2, should_skip_update_fn=skip)
                trajectory = _trajectory(optax_reference(opt), None, params, grads)
                out.append([(u, s.skip_state, s.mini_step) for u, s in trajectory])
        return out

    ours_nf, theirs_nf, ours_large, theirs_large = runs(_params(), grads)
    assert_trees_close(ours_nf, theirs_nf, rtol=1e-6)
    assert_trees_close(ours_large, theirs_large, rtol=1e-6)
    # step 1 (a NaN) is skipped by both; step 2 (large) by the norm test too
    assert [bool(s["should_skip"]) for _, s, _ in ours_nf] == [0, 1, 0, 0]
    assert [bool(s["should_skip"]) for _, s, _ in ours_large] == [0, 1, 1, 0]
    with jax.enable_x64(True):
        g = {"a": jnp.array([3.0, 4.0]), "b": jnp.array([jnp.inf])}
        skip, info = jol.skip_not_finite(g, 0, None)
        assert bool(skip) and info["num_not_finite"].dtype == jnp.int32
        skip, info = jol.skip_large_updates({"a": g["a"]}, 0, None, 25.0)
        assert bool(skip) and info["norm_squared"].dtype == jnp.float64
        assert info["norm_squared"] == 25.0


# --- inject_stateful_hyperparams --------------------------------------------------


def test_inject_stateful_hyperparams_warns_and_is_inject_hyperparams():
    schedule = jol.exponential_decay(0.1, 2, 0.5)
    with pytest.warns(DeprecationWarning, match="inject_hyperparams"):
        ours = jol.inject_stateful_hyperparams(jol.adam)(learning_rate=schedule, b1=0.8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        theirs = optax.inject_stateful_hyperparams(optax.adam)(
            learning_rate=optax.exponential_decay(0.1, 2, 0.5), b1=0.8
        )
    trajectories = jax.jit(
        lambda p, g: [
            _trajectory(opt, None, p, g) for opt in (ours, optax_reference(theirs))
        ]
    )(_params(), _grads())
    for (u_o, s_o), (u_t, s_t) in zip(*trajectories, strict=True):
        assert_trees_close(u_o, u_t, rtol=1e-5)
        assert_trees_close(s_o.hyperparams, s_t.hyperparams, rtol=1e-6)
    assert isinstance(s_o, jol.InjectHyperparamsState)
    np.testing.assert_allclose(
        jol.current_learning_rate(s_o), 0.1 * 0.5 ** ((STEPS - 1) / 2)
    )
