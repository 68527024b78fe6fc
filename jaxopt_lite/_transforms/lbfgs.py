"""L-BFGS: the limited-memory inverse-Hessian direction and the optimizer."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jaxopt_lite._core import validate
from jaxopt_lite._core.dtypes import tree_compute_dtype
from jaxopt_lite._core.recipe import recipe

PyTree = Any


class ScaleByLBFGSState(NamedTuple):
    """The update count, the previous parameters and gradient, and the last
    ``memory_size`` pairs $s_i = w_{i+1} - w_i$, $y_i = g_{i+1} - g_i$ (stacked
    on a leading axis, written cyclically) with $\\rho_i = 1 / \\langle s_i,
    y_i \\rangle$."""

    count: jax.Array
    params: PyTree
    updates: PyTree
    diff_params_memory: PyTree
    diff_updates_memory: PyTree
    weights_memory: jax.Array


def _two_loop(
    g: PyTree, s: PyTree, y: PyTree, rho: jax.Array, gamma: jax.Array, start: Any
) -> PyTree:
    """$H g$ for the L-BFGS inverse Hessian $H$ of the stored pairs, oldest
    pair at slot ``start`` (Nocedal and Wright, Algorithm 7.4)."""
    m = rho.shape[0]
    order = (start + jnp.arange(m)) % m

    def pair(i):
        return jax.tree.map(lambda a: a[i], s), jax.tree.map(lambda a: a[i], y)

    def newest_first(q, i):
        s_i, y_i = pair(i)
        alpha = rho[i] * optax.tree.real(optax.tree.vdot(s_i, q))
        return optax.tree.cast_like(optax.tree.add_scale(q, -alpha, y_i), q), alpha

    q, alphas = jax.lax.scan(newest_first, g, order, reverse=True)
    r = optax.tree.scale(gamma, q)

    def oldest_first(r, i_alpha):
        i, alpha = i_alpha
        s_i, y_i = pair(i)
        beta = rho[i] * optax.tree.real(optax.tree.vdot(y_i, r))
        return optax.tree.cast_like(optax.tree.add_scale(r, alpha - beta, s_i), r), None

    return jax.lax.scan(oldest_first, r, (order, alphas))[0]


@recipe(static=("memory_size",))
def scale_by_lbfgs(
    memory_size: int = 10, scale_init_precond: bool = True
) -> optax.GradientTransformation:
    r"""Precondition the gradient by the L-BFGS inverse-Hessian approximation.

    $$
    u_k = H_k g_k,\qquad
    H_k = V_{k-1}^\top H_{k-1} V_{k-1} + \rho_{k-1} s_{k-1} s_{k-1}^\top,\qquad
    V_i = I - \rho_i y_i s_i^\top,\qquad
    \rho_i = \frac{1}{\langle s_i, y_i\rangle}
    $$

    over the last $m$ pairs $s_i = w_{i+1} - w_i$, $y_i = g_{i+1} - g_i$,
    starting from $H = \gamma_k I$ with
    $\gamma_k = \langle s_{k-1}, y_{k-1}\rangle / \lVert y_{k-1}\rVert^2$
    (``scale_init_precond``; otherwise $\gamma_k = 1$) and, at the first step,
    $\gamma_0 = \min(1, 1/\lVert g_0\rVert)$. $H_k g_k$ is computed by the
    two-loop recursion in $O(m n)$. The pair from the previous step is stored
    before the direction is computed, so the transform must see the
    parameters after the full step (put the line search after it). The output
    is the direction itself: negate it and choose the step with a line search,
    as `lbfgs` does. A pair with $\langle s, y\rangle = 0$ gets $\rho = 0$.

    Args:
        memory_size: $m$, the number of pairs kept (an integer >= 1).
        scale_init_precond: use $\gamma_k$ above rather than 1.

    Returns:
        An ``optax.GradientTransformation``.

    Example:
        >>> import jax.numpy as jnp, jaxopt_lite as jol
        >>> t = jol.scale_by_lbfgs()
        >>> t.update(jnp.array([3.0, 4.0]), t.init(jnp.zeros(2)),
        ...          jnp.zeros(2))[0]
        Array([0.6, 0.8], dtype=float32)

    References:
        D. C. Liu and J. Nocedal, *On the limited memory BFGS method for large
        scale optimization*, Math. Programming, 1989.

        J. Nocedal and S. J. Wright, *Numerical Optimization*, 2nd ed.,
        Springer, 2006, Algorithms 7.4 and 7.5.
    """
    validate.check_count("memory_size", memory_size)
    validate.check_bool("scale_init_precond", scale_init_precond)

    def init_fn(params):
        stacked = jax.tree.map(
            lambda x: jnp.zeros((memory_size, *jnp.shape(x)), jnp.result_type(x)),
            params,
        )
        leaves = jax.tree.leaves(params)  # none for init(None), as optax allows
        first = leaves[0].dtype if leaves else tree_compute_dtype(params)
        dtype = jnp.real(jnp.empty((), first)).dtype
        return ScaleByLBFGSState(
            count=jnp.zeros([], jnp.int32),
            params=optax.tree.zeros_like(params),
            updates=optax.tree.zeros_like(params),
            diff_params_memory=stacked,
            diff_updates_memory=stacked,
            weights_memory=jnp.zeros([memory_size], dtype),
        )

    def update_fn(updates, state, params=validate.MISSING):  # required, as in optax
        validate.require_params("scale_by_lbfgs", params)
        started = state.count > 0
        slot = (state.count - 1) % memory_size
        s = optax.tree.sub(params, state.params)
        y = optax.tree.sub(updates, state.updates)
        sy = optax.tree.real(optax.tree.vdot(y, s))
        # Guarded divisions (inner where): no NaN derivatives when unrolled.
        rho = jnp.where(sy == 0.0, 0.0, 1.0 / jnp.where(sy == 0.0, 1.0, sy))
        s, y, rho = jax.tree.map(
            lambda a: jnp.where(started, a, jnp.zeros_like(a)), (s, y, rho)
        )
        s_mem, y_mem = jax.tree.map(
            lambda mem, new: mem.at[slot].set(new),
            (state.diff_params_memory, state.diff_updates_memory),
            (s, y),
        )
        rho_mem = state.weights_memory.at[slot].set(rho)
        if scale_init_precond:
            yy = optax.tree.norm(y, squared=True)
            gamma = jnp.where(
                yy > 0.0,
                optax.tree.real(optax.tree.vdot(y, s)) / jnp.where(yy > 0.0, yy, 1.0),
                1.0,
            )
            first = jnp.minimum(
                1.0, 1.0 / optax.tree.norm(jax.lax.stop_gradient(updates))
            )
            gamma = jnp.where(started, gamma, first)
        else:
            gamma = jnp.ones([], rho_mem.dtype)
        direction = _two_loop(
            updates, s_mem, y_mem, rho_mem, gamma, state.count % memory_size
        )
        new_state = ScaleByLBFGSState(
            count=jnp.where(
                state.count < jnp.iinfo(jnp.int32).max, state.count + 1, state.count
            ),
            params=params,
            updates=updates,
            diff_params_memory=s_mem,
            diff_updates_memory=y_mem,
            weights_memory=rho_mem,
        )
        return direction, new_state

    return optax.GradientTransformation(init_fn, update_fn)
