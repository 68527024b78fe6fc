r"""Schedule-Free optimizers: `schedule_free_sgd` and `schedule_free_adamw`,
`schedule_free` around momentum-free SGD and AdamW.

Evaluate at `schedule_free_eval_params`. The base optimizer ends in
`scale_by_learning_rate`, so `current_learning_rate` works.
"""

from __future__ import annotations

from typing import Any

import jax
import optax

from jaxopt_lite._combinators.chain import chain
from jaxopt_lite._combinators.schedule_free import schedule_free
from jaxopt_lite._core import validate
from jaxopt_lite._core.recipe import recipe
from jaxopt_lite._optimizers.sgd import sgd
from jaxopt_lite._schedules.joined import warmup_constant_schedule
from jaxopt_lite._transforms.rms import scale_by_rms
from jaxopt_lite._transforms.scaling import scale_by_learning_rate
from jaxopt_lite._transforms.weight_decay import add_decayed_weights


def _with_warmup(learning_rate: Any, warmup_steps: Any) -> Any:
    """``learning_rate`` after a linear warm-up from 0 over ``warmup_steps``
    steps (none for ``None``)."""
    if warmup_steps is None:
        return learning_rate
    validate.check_learning_rate("learning_rate", learning_rate)
    return warmup_constant_schedule(0.0, learning_rate, warmup_steps)


@recipe
def schedule_free_sgd(
    learning_rate: float | jax.Array = 1.0,
    warmup_steps: int | None = None,
    b1: float | jax.Array = 0.9,
    weight_decay: float | jax.Array | None = None,
    weight_lr_power: float | jax.Array = 2.0,
    state_dtype: Any = None,
) -> optax.GradientTransformationExtraArgs:
    r"""Schedule-Free SGD: SGD steps on $z$, evaluated at their weighted average.

    $$
    z_{t+1} = z_t - \gamma_t (g_t + \lambda y_t), \quad
    x_{t+1} = (1 - c_{t+1}) x_t + c_{t+1} z_{t+1}, \quad
    y_{t+1} = \beta_1 x_{t+1} + (1 - \beta_1) z_{t+1}
    $$

    `schedule_free` around `sgd` (after `add_decayed_weights` when
    ``weight_decay`` is given), with $c_{t+1} = w_t / \sum_{s \le t} w_s$,
    $w_t = (\max_{s \le t} \gamma_s)^p$. The rate $\gamma_t$ warms up
    linearly from 0 over ``warmup_steps`` steps and is read at step $t$ from
    $t = 0$ (so the first update of a warm-up is 0; optax starts at step 1:
    see `schedule_free`). Evaluate at `schedule_free_eval_params`.

    Args:
        learning_rate: $\gamma$, a number >= 0.
        warmup_steps: ``None`` (no warm-up) or the warm-up length (an
            integer >= 1).
        b1: $\beta_1$, in $(0, 1]$.
        weight_decay: ``None`` or $\lambda >= 0$ (multiplied by the rate).
        weight_lr_power: $p$, a finite number.
        state_dtype: dtype of $z$; ``None`` keeps the parameters'.

    Returns:
        An ``optax.GradientTransformationExtraArgs``.

    Example:
        >>> import jax, jax.numpy as jnp, optax, jaxopt_lite as jol
        >>> f = lambda x: jnp.sum(x**2)
        >>> opt = jol.schedule_free_sgd(0.4)
        >>> params = jnp.array([1.0, 2.0, 3.0])
        >>> state = opt.init(params)
        >>> for _ in range(3):
        ...     updates, state = opt.update(jax.grad(f)(params), state, params)
        ...     params = optax.apply_updates(params, updates)
        >>> round(float(f(jol.schedule_free_eval_params(state, params))), 4)
        0.0564

    References:
        Defazio et al., *The Road Less Scheduled*, 2024.
    """
    rate = _with_warmup(learning_rate, warmup_steps)
    optimizer = sgd(rate)
    if weight_decay is not None:
        validate.check_weight_decay("weight_decay", weight_decay)
        optimizer = chain(add_decayed_weights(weight_decay), optimizer)
    return schedule_free(optimizer, rate, b1, weight_lr_power, state_dtype)


@recipe
def schedule_free_adamw(
    learning_rate: float | jax.Array = 0.0025,
    warmup_steps: int | None = None,
    b1: float | jax.Array = 0.9,
    b2: float | jax.Array = 0.999,
    eps: float | jax.Array = 1e-8,
    weight_decay: float | jax.Array = 0.0,
    weight_lr_power: float | jax.Array = 2.0,
    state_dtype: Any = None,
) -> optax.GradientTransformationExtraArgs:
    r"""Schedule-Free AdamW: momentum-free AdamW steps on $z$, averaged.

    $$
    v_t = \beta_2 v_{t-1} + (1 - \beta_2) g_t^2, \quad
    z_{t+1} = z_t - \gamma_t \left( \frac{g_t}{\sqrt{v_t / (1 - \beta_2^t)}
    + \epsilon} + \lambda y_t \right)
    $$

    and $x$, $y$ as in `schedule_free_sgd`: `schedule_free` around
    `scale_by_rms` (bias-corrected, $\epsilon$ outside the root: Adam with
    $\beta_1 = 0$), `add_decayed_weights` and `scale_by_learning_rate`. The
    rate warms up linearly from 0 over ``warmup_steps`` steps, read from
    step 0. Evaluate at `schedule_free_eval_params`.

    Args:
        learning_rate: $\gamma$, a number >= 0.
        warmup_steps: ``None`` (no warm-up) or the warm-up length (an
            integer >= 1).
        b1: $\beta_1$ of the interpolation, in $(0, 1]$.
        b2: $\beta_2$, in $[0, 1)$.
        eps: $\epsilon >= 0$.
        weight_decay: $\lambda >= 0$ (multiplied by the rate).
        weight_lr_power: $p$, a finite number.
        state_dtype: dtype of $z$; ``None`` keeps the parameters'.

    Returns:
        An ``optax.GradientTransformationExtraArgs``.

    Example:
        >>> import jax.numpy as jnp, jaxopt_lite as jol
        >>> opt = jol.schedule_free_adamw(0.1, warmup_steps=2, b1=0.5)
        >>> params, grads = jnp.array([1.0, -1.0]), jnp.array([2.0, -0.5])
        >>> state, show = opt.init(params), lambda a: [round(x, 3) for x in a.tolist()]
        >>> for step in range(3):  # rates 0, 0.05, 0.1: the first step is 0
        ...     updates, state = opt.update(grads, state, params)
        ...     params = params + updates
        ...     print(step, show(params), show(state.z))
        0 [1.0, -1.0] [1.0, -1.0]
        1 [0.95, -0.95] [0.95, -0.95]
        2 [0.86, -0.86] [0.85, -0.85]

    References:
        Defazio et al., *The Road Less Scheduled*, 2024.
        Loshchilov and Hutter, *Decoupled Weight Decay Regularization*, 2019.
    """
    validate.check_decay("b2", b2)  # scale_by_rms's decay
    validate.check_weight_decay("weight_decay", weight_decay)
    rate = _with_warmup(learning_rate, warmup_steps)
    optimizer = chain(
        scale_by_rms(decay=b2, eps=eps, eps_in_sqrt=False, bias_correction=True),
        add_decayed_weights(weight_decay),
        scale_by_learning_rate(rate),
    )
    return schedule_free(optimizer, rate, b1, weight_lr_power, state_dtype)
