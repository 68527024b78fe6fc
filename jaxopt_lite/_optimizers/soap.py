r"""SOAP: Adam in the eigenbasis of Shampoo's preconditioner, with decoupled
weight decay and a learning rate (`soap`).

A `chain` of `scale_by_soap`, `add_decayed_weights` and
`scale_by_learning_rate`, so `current_learning_rate` works and the learning
rate may be a number, an array (possibly traced) or a schedule.
"""

from __future__ import annotations

from typing import Any

import jax
import optax

from jaxopt_lite._combinators.chain import chain
from jaxopt_lite._core import validate
from jaxopt_lite._core.recipe import recipe
from jaxopt_lite._transforms.scaling import ScalarOrSchedule, scale_by_learning_rate
from jaxopt_lite._transforms.soap import scale_by_soap
from jaxopt_lite._transforms.weight_decay import add_decayed_weights


@recipe(static=("max_precond_dim",))
def soap(
    learning_rate: ScalarOrSchedule,
    b1: float | jax.Array = 0.95,
    b2: float | jax.Array = 0.95,
    shampoo_beta: float | jax.Array | None = None,
    eps: float | jax.Array = 1e-8,
    weight_decay: ScalarOrSchedule = 0.01,
    precondition_frequency: int | jax.Array = 10,
    max_precond_dim: int = 10000,
    mask: Any = None,
) -> optax.GradientTransformationExtraArgs:
    r"""SOAP: Adam run in the slowly changing eigenbasis of Shampoo's preconditioner.

    For a matrix parameter $W$ with Kronecker factors
    $L \approx E[G G^{\mathsf T}]$, $R \approx E[G^{\mathsf T} G]$ and their
    eigenbases $Q_L, Q_R$ (refreshed every $f$ steps):

    $$
    W_{t+1} = W_t - \eta_t \left(
    \frac{\sqrt{1-\beta_2^t}}{1-\beta_1^t}\,
    Q_L \frac{\mu_t}{\sqrt{\nu_t} + \epsilon} Q_R^{\mathsf T}
    + \lambda_t W_t \right)
    $$

    where $\mu_t, \nu_t$ are Adam's moments of the rotated gradients
    $Q_L^{\mathsf T} G_t Q_R$. The rescaling, its first update (which only
    builds the bases and moves nothing but the weight decay) and the
    treatment of vectors and large axes are `scale_by_soap`'s; the decay is
    `add_decayed_weights`.

    Defaults are those of the authors' reference implementation, except that
    the learning rate must be given. The decay is decoupled as in `adamw`:
    $\eta \lambda W_t$ from the parameters before the step, from the first
    update on. (The reference decays the parameters after its step, by
    $\eta \lambda W_{t+1}$, and not on the first update: a difference of order
    $\eta^2 \lambda$ per step.)

    Args:
        learning_rate: $\eta$: a number >= 0, a scalar array or a schedule.
        b1: Adam's $\beta_1$, in $[0, 1)$.
        b2: Adam's $\beta_2$, in $[0, 1)$.
        shampoo_beta: the decay of $L$ and $R$, in $[0, 1)$; ``None`` uses
            ``b2``.
        eps: $\epsilon >= 0$, added to $\sqrt{\nu}$.
        weight_decay: $\lambda >= 0$ (number, array or schedule).
        precondition_frequency: $f$, an integer >= 1: how often (in updates)
            the eigenbases are refreshed.
        max_precond_dim: axes longer than this get no factor and are not
            rotated (an integer >= 1).
        mask: which leaves get weight decay (see `add_decayed_weights`).

    Returns:
        An ``optax.GradientTransformationExtraArgs``.

    Example:
        >>> import jax, jax.numpy as jnp, optax, jaxopt_lite as jol
        >>> opt = jol.soap(0.1)
        >>> params = jnp.array([[1.0, -2.0], [0.5, 3.0]])
        >>> state = opt.init(params)
        >>> update = jax.jit(opt.update)
        >>> for _ in range(3):
        ...     grads = jax.grad(lambda p: jnp.sum(p**2))(params)
        ...     updates, state = update(grads, state, params)
        ...     params = optax.apply_updates(params, updates)
        >>> [round(float(x), 4) for x in params.ravel()]
        [0.8415, -1.8986, 0.3733, 2.8131]

    References:
        Vyas, Morwani, Zhao, Kwun, Shapira, Brandfonbrener, Janson and Kakade,
        *SOAP: Improving and Stabilizing Shampoo using Adam*, 2024.
    """
    validate.check_weight_decay("weight_decay", weight_decay)
    return chain(
        scale_by_soap(
            b1, b2, shampoo_beta, eps, precondition_frequency, max_precond_dim
        ),
        add_decayed_weights(weight_decay, mask),
        scale_by_learning_rate(learning_rate),
    )
