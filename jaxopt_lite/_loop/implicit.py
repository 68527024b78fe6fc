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
restricted to the coordinates that are not held at a bound (their
derivative is 0).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxopt_lite._loop import full_batch as _full_batch

PyTree = Any


def _cg_tol(x: PyTree) -> float:
    """Relative residual of the linear solve: eps^(3/4) of the precision."""
    eps = max(np.finfo(jnp.result_type(leaf)).eps for leaf in jax.tree.leaves(x))
    return float(eps**0.75)


def with_implicit_gradient(
    run: Callable, fun: Callable, cfg: _full_batch.Config
) -> Callable:
    """``run(x0, args, tols, lower, upper)`` whose reverse-mode derivative in
    ``args`` (through the final ``params`` and ``value``) is the implicit one;
    the derivative in ``x0``, the tolerances and the bounds is zero."""

    def objective(x, args):
        out = fun(x, args)
        return out[0] if cfg.has_aux else out

    grad_x = jax.grad(objective)

    @jax.custom_vjp
    def solve(x0, args, tols, lower, upper):
        return run(x0, args, tols, lower, upper)

    def solve_fwd(x0, args, tols, lower, upper):
        final = run(x0, args, tols, lower, upper)
        return final, (final.params, final.grad, x0, args, tols, lower, upper)

    def solve_bwd(res, cotangent):
        x, g, x0, args, tols, lower, upper = res
        x_bar, value_bar = cotangent.params, cotangent.value
        if cfg.bounded:
            free = _full_batch.free_mask(x, g, lower, upper)
        else:
            free = jax.tree.map(lambda a: jnp.ones(jnp.shape(a), bool), x)

        def keep(t):
            return jax.tree.map(
                lambda m, a: jnp.where(m, a, jnp.zeros_like(a)), free, t
            )

        def hvp(u):
            # On free coordinates the Hessian, elsewhere the identity.
            hu = jax.jvp(lambda y: grad_x(y, args), (x,), (keep(u),))[1]
            held = jax.tree.map(lambda m, a: jnp.where(m, 0, a), free, u)
            return optax.tree.add(keep(hu), held)

        v, _ = jax.scipy.sparse.linalg.cg(hvp, keep(x_bar), tol=_cg_tol(x))
        _, pullback = jax.vjp(lambda a: (grad_x(x, a), objective(x, a)), args)
        (args_bar,) = pullback((optax.tree.scale(-1.0, keep(v)), value_bar))
        zeros = jax.tree.map(jnp.zeros_like, (x0, tols, lower, upper))
        return zeros[0], args_bar, zeros[1], zeros[2], zeros[3]

    solve.defvjp(solve_fwd, solve_bwd)
    return solve
