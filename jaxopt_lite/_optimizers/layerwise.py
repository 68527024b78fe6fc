r"""Layer-wise (trust-ratio) optimizers: `lamb`, `lars`, `novograd` and
`fromage`.

Each is a `chain` of primitives ending in `scale_by_learning_rate`, so
`current_learning_rate` reads the rate from its state, and the learning rate
may be a number, an array (possibly traced) or a schedule ``step -> rate``.
"""

from __future__ import annotations

from typing import Any

import jax
import optax

from jaxopt_lite._combinators.chain import chain
from jaxopt_lite._combinators.masking import masked
from jaxopt_lite._core import validate
from jaxopt_lite._core.recipe import recipe
from jaxopt_lite._transforms.adam import scale_by_adam
from jaxopt_lite._transforms.layerwise import scale_by_novograd, scale_by_trust_ratio
from jaxopt_lite._transforms.scaling import ScalarOrSchedule, scale_by_learning_rate
from jaxopt_lite._transforms.sgd import trace
from jaxopt_lite._transforms.weight_decay import add_decayed_weights


@recipe
def lamb(
    learning_rate: ScalarOrSchedule,
    b1: float | jax.Array = 0.9,
    b2: float | jax.Array = 0.999,
    eps: float | jax.Array = 1e-6,
    eps_root: float | jax.Array = 0.0,
    weight_decay: ScalarOrSchedule = 0.0,
    mask: Any = None,
) -> optax.GradientTransformationExtraArgs:
    r"""LAMB: Adam directions with weight decay, rescaled layer by layer.

    $$
    \begin{aligned}
    r_t &= \frac{\hat m_t}{\sqrt{\hat v_t + \epsilon_r} + \epsilon}
        + \lambda \theta_t \quad \text{(Adam, then weight decay)} \\
    \theta_{t+1} &= \theta_t - \eta_t
        \frac{\lVert \theta_t \rVert}{\lVert r_t \rVert} \, r_t
        \quad \text{(per leaf; ratio 1 if a norm is 0)}
    \end{aligned}
    $$

    The pieces are `scale_by_adam`, `add_decayed_weights` and
    `scale_by_trust_ratio`.

    Args:
        learning_rate: $\eta$: a number >= 0, a scalar array or a schedule.
        b1: the first-moment decay, in [0, 1).
        b2: the second-moment decay, in [0, 1).
        eps: $\epsilon$ added outside the square root, >= 0.
        eps_root: $\epsilon_r$ added inside the square root, >= 0.
        weight_decay: $\lambda$, a number >= 0, an array or a schedule.
        mask: which leaves get weight decay: ``None`` (all), a tree of bools
            (or a prefix of the parameters' structure), or a callable.

    Returns:
        An ``optax.GradientTransformationExtraArgs``.

    Example:
        >>> import jax.numpy as jnp, jaxopt_lite as jol
        >>> opt = jol.lamb(0.1)
        >>> params = jnp.array([3.0, 4.0])
        >>> u, _ = opt.update(jnp.array([1.0, 1.0]), opt.init(params), params)
        >>> float(jnp.linalg.norm(u))  # the step is 0.1 * ||params||
        0.5

    References:
        You et al., *Large batch optimization for deep learning: training BERT
        in 76 minutes*, 2020.
    """
    validate.check_weight_decay("weight_decay", weight_decay)
    return chain(
        scale_by_adam(b1=b1, b2=b2, eps=eps, eps_root=eps_root),
        add_decayed_weights(weight_decay=weight_decay, mask=mask),
        scale_by_trust_ratio(),
        scale_by_learning_rate(learning_rate),
    )


@recipe
def lars(
    learning_rate: ScalarOrSchedule,
    weight_decay: ScalarOrSchedule = 0.0,
    weight_decay_mask: Any = True,
    trust_coefficient: float | jax.Array = 0.001,
    eps: float | jax.Array = 0.0,
    trust_ratio_mask: Any = True,
    momentum: float | jax.Array = 0.9,
    nesterov: bool = False,
) -> optax.GradientTransformationExtraArgs:
    r"""LARS: SGD with momentum on layer-wise rescaled gradients.

    $$
    \begin{aligned}
    r_t &= g_t + \lambda \theta_t, \qquad
    s_t = \kappa \frac{\lVert \theta_t \rVert}{\lVert r_t \rVert + \epsilon}
        \, r_t \quad \text{(per leaf; ratio 1 if a norm is 0)} \\
    m_t &= -\eta_t s_t + \mu m_{t-1}, \qquad \theta_{t+1} = \theta_t + m_t
    \end{aligned}
    $$

    The pieces are `add_decayed_weights`, `scale_by_trust_ratio` (under
    `masked`), `scale_by_learning_rate` and `trace` (the momentum comes
    after the learning rate, as in optax).

    Args:
        learning_rate: $\eta$: a number >= 0, a scalar array or a schedule.
        weight_decay: $\lambda$, a number >= 0, an array or a schedule.
        weight_decay_mask: which leaves get weight decay (``True``: all; a tree
            of bools or a callable ``params -> tree``).
        trust_coefficient: $\kappa$, a finite number >= 0.
        eps: $\epsilon$ added to the update norm, >= 0.
        trust_ratio_mask: which leaves are rescaled (same forms as
            ``weight_decay_mask``).
        momentum: $\mu$, in [0, 1].
        nesterov: use Nesterov momentum.

    Returns:
        An ``optax.GradientTransformationExtraArgs``.

    Example:
        >>> import jax.numpy as jnp, jaxopt_lite as jol
        >>> opt = jol.lars(1.0, trust_coefficient=0.1)
        >>> params = jnp.array([3.0, 4.0])
        >>> opt.update(jnp.array([0.0, 2.0]), opt.init(params), params)[0]
        Array([ 0. , -0.5], dtype=float32)

    References:
        You, Gitman and Ginsburg, *Large batch training of convolutional
        networks*, 2017.
    """
    validate.check_momentum("momentum", momentum)  # trace's decay, by the user's name
    validate.check_weight_decay("weight_decay", weight_decay)
    return chain(
        add_decayed_weights(weight_decay, mask=weight_decay_mask),
        masked(
            scale_by_trust_ratio(trust_coefficient=trust_coefficient, eps=eps),
            mask=trust_ratio_mask,
        ),
        scale_by_learning_rate(learning_rate),
        trace(decay=momentum, nesterov=nesterov),
    )


@recipe
def novograd(
    learning_rate: ScalarOrSchedule,
    b1: float | jax.Array = 0.9,
    b2: float | jax.Array = 0.25,
    eps: float | jax.Array = 1e-6,
    eps_root: float | jax.Array = 0.0,
    weight_decay: float | jax.Array = 0.0,
) -> optax.GradientTransformationExtraArgs:
    r"""NovoGrad: momentum on gradients normalized by a per-layer second moment.

    $$
    \begin{aligned}
    v_t &= \beta_2 v_{t-1} + (1 - \beta_2) \lVert g_t \rVert^2
        \quad (v_1 = \lVert g_1 \rVert^2) \\
    m_t &= \beta_1 m_{t-1} + \frac{g_t}{\sqrt{v_t + \epsilon_r} + \epsilon}
        + \lambda \theta_t, \qquad \theta_{t+1} = \theta_t - \eta_t m_t
    \end{aligned}
    $$

    $v$ is one scalar per leaf (layer), so NovoGrad needs about half of
    Adam's memory. The direction is `scale_by_novograd`.

    Args:
        learning_rate: $\eta$: a number >= 0, a scalar array or a schedule.
        b1: the momentum decay $\beta_1$, in [0, 1).
        b2: the second-moment decay $\beta_2$, in [0, 1).
        eps: $\epsilon$ added outside the square root, >= 0.
        eps_root: $\epsilon_r$ added inside the square root, >= 0.
        weight_decay: $\lambda$, a number >= 0 (not a schedule).

    Returns:
        An ``optax.GradientTransformationExtraArgs``.

    Example:
        >>> import jax.numpy as jnp, jaxopt_lite as jol
        >>> opt = jol.novograd(0.5, eps=0.0)
        >>> params = jnp.zeros(2)
        >>> opt.update(jnp.array([3.0, 4.0]), opt.init(params), params)[0]
        Array([-0.3, -0.4], dtype=float32)

    References:
        Ginsburg et al., *Stochastic gradient methods with layer-wise adaptive
        moments for training of deep networks*, 2019.

        Li et al., *Jasper: an end-to-end convolutional neural acoustic model*,
        2019.
    """
    return chain(
        scale_by_novograd(
            b1=b1, b2=b2, eps=eps, eps_root=eps_root, weight_decay=weight_decay
        ),
        scale_by_learning_rate(learning_rate),
    )


@recipe
def fromage(
    learning_rate: ScalarOrSchedule, min_norm: float | jax.Array = 1e-6
) -> optax.GradientTransformationExtraArgs:
    r"""Fromage: layer-wise steps of relative size $\eta$, with a shrink.

    $$
    \theta_{t+1} = \frac{1}{\sqrt{1 + \eta_t^2}} \left( \theta_t - \eta_t
        \frac{\lVert \theta_t \rVert}{\lVert g_t \rVert} g_t \right)
    $$

    per layer (norms floored at ``min_norm``): each step moves a layer by
    a fixed fraction $\eta$ of its norm, and the factor
    $1/\sqrt{1+\eta^2}$ undoes the growth of the norm such steps cause.
    A `chain` of `scale_by_trust_ratio`, `scale_by_learning_rate` with rate
    $\eta_t/\sqrt{1+\eta_t^2}$ (what `current_learning_rate` reports) and
    `add_decayed_weights` with the negative rate $1/\sqrt{1+\eta_t^2} - 1$.

    Args:
        learning_rate: $\eta$: a number >= 0, a scalar array or a schedule.
        min_norm: the floor of both norms, a finite number >= 0.

    Returns:
        An ``optax.GradientTransformationExtraArgs`` (``update`` needs
        ``params``).

    Example:
        >>> import jax, jax.numpy as jnp, optax, jaxopt_lite as jol
        >>> opt = jol.fromage(0.1)
        >>> params = jnp.array([1.0, -2.0])
        >>> state = opt.init(params)
        >>> for _ in range(3):
        ...     grads = jax.grad(lambda p: jnp.sum(p**2))(params)
        ...     updates, state = opt.update(grads, state, params)
        ...     params = optax.apply_updates(params, updates)
        >>> [round(float(x), 4) for x in params]
        [0.7182, -1.4364]

    References:
        Bernstein, Vahdat, Yue and Liu, *On the distance between two neural
        networks and the stability of learning*, 2020.
    """
    validate.check_learning_rate("learning_rate", learning_rate)
    if callable(learning_rate):
        shrink = lambda count: 1 / (1 + learning_rate(count) ** 2) ** 0.5
        rate = lambda count: shrink(count) * learning_rate(count)
        decay = lambda count: shrink(count) - 1
    else:
        shrink = 1 / (1 + learning_rate**2) ** 0.5
        rate, decay = learning_rate * shrink, shrink - 1
    return chain(
        scale_by_trust_ratio(min_norm),
        scale_by_learning_rate(rate),
        add_decayed_weights(decay),
    )
