"""The generalized Cauchy point of L-BFGS-B (layer 2): pure arrays.

Along the projected steepest-descent path $x(t) = P(x - t g)$ the quadratic
model $m(z) = g^\\top (z - x) + \\tfrac12 (z - x)^\\top B (z - x)$ is piecewise
quadratic in $t$, with a breakpoint $t_i$ where element $i$ reaches its bound.
The generalized Cauchy point is the first local minimizer of $m$ along the
path: the breakpoints are visited in increasing order (one fixed-size sort),
and a ``lax.while_loop`` updates the slope $f'$ and curvature $f''$ of each
segment in $O(m^2)$ (Byrd, Lu, Nocedal and Zhu 1995, Algorithm CP), until
the minimizer $-f'/f''$ falls inside the current segment.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxopt_lite._loop import lbfgsb_memory as _memory

# Element states, the Fortran code's ``iwhere`` (all but "at a bound" are free).
UNBOUNDED, FREE, ZERO_GRADIENT, AT_LOWER, AT_UPPER, FIXED = -1, 0, -3, 1, 2, 3


class CauchyPoint(NamedTuple):
    """The generalized Cauchy point, ``c`` $= W^\\top$ (``point`` $- x$), and
    per element whether it is free there (not held at a bound)."""

    point: jax.Array
    c: jax.Array
    free: jax.Array


class _Segment(NamedTuple):
    k: jax.Array  # breakpoints passed
    t: jax.Array  # the last breakpoint passed
    t_sum: jax.Array
    f1: jax.Array  # slope f' at the segment's start
    f2: jax.Array  # curvature f''
    t_min: jax.Array  # the segment's minimizer, relative to its start
    c: jax.Array  # W^T (x(t) - x)
    p: jax.Array  # W^T d over the elements still moving
    found: jax.Array


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
    mem: _memory.Memory,
    middle: jax.Array,
) -> CauchyPoint:
    """The generalized Cauchy point from ``x`` with gradient ``g`` for the
    model of ``mem`` (``middle``: its $M$), in ``[lower, upper]``."""
    dtype = x.dtype
    eps = jnp.finfo(dtype).eps
    state = element_states(x, g, lower, upper)
    moving = (state == FREE) | (state == UNBOUNDED)
    d = jnp.where(moving, -g, 0)
    down = moving & jnp.isfinite(lower) & (d < 0)
    up = moving & jnp.isfinite(upper) & (d > 0)
    has_break = down | up
    # NaN sorts last: the elements without a breakpoint come after the others
    t = jnp.where(down, (x - lower) / -d, jnp.where(up, (upper - x) / d, jnp.nan))
    n_break = jnp.sum(has_break)
    # every moving element stops at a bound: the path ends at the last one
    bounded = ~jnp.any(moving & ~has_break & (d != 0))
    w = jnp.concatenate([mem.y, mem.theta * mem.s])  # W^T: [2m, n]
    p = w @ d
    f1 = -(d @ d)
    f2_org = -mem.theta * f1
    f2 = f2_org - p @ (middle @ p)
    order = jnp.argsort(t, stable=True)
    zero = jnp.zeros([], dtype)

    def more(s: _Segment) -> jax.Array:
        return ~s.found & (s.k < n_break)

    def next_break(s: _Segment) -> _Segment:
        i = order[s.k]
        dt = t[i] - s.t
        inside = s.t_min < dt  # the minimizer lies before this breakpoint
        d_i = d[i]
        z_i = jnp.where(d_i > 0, upper[i], lower[i]) - x[i]
        d2 = d_i * d_i
        f1 = s.f1 + dt * s.f2 + d2 - mem.theta * d_i * z_i
        f2 = s.f2 - mem.theta * d2
        c = s.c + dt * s.p
        w_i = w[:, i]
        v = middle @ w_i
        f1 = f1 + d_i * (c @ v)
        f2 = f2 + d_i * 2 * (s.p @ v) - d2 * (w_i @ v)
        f2 = jnp.maximum(eps * f2_org, f2)
        k = s.k + 1
        last = k >= n_break
        t_min = jnp.where(last & bounded, zero, -f1 / f2)
        moved = _Segment(
            k, t[i], s.t_sum + dt, f1, f2, t_min, c, s.p - d_i * w_i, s.found
        )
        return jax.tree.map(
            lambda a, b: jnp.where(inside, a, b), s._replace(found=True), moved
        )

    start = _Segment(
        jnp.zeros([], jnp.int32), zero, zero, f1, f2, -f1 / f2,
        jnp.zeros_like(p), p, jnp.asarray(False),
    )  # fmt: skip
    end = jax.lax.while_loop(more, next_break, start)
    t_min = jnp.maximum(end.t_min, 0)
    rank = jnp.zeros(x.shape, jnp.int32).at[order].set(jnp.arange(x.size, dtype=jnp.int32))
    passed = has_break & (rank < end.k)
    point = jnp.where(passed, jnp.where(d > 0, upper, lower), x + (end.t_sum + t_min) * d)
    state = jnp.where(passed, jnp.where(d > 0, AT_UPPER, AT_LOWER), state)
    c = end.c + t_min * end.p
    # d = 0 (every element held or with a zero gradient): the point is x
    still = jnp.all(d == 0)
    point = jnp.where(still, x, point)
    c = jnp.where(still, 0, c)
    return CauchyPoint(point, c, state <= FREE)
