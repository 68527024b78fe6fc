"""The compact limited-memory BFGS matrix of L-BFGS-B (layer 2): pure arrays.

With the last $k \\le m$ corrections $s_i = x_{i+1} - x_i$, $y_i = g_{i+1} -
g_i$ as the rows of $S$ and $Y$ (oldest first), the quasi-Newton matrix is

$$
B = \\theta I - W M W^\\top,\\qquad W = [\\,Y^\\top \\;\\; \\theta S^\\top\\,],\\qquad
M = \\begin{bmatrix} -D & L^\\top \\\\ L & \\theta S S^\\top \\end{bmatrix}^{-1}
$$

with $D$ the diagonal and $L$ the strictly lower triangle of
$(s_i^\\top y_j)_{ij}$ (Byrd, Nocedal and Schnabel 1994). $M$ is applied
through the Cholesky factor $J$ of $T = \\theta S S^\\top + L D^{-1} L^\\top$,
as in the Fortran code. Shapes are static: the memory holds $m$ slots, the
stored pairs in the last ``count`` of them; the other slots hold zeros (and
ones on the diagonals of the factored matrices), so they drop out of every
product.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp


class Memory(NamedTuple):
    """The stored pairs and the small matrices built from them."""

    s: jax.Array  # [m, n] corrections s_i, oldest first, newest in the last row
    y: jax.Array  # [m, n] gradient differences y_i
    sy: jax.Array  # [m, m] s_i . y_j (lower triangle and diagonal kept)
    ss: jax.Array  # [m, m] s_i . s_j
    chol_t: jax.Array  # [m, m] lower Cholesky factor J of T
    theta: jax.Array  # scalar: B_0 = theta I
    count: jax.Array  # int32: pairs stored (k)


def empty(m: int, n: int, dtype) -> Memory:
    """No pairs: $B = I$."""
    zeros = jnp.zeros((m, n), dtype)
    return Memory(
        zeros, zeros, jnp.zeros((m, m), dtype), jnp.zeros((m, m), dtype),
        jnp.eye(m, dtype=dtype), jnp.ones([], dtype), jnp.zeros([], jnp.int32),
    )  # fmt: skip


def stored(mem: Memory) -> jax.Array:
    """Per slot: it holds a pair."""
    m = mem.s.shape[0]
    return jnp.arange(m) >= m - mem.count


def _diag_d(mem: Memory) -> jax.Array:
    """The diagonal of $D$ ($s_i^\\top y_i$), 1 in empty slots."""
    return jnp.where(stored(mem), jnp.diagonal(mem.sy), 1)


def _lower_l(mem: Memory) -> jax.Array:
    """$L$: the strictly lower triangle of $S Y^\\top$ (zero in empty slots)."""
    live = stored(mem)
    return jnp.where(live[:, None] & live[None, :], jnp.tril(mem.sy, -1), 0)


def _factor_t(mem: Memory) -> jax.Array:
    """$J$ with $J J^\\top = \\theta S S^\\top + L D^{-1} L^\\top$ (NaN where the
    factorization fails), the identity in empty slots."""
    live = stored(mem)
    low = _lower_l(mem)
    t = mem.theta * mem.ss + (low / _diag_d(mem)[None, :]) @ low.T
    t = jnp.where(live[:, None] & live[None, :], t, jnp.eye(t.shape[0], dtype=t.dtype))
    return jnp.linalg.cholesky(t)


def middle(mem: Memory) -> jax.Array:
    """$M$ as a dense $2m \\times 2m$ matrix (zero outside the stored pairs),
    solved column by column as the Fortran code's ``bmv`` does for one
    vector."""
    m = mem.s.shape[0]
    d = _diag_d(mem)
    root = jnp.sqrt(d)
    low = _lower_l(mem)
    eye = jnp.eye(2 * m, dtype=mem.s.dtype)
    v1, v2 = eye[:m], eye[m:]
    # [D^(1/2) 0; -L D^(-1/2) J] [p1; p2] = [v1; v2]
    p2 = jax.scipy.linalg.solve_triangular(
        mem.chol_t, v2 + low @ (v1 / d[:, None]), lower=True
    )
    p1 = v1 / root[:, None]
    # [-D^(1/2) D^(-1/2) L^T; 0 J^T] [p1; p2] = [p1; p2]
    p2 = jax.scipy.linalg.solve_triangular(mem.chol_t.T, p2, lower=False)
    p1 = -p1 / root[:, None] + (low.T @ p2) / d[:, None]
    live = jnp.concatenate([stored(mem), stored(mem)])
    return jnp.where(live[:, None] & live[None, :], jnp.concatenate([p1, p2]), 0)


def push(
    mem: Memory, s: jax.Array, y: jax.Array, sy: jax.Array, ss: jax.Array
) -> Memory:
    """Store the pair ``(s, y)`` (dropping the oldest when full), with
    $s^\\top y$ = ``sy`` and $s^\\top s$ = ``ss`` as the caller computed them;
    $\\theta = y^\\top y / s^\\top y$. A memory whose $T$ is not positive
    definite is emptied, as the Fortran code does."""
    m = mem.s.shape[0]
    new_s = jnp.concatenate([mem.s[1:], s[None]])
    new_y = jnp.concatenate([mem.y[1:], y[None]])
    # Rows are s_i: the new row of S Y^T is s . y_j, the new column of S S^T
    # is s_i . s (the upper triangle of S Y^T is never read: kept at zero).
    row_sy = (new_y @ s).at[-1].set(sy)
    col_ss = (new_s @ s).at[-1].set(ss)
    rolled_sy = jnp.roll(mem.sy, (-1, -1), (0, 1)).at[-1].set(row_sy)
    rolled_sy = rolled_sy.at[:-1, -1].set(0)
    rolled_ss = jnp.roll(mem.ss, (-1, -1), (0, 1)).at[-1].set(col_ss)
    rolled_ss = rolled_ss.at[:, -1].set(col_ss)
    theta = (y @ y) / sy
    count = jnp.minimum(mem.count + 1, m).astype(jnp.int32)
    new = Memory(new_s, new_y, rolled_sy, rolled_ss, mem.chol_t, theta, count)
    new = new._replace(chol_t=_factor_t(new))
    ok = jnp.all(jnp.isfinite(new.chol_t))
    return jax.tree.map(
        lambda a, b: jnp.where(ok, a, b), new, empty(m, s.shape[0], s.dtype)
    )
