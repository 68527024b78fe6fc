"""The Moré-Thuente line search (MINPACK-2's ``dcsrch``), step by step (layer 2).

For $\\phi(\\alpha) = f(x + \\alpha d)$ it looks for a step with sufficient
decrease and small curvature,

$$
\\phi(\\alpha) \\le \\phi(0) + \\mu \\alpha \\phi'(0),\\qquad
|\\phi'(\\alpha)| \\le \\eta |\\phi'(0)|,
$$

keeping an interval $[\\alpha_x, \\alpha_y]$ that brackets such a step and
choosing each trial by safeguarded cubic and quadratic interpolation, on the
auxiliary function $\\phi(\\alpha) - \\phi(0) - \\mu \\alpha \\phi'(0)$ until a
step with $\\psi \\le 0$ and $\\phi' \\ge 0$ is seen. The caller evaluates
$\\phi$ and $\\phi'$ at each trial and calls `update`: scalars in, scalars
out, so the search runs inside any ``lax.while_loop``.

References:
    J. J. Moré and D. J. Thuente, *Line search algorithms with guaranteed
    sufficient decrease*, ACM Trans. Math. Software, 1994.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

_XTRAPL, _XTRAPU = 1.1, 4.0  # extrapolation factors while nothing is bracketed
CONVERGED, WARNING = 1, 2  # how a search ended


class Interval(NamedTuple):
    """The best step so far ($\\alpha_x$, its value and slope) and the other
    end of the interval; ``bracketed`` once a minimizer is enclosed."""

    stx: jax.Array
    fx: jax.Array
    gx: jax.Array
    sty: jax.Array
    fy: jax.Array
    gy: jax.Array
    bracketed: jax.Array


class SearchState(NamedTuple):
    """Everything the search keeps between trials."""

    interval: Interval
    stage2: jax.Array  # a step with psi <= 0 and phi' >= 0 was seen
    finit: jax.Array
    ginit: jax.Array
    gtest: jax.Array  # mu phi'(0)
    stmin: jax.Array  # the range the next trial may take
    stmax: jax.Array
    width: jax.Array
    width1: jax.Array


SIZE = 15  # the length of a packed `SearchState`


def pack(state: SearchState) -> jax.Array:
    """``state`` as one vector (the flags as 0 or 1): a loop carries one
    buffer instead of fifteen scalars, each of which costs a copy per trial."""
    dtype = state.finit.dtype
    return jnp.stack([jnp.asarray(v, dtype) for v in jax.tree.leaves(state)])


def unpack(v: jax.Array) -> SearchState:
    """The `SearchState` that `pack` gave ``v`` for."""
    interval = Interval(v[0], v[1], v[2], v[3], v[4], v[5], v[6] > 0)
    return SearchState(interval, v[7] > 0, *(v[i] for i in range(8, SIZE)))


def start(f0: jax.Array, g0: jax.Array, stp: jax.Array, ftol, stpmin, stpmax):
    """The state before the first trial ``stp`` from $\\phi(0)$ = ``f0`` and
    $\\phi'(0)$ = ``g0`` < 0."""
    zero = jnp.zeros_like(f0)
    width = stpmax - stpmin
    return SearchState(
        Interval(zero, f0, g0, zero, f0, g0, jnp.asarray(False)),
        jnp.asarray(False), f0, g0, ftol * g0, zero, stp + _XTRAPU * stp,
        width, width / 0.5,
    )  # fmt: skip


def _interpolate(
    iv: Interval, stp, fp, dp, stpmin, stpmax
) -> tuple[Interval, jax.Array]:
    """MINPACK-2's ``dcstep``: the next trial from the interval and the trial
    ``stp`` (value ``fp``, slope ``dp``), and the updated interval."""
    stx, fx, dx, sty, fy, dy = iv.stx, iv.fx, iv.gx, iv.sty, iv.fy, iv.gy
    sgnd = dp * jnp.sign(dx)
    higher = fp > fx
    opposite = ~higher & (sgnd < 0)
    decreasing = ~higher & ~opposite & (jnp.abs(dp) < jnp.abs(dx))

    theta = 3 * (fx - fp) / (stp - stx) + dx + dp
    s = jnp.maximum(jnp.abs(theta), jnp.maximum(jnp.abs(dx), jnp.abs(dp)))
    disc = (theta / s) ** 2 - (dx / s) * (dp / s)
    gamma = s * jnp.sqrt(jnp.where(decreasing, jnp.maximum(disc, 0), disc))
    # 1. higher value: cubic if closer to stx than the quadratic, else the mean
    g1 = jnp.where(stp < stx, -gamma, gamma)
    r1 = ((g1 - dx) + theta) / (((g1 - dx) + g1) + dp)
    cubic1 = stx + r1 * (stp - stx)
    quad1 = stx + ((dx / ((fx - fp) / (stp - stx) + dx)) / 2) * (stp - stx)
    step1 = jnp.where(
        jnp.abs(cubic1 - stx) < jnp.abs(quad1 - stx),
        cubic1,
        cubic1 + (quad1 - cubic1) / 2,
    )
    # 2. lower value, slopes of opposite signs: the farther of cubic and secant
    g23 = jnp.where(stp > stx, -gamma, gamma)
    r2 = ((g23 - dp) + theta) / (((g23 - dp) + g23) + dx)
    cubic2 = stp + r2 * (stx - stp)
    secant = stp + (dp / (dp - dx)) * (stx - stp)
    step2 = jnp.where(jnp.abs(cubic2 - stp) > jnp.abs(secant - stp), cubic2, secant)
    # 3. lower value, same signs, slope shrinking in magnitude
    r3 = ((g23 - dp) + theta) / ((g23 + (dx - dp)) + g23)
    cubic3 = jnp.where(
        (r3 < 0) & (g23 != 0),
        stp + r3 * (stx - stp),
        jnp.where(stp > stx, stpmax, stpmin),
    )
    closer = jnp.where(jnp.abs(cubic3 - stp) < jnp.abs(secant - stp), cubic3, secant)
    limit = stp + 0.66 * (sty - stp)
    closer = jnp.where(
        stp > stx, jnp.minimum(limit, closer), jnp.maximum(limit, closer)
    )
    farther = jnp.where(jnp.abs(cubic3 - stp) > jnp.abs(secant - stp), cubic3, secant)
    farther = jnp.maximum(stpmin, jnp.minimum(stpmax, farther))
    step3 = jnp.where(iv.bracketed, closer, farther)
    # 4. lower value, same signs, slope not shrinking: cubic on [stp, sty]
    theta4 = 3 * (fp - fy) / (sty - stp) + dy + dp
    s4 = jnp.maximum(jnp.abs(theta4), jnp.maximum(jnp.abs(dy), jnp.abs(dp)))
    g4 = s4 * jnp.sqrt((theta4 / s4) ** 2 - (dy / s4) * (dp / s4))
    g4 = jnp.where(stp > sty, -g4, g4)
    r4 = ((g4 - dp) + theta4) / (((g4 - dp) + g4) + dy)
    step4 = jnp.where(
        iv.bracketed,
        stp + r4 * (sty - stp),
        jnp.where(stp > stx, stpmax, stpmin),
    )
    step = jnp.where(
        higher, step1, jnp.where(opposite, step2, jnp.where(decreasing, step3, step4))
    )
    # the new interval: a higher value ends it; otherwise stp becomes the best
    # step, and the old best the other end when the slopes have opposite signs
    y_from_x = ~higher & (sgnd < 0)
    new = Interval(
        jnp.where(higher, stx, stp),
        jnp.where(higher, fx, fp),
        jnp.where(higher, dx, dp),
        jnp.where(higher, stp, jnp.where(y_from_x, stx, sty)),
        jnp.where(higher, fp, jnp.where(y_from_x, fx, fy)),
        jnp.where(higher, dp, jnp.where(y_from_x, dx, dy)),
        iv.bracketed | higher | opposite,
    )
    return new, step


def update(
    state: SearchState, stp, f, g, ftol, gtol, xtol, stpmin, stpmax
) -> tuple[SearchState, jax.Array, jax.Array]:
    """After the trial ``stp`` with $\\phi$ = ``f`` and $\\phi'$ = ``g``:
    ``(state, next_stp, outcome)``: ``outcome`` is 0 while the search goes
    on, `CONVERGED` when both conditions hold, `WARNING` when a warning ends
    it (rounding errors prevent progress, the interval is below ``xtol``, or
    the step sits at ``stpmax`` or ``stpmin``); ``stp`` is then the step to
    accept and the state is returned unchanged."""
    iv = state.interval
    ftest = state.finit + stp * state.gtest
    stage2 = state.stage2 | ((f <= ftest) & (g >= 0))
    warning = (
        (iv.bracketed & ((stp <= state.stmin) | (stp >= state.stmax)))
        | (iv.bracketed & (state.stmax - state.stmin <= xtol * state.stmax))
        | ((stp == stpmax) & (f <= ftest) & (g <= state.gtest))
        | ((stp == stpmin) & ((f > ftest) | (g >= state.gtest)))
    )
    converged = (f <= ftest) & (jnp.abs(g) <= gtol * (-state.ginit))
    done = warning | converged
    # In the first stage, a lower but not sufficiently lower value: step on
    # the auxiliary function psi (values and slopes shifted by mu phi'(0)).
    shift = jnp.where(~stage2 & (f <= iv.fx) & (f > ftest), state.gtest, 0)
    shifted = iv._replace(
        fx=iv.fx - iv.stx * shift,
        gx=iv.gx - shift,
        fy=iv.fy - iv.sty * shift,
        gy=iv.gy - shift,
    )
    new, step = _interpolate(
        shifted, stp, f - stp * shift, g - shift, state.stmin, state.stmax
    )
    new = new._replace(
        fx=new.fx + new.stx * shift,
        gx=new.gx + shift,
        fy=new.fy + new.sty * shift,
        gy=new.gy + shift,
    )
    width, width1 = state.width, state.width1
    span = jnp.abs(new.sty - new.stx)
    # bisect when the interval did not shrink enough over two trials
    step = jnp.where(
        new.bracketed & (span >= 0.66 * width1),
        new.stx + 0.5 * (new.sty - new.stx),
        step,
    )
    width1 = jnp.where(new.bracketed, width, width1)
    width = jnp.where(new.bracketed, span, width)
    stmin = jnp.where(
        new.bracketed, jnp.minimum(new.stx, new.sty), step + _XTRAPL * (step - new.stx)
    )
    stmax = jnp.where(
        new.bracketed, jnp.maximum(new.stx, new.sty), step + _XTRAPU * (step - new.stx)
    )
    step = jnp.minimum(jnp.maximum(step, stpmin), stpmax)
    # no further progress possible: go back to the best step
    stuck = new.bracketed & (
        (step <= stmin) | (step >= stmax) | (stmax - stmin <= xtol * stmax)
    )
    step = jnp.where(stuck, new.stx, step)
    moved = SearchState(
        new, stage2, state.finit, state.ginit, state.gtest, stmin, stmax, width,
        width1,
    )  # fmt: skip
    kept = state._replace(stage2=stage2)
    out = jax.tree.map(lambda a, b: jnp.where(done, a, b), kept, moved)
    outcome = jnp.where(converged, CONVERGED, jnp.where(warning, WARNING, 0))
    return out, jnp.where(done, stp, step), outcome
