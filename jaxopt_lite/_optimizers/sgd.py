r"""The SGD family: `gd`, `sgd` (with momentum), `noisy_sgd`, Polyak's
loss-aware `polyak_sgd` and differentially private `dpsgd`.

Each is a `chain` of primitives ending in `scale_by_learning_rate`, so
`current_learning_rate` reads the rate from its state, and the learning rate
may be a number, an array (possibly traced) or a schedule ``step -> rate``.
"""

from __future__ import annotations

from typing import Any

import jax
import optax

from jaxopt_lite._combinators.chain import chain
from jaxopt_lite._combinators.stateless import identity
from jaxopt_lite._core import validate
from jaxopt_lite._core.recipe import recipe
from jaxopt_lite._core.validate import check_bool, check_dtype
from jaxopt_lite._transforms.noise import add_noise
from jaxopt_lite._transforms.polyak import scale_by_polyak
from jaxopt_lite._transforms.privacy import differentially_private_aggregate
from jaxopt_lite._transforms.scaling import ScalarOrSchedule, scale_by_learning_rate
from jaxopt_lite._transforms.sgd import trace


@recipe
def gd(learning_rate: ScalarOrSchedule) -> optax.GradientTransformationExtraArgs:
    r"""Gradient descent: step against the gradient, scaled by the learning rate.

    $$
    \theta_{t+1} = \theta_t - \eta_t \nabla L(\theta_t)
    $$

    Used with full-batch gradients this is classical gradient descent; with
    minibatch gradients it is plain SGD (`sgd` without momentum gives the
    same numbers).

    Args:
        learning_rate: $\eta$: a number >= 0, a scalar array (possibly
            traced) or a schedule ``step -> rate``.

    Returns:
        An ``optax.GradientTransformationExtraArgs``.

    Example:
        >>> import jax, jax.numpy as jnp, optax, jaxopt_lite as jol
        >>> opt = jol.gd(0.25)
        >>> params = jnp.array([1.0, -2.0])
        >>> state = opt.init(params)
        >>> for _ in range(2):
        ...     grads = jax.grad(lambda p: jnp.sum(p**2))(params)
        ...     updates, state = opt.update(grads, state, params)
        ...     params = optax.apply_updates(params, updates)
        >>> params
        Array([ 0.25, -0.5 ], dtype=float32)

    References:
        Cauchy, *Méthode générale pour la résolution des systèmes d'équations
        simultanées*, 1847.
    """
    return chain(scale_by_learning_rate(learning_rate))


@recipe
def sgd(
    learning_rate: ScalarOrSchedule,
    momentum: float | jax.Array | None = None,
    nesterov: bool = False,
    accumulator_dtype: Any = None,
) -> optax.GradientTransformationExtraArgs:
    r"""Stochastic gradient descent, optionally with (Nesterov) momentum.

    $$
    m_t = g_t + \beta m_{t-1}, \qquad
    \theta_{t+1} = \theta_t - \eta_t \begin{cases}
    g_t + \beta m_t & \text{(Nesterov)} \\ m_t & \text{(otherwise)}
    \end{cases}
    $$

    Without momentum ($\beta$ is ``None``) the step is $-\eta_t g_t$, as
    in `gd`. The momentum is `trace`.

    Args:
        learning_rate: $\eta$: a number >= 0, a scalar array or a schedule.
        momentum: $\beta$ in $[0, 1]$, or ``None`` for no momentum buffer.
        nesterov: use Nesterov momentum.
        accumulator_dtype: dtype of the momentum buffer; ``None`` keeps the
            parameters' dtype.

    Returns:
        An ``optax.GradientTransformationExtraArgs``.

    Example:
        >>> import jax, jax.numpy as jnp, optax, jaxopt_lite as jol
        >>> opt = jol.sgd(0.1, momentum=0.5)
        >>> params = jnp.array([1.0, -2.0])
        >>> state = opt.init(params)
        >>> for _ in range(2):
        ...     grads = jax.grad(lambda p: jnp.sum(p**2))(params)
        ...     updates, state = opt.update(grads, state, params)
        ...     params = optax.apply_updates(params, updates)
        >>> params
        Array([ 0.54, -1.08], dtype=float32)

    References:
        Robbins and Monro, *A Stochastic Approximation Method*, 1951.
        Sutskever et al., *On the importance of initialization and momentum in
        deep learning*, 2013.
    """
    if momentum is None:  # no trace to check its settings (optax's layout)
        check_bool("nesterov", nesterov)
        check_dtype("accumulator_dtype", accumulator_dtype)
        return chain(identity(), scale_by_learning_rate(learning_rate))
    validate.check_momentum("momentum", momentum)  # trace's decay, by the user's name
    return chain(
        trace(momentum, nesterov=nesterov, accumulator_dtype=accumulator_dtype),
        scale_by_learning_rate(learning_rate),
    )


@recipe
def noisy_sgd(
    learning_rate: ScalarOrSchedule,
    eta: float | jax.Array = 0.01,
    gamma: float | jax.Array = 0.55,
    key: Any = None,
    *,
    seed: int | None = None,
) -> optax.GradientTransformationExtraArgs:
    r"""SGD on gradients plus annealed Gaussian noise.

    $$
    \theta_{t+1} = \theta_t - \eta_t \left( g_t + \sigma_t \xi_t \right),
    \qquad \sigma_t^2 = \frac{\eta_\sigma}{t^{\gamma}}, \qquad
    \xi_t \sim \mathcal{N}(0, I)
    $$

    for the $t$-th update ($t = 1, 2, \dots$). The PRNG key lives in the
    state, so a run is reproducible, and the same key gives optax's numbers.
    The noise is `add_noise`.

    Args:
        learning_rate: $\eta_t$: a number >= 0, a scalar array or a schedule.
        eta: the initial noise variance $\eta_\sigma$, a finite number >= 0.
        gamma: the annealing exponent $\gamma$, a finite number >= 0.
        key: an integer seed, a ``jax.random.key`` (possibly traced, so seeds
            can be ``vmap``-ed) or a raw ``jax.random.PRNGKey``; ``None``
            means seed 0.
        seed: the older name of ``key`` (give one of them).

    Returns:
        An ``optax.GradientTransformationExtraArgs``.

    Example:
        >>> import jax.numpy as jnp, jaxopt_lite as jol
        >>> opt = jol.noisy_sgd(0.1, eta=0.0, key=0)
        >>> opt.update(jnp.array([1.0, -2.0]), opt.init(jnp.zeros(2)))[0]
        Array([-0.1,  0.2], dtype=float32)

    References:
        Neelakantan et al., *Adding gradient noise improves learning for very
        deep networks*, 2015.
    """
    return chain(
        add_noise(eta, gamma, key, seed=seed),
        scale_by_learning_rate(learning_rate),
    )


@recipe
def polyak_sgd(
    max_learning_rate: float | jax.Array = 1.0,
    scaling: ScalarOrSchedule = 1.0,
    f_min: float | jax.Array = 0.0,
    eps: float | jax.Array = 0.0,
    variant: str = "sps",
) -> optax.GradientTransformationExtraArgs:
    r"""SGD with Polyak's step size, computed from the loss ``value=``.

    $$
    d_t = -s_t \, g_t, \qquad
    \theta_{t+1} = \theta_t + \min\left(
        \frac{f(\theta_t) - f^\star}{\lVert d_t \rVert^2 + \epsilon},
        \gamma_{\max} \right) d_t
    $$

    (step 0 when $\lVert d_t \rVert^2 + \epsilon$ is below the float64
    machine epsilon). With ``scaling`` $s_t = 1$ this is the classical
    Polyak step $\min\left((f - f^\star) / \lVert g \rVert^2,
    \gamma_{\max}\right)$; like optax, the norm is that of the scaled
    direction $d_t$. ``variant="sps+"`` uses the positive part of
    $f - f^\star$. The update must be called with ``value=loss`` (the loops
    of this package always pass it). The pieces are
    `scale_by_learning_rate` (with ``scaling``, so `current_learning_rate`
    reports $s_t$) and `scale_by_polyak`.

    Args:
        max_learning_rate: the largest step $\gamma_{\max}$, a finite
            number >= 0.
        scaling: $s_t$, a number >= 0, a scalar array or a schedule.
        f_min: a lower bound $f^\star$ of the loss (0 for models that can
            fit the data exactly), a finite number.
        eps: $\epsilon$ added to the squared norm, a finite number >= 0.
        variant: ``"sps"`` or ``"sps+"``.

    Returns:
        An ``optax.GradientTransformationExtraArgs`` whose ``update`` needs
        the keyword ``value``.

    Example:
        >>> import jax, jax.numpy as jnp, optax, jaxopt_lite as jol
        >>> f = lambda x: jnp.sum(x**2)
        >>> opt = jol.polyak_sgd()
        >>> params = jnp.array([1.0, 2.0, 3.0])
        >>> state = opt.init(params)
        >>> value, grad = jax.value_and_grad(f)(params)
        >>> updates, state = opt.update(grad, state, params, value=value)
        >>> f(optax.apply_updates(params, updates))
        Array(3.5, dtype=float32)

    References:
        Loizou, Vaswani, Laradji and Lacoste-Julien, *Stochastic Polyak
        step-size for SGD: an adaptive learning rate for fast convergence*,
        2021.

        Berrada, Zisserman and Kumar, *Training neural networks for and by
        interpolation*, 2020.

        Garrigos, Gower and Schaipp, *Function value learning: adaptive
        learning rates based on the Polyak stepsize and function splitting in
        ERM*, 2023.
    """
    validate.check_learning_rate("scaling", scaling)
    return chain(
        sgd(scaling),
        scale_by_polyak(
            max_learning_rate=max_learning_rate, f_min=f_min, eps=eps, variant=variant
        ),
    )


@recipe
def dpsgd(
    learning_rate: ScalarOrSchedule,
    l2_norm_clip: float | jax.Array,
    noise_multiplier: float | jax.Array,
    seed: Any,
    momentum: float | jax.Array | None = None,
    nesterov: bool = False,
) -> optax.GradientTransformationExtraArgs:
    r"""DP-SGD: SGD on clipped, noised per-example gradients.

    $$
    \bar g_t = \frac{1}{B} \left( \sum_{i=1}^{B} g_{t,i}
    \min\left(1, \frac{C}{\lVert g_{t,i} \rVert_2}\right)
    + \sigma C \, \xi_t \right), \qquad
    \theta_{t+1} = \theta_t - \eta_t \bar g_t
    $$

    with $\xi_t$ standard normal noise, and with ``momentum`` $\mu$ the
    heavy-ball buffer $m_t = \bar g_t + \mu m_{t-1}$ in place of $\bar g_t$.
    The updates must be per-example gradients (batch on axis 0 of every
    leaf; see `differentially_private_aggregate`). The privacy guarantee
    follows from $C$, $\sigma$, the sampling rate and the number of steps
    (by a privacy accountant, not computed here).

    Args:
        learning_rate: $\eta$: a number >= 0, a scalar array or a schedule.
        l2_norm_clip: $C$, a finite number >= 0.
        noise_multiplier: $\sigma$, a finite number >= 0.
        seed: an integer seed or a PRNG key for the noise.
        momentum: ``None`` (no momentum) or $\mu$ in $[0, 1]$.
        nesterov: use Nesterov momentum.

    Returns:
        An ``optax.GradientTransformationExtraArgs``.

    Example:
        >>> import jax.numpy as jnp, jaxopt_lite as jol
        >>> opt = jol.dpsgd(0.5, l2_norm_clip=2.5, noise_multiplier=0.0, seed=0)
        >>> per_example = jnp.array([[3.0, 4.0], [1.0, 0.0]])  # norms 5 and 1
        >>> opt.update(per_example, opt.init(jnp.zeros(2)))[0]
        Array([-0.625, -0.5  ], dtype=float32)

    References:
        Abadi et al., *Deep Learning with Differential Privacy*, 2016.
    """
    if momentum is not None:
        validate.check_momentum("momentum", momentum)  # trace's decay
    check_bool("nesterov", nesterov)
    return chain(
        differentially_private_aggregate(l2_norm_clip, noise_multiplier, seed=seed),
        optax.identity() if momentum is None else trace(momentum, nesterov),
        scale_by_learning_rate(learning_rate),
    )
