"""Functions of gradients rather than transforms: `scale_gradient`,
`per_example_global_norm_clip`, `per_example_layer_norm_clip`,
`periodic_update` and `microbatch`. Parity with optax in float32 (1e-6) and
float64 (1e-12), traced arguments, edge cases and argument errors."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from helpers import assert_trees_close, count_compiles, standard_promotion
from optax.microbatching import AccumulationType, Accumulator

import jaxopt_lite as jol

RTOL = {jnp.float32: 1e-6, jnp.float64: 1e-12}


def _per_example(dtype):
    """Per-example gradients of 5 examples; example 2 is all zeros (NumPy
    generated: nothing to compile)."""
    rng = np.random.default_rng(7)
    grads = {"a": rng.standard_normal((5, 3, 2)), "b": 2 * rng.standard_normal((5, 4))}
    for x in grads.values():
        x[2] = 0
    return {k: jnp.asarray(x, dtype) for k, x in grads.items()}


def _with_x64(dtype):
    return jax.enable_x64(dtype == jnp.float64)


# --- scale_gradient ---------------------------------------------------------


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_scale_gradient_matches_optax_and_takes_traced_scales(dtype):
    with _with_x64(dtype):
        x = jnp.array([0.5, 1.0, -2.0], dtype)

        def grad(module, scale):
            def loss(x):
                y = module.scale_gradient({"x": 2 * x}, scale)["x"]
                return jnp.sum(jnp.sin(y) * x)

            return jax.grad(loss)(x)

        scales = (0.0, 1.0, 0.3, -2.0)
        with standard_promotion():
            theirs = [grad(optax, s) for s in scales]
        traced = jax.jit(jax.vmap(lambda s: grad(jol, s)))(jnp.array(scales, dtype))
        for i, s in enumerate(scales):
            assert_trees_close(grad(jol, s), theirs[i], rtol=RTOL[dtype], atol=0.0)
            assert_trees_close(traced[i], theirs[i], rtol=RTOL[dtype], atol=0.0)
        assert traced.dtype == dtype
    # scale 0 stops infinite and NaN gradients too, as optax's stop_gradient.
    inf_grad = jax.grad(lambda x: jnp.sum(jnp.exp(1e3 * jol.scale_gradient(x, 0.0))))
    np.testing.assert_array_equal(inf_grad(jnp.ones(2)), [0.0, 0.0])
    with pytest.raises(ValueError, match="scale"):
        jol.scale_gradient(x, jnp.nan)


# --- per-example clipping ---------------------------------------------------


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_per_example_clipping_matches_optax(dtype):
    with _with_x64(dtype):
        grads = _per_example(dtype)

        @jax.jit
        def both(clip):
            ours = [jol.per_example_global_norm_clip(grads, clip)] + [
                jol.per_example_layer_norm_clip(grads, clip, uniform)
                for uniform in (True, False)
            ]
            with standard_promotion():
                theirs = [optax.per_example_global_norm_clip(grads, clip)] + [
                    optax.per_example_layer_norm_clip(grads, clip, uniform)
                    for uniform in (True, False)
                ]
            return ours, theirs

        with count_compiles() as compiles:
            for clip in (0.0, 0.5, 2.0, 100.0):
                ours, theirs = both(jnp.asarray(clip, dtype))
                # optax counts in the default integer type (int64 under x64)
                theirs = jax.tree.map(
                    lambda x: x.astype(jnp.int32) if x.dtype == jnp.int64 else x,
                    theirs,
                )
                assert_trees_close(
                    ours, theirs, rtol=RTOL[dtype], atol=0.0, check_dtype=True
                )
                # every example but the zero one is clipped to 0.5 (none to 100)
                expected = {0.0: 4, 0.5: 4, 100.0: 0}.get(clip)
                assert expected is None or int(ours[0][1]) == expected
                assert ours[0][0]["a"].shape == (3, 2)
        assert compiles["both"] == 1


def test_per_example_clipping_keeps_dtypes_and_checks_arguments():
    grads = jax.tree.map(lambda x: x.astype(jnp.bfloat16), _per_example(jnp.float32))
    summed, clipped = jax.jit(jol.per_example_layer_norm_clip)(grads, 1.0)
    assert summed["a"].dtype == jnp.bfloat16 and clipped["b"].dtype == jnp.int32
    for bad, match in (
        ({"a": jnp.ones((2, 3)), "b": jnp.ones((3, 3))}, "same batch size"),
        ({"a": jnp.ones((2, 3)), "s": jnp.ones(())}, "same batch size"),
        ({}, "same batch size"),
    ):
        with pytest.raises(ValueError, match=match):
            jol.per_example_global_norm_clip(bad, 1.0)
        with pytest.raises(ValueError, match=match):
            jol.per_example_layer_norm_clip(bad, 1.0)
    with pytest.raises(ValueError, match="l2_norm_clip"):
        jol.per_example_global_norm_clip(grads, -1.0)
    with pytest.raises(TypeError, match="uniform"):
        jol.per_example_layer_norm_clip(grads, 1.0, uniform=1)


# --- periodic_update ----------------------------------------------------------


def test_periodic_update_matches_optax_with_traced_steps():
    new = {"w": jnp.ones(2), "b": jnp.full((), 3.0)}
    old = jax.tree.map(jnp.zeros_like, new)
    run = jax.jit(lambda t, p: jol.periodic_update(new, old, t, p))
    with count_compiles() as compiles:
        for step in range(5):
            for period in (1, 3):
                expected = optax.periodic_update(new, old, step, period)
                assert_trees_close(run(jnp.int32(step), jnp.int32(period)), expected)
                assert_trees_close(
                    jol.periodic_update(new, old, step, period), expected
                )
    assert compiles["<lambda>"] == 1
    with pytest.raises(ValueError, match="update_period=0"):
        jol.periodic_update(new, old, 1, 0)
    with pytest.raises(TypeError, match="steps"):
        jol.periodic_update(new, old, 1.5, 2)


# --- microbatch -------------------------------------------------------------------


def _fun(x, y, scale=1.0):
    return {
        "sum": jnp.sum(x * scale, axis=0),
        "rows": x[:, 0] + y,
        "mean": jnp.mean(x, axis=0),
        "running": jnp.sum(y),
    }


ACCUMULATORS = {
    "sum": AccumulationType.SUM,
    "rows": AccumulationType.CONCAT,
    "mean": AccumulationType.MEAN,
    "running": AccumulationType.RUNNING_MEAN,
}


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_microbatch_matches_optax(dtype):
    with _with_x64(dtype):
        x = jnp.asarray(np.random.default_rng(1).standard_normal((8, 3)), dtype)
        y = jnp.arange(8, dtype=dtype)
        settings = [(2, None), (2, 3), (8, None), (4, 1)]  # (slice size, slices run)

        @jax.jit
        def both(x, y):
            out = []
            for size, real in settings:
                for module in (jol, optax):
                    fun = module.microbatch(
                        _fun, (0, 1), size, ACCUMULATORS, num_real_microbatches=real
                    )
                    with standard_promotion():
                        out.append(fun(x, y, scale=2.0))
            return out

        results = both(x, y)
        for ours, theirs in zip(results[::2], results[1::2], strict=True):
            assert_trees_close(
                ours, theirs, rtol=RTOL[dtype], atol=0.0, check_dtype=True
            )
        # The CONCAT result is the batch in order; the SUM the full sum.
        full = _fun(x, y, scale=2.0)
        assert_trees_close(results[0]["rows"], full["rows"], rtol=RTOL[dtype])
        assert_trees_close(results[0]["sum"], full["sum"], rtol=10 * RTOL[dtype])


def test_microbatch_axes_keywords_and_custom_accumulators():
    a = jnp.asarray(np.random.default_rng(2).standard_normal((3, 6)), jnp.float32)
    b = jnp.arange(6.0)

    def fun(a, *, b):
        return (a * b[None, :]).sum(axis=1), jnp.max(a)

    maximum = Accumulator(
        init=lambda s: jnp.full(s.shape, -jnp.inf, s.dtype),
        update=lambda carry, value, i: jnp.maximum(carry, value),
        finalize=lambda carry: carry,
        aggregate=lambda values: jnp.max(values, axis=0),
    )
    for module in (jol, optax):
        fun_mb = module.microbatch(
            fun,
            0,
            2,
            (AccumulationType.SUM, maximum),
            argnames="b",
            in_axes=(1, 0),
        )
        with standard_promotion():
            out = fun_mb(a, b=b)
        assert_trees_close(out, fun(a, b=b), rtol=1e-5)
    # microbatch_size=None gives back the function itself; a traced count of
    # real microbatches runs that many.
    assert jol.microbatch(fun, 0, None) is fun
    run = jax.jit(lambda n: jol.microbatch(jnp.sum, 0, 2, num_real_microbatches=n)(b))
    # slices of 2 rows: {0, 3}, {1, 4}, {2, 5}
    np.testing.assert_allclose([run(n) for n in range(4)], [0.0, 3.0, 8.0, 15.0])


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: jol.microbatch(jnp.sum, 0, 0), ValueError, "microbatch_size=0"),
        (lambda: jol.microbatch(jnp.sum, 0, 2.0), TypeError, "microbatch_size"),
        (lambda: jol.microbatch(3, 0, 2), TypeError, "fun must be callable"),
        (lambda: jol.microbatch(jnp.sum, 0, 4)(jnp.ones(6)), ValueError, "divisible"),
        (
            lambda: jol.microbatch(lambda x, y: x, (0, 1), 2)(jnp.ones(4), jnp.ones(6)),
            ValueError,
            "one batch size",
        ),
        (
            lambda: jol.microbatch(jnp.sum, 0, 2, AccumulationType.MEAN)(jnp.arange(4)),
            ValueError,
            "MEAN accumulator needs floating",
        ),
        (
            lambda: jol.microbatch(jnp.sum, 0, 2, "sum")(jnp.ones(4)),
            ValueError,
            "accumulator leaves",
        ),
        (
            lambda: jol.microbatch(jnp.sum, 0, 2, in_axes=(0, 1))(jnp.ones(4)),
            ValueError,
            "in_axes",
        ),
    ],
)
def test_microbatch_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()
