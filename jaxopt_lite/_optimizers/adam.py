r"""Adam and its relatives: AdamW, NAdam(W), Adamax, AMSGrad, RAdam, AdaBelief
and Yogi.

Each is a `chain` of a moment-based rescaling, optionally
`add_decayed_weights`, and `scale_by_learning_rate`; so
`current_learning_rate` works for all of them and the learning rate may be a
number, an array (possibly traced) or a schedule ``step -> rate``.
"""

from __future__ import annotations

from typing import Any

import jax
import optax

from jaxopt_lite._combinators.chain import chain
from jaxopt_lite._core import validate
from jaxopt_lite._core.recipe import recipe
from jaxopt_lite._transforms.adam import (
    scale_by_adam,
)
from jaxopt_lite._transforms.scaling import ScalarOrSchedule, scale_by_learning_rate
from jaxopt_lite._transforms.weight_decay import add_decayed_weights


@recipe
def adam(
    learning_rate: ScalarOrSchedule,
    b1: float | jax.Array = 0.9,
    b2: float | jax.Array = 0.999,
    eps: float | jax.Array = 1e-8,
    eps_root: float | jax.Array = 0.0,
    mu_dtype: Any = None,
    *,
    nu_dtype: Any = None,
    nesterov: bool = False,
) -> optax.GradientTransformationExtraArgs:
    r"""Adam: a moving average of gradients over the RMS of their moving average.

    Each step follows the bias-corrected moving average of the gradients,
    divided by the root of the bias-corrected moving average of their squares.

    $$
    \mu_t = \beta_1 \mu_{t-1} + (1-\beta_1) g_t, \quad
    \nu_t = \beta_2 \nu_{t-1} + (1-\beta_2) |g_t|^2, \quad
    \theta_{t+1} = \theta_t - \eta_t
    \frac{\mu_t / (1-\beta_1^t)}{\sqrt{\nu_t / (1-\beta_2^t) + \epsilon_r} + \epsilon}
    $$

    The rescaling is `scale_by_adam`; ``nesterov=True`` gives `nadam`.

    Args:
        learning_rate: $\eta$: a number >= 0, a scalar array or a schedule.
        b1: $\beta_1$, in $[0, 1)$.
        b2: $\beta_2$, in $[0, 1)$.
        eps: $\epsilon >= 0$, added outside the square root.
        eps_root: $\epsilon_r >= 0$, added inside the square root.
        mu_dtype: dtype of the first moment; ``None`` keeps the parameters'.
        nu_dtype: real floating dtype the second moment is stored in
            (``jnp.bfloat16`` halves its memory); ``None`` keeps the
            parameters' real dtype. An addition to optax's arguments (see
            `scale_by_adam`).
        nesterov: use Nesterov momentum (NAdam).

    Returns:
        An ``optax.GradientTransformationExtraArgs``.

    Example:
        >>> import jax, jax.numpy as jnp, optax, jaxopt_lite as jol
        >>> opt = jol.adam(0.1)
        >>> params = jnp.array([1.0, -2.0])
        >>> state = opt.init(params)
        >>> for _ in range(3):
        ...     grads = jax.grad(lambda p: jnp.sum(p**2))(params)
        ...     updates, state = opt.update(grads, state, params)
        ...     params = optax.apply_updates(params, updates)
        >>> [round(float(x), 4) for x in params]
        [0.7016, -1.7006]

    References:
        Kingma and Ba, *Adam: A Method for Stochastic Optimization*, 2015.
    """
    return chain(
        scale_by_adam(
            b1, b2, eps, eps_root, mu_dtype, nu_dtype=nu_dtype, nesterov=nesterov
        ),
        scale_by_learning_rate(learning_rate),
    )


@recipe
def adamw(
    learning_rate: ScalarOrSchedule,
    b1: float | jax.Array = 0.9,
    b2: float | jax.Array = 0.999,
    eps: float | jax.Array = 1e-8,
    eps_root: float | jax.Array = 0.0,
    mu_dtype: Any = None,
    weight_decay: ScalarOrSchedule = 1e-4,
    mask: Any = None,
    *,
    nu_dtype: Any = None,
    nesterov: bool = False,
) -> optax.GradientTransformationExtraArgs:
    r"""AdamW: Adam with weight decay decoupled from the gradient statistics.

    $$
    \theta_{t+1} = \theta_t - \eta_t \left(
    \frac{\hat\mu_t}{\sqrt{\hat\nu_t + \epsilon_r} + \epsilon}
    + \lambda_t \theta_t \right)
    $$

    with $\hat\mu_t, \hat\nu_t$ the bias-corrected moments of `adam`. The
    decay is `add_decayed_weights`, placed after the Adam rescaling.

    Args:
        learning_rate: $\eta$: a number >= 0, a scalar array or a schedule.
        b1: $\beta_1$, in $[0, 1)$.
        b2: $\beta_2$, in $[0, 1)$.
        eps: $\epsilon >= 0$, added outside the square root.
        eps_root: $\epsilon_r >= 0$, added inside the square root.
        mu_dtype: dtype of the first moment; ``None`` keeps the parameters'.
        weight_decay: $\lambda >= 0$ (number, array or schedule).
        mask: which leaves get weight decay (see `add_decayed_weights`).
        nu_dtype: real floating dtype the second moment is stored in
            (``jnp.bfloat16`` halves its memory); ``None`` keeps the
            parameters' real dtype. An addition to optax's arguments (see
            `scale_by_adam`).
        nesterov: use Nesterov momentum (`nadamw`).

    Returns:
        An ``optax.GradientTransformationExtraArgs``.

    Example:
        >>> import jax, jax.numpy as jnp, optax, jaxopt_lite as jol
        >>> opt = jol.adamw(0.1, weight_decay=0.1)
        >>> params = jnp.array([1.0, -2.0])
        >>> state = opt.init(params)
        >>> for _ in range(3):
        ...     grads = jax.grad(lambda p: jnp.sum(p**2))(params)
        ...     updates, state = opt.update(grads, state, params)
        ...     params = optax.apply_updates(params, updates)
        >>> [round(float(x), 4) for x in params]
        [0.6751, -1.6444]

    References:
        Loshchilov and Hutter, *Decoupled Weight Decay Regularization*, 2019.
    """
    validate.check_weight_decay("weight_decay", weight_decay)
    return chain(
        scale_by_adam(
            b1, b2, eps, eps_root, mu_dtype, nu_dtype=nu_dtype, nesterov=nesterov
        ),
        add_decayed_weights(weight_decay, mask),
        scale_by_learning_rate(learning_rate),
    )


@recipe
def nadam(
    learning_rate: ScalarOrSchedule,
    b1: float | jax.Array = 0.9,
    b2: float | jax.Array = 0.999,
    eps: float | jax.Array = 1e-8,
    eps_root: float | jax.Array = 0.0,
    mu_dtype: Any = None,
    *,
    nu_dtype: Any = None,
) -> optax.GradientTransformationExtraArgs:
    r"""NAdam: Adam with Nesterov momentum (`adam` with ``nesterov=True``).

    $$
    \theta_{t+1} = \theta_t - \eta_t
    \frac{\beta_1 \mu_t / (1-\beta_1^{t+1}) + (1-\beta_1) g_t / (1-\beta_1^t)}
    {\sqrt{\nu_t / (1-\beta_2^t) + \epsilon_r} + \epsilon}
    $$

    Args:
        learning_rate: $\eta$: a number >= 0, a scalar array or a schedule.
        b1: $\beta_1$, in $[0, 1)$.
        b2: $\beta_2$, in $[0, 1)$.
        eps: $\epsilon >= 0$, added outside the square root.
        eps_root: $\epsilon_r >= 0$, added inside the square root.
        mu_dtype: dtype of the first moment; ``None`` keeps the parameters'.
        nu_dtype: real floating dtype the second moment is stored in
            (``jnp.bfloat16`` halves its memory); ``None`` keeps the
            parameters' real dtype. An addition to optax's arguments (see
            `scale_by_adam`).

    Returns:
        An ``optax.GradientTransformationExtraArgs``.

    Example:
        >>> import jax, jax.numpy as jnp, optax, jaxopt_lite as jol
        >>> opt = jol.nadam(0.1)
        >>> params = jnp.array([1.0, -2.0])
        >>> state = opt.init(params)
        >>> for _ in range(3):
        ...     grads = jax.grad(lambda p: jnp.sum(p**2))(params)
        ...     updates, state = opt.update(grads, state, params)
        ...     params = optax.apply_updates(params, updates)
        >>> [round(float(x), 4) for x in params]
        [0.6406, -1.6343]

    References:
        Dozat, *Incorporating Nesterov Momentum into Adam*, 2016.
    """
    return adam(
        learning_rate,
        b1,
        b2,
        eps,
        eps_root,
        mu_dtype,
        nu_dtype=nu_dtype,
        nesterov=True,
    )


@recipe
def nadamw(
    learning_rate: ScalarOrSchedule,
    b1: float | jax.Array = 0.9,
    b2: float | jax.Array = 0.999,
    eps: float | jax.Array = 1e-8,
    eps_root: float | jax.Array = 0.0,
    mu_dtype: Any = None,
    weight_decay: ScalarOrSchedule = 1e-4,
    mask: Any = None,
    *,
    nu_dtype: Any = None,
) -> optax.GradientTransformationExtraArgs:
    r"""NAdamW: NAdam with decoupled weight decay.

    The same as `adamw` with ``nesterov=True``.

    $$
    \theta_{t+1} = \theta_t - \eta_t \left(
    \frac{\beta_1 \hat\mu_{t+1}' + (1-\beta_1) g_t / (1-\beta_1^t)}
    {\sqrt{\hat\nu_t + \epsilon_r} + \epsilon} + \lambda_t \theta_t \right),
    \quad \hat\mu_{t+1}' = \frac{\mu_t}{1-\beta_1^{t+1}}
    $$

    Args:
        learning_rate: $\eta$: a number >= 0, a scalar array or a schedule.
        b1: $\beta_1$, in $[0, 1)$.
        b2: $\beta_2$, in $[0, 1)$.
        eps: $\epsilon >= 0$, added outside the square root.
        eps_root: $\epsilon_r >= 0$, added inside the square root.
        mu_dtype: dtype of the first moment; ``None`` keeps the parameters'.
        weight_decay: $\lambda >= 0$ (number, array or schedule).
        mask: which leaves get weight decay (see `add_decayed_weights`).
        nu_dtype: real floating dtype the second moment is stored in
            (``jnp.bfloat16`` halves its memory); ``None`` keeps the
            parameters' real dtype. An addition to optax's arguments (see
            `scale_by_adam`).

    Returns:
        An ``optax.GradientTransformationExtraArgs``.

    Example:
        >>> import jax, jax.numpy as jnp, optax, jaxopt_lite as jol
        >>> opt = jol.nadamw(0.1)
        >>> params = jnp.array([1.0, -2.0])
        >>> state = opt.init(params)
        >>> for _ in range(3):
        ...     grads = jax.grad(lambda p: jnp.sum(p**2))(params)
        ...     updates, state = opt.update(grads, state, params)
        ...     params = optax.apply_updates(params, updates)
        >>> [round(float(x), 4) for x in params]
        [0.6406, -1.6342]

    References:
        Dozat, *Incorporating Nesterov Momentum into Adam*, 2016.
        Loshchilov and Hutter, *Decoupled Weight Decay Regularization*, 2019.
    """
    return adamw(
        learning_rate,
        b1,
        b2,
        eps,
        eps_root,
        mu_dtype,
        weight_decay,
        mask,
        nu_dtype=nu_dtype,
        nesterov=True,
    )
