"""Compile once: new hyper-parameter values reuse the compiled programs of
`fit`, `minimize` and `sweep`; the cache is never stale; the NaN guard."""

from __future__ import annotations

import contextlib
import functools
import math
import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from helpers import assert_trees_close, count_compiles
from transform_table import rows

import jaxopt_lite as jol
from jaxopt_lite._host import programs

X = jax.random.normal(jax.random.key(0), (32, 3))
DATA = {"x": X, "y": X @ jnp.array([1.0, -2.0, 0.5])}
PARAMS = {"w": jnp.zeros(3), "b": jnp.zeros([])}


def loss_fn(p, b):
    return jnp.mean((b["x"] @ p["w"] + p["b"] - b["y"]) ** 2)


def quadratic(p):
    return jnp.sum((p["w"] - 1.0) ** 2) + jnp.sum(jnp.sin(p["b"] + 0.5))


def _compiles(counter):
    return sum(counter.values())


def _nudged(value):
    """Another valid value of a hyper-parameter (a fraction of it)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value + 1
    return value * 0.5


def _explicit(row):
    """The row's kwargs with its traceable hyper-parameters given explicitly,
    and the same with each of them changed."""
    base = {**row.kwargs, **{n: row.hyper_value(n) for n in row.traced}}
    return base, {**base, **{n: _nudged(base[n]) for n in row.traced}}


TRACED_ROWS = [r for r in rows("optimizer") if r.traced]
# The rows whose reuse is also checked by compiling and running: a core
# optimizer, one that reads ``value=`` and a contrib one with extra state.
RUN_ROWS = ("adam", "polyak_sgd", "sophia")


@contextlib.contextmanager
def _count_traces():
    """Count the traces of the optimizer inside a program (each trace of a
    program rebuilds it with `programs.join_optimizer`; a program whose trace
    is reused, by ``jax.jit``'s cache, rebuilds nothing)."""
    calls = [0]
    join = programs.join_optimizer

    def counted(*args):
        calls[0] += 1
        return join(*args)

    programs.join_optimizer = counted
    try:
        yield calls
    finally:
        programs.join_optimizer = join


@pytest.mark.parametrize("row", TRACED_ROWS, ids=lambda r: r.name)
def test_minimize_new_hyperparameters_reuse_the_traced_program(row):
    # For every row, without compiling: minimize's program (traced under
    # eval_shape) is traced once and reused for new hyper-parameter values,
    # which are its inputs, not part of its key.
    base, changed = _explicit(row)

    def trace(kwargs):
        return jax.eval_shape(
            lambda x0: jol.minimize(quadratic, x0, row.factory(**kwargs), steps=4),
            PARAMS,
        )

    with _count_traces() as traces:
        trace(base)
        assert traces[0] == 1
        trace(changed)
    assert traces[0] == 1
    key, numbers = programs.split_optimizer(row.factory(**base))
    changed_key, changed_numbers = programs.split_optimizer(row.factory(**changed))
    assert changed_key == key
    assert changed_numbers != numbers  # the new numbers reach the program
    rebuilt = programs.join_optimizer(key, changed_numbers)
    assert programs.split_optimizer(rebuilt) == (key, changed_numbers)


def test_the_trace_count_sees_a_new_structure():
    # The control of the test above: a structural change is traced again.
    def trace(opt):
        return jax.eval_shape(
            lambda x0: jol.minimize(quadratic, x0, opt, steps=4), PARAMS
        )

    with _count_traces() as traces:
        trace(jol.sgd(0.1))
        trace(jol.sgd(0.1, momentum=0.9))
    assert traces[0] == 2


@pytest.mark.parametrize(
    "row", [r for r in TRACED_ROWS if r.name in RUN_ROWS], ids=lambda r: r.name
)
def test_minimize_new_hyperparameters_reuse_the_program(row):
    base, changed = _explicit(row)

    def run(kwargs, fun=quadratic):
        return jol.minimize(fun, PARAMS, row.factory(**kwargs), steps=4)

    first = run(base)
    with count_compiles() as compiles:
        reused = run(changed)
    assert _compiles(compiles) == 0
    # A new function object: a program of its own, compiled afresh for the
    # new values (functions are keyed by identity).
    fresh = run(changed, lambda p: quadratic(p))
    for a, b in zip(_leaves(reused), _leaves(fresh), strict=True):
        np.testing.assert_array_equal(a, b)
    # The new numbers took effect.
    assert not all(
        np.array_equal(a, b)
        for a, b in zip(_leaves(first.params), _leaves(reused.params), strict=True)
    )


def _leaves(tree):
    return [
        jax.random.key_data(x)
        if isinstance(x, jax.Array) and jnp.issubdtype(x.dtype, jax.dtypes.prng_key)
        else x
        for x in jax.tree.leaves(tree)
    ]


FAMILIES = {
    "sgd_momentum": lambda v: jol.sgd(v, momentum=0.9 - v),
    "adam": lambda v: jol.adam(v, b1=0.9 - v),
    "adamw_weight_decay": lambda v: jol.adamw(0.05, weight_decay=v),
    "rmsprop": lambda v: jol.rmsprop(v, decay=0.9, momentum=0.5),
    "lion": lambda v: jol.lion(v / 10),
    "lamb": lambda v: jol.lamb(v),
    "adafactor": lambda v: jol.adafactor(v),
    "polyak": lambda v: jol.polyak_sgd(max_learning_rate=v),
    "clip_chain": lambda v: jol.chain(jol.clip_by_global_norm(v), jol.sgd(0.1)),
    "schedule_peak": lambda v: jol.adam(
        jol.warmup_cosine_decay_schedule(0.0, v, 3, 12)
    ),
    "inject": lambda v: jol.inject_hyperparams(jol.adam)(learning_rate=v),
}


@pytest.mark.parametrize("make", FAMILIES.values(), ids=FAMILIES.keys())
def test_fit_programs_are_keyed_by_structure(make):
    # For every family, without compiling: fit's programs are keyed by the
    # optimizer's structure (`programs.split_optimizer`), which new values
    # keep; the values are the programs' inputs, of the same types.
    splits = [programs.split_optimizer(make(v)) for v in (0.1, 0.05, 0.2)]
    keys = [key for key, _ in splits]
    assert keys[0] == keys[1] == keys[2] and len({hash(k) for k in keys}) == 1
    avals = [[jax.typeof(x) for x in numbers] for _, numbers in splits]
    assert avals[0] == avals[1] == avals[2]
    assert splits[0][1] != splits[1][1] != splits[2][1] != splits[0][1]


# Compiled and run for two families: a schedule's numbers (in adam) and
# inject_hyperparams.
@pytest.mark.parametrize(
    "make",
    [FAMILIES[k] for k in ("schedule_peak", "inject")],
    ids=("schedule_peak", "inject"),
)
def test_fit_new_hyperparameters_reuse_the_program(make):
    def run(v, loss=loss_fn):
        return jol.fit(
            loss, PARAMS, make(v), DATA, steps=12, batch_size=8, progress=False
        )

    first = run(0.1)
    with count_compiles() as compiles:
        later = [run(v) for v in (0.05, 0.2)]
    assert _compiles(compiles) == 0
    # A new loss object: programs of their own, compiled afresh for 0.2.
    fresh = run(0.2, lambda p, b: loss_fn(p, b))
    np.testing.assert_array_equal(later[-1].params["w"], fresh.params["w"])
    np.testing.assert_array_equal(later[-1].history["loss"], fresh.history["loss"])
    assert not np.array_equal(first.params["w"], later[-1].params["w"])


def test_a_structural_change_compiles_once_per_structure():
    def run(opt):
        return jol.minimize(quadratic, PARAMS, opt, steps=3)

    run(jol.sgd(0.1))
    with count_compiles() as compiles:
        run(jol.sgd(0.1, momentum=0.9))  # momentum None -> 0.9: new structure
    assert _compiles(compiles) == 1
    with count_compiles() as compiles:
        run(jol.sgd(0.3, momentum=0.5))
        run(jol.sgd(0.2))
    assert _compiles(compiles) == 0
    with count_compiles() as compiles:
        run(jol.chain(jol.clip(1.0), jol.sgd(0.1)))
    assert _compiles(compiles) == 1


def test_split_and_join_round_trip():
    sched = jol.piecewise_constant_schedule(0.1, {5: 0.5, 10: 0.1})
    opt = jol.chain(jol.clip_by_global_norm(2.0), jol.adamw(sched, mask=None))
    key, numbers = programs.split_optimizer(opt)
    assert numbers == [2.0, 0.1, 0.5, 0.1]
    again_key, _ = programs.split_optimizer(
        jol.chain(
            jol.clip_by_global_norm(3.0),
            jol.adamw(jol.piecewise_constant_schedule(0.2, {5: 0.4, 10: 0.3})),
        )
    )
    assert again_key != key  # mask=None given explicitly is part of the structure
    same_key, _ = programs.split_optimizer(
        jol.chain(
            jol.clip_by_global_norm(3.0),
            jol.adamw(
                jol.piecewise_constant_schedule(0.2, {5: 0.4, 10: 0.3}), mask=None
            ),
        )
    )
    assert same_key == key and hash(same_key) == hash(key)
    rebuilt = programs.join_optimizer(key, [1.0, 0.3, 0.5, 0.1])
    assert programs.split_optimizer(rebuilt) == (key, [1.0, 0.3, 0.5, 0.1])
    assert (
        programs.split_optimizer(jol.sgd(0.1, nesterov=True))[0]
        != programs.split_optimizer(jol.sgd(0.1, nesterov=False))[0]
    )
    # other boundaries are another structure (the dict's keys are static)
    other, _ = programs.split_optimizer(
        jol.chain(
            jol.clip_by_global_norm(3.0),
            jol.adamw(
                jol.piecewise_constant_schedule(0.2, {6: 0.4, 10: 0.3}), mask=None
            ),
        )
    )
    assert other != key


def test_sweep_with_a_fresh_equivalent_make_optimizer_reuses_its_program():
    def run(rates):
        return jol.sweep(
            lambda learning_rate: jol.adam(learning_rate, b1=0.8),
            {"learning_rate": rates},
            loss_fn,
            PARAMS,
            DATA,
            steps=6,
            batch_size=8,
        )

    run([0.1, 0.2])
    with count_compiles() as compiles:
        result = run([0.05, 0.3])
    assert _compiles(compiles) == 0
    alone = jol.fit(
        loss_fn,
        PARAMS,
        jol.adam(0.3, b1=0.8),
        DATA,
        steps=6,
        batch_size=8,
        key=jax.random.fold_in(jax.random.key(0), 0),
        progress=False,
    )
    assert_trees_close(
        jax.tree.map(lambda x: x[1, 0], result.params), alone.params, rtol=1e-6
    )


def test_foreign_transforms_are_keyed_by_identity():
    opt = optax.adam(0.1)
    first = jol.minimize(quadratic, PARAMS, opt, steps=3)
    with count_compiles() as compiles:
        again = jol.minimize(quadratic, PARAMS, opt, steps=3)
    assert _compiles(compiles) == 0
    np.testing.assert_array_equal(first.params["w"], again.params["w"])
    other = jol.minimize(quadratic, PARAMS, optax.adam(0.5), steps=3)
    assert not np.array_equal(other.params["w"], first.params["w"])


# --- never stale ---------------------------------------------------------------


class Shifted:
    def __init__(self, c):
        self.c = c

    def f(self, x):
        return jnp.sum((x - self.c) ** 2)

    __call__ = f


def test_a_bound_method_after_mutation_is_traced_again():
    m = Shifted(1.0)
    opt = jol.gd(0.25)
    first = jol.minimize(m.f, jnp.zeros(2), opt, steps=20)
    m.c = 5.0
    second = jol.minimize(m.f, jnp.zeros(2), opt, steps=20)
    np.testing.assert_allclose(first.params, [1.0, 1.0], rtol=1e-5)
    np.testing.assert_allclose(second.params, [5.0, 5.0], rtol=1e-5)


def test_fit_with_a_mutated_callable_object_and_partials():
    class Loss:
        scale = 1.0

        def __call__(self, p, b):
            return self.scale * loss_fn(p, b)

    loss = Loss()
    opt = jol.sgd(0.1)

    def run(fn):
        return jol.fit(fn, PARAMS, opt, DATA, steps=4, progress=False)

    before = run(loss.__call__)
    loss.scale = 0.0  # a new bound method: traced again
    after = run(loss.__call__)
    np.testing.assert_array_equal(after.params["w"], np.zeros(3))
    assert not np.array_equal(before.params["w"], np.zeros(3))

    def scaled(p, b, scale):
        return scale * loss_fn(p, b)

    one = run(functools.partial(scaled, scale=1.0))
    zero = run(functools.partial(scaled, scale=0.0))
    np.testing.assert_array_equal(one.params["w"], before.params["w"])
    np.testing.assert_array_equal(zero.params["w"], np.zeros(3))


def test_new_closures_with_a_reused_id_never_match():
    for c in (1.0, 2.0, 3.0, 4.0):
        result = jol.minimize(
            lambda x, c=c: jnp.sum((x - c) ** 2), jnp.zeros(2), jol.gd(0.25), steps=30
        )
        np.testing.assert_allclose(result.params, [c, c], rtol=1e-5)


def test_an_equinox_module_loss_fn_has_its_arrays_as_inputs():
    eqx = pytest.importorskip("equinox")

    class Weighted(eqx.Module):
        weights: jax.Array

        def __call__(self, p, b):
            residual = b["x"] @ p["w"] + p["b"] - b["y"]
            return jnp.mean(self.weights[: residual.shape[0]] * residual**2)

    opt = jol.sgd(0.1)
    ones = Weighted(jnp.ones(32))
    first = jol.fit(ones, PARAMS, opt, DATA, steps=4, progress=False)
    zeros = eqx.tree_at(lambda m: m.weights, ones, jnp.zeros(32))
    with count_compiles() as compiles:
        second = jol.fit(zeros, PARAMS, opt, DATA, steps=4, progress=False)
    assert _compiles(compiles) == 0  # same structure: the arrays are inputs
    np.testing.assert_array_equal(second.params["w"], np.zeros(3))
    plain = jol.fit(loss_fn, PARAMS, opt, DATA, steps=4, progress=False)
    np.testing.assert_allclose(first.params["w"], plain.params["w"], rtol=1e-6)
    # A bound method of a module is a pytree-callable too.
    result = jol.minimize(Shifty(jnp.full(2, 3.0)).f, jnp.zeros(2), jol.gd(0.25))
    np.testing.assert_allclose(result.params, [3.0, 3.0], rtol=1e-5)


try:
    import equinox as _eqx

    class Shifty(_eqx.Module):
        c: jax.Array

        def f(self, x):
            return jnp.sum((x - self.c) ** 2)

except ImportError:  # pragma: no cover
    pass


def test_cached_checks_still_reject_other_shapes():
    fun = lambda x: jnp.sum(x**2) if x.ndim == 1 else x
    jol.minimize(fun, jnp.ones(2), jol.gd(0.1), steps=2)
    with pytest.raises(TypeError, match=r"shape \(2, 2\)"):
        jol.minimize(fun, jnp.ones((2, 2)), jol.gd(0.1), steps=2)


# --- float64 and bfloat16: the same numbers as a fresh compile ------------------


@pytest.mark.parametrize(
    ("make", "rtol"),
    [(lambda v: jol.adam(v, b1=0.9), 1e-15), (lambda v: jol.sgd(v, momentum=0.9), 0)],
    ids=["adam", "sgd_momentum"],
)
def test_reused_program_matches_a_baked_compile_in_float64(make, rtol):
    # Bit for bit where XLA compiles the same arithmetic; a baked constant can
    # let XLA's simplifier fold differently (adam: 1 ulp in float64).
    with jax.enable_x64(True):
        x0 = {"w": jnp.zeros(3, jnp.float64), "b": jnp.zeros([], jnp.float64)}
        jol.minimize(quadratic, x0, make(0.3), steps=5)
        reused = jol.minimize(quadratic, x0, make(0.1), steps=5)
        opt = make(0.1)

        @jax.jit
        def baked(p):
            s = opt.init(p)
            for _ in range(5):
                g = jax.grad(quadratic)(p)
                u, s = opt.update(g, s, p)
                p = optax.apply_updates(p, u)
            return p

        expected = baked(x0)
        assert reused.params["w"].dtype == jnp.float64
        assert_trees_close(reused.params, expected, rtol=rtol, atol=0)


def test_reused_program_keeps_bfloat16_and_matches_a_baked_compile():
    x0 = {"w": jnp.zeros(3, jnp.bfloat16), "b": jnp.zeros([], jnp.bfloat16)}

    def f(p):
        return quadratic(p).astype(jnp.float32)

    jol.minimize(f, x0, jol.sgd(0.3, momentum=0.9), steps=5)
    reused = jol.minimize(f, x0, jol.sgd(0.1, momentum=0.9), steps=5)
    opt = jol.sgd(0.1, momentum=0.9)

    @jax.jit
    def baked(p):
        s = opt.init(p)
        for _ in range(5):
            u, s = opt.update(jax.grad(f)(p), s, p)
            p = optax.apply_updates(p, u)
        return p

    assert reused.params["w"].dtype == jnp.bfloat16
    np.testing.assert_array_equal(reused.params["w"], baked(x0)["w"])


# --- the NaN guard ----------------------------------------------------------------


def _always_guarded(monkeypatch):
    """The guard as it was: the guarded step in every chunk."""
    from jaxopt_lite._loop import chunk, guard

    monkeypatch.setattr(guard, "run_chunk", chunk.run_chunk)
    jax.clear_caches()


def _nan_data():
    x = np.array(X)
    x[5, 1] = np.nan  # one bad example: every batch holding it is skipped
    return {"x": jnp.asarray(x), "y": DATA["y"]}


@pytest.mark.parametrize("chunk_size", [None, 4])
def test_guard_skips_and_counts_and_equals_the_always_guarded_run(
    monkeypatch, chunk_size
):
    def run(data):
        return jol.fit(
            loss_fn,
            PARAMS,
            jol.adam(0.1),
            data,
            steps=12,
            batch_size=8,
            chunk_size=chunk_size,
            progress=False,
        )

    clean, bad = run(DATA), run(_nan_data())
    assert clean.history["skipped"].sum() == 0
    assert bad.history["skipped"].sum() == 3  # one batch per epoch of 4
    assert all(
        np.isfinite(x).all() for x in jax.tree.leaves((bad.params, bad.opt_state))
    )
    _always_guarded(monkeypatch)
    clean_ref, bad_ref = run(DATA), run(_nan_data())
    for got, ref in ((clean, clean_ref), (bad, bad_ref)):
        for a, b in zip(
            jax.tree.leaves((got.params, got.opt_state, got.history)),
            jax.tree.leaves((ref.params, ref.opt_state, ref.history)),
            strict=True,
        ):
            np.testing.assert_array_equal(a, b)
    jax.clear_caches()


# --- the persistent compilation cache -------------------------------------------

_CHILD = textwrap.dedent(
    """
    import sys, jax, jax.numpy as jnp
    jax.config.update("jax_compilation_cache_dir", sys.argv[1])
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    import jaxopt_lite as jol
    events = []
    jax.monitoring.register_event_listener(lambda e, **k: events.append(e))
    x = jnp.linspace(-1, 1, 32)
    r = jol.fit(lambda p, b: jnp.mean((p * b - 2 * b) ** 2), jnp.zeros([]),
                jol.adam(0.1), x, steps=20, batch_size=8, progress=False)
    print(events.count("/jax/compilation_cache/cache_misses"),
          events.count("/jax/compilation_cache/cache_hits"), float(r.params))
    """
)


def test_a_second_process_reads_the_loop_from_the_persistent_cache(tmp_path):
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    env["PYTHONPATH"] = os.pathsep.join(
        [os.getcwd(), *filter(None, [env.get("PYTHONPATH")])]
    )

    def child():
        out = subprocess.run(
            [sys.executable, "-c", _CHILD, str(tmp_path / "cache")],
            capture_output=True,
            text=True,
            env=env,
            check=True,
        ).stdout.split()
        return int(out[0]), int(out[1]), float(out[2])

    # In the first process every program (fit's init and chunk, and the small
    # ones behind jnp.linspace and the default key) is compiled and written.
    misses, hits, first = child()
    assert misses >= 2 and hits == 0
    # In the second, all of them come from the cache: nothing is compiled.
    misses_again, hits_again, second = child()
    assert misses_again == 0 and hits_again == misses
    assert second == first and math.isfinite(second)


@pytest.mark.parametrize("x64", [False, True], ids=["float32", "float64"])
def test_two_programs_calling_minimize_with_the_same_objective(x64):
    # Two different jitted programs around one objective and optimizer: each
    # traces minimize's program into its own, and both keep working (a cache
    # of arrays made inside one trace once leaked into the other).
    def rosenbrock(x):
        return jnp.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)

    with jax.enable_x64(x64):
        opt = jol.lbfgs()
        first = jax.jit(lambda x: jol.minimize(rosenbrock, x, opt, steps=200).params)
        second = jax.jit(lambda x: jol.minimize(rosenbrock, x, opt, steps=200).value)
        x0 = jnp.zeros(10)
        for _ in range(2):
            np.testing.assert_allclose(first(x0), jnp.ones(10), atol=1e-3)
            assert float(second(x0)) < 1e-6
            assert float(second(x0 + 0.1)) < 1e-6
