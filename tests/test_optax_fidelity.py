"""Fidelity to optax where we share a name, and no silent wrong results:
overflow- and underflow-safe norms, the effective learning rate under
`reduce_on_plateau`, optax's own conventions that its test-suite relies on
(negative weight decay, constant schedules, callable-pytree masks,
``optax.tree.map_params`` / ``get`` / ``set``, abstract ``init``, stateful
schedules, Python-number leaves) and a clear error for integer parameters."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from helpers import optax_reference
from table_row import Row
from transform_table import rows

import jaxopt_lite as jol
from jaxopt_lite._core import tree_math

BIG = 1e19  # float32: BIG**2 overflows, BIG does not
TINY = 1e-25  # float32: TINY**2 flushes to zero, TINY does not


# --- overflow-safe norms ----------------------------------------------------


def _big_tree():
    return {"a": jnp.full((3,), BIG), "b": jnp.full((2, 2), -BIG)}


def test_global_norm_does_not_overflow():
    norm = tree_math.tree_global_norm(_big_tree())
    np.testing.assert_allclose(norm, BIG * np.sqrt(7.0), rtol=1e-6)
    assert norm.dtype == jnp.float32
    # ordinary magnitudes: exactly the plain formula (optax's)
    small = jax.tree.map(lambda x: x / 1e18, _big_tree())
    assert tree_math.tree_global_norm(small) == optax.tree.norm(small)
    # NaN and inf inputs still give NaN and inf
    assert np.isnan(tree_math.tree_global_norm({"a": jnp.array([1.0, jnp.nan])}))
    assert np.isinf(tree_math.tree_global_norm({"a": jnp.array([1.0, jnp.inf])}))
    assert tree_math.tree_global_norm({}) == 0.0


def test_global_norm_does_not_underflow():
    tiny = {"a": jnp.full((3,), TINY), "b": jnp.full((2, 2), -TINY)}
    norm = tree_math.tree_global_norm(tiny)
    np.testing.assert_allclose(norm, TINY * np.sqrt(7.0), rtol=1e-6)
    assert norm.dtype == jnp.float32
    assert optax.tree.norm(tiny) == 0.0  # what the plain formula gives
    # tiny leaves next to ordinary ones do not matter, as in the plain formula
    mixed = {"a": jnp.full((3,), TINY), "b": jnp.array([3.0, 4.0])}
    assert tree_math.tree_global_norm(mixed) == optax.tree.norm(mixed) == 5.0
    assert tree_math.tree_global_norm({"z": jnp.zeros(3)}) == 0.0


def test_l2_norm_per_unit_does_not_underflow():
    x = jnp.array([[TINY, 1.0], [TINY, 2.0]])
    np.testing.assert_allclose(
        tree_math.l2_norm(x, axis=0), [TINY * np.sqrt(2.0), np.sqrt(5.0)], rtol=1e-6
    )
    np.testing.assert_allclose(
        tree_math.l2_norm(jnp.full(4, TINY), mean=True), TINY, rtol=1e-6
    )
    np.testing.assert_allclose(
        tree_math.safe_norm(jnp.full(4, TINY), 0.0), 2 * TINY, rtol=1e-6
    )


def test_l2_norm_per_unit_does_not_overflow():
    x = jnp.array([[BIG, 1.0], [BIG, 2.0]])
    np.testing.assert_allclose(
        tree_math.l2_norm(x, axis=0), [BIG * np.sqrt(2.0), np.sqrt(5.0)], rtol=1e-6
    )
    np.testing.assert_allclose(
        tree_math.l2_norm(x, mean=True), np.sqrt(BIG**2 / 2), rtol=1e-6
    )


def test_clip_by_global_norm_of_huge_gradients():
    """1e19 gradients give unit-norm updates equal to optax's clipping of the
    same gradients scaled down to 1e18 (whose norm does not overflow)."""
    t = jol.clip_by_global_norm(1.0)
    updates, _ = jax.jit(t.update)(_big_tree(), t.init(None))
    scaled = jax.tree.map(lambda x: x / 10, _big_tree())
    expected, _ = optax.clip_by_global_norm(1.0).update(scaled, None)
    for a, e in zip(jax.tree.leaves(updates), jax.tree.leaves(expected), strict=True):
        np.testing.assert_allclose(a, e, rtol=1e-6)
    np.testing.assert_allclose(optax.tree.norm(updates), 1.0, rtol=1e-6)


def test_other_norms_of_huge_gradients():
    g = jnp.array([BIG, -BIG])
    # block RMS clipping: rms BIG > 1 -> clipped to rms 1
    u, _ = jol.clip_by_block_rms(1.0).update(g, None)
    np.testing.assert_allclose(u, [1.0, -1.0], rtol=1e-6)
    # adaptive clipping: unit norm limited to 0.1 * |w|
    w = jnp.array([3.0, 4.0])
    t = jol.adaptive_grad_clip(0.1)
    u, _ = t.update(g, t.init(w), w)
    np.testing.assert_allclose(u, 0.5 / np.sqrt(2) * np.array([1, -1]), rtol=1e-6)
    # trust ratio |w| / |g|
    t = jol.scale_by_trust_ratio()
    u, _ = t.update(g, t.init(w), w)
    np.testing.assert_allclose(u, 5.0 / np.sqrt(2) * np.array([1, -1]), rtol=1e-6)
    # Polyak: gap / |g|^2 * g = (1 / (2 BIG)) [1, -1]
    t = jol.scale_by_polyak(max_learning_rate=1.0)
    u, _ = t.update(g, t.init(None), value=jnp.array(1.0))
    np.testing.assert_allclose(u, np.array([1, -1]) / (2 * BIG), rtol=1e-6)


# --- the effective learning rate ------------------------------------------


def _plateaued(opt, params, losses):
    state = opt.init(params)
    for loss in losses:
        _, state = opt.update(
            jax.tree.map(jnp.ones_like, params), state, params, value=loss
        )
    return state


def test_learning_rate_includes_reduce_on_plateau():
    params = {"w": jnp.zeros(2)}
    plateau = jol.reduce_on_plateau(factor=0.5, patience=1)
    state = _plateaued(jol.chain(jol.adam(0.1), plateau), params, [1.0] * 4)
    scale = float(state[1].scale)
    assert scale == 0.125
    np.testing.assert_allclose(jol.current_learning_rate(state), 0.1 * scale)
    # inside inject_hyperparams, masked, with optax's plateau, or after a chain

    def sgd_then_plateau(learning_rate):
        return jol.chain(jol.sgd(learning_rate), plateau)

    for opt in (
        jol.inject_hyperparams(sgd_then_plateau)(learning_rate=0.1),
        jol.chain(
            jol.inject_hyperparams(jol.sgd)(learning_rate=0.1),
            jol.masked(plateau, {"w": True}),
        ),
        jol.chain(
            jol.chain(jol.sgd(0.1)),
            optax_reference(optax.contrib.reduce_on_plateau(0.5, 1)),
        ),
    ):
        state = _plateaued(opt, params, [1.0] * 4)
        np.testing.assert_allclose(jol.current_learning_rate(state), 0.1 * 0.125)
    # a plateau before the rate, or in another partition group, does not count
    for opt in (
        jol.chain(plateau, jol.sgd(0.1)),
        jol.partition(
            {"a": jol.sgd(0.1), "b": jol.chain(jol.sgd(1.0), plateau)}, {"w": "a"}
        ),
    ):
        state = _plateaued(opt, params, [1.0] * 4)
        np.testing.assert_allclose(jol.current_learning_rate(state), 0.1)


# --- optax conventions ------------------------------------------------------


def test_negative_weight_decay_is_allowed_as_in_optax():
    p = jnp.array([2.0])
    t = jol.add_decayed_weights(-0.5)
    np.testing.assert_allclose(t.update(jnp.array([1.0]), t.init(p), p)[0], [0.0])
    with pytest.raises(ValueError, match="weight_decay"):
        jol.adamw(0.1, weight_decay=-0.5)


@pytest.mark.parametrize("steps", [0, -3])
def test_empty_transitions_give_optax_constant_schedules(steps):
    for name, args in (
        ("polynomial_schedule", (10.0, 20.0, 1, steps)),
        ("linear_schedule", (10.0, 20.0, steps)),
        ("exponential_decay", (10.0, steps, 0.5)),
    ):
        ours, theirs = getattr(jol, name)(*args), getattr(optax, name)(*args)
        for step in (0, 1, 5, 50):
            assert jax.jit(ours)(step) == theirs(step) == 10.0
    zero_rate = jol.exponential_decay(3.0, 2, 0.0, staircase=True)
    assert [float(zero_rate(s)) for s in (0, 1, 5)] == [3.0, 3.0, 3.0]


def test_cosine_decay_with_giant_int_steps_under_jit():
    schedule = jax.jit(jol.cosine_decay_schedule(1000.0, decay_steps=int(1e10)))
    np.testing.assert_allclose(schedule(int(1e9)), 975.52826, rtol=1e-6)


class _Module(eqx.Module):
    w: object

    def __call__(self, x):
        return self.w * x


def test_callable_pytree_mask_is_a_mask_tree():
    params = _Module(jnp.array([1.0, 2.0]))
    opt = jol.masked(jol.sgd(1.0), _Module(False))
    updates, _ = opt.update(params, opt.init(params), params)
    np.testing.assert_array_equal(updates.w, params.w)  # masked out: unchanged
    opt = jol.masked(jol.sgd(1.0), _Module(True))
    np.testing.assert_array_equal(opt.update(params, opt.init(params))[0].w, -params.w)


@pytest.mark.parametrize(
    "make",
    [
        lambda: jol.masked(jol.adam(0.1), {"w": True, "b": False}),
        lambda: jol.adamw(0.1, mask={"w": True, "b": False}),
        lambda: jol.partition(
            {"x": jol.adam(0.1), "y": jol.sgd(0.1, 0.9)}, {"w": "x", "b": "y"}
        ),
    ],
)
def test_map_params_works_on_masked_states(make):
    """optax.tree.map_params finds the parameter-shaped subtrees (the same
    result as optax's own masked / adamw / partition)."""
    params = {"w": jnp.ones(2), "b": jnp.ones(3)}
    opt = make()
    state = opt.init(params)
    mapped = optax.tree.map_params(
        opt,
        lambda x: x if isinstance(x, optax.MaskedNode) else x + 1.0,
        state,
        is_leaf=lambda x: isinstance(x, optax.MaskedNode),
    )
    changed = jax.tree.map(lambda a, b: bool(jnp.all(a != b)), mapped, state)
    assert any(jax.tree.leaves(changed)) and not all(jax.tree.leaves(changed))
    for path, leaf in jax.tree_util.tree_flatten_with_path(mapped)[0]:
        name = jax.tree_util.keystr(path)
        if "mu" in name or "trace" in name:
            assert jnp.all(leaf == 1.0), name


def test_optax_tree_get_and_set_the_injected_learning_rate():
    opt = jol.inject_hyperparams(jol.adam)(learning_rate=0.1)
    params = jnp.ones(2)
    state = opt.init(params)
    np.testing.assert_allclose(optax.tree.get(state, "learning_rate"), 0.1)
    state = optax.tree.set(state, learning_rate=jnp.asarray(0.02))
    updates, state = opt.update(jnp.ones(2), state, params)
    np.testing.assert_allclose(jol.current_learning_rate(state), 0.02)
    np.testing.assert_allclose(updates, -0.02 * np.ones(2), rtol=1e-4)


def _abstract(tree):
    return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), tree)


@pytest.mark.parametrize("row", [pytest.param(r, id=r.name) for r in rows("optimizer")])
def test_init_on_abstract_parameters(row: Row):
    """``init`` on ``jax.ShapeDtypeStruct`` leaves (directly and under
    ``jax.eval_shape``) gives the tree structure, shapes and dtypes of the
    concrete state, for every optimizer of the table (optax.contrib's
    ``dog``, ``dowg``, ``dadapt_adamw``, ``prodigy``, ``momo``, ``momo_adam``
    and ``mechanize`` fail directly: their dtype lookup calls ``float()`` on
    the leaves). Shardings: test_sharded_state.py."""
    params = {"w": jnp.ones((3, 4)), "b": jnp.ones(4, jnp.bfloat16)}
    concrete = row.make().init(params)
    direct = row.make().init(_abstract(params))
    shaped = jax.eval_shape(row.make().init, _abstract(params))

    def avals(state):
        return jax.tree.map(lambda x: (jnp.shape(x), jax.typeof(x).dtype), state)

    assert avals(direct) == avals(concrete)
    assert avals(shaped) == avals(concrete)


class _TotalSchedule:
    """A stateful schedule: the value is the running sum of ``addendum``."""

    def init(self):
        return jnp.zeros([], jnp.float32)

    def update(self, state, **extra_args):
        return state + extra_args["addendum"]

    def __call__(self, state, **extra_args):
        return extra_args.get("addendum", 0.0) + 0 * state


def test_stateful_schedules_in_inject_hyperparams():
    """optax's own test: a stateful step size, read and advanced with the
    extra arguments of ``update``."""
    opt = jol.inject_hyperparams(jol.scale)(step_size=_TotalSchedule())
    params = (jnp.ones(3), jnp.ones(2))
    state = jax.jit(opt.init)(params)
    extra = {"addendum": 0.3 * jnp.ones([], jnp.float32)}
    for _ in range(2):
        updates, state = jax.jit(opt.update)(params, state, params, **extra)
    np.testing.assert_allclose(state.hyperparams["step_size"], 0.3)
    np.testing.assert_allclose(state.hyperparams_states["step_size"], 0.6)
    np.testing.assert_allclose(updates[0], 0.3 * np.ones(3))


@pytest.mark.parametrize("row", [pytest.param(r, id=r.name) for r in rows("optimizer")])
def test_python_number_leaves(row: Row):
    """Parameters and gradients given as Python floats give the numbers of
    float32 arrays."""
    params, grads = {"a": 1.0, "b": -2.0}, {"a": 0.5, "b": 0.25}
    arrays = jax.tree.map(jnp.float32, params), jax.tree.map(jnp.float32, grads)
    opt = row.make()
    expected, _ = opt.update(arrays[1], opt.init(arrays[0]), arrays[0], value=1.0)
    got, _ = opt.update(grads, opt.init(params), params, value=1.0)
    for a, e in zip(jax.tree.leaves(got), jax.tree.leaves(expected), strict=True):
        np.testing.assert_allclose(a, e, rtol=1e-6)


@pytest.mark.parametrize("make", [lambda: jol.adam(0.1), lambda: jol.sgd(0.1, 0.9)])
def test_integer_parameters_raise_a_clear_error(make):
    """optax silently returns zero updates here (integer moments)."""
    with pytest.raises(TypeError, match=r"int32.*cannot be optimized"):
        make().init({"w": jnp.arange(3)})
    # left out by a mask, an integer leaf is fine
    opt = jol.masked(make(), {"w": True, "n": False})
    opt.init({"w": jnp.ones(3), "n": jnp.arange(3)})


@pytest.mark.parametrize("name", ["sgd", "adam", "lion", "rmsprop", "adamw"])
def test_updates_keep_the_parameters_dtype_with_float32_array_rates(name):
    # optax's updates become float32 (so would the parameters after
    # apply_updates); ours are the same numbers in the parameters' dtype.
    params = jnp.array([1.0, -2.0, 0.5], jnp.bfloat16)
    grads = jnp.array([0.3, -1.5, 2.0], jnp.bfloat16)

    def update(lib):
        opt = getattr(lib, name)(jnp.float32(0.1))
        return opt.update(grads, opt.init(params), params)[0]

    ours = update(jol)
    with jax.numpy_dtype_promotion("standard"):
        theirs = update(optax)
    assert ours.dtype == jnp.bfloat16 and theirs.dtype == jnp.float32
    np.testing.assert_array_equal(ours, theirs.astype(jnp.bfloat16))
