r"""Adan (`adan`): Adam-like steps from the moments of the gradients and of
their changes between steps, with decoupled weight decay.

A `chain` of `scale_by_adan`, `add_decayed_weights` and
`scale_by_learning_rate`, so `current_learning_rate` reads the rate from its
state.
"""

from __future__ import annotations

from typing import Any

import jax
import optax

from jaxopt_lite._combinators.chain import chain
from jaxopt_lite._core import validate
from jaxopt_lite._core.recipe import recipe
from jaxopt_lite._transforms.adan import scale_by_adan
from jaxopt_lite._transforms.scaling import ScalarOrSchedule, scale_by_learning_rate
from jaxopt_lite._transforms.weight_decay import add_decayed_weights


@recipe
def adan(
    learning_rate: ScalarOrSchedule,
    b1: float | jax.Array = 0.98,
    b2: float | jax.Array = 0.92,
    b3: float | jax.Array = 0.99,
    eps: float | jax.Array = 1e-8,
    eps_root: float | jax.Array = 1e-8,
    weight_decay: ScalarOrSchedule = 0.0,
    mask: Any = None,
) -> optax.GradientTransformationExtraArgs:
    r"""Adan: adaptive Nesterov momentum from the gradients and their changes.

    $$
    \theta_{t+1} = \theta_t - \eta_t \left(
    \frac{\hat m_t + (1-\beta_2) \hat v_t}{\sqrt{\hat n_t + \epsilon_r} + \epsilon}
    + \lambda_t \theta_t \right)
    $$

    with $m$ the moving average of the gradients, $v$ that of their changes
    $g_t - g_{t-1}$, $n$ that of $|g_t + (1-\beta_2)(g_t - g_{t-1})|^2$
    (hats: bias-corrected), as in `scale_by_adan`; the weight decay is
    `add_decayed_weights`, multiplied by the learning rate.

    Args:
        learning_rate: $\eta$: a number >= 0, a scalar array or a schedule.
        b1: $\beta_1$, the decay of the gradients' average, in $[0, 1)$.
        b2: $\beta_2$, the decay of the changes' average, in $[0, 1)$.
        b3: $\beta_3$, the decay of the second moment, in $[0, 1)$.
        eps: $\epsilon >= 0$, added outside the square root.
        eps_root: $\epsilon_r >= 0$, added inside the square root.
        weight_decay: $\lambda >= 0$ (number, array or schedule).
        mask: which leaves get weight decay (see `add_decayed_weights`).

    Returns:
        An ``optax.GradientTransformationExtraArgs``.

    Example:
        >>> import jax, jax.numpy as jnp, optax, jaxopt_lite as jol
        >>> opt = jol.adan(0.1)
        >>> params = jnp.array([1.0, -2.0])
        >>> state = opt.init(params)
        >>> for _ in range(3):
        ...     grads = jax.grad(lambda p: jnp.sum(p**2))(params)
        ...     updates, state = opt.update(grads, state, params)
        ...     params = optax.apply_updates(params, updates)
        >>> [round(float(x), 4) for x in params]
        [0.7007, -1.7002]

    References:
        Xie, Zhou, Li, Lin and Yan, *Adan: Adaptive Nesterov Momentum
        Algorithm for Faster Optimizing Deep Models*, 2022.
    """
    validate.check_weight_decay("weight_decay", weight_decay)
    return chain(
        scale_by_adan(b1, b2, b3, eps, eps_root),
        add_decayed_weights(weight_decay, mask),
        scale_by_learning_rate(learning_rate),
    )
