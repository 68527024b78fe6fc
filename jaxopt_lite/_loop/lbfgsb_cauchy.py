"""The generalized Cauchy point of L-BFGS-B (layer 2): pure arrays.

Along the projected steepest-descent path $x(t) = P(x - t g)$ the quadratic
model $m(z) = g^\\top (z - x) + \\tfrac12 (z - x)^\\top B (z - x)$ is piecewise
quadratic in $t$, with a breakpoint $t_i$ where element $i$ reaches its bound.
The generalized Cauchy point is the first local minimizer of $m$ along the
path. The Fortran code visits the breakpoints in increasing order, updating
the slope $f'$ and curvature $f''$ of each segment in $O(m^2)$ (Byrd, Lu,
Nocedal and Zhu 1995, Algorithm CP) until the minimizer $-f'/f''$ falls
inside the current segment. Here all segments are done at once: after one
sort, the direction $d_k$ of segment $k$ (the elements not yet stopped),
$p_k = W^\\top d_k$ and $c_k = W^\\top (x(t_k) - x)$ are cumulative sums
over the breakpoints, and

$$
f'_k = -\\lVert d_k \\rVert^2 + \\theta t_k \\lVert d_k \\rVert^2 - c_k^\\top M p_k,
\\qquad f''_k = \\theta \\lVert d_k \\rVert^2 - p_k^\\top M p_k ,
$$

$O(n m^2)$ vectorized work for all $k$ instead of $n$ dependent steps.
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
    order = jnp.argsort(t)
    k = jnp.arange(x.size)
    # Passing breakpoint j (in sorted order) freezes its element at the bound:
    # it leaves d (and W^T d), and its part of the path stays at t_j d_j.
    is_break = k < n_break
    t_sorted = jnp.where(is_break, t[order], 0)
    d_sorted = jnp.where(is_break, d[order], 0)
    w_sorted = w[:, order]
    times = jnp.concatenate([jnp.zeros(1, dtype), t_sorted])  # t_k: k passed

    def passed_sum(terms):  # [..., n] -> [..., n + 1]: over the k passed
        zero = jnp.zeros((*terms.shape[:-1], 1), dtype)
        return jnp.concatenate([zero, jnp.cumsum(terms, axis=-1)], axis=-1)

    def rest_sum(terms):  # over the breakpoints not yet passed (no cancellation)
        zero = jnp.zeros((*terms.shape[:-1], 1), dtype)
        rest = jnp.flip(jnp.cumsum(jnp.flip(terms, -1), axis=-1), -1)
        return jnp.concatenate([rest, zero], axis=-1)

    d_free = jnp.where(has_break, 0, d)  # moving elements that never stop
    sq = d_free @ d_free + rest_sum(d_sorted * d_sorted)  # |d_k|^2
    p = (w @ d_free)[:, None] + rest_sum(w_sorted * d_sorted[None, :])  # W^T d_k
    c = times[None, :] * p + passed_sum(w_sorted * (t_sorted * d_sorted)[None, :])
    mp = middle @ p
    # slope and curvature of the model at the start of segment k
    f1 = -sq + mem.theta * times * sq - jnp.sum(c * mp, axis=0)
    f2_org = mem.theta * sq[0]
    f2 = mem.theta * sq - jnp.sum(p * mp, axis=0)
    f2 = jnp.where(jnp.arange(x.size + 1) > 0, jnp.maximum(eps * f2_org, f2), f2)
    t_min = -f1 / f2
    # the first segment whose minimizer comes before its end; past the last
    # breakpoint, 0 when every moving element has stopped
    inside = (t_min[:-1] < t_sorted - times[:-1]) & is_break
    last = jnp.where(jnp.any(inside), jnp.argmax(inside), n_break)
    t_end = jnp.where(~jnp.any(inside) & bounded, 0, t_min[last])
    t_end = jnp.maximum(t_end, 0)
    # the elements whose breakpoints were passed (a stable sort: ties by index)
    t_last = jnp.where(last > 0, t[order[last - 1]], -jnp.inf)
    i_last = order[last - 1]
    passed = has_break & (
        (t < t_last) | ((t == t_last) & (jnp.arange(x.size) <= i_last))
    )
    point = jnp.where(
        passed, jnp.where(d > 0, upper, lower), x + (times[last] + t_end) * d
    )
    state = jnp.where(passed, jnp.where(d > 0, AT_UPPER, AT_LOWER), state)
    c = c[:, last] + t_end * p[:, last]
    # d = 0 (every element held or with a zero gradient): the point is x
    still = jnp.all(d == 0)
    point = jnp.where(still, x, point)
    c = jnp.where(still, 0, c)
    return CauchyPoint(point, c, state <= FREE)
