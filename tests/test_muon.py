"""Muon on matrices: the Newton-Schulz iteration against a plain NumPy one
and optax's, in float32 and float64; parity with optax.contrib.muon; and what
we do better (4-D convolution kernels, ``None`` dimension numbers left
untouched, memory that does not grow with the number of steps).

(The shared table's ``muon`` row only sees vector leaves: its AdamW part.)"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from helpers import assert_trees_close, optax_reference

import jaxopt_lite as jol
from jaxopt_lite._host import programs

STANDARD = (3.4445, -4.7750, 2.0315)
DION_ROWS = (
    (4.0848, -6.8946, 2.9270),
    (3.9505, -6.3029, 2.6377),
    (3.7418, -5.5913, 2.3037),
    (2.8769, -3.1427, 1.2046),
    (2.8366, -3.0525, 1.2012),
)
MDN = jol.MuonDimensionNumbers
OMDN = optax.contrib.MuonDimensionNumbers
optax_orthogonalize = optax.contrib._muon.orthogonalize_via_newton_schulz


def _numpy_newton_schulz(x, rows, preconditioning="frobenius", eps=1e-8):
    """The iteration from its definition, in NumPy float64."""
    x = np.asarray(x, np.float64)
    transposed = x.shape[0] > x.shape[1]
    if transposed:
        x = x.T
    if preconditioning == "frobenius":
        x = x / (np.linalg.norm(x) + eps)
    elif preconditioning == "spectral":
        x = x / (np.linalg.norm(x, 2) + eps)
    for k, (c0, c1, c2) in enumerate(np.asarray(rows, np.float64)):
        a = x @ x.T
        if k == 0 and preconditioning == "aol":
            s = 1 / np.sqrt(np.maximum(np.abs(a).sum(axis=1), eps))
            x, a = x * s[:, None], a * s[:, None] * s[None, :]
        elif k == 0 and preconditioning == "schatten":
            s = 1 / np.sqrt(max(np.linalg.norm(a), eps))
            x, a = x * s, a * s * s
        x = c0 * x + (c1 * a + c2 * a @ a) @ x
    return x.T if transposed else x


def _rows(coeffs):
    return np.broadcast_to(coeffs, (5, 3)) if len(coeffs) == 3 else coeffs


def _matrix(shape, seed=0, dtype=jnp.float32):
    return jax.random.normal(jax.random.key(seed), shape, dtype)


NS_CASES = [  # (shape, coefficients, preconditioning)
    ((6, 6), STANDARD, "frobenius"),
    ((7, 3), STANDARD, "frobenius"),
    ((4, 7), STANDARD, "spectral"),
    ((7, 3), DION_ROWS, "aol"),
    ((4, 7), DION_ROWS, "schatten"),
]


def _orthogonalized(fn, xs):
    """``fn`` on every case of NS_CASES, in one compiled function."""
    return jax.jit(
        lambda xs: [
            fn(x, jnp.asarray(c), 5, pre)
            for x, (_, c, pre) in zip(xs, NS_CASES, strict=True)
        ]
    )(xs)


def test_newton_schulz_matches_numpy_and_optax():
    """Square, tall and wide matrices, 3 or per-step coefficients, every
    preconditioning: NumPy's float64 iteration to 2e-5 in float32 and 1e-12
    in float64; optax's to 2e-6."""
    xs = [_matrix(shape, seed) for seed, (shape, _, _) in enumerate(NS_CASES)]
    ours = _orthogonalized(jol.orthogonalize_via_newton_schulz, xs)
    theirs = _orthogonalized(optax_orthogonalize, xs)
    with jax.enable_x64(True):
        xs64 = [np.asarray(x, np.float64) for x in xs]
        ours64 = _orthogonalized(jol.orthogonalize_via_newton_schulz, xs64)
    for x, (_, coeffs, pre), o, t, o64 in zip(
        xs, NS_CASES, ours, theirs, ours64, strict=True
    ):
        expected = _numpy_newton_schulz(x, _rows(coeffs), pre)
        assert o.dtype == jnp.float32 and o64.dtype == jnp.float64
        np.testing.assert_allclose(o, expected, rtol=2e-5, atol=2e-5, err_msg=pre)
        np.testing.assert_allclose(o, t, rtol=2e-6, atol=2e-6, err_msg=pre)
        np.testing.assert_allclose(o64, expected, rtol=1e-12, atol=1e-12, err_msg=pre)


def test_newton_schulz_batch_axes_and_convergence():
    """A batch axis orthogonalizes each slice on its own; the cubic iteration
    converges to the polar factor U V^T."""
    x, m = _matrix((3, 4, 5), seed=1), _matrix((5, 3), seed=2)
    batched, polar = jax.jit(
        lambda x, m: (
            jol.orthogonalize_via_newton_schulz(
                x, jnp.asarray(STANDARD), dimension_numbers=MDN(2, 0)
            ),
            jol.orthogonalize_via_newton_schulz(m, jnp.array([1.5, -0.5, 0.0]), 40),
        )
    )(x, m)
    for b in range(4):  # x[:, b, :] is (out, in): the matrix is its transpose
        expected = _numpy_newton_schulz(x[:, b, :].T, _rows(STANDARD))
        np.testing.assert_allclose(batched[:, b, :].T, expected, rtol=2e-5, atol=2e-5)
    u, _, vt = np.linalg.svd(np.asarray(m, np.float64), full_matrices=False)
    np.testing.assert_allclose(polar, u @ vt, atol=1e-5)


def test_newton_schulz_memory_does_not_grow_with_steps():
    """optax PR 1650: optax unrolls the loop and keeps every step's buffers;
    ours run in a scan (same numbers, tested above)."""

    def temp_bytes(fn, steps):
        x, c = jnp.ones((32, 64)), jnp.asarray(STANDARD)
        compiled = jax.jit(lambda x, c: fn(x, c, steps)).lower(x, c).compile()
        return compiled.memory_analysis().temp_size_in_bytes

    ours = [temp_bytes(jol.orthogonalize_via_newton_schulz, n) for n in (2, 20)]
    theirs = [temp_bytes(optax_orthogonalize, n) for n in (2, 6)]
    assert ours[1] <= ours[0] + 1024, ours  # + the 20 x 3 table
    assert theirs[1] > 2 * theirs[0], theirs


# --- muon and scale_by_muon against optax -----------------------------------

TARGETS = {"w": _matrix((5, 3), 11), "v": _matrix((2, 6), 12), "b": _matrix((3,), 13)}


def _params():
    return {"w": _matrix((5, 3), 0), "v": _matrix((2, 6), 1), "b": _matrix((3,), 2)}


def _loss(p):
    return sum(jnp.sum(jnp.log(jnp.cosh(p[k] - TARGETS[k]))) for k in p)


def _run(opt, params, steps=5, loss=_loss):
    def step(carry, _):
        p, s = carry
        u, s = opt.update(jax.grad(loss)(p), s, p)
        return (optax.apply_updates(p, u), s), None

    return jax.lax.scan(step, (params, opt.init(params)), None, steps)[0][0]


def _optax_dims(tree):
    return jax.tree.map(
        lambda d: None if d is None else OMDN(*d),
        tree,
        is_leaf=lambda x: x is None or isinstance(x, MDN),
    )


MUON_CASES = {
    "default": {},
    "no_nesterov_aol": {"nesterov": False, "beta": 0.8, "preconditioning": "aol"},
    "adaptive_dion": {"adaptive": True, "ns_coeffs": "dion"},
    "rms_decay_mask_fn": {
        "consistent_rms": 0.2,
        "weight_decay": 0.3,
        "weight_decay_mask": lambda p: jax.tree.map(lambda x: x.shape[0] == 5, p),
        "adam_learning_rate": 0.01,
        "adam_weight_decay": 0.1,
    },
}


def test_muon_matches_optax_on_matrices():
    """Four configurations, 5 steps, in one compiled function: optax's
    numbers to 1e-5 (2-D leaves orthogonalized, the vector to AdamW)."""
    params = _params()
    runs = jax.jit(
        lambda: {
            name: (
                _run(jol.muon(0.05, **kw), params),
                _run(optax_reference(optax.contrib.muon(0.05, **kw)), params),
            )
            for name, kw in MUON_CASES.items()
        }
    )()
    for name, (ours, theirs) in runs.items():
        assert not np.allclose(ours["w"], params["w"]), name
        assert_trees_close(ours, theirs, rtol=1e-5, atol=1e-6)


def test_muon_matches_optax_in_float64():
    with jax.enable_x64(True):
        params = jax.tree.map(lambda x: jnp.asarray(x, jnp.float64), _params())
        kw = {"preconditioning": "schatten", "weight_decay": 0.1}
        ours, theirs = jax.jit(
            lambda: (
                _run(jol.muon(0.05, **kw), params),
                _run(optax_reference(optax.contrib.muon(0.05, **kw)), params),
            )
        )()
        assert {x.dtype for x in jax.tree.leaves(ours)} == {jnp.dtype("float64")}
        assert_trees_close(ours, theirs, rtol=1e-12, atol=1e-13)
        state = jol.muon(0.05).init(params)
        floats = {x.dtype for x in jax.tree.leaves(state) if x.dtype.kind == "f"}
        assert floats == {jnp.dtype("float64")}


def test_dimension_numbers_tree_and_function_match_optax():
    """A tree (a prefix: one entry for a whole subtree) and a function of the
    parameters: ``None`` leaves go to AdamW exactly as in optax (and as
    `adamw` alone)."""
    p = _params()
    params = {"w": p["w"], "inner": {"v": p["v"], "b": p["b"]}}
    loss = lambda q: _loss({"w": q["w"], **q["inner"]})
    tree = {"w": MDN(1, 0), "inner": None}
    fn = lambda q: {"w": None, "inner": {"v": MDN(), "b": None}}
    adam_only = jol.masked(
        jol.adamw(0.05, weight_decay=0.0, nesterov=True),
        {"w": False, "inner": True},
    )
    ours_tree, theirs_tree, ours_fn, theirs_fn, adam = jax.jit(
        lambda: [
            _run(opt, params, loss=loss)
            for opt in (
                jol.muon(0.05, muon_weight_dimension_numbers=tree),
                optax_reference(
                    optax.contrib.muon(
                        0.05, muon_weight_dimension_numbers=_optax_dims(tree)
                    )
                ),
                jol.muon(0.05, muon_weight_dimension_numbers=fn),
                optax_reference(
                    optax.contrib.muon(
                        0.05, muon_weight_dimension_numbers=lambda q: _optax_dims(fn(q))
                    )
                ),
                adam_only,
            )
        ]
    )()
    assert_trees_close(ours_tree, theirs_tree, rtol=1e-5, atol=1e-6)
    assert_trees_close(ours_fn, theirs_fn, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(ours_tree["inner"]["v"], adam["inner"]["v"])
    np.testing.assert_array_equal(ours_tree["inner"]["b"], adam["inner"]["b"])


def test_none_leaves_are_left_untouched():
    """optax's scale_by_muon orthogonalizes (and with ``adaptive`` rescales) a
    2-D leaf whose dimension numbers are ``None``; ours passes its gradient
    through, for a tree and for a function, and so do scale_by_shape and a
    scale_by_muon inside `masked`; the other leaves get optax's numbers."""
    params = {"w": _matrix((4, 3), 3), "v": _matrix((3, 5), 4)}
    grads = {"w": _matrix((4, 3), 5), "v": _matrix((3, 5), 6)}
    tree = {"w": MDN(), "v": None}
    transforms = [
        jol.scale_by_muon(adaptive=True, weight_dimension_numbers=tree),
        jol.scale_by_muon(adaptive=True, weight_dimension_numbers=lambda p: tree),
        jol.scale_by_shape(tree),
        jol.masked(jol.scale_by_muon(adaptive=True), {"w": True, "v": False}),
        optax_reference(
            optax.contrib.scale_by_muon(
                adaptive=True, weight_dimension_numbers=_optax_dims(tree)
            )
        ),
    ]
    *ours, shaped, in_masked, theirs = jax.jit(
        lambda: [t.update(grads, t.init(params), params)[0] for t in transforms]
    )()
    for updates in (*ours, shaped, in_masked):
        np.testing.assert_array_equal(updates["v"], grads["v"])
    for updates in (*ours, in_masked):
        np.testing.assert_allclose(updates["w"], theirs["w"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(shaped["w"], grads["w"])  # sqrt(max(1, 3/4)) = 1
    assert not np.allclose(theirs["v"], grads["v"])  # optax transforms it


# --- 4-D convolution kernels (optax issue 1271) --------------------------------


def test_convolution_kernels_are_orthogonalized():
    """A 4-D leaf is an HWIO kernel: the (kh kw in) x out matrix, Keller
    Jordan's (out, in kh kw) flattening transposed. optax's muon sends it to
    Adam (and its scale_by_muon raises); with explicit dimension numbers
    optax gives our numbers. An OIHW kernel with its dimension numbers gets
    the same update, transposed."""
    kernel = _matrix((3, 3, 4, 8), 7)  # (kh, kw, in, out)
    params = {"conv": kernel, "b": jnp.zeros(8)}
    grads = {"conv": _matrix((3, 3, 4, 8), 8), "b": jnp.ones(8)}
    oihw = lambda t: {"conv": t["conv"].transpose(3, 2, 0, 1), "b": t["b"]}
    hwio_dims = {"conv": OMDN((0, 1, 2), 3), "b": None}
    oihw_dims = {"conv": MDN((1, 2, 3), 0), "b": None}
    opts = [
        (jol.muon(0.1, nesterov=False), params, grads),
        (
            jol.muon(0.1, nesterov=False, muon_weight_dimension_numbers=oihw_dims),
            oihw(params),
            oihw(grads),
        ),
        (
            optax_reference(
                optax.contrib.muon(
                    0.1, nesterov=False, muon_weight_dimension_numbers=hwio_dims
                )
            ),
            params,
            grads,
        ),
        (optax_reference(optax.contrib.muon(0.1, nesterov=False)), params, grads),
    ]
    ours, ours_oihw, theirs, fallback = jax.jit(
        lambda: [o.update(g, o.init(p), p)[0]["conv"] for o, p, g in opts]
    )()
    # first step without Nesterov: mu_hat = g; NS of the torch-layout matrix
    torch_layout = np.asarray(grads["conv"]).transpose(3, 2, 0, 1).reshape(8, -1)
    ortho = _numpy_newton_schulz(torch_layout, _rows(STANDARD))
    expected = -0.1 * ortho.reshape(8, 4, 3, 3).transpose(2, 3, 1, 0)  # scale 1
    np.testing.assert_allclose(ours, expected, rtol=2e-4, atol=2e-6)
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(ours_oihw, ours.transpose(3, 2, 0, 1), atol=1e-7)
    assert not np.allclose(fallback, ours)
    t = optax.contrib.scale_by_muon()
    with pytest.raises(ValueError):
        t.update(grads["conv"], t.init(kernel))
    state = jax.eval_shape(
        jol.muon(0.1).init, jax.ShapeDtypeStruct((3, 3, 4, 8), jnp.float32)
    )
    assert state.inner_states["muon"].inner_state[0].mu.shape == (3, 3, 4, 8)


def test_muon_reduces_a_matrix_loss():
    """Least squares in a 6 x 4 matrix with a decaying rate: the loss falls by
    a factor of 50 in 150 steps."""
    a = _matrix((4, 4), 9) + 2 * jnp.eye(4)
    target = _matrix((6, 4), 10)
    loss = lambda p: jnp.sum((p["w"] @ a - target) ** 2)
    params = {"w": jnp.zeros((6, 4))}
    opt = jol.muon(jol.exponential_decay(0.5, 20, 0.5))
    final = jax.jit(lambda: _run(opt, params, 150, loss))()
    assert loss(final) < loss(params) / 50


def _update(t, tree):
    return t.update(tree, t.init(tree))


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: _update(jol.scale_by_muon(), jnp.ones(3)), ValueError, r"\(3,\)"),
        (
            lambda: jol.scale_by_muon(weight_dimension_numbers={"w": (0, 1)}),
            TypeError,
            "weight_dimension_numbers",
        ),
        (
            lambda: _update(
                jol.scale_by_muon(weight_dimension_numbers={"x": MDN()}),
                {"w": jnp.ones((2, 2))},
            ),
            ValueError,
            "does not match",
        ),
        (
            lambda: jol.orthogonalize_via_newton_schulz(
                jnp.ones((2, 3)), jnp.asarray(STANDARD), dimension_numbers=MDN(0, 0)
            ),
            ValueError,
            "distinct",
        ),
        (
            lambda: jol.orthogonalize_via_newton_schulz(
                jnp.ones(3), jnp.asarray(STANDARD)
            ),
            ValueError,
            "dimension_numbers",
        ),
        (
            lambda: jol.scale_by_muon(ns_coeffs=DION_ROWS, ns_steps=3),
            ValueError,
            "ns_steps=3",
        ),
        (lambda: jol.muon(0.1, ns_coeffs="polar"), ValueError, "ns_coeffs"),
    ],
)
def test_muon_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_dimension_numbers_are_settings_of_the_recipe():
    """The drivers rebuild optimizers from their recipes with traced numbers:
    dimension numbers stay Python integers (settings), not traced."""
    dims = {"w": MDN(1, 0), "b": None}
    opt = jol.muon(0.1, muon_weight_dimension_numbers=dims)
    key, numbers = programs.split_optimizer(opt)
    params = {"w": _matrix((3, 2)), "b": jnp.ones(2)}

    def update(numbers):
        rebuilt = programs.join_optimizer(key, numbers)
        return rebuilt.update(params, rebuilt.init(params), params)[0]

    assert_trees_close(jax.jit(update)(numbers), update(numbers), rtol=1e-6)
    same = programs.split_optimizer(jol.muon(0.2, muon_weight_dimension_numbers=dims))
    assert same[0] == key
