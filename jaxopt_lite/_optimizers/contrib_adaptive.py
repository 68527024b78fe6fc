r"""optax.contrib's moment-based optimizers: ACProp, AdEMAMix (and its
simplified form), ADOPT and MADGRAD.

Each is a `chain` of its rescaling, optionally `add_decayed_weights`, and
`scale_by_learning_rate` (MADGRAD applies its learning rate inside
`scale_by_madgrad`), so the learning rate may be a number, an array or a
schedule.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import optax

from jaxopt_lite._combinators.chain import chain
from jaxopt_lite._core import validate
from jaxopt_lite._core.recipe import recipe
from jaxopt_lite._transforms.ademamix import (
    scale_by_ademamix,
    scale_by_simplified_ademamix,
)
from jaxopt_lite._transforms.asynchronous_moments import (
    _quarter_power,
    scale_by_acprop,
    scale_by_adopt,
)
from jaxopt_lite._transforms.madgrad import scale_by_madgrad
from jaxopt_lite._transforms.scaling import ScalarOrSchedule, scale_by_learning_rate
from jaxopt_lite._transforms.weight_decay import add_decayed_weights


@recipe
def acprop(
    learning_rate: ScalarOrSchedule,
    b1: float | jax.Array = 0.9,
    b2: float | jax.Array = 0.999,
    eps: float | jax.Array = 1e-16,
    eps_root: float | jax.Array = 1e-16,
    weight_decay: ScalarOrSchedule = 0.0,
    mask: Any = None,
) -> optax.GradientTransformationExtraArgs:
    r"""ACProp: AdaBelief's centred second moment, applied asynchronously.

    $$
    s_t = \beta_2 s_{t-1} + (1-\beta_2) |g_t - \mu_{t-1}|^2 + \epsilon_r,
    \quad
    \theta_t = \theta_{t-1} - \eta_t \left(\frac{g_t}
    {\sqrt{s_{t-1} / (1-\beta_2^{t-1})} + \epsilon} + \lambda \theta_{t-1}\right)
    $$

    with $\mu$ the moving average of the gradients: the step uses the
    current gradient over the spread of the previous ones (`scale_by_acprop`;
    1 at the first step), then `add_decayed_weights`.

    Args:
        learning_rate: $\eta$: a number >= 0, a scalar array or a schedule.
        b1: $\beta_1$, in $[0, 1)$.
        b2: $\beta_2$, in $[0, 1)$.
        eps: $\epsilon >= 0$, added outside the square root.
        eps_root: $\epsilon_r >= 0$, added to $s_t$.
        weight_decay: $\lambda >= 0$ (number, array or schedule).
        mask: which leaves get weight decay (see `add_decayed_weights`).

    Returns:
        An ``optax.GradientTransformationExtraArgs``.

    Example:
        >>> import jax, jax.numpy as jnp, optax, jaxopt_lite as jol
        >>> opt = jol.acprop(0.1)
        >>> params = jnp.array([1.0, -2.0])
        >>> state = opt.init(params)
        >>> for _ in range(3):
        ...     grads = jax.grad(lambda p: jnp.sum(p**2))(params)
        ...     updates, state = opt.update(grads, state, params)
        ...     params = optax.apply_updates(params, updates)
        >>> [round(float(x), 4) for x in params]
        [0.6366, -1.4319]

    References:
        Zhuang et al., *Momentum Centering and Asynchronous Update for
        Adaptive Gradient Methods*, 2021.
    """
    validate.check_weight_decay("weight_decay", weight_decay)
    return chain(
        scale_by_acprop(b1, b2, eps, eps_root),
        add_decayed_weights(weight_decay, mask),
        scale_by_learning_rate(learning_rate),
    )


@recipe
def ademamix(
    learning_rate: ScalarOrSchedule,
    b1: float | jax.Array = 0.9,
    b2: float | jax.Array = 0.999,
    b3: ScalarOrSchedule = 0.9999,
    alpha: ScalarOrSchedule = 5.0,
    eps: float | jax.Array = 1e-8,
    eps_root: float | jax.Array = 0.0,
    mu_dtype: Any = None,
    weight_decay: ScalarOrSchedule = 0.0,
    mask: Any = None,
) -> optax.GradientTransformationExtraArgs:
    r"""AdEMAMix: AdamW with a slow moving average of the gradients added in.

    $$
    \theta_t = \theta_{t-1} - \eta_t \left(
    \frac{m^{(1)}_t / (1-\beta_1^t) + \alpha\, m^{(2)}_t}
    {\sqrt{\nu_t / (1-\beta_2^t) + \epsilon_r} + \epsilon}
    + \lambda \theta_{t-1} \right)
    $$

    with $m^{(1)}$, $\nu$ Adam's moments and $m^{(2)}$ a moving average of
    the gradients with the slow decay $\beta_3$ (`scale_by_ademamix`). Very old
    gradients keep contributing, which pays off in long runs; for short ones a
    smaller $\beta_3$ (0.999) works better.

    Args:
        learning_rate: $\eta$: a number >= 0, a scalar array or a schedule.
        b1: $\beta_1$, in $[0, 1)$.
        b2: $\beta_2$, in $[0, 1)$.
        b3: $\beta_3$, in $[0, 1)$, or a schedule.
        alpha: $\alpha$, the weight of the slow average (or a schedule).
        eps: $\epsilon >= 0$, added outside the square root.
        eps_root: $\epsilon_r >= 0$, added inside the square root.
        mu_dtype: dtype of both averages; ``None`` keeps the parameters'.
        weight_decay: $\lambda >= 0$ (number, array or schedule).
        mask: which leaves get weight decay (see `add_decayed_weights`).

    Returns:
        An ``optax.GradientTransformationExtraArgs``.

    Example:
        >>> import jax, jax.numpy as jnp, optax, jaxopt_lite as jol
        >>> opt = jol.ademamix(0.1)
        >>> params = jnp.array([1.0, -2.0])
        >>> state = opt.init(params)
        >>> for _ in range(3):
        ...     grads = jax.grad(lambda p: jnp.sum(p**2))(params)
        ...     updates, state = opt.update(grads, state, params)
        ...     params = optax.apply_updates(params, updates)
        >>> [round(float(x), 4) for x in params]
        [0.7013, -1.7003]

    References:
        Pagliardini, Ablin and Grangier, *The AdEMAMix Optimizer: Better,
        Faster, Older*, 2024.
    """
    validate.check_weight_decay("weight_decay", weight_decay)
    return chain(
        scale_by_ademamix(b1, b2, b3, alpha, eps, eps_root, mu_dtype),
        add_decayed_weights(weight_decay, mask),
        scale_by_learning_rate(learning_rate),
    )


@recipe
def simplified_ademamix(
    learning_rate: ScalarOrSchedule,
    b1: float | jax.Array = 0.99,
    b2: float | jax.Array = 0.95,
    alpha: ScalarOrSchedule = 0.0,
    eps: float | jax.Array = 1e-8,
    eps_root: float | jax.Array = 0.0,
    weight_decay: ScalarOrSchedule = 0.0,
    mask: Any = None,
) -> optax.GradientTransformationExtraArgs:
    r"""Simplified AdEMAMix: a summed momentum plus $\alpha$ times the gradient.

    Both over the root of Adam's second moment:

    $$
    m_t = \beta_1 m_{t-1} + g_t, \quad
    \theta_t = \theta_{t-1} - \eta_t \left(
    \frac{m_t + \alpha g_t}{\sqrt{\nu_t / (1-\beta_2^t) + \epsilon_r} + \epsilon}
    + \lambda \theta_{t-1} \right)
    $$

    (`scale_by_simplified_ademamix`). No slow average to schedule; with
    $\alpha = 0$ it is Adam with an undamped momentum (a rescaled learning
    rate and $\beta_1$).

    Args:
        learning_rate: $\eta$: a number >= 0, a scalar array or a schedule.
        b1: $\beta_1$, in $[0, 1]$.
        b2: $\beta_2$, in $[0, 1)$.
        alpha: $\alpha$ (a number or a schedule).
        eps: $\epsilon >= 0$, added outside the square root.
        eps_root: $\epsilon_r >= 0$, added inside the square root.
        weight_decay: $\lambda >= 0$ (number, array or schedule).
        mask: which leaves get weight decay (see `add_decayed_weights`).

    Returns:
        An ``optax.GradientTransformationExtraArgs``.

    Example:
        >>> import jax, jax.numpy as jnp, optax, jaxopt_lite as jol
        >>> opt = jol.simplified_ademamix(0.01)
        >>> params = jnp.array([1.0, -2.0])
        >>> state = opt.init(params)
        >>> for _ in range(3):
        ...     grads = jax.grad(lambda p: jnp.sum(p**2))(params)
        ...     updates, state = opt.update(grads, state, params)
        ...     params = optax.apply_updates(params, updates)
        >>> [round(float(x), 4) for x in params]
        [0.9404, -1.9404]

    References:
        Morwani et al., *Connections between Schedule-Free Optimizers,
        AdEMAMix, and Accelerated SGD Variants*, 2025.
    """
    validate.check_weight_decay("weight_decay", weight_decay)
    return chain(
        scale_by_simplified_ademamix(b1, b2, alpha, eps, eps_root),
        add_decayed_weights(weight_decay, mask),
        scale_by_learning_rate(learning_rate),
    )


@recipe
def adopt(
    learning_rate: ScalarOrSchedule,
    b1: float | jax.Array = 0.9,
    b2: float | jax.Array = 0.9999,
    eps: float | jax.Array = 1e-6,
    mu_dtype: Any = None,
    *,
    nesterov: bool = False,
    use_clipping: bool = True,
    clip_value_fn: Callable[[jax.Array], jax.Array] = _quarter_power,
) -> optax.GradientTransformationExtraArgs:
    r"""ADOPT: momentum of gradients normalized by the previous second moment.

    $$
    \mu_t = \beta_1 \mu_{t-1} + (1-\beta_1)
    \operatorname{clip}\left(\frac{g_t}{\max(\sqrt{\nu_{t-1}}, \epsilon)},
    \pm (t-1)^{1/4}\right),
    \quad
    \theta_t = \theta_{t-1} - \eta_t \mu_t
    $$

    with $\nu_t = \beta_2 \nu_{t-1} + (1-\beta_2) |g_t|^2$, $\nu_1 = |g_1|^2$
    and no step at $t = 1$ (`scale_by_adopt`). Dividing by a second moment
    that does not contain $g_t$ makes it converge for any $\beta_2$.

    Args:
        learning_rate: $\eta$: a number >= 0, a scalar array or a schedule.
        b1: $\beta_1$, in $[0, 1)$.
        b2: $\beta_2$, in $[0, 1)$.
        eps: $\epsilon >= 0$, the floor of $\sqrt{\nu}$.
        mu_dtype: dtype of $\mu$; ``None`` keeps the parameters' dtype.
        nesterov: use Nesterov momentum.
        use_clipping: clip the normalized gradient (recommended).
        clip_value_fn: the clipping bound as a function of the number of
            previous steps (see `scale_by_adopt`).

    Returns:
        An ``optax.GradientTransformationExtraArgs``.

    Example:
        >>> import jax, jax.numpy as jnp, optax, jaxopt_lite as jol
        >>> opt = jol.adopt(0.1)
        >>> params = jnp.array([1.0, -2.0])
        >>> state = opt.init(params)
        >>> for _ in range(3):
        ...     grads = jax.grad(lambda p: jnp.sum(p**2))(params)
        ...     updates, state = opt.update(grads, state, params)
        ...     params = optax.apply_updates(params, updates)
        >>> [round(float(x), 4) for x in params]
        [0.9711, -1.9711]

    References:
        Taniguchi et al., *ADOPT: Modified Adam Can Converge with Any
        $\beta_2$ with the Optimal Rate*, 2024.
    """
    return chain(
        scale_by_adopt(
            b1,
            b2,
            eps,
            mu_dtype,
            nesterov=nesterov,
            use_clipping=use_clipping,
            clip_value_fn=clip_value_fn,
        ),
        scale_by_learning_rate(learning_rate),
    )


@recipe
def madgrad(
    learning_rate: ScalarOrSchedule,
    momentum: float | jax.Array = 0.9,
    weight_decay: ScalarOrSchedule = 0.0,
    eps: float | jax.Array = 1e-6,
) -> optax.GradientTransformationExtraArgs:
    r"""MADGRAD: momentumized, adaptive, dual-averaged gradient descent.

    $$
    \theta_t = c\,\theta_{t-1} + (1-c)\left(\theta_0 -
    \frac{\sum_{k \le t} \lambda_k d_k}
    {\left(\sum_{k \le t} \lambda_k d_k^2\right)^{1/3} + \epsilon}\right),
    \quad d_k = g_k + w \theta_{k-1}, \quad \lambda_k = (\eta_k + \epsilon)\sqrt{k}
    $$

    with momentum $c$ and weight decay $w$ (added to the gradients:
    `add_decayed_weights`, then `scale_by_madgrad`). The learning rate
    weights the sums, so it is applied inside `scale_by_madgrad`
    (`current_learning_rate` does not see it).

    Args:
        learning_rate: $\eta$: a number >= 0, a scalar array or a schedule.
        momentum: $c$, in $[0, 1]$.
        weight_decay: $w >= 0$ (number, array or schedule).
        eps: $\epsilon >= 0$.

    Returns:
        An ``optax.GradientTransformationExtraArgs``.

    Example:
        >>> import jax, jax.numpy as jnp, optax, jaxopt_lite as jol
        >>> opt = jol.madgrad(0.1)
        >>> params = jnp.array([1.0, -2.0])
        >>> state = opt.init(params)
        >>> for _ in range(3):
        ...     grads = jax.grad(lambda p: jnp.sum(p**2))(params)
        ...     updates, state = opt.update(grads, state, params)
        ...     params = optax.apply_updates(params, updates)
        >>> [round(float(x), 4) for x in params]
        [0.8652, -1.8296]

    References:
        Defazio and Jelassi, *Adaptivity without Compromise: A Momentumized,
        Adaptive, Dual Averaged Gradient Method for Stochastic Optimization*,
        2021.
    """
    validate.check_weight_decay("weight_decay", weight_decay)
    return chain(
        add_decayed_weights(weight_decay),
        scale_by_madgrad(learning_rate, momentum, eps),
    )
