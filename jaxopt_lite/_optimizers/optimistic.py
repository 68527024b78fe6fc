r"""Optimistic optimizers for min-max games: `optimistic_gradient_descent`,
`optimistic_adam` and `optimistic_adam_v2`.

Each is a `chain` ending in `scale_by_optimistic_gradient` and
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
from jaxopt_lite._transforms.adam import scale_by_adam
from jaxopt_lite._transforms.optimistic import scale_by_optimistic_gradient
from jaxopt_lite._transforms.scaling import ScalarOrSchedule, scale_by_learning_rate


@recipe
def optimistic_gradient_descent(
    learning_rate: ScalarOrSchedule,
    alpha: float | jax.Array = 1.0,
    beta: float | jax.Array = 1.0,
) -> optax.GradientTransformationExtraArgs:
    r"""Optimistic gradient descent: steps along the extrapolated gradient.

    $$
    \theta_{t+1} = \theta_t - \eta_t \left( (\alpha + \beta)\, g_t
        - \beta\, g_{t-1} \right), \qquad g_0 = g_1
    $$

    One gradient per step approximates the extra-gradient method, which
    converges in the last iterate on min-max problems where plain gradient
    descent-ascent cycles or diverges. The direction is
    `scale_by_optimistic_gradient`.

    Args:
        learning_rate: $\eta$: a number >= 0, a scalar array or a schedule.
        alpha: $\alpha$, the weight of the current gradient (a finite number
            or array).
        beta: $\beta$, the weight of the gradient's change (a finite number
            or array).

    Returns:
        An ``optax.GradientTransformationExtraArgs``.

    Example:
        >>> import jax.numpy as jnp, jaxopt_lite as jol
        >>> opt = jol.optimistic_gradient_descent(0.1)
        >>> state = opt.init(jnp.zeros(2))
        >>> u, state = opt.update(jnp.array([1.0, 2.0]), state)
        >>> opt.update(jnp.array([3.0, 1.0]), state)[0]
        Array([-0.5, -0. ], dtype=float32)

    References:
        Mokhtari, Ozdaglar and Pattathil, *A Unified Analysis of
        Extra-gradient and Optimistic Gradient Methods for Saddle Point
        Problems: Proximal Point Approach*, 2020.
    """
    return chain(
        scale_by_optimistic_gradient(alpha, beta),
        scale_by_learning_rate(learning_rate),
    )


@recipe
def optimistic_adam(
    learning_rate: float | jax.Array,
    optimism: float | jax.Array | None = None,
    b1: float | jax.Array = 0.9,
    b2: float | jax.Array = 0.999,
    eps: float | jax.Array = 1e-8,
    eps_root: float | jax.Array = 0.0,
    mu_dtype: Any = None,
    *,
    nu_dtype: Any = None,
    nesterov: bool = True,
) -> optax.GradientTransformationExtraArgs:
    r"""Optimistic Adam, with the learning rate as the optimism weight $\alpha$.

    $$
    r_t = \frac{\hat\mu_t}{\sqrt{\hat\nu_t + \epsilon_r} + \epsilon}, \qquad
    \theta_{t+1} = \theta_t - (\eta + o)\, r_t + o\, r_{t-1}, \qquad
    r_0 = r_1
    $$

    with $r_t$ the (by default Nesterov) Adam direction of `scale_by_adam`
    and $o$ the optimism. The same as ``optimistic_adam_v2(1.0,
    alpha=learning_rate, beta=optimism)``, whose interface (a learning rate
    that may be a schedule, and separate $\alpha$, $\beta$) optax recommends:
    optax deprecates this one, with a warning; ours keeps it without one.
    Its last step is `scale_by_learning_rate` with rate 1, which is what
    `current_learning_rate` reports.

    Args:
        learning_rate: $\eta$, a number >= 0 or a scalar array (no schedule:
            it weights the current direction, see `optimistic_adam_v2`).
        optimism: $o$, a finite number or array; ``None`` uses
            ``learning_rate``, as in the paper.
        b1: $\beta_1$, in $[0, 1)$.
        b2: $\beta_2$, in $[0, 1)$.
        eps: $\epsilon >= 0$, added outside the square root.
        eps_root: $\epsilon_r >= 0$, added inside the square root.
        mu_dtype: dtype of the first moment; ``None`` keeps the parameters'.
        nu_dtype: real floating dtype the second moment is stored in;
            ``None`` keeps the parameters' real dtype. An addition to optax's
            arguments (see `scale_by_adam`).
        nesterov: use Nesterov momentum in the Adam direction.

    Returns:
        An ``optax.GradientTransformationExtraArgs``.

    Example:
        >>> import jax.numpy as jnp, jaxopt_lite as jol
        >>> opt = jol.optimistic_adam(0.25, 0.5, 0.5, 0.5, eps=0.0, nesterov=False)
        >>> opt.update(jnp.array([2.0, -0.5]), opt.init(jnp.zeros(2)))[0]
        Array([-0.25,  0.25], dtype=float32)

    References:
        Daskalakis, Ilyas, Syrgkanis and Zeng, *Training GANs with
        Optimism*, 2018.
    """
    if callable(learning_rate):
        raise ValueError(
            "optimistic_adam takes no learning-rate schedule (its learning_rate "
            "weights the current direction); use optimistic_adam_v2, whose "
            f"learning_rate may be a schedule. Got {learning_rate!r}."
        )
    validate.check_nonnegative("learning_rate", learning_rate)
    if optimism is None:
        optimism = learning_rate
    validate.check_range("optimism", optimism)
    return chain(
        scale_by_adam(
            b1, b2, eps, eps_root, mu_dtype, nu_dtype=nu_dtype, nesterov=nesterov
        ),
        scale_by_optimistic_gradient(alpha=learning_rate, beta=optimism),
        scale_by_learning_rate(1.0),
    )


@recipe
def optimistic_adam_v2(
    learning_rate: ScalarOrSchedule,
    *,
    alpha: float | jax.Array = 1.0,
    beta: float | jax.Array = 1.0,
    b1: float | jax.Array = 0.9,
    b2: float | jax.Array = 0.999,
    eps: float | jax.Array = 1e-8,
    eps_root: float | jax.Array = 0.0,
    mu_dtype: Any = None,
    nu_dtype: Any = None,
    nesterov: bool = True,
) -> optax.GradientTransformationExtraArgs:
    r"""Optimistic Adam: optimistic steps along Adam's direction.

    $$
    r_t = \frac{\hat\mu_t}{\sqrt{\hat\nu_t + \epsilon_r} + \epsilon}, \qquad
    \theta_{t+1} = \theta_t - \eta_t \left( (\alpha + \beta)\, r_t
        - \beta\, r_{t-1} \right), \qquad r_0 = r_1
    $$

    with $r_t$ the (by default Nesterov) Adam direction of `scale_by_adam`,
    made optimistic by `scale_by_optimistic_gradient`; it damps the limit
    cycles of Adam on GAN-like saddle-point problems.

    Args:
        learning_rate: $\eta$: a number >= 0, a scalar array or a schedule.
        alpha: $\alpha$, the weight of the current direction.
        beta: $\beta$, the weight of the direction's change.
        b1: $\beta_1$, in $[0, 1)$.
        b2: $\beta_2$, in $[0, 1)$.
        eps: $\epsilon >= 0$, added outside the square root.
        eps_root: $\epsilon_r >= 0$, added inside the square root.
        mu_dtype: dtype of the first moment; ``None`` keeps the parameters'.
        nu_dtype: real floating dtype the second moment is stored in;
            ``None`` keeps the parameters' real dtype. An addition to optax's
            arguments (see `scale_by_adam`).
        nesterov: use Nesterov momentum in the Adam direction.

    Returns:
        An ``optax.GradientTransformationExtraArgs``.

    Example:
        >>> import jax.numpy as jnp, jaxopt_lite as jol
        >>> opt = jol.optimistic_adam_v2(
        ...     0.1, beta=0.5, b1=0.5, b2=0.5, eps=0.0, nesterov=False
        ... )
        >>> opt.update(jnp.array([2.0, -0.5]), opt.init(jnp.zeros(2)))[0]
        Array([-0.1,  0.1], dtype=float32)

    References:
        Daskalakis, Ilyas, Syrgkanis and Zeng, *Training GANs with
        Optimism*, 2018.
    """
    return chain(
        scale_by_adam(
            b1, b2, eps, eps_root, mu_dtype, nu_dtype=nu_dtype, nesterov=nesterov
        ),
        scale_by_optimistic_gradient(alpha=alpha, beta=beta),
        scale_by_learning_rate(learning_rate),
    )
