"""`lbfgs`: the limited-memory quasi-Newton direction scaled by a line search."""

from __future__ import annotations

import optax

from jaxopt_lite._combinators import chain
from jaxopt_lite._core import validate
from jaxopt_lite._core.recipe import recipe
from jaxopt_lite._transforms import scaling, zoom
from jaxopt_lite._transforms.lbfgs import scale_by_lbfgs

# optax's default: a zoom line search whose first trial is always a unit step.
_DEFAULT_LINESEARCH = zoom.scale_by_zoom_linesearch(20, initial_guess_strategy="one")


@recipe(static=("memory_size",))
def lbfgs(
    learning_rate: scaling.ScalarOrSchedule | None = None,
    memory_size: int = 10,
    scale_init_precond: bool = True,
    linesearch: optax.GradientTransformation | None = _DEFAULT_LINESEARCH,
) -> optax.GradientTransformationExtraArgs:
    r"""L-BFGS: a quasi-Newton direction scaled by a line search.

    $$
    w_{k+1} = w_k - \eta_k H_k \nabla f(w_k)
    $$

    with $H_k$ the limited-memory inverse-Hessian approximation of
    `scale_by_lbfgs` and $\eta_k$ from ``linesearch`` (by default a zoom line
    search, strong Wolfe, first trial $\eta = 1$), then multiplied by
    ``learning_rate`` when one is given. The same chain as optax's ``lbfgs``:
    given the same arguments the iterates agree with optax's. Use it with
    `minimize`, which passes the ``value``, ``grad`` and ``value_fn`` that the
    line search needs and reuses the value and gradient it computed.

    Args:
        learning_rate: an extra fixed factor or schedule, or ``None`` (the line
            search alone sets the step).
        memory_size: the number of pairs kept (an integer >= 1).
        scale_init_precond: scale the initial inverse Hessian (see
            `scale_by_lbfgs`).
        linesearch: the step-size rule, e.g. `scale_by_zoom_linesearch` or
            `scale_by_backtracking_linesearch` (ours or optax's); ``None``
            takes the direction as it is.

    Returns:
        An ``optax.GradientTransformationExtraArgs``.

    Example:
        >>> import jax.numpy as jnp, jaxopt_lite as jol
        >>> f = lambda x: jnp.sum((x - jnp.arange(3.0)) ** 2)
        >>> result = jol.minimize(f, jnp.zeros(3), jol.lbfgs(), tol=1e-6)
        >>> result.status, result.steps, result.fun_evals, result.params
        ('converged', 2, 3, Array([0., 1., 2.], dtype=float32))

    References:
        D. C. Liu and J. Nocedal, *On the limited memory BFGS method for large
        scale optimization*, Math. Programming, 1989.
    """
    if learning_rate is not None:
        validate.check_learning_rate("learning_rate", learning_rate)
    if linesearch is not None and not isinstance(
        linesearch, optax.GradientTransformation
    ):
        raise TypeError(
            "linesearch must be an optax.GradientTransformation (for example "
            f"jaxopt_lite.scale_by_zoom_linesearch(20)) or None, got {linesearch!r}."
        )
    base = (
        scaling.scale(-1.0)
        if learning_rate is None
        else scaling.scale_by_learning_rate(learning_rate)
    )
    parts = [scale_by_lbfgs(memory_size, scale_init_precond), base]
    if linesearch is not None:
        parts.append(linesearch)
    return chain.chain(*parts)
