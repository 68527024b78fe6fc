r"""`sophia`: a clipped diagonal Newton step from Hessian-diagonal estimates
(optax.contrib's)."""

from __future__ import annotations

from typing import Any

import jax
import optax

from jaxopt_lite._combinators.chain import chain
from jaxopt_lite._core import validate
from jaxopt_lite._core.recipe import recipe
from jaxopt_lite._transforms.scaling import ScalarOrSchedule, scale_by_learning_rate
from jaxopt_lite._transforms.sophia import _HUTCHINSON, scale_by_sophia
from jaxopt_lite._transforms.weight_decay import add_decayed_weights


@recipe
def sophia(
    learning_rate: ScalarOrSchedule,
    b1: float | jax.Array = 0.965,
    b2: float | jax.Array = 0.99,
    eps: float | jax.Array = 1e-8,
    weight_decay: ScalarOrSchedule = 1e-4,
    weight_decay_mask: Any = None,
    gamma: float | jax.Array = 0.01,
    clip_threshold: float | jax.Array | None = 1.0,
    update_interval: int | jax.Array = 10,
    hessian_diagonal_fn: optax.GradientTransformation = _HUTCHINSON,
    mu_dtype: Any = None,
    verbose: bool = False,
    print_win_rate_every_n_steps: int = 0,
) -> optax.GradientTransformationExtraArgs:
    r"""Sophia: momentum preconditioned by a clipped diagonal Hessian estimate.

    $$
    \theta_t = \theta_{t-1} - \eta_t \left(
    \operatorname{clip}\left(\frac{\mu_t / (1-\beta_1^t)}
    {\max(\gamma h_{t-1}, \epsilon)}, \pm\rho\right) + \lambda \theta_{t-1}
    \right)
    $$

    with $\mu$ the moving average of the gradients and $h$ a moving average
    (decay $\beta_2$) of Hessian diagonal estimates refreshed every
    ``update_interval`` steps (`scale_by_sophia`). The default estimator,
    `hutchinson_estimator_diag_hessian`, needs the loss as a function of the
    parameters alone: ``update(grads, state, params, obj_fn=lambda p:
    loss(p, batch))``; every extra keyword of ``update`` reaches the
    estimator.

    Args:
        learning_rate: $\eta$: a number >= 0, a scalar array or a schedule.
        b1: $\beta_1$, in $[0, 1)$.
        b2: $\beta_2$, in $[0, 1)$ (per refresh: the effective decay per
            step is $1 - (1-\beta_2)/k$).
        eps: $\epsilon >= 0$.
        weight_decay: $\lambda >= 0$ (number, array or schedule).
        weight_decay_mask: which leaves get weight decay (see
            `add_decayed_weights`).
        gamma: $\gamma >= 0$, the scale of the Hessian estimate.
        clip_threshold: $\rho > 0$, or ``None`` (no clipping).
        update_interval: $k >= 1$, steps between Hessian estimates.
        hessian_diagonal_fn: the Hessian diagonal estimator (a transform).
        mu_dtype: dtype of $\mu$; ``None`` keeps the parameters' dtype.
        verbose: print the fraction of unclipped coordinates.
        print_win_rate_every_n_steps: how often, when ``verbose``.

    Returns:
        An ``optax.GradientTransformationExtraArgs``.

    Example:
        >>> import jax, jax.numpy as jnp, optax, jaxopt_lite as jol
        >>> f = lambda p: jnp.sum(p**2)
        >>> opt = jol.sophia(0.1)
        >>> params = jnp.array([1.0, -2.0])
        >>> state = opt.init(params)
        >>> for _ in range(3):
        ...     grads = jax.grad(f)(params)
        ...     updates, state = opt.update(grads, state, params, obj_fn=f)
        ...     params = optax.apply_updates(params, updates)
        >>> [round(float(x), 4) for x in params]
        [0.7, -1.6999]

    References:
        Liu, Li, Hall, Liang and Ma, *Sophia: A Scalable Stochastic
        Second-order Optimizer for Language Model Pre-training*, 2024.
    """
    validate.check_weight_decay("weight_decay", weight_decay)
    return chain(
        scale_by_sophia(
            b1,
            b2,
            eps,
            gamma,
            clip_threshold,
            update_interval,
            hessian_diagonal_fn,
            mu_dtype,
            verbose,
            print_win_rate_every_n_steps,
        ),
        add_decayed_weights(weight_decay, weight_decay_mask),
        scale_by_learning_rate(learning_rate),
    )
