"""GaLore on matrices: parity with optax.contrib's galore and scale_by_galore
in float32 (tall, wide and 3-D leaves, one spec, a tree, a function), the
SVD in float64 under x64 (optax's is float32: its numbers then differ at
float32's precision, and match ours when its SVD is made float64), and the
errors.

(The shared table's ``galore`` row only sees vector leaves, which are not
projected.)"""

from __future__ import annotations

import types

import jax
import jax.numpy as jnp
import numpy as np
import optax
import optax.contrib._galore as optax_galore
import pytest
from helpers import assert_trees_close, optax_reference

import jaxopt_lite as jol

GDN = jol.GaLoreDimensionNumbers
OGDN = optax.contrib.GaLoreDimensionNumbers


def _params(dtype=jnp.float32):
    keys = jax.random.split(jax.random.key(0), 4)
    return {
        "tall": jax.random.normal(keys[0], (6, 4), dtype),
        "wide": jax.random.normal(keys[1], (3, 7), dtype),
        "attn": jax.random.normal(keys[2], (5, 2, 3), dtype),
        "b": jax.random.normal(keys[3], (4,), dtype),
    }


def _loss(p):
    return sum(jnp.sum(jnp.log(jnp.cosh(x - 0.3))) for x in jax.tree.leaves(p))


def _run(opt, params, steps=5):
    def step(carry, _):
        p, s = carry
        u, s = opt.update(jax.grad(_loss)(p), s, p)
        return (optax.apply_updates(p, u), s), None

    return jax.lax.scan(step, (params, opt.init(params)), None, steps)[0]


TREE = {"tall": GDN(), "wide": GDN(1, 0), "attn": GDN(0, (1, 2)), "b": None}


def _optax_dims(tree):
    return jax.tree.map(
        lambda d: None if d is None else OGDN(*d),
        tree,
        is_leaf=lambda x: x is None or isinstance(x, GDN),
    )


CASES = [  # (our kwargs, optax's kwargs)
    ({"rank": 2, "update_proj_gap": 2}, None),
    (
        {
            "rank": 3,
            "weight_decay": 0.1,
            "scale": 0.5,
            "weight_dimension_numbers": TREE,
        },
        {
            "rank": 3,
            "weight_decay": 0.1,
            "scale": 0.5,
            "weight_dimension_numbers": _optax_dims(TREE),
        },
    ),
    (
        {
            "rank": 9,
            "weight_dimension_numbers": lambda p: TREE,
            "base_optimizer": jol.scale_by_adam(b1=0.5),
        },
        {
            "rank": 9,
            "weight_dimension_numbers": lambda p: _optax_dims(TREE),
            "base_optimizer": optax.scale_by_adam(b1=0.5),
        },
    ),
    (
        {
            "rank": 1,
            "mask": {"tall": True, "wide": False, "attn": True, "b": False},
            "weight_decay": 0.2,
        },
        None,
    ),
]


def test_galore_matches_optax():
    """Default (2-D leaves), a tree with a 3-D leaf, a function, a decay
    mask: 5 steps, optax's numbers to 1e-5."""
    params = _params()
    runs = jax.jit(
        lambda: [
            (
                _run(jol.galore(0.05, **ours), params),
                _run(
                    optax_reference(optax.contrib.galore(0.05, **(theirs or ours))),
                    params,
                ),
            )
            for ours, theirs in CASES
        ]
    )()
    for (ours, ours_state), (theirs, theirs_state) in runs:
        assert not np.allclose(ours["tall"], params["tall"])
        assert_trees_close(ours, theirs, rtol=1e-5, atol=1e-6)
        # projectors agree up to the signs of the singular vectors
        assert_trees_close(
            jax.tree.map(jnp.abs, ours_state[0].projector),
            jax.tree.map(jnp.abs, theirs_state[0].projector),
            rtol=1e-4,
            atol=1e-5,
        )
    state = runs[0][0][1][0]
    assert state.projector["tall"].shape == (6, 2)  # left: m >= n
    assert state.projector["wide"].shape == (7, 2)  # right: m < n
    assert state.projector["attn"].shape == (0, 0)  # 3-D: not by default
    assert runs[1][0][1][0].projector["attn"].shape == (6, 3)  # (5 x 6): right
    assert int(state.count) == 5


def test_galore_svd_in_float64():
    """Under x64 with float64 parameters our SVD is float64: optax's numbers
    when its float32 SVD is replaced by a float64 one (to 1e-12), and not
    without (float32 rounding of the projectors)."""
    with jax.enable_x64(True):
        params = _params(jnp.float64)
        ours = jax.jit(
            lambda: _run(jol.galore(0.05, rank=2, update_proj_gap=2), params)
        )()
        plain = jax.jit(
            lambda: _run(
                optax_reference(optax.contrib.galore(0.05, rank=2, update_proj_gap=2)),
                params,
            )
        )()
        patched_jnp = types.SimpleNamespace(**vars(jnp))
        patched_jnp.float32 = jnp.float64
        original = optax_galore.jnp
        optax_galore.jnp = patched_jnp
        try:
            wide = jax.jit(
                lambda: _run(
                    optax_reference(
                        optax.contrib.galore(0.05, rank=2, update_proj_gap=2)
                    ),
                    params,
                )
            )()
        finally:
            optax_galore.jnp = original
        floats = {x.dtype for x in jax.tree.leaves(ours) if x.dtype.kind == "f"}
        assert floats == {jnp.dtype("float64")}
        assert_trees_close(ours[0], wide[0], rtol=1e-12, atol=1e-13)
        difference = np.max(np.abs(ours[0]["tall"] - plain[0]["tall"]))
        assert 1e-12 < difference < 1e-5


def test_scale_by_galore_projects_onto_the_leading_singular_vectors():
    """With the identity as base transform and a full-rank gap the update is
    the best rank-r approximation of the gradient (Eckart-Young)."""
    g = jax.random.normal(jax.random.key(3), (5, 4))
    t = jol.scale_by_galore(rank=2, base_optimizer=jol.scale(1.0))
    updates, state = jax.jit(lambda: t.update(g, t.init(g)))()
    u, s, vt = np.linalg.svd(np.asarray(g, np.float64), full_matrices=False)
    np.testing.assert_allclose(
        updates, (u[:, :2] * s[:2]) @ vt[:2], rtol=1e-5, atol=1e-5
    )
    assert state.projector.shape == (5, 2)
    # one spec for every leaf of rank >= 2 (here transposed matrices)
    grads = {"g": g, "h": g[:3].T, "b": g[0]}
    ours = jol.scale_by_galore(rank=2, weight_dimension_numbers=GDN(1, 0))
    theirs = optax_reference(
        optax.contrib.scale_by_galore(rank=2, weight_dimension_numbers=OGDN(1, 0))
    )
    a, b = jax.jit(
        lambda: [t.update(grads, t.init(grads))[0] for t in (ours, theirs)]
    )()
    assert_trees_close(a, b, rtol=1e-5, atol=1e-6)
    shapes = jax.eval_shape(
        jol.galore(0.1, rank=2, weight_dimension_numbers={"a": GDN(0, (1, 2))}).init,
        {"a": jax.ShapeDtypeStruct((4, 3, 2), jnp.bfloat16)},
    )
    assert shapes[0].projector["a"].shape == (6, 2)
    assert shapes[0].projector["a"].dtype == jnp.bfloat16


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: jol.galore(0.1, rank=0), ValueError, "rank"),
        (lambda: jol.galore(0.1, rank=2.0), TypeError, "rank"),
        (lambda: jol.galore(0.1, base_optimizer="adam"), TypeError, "base_optimizer"),
        (
            lambda: jol.galore(0.1, weight_dimension_numbers={"a": GDN(0, 1)}).init(
                {"a": jnp.ones((2, 3, 4))}
            ),
            ValueError,
            "every axis",
        ),
        (
            lambda: jol.galore(0.1, weight_dimension_numbers={"a": 1}),
            TypeError,
            "weight_dimension_numbers",
        ),
    ],
)
def test_galore_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()
