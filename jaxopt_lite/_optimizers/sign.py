"""Sign-based optimizers: `sign_sgd`, `signum`, `lion` and `rprop`."""

from __future__ import annotations

from typing import Any

import jax
import optax

from jaxopt_lite._combinators.averaging import ema
from jaxopt_lite._combinators.chain import chain
from jaxopt_lite._core import validate
from jaxopt_lite._core.recipe import recipe
from jaxopt_lite._transforms.rprop import scale_by_rprop
from jaxopt_lite._transforms.scaling import (
    ScalarOrSchedule,
    scale,
    scale_by_learning_rate,
)
from jaxopt_lite._transforms.sign import scale_by_lion, scale_by_sign
from jaxopt_lite._transforms.weight_decay import add_decayed_weights


@recipe
def sign_sgd(learning_rate: ScalarOrSchedule) -> optax.GradientTransformationExtraArgs:
    r"""SGD on the signs of the gradient's elements.

    $$
    \theta_{t+1} = \theta_t - \eta_t \operatorname{sign}(g_t)
    $$

    Args:
        learning_rate: $\eta$: a number >= 0, a scalar array (possibly
            traced) or a schedule ``step -> rate``.

    Returns:
        An ``optax.GradientTransformationExtraArgs``.

    Example:
        >>> import jax.numpy as jnp, jaxopt_lite as jol
        >>> opt = jol.sign_sgd(0.1)
        >>> opt.update(jnp.array([3.0, -0.01]), opt.init(jnp.zeros(2)))[0]
        Array([-0.1,  0.1], dtype=float32)

    References:
        Bernstein, Wang, Azizzadenesheli and Anandkumar, *signSGD: compressed
        optimisation for non-convex problems*, 2018.

        Balles, Pedregosa and Le Roux, *The geometry of sign gradient descent*,
        2020.
    """
    return chain(scale_by_sign(), scale_by_learning_rate(learning_rate))


@recipe
def signum(
    learning_rate: ScalarOrSchedule,
    beta: float | jax.Array = 0.9,
    accumulator_dtype: Any = None,
) -> optax.GradientTransformationExtraArgs:
    r"""Signum: SGD on the signs of a moving average of the gradients.

    $$
    m_t = \beta m_{t-1} + (1 - \beta) g_t, \qquad
    \theta_{t+1} = \theta_t - \eta_t \operatorname{sign}(m_t)
    $$

    with $m_0 = 0$ (no bias correction: it would not change the sign): the
    chain of `ema` (``debias=False``), `scale_by_sign` and the learning rate,
    as in optax.

    Args:
        learning_rate: $\eta$: a number >= 0, a scalar array or a schedule.
        beta: $\beta$, the decay of the moving average, in $[0, 1)$.
        accumulator_dtype: dtype of $m$ (``None``: the parameters' dtype).

    Returns:
        An ``optax.GradientTransformationExtraArgs``.

    Example:
        >>> import jax.numpy as jnp, jaxopt_lite as jol
        >>> opt = jol.signum(0.1)
        >>> state = opt.init(jnp.zeros(2))
        >>> u, state = opt.update(jnp.array([3.0, -0.01]), state)
        >>> opt.update(jnp.array([-1.0, 1.0]), state)[0]
        Array([-0.1, -0.1], dtype=float32)

    References:
        Bernstein, Wang, Azizzadenesheli and Anandkumar, *signSGD: compressed
        optimisation for non-convex problems*, 2018.

        Zhao, Morwani, Brandfonbrener, Vyas and Kakade, *Deconstructing What
        Makes a Good Optimizer for Language Models*, 2024.
    """
    validate.check_decay("beta", beta)
    validate.check_dtype("accumulator_dtype", accumulator_dtype)
    return chain(
        ema(beta, debias=False, accumulator_dtype=accumulator_dtype),
        scale_by_sign(),
        scale_by_learning_rate(learning_rate),
    )


@recipe
def lion(
    learning_rate: ScalarOrSchedule,
    b1: float | jax.Array = 0.9,
    b2: float | jax.Array = 0.99,
    mu_dtype: Any = None,
    weight_decay: ScalarOrSchedule = 1e-3,
    mask: Any = None,
) -> optax.GradientTransformationExtraArgs:
    r"""Lion: signed momentum steps with decoupled weight decay.

    $$
    \begin{aligned}
    c_t &= \beta_1 m_{t-1} + (1 - \beta_1) g_t \\
    \theta_{t+1} &= \theta_t - \eta_t \left( \operatorname{sign}(c_t)
        + \lambda \theta_t \right) \\
    m_t &= \beta_2 m_{t-1} + (1 - \beta_2) g_t
    \end{aligned}
    $$

    Only one moment is kept, and every element moves by $\pm\eta$ (plus
    decay), so good learning rates are typically 3-10 times smaller than
    AdamW's and the weight decay 3-10 times larger. The weight decay is
    multiplied by the learning rate. The direction is `scale_by_lion`.

    Args:
        learning_rate: $\eta$: a number >= 0, a scalar array or a schedule.
        b1: the blend $\beta_1$ of momentum and gradient, in [0, 1).
        b2: the momentum decay $\beta_2$, in [0, 1).
        mu_dtype: dtype of the momentum (``None``: the parameters' dtype).
        weight_decay: $\lambda$, a number >= 0, an array or a schedule.
        mask: which leaves get weight decay: ``None`` (all), a tree of bools
            with the structure of the parameters (or a prefix of it), or a
            callable ``params -> such a tree``.

    Returns:
        An ``optax.GradientTransformationExtraArgs``.

    Example:
        >>> import jax.numpy as jnp, jaxopt_lite as jol
        >>> opt = jol.lion(0.1, weight_decay=0.0)
        >>> params = jnp.array([1.0, 2.0])
        >>> opt.update(jnp.array([0.5, -3.0]), opt.init(params), params)[0]
        Array([-0.1,  0.1], dtype=float32)

    References:
        Chen et al., *Symbolic discovery of optimization algorithms*, 2023.
    """
    validate.check_weight_decay("weight_decay", weight_decay)
    return chain(
        scale_by_lion(b1=b1, b2=b2, mu_dtype=mu_dtype),
        add_decayed_weights(weight_decay, mask),
        scale_by_learning_rate(learning_rate),
    )


@recipe
def rprop(
    learning_rate: float | jax.Array,
    eta_minus: float | jax.Array = 0.5,
    eta_plus: float | jax.Array = 1.2,
    min_step_size: float | jax.Array = 1e-6,
    max_step_size: float | jax.Array = 50.0,
) -> optax.GradientTransformationExtraArgs:
    r"""Rprop: per-element step sizes adapted to the signs of the gradients.

    $$
    \delta_t = \operatorname{clip}\left(\eta^{\pm} \delta_{t-1},
        \delta_{\min}, \delta_{\max}\right), \qquad
    \theta_{t+1} = \theta_t - \delta_t \operatorname{sign}(g_t)
    $$

    element-wise, with $\eta^+$ while $g_t$ keeps the sign of the last step
    and $\eta^-$ when it flips (the element then pauses for one step); see
    `scale_by_rprop`. Only signs are used, so it suits full-batch problems
    with badly scaled gradients. ``learning_rate`` is the initial step
    size; the optimizer keeps no learning-rate state (`current_learning_rate`
    returns ``None``).

    Args:
        learning_rate: the initial step size $\delta_0 >= 0$ (a number or an
            array, not a schedule).
        eta_minus: the shrink factor $\eta^-$, in $(0, 1]$.
        eta_plus: the growth factor $\eta^+ >= 1$.
        min_step_size: $\delta_{\min} >= 0$.
        max_step_size: $\delta_{\max} \ge \delta_{\min}$.

    Returns:
        An ``optax.GradientTransformationExtraArgs``.

    Example:
        >>> import jax, jax.numpy as jnp, optax, jaxopt_lite as jol
        >>> opt = jol.rprop(0.1)
        >>> params = jnp.array([1.0, -2.0])
        >>> state = opt.init(params)
        >>> for _ in range(3):
        ...     grads = jax.grad(lambda p: jnp.sum(p**2))(params)
        ...     updates, state = opt.update(grads, state, params)
        ...     params = optax.apply_updates(params, updates)
        >>> [round(float(x), 4) for x in params]
        [0.636, -1.636]

    References:
        Riedmiller and Braun, *A direct adaptive method for faster
        backpropagation learning: the RPROP algorithm*, 1993.

        Igel and Hüsken, *Empirical evaluation of the improved Rprop learning
        algorithms*, 2003.
    """
    return chain(
        scale_by_rprop(
            learning_rate, eta_minus, eta_plus, min_step_size, max_step_size
        ),
        scale(-1.0),
    )
