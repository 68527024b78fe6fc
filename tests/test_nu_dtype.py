"""``nu_dtype``, our addition to the Adam family (optax has ``mu_dtype`` only:
google-deepmind/optax#1552): the second moment stored in a narrower real
dtype, computed in at least the gradients' precision; the default ``None``
gives exactly the numbers it gave before (optax's, bit for bit)."""

from __future__ import annotations

import functools
import inspect

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from helpers import optax_reference

import jaxopt_lite as jol

STEPS = 10
TOLERANCE = 1e-2  # bfloat16 nu: relative to the float32 run (measured <= 0.4%)

# Every factory with nu_dtype, and how to build it (learning rate 0.05).
MAKERS = {
    "adam": lambda d: jol.adam(0.05, nu_dtype=d),
    "adamw": lambda d: jol.adamw(0.05, nu_dtype=d),
    "nadam": lambda d: jol.nadam(0.05, nu_dtype=d),
    "nadamw": lambda d: jol.nadamw(0.05, nu_dtype=d),
    "amsgrad": lambda d: jol.amsgrad(0.05, nu_dtype=d),
    "optimistic_adam": lambda d: jol.optimistic_adam(0.05, nu_dtype=d),
    "optimistic_adam_v2": lambda d: jol.optimistic_adam_v2(0.05, nu_dtype=d),
    "scale_by_adam": lambda d: jol.chain(
        jol.scale_by_adam(nesterov=True, nu_dtype=d), jol.scale(-0.05)
    ),
    "scale_by_amsgrad": lambda d: jol.chain(
        jol.scale_by_amsgrad(nu_dtype=d), jol.scale(-0.05)
    ),
}
OPTAX_NAMES = ["adam", "adamw", "nadam", "nadamw", "amsgrad", "optimistic_adam_v2"]
# Those whose trajectories are run (the others only pass nu_dtype on to
# the same primitives, which their memory check sees).
RUN_NAMES = ["adam", "nadamw", "amsgrad", "optimistic_adam_v2"]


def _problem():
    k1, k2, k3 = jax.random.split(jax.random.key(1), 3)
    a = jax.random.normal(k1, (12, 12))
    hess, lin = a @ a.T / 12 + 0.3 * jnp.eye(12), jax.random.normal(k2, (12,))

    def loss(p):
        x = p["w"].ravel()
        return 0.5 * x @ hess @ x - lin @ x

    return {"w": jax.random.normal(k3, (4, 3))}, loss


def _run(opt, params, loss):
    """(params, state) and the updates of each of `STEPS` scanned steps."""

    def step(carry, _):
        p, s = carry
        u, s = opt.update(jax.grad(loss)(p), s, p)
        return (optax.apply_updates(p, u), s), u

    return jax.lax.scan(step, (params, opt.init(params)), None, STEPS)


def _moments(state):
    """The leaves of the second-moment buffers (fields ``nu``, and ``nu_max``
    for AMSGrad) anywhere in ``state``."""
    return [
        x
        for path, x in jax.tree_util.tree_flatten_with_path(state)[0]
        if any(getattr(key, "name", None) in ("nu", "nu_max") for key in path)
    ]


@functools.cache
def _runs():
    """For each of `RUN_NAMES`: ours with nu_dtype None and bfloat16, and
    optax's, in one compiled function."""
    params, loss = _problem()
    return jax.jit(
        lambda: {
            name: {
                "None": _run(MAKERS[name](None), params, loss),
                "bfloat16": _run(MAKERS[name](jnp.bfloat16), params, loss),
                "optax": _run(
                    optax_reference(getattr(optax, name)(0.05)), params, loss
                ),
            }
            for name in RUN_NAMES
        }
    )()


def _abstract(tree):
    return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), tree)


@pytest.mark.parametrize("name", list(MAKERS))
def test_bfloat16_nu_halves_the_memory_of_nu(name):
    params = _abstract(_problem()[0])
    wide = _moments(jax.eval_shape(MAKERS[name](None).init, params))
    narrow = _moments(jax.eval_shape(MAKERS[name](jnp.bfloat16).init, params))
    assert wide and {x.dtype for x in wide} == {jnp.dtype("float32")}
    assert {x.dtype for x in narrow} == {jnp.dtype("bfloat16")}
    bytes_of = lambda xs: sum(x.size * x.dtype.itemsize for x in xs)
    assert 2 * bytes_of(narrow) == bytes_of(wide)


@pytest.mark.parametrize("name", RUN_NAMES)
def test_bfloat16_nu_is_scan_safe_and_close_to_float32(name):
    params, _ = _problem()
    runs = _runs()[name]
    (p32, _), u32 = runs["None"]
    (p16, s16), u16 = runs["bfloat16"]
    # scan-safe: the state kept its avals through the scanned steps
    init16 = jax.eval_shape(MAKERS[name](jnp.bfloat16).init, _abstract(params))
    avals = lambda tree: jax.tree.map(lambda x: (x.shape, x.dtype), tree)
    assert avals(s16) == avals(init16)
    assert u16["w"].dtype == jnp.float32 and p16["w"].dtype == jnp.float32
    assert {x.dtype for x in _moments(s16)} == {jnp.dtype("bfloat16")}
    # close to the float32 run: each step's update in norm, and the params
    # relative to the distance travelled
    steps = lambda u: u.reshape(STEPS, -1)
    err = np.linalg.norm(steps(u16["w"] - u32["w"]), axis=1)
    assert np.all(err <= TOLERANCE * np.linalg.norm(steps(u32["w"]), axis=1))
    travelled = np.max(np.abs(p32["w"] - params["w"]))
    assert np.max(np.abs(p16["w"] - p32["w"])) <= TOLERANCE * travelled
    assert not np.array_equal(p16["w"], p32["w"])  # bfloat16 was used


@pytest.mark.parametrize("name", RUN_NAMES)
def test_default_is_optax_bit_for_bit(name):
    """The default keeps the numbers of before nu_dtype existed: optax's,
    bit for bit, in float32 under jit."""
    runs = _runs()[name]
    (p_ours, _), u_ours = runs["None"]
    (p_theirs, _), u_theirs = runs["optax"]
    np.testing.assert_array_equal(u_ours["w"], u_theirs["w"])
    np.testing.assert_array_equal(p_ours["w"], p_theirs["w"])


@pytest.mark.parametrize("name", ["scale_by_adam", "scale_by_amsgrad"])
def test_default_and_matching_nu_dtype_trace_the_same_program(name):
    """With the parameters' own dtype, nu_dtype changes nothing: the same
    jaxpr as the default, for float32 and bfloat16 parameters."""
    for dtype in (jnp.float32, jnp.bfloat16):
        params = jnp.ones(3, dtype)
        programs = []
        for nu_dtype in (None, dtype):
            t = getattr(jol, name)(nu_dtype=nu_dtype)
            update = lambda g, s, t=t: t.update(g, s)
            programs.append(str(jax.make_jaxpr(update)(params, t.init(params))))
        assert programs[0] == programs[1]


def test_complex_and_float64_parameters():
    """Complex parameters: nu is real, in nu_dtype. float64 parameters under
    x64 with a float32 nu: updates and the first moment stay float64."""
    params = {"c": jnp.array([1.0 + 2.0j, -0.5j]), "r": jnp.ones(3)}
    opt = jol.adam(0.1, nu_dtype=jnp.bfloat16)
    updates, state = jax.jit(lambda p: opt.update(p, opt.init(p), p))(params)
    assert {x.dtype for x in _moments(state)} == {jnp.dtype("bfloat16")}
    assert updates["c"].dtype == jnp.complex64
    # (|g|^2 rounded to bfloat16: 2**-9 relative, halved by the root)
    expected = -0.1 * np.asarray(params["c"]) / np.abs(params["c"])
    np.testing.assert_allclose(updates["c"], expected, rtol=2e-3)
    with jax.enable_x64(True):
        params = jnp.array([1.0, -2.0])
        opt = jol.amsgrad(0.1, nu_dtype=jnp.float32)
        updates, state = jax.jit(lambda p: opt.update(p, opt.init(p), p))(params)
        assert updates.dtype == jnp.float64 and state[0].mu.dtype == jnp.float64
        assert state[0].nu.dtype == state[0].nu_max.dtype == jnp.float32
        np.testing.assert_allclose(updates, [-0.1, 0.1], rtol=1e-6)


def test_optax_positional_calls_still_work():
    """nu_dtype is keyword-only: the positional arguments are optax's, in
    optax's order, so any call written for optax works."""
    positional = lambda ps: [
        n for n, p in ps.items() if p.kind is p.POSITIONAL_OR_KEYWORD
    ]
    for name in [*OPTAX_NAMES, "optimistic_adam", "scale_by_adam", "scale_by_amsgrad"]:
        ours = inspect.signature(getattr(jol, name)).parameters
        theirs = inspect.signature(getattr(optax, name)).parameters
        assert ours["nu_dtype"].kind is inspect.Parameter.KEYWORD_ONLY
        assert ours["nu_dtype"].default is None
        assert positional(ours) == positional(theirs), name
    # amsgrad's bias-correction flags stay positional after mu_dtype
    opt = jol.amsgrad(0.1, 0.9, 0.999, 1e-8, 0.0, None, False, False)
    ref = optax_reference(optax.amsgrad(0.1, 0.9, 0.999, 1e-8, 0.0, None, False, False))
    g = jnp.array([0.5, -1.0])
    np.testing.assert_array_equal(
        opt.update(g, opt.init(g))[0], ref.update(g, ref.init(g))[0]
    )


def test_nu_dtype_is_checked_and_static():
    with pytest.raises(ValueError, match="nu_dtype"):
        jol.adam(0.1, nu_dtype=jnp.complex64)  # nu is real
    with pytest.raises(ValueError, match="nu_dtype"):
        jol.scale_by_amsgrad(nu_dtype=jnp.int32)
    with pytest.raises(TypeError, match="nu_dtype"):
        jol.nadamw(0.1, nu_dtype="not a dtype")
    # a setting, not a number: inject_hyperparams keeps it static
    opt = jol.inject_hyperparams(jol.adamw)(learning_rate=0.1, nu_dtype=jnp.bfloat16)
    state = opt.init(jnp.ones(2))
    assert {x.dtype for x in _moments(state)} == {jnp.dtype("bfloat16")}
