"""optax.contrib's optimizers beyond the shared table: ``jaxopt_lite.contrib``
mirrors ``optax.contrib`` (names and signatures), Sophia with its default
Hutchinson estimator, D-Adaptation and Prodigy after all-zero gradients
(where optax's estimate becomes NaN), ADOPT's clipping bound, Mechanic seen
through by `current_learning_rate`, and the errors of a missing loss,
objective or parameters."""

from __future__ import annotations

import inspect

import jax
import jax.numpy as jnp
import numpy as np
import optax
import optax.contrib
import pytest
from helpers import optax_reference

import jaxopt_lite as jol
import jaxopt_lite.contrib

# Defaults that are functions or transforms: the same behaviour, other objects.
_CALLABLE_DEFAULTS = {"clip_value_fn", "hessian_diagonal_fn"}
# Primitives optax.contrib has but does not export.
_UNEXPORTED = {
    "scale_by_dog": optax.contrib._dog,
    "scale_by_dowg": optax.contrib._dog,
    "scale_by_sophia": optax.contrib._sophia,
    "orthogonalize_via_newton_schulz": optax.contrib._muon,
    "scale_by_shape": optax.contrib._muon,
}


def _optax_counterpart(name: str):
    return getattr(_UNEXPORTED.get(name, optax.contrib), name)


@pytest.mark.parametrize("name", jaxopt_lite.contrib.__all__)
def test_contrib_names_mirror_optax_contrib(name):
    """Each name of ``jaxopt_lite.contrib`` is the top-level object and has
    optax.contrib's parameters, in order, with its defaults."""
    ours = getattr(jaxopt_lite.contrib, name)
    assert ours is getattr(jol, name)
    theirs = _optax_counterpart(name)
    if inspect.isclass(ours):
        assert ours._fields == theirs._fields
        return
    ours_p = inspect.signature(ours).parameters
    theirs_p = inspect.signature(theirs).parameters
    assert list(ours_p) == list(theirs_p)
    for arg in ours_p:
        assert ours_p[arg].kind == theirs_p[arg].kind, arg
        if arg not in _CALLABLE_DEFAULTS:
            assert ours_p[arg].default == theirs_p[arg].default, arg


def _nonlinear(p):
    return jnp.sum(jnp.cosh(p["w"]) * jnp.arange(1.0, 4.0)) + jnp.sum(p["b"] ** 4)


def test_sophia_with_hutchinson_matches_optax():
    """Hutchinson's estimate with the same seed (a raw key for optax, an int
    for us), and 12 Sophia steps that refresh it at steps 1 and 11: optax's
    numbers."""
    params = {"w": jnp.array([0.5, -1.0, 2.0]), "b": jnp.array([1.0, -0.5])}
    ours = jol.hutchinson_estimator_diag_hessian(3)
    theirs = optax_reference(
        optax.contrib.hutchinson_estimator_diag_hessian(jax.random.PRNGKey(3))
    )
    estimates = []
    for t in (ours, theirs):
        state = t.init(params)
        for _ in range(2):  # the second draw uses the split key
            diagonal, state = t.update(params, state, params, obj_fn=_nonlinear)
        estimates.append(diagonal)
    for a, b in zip(*map(jax.tree.leaves, estimates), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6)

    def run(opt):
        def step(carry, _):
            p, s = carry
            updates, s = opt.update(jax.grad(_nonlinear)(p), s, p, obj_fn=_nonlinear)
            return (optax.apply_updates(p, updates), s), None

        return jax.lax.scan(step, (params, opt.init(params)), None, 12)[0][0]

    ours_p, theirs_p = jax.jit(
        lambda: [
            run(jol.sophia(0.05, hessian_diagonal_fn=ours)),
            run(
                optax_reference(optax.contrib.sophia(0.05, hessian_diagonal_fn=theirs))
            ),
        ]
    )()
    for a, b, start in zip(
        *map(jax.tree.leaves, (ours_p, theirs_p, params)), strict=True
    ):
        assert not np.allclose(a, start)
        np.testing.assert_allclose(a, b, rtol=1e-5)


@pytest.mark.parametrize("name", ["dadapt_adamw", "prodigy"])
def test_zero_gradients_keep_the_distance_estimate(name):
    """Zero gradients first (a frozen start, say): optax divides 0 by 0 and
    its estimate of d stays NaN for ever; ours keeps the initial estimate and
    then moves as optax's would have from there."""
    params = jnp.array([1.0, -2.0])
    grads = [jnp.zeros(2), jnp.array([2.0, -4.0]), jnp.array([1.0, -3.0])]

    def run(opt):
        state, p = opt.init(params), params
        for g in grads:
            updates, state = opt.update(g, state, p)
            p = optax.apply_updates(p, updates)
        return p, state

    ours, ours_state = run(getattr(jol, name)(estim_lr0=0.1))
    theirs, theirs_state = run(
        optax_reference(getattr(optax.contrib, name)(estim_lr0=0.1))
    )
    assert np.isnan(theirs_state.estim_lr) and np.isnan(theirs).all()
    assert np.isfinite(ours).all() and float(ours_state.estim_lr) >= 0.1
    # From the same state after the zero step, both give the same numbers.
    fresh = getattr(jol, name)(estim_lr0=0.1)
    state = fresh.update(grads[0], fresh.init(params), params)[1]
    oracle = optax_reference(getattr(optax.contrib, name)(estim_lr0=0.1))
    oracle_state = theirs_state._replace(
        **{f: getattr(state, f) for f in state._fields}
    )
    np.testing.assert_allclose(
        fresh.update(grads[1], state, params)[0],
        oracle.update(grads[1], oracle_state, params)[0],
        rtol=1e-6,
    )


def test_adopt_clip_value_fn_gets_a_float_count():
    """The bound's function gets the count of previous steps as a float in the
    parameters' precision (so ``t ** 0.25`` runs under strict promotion)."""
    seen = []

    def bound(count):
        seen.append(count.dtype)
        return 0.5 + 0 * count

    opt = jol.adopt(1.0, b1=0.0, b2=0.0, clip_value_fn=bound)
    params = jnp.zeros(2)
    state = opt.init(params)
    for g in (jnp.array([1.0, 1.0]), jnp.array([3.0, -0.25])):
        updates, state = opt.update(g, state, params)
    # g / |g_prev| = [3, -0.25], clipped to +-0.5, times -learning_rate
    np.testing.assert_allclose(updates, [-0.5, 0.25])
    assert seen == [jnp.float32, jnp.float32]


def test_mechanize_is_seen_through_by_current_learning_rate():
    opt = jol.mechanize(jol.adam(jol.exponential_decay(0.5, 1, 0.5)))
    params = jnp.ones(2)
    state = opt.init(params)
    for _ in range(2):
        _, state = opt.update(jnp.ones(2), state, params)
    np.testing.assert_allclose(jol.current_learning_rate(state), 0.25)


def test_missing_arguments_are_named():
    params = jnp.ones(2)
    momo = jol.momo()
    with pytest.raises(TypeError, match="momo needs the loss"):
        momo.update(params, momo.init(params), params)
    hutchinson = jol.hutchinson_estimator_diag_hessian()
    with pytest.raises(TypeError, match="obj_fn="):
        hutchinson.update(params, hutchinson.init(params), params)
    # params is a required argument of the updates of optax's transforms
    # (chains, as optax's, pass None on)
    for opt in (jol.scale_by_dog(("distance", 1.0)), jol.scale_by_dowg()):
        with pytest.raises(TypeError, match="required positional argument: 'params'"):
            opt.update(params, opt.init(params))
    for opt in (jol.dog(), jol.dowg(), jol.cocob(), jol.prodigy(), jol.madgrad(0.1)):
        with pytest.raises(ValueError, match="needs the parameters"):
            opt.update(params, opt.init(params))
    with pytest.raises(TypeError, match="init_step must be a pair"):
        jol.dog(init_step=1e-6)
    with pytest.raises(ValueError, match="print_win_rate_every_n_steps"):
        jol.sophia(0.1, verbose=True)


def test_state_dtypes():
    """Scalar states are float32 for bfloat16 parameters (optax's are
    bfloat16: the lowest dtype of the parameters); second moments of complex
    parameters are real; AdEMAMix's ``nu`` ignores ``mu_dtype`` (optax's takes
    it)."""
    half = {"w": jnp.ones(3, jnp.bfloat16), "b": jnp.ones(2)}
    scalars = {
        jol.dog(): ("max_dist", "sum_sq_norm_grads"),
        jol.dowg(): ("estim_sq_dist", "weighted_sq_norm_grads"),
        jol.dadapt_adamw(): ("estim_lr", "numerator_weighted"),
        jol.prodigy(): ("estim_lr", "numerator_weighted"),
        jol.momo(): ("barf", "gamma", "lb"),
        jol.momo_adam(): ("barf", "gamma", "lb"),
        jol.mechanize(jol.sgd(1.0)): ("r", "m", "v", "s"),
    }
    for opt, fields in scalars.items():
        state = opt.init(half)
        if isinstance(state, tuple) and not hasattr(state, "_fields"):  # a chain
            state = next(s for s in state if hasattr(s, fields[0]))
        assert {getattr(state, f).dtype for f in fields} == {jnp.dtype(jnp.float32)}

    complex_params = {"w": jnp.ones(3, jnp.complex64)}
    moduli = {
        jol.scale_by_madgrad(0.1): "grad_sum_sq",
        jol.scale_by_simplified_ademamix(): "n",
        jol.scale_by_ademamix(): "nu",
        jol.scale_by_acprop(): "nu",
    }
    for t, field in moduli.items():
        grads = {"w": jnp.array([1 + 2j, -1j, 3.0], jnp.complex64)}
        _, state = t.update(grads, t.init(complex_params), complex_params)
        assert getattr(state, field)["w"].dtype == jnp.float32

    state = jol.scale_by_ademamix(mu_dtype=jnp.bfloat16).init(jnp.ones(2))
    assert (state.m1.dtype, state.m2.dtype, state.nu.dtype) == (
        jnp.bfloat16,
        jnp.bfloat16,
        jnp.float32,
    )


def test_hutchinson_on_mixed_dtypes():
    """Each leaf's random signs are drawn in that leaf's dtype: optax casts
    them all to the lowest dtype, which ``jax.jvp`` refuses for a float32
    leaf."""
    params = {"w": jnp.ones(3), "b": jnp.ones(2, jnp.bfloat16)}

    def f(p):
        return jnp.sum(p["w"] ** 2) + jnp.sum(p["b"].astype(jnp.float32) ** 2)

    t = jol.hutchinson_estimator_diag_hessian()
    diagonal, _ = t.update(params, t.init(params), params, obj_fn=f)
    np.testing.assert_array_equal(diagonal["w"], [2.0, 2.0, 2.0])
    assert diagonal["b"].dtype == jnp.bfloat16
    theirs = optax_reference(optax.contrib.hutchinson_estimator_diag_hessian())
    with pytest.raises(TypeError, match="primal and tangent"):
        theirs.update(params, theirs.init(params), params, obj_fn=f)
