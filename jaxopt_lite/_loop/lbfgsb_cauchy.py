"""The generalized Cauchy point of L-BFGS-B (layer 2): pure arrays.

Along the projected steepest-descent path $x(t) = P(x - t g)$ the quadratic
model $m(z) = g^\\top (z - x) + \\tfrac12 (z - x)^\\top B (z - x)$ is piecewise
quadratic in $t$, with a breakpoint $t_i$ where element $i$ reaches its bound.
The generalized Cauchy point is the first local minimizer of $m$ along the
path. The Fortran code visits the breakpoints in increasing order, updating
the slope $f'$ and curvature $f''$ of each segment in $O(m^2)$ (Byrd, Lu,
Nocedal and Zhu 1995, Algorithm CP) until the minimizer $-f'/f''$ falls
inside the current segment. Here the breakpoints are taken a chunk at a time
(the ``_CHUNK`` smallest left, by ``lax.top_k``), and the segments of a chunk
all at once: with $d_k$ the direction on segment $k$ (the elements not yet
stopped), $p_k = W^\\top d_k$ and $c_k = W^\\top (x(t_k) - x)$, prefix sums
over the chunk, and

$$
f'_k = -\\lVert d_k \\rVert^2 + \\theta t_k \\lVert d_k \\rVert^2 - c_k^\\top M p_k,
\\qquad f''_k = \\theta \\lVert d_k \\rVert^2 - p_k^\\top M p_k .
$$

A ``lax.while_loop`` moves to the next chunk only while no segment of this
one holds the minimizer: usually one chunk, $O(n \\log c + m c^2 + m^2 c)$
work without a full sort or an $O(n)$ prefix sum (XLA:CPU's is quadratic).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxopt_lite._loop import lbfgsb_memory

# Element states, the Fortran code's ``iwhere`` (all but "at a bound" are free).
UNBOUNDED, FREE, ZERO_GRADIENT, AT_LOWER, AT_UPPER, FIXED = -1, 0, -3, 1, 2, 3


_CHUNK = 64  # breakpoints taken at a time


class CauchyPoint(NamedTuple):
    """The generalized Cauchy point, ``c`` $= W^\\top$ (``point`` $- x$), and
    per element whether it is free there (not held at a bound)."""

    point: jax.Array
    c: jax.Array
    free: jax.Array


class _Sweep(NamedTuple):
    """The sweep along the path, chunk by chunk."""

    gone: jax.Array  # per element: its breakpoint was passed
    t: jax.Array  # the last breakpoint passed (0 before the first)
    sq: jax.Array  # |d|^2 of the elements still moving
    p: jax.Array  # W^T d over them
    frozen: jax.Array  # the sum of t_i d_i w_i over those stopped
    k: jax.Array  # breakpoints passed
    found: jax.Array
    chunks: jax.Array  # chunks looked at
    t_end: jax.Array  # the Cauchy point's t, once found
    c_end: jax.Array  # its W^T (x(t) - x)


def element_states(
    x: jax.Array, g: jax.Array, lower: jax.Array, upper: jax.Array
) -> jax.Array:
    """Each element's state at ``x`` for the direction $-g$: held at a bound
    (the gradient pushes it out), fixed ($l = u$), unbounded, zero gradient,
    or free."""
    has_lower, has_upper = jnp.isfinite(lower), jnp.isfinite(upper)
    at_lower = has_lower & (x - lower <= 0)
    at_upper = has_upper & (upper - x <= 0)
    state = jnp.where(
        at_lower,
        jnp.where(g >= 0, AT_LOWER, FREE),
        jnp.where(
            at_upper,
            jnp.where(g <= 0, AT_UPPER, FREE),
            jnp.where(g == 0, ZERO_GRADIENT, FREE),
        ),
    )
    state = jnp.where(has_lower | has_upper, state, UNBOUNDED)
    return jnp.where(has_lower & has_upper & (upper - lower <= 0), FIXED, state)


def cauchy_point(
    x: jax.Array,
    g: jax.Array,
    lower: jax.Array,
    upper: jax.Array,
    mem: lbfgsb_memory.Memory,
) -> CauchyPoint:
    """The generalized Cauchy point from ``x`` with gradient ``g`` for the
    model of ``mem``, in ``[lower, upper]``."""
    dtype = x.dtype
    eps = jnp.finfo(dtype).eps
    state = element_states(x, g, lower, upper)
    moving = (state == FREE) | (state == UNBOUNDED)
    d = jnp.where(moving, -g, 0)
    down = moving & jnp.isfinite(lower) & (d < 0)
    up = moving & jnp.isfinite(upper) & (d > 0)
    has_break = down | up
    t = jnp.where(down, (x - lower) / -d, jnp.where(up, (upper - x) / d, jnp.inf))
    # every moving element stops at a bound: the path ends at the last one
    bounded = ~jnp.any(moving & ~has_break & (d != 0))
    w = jnp.concatenate([mem.y, mem.theta * mem.s])  # W^T: [2m, n]
    theta, middle = mem.theta, mem.middle
    size = min(x.size, _CHUNK)
    # before[j, i]: breakpoint i of a chunk comes before segment j
    before = (jnp.arange(size)[None, :] < jnp.arange(size)[:, None]).astype(dtype)
    f2_org = theta * (d @ d)

    def more(s: _Sweep) -> jax.Array:
        return ~s.found & (s.chunks <= x.size // size + 1)

    def chunk(s: _Sweep) -> _Sweep:
        neg, idx = jax.lax.top_k(jnp.where(s.gone | ~has_break, -jnp.inf, -t), size)
        ends = -neg  # the chunk's breakpoints, increasing; inf past the last
        real = jnp.isfinite(ends)
        dc = jnp.where(real, d[idx], 0)
        wc = jnp.where(real[None, :], w[:, idx], 0)
        starts = jnp.concatenate([s.t[None], ends[:-1]])  # segment j: [start, end]
        # |d|^2, W^T d and W^T (x(t) - x) at the start of each segment
        sq = s.sq - (dc * dc) @ before.T
        p = s.p[:, None] - (wc * dc[None, :]) @ before.T
        frozen = wc * jnp.where(real, ends * dc, 0)[None, :]  # t_i d_i w_i
        c = starts[None, :] * p + s.frozen[:, None] + frozen @ before.T
        mp = middle @ p
        f1 = -sq + theta * starts * sq - jnp.sum(c * mp, axis=0)
        f2 = theta * sq - jnp.sum(p * mp, axis=0)
        f2 = jnp.where(s.k + jnp.arange(size) > 0, jnp.maximum(eps * f2_org, f2), f2)
        t_min = -f1 / f2
        # past the last breakpoint: 0 when every moving element has stopped
        t_min = jnp.where(~real & bounded, 0, t_min)
        inside = jnp.isfinite(starts) & (t_min < ends - starts)
        found = jnp.any(inside)
        j = jnp.argmax(inside)
        passing = real & (jnp.arange(size) < jnp.where(found, j, size))
        t_end = jnp.maximum(t_min[j], 0)
        return _Sweep(
            s.gone.at[idx].set(s.gone[idx] | passing),
            jnp.where(
                jnp.any(passing), jnp.max(jnp.where(passing, ends, -jnp.inf)), s.t
            ),
            s.sq - jnp.sum(jnp.where(passing, dc * dc, 0)),
            s.p - wc @ jnp.where(passing, dc, 0),
            s.frozen + frozen @ passing.astype(dtype),
            s.k + jnp.sum(passing, dtype=jnp.int32),
            found,
            s.chunks + 1,
            jnp.where(found, starts[j] + t_end, s.t_end),
            jnp.where(found, c[:, j] + t_end * p[:, j], s.c_end),
        )

    zero = jnp.zeros([], dtype)
    p0 = w @ d
    # The first segment alone needs no sort: when its minimizer comes before
    # the smallest breakpoint (often), the loop does not run.
    t_first = (d @ d) / (f2_org - p0 @ (middle @ p0))  # -f1 / f2
    first = t_first < jnp.min(t, initial=jnp.inf)
    t_first = jnp.maximum(t_first, 0)
    start = _Sweep(
        jnp.zeros(x.shape, bool), zero, d @ d, p0, jnp.zeros_like(p0),
        jnp.zeros([], jnp.int32), first, jnp.zeros([], jnp.int32),
        jnp.where(first, t_first, 0), jnp.where(first, t_first, 0) * p0,
    )  # fmt: skip
    end = jax.lax.while_loop(more, chunk, start)
    passed = end.gone
    point = jnp.where(passed, jnp.where(d > 0, upper, lower), x + end.t_end * d)
    state = jnp.where(passed, jnp.where(d > 0, AT_UPPER, AT_LOWER), state)
    c = end.c_end
    # d = 0 (every element held or with a zero gradient): the point is x
    still = jnp.all(d == 0)
    point = jnp.where(still, x, point)
    c = jnp.where(still, 0, c)
    return CauchyPoint(point, c, state <= FREE)
