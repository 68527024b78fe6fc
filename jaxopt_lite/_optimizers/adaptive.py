"""Per-coordinate adaptive optimizers: `adagrad`, `rmsprop`, `adadelta` and
SM3's memory-light AdaGrad, `sm3`."""

from __future__ import annotations

from typing import Any

import jax
import optax

from jaxopt_lite._combinators.chain import chain
from jaxopt_lite._combinators.stateless import identity
from jaxopt_lite._core import validate
from jaxopt_lite._core.recipe import recipe
from jaxopt_lite._core.validate import check_bool
from jaxopt_lite._transforms.rms import (
    scale_by_adadelta,
    scale_by_rms,
    scale_by_rss,
    scale_by_stddev,
)
from jaxopt_lite._transforms.scaling import ScalarOrSchedule, scale_by_learning_rate
from jaxopt_lite._transforms.sgd import trace
from jaxopt_lite._transforms.sm3 import scale_by_sm3
from jaxopt_lite._transforms.weight_decay import add_decayed_weights


@recipe
def adagrad(
    learning_rate: ScalarOrSchedule,
    initial_accumulator_value: float | jax.Array = 0.1,
    eps: float | jax.Array = 1e-7,
) -> optax.GradientTransformationExtraArgs:
    r"""Adagrad: per-coordinate steps shrinking with the sum of squared gradients.

    $$
    s_t = s_{t-1} + |g_t|^2, \qquad
    \theta_{t+1} = \theta_t - \eta_t \frac{g_t}{\sqrt{s_t + \epsilon}}
    $$

    The rescaling is `scale_by_rss`.

    Args:
        learning_rate: $\eta$: a number >= 0, a scalar array or a schedule.
        initial_accumulator_value: $s_0 >= 0$.
        eps: $\epsilon >= 0$.

    Returns:
        An ``optax.GradientTransformationExtraArgs``.

    Example:
        >>> import jax, jax.numpy as jnp, optax, jaxopt_lite as jol
        >>> opt = jol.adagrad(1.0, initial_accumulator_value=0.0, eps=0.0)
        >>> params = jnp.array([1.0, -2.0])
        >>> state = opt.init(params)
        >>> grads = jax.grad(lambda p: jnp.sum(p**2))(params)
        >>> updates, state = opt.update(grads, state, params)
        >>> optax.apply_updates(params, updates)
        Array([ 0., -1.], dtype=float32)

    References:
        Duchi et al., *Adaptive Subgradient Methods for Online Learning and
        Stochastic Optimization*, 2011.
    """
    return chain(
        scale_by_rss(initial_accumulator_value=initial_accumulator_value, eps=eps),
        scale_by_learning_rate(learning_rate),
    )


@recipe
def rmsprop(
    learning_rate: ScalarOrSchedule,
    decay: float | jax.Array = 0.9,
    eps: float | jax.Array = 1e-8,
    initial_scale: float | jax.Array = 0.0,
    eps_in_sqrt: bool = True,
    centered: bool = False,
    momentum: float | jax.Array | None = None,
    nesterov: bool = False,
    bias_correction: bool = False,
) -> optax.GradientTransformationExtraArgs:
    r"""RMSProp: divide by a moving RMS of the gradients, with optional momentum.

    The centered variant divides by a moving standard deviation instead.

    $$
    \nu_t = \rho \nu_{t-1} + (1-\rho)|g_t|^2, \quad
    d_t = \frac{\eta_t \, g_t}{\sqrt{\nu_t - c_t + \epsilon}}, \quad
    m_t = d_t + \beta m_{t-1}, \quad
    \theta_{t+1} = \theta_t - m_t
    $$

    where $c_t = |\mu_t|^2$ with $\mu_t = \rho \mu_{t-1} + (1-\rho) g_t$ when
    ``centered`` (`scale_by_stddev`), else $c_t = 0$ (`scale_by_rms`).
    Without momentum $m_t = d_t$; with ``nesterov`` the step is
    $d_t + \beta m_t$. Momentum acts after the learning rate, as in optax.

    Args:
        learning_rate: $\eta$: a number >= 0, a scalar array or a schedule.
        decay: $\rho$, in $[0, 1)$.
        eps: $\epsilon >= 0$.
        initial_scale: $\nu_0 >= 0$.
        eps_in_sqrt: add $\epsilon$ inside the square root (default) or
            outside.
        centered: divide by the standard deviation instead of the RMS.
        momentum: $\beta$ in $[0, 1]$, or ``None`` for no momentum.
        nesterov: use Nesterov momentum.
        bias_correction: divide the moving averages by $1 - \rho^t$.

    Returns:
        An ``optax.GradientTransformationExtraArgs``.

    Example:
        >>> import jax, jax.numpy as jnp, optax, jaxopt_lite as jol
        >>> opt = jol.rmsprop(0.1, decay=0.0, eps=0.0)
        >>> params = jnp.array([1.0, -2.0])
        >>> state = opt.init(params)
        >>> grads = jax.grad(lambda p: jnp.sum(p**2))(params)
        >>> updates, state = opt.update(grads, state, params)
        >>> optax.apply_updates(params, updates)
        Array([ 0.9, -1.9], dtype=float32)

    References:
        Tieleman and Hinton, *Lecture 6.5 -- RMSProp*, COURSERA: Neural
        Networks for Machine Learning, 2012.
        Graves, *Generating Sequences With Recurrent Neural Networks*, 2013.
    """
    check_bool("centered", centered)
    if momentum is None:  # no trace to check it
        check_bool("nesterov", nesterov)
    else:
        validate.check_momentum(
            "momentum", momentum
        )  # trace's decay, by the user's name
    rescale = scale_by_stddev if centered else scale_by_rms
    return chain(
        rescale(
            decay=decay,
            eps=eps,
            initial_scale=initial_scale,
            eps_in_sqrt=eps_in_sqrt,
            bias_correction=bias_correction,
        ),
        scale_by_learning_rate(learning_rate),
        identity() if momentum is None else trace(momentum, nesterov=nesterov),
    )


@recipe
def adadelta(
    learning_rate: ScalarOrSchedule | None = None,
    rho: float | jax.Array = 0.9,
    eps: float | jax.Array = 1e-6,
    weight_decay: ScalarOrSchedule = 0.0,
    weight_decay_mask: Any = None,
) -> optax.GradientTransformationExtraArgs:
    r"""Adadelta: steps sized by the RMS of past steps over the RMS of gradients.

    $$
    E[g^2]_t = \rho E[g^2]_{t-1} + (1-\rho)|\tilde g_t|^2, \quad
    d_t = \frac{\sqrt{E[\Delta^2]_{t-1} + \epsilon}}{\sqrt{E[g^2]_t + \epsilon}}
    \tilde g_t, \quad
    \theta_{t+1} = \theta_t - \eta_t d_t
    $$

    with $\tilde g_t = g_t + \lambda \theta_t$ (weight decay, applied first)
    and $E[\Delta^2]_t = \rho E[\Delta^2]_{t-1} + (1-\rho)|d_t|^2$
    (`scale_by_adadelta`).

    ``learning_rate=None`` means $\eta = 1$, the method as published. (optax
    skips the learning-rate transform in that case, which also drops the
    minus sign, so its ``adadelta()`` steps uphill; here the default
    descends.)

    Args:
        learning_rate: $\eta$: ``None`` (1.0), a number >= 0, a scalar array
            or a schedule.
        rho: $\rho$, in $[0, 1)$.
        eps: $\epsilon >= 0$.
        weight_decay: $\lambda >= 0$ (number, array or schedule).
        weight_decay_mask: which leaves get weight decay (see
            `add_decayed_weights`).

    Returns:
        An ``optax.GradientTransformationExtraArgs``.

    Example:
        >>> import jax, jax.numpy as jnp, optax, jaxopt_lite as jol
        >>> opt = jol.adadelta(rho=0.0, eps=1.0)
        >>> params = jnp.array([1.0, -2.0])
        >>> state = opt.init(params)
        >>> grads = jax.grad(lambda p: jnp.sum(p**2))(params)
        >>> updates, state = opt.update(grads, state, params)
        >>> updates
        Array([-0.8944272 ,  0.97014254], dtype=float32)

    References:
        Zeiler, *ADADELTA: An Adaptive Learning Rate Method*, 2012.
    """
    if learning_rate is None:
        learning_rate = 1.0
    validate.check_weight_decay("weight_decay", weight_decay)
    return chain(
        add_decayed_weights(weight_decay, mask=weight_decay_mask),
        scale_by_adadelta(rho=rho, eps=eps),
        scale_by_learning_rate(learning_rate),
    )


@recipe
def sm3(
    learning_rate: ScalarOrSchedule, momentum: float | jax.Array = 0.9
) -> optax.GradientTransformationExtraArgs:
    r"""SM3: AdaGrad with one accumulator per axis of each parameter array.

    $$
    \nu_t(i) = |g_t(i)|^2 + \min_{r} \mu^{(r)}_{t-1}(i_r), \quad
    \mu^{(r)}_t(j) = \max_{i : i_r = j} \nu_t(i), \quad
    m_t = \beta m_{t-1} + (1 - \beta) \frac{g_t}{\sqrt{\nu_t}}, \quad
    \theta_{t+1} = \theta_t - \eta_t m_t
    $$

    An $n \times k$ matrix keeps $n + k$ accumulators instead of AdaGrad's
    $n k$, while each element still gets its own step. The rescaling is
    `scale_by_sm3` (with its $\epsilon = 10^{-8}$ inside the root).

    Args:
        learning_rate: $\eta$: a number >= 0, a scalar array or a schedule.
        momentum: $\beta$, in $[0, 1)$.

    Returns:
        An ``optax.GradientTransformationExtraArgs``.

    Example:
        >>> import jax, jax.numpy as jnp, optax, jaxopt_lite as jol
        >>> opt = jol.sm3(0.1)
        >>> params = jnp.array([[1.0, -2.0], [0.5, 3.0]])
        >>> state = opt.init(params)
        >>> for _ in range(3):
        ...     grads = jax.grad(lambda p: jnp.sum(p**2))(params)
        ...     updates, state = opt.update(grads, state, params)
        ...     params = optax.apply_updates(params, updates)
        >>> [round(float(x), 4) for x in params.ravel()]
        [0.9538, -1.9538, 0.4613, 2.9537]

    References:
        Anil, Gupta, Koren and Singer, *Memory-Efficient Adaptive
        Optimization*, 2019.
    """
    validate.check_decay("momentum", momentum)
    return chain(scale_by_sm3(momentum), scale_by_learning_rate(learning_rate))
