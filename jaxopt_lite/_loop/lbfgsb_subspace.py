"""Subspace minimization of L-BFGS-B (layer 2): pure arrays.

From the generalized Cauchy point $z$ the elements held at a bound stay, and
the model is minimized over the free ones ($Z$ selects them) by the direct
primal method: with the reduced gradient $r = Z^\\top (g + B (z - x))$,

$$
\\hat d = -\\frac{1}{\\theta} r - \\frac{1}{\\theta^2} Z^\\top W K^{-1} W^\\top Z r,
\\qquad K = \\begin{bmatrix} -D - Y Z Z^\\top Y^\\top / \\theta
& L_A^\\top - R_Z^\\top \\\\
L_A - R_Z & \\theta S A A^\\top S^\\top \\end{bmatrix}
$$

(the Sherman-Morrison-Woodbury form of $(Z^\\top B Z)^{-1}$; $K$ is factored
as $\\mathcal{L} E \\mathcal{L}^\\top$, $E = \\mathrm{diag}(-I, I)$, with two
Cholesky factorizations of $m \\times m$ blocks). The point $z + \\hat d$ is
projected into the box; if that projection is not a descent direction from
$x$, the step is instead cut back to the first bound it meets (Morales and
Nocedal 2011).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxopt_lite._loop import lbfgsb_memory
from jaxopt_lite._loop.lbfgsb_cauchy import CauchyPoint

_solve = jax.scipy.linalg.solve_triangular


def _k_factor(mem: lbfgsb_memory.Memory, free: jax.Array) -> jax.Array:
    """The lower triangular $\\mathcal{L}$ with $K = \\mathcal{L} E
    \\mathcal{L}^\\top$ (NaN where a factorization fails), the identity in
    empty slots."""
    m = mem.s.shape[0]
    both, later, d = lbfgsb_memory.masks(mem)
    eye = jnp.eye(m, dtype=mem.s.dtype)
    ys = jnp.concatenate([mem.y, mem.s])
    on_free = (ys * free[None, :]) @ mem.y.T  # [Y Y^T; S Y^T] on the free elements
    on_held = (mem.s * ~free[None, :]) @ ys.T  # [S Y^T, S S^T] on the held ones
    a11 = jnp.where(both, jnp.diag(d) + on_free[:m] / mem.theta, eye)
    # L_A - R_Z: S Y^T on the held elements below the diagonal (in the order
    # the pairs came) minus S Y^T on the free ones on and above it
    k21 = jnp.where(later, on_held[:, :m], 0) - jnp.where(both & ~later, on_free[m:], 0)
    a22 = jnp.where(both, mem.theta * on_held[:, m:], eye)
    l1 = jnp.linalg.cholesky(a11)
    e = _solve(l1, k21.T, lower=True)
    l2 = jnp.linalg.cholesky(a22 + e.T @ e)
    return jnp.block([[l1, jnp.zeros_like(l1)], [-e.T, l2]])


def subspace_point(
    x: jax.Array,
    g: jax.Array,
    lower: jax.Array,
    upper: jax.Array,
    mem: lbfgsb_memory.Memory,
    cauchy: CauchyPoint,
) -> jax.Array:
    """The end point of the search direction: the subspace minimizer from
    ``cauchy`` (the Cauchy point itself when the memory is empty or nothing
    is free). NaN when a factorization failed."""
    m = mem.s.shape[0]
    theta = mem.theta
    z, free = cauchy.point, cauchy.free
    v = mem.middle @ cauchy.c
    r = -theta * (z - x) - g + mem.y.T @ v[:m] + mem.s.T @ (theta * v[m:])
    r = jnp.where(free, r, 0)
    wv = jnp.concatenate([mem.y @ r, theta * (mem.s @ r)])
    lk = _k_factor(mem, free)
    u = _solve(lk, wv, lower=True)
    u = jnp.concatenate([-u[:m], u[m:]])
    live = lbfgsb_memory.stored(mem)
    wv = jnp.where(jnp.concatenate([live, live]), _solve(lk.T, u, lower=False), 0)
    d = (r + (mem.y.T @ wv[:m]) / theta + mem.s.T @ wv[m:]) * (1 / theta)
    d = jnp.where(free, d, 0)
    projected = jnp.where(free, jnp.minimum(upper, jnp.maximum(lower, z + d)), z)
    hit = jnp.any(free & ((projected == lower) | (projected == upper)))
    # A projection that does not descend from x: cut the step back instead.
    cut = hit & ((projected - x) @ g > 0)
    gap = jnp.where(d < 0, lower - z, upper - z)
    ratio = jnp.where(
        (d < 0) & (gap >= 0) | (d > 0) & (gap <= 0), 0, gap / jnp.where(d == 0, 1, d)
    )
    ratio = jnp.where(free & (d != 0) & jnp.isfinite(gap), ratio, jnp.inf)
    first = jnp.argmin(ratio)
    alpha = jnp.minimum(1, ratio[first])
    bound = jnp.where(d[first] > 0, upper[first], lower[first])
    backtracked = jnp.where(free, z + alpha * d, z)
    backtracked = jnp.where(
        (alpha < 1) & (jnp.arange(x.size) == first), bound, backtracked
    )
    point = jnp.where(cut, backtracked, projected)
    return jnp.where((mem.count == 0) | ~jnp.any(free), z, point)
