r"""`adafactor`: factored second moments for memory-frugal training."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import optax

from jaxopt_lite._combinators.chain import chain
from jaxopt_lite._core import validate
from jaxopt_lite._core.recipe import recipe
from jaxopt_lite._core.validate import check_bool, check_dtype
from jaxopt_lite._transforms.clipping import clip_by_block_rms
from jaxopt_lite._transforms.factored import (
    scale_by_factored_rms,
    scale_by_param_block_rms,
)
from jaxopt_lite._transforms.scaling import (
    ScalarOrSchedule,
    scale,
    scale_by_learning_rate,
)
from jaxopt_lite._transforms.sgd import momentum_ema
from jaxopt_lite._transforms.weight_decay import add_decayed_weights


@recipe(static=("min_dim_size_to_factor",))
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
            $\beta_t = 1 - (t + 1)^{-c}$ (computed in float64 under x64,
            where optax uses float32: docs/optax-differences.md).
        decay_offset: the step at which fine-tuning started (restarts the
            decay schedule).
        multiply_by_parameter_scale: scale steps by each leaf's parameter RMS.
        clipping_threshold: the largest RMS $d$ of a leaf's step, a number
            > 0 (1 is usual), or ``None``.
        momentum: the momentum decay in [0, 1], or ``None``.
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
    # Checked here, under the user's names: the arguments the pieces know by
    # other names (with the pieces' rules), those of the private momentum_ema,
    # and weight_decay_rate (>= 0, where add_decayed_weights allows any sign).
    # The pieces check the rest.
    validate.check_range("decay_offset", decay_offset)  # step_offset
    check_bool("multiply_by_parameter_scale", multiply_by_parameter_scale)
    if clipping_threshold is not None:
        validate.check_positive("clipping_threshold", clipping_threshold)  # threshold
    if momentum is not None:
        validate.check_momentum("momentum", momentum)
    dtype_momentum = check_dtype("dtype_momentum", dtype_momentum)
    if weight_decay_rate is not None:
        validate.check_weight_decay("weight_decay_rate", weight_decay_rate)
    validate.check_nonnegative("eps", eps)  # epsilon

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
