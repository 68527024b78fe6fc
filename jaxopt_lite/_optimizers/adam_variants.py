r"""Variants of Adam: `adamax`, `adamaxw`, `amsgrad`, `radam`, `adabelief` and
`yogi`.

Each is a `chain` of primitives ending in `scale_by_learning_rate`, so
`current_learning_rate` reads the rate from its state.
"""

from __future__ import annotations

from typing import Any

import jax
import optax

from jaxopt_lite._combinators.chain import chain
from jaxopt_lite._core import validate
from jaxopt_lite._core.recipe import recipe
from jaxopt_lite._transforms.adam import (
    scale_by_adamax,
    scale_by_amsgrad,
)
from jaxopt_lite._transforms.adam_variants import (
    scale_by_belief,
    scale_by_radam,
    scale_by_yogi,
)
from jaxopt_lite._transforms.scaling import ScalarOrSchedule, scale_by_learning_rate
from jaxopt_lite._transforms.weight_decay import add_decayed_weights


@recipe
def adamax(
    learning_rate: ScalarOrSchedule,
    b1: float | jax.Array = 0.9,
    b2: float | jax.Array = 0.999,
    eps: float | jax.Array = 1e-8,
) -> optax.GradientTransformationExtraArgs:
    r"""Adamax: Adam with the second moment replaced by a decaying max norm.

    $$
    \mu_t = \beta_1 \mu_{t-1} + (1-\beta_1) g_t, \quad
    \nu_t = \max(\beta_2 \nu_{t-1}, |g_t| + \epsilon), \quad
    \theta_{t+1} = \theta_t - \eta_t \frac{\mu_t}{(1-\beta_1^t)\,\nu_t}
    $$

    The rescaling is `scale_by_adamax`.

    Args:
        learning_rate: $\eta$: a number >= 0, a scalar array or a schedule.
        b1: $\beta_1$, in $[0, 1)$.
        b2: $\beta_2$, in $[0, 1)$.
        eps: $\epsilon >= 0$.

    Returns:
        An ``optax.GradientTransformationExtraArgs``.

    Example:
        >>> import jax, jax.numpy as jnp, optax, jaxopt_lite as jol
        >>> opt = jol.adamax(0.1)
        >>> params = jnp.array([1.0, -2.0])
        >>> state = opt.init(params)
        >>> for _ in range(3):
        ...     grads = jax.grad(lambda p: jnp.sum(p**2))(params)
        ...     updates, state = opt.update(grads, state, params)
        ...     params = optax.apply_updates(params, updates)
        >>> [round(float(x), 4) for x in params]
        [0.7155, -1.7076]

    References:
        Kingma and Ba, *Adam: A Method for Stochastic Optimization*, 2015.
    """
    return chain(scale_by_adamax(b1, b2, eps), scale_by_learning_rate(learning_rate))


@recipe
def adamaxw(
    learning_rate: ScalarOrSchedule,
    b1: float | jax.Array = 0.9,
    b2: float | jax.Array = 0.999,
    eps: float | jax.Array = 1e-8,
    weight_decay: ScalarOrSchedule = 1e-4,
    mask: Any = None,
) -> optax.GradientTransformationExtraArgs:
    r"""AdamaxW: Adamax with weight decay decoupled from the moment estimates.

    $$
    \theta_{t+1} = \theta_t - \eta_t \left(
    \frac{\mu_t}{(1-\beta_1^t)\,\nu_t} + \lambda_t \theta_t \right)
    $$

    with $\mu_t, \nu_t$ the moments of `adamax`. The rescaling is
    `scale_by_adamax`, followed by `add_decayed_weights`; the decay is
    multiplied by the learning rate.

    Args:
        learning_rate: $\eta$: a number >= 0, a scalar array or a schedule.
        b1: $\beta_1$, in $[0, 1)$.
        b2: $\beta_2$, in $[0, 1)$.
        eps: $\epsilon >= 0$.
        weight_decay: $\lambda >= 0$ (number, array or schedule).
        mask: which leaves get weight decay (see `add_decayed_weights`).

    Returns:
        An ``optax.GradientTransformationExtraArgs``.

    Example:
        >>> import jax, jax.numpy as jnp, optax, jaxopt_lite as jol
        >>> opt = jol.adamaxw(0.1, weight_decay=0.1)
        >>> params = jnp.array([1.0, -2.0])
        >>> state = opt.init(params)
        >>> for _ in range(3):
        ...     grads = jax.grad(lambda p: jnp.sum(p**2))(params)
        ...     updates, state = opt.update(grads, state, params)
        ...     params = optax.apply_updates(params, updates)
        >>> [round(float(x), 4) for x in params]
        [0.6903, -1.6528]

    References:
        Kingma and Ba, *Adam: A Method for Stochastic Optimization*, 2015.
        Loshchilov and Hutter, *Decoupled Weight Decay Regularization*, 2019.
    """
    validate.check_weight_decay("weight_decay", weight_decay)
    return chain(
        scale_by_adamax(b1, b2, eps),
        add_decayed_weights(weight_decay, mask),
        scale_by_learning_rate(learning_rate),
    )


@recipe
def amsgrad(
    learning_rate: ScalarOrSchedule,
    b1: float | jax.Array = 0.9,
    b2: float | jax.Array = 0.999,
    eps: float | jax.Array = 1e-8,
    eps_root: float | jax.Array = 0.0,
    mu_dtype: Any = None,
    bias_correction_mu: bool = True,
    bias_correction_nu: bool = True,
    *,
    nu_dtype: Any = None,
) -> optax.GradientTransformationExtraArgs:
    r"""AMSGrad: Adam dividing by the largest second moment seen so far.

    $$
    \nu^{\max}_t = \max(\nu^{\max}_{t-1}, \hat\nu_t), \qquad
    \theta_{t+1} = \theta_t - \eta_t
    \frac{\hat\mu_t}{\sqrt{\nu^{\max}_t + \epsilon_r} + \epsilon}
    $$

    The rescaling is `scale_by_amsgrad`.

    Args:
        learning_rate: $\eta$: a number >= 0, a scalar array or a schedule.
        b1: $\beta_1$, in $[0, 1)$.
        b2: $\beta_2$, in $[0, 1)$.
        eps: $\epsilon >= 0$, added outside the square root.
        eps_root: $\epsilon_r >= 0$, added inside the square root.
        mu_dtype: dtype of the first moment; ``None`` keeps the parameters'.
        bias_correction_mu: bias-correct the first moment.
        bias_correction_nu: bias-correct the second moment before the max.
        nu_dtype: real floating dtype the second moment and its maximum are
            stored in; ``None`` keeps the parameters' real dtype. An addition
            to optax's arguments (see `scale_by_amsgrad`).

    Returns:
        An ``optax.GradientTransformationExtraArgs``.

    Example:
        >>> import jax, jax.numpy as jnp, optax, jaxopt_lite as jol
        >>> opt = jol.amsgrad(0.1)
        >>> params = jnp.array([1.0, -2.0])
        >>> state = opt.init(params)
        >>> for _ in range(3):
        ...     grads = jax.grad(lambda p: jnp.sum(p**2))(params)
        ...     updates, state = opt.update(grads, state, params)
        ...     params = optax.apply_updates(params, updates)
        >>> [round(float(x), 4) for x in params]
        [0.7158, -1.7079]

    References:
        Reddi et al., *On the Convergence of Adam and Beyond*, 2018.
    """
    return chain(
        scale_by_amsgrad(
            b1,
            b2,
            eps,
            eps_root,
            mu_dtype,
            bias_correction_mu,
            bias_correction_nu,
            nu_dtype=nu_dtype,
        ),
        scale_by_learning_rate(learning_rate),
    )


@recipe
def radam(
    learning_rate: ScalarOrSchedule,
    b1: float | jax.Array = 0.9,
    b2: float | jax.Array = 0.999,
    eps: float | jax.Array = 1e-8,
    eps_root: float | jax.Array = 0.0,
    threshold: float | jax.Array = 5.0,
    *,
    nesterov: bool = False,
) -> optax.GradientTransformationExtraArgs:
    r"""RAdam: Adam with a rectified step size (rectified Adam).

    Falls back to momentum SGD while the variance of the adaptive rate is
    intractable.

    $$
    \theta_{t+1} = \theta_t - \eta_t \begin{cases}
    r_t \hat\mu_t / (\sqrt{\hat\nu_t + \epsilon_r} + \epsilon) & \rho_t \ge \tau \\
    \hat\mu_t & \text{otherwise}
    \end{cases}
    $$

    with $\rho_t$ and $r_t$ as in `scale_by_radam`.

    Args:
        learning_rate: $\eta$: a number >= 0, a scalar array or a schedule.
        b1: $\beta_1$, in $[0, 1)$.
        b2: $\beta_2$, in $[0, 1)$.
        eps: $\epsilon >= 0$, added outside the square root.
        eps_root: $\epsilon_r >= 0$, added inside the square root.
        threshold: $\tau$, the tractability threshold.
        nesterov: use Nesterov momentum.

    Returns:
        An ``optax.GradientTransformationExtraArgs``.

    Example:
        >>> import jax, jax.numpy as jnp, optax, jaxopt_lite as jol
        >>> opt = jol.radam(0.1)
        >>> params = jnp.array([1.0, -2.0])
        >>> state = opt.init(params)
        >>> for _ in range(3):
        ...     grads = jax.grad(lambda p: jnp.sum(p**2))(params)
        ...     updates, state = opt.update(grads, state, params)
        ...     params = optax.apply_updates(params, updates)
        >>> [round(float(x), 4) for x in params]
        [0.4623, -0.9246]

    References:
        Liu et al., *On the Variance of the Adaptive Learning Rate and
        Beyond*, 2020.
    """
    return chain(
        scale_by_radam(b1, b2, eps, eps_root, threshold, nesterov=nesterov),
        scale_by_learning_rate(learning_rate),
    )


@recipe
def adabelief(
    learning_rate: ScalarOrSchedule,
    b1: float | jax.Array = 0.9,
    b2: float | jax.Array = 0.999,
    eps: float | jax.Array = 1e-16,
    eps_root: float | jax.Array = 1e-16,
    *,
    nesterov: bool = False,
) -> optax.GradientTransformationExtraArgs:
    r"""AdaBelief: Adam dividing by the spread of gradients around their mean.

    The denominator holds the variance of the gradient around its moving
    average (the "belief") instead of the raw second moment.

    $$
    s_t = \beta_2 s_{t-1} + (1-\beta_2)|g_t - \mu_t|^2 + \epsilon_r, \qquad
    \theta_{t+1} = \theta_t - \eta_t \frac{\hat\mu_t}{\sqrt{\hat s_t} + \epsilon}
    $$

    The rescaling is `scale_by_belief`.

    Args:
        learning_rate: $\eta$: a number >= 0, a scalar array or a schedule.
        b1: $\beta_1$, in $[0, 1)$.
        b2: $\beta_2$, in $[0, 1)$.
        eps: $\epsilon >= 0$, added outside the square root.
        eps_root: $\epsilon_r >= 0$, added to $s_t$ every step.
        nesterov: use Nesterov momentum.

    Returns:
        An ``optax.GradientTransformationExtraArgs``.

    Example:
        >>> import jax, jax.numpy as jnp, optax, jaxopt_lite as jol
        >>> opt = jol.adabelief(0.1)
        >>> params = jnp.array([1.0, -2.0])
        >>> state = opt.init(params)
        >>> for _ in range(3):
        ...     grads = jax.grad(lambda p: jnp.sum(p**2))(params)
        ...     updates, state = opt.update(grads, state, params)
        ...     params = optax.apply_updates(params, updates)
        >>> [round(float(x), 4) for x in params]
        [0.6523, -1.6506]

    References:
        Zhuang et al., *AdaBelief Optimizer: Adapting Stepsizes by the Belief
        in Observed Gradients*, 2020.
    """
    return chain(
        scale_by_belief(b1, b2, eps, eps_root, nesterov=nesterov),
        scale_by_learning_rate(learning_rate),
    )


@recipe
def yogi(
    learning_rate: ScalarOrSchedule,
    b1: float | jax.Array = 0.9,
    b2: float | jax.Array = 0.999,
    eps: float | jax.Array = 1e-3,
) -> optax.GradientTransformationExtraArgs:
    r"""Yogi: Adam with an additive, sign-controlled second-moment update.

    $$
    \nu_t = \nu_{t-1} - (1-\beta_2)\,\mathrm{sign}(\nu_{t-1} - |g_t|^2)\,|g_t|^2,
    \qquad
    \theta_{t+1} = \theta_t - \eta_t \frac{\hat\mu_t}{\sqrt{\hat\nu_t} + \epsilon}
    $$

    The rescaling is `scale_by_yogi` (moments start at $10^{-6}$).

    Args:
        learning_rate: $\eta$: a number >= 0, a scalar array or a schedule.
        b1: $\beta_1$, in $[0, 1)$.
        b2: $\beta_2$, in $[0, 1)$.
        eps: $\epsilon >= 0$.

    Returns:
        An ``optax.GradientTransformationExtraArgs``.

    Example:
        >>> import jax, jax.numpy as jnp, optax, jaxopt_lite as jol
        >>> opt = jol.yogi(0.1)
        >>> params = jnp.array([1.0, -2.0])
        >>> state = opt.init(params)
        >>> for _ in range(3):
        ...     grads = jax.grad(lambda p: jnp.sum(p**2))(params)
        ...     updates, state = opt.update(grads, state, params)
        ...     params = optax.apply_updates(params, updates)
        >>> [round(float(x), 4) for x in params]
        [0.7019, -1.7008]

    References:
        Zaheer et al., *Adaptive Methods for Nonconvex Optimization*, 2018.
    """
    return chain(scale_by_yogi(b1, b2, eps), scale_by_learning_rate(learning_rate))
