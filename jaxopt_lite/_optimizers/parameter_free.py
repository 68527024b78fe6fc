r"""Parameter-free optimizers from optax.contrib: COCOB, DoG and DoWG.

They set their own step size; the learning rate (1 by default) is an extra
factor, a number, an array or a schedule, applied by `scale_by_learning_rate`
(so `current_learning_rate` reads it). D-Adaptation, Prodigy and MoMo are
whole transforms (`dadapt_adamw`, `prodigy`, `momo`, `momo_adam`).
"""

from __future__ import annotations

from typing import Any

import jax
import optax

from jaxopt_lite._combinators.chain import chain
from jaxopt_lite._combinators.stateless import identity
from jaxopt_lite._core import validate
from jaxopt_lite._core.recipe import recipe
from jaxopt_lite._transforms.cocob import scale_by_cocob
from jaxopt_lite._transforms.distance_over_gradients import scale_by_dog, scale_by_dowg
from jaxopt_lite._transforms.scaling import ScalarOrSchedule, scale_by_learning_rate
from jaxopt_lite._transforms.weight_decay import add_decayed_weights


@recipe
def cocob(
    learning_rate: ScalarOrSchedule = 1.0,
    alpha: float | jax.Array = 100.0,
    eps: float | jax.Array = 1e-8,
    weight_decay: ScalarOrSchedule = 0.0,
    mask: Any = None,
) -> optax.GradientTransformationExtraArgs:
    r"""COCOB-Backprop: learning-rate-free descent by coin betting.

    With $\tilde g_t = \eta_t (g_t + \lambda \theta_{t-1})$, per coordinate:

    $$
    \theta_t = \theta_0 + \frac{C_t}{L_t \max(G_t + L_t, \alpha L_t)}
    (L_t + R_t)
    $$

    where $C_t = -\sum \tilde g$, $G_t = \sum |\tilde g|$, $L_t$ is the
    largest $|\tilde g|$ (at least $\epsilon$) and $R_t$ the reward won
    (`scale_by_cocob`). The learning rate scales the gradients before the
    bet (1 is the algorithm; a schedule can anneal it).

    Args:
        learning_rate: $\eta$: a number >= 0, a scalar array or a schedule.
        alpha: $\alpha > 0$.
        eps: $\epsilon >= 0$, the initial $L$.
        weight_decay: $\lambda >= 0$ (number, array or schedule).
        mask: which leaves get weight decay (see `add_decayed_weights`).

    Returns:
        An ``optax.GradientTransformationExtraArgs``; ``update`` needs
        ``params``.

    Example:
        >>> import jax, jax.numpy as jnp, optax, jaxopt_lite as jol
        >>> opt = jol.cocob()
        >>> params = jnp.array([1.0, -2.0])
        >>> state = opt.init(params)
        >>> for _ in range(3):
        ...     grads = jax.grad(lambda p: jnp.sum(p**2))(params)
        ...     updates, state = opt.update(grads, state, params)
        ...     params = optax.apply_updates(params, updates)
        >>> [round(float(x), 4) for x in params]
        [0.9694, -1.9693]

    References:
        Orabona and Tommasi, *Training Deep Networks without Learning Rates
        Through Coin Betting*, 2017.
    """
    validate.check_weight_decay("weight_decay", weight_decay)
    return chain(
        add_decayed_weights(weight_decay, mask),
        scale_by_learning_rate(learning_rate, flip_sign=False),
        scale_by_cocob(alpha, eps),
    )


def _decay_then(weight_decay: Any, mask: Any, *rest: optax.GradientTransformation):
    """``chain(add_decayed_weights(weight_decay, mask), *rest)``, with
    `identity` in place of the decay when ``weight_decay`` is ``None`` (optax's
    layout)."""
    if weight_decay is None:
        return chain(identity(), *rest)
    validate.check_weight_decay("weight_decay", weight_decay)
    return chain(add_decayed_weights(weight_decay, mask), *rest)


@recipe
def dog(
    learning_rate: ScalarOrSchedule = 1.0,
    init_step: tuple[str, float | jax.Array] = ("heuristic", 1e-6),
    eps: float | jax.Array = 1e-8,
    weight_decay: ScalarOrSchedule | None = None,
    mask: Any = None,
) -> optax.GradientTransformationExtraArgs:
    r"""DoG: SGD with the step "distance over gradients".

    $$
    \bar r_t = \max_{k < t} \lVert \theta_k - \theta_0 \rVert, \quad
    \theta_t = \theta_{t-1} - \eta_t \frac{\bar r_t}
    {\sqrt{\sum_{k \le t} \lVert g_k \rVert^2 + \epsilon}} \, g_t
    $$

    with norms over the whole tree and $\bar r$ at least the initial
    distance set by ``init_step`` (`scale_by_dog`); the default
    ``("heuristic", 1e-6)`` takes $10^{-6}(1 + \lVert \theta_0 \rVert)$,
    so ``init`` needs the real parameters (use $10^{-4}$ with batch
    normalization). The authors recommend averaging the iterates (e.g.
    `ema_params`).

    Args:
        learning_rate: $\eta$, an extra factor (a number >= 0, a scalar
            array or a schedule).
        init_step: ``(kind, value)``: ``"distance"`` sets $\bar r_0$,
            ``"learning_rate"`` the first step size, ``"heuristic"``
            $\bar r_0 = \text{value}\,(1 + \lVert \theta_0 \rVert)$.
        eps: $\epsilon >= 0$.
        weight_decay: $\lambda >= 0$ added to the gradients first
            (`add_decayed_weights`), or ``None`` for none.
        mask: which leaves get weight decay (see `add_decayed_weights`).

    Returns:
        An ``optax.GradientTransformationExtraArgs``; ``update`` needs
        ``params``.

    Example:
        >>> import jax, jax.numpy as jnp, optax, jaxopt_lite as jol
        >>> opt = jol.dog(init_step=("distance", 0.5))
        >>> params = jnp.array([1.0, -2.0])
        >>> state = opt.init(params)
        >>> for _ in range(3):
        ...     grads = jax.grad(lambda p: jnp.sum(p**2))(params)
        ...     updates, state = opt.update(grads, state, params)
        ...     params = optax.apply_updates(params, updates)
        >>> [round(float(x), 4) for x in params]
        [0.4767, -0.9533]

    References:
        Ivgi, Hinder and Carmon, *DoG is SGD's Best Friend: A Parameter-Free
        Dynamic Step Size Schedule*, 2023.
    """
    return _decay_then(
        weight_decay,
        mask,
        scale_by_dog(init_step, eps),
        scale_by_learning_rate(learning_rate),
    )


@recipe
def dowg(
    learning_rate: ScalarOrSchedule = 1.0,
    init_estim_sq_dist: float | jax.Array | None = None,
    eps: float | jax.Array = 1e-4,
    weight_decay: ScalarOrSchedule | None = None,
    mask: Any = None,
) -> optax.GradientTransformationExtraArgs:
    r"""DoWG: DoG with the gradients weighted by the distance travelled.

    $$
    \bar r_t^2 = \max_{k < t} \lVert \theta_k - \theta_0 \rVert^2, \quad
    W_t = \sum_{k \le t} \bar r_k^2 \lVert g_k \rVert^2, \quad
    \theta_t = \theta_{t-1} - \eta_t \frac{\bar r_t^2}{\sqrt{W_t} + \epsilon} \, g_t
    $$

    with norms over the whole tree and $\bar r^2$ at least
    ``init_estim_sq_dist`` (or $\epsilon$) (`scale_by_dowg`).

    Args:
        learning_rate: $\eta$, an extra factor (a number >= 0, a scalar
            array or a schedule).
        init_estim_sq_dist: $\bar r_0^2 >= 0$, or ``None`` for $\epsilon$.
        eps: $\epsilon >= 0$.
        weight_decay: $\lambda >= 0$ added to the gradients first
            (`add_decayed_weights`), or ``None`` for none.
        mask: which leaves get weight decay (see `add_decayed_weights`).

    Returns:
        An ``optax.GradientTransformationExtraArgs``; ``update`` needs
        ``params``.

    Example:
        >>> import jax, jax.numpy as jnp, optax, jaxopt_lite as jol
        >>> opt = jol.dowg()
        >>> params = jnp.array([1.0, -2.0])
        >>> state = opt.init(params)
        >>> for _ in range(3):
        ...     grads = jax.grad(lambda p: jnp.sum(p**2))(params)
        ...     updates, state = opt.update(grads, state, params)
        ...     params = optax.apply_updates(params, updates)
        >>> [round(float(x), 4) for x in params]
        [0.9866, -1.9731]

    References:
        Khaled, Mishchenko and Jin, *DoWG Unleashed: An Efficient Universal
        Parameter-Free Gradient Descent Method*, 2023.
    """
    return _decay_then(
        weight_decay,
        mask,
        scale_by_dowg(init_estim_sq_dist, eps),
        scale_by_learning_rate(learning_rate),
    )
