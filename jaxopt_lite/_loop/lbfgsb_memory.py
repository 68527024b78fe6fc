"""The compact limited-memory BFGS matrix of L-BFGS-B (layer 2): pure arrays.

With the last $k \\le m$ corrections $s_i = x_{i+1} - x_i$, $y_i = g_{i+1} -
g_i$ as the rows of $S$ and $Y$, the quasi-Newton matrix is

$$
B = \\theta I - W M W^\\top,\\qquad W = [\\,Y^\\top \\;\\; \\theta S^\\top\\,],\\qquad
M = \\begin{bmatrix} -D & L^\\top \\\\ L & \\theta S S^\\top \\end{bmatrix}^{-1}
$$

with $D$ the diagonal and $L$ the strictly lower triangle, in the order the
pairs came, of $(s_i^\\top y_j)_{ij}$ (Byrd, Nocedal and Schnabel 1994). As
in the Fortran code, $M$ comes from the Cholesky factor $J$ of
$T = \\theta S S^\\top + L D^{-1} L^\\top$:

$$
M = \\begin{bmatrix} -D^{-1} + D^{-1} L^\\top T^{-1} L D^{-1} & D^{-1} L^\\top T^{-1}
\\\\ T^{-1} L D^{-1} & T^{-1} \\end{bmatrix} ,
$$

formed once per new pair. Shapes are static: $m$ slots used as a ring (a
new pair overwrites the oldest in place, no copying of the others), each
slot's ``rank`` giving its place in time; the products of the unused slots
are masked out (zeros, and ones on the diagonals of the factored matrices).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

_solve = jax.scipy.linalg.solve_triangular


class Memory(NamedTuple):
    """The stored pairs and the small matrices built from them."""

    s: jax.Array  # [m, n] corrections s_i, one per slot
    y: jax.Array  # [m, n] gradient differences y_i
    sy: jax.Array  # [m, m] s_i . y_j
    ss: jax.Array  # [m, m] s_i . s_j
    middle: jax.Array  # [2m, 2m] M, in slot order (zero outside the pairs)
    theta: jax.Array  # scalar: B_0 = theta I
    count: jax.Array  # int32: pairs stored
    head: jax.Array  # int32: the slot the next pair goes to


def empty(m: int, n: int, dtype) -> Memory:
    """No pairs: $B = I$."""
    zeros = jnp.zeros((m, n), dtype)
    small = jnp.zeros((m, m), dtype)
    none = jnp.zeros([], jnp.int32)
    return Memory(
        zeros, zeros, small, small, jnp.zeros((2 * m, 2 * m), dtype),
        jnp.ones([], dtype), none, none,
    )  # fmt: skip


def forget(mem: Memory, when: jax.Array) -> Memory:
    """The memory emptied where ``when`` holds (the slots keep their
    contents, unused)."""
    return mem._replace(
        middle=jnp.where(when, 0, mem.middle),
        theta=jnp.where(when, 1, mem.theta),
        count=jnp.where(when, 0, mem.count),
        head=jnp.where(when, 0, mem.head),
    )


def rank(mem: Memory) -> jax.Array:
    """Per slot, its place in time: 0 for the oldest stored pair."""
    m = mem.s.shape[0]
    return (jnp.arange(m) - mem.head + mem.count) % m


def stored(mem: Memory) -> jax.Array:
    """Per slot: it holds a pair."""
    return rank(mem) < mem.count


def masks(mem: Memory) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Both slots hold pairs; the first came after the second; and ``D``
    (the diagonal of ``sy``, 1 in empty slots)."""
    live, order = stored(mem), rank(mem)
    both = live[:, None] & live[None, :]
    later = both & (order[:, None] > order[None, :])
    return both, later, jnp.where(live, diagonal(mem.sy), 1)


def _middle(mem: Memory) -> jax.Array:
    """$M$ from the pairs of ``mem`` (NaN where $T$ is not positive
    definite): with $G = [L D^{-1},\\; I]$ and $H = J^{-1} G$,
    $M = H^\\top H - \\mathrm{diag}(D^{-1}, 0)$ (the formula above)."""
    both, later, d = masks(mem)
    live = stored(mem)
    eye = jnp.eye(live.size, dtype=mem.s.dtype)
    low = jnp.where(later, mem.sy, 0)  # L in slot order
    low_d = low / d[None, :]
    t = jnp.where(both, mem.theta * mem.ss + low_d @ low.T, eye)
    g = jnp.concatenate([low_d, jnp.diag(live).astype(low.dtype)], axis=1)
    h = _solve(jnp.linalg.cholesky(t), g, lower=True)
    inv_d = jnp.concatenate([jnp.where(live, 1 / d, 0), jnp.zeros_like(d)])
    return h.T @ h - jnp.diag(inv_d)


def push(
    mem: Memory,
    s: jax.Array,
    y: jax.Array,
    sy: jax.Array,
    ss: jax.Array,
    accept: jax.Array,
    reset: jax.Array,
) -> Memory:
    """Store the pair ``(s, y)`` when ``accept`` (in place of the oldest when
    full), with $s^\\top y$ = ``sy`` and $s^\\top s$ = ``ss`` as the caller
    computed them; $\\theta = y^\\top y / s^\\top y$. The memory is emptied
    when ``reset``, and when its $T$ is not positive definite (as the Fortran
    code does)."""
    m = mem.s.shape[0]
    at = mem.head
    # Masks rather than scatters: one fused select per array.
    slot = jnp.arange(m) == at
    row = slot[:, None] & accept
    new_s = jnp.where(row, s[None, :], mem.s)
    new_y = jnp.where(row, y[None, :], mem.y)
    col = row.T
    # the new row of S Y^T is s . y_j, its column s_i . y, its corner the
    # caller's s . y; S S^T likewise
    new_sy = jnp.where(
        row & col,
        sy,
        jnp.where(
            row, (new_y @ s)[None, :], jnp.where(col, (new_s @ y)[:, None], mem.sy)
        ),
    )
    col_ss = jnp.where(slot, ss, new_s @ s)
    new_ss = jnp.where(row, col_ss[None, :], jnp.where(col, col_ss[:, None], mem.ss))
    grown = mem._replace(
        s=new_s,
        y=new_y,
        sy=new_sy,
        ss=new_ss,
        theta=jnp.where(accept, (y @ y) / sy, mem.theta),
        count=jnp.where(accept, jnp.minimum(mem.count + 1, m), mem.count),
        head=jnp.where(accept, (at + 1) % m, at),
    )
    middle = _middle(grown)
    bad = accept & ~jnp.all(jnp.isfinite(middle))
    grown = grown._replace(middle=jnp.where(accept, middle, mem.middle))
    return forget(grown, bad | reset)


def diagonal(a: jax.Array) -> jax.Array:
    """The diagonal of a square matrix, as one fused reduction."""
    return jnp.sum(jnp.where(jnp.eye(a.shape[0], dtype=bool), a, 0), axis=1)
