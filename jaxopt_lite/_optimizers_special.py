r"""Optimizers with a twist: gradient noise (`noisy_sgd`), Polyak's loss-aware
step size (`polyak_sgd`) and the memory-frugal `adafactor`.

Like every optimizer of the package they are `chain`\ s of primitives that
contain `scale_by_learning_rate` (when a learning rate is given), so
`current_learning_rate` can read it from their state.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import optax

from jaxopt_lite import _validate as v
from jaxopt_lite._clipping import clip_by_block_rms
from jaxopt_lite._combine import chain
from jaxopt_lite._factored import (
    momentum_ema,
    scale_by_factored_rms,
    scale_by_param_block_rms,
)
from jaxopt_lite._noise import add_noise
from jaxopt_lite._polyak import scale_by_polyak
from jaxopt_lite._transforms import (
    ScalarOrSchedule,
    add_decayed_weights,
    check_bool,
    check_dtype,
    scale,
    scale_by_learning_rate,
)


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
    v.check_learning_rate("scaling", scaling)
    return chain(
        scale_by_learning_rate(scaling),
        scale_by_polyak(
            max_learning_rate=max_learning_rate, f_min=f_min, eps=eps, variant=variant
        ),
    )


def adafactor(
    learning_rate: ScalarOrSchedule | None = None,
    min_dim_size_to_factor: int = 128,
    decay_rate: float | jax.Array = 0.8,
    decay_offset: int | jax.Array = 0,
    multiply_by_parameter_scale: bool = True,
    clipping_threshold: float | jax.Array | None = 1.0,
    momentum: float | jax.Array | None = None,
    dtype_momentum: Any = jnp.float32,
    weight_decay_rate: ScalarOrSchedule | None = None,
    eps: float | jax.Array = 1e-30,
    factored: bool = True,
    weight_decay_mask: Any = None,
) -> optax.GradientTransformationExtraArgs:
    r"""Adafactor: adaptive steps from a factored (row and column) second moment.

    $$
    \begin{aligned}
    \hat g_t &= g_t / \sqrt{\hat V_t}, \qquad
        \hat V_t = R_t C_t^\top / \operatorname{mean}(R_t)
        \text{ for large matrices} \\
    \tilde g_t &= \hat g_t / \max(1, \operatorname{rms}(\hat g_t) / d)
        \quad \text{(update clipping, per leaf)} \\
    \theta_{t+1} &= \theta_t - \left( \eta_t \max(\operatorname{rms}(\theta_t),
        10^{-3}) \, \tilde g_t \;[\text{then momentum}] + \lambda_t \theta_t \right)
    \end{aligned}
    $$

    The second moment $\hat V_t$ is `scale_by_factored_rms` (a full
    average for leaves too small to factor). Each piece can be switched
    off: ``clipping_threshold=None`` (no clipping),
    ``multiply_by_parameter_scale=False`` (no
    $\operatorname{rms}(\theta)$ factor), ``momentum=None`` (no moving
    average of the steps), ``weight_decay_rate=None`` (no decay), and
    ``learning_rate=None`` (no $\eta$; then `current_learning_rate` returns
    ``None``). The second moment of an $n \times m$ matrix takes $n + m$
    numbers instead of $nm$. Note that the weight decay is not multiplied by
    the learning rate.

    Args:
        learning_rate: $\eta$: ``None``, a number >= 0, a scalar array or a
            schedule. Adafactor's natural scale differs from Adam's.
        min_dim_size_to_factor: factor the second moment of a leaf only when
            its two largest axes are at least this long.
        decay_rate: the exponent $c$ of the second-moment decay
            $\beta_t = 1 - (t + 1)^{-c}$.
        decay_offset: the step at which fine-tuning started (restarts the
            decay schedule).
        multiply_by_parameter_scale: scale steps by each leaf's parameter RMS.
        clipping_threshold: the largest RMS $d$ of a leaf's step, a number
            > 0 (1 is usual), or ``None``.
        momentum: the momentum decay in [0, 1), or ``None``.
        dtype_momentum: dtype of the momentum buffer.
        weight_decay_rate: $\lambda$: ``None``, a number >= 0 or a schedule.
        eps: $\epsilon$ added to $g^2$, a finite number >= 0.
        factored: use factored estimates (``False``: a full second moment).
        weight_decay_mask: which leaves get weight decay (``None``: all; a
            tree of bools or a callable ``params -> tree``).

    Returns:
        An ``optax.GradientTransformationExtraArgs``.

    Example:
        >>> import jax.numpy as jnp, jaxopt_lite as jol
        >>> opt = jol.adafactor(learning_rate=0.1)
        >>> params = jnp.array([1.0, -1.0])
        >>> opt.update(jnp.array([4.0, -0.5]), opt.init(params), params)[0]
        Array([-0.1,  0.1], dtype=float32)

    References:
        Shazeer and Stern, *Adafactor: adaptive learning rates with sublinear
        memory cost*, 2018.
    """
    if learning_rate is not None:
        v.check_learning_rate("learning_rate", learning_rate)
    v.check_int("min_dim_size_to_factor", min_dim_size_to_factor, minimum=0)
    v.check_nonnegative("decay_rate", decay_rate)
    v.check_range("decay_offset", decay_offset)
    check_bool("multiply_by_parameter_scale", multiply_by_parameter_scale)
    check_bool("factored", factored)
    if clipping_threshold is not None:
        v.check_range("clipping_threshold", clipping_threshold, 0.0, low_closed=False)
    if momentum is not None:
        v.check_decay("momentum", momentum)
    dtype_momentum = check_dtype("dtype_momentum", dtype_momentum)
    if weight_decay_rate is not None:
        v.check_range(
            "weight_decay_rate", weight_decay_rate, 0.0, math.inf, allow_schedule=True
        )
    v.check_nonnegative("eps", eps)

    parts = [
        scale_by_factored_rms(
            factored=factored,
            decay_rate=decay_rate,
            step_offset=decay_offset,
            min_dim_size_to_factor=min_dim_size_to_factor,
            epsilon=eps,
        )
    ]
    if clipping_threshold is not None:
        parts.append(clip_by_block_rms(clipping_threshold))
    if learning_rate is not None:
        parts.append(scale_by_learning_rate(learning_rate, flip_sign=False))
    if multiply_by_parameter_scale:
        parts.append(scale_by_param_block_rms())
    if momentum is not None:
        parts.append(momentum_ema(momentum, accumulator_dtype=dtype_momentum))
    if weight_decay_rate is not None:
        parts.append(add_decayed_weights(weight_decay_rate, mask=weight_decay_mask))
    parts.append(scale(-1.0))
    return chain(*parts)
