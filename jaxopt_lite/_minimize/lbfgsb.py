"""`lbfgsb`: the L-BFGS-B solver for `minimize`, and the checks of its use."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxopt_lite._core import validate
from jaxopt_lite._loop.lbfgsb import LBFGSB as LBFGSB
from jaxopt_lite._loop.lbfgsb import LBFGSBState as LBFGSBState

# scipy's defaults: ftol = factr * eps with factr = 1e7 in float64
_FTOL = 1e7 * float(np.finfo(np.float64).eps)


def lbfgsb(
    memory_size: int = 10,
    ftol: float = _FTOL,
    gtol: float = 1e-5,
    max_linesearch_steps: int = 20,
) -> LBFGSB:
    r"""L-BFGS-B: limited-memory quasi-Newton steps that keep box bounds.

    $$
    x_{k+1} = x_k + \alpha_k (\bar x_k - x_k),\qquad
    \bar x_k = \arg\min_{z \in \mathcal{F}(x^c_k)}\;
    g_k^\top (z - x_k) + \tfrac12 (z - x_k)^\top B_k (z - x_k)
    $$

    Each iteration finds the generalized Cauchy point $x^c_k$, the first
    minimizer of the quadratic model along the projected gradient path
    $P(x_k - t g_k)$; minimizes the model over the elements free there
    (those at a bound stay), projecting into the box or backtracking to it;
    and takes $\alpha_k$ from a Moré-Thuente line search (sufficient decrease
    $10^{-3}$, curvature $0.9$, at most the step to the box). $B_k$ is the
    compact L-BFGS matrix of the last ``memory_size`` pairs with
    $s^\top y > \varepsilon\, (-g^\top s)$. This is the algorithm of the
    Fortran code (version 3.0) that ``scipy.optimize.minimize(method=
    "L-BFGS-B")`` runs: in float64 the iterates agree with scipy's. Pass it
    to `minimize` with ``lower=``/``upper=`` (without bounds it is L-BFGS
    with a Moré-Thuente line search).

    Besides `minimize`'s own tests, the run converges when
    $\max_i |P(x - \nabla f)_i - x_i| \le$ ``gtol`` or when
    $(f_{k-1} - f_k) / \max(|f_{k-1}|, |f_k|, 1) \le$ ``ftol``. A line search
    that fails (or accepts a higher value) empties the memory and retries
    once; failing again ends the run as ``"linesearch_failed"``.

    Args:
        memory_size: pairs kept (an integer >= 1, scipy's ``maxcor``).
        ftol: relative reduction of $f$ below which the run has converged
            (>= 0; scipy's default, $10^7 \varepsilon_{64}$; in float32 only
            a step that leaves $f$ unchanged reaches it).
        gtol: the largest element of the projected gradient at which the
            run has converged (>= 0).
        max_linesearch_steps: evaluations per line search (an integer >= 1,
            scipy's ``maxls``).

    Returns:
        An `LBFGSB` (a ``NamedTuple`` of these settings) for `minimize`.

    Example:
        >>> import jax.numpy as jnp, jaxopt_lite as jol
        >>> f = lambda x: jnp.sum((x - jnp.array([2.0, -1.0, 0.5])) ** 2)
        >>> result = jol.minimize(f, jnp.zeros(3), jol.lbfgsb(), lower=0.0,
        ...                       upper=1.0)
        >>> result.status, result.steps, result.params.round(4)
        ('converged', 2, Array([1. , 0. , 0.5], dtype=float32))

    References:
        R. H. Byrd, P. Lu, J. Nocedal and C. Zhu, *A limited memory algorithm
        for bound constrained optimization*, SIAM J. Sci. Comput., 1995.
        C. Zhu, R. H. Byrd, P. Lu and J. Nocedal, *Algorithm 778: L-BFGS-B*,
        ACM Trans. Math. Software, 1997. J. L. Morales and J. Nocedal,
        *Remark on "Algorithm 778"*, ACM Trans. Math. Software, 2011.
    """
    validate.check_count("memory_size", memory_size)
    validate.check_count("max_linesearch_steps", max_linesearch_steps)
    for name, value in (("ftol", ftol), ("gtol", gtol)):
        validate.check_nonnegative(name, value)
        if np.ndim(value) != 0:
            raise TypeError(
                f"{name} must be a scalar (a number or a 0-d array), got an array "
                f"of shape {np.shape(value)}."
            )
    return LBFGSB(int(memory_size), ftol, gtol, int(max_linesearch_steps))


def check_use(x0: Any, diff: str) -> None:
    """L-BFGS-B needs real parameters and implicit differentiation."""
    for leaf in jax.tree.leaves(x0):
        if jnp.issubdtype(jnp.result_type(leaf), jnp.complexfloating):
            raise TypeError(
                "lbfgsb needs real parameters: x0 has a leaf of dtype "
                f"{jnp.result_type(leaf)}."
            )
    if diff != "implicit":
        raise ValueError(
            f"diff={diff!r} is not allowed with lbfgsb: its line searches and "
            'breakpoint loops are while loops; use diff="implicit".'
        )
