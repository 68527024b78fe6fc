"""L-BFGS-B (layer 2): the loop behind ``minimize(fun, x0, lbfgsb(), ...)``.

Each iteration from $x_k$: the generalized Cauchy point $z$ of the quadratic
model along the projected gradient path (`lbfgsb_cauchy`), the subspace
minimizer $\\bar x$ over the elements free at $z$ (`lbfgsb_subspace`), and a
Moré-Thuente line search (`more_thuente`) on $x_k + \\alpha (\\bar x - x_k)$
with $\\alpha$ at most the step to the box (trial points clipped into it).
The pair $(s_k, y_k)$ joins the compact memory (`lbfgsb_memory`) when
$s_k^\\top y_k > \\varepsilon\\, (-g_k^\\top s_k)$. A failed line search, a
direction that does not descend, or a factorization that fails empties the
memory and retries the iteration once from $x_k$; with an empty memory a
failed line search ends the run. All of it follows the Fortran code of Zhu,
Byrd, Lu and Nocedal (version 3.0, with Morales and Nocedal's subspace step)
as scipy runs it, in the parameters' precision, with static shapes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from jaxopt_lite._loop import full_batch, lbfgsb_memory, more_thuente
from jaxopt_lite._loop.lbfgsb_cauchy import CauchyPoint, cauchy_point
from jaxopt_lite._loop.lbfgsb_subspace import subspace_point

PyTree = Any

# The Fortran code's line-search constants (not user settings there either).
LINESEARCH_FTOL, LINESEARCH_GTOL, LINESEARCH_XTOL = 1e-3, 0.9, 0.1
_BIG_STEP = 1e10  # the longest step when no bound limits it


class LBFGSB(NamedTuple):
    """The settings of an L-BFGS-B solve (see ``jaxopt_lite.lbfgsb``)."""

    memory_size: int
    ftol: Any
    gtol: Any
    max_linesearch_steps: int


class LBFGSBState(NamedTuple):
    """The compact memory and the step length $\\alpha$ of the last iteration
    (the history's ``learning_rate``)."""

    memory: lbfgsb_memory.Memory
    learning_rate: jax.Array


class _Trial(NamedTuple):
    """The outcome of one attempt at an iteration."""

    outcome: jax.Array  # how the line search ended (more_thuente's codes; 0: failed)
    x: jax.Array
    f: jax.Array
    g: jax.Array
    aux: Any
    gd: jax.Array  # g(x) . d at the accepted point
    gd0: jax.Array  # g . d at the start
    stp: jax.Array
    d: jax.Array
    dtd: jax.Array
    evals: jax.Array


def projected_gradient_max(x, g, lower, upper) -> jax.Array:
    """$\\max_i |P(x - g)_i - x_i|$, the Fortran code's ``projgr``."""
    pg = jnp.where(g < 0, jnp.maximum(x - upper, g), jnp.minimum(x - lower, g))
    return jnp.max(jnp.abs(pg), initial=0)


def _max_step(x, d, lower, upper, first, constrained) -> jax.Array:
    """The longest step along ``d`` that stays in the box: 1 at the first
    iteration of a constrained problem, none (``_BIG_STEP``) without bounds."""
    to_lower = (d < 0) & jnp.isfinite(lower)
    to_upper = (d > 0) & jnp.isfinite(upper)
    gap = jnp.where(to_lower, lower - x, upper - x)
    outside = jnp.where(to_lower, gap >= 0, gap <= 0)
    ratio = jnp.where(outside, 0, gap / jnp.where(d == 0, 1, d))
    ratio = jnp.where(to_lower | to_upper, ratio, _BIG_STEP)
    limit = jnp.minimum(_BIG_STEP, jnp.min(ratio, initial=_BIG_STEP))
    return jnp.where(constrained, jnp.where(first, 1.0, limit), _BIG_STEP).astype(
        x.dtype
    )


def lbfgsb_loop(
    fun: Callable,
    spec: LBFGSB,
    cfg: full_batch.Config,
    x0: PyTree,
    args: Any,
    tols: full_batch.Tolerances,
    lower: PyTree,
    upper: PyTree,
) -> full_batch.FullBatchState:
    """Minimize ``fun(x, args)`` (``(value, aux)`` with ``cfg.has_aux``) from
    ``x0`` inside ``[lower, upper]`` (``None``: no bounds) by L-BFGS-B, until
    a stopping test fires. Returns the state `minimize` reads, with an
    `LBFGSBState` as ``opt_state`` and the history rows."""
    flat0, unravel = ravel_pytree(x0)
    dtype, n, m = flat0.dtype, flat0.size, spec.memory_size
    if lower is None:
        lo, hi = jnp.full(n, -jnp.inf, dtype), jnp.full(n, jnp.inf, dtype)
    else:
        lo, hi = ravel_pytree(lower)[0], ravel_pytree(upper)[0]
    has_bound = jnp.isfinite(lo) | jnp.isfinite(hi)
    constrained = jnp.any(has_bound)
    boxed = jnp.all(jnp.isfinite(lo) & jnp.isfinite(hi))
    eps = jnp.finfo(dtype).eps
    ftol, gtol = jnp.asarray(spec.ftol, dtype), jnp.asarray(spec.gtol, dtype)

    def objective(x):
        out = fun(unravel(x), args)
        return out if cfg.has_aux else (out, None)

    value_and_grad = jax.value_and_grad(objective, has_aux=True)

    def evaluate(x):
        (value, aux), grad = value_and_grad(x)
        return jnp.asarray(value, dtype), grad, aux

    def grad_norm(x, g):
        return jnp.linalg.norm(jnp.where(full_batch.free_mask(x, g, lo, hi), g, 0))

    def search(mem, x, f, g, aux, first) -> _Trial:
        """One attempt: Cauchy point, subspace step, line search."""
        skip = ~constrained & (mem.count > 0)  # as the Fortran code: no GCP
        cauchy = jax.lax.cond(
            skip,
            lambda: CauchyPoint(x, jnp.zeros(2 * m, dtype), jnp.ones(n, bool)),
            lambda: cauchy_point(x, g, lo, hi, mem),
        )
        end = subspace_point(x, g, lo, hi, mem, cauchy)
        d = end - x
        dnorm = jnp.linalg.norm(d)
        max_step = _max_step(x, d, lo, hi, first, constrained)
        stp = jnp.where(first & ~boxed, jnp.minimum(1 / dnorm, max_step), 1)
        stp = jnp.minimum(stp, max_step)
        gd0 = g @ d
        usable = jnp.all(jnp.isfinite(d)) & (gd0 < 0)

        def trial_point(stp):
            moved = jnp.minimum(hi, jnp.maximum(lo, x + stp * d))
            return jnp.where(stp == 1, end, moved)

        # The carry's scalars in one vector: the search state, then stp, f,
        # g.d and the outcome (0 while searching); the evaluations apart.
        def more(c):
            return (c[0][-1] == 0) & (c[1] < spec.max_linesearch_steps) & usable

        def trial(c):
            v, evals = c[0], c[1]
            ls, stp = more_thuente.unpack(v[: more_thuente.SIZE]), v[more_thuente.SIZE]
            xt = trial_point(stp)
            ft, gt, auxt = evaluate(xt)
            gdt = gt @ d
            new_ls, new_stp, outcome = more_thuente.update(
                ls, stp, ft, gdt, LINESEARCH_FTOL, LINESEARCH_GTOL,
                LINESEARCH_XTOL, 0.0, max_step,
            )  # fmt: skip
            # A non-finite trial: halve the step towards the best one so far.
            finite = jnp.isfinite(ft) & jnp.isfinite(gdt)
            stx = ls.interval.stx
            packed = jnp.where(
                finite, more_thuente.pack(new_ls), v[: more_thuente.SIZE]
            )
            new_stp = jnp.where(finite, new_stp, stx + 0.5 * (stp - stx))
            outcome = jnp.where(finite, outcome, 0)
            tail = jnp.stack([new_stp, ft, gdt, outcome]).astype(dtype)
            return jnp.concatenate([packed, tail]), evals + 1, xt, gt, auxt

        ls = more_thuente.pack(
            more_thuente.start(f, gd0, stp, LINESEARCH_FTOL, 0.0, max_step)
        )
        tail = jnp.stack([stp, f, gd0, 0]).astype(dtype)
        start = (jnp.concatenate([ls, tail]), jnp.zeros([], jnp.int32), x, g, aux)
        v, evals, xt, gt, auxt = jax.lax.while_loop(more, trial, start)
        stp, ft, gdt, outcome = (v[more_thuente.SIZE + i] for i in range(4))
        return _Trial(outcome, xt, ft, gt, auxt, gdt, gd0, stp, d, dnorm**2, evals)

    def iteration(
        s: full_batch.FullBatchState,
    ) -> tuple[full_batch.FullBatchState, jax.Array]:
        x, f, g = s.params, s.value, s.grad
        mem = s.opt_state.memory
        out = search(mem, x, f, g, s.aux, s.step == 0)
        # A failed search with pairs in memory empties it and tries again
        # from x at the next call (which does not advance the step count).
        restart = (out.outcome == 0) & (mem.count > 0)
        # A search that ended on a warning without a decrease (rounding errors
        # prevent progress) ends the run at x, as a failure: scipy stops there
        # too, but calls it convergence when f did not increase.
        stuck = (out.outcome == more_thuente.WARNING) & (out.f >= f)
        failed = ((out.outcome == 0) | stuck) & ~restart
        x1, f1, g1, aux1 = jax.tree.map(
            lambda a, b: jnp.where(failed | restart, a, b), (x, f, g, s.aux),
            (out.x, out.f, out.g, out.aux),
        )  # fmt: skip
        # The pair s = stp d, y = g1 - g, with s.y from the line search's
        # slopes; skipped without enough curvature.
        unit = out.stp == 1
        sy = jnp.where(unit, out.gd - out.gd0, (out.gd - out.gd0) * out.stp)
        descent = jnp.where(unit, -out.gd0, -out.gd0 * out.stp)
        pair = jnp.where(unit, out.d, out.stp * out.d)
        ss = jnp.where(unit, out.dtd, out.stp * out.stp * out.dtd)
        accept = ~failed & ~restart & (sy > eps * descent)
        mem = lbfgsb_memory.push(mem, pair, out.g - g, sy, ss, accept, restart)
        rate = jnp.where(failed | restart, 0, out.stp).astype(dtype)
        evals = s.fun_evals + out.evals
        new = full_batch.FullBatchState(
            x1, LBFGSBState(mem, rate), s.step + jnp.where(restart, 0, 1), f1, g1,
            jnp.where(restart, s.grad_norm, grad_norm(x1, g1)), aux1, s.status,
            evals, evals, None,
        )  # fmt: skip
        status = full_batch.stopping_status(s, new, tols, cfg, first=False)
        reduced = (f - f1) <= ftol * jnp.maximum(
            jnp.maximum(jnp.abs(f), jnp.abs(f1)), 1
        )
        done = (projected_gradient_max(x1, g1, lo, hi) <= gtol) | reduced
        status = jnp.where(
            (status != full_batch.NONFINITE) & done, full_batch.CONVERGED, status
        )
        status = jnp.where(failed, full_batch.LINESEARCH_FAILED, status)
        status = jnp.where(restart, s.status, status).astype(jnp.int32)
        row = jnp.stack([s.value, s.grad_norm, rate]).astype(vdtype)
        return new._replace(status=status), row

    f0, g0, aux0 = evaluate(flat0)
    vdtype = jax.eval_shape(lambda: objective(flat0)[0]).dtype
    one = jnp.ones([], jnp.int32)
    state = LBFGSBState(lbfgsb_memory.empty(m, n, dtype), jnp.zeros([], dtype))
    init = full_batch.FullBatchState(
        flat0, state, jnp.zeros([], jnp.int32), f0, g0, grad_norm(flat0, g0), aux0,
        jnp.full([], full_batch.RUNNING, jnp.int32), one, one, None,
    )  # fmt: skip
    status = full_batch.stopping_status(init, init, tols, cfg, first=True)
    small = projected_gradient_max(flat0, g0, lo, hi) <= gtol
    status = jnp.where(
        (status != full_batch.NONFINITE) & small, full_batch.CONVERGED, status
    )
    init = init._replace(status=status.astype(jnp.int32))
    nan_row = jnp.full([3], jnp.nan, vdtype)
    if n == 0:  # nothing to move: x0 is the solution (its status says so)
        final, rows = full_batch.run_rows(lambda s: (s, nan_row), init, nan_row, cfg)
    else:
        final, rows = full_batch.run_rows(iteration, init, nan_row, cfg)
    return final._replace(
        params=unravel(final.params),
        grad=unravel(final.grad),
        value=final.value.astype(vdtype),
        history=rows,
    )
