"""Clipping and cleaning transforms (the ``"clipping"`` rows of
``transform_table.py``): numbers against optax (to 1e-6), dtypes, NaN flags,
centralization, unit-wise clipping, norms of tiny gradients and argument
validation."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from helpers import assert_trees_close, count_compiles, optax_reference
from transform_table import rows

import jaxopt_lite as jol


def _tree(scale=1.0, key=0):
    """A tree of leaves of rank 1 to 5 (NumPy-generated: no compilation)."""
    rng = np.random.default_rng(key)
    shapes = {
        "vec": (7,),
        "mat": (4, 3),
        "heads": (2, 3, 4),
        "conv": (2, 2, 3, 4),
        "conv3d": (2, 2, 2, 3, 2),
    }
    return {
        k: jnp.asarray(scale * rng.standard_normal(shape), jnp.float32)
        for k, shape in shapes.items()
    }


_close = functools.partial(assert_trees_close, check_dtype=True)


def _apply(t, updates, params=None):
    """One update, compiled as a whole (faster than op-by-op dispatch)."""

    def one_update(updates, params):
        init = params if params is not None else updates
        return t.update(updates, t.init(init), params)

    return jax.jit(one_update)(updates, params)


@pytest.mark.parametrize("row", [pytest.param(r, id=r.name) for r in rows("clipping")])
def test_matches_optax(row):
    grads = _tree(3.0)
    assert row.optax_make is not None
    _close(_apply(row.make(), grads)[0], _apply(row.optax_make(), grads)[0])


def _optax_adaptive_grad_clip(clipping, axis):
    return optax_reference(optax.adaptive_grad_clip(clipping, axis=axis))


@pytest.mark.parametrize("axis", [None, 0, -1, (0, 1)])
def test_adaptive_grad_clip_matches_optax(axis):
    params, grads = _tree(1.0, key=1), _tree(0.5, key=2)
    params["zeros"] = jnp.zeros((3, 2))  # clipped against eps
    grads["zeros"] = jnp.ones((3, 2))
    if axis is not None:  # every leaf needs the axes
        params = {k: x for k, x in params.items() if x.ndim >= 2}
        grads = {k: grads[k] for k in params}

    @jax.jit
    def both(clipping):
        return [
            make(clipping, axis=axis).update(grads, None, params)[0]
            for make in (jol.adaptive_grad_clip, _optax_adaptive_grad_clip)
        ]

    with count_compiles() as compiles:
        for clipping in (0.01, 0.3, 10.0):
            ours, theirs = both(jnp.float32(clipping))
            _close(ours, theirs)
    assert compiles["both"] == 1


def test_adaptive_grad_clip_limits_each_unit():
    params = jnp.array([[3.0, 0.0], [4.0, 0.0]])  # column norms 5 and 0
    grads = jnp.array([[6.0, 1.0], [8.0, 0.0]])  # column norms 10 and 1
    t = jol.adaptive_grad_clip(0.1, eps=1e-3)
    out = t.update(grads, t.init(params), params)[0]
    np.testing.assert_allclose(out[:, 0], [0.3, 0.4], rtol=1e-6)
    np.testing.assert_allclose(out[:, 1], [1e-4, 0.0], rtol=1e-5)


def test_adaptive_grad_clip_errors():
    t = jol.adaptive_grad_clip(0.1)
    with pytest.raises(TypeError, match="params"):  # a required argument (optax)
        t.update(jnp.ones(2), t.init(jnp.ones(2)))
    with pytest.raises(ValueError, match="params"):
        t.update(jnp.ones(2), t.init(jnp.ones(2)), None)
    x = jnp.ones((1, 2, 1, 2, 1, 2))
    with pytest.raises(ValueError, match=r"axis="):
        t.update(x, t.init(x), x)
    with pytest.raises(TypeError, match="axis"):
        jol.adaptive_grad_clip(0.1, axis=1.5)
    with pytest.raises(ValueError, match="clipping"):
        jol.adaptive_grad_clip(0.0)
    with pytest.raises(ValueError, match="eps"):
        jol.adaptive_grad_clip(0.1, eps=-1.0)


def test_clip_by_global_norm_scales_to_the_limit():
    grads = {"a": jnp.array([3.0, 0.0]), "b": jnp.array([[4.0]])}
    out = _apply(jol.clip_by_global_norm(2.5), grads)[0]
    np.testing.assert_allclose(out["a"], [1.5, 0.0], rtol=1e-6)
    np.testing.assert_allclose(out["b"], [[2.0]], rtol=1e-6)
    norm = jnp.sqrt(sum(jnp.sum(x**2) for x in jax.tree.leaves(out)))
    np.testing.assert_allclose(norm, 2.5, rtol=1e-6)


def test_tiny_gradients_are_clipped():
    """1e-25 per element: the squares (1e-50) flush to zero in float32, the
    norms do not (scaled by the largest modulus first)."""
    tiny = jnp.full(4, 1e-25, jnp.float32)
    out = _apply(jol.clip_by_global_norm(1e-30), tiny)[0]
    np.testing.assert_allclose(out, np.full(4, 5e-31), rtol=1e-6)
    out = _apply(jol.clip_by_global_norm(1e-30), {"a": tiny, "b": -tiny[:2]})[0]
    np.testing.assert_allclose(out["a"], np.full(4, 1e-30 / np.sqrt(6)), rtol=1e-6)
    out = _apply(jol.clip_by_block_rms(1e-26), tiny)[0]
    np.testing.assert_allclose(out, np.full(4, 1e-26), rtol=1e-6)
    # Below the limit they pass unchanged.
    out = _apply(jol.clip_by_global_norm(1e-24), tiny)[0]
    np.testing.assert_array_equal(out, tiny)


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.complex64])
def test_dtypes_are_kept(dtype):
    grads = jax.tree.map(lambda x: (3 * x).astype(dtype), _tree())
    params = jax.tree.map(lambda x: x.astype(dtype), _tree(key=3))
    t = jol.chain(
        jol.clip(0.5),
        jol.clip_by_global_norm(1.0),
        jol.clip_by_block_rms(0.5),
        jol.adaptive_grad_clip(0.1),
        jol.zero_nans(),
        jol.centralize(),
    )
    out = _apply(t, grads, params)[0]
    assert jax.tree.map(lambda x: x.dtype, out) == jax.tree.map(
        lambda x: x.dtype, grads
    )


def test_clip_complex_keeps_the_phase():
    g = jnp.array([3.0 + 4.0j, 0.3 - 0.4j, 0.0j])
    out = _apply(jol.clip(1.0), g)[0]
    np.testing.assert_allclose(out, [0.6 + 0.8j, 0.3 - 0.4j, 0.0], rtol=1e-6)


def test_zero_nans_flags_each_leaf():
    params = {"a": jnp.zeros(3), "b": jnp.zeros((2, 2)), "c": jnp.zeros(())}
    t = jol.zero_nans()
    state = t.init(params)
    assert jax.tree.map(lambda x: (x.shape, x.dtype), state.found_nan) == {
        "a": ((), jnp.bool_),
        "b": ((), jnp.bool_),
        "c": ((), jnp.bool_),
    }
    grads = {
        "a": jnp.array([1.0, jnp.nan, jnp.nan]),
        "b": jnp.array([[jnp.inf, 2.0], [-jnp.inf, 3.0]]),
        "c": jnp.array(jnp.nan),
    }
    out, state = jax.jit(t.update)(grads, state)
    np.testing.assert_array_equal(out["a"], [1.0, 0.0, 0.0])
    np.testing.assert_array_equal(out["b"], grads["b"])  # infinities are kept
    assert float(out["c"]) == 0.0
    flags = jax.tree.map(bool, state.found_nan)
    assert flags == {"a": True, "b": False, "c": True}
    assert sum(jax.tree.leaves(flags)) == 2  # leaves with a NaN last step
    # The flags describe the last update only.
    _, state = t.update(jax.tree.map(jnp.zeros_like, grads), state)
    assert not any(jax.tree.leaves(jax.tree.map(bool, state.found_nan)))
    reference = optax_reference(optax.zero_nans())
    ref_out, ref_state = reference.update(grads, reference.init(params))
    _close(out, ref_out)
    assert jax.tree.map(bool, ref_state.found_nan) == {"a": True, "b": False, "c": True}


def test_zero_nans_state_is_scan_safe():
    t = jol.zero_nans()
    g = jnp.array([1.0, 2.0])

    def body(state, i):
        grads = jnp.where(i % 2 == 0, g, jnp.nan)
        out, state = t.update(grads, state)
        return state, (out, state.found_nan)

    _, (outs, flags) = jax.lax.scan(body, t.init(g), jnp.arange(4))
    np.testing.assert_array_equal(flags, [False, True, False, True])
    np.testing.assert_array_equal(outs[1], [0.0, 0.0])


def test_centralize():
    g = {
        "vec": jnp.array([1.0, 2.0]),
        "mat": jnp.array([[1.0, 2.0, 6.0], [0.0, 0.0, 3.0]]),
    }
    out = _apply(jol.centralize(), g)[0]
    np.testing.assert_array_equal(out["vec"], g["vec"])  # vectors untouched
    np.testing.assert_allclose(out["mat"], [[-2.0, -1.0, 3.0], [-1.0, -1.0, 2.0]])
    np.testing.assert_allclose(out["mat"].mean(axis=1), [0.0, 0.0], atol=1e-7)
    t = jnp.arange(24.0).reshape(2, 3, 4)
    np.testing.assert_allclose(
        _apply(jol.centralize(), t)[0].reshape(2, -1).mean(axis=1), 0.0, atol=1e-6
    )


def test_traced_thresholds_do_not_recompile():
    grads = _tree(3.0)

    @jax.jit
    def run(max_norm, delta):
        out = _apply(jol.clip_by_global_norm(max_norm), grads)[0]
        return _apply(jol.clip(delta), out)[0]

    with count_compiles() as compiles:
        for max_norm, delta in ((1.0, 0.1), (2.0, 0.05)):
            expected = _apply(
                optax_reference(optax.clip(delta)),
                _apply(optax_reference(optax.clip_by_global_norm(max_norm)), grads)[0],
            )[0]
            _close(run(jnp.float32(max_norm), jnp.float32(delta)), expected)
    assert compiles["run"] == 1


@pytest.mark.parametrize(
    ("factory", "name", "bad"),
    [
        (jol.clip, "max_delta", -1.0),
        (jol.clip, "max_delta", float("nan")),
        (jol.clip_by_global_norm, "max_norm", 0.0),
        (jol.clip_by_global_norm, "max_norm", float("inf")),
        (jol.clip_by_block_rms, "threshold", -0.5),
    ],
)
def test_invalid_arguments(factory, name, bad):
    with pytest.raises(ValueError, match=name):
        factory(bad)


def test_wrong_types():
    with pytest.raises(TypeError, match="max_norm"):
        jol.clip_by_global_norm("1.0")
    with pytest.raises(TypeError, match="max_delta"):
        jol.clip(None)


@pytest.mark.parametrize(
    "make",
    [
        lambda lib: lib.clip_by_global_norm(1.0),
        lambda lib: lib.clip_by_block_rms(1.0),
        lambda lib: lib.adaptive_grad_clip(1.0),
        lambda lib: lib.scale_by_trust_ratio(),
        lambda lib: lib.novograd(0.1),
    ],
)
def test_zero_size_leaves_are_empty_parts_of_the_norms(make):
    # A leaf with no elements used to break the overflow-safe norms (the
    # maximum of an empty array has no identity).
    params = {"a": jnp.array([3.0, -4.0]), "b": jnp.zeros((0, 2))}
    grads = {"a": jnp.array([30.0, 40.0]), "b": jnp.zeros((0, 2))}
    ours, theirs = (
        make(lib).update(grads, make(lib).init(params), params)[0]
        for lib in (jol, optax)
    )
    assert_trees_close(ours, theirs, rtol=1e-6)
    assert np.abs(ours["a"]).max() > 0 and ours["b"].shape == (0, 2)
