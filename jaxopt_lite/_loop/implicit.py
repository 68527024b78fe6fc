"""Implicit differentiation of a minimizer with respect to the problem's data.

At a minimizer $x^\\star(\\theta)$ of $f(\\cdot, \\theta)$ the gradient
vanishes, so by the implicit function theorem

$$
\\frac{\\partial x^\\star}{\\partial \\theta}
= -\\left(\\nabla^2_{xx} f\\right)^{-1} \\nabla^2_{x\\theta} f ,
$$

and a vector-Jacobian product costs one linear solve with the Hessian
(conjugate gradient on Hessian-vector products) and one vector-Jacobian
product of $\\nabla_x f$ in $\\theta$. Under box constraints the solve is
restricted to the free coordinates $F$; those held at a bound ($A$) follow
it, $x^\\star_A = b_A$, so a bound that depends on the data gets the
cotangent $\\bar b_A = \\bar x_A - (\\nabla^2_{xx} f\\, v)_A + \\bar f\\,
\\nabla_A f$ (with $v$ the solve's solution on $F$; constant bounds give
held coordinates a zero derivative).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxopt_lite._loop import full_batch

PyTree = Any


def _cg_tol(x: PyTree) -> float:
    """Relative residual of the linear solve: eps^(3/4) of the precision."""
    eps = max(np.finfo(jnp.result_type(leaf)).eps for leaf in jax.tree.leaves(x))
    return float(eps**0.75)


def with_implicit_gradient(
    run: Callable, objective: Callable, bounded: bool
) -> Callable:
    """``run(consts, theta, x0, tols, lower, upper)`` whose reverse-mode
    derivative in ``theta`` (through the final ``params`` and ``value``) is the
    implicit one, for ``objective(x, theta)`` (the value alone); the derivative
    in ``consts`` (what the loop needs besides the problem: the optimizer's
    numbers), ``x0`` and the tolerances is zero; that in the bounds goes to
    the bounds that hold coordinates at the solution.

    Everything ``run`` and ``objective`` depend on must come in through these
    arguments, not through a closure: a ``custom_vjp`` cannot differentiate
    closed-over tracers, and its backward pass must not keep tracers of the
    program being traced."""
    grad_x = jax.grad(objective)

    @jax.custom_vjp
    def solve(consts, theta, x0, tols, lower, upper):
        return run(consts, theta, x0, tols, lower, upper)

    def solve_fwd(consts, theta, x0, tols, lower, upper):
        final = run(consts, theta, x0, tols, lower, upper)
        return final, (final.params, final.grad, theta, lower, upper)

    def solve_bwd(res, cotangent):
        x, g, theta, lower, upper = res
        x_bar, value_bar = cotangent.params, cotangent.value
        if bounded:
            free = full_batch.free_mask(x, g, lower, upper)
        else:
            free = jax.tree.map(lambda a: jnp.ones(jnp.shape(a), bool), x)

        def keep(t):
            return jax.tree.map(
                lambda m, a: jnp.where(m, a, jnp.zeros_like(a)), free, t
            )

        def hvp(u):
            # On free coordinates the Hessian, elsewhere the identity.
            hu = jax.jvp(lambda y: grad_x(y, theta), (x,), (keep(u),))[1]
            held = jax.tree.map(lambda m, a: jnp.where(m, 0, a), free, u)
            return optax.tree.add(keep(hu), held)

        v, _ = jax.scipy.sparse.linalg.cg(hvp, keep(x_bar), tol=_cg_tol(x))
        _, pullback = jax.vjp(lambda t: (grad_x(x, t), objective(x, t)), theta)
        (theta_bar,) = pullback((optax.tree.scale(-1.0, keep(v)), value_bar))
        if not bounded:  # None: a zero cotangent for every leaf of that argument
            return None, theta_bar, None, None, None, None
        # A held coordinate follows its bound: x_A = b_A moves x_F through
        # H_FA and the value through g_A.
        hv = jax.jvp(lambda y: grad_x(y, theta), (x,), (keep(v),))[1]
        bound_bar = jax.tree.map(
            lambda m, xb, h, gi: jnp.where(m, 0, xb - h + value_bar * gi),
            free, x_bar, hv, g,
        )  # fmt: skip
        lower_bar = jax.tree.map(
            lambda b, gi: jnp.where(gi > 0, b, jnp.zeros_like(b)), bound_bar, g
        )
        upper_bar = jax.tree.map(
            lambda b, gi: jnp.where(gi < 0, b, jnp.zeros_like(b)), bound_bar, g
        )
        return None, theta_bar, None, None, lower_bar, upper_bar

    solve.defvjp(solve_fwd, solve_bwd)
    return solve
