r"""Learning-rate-free AdamW by D-Adaptation (`dadapt_adamw`) and by Prodigy
(`prodigy`): AdamW whose base step $d$ is a running lower bound on the
distance to the solution, estimated from the gradients.

The estimate enters the moments themselves, so the schedule (``learning_rate``,
a factor on $d$ best left at 1 or decayed from 1) is applied inside the update,
not by a final `scale_by_learning_rate`: these transforms are whole
optimizers, with optax's state layouts. Their scalars are kept in the
parameters' precision (float32 for float32 or bfloat16 parameters, float64 for
float64 ones; optax uses the lowest floating dtype of the parameters).

Where optax divides by a zero sum of gradient magnitudes (only when every
gradient so far is zero) and keeps NaN for ever, ours keeps the previous
estimate of $d$ (docs/optax-differences.md).
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import optax
import optax.contrib

from jaxopt_lite._core import tree_math, validate
from jaxopt_lite._core.dtypes import (
    add,
    div,
    mul,
    sub,
    tree_compute_dtype,
    zeros_like,
)
from jaxopt_lite._core.recipe import recipe
from jaxopt_lite._transforms.scaling import ScalarOrSchedule

DAdaptAdamWState = optax.contrib.DAdaptAdamWState
"""optax.contrib's class itself (so states equal optax's as trees): AdamW's
moments (``exp_avg`` of $d_t g$, ``exp_avg_sq``), the decayed sum $s$ of
$d_t g$ (``grad_sum``), the estimate $d$ (``estim_lr``), the decayed numerator
of its lower bound and the update count (int32, saturating)."""

ProdigyState = optax.contrib.ProdigyState
"""optax.contrib's class itself (so states equal optax's as trees): AdamW's
moments of $d g$, the decayed sum $s$, the initial parameters ``params0``, the
estimate $d$ (``estim_lr``), the decayed numerator of its lower bound and the
update count (int32, saturating)."""


def _check_betas(betas: Any) -> tuple[Any, Any]:
    if not isinstance(betas, (tuple, list)) or len(betas) != 2:
        raise TypeError(f"betas must be a pair (b1, b2), got {betas!r}.")
    for b in betas:
        validate.check_decay("betas", b)
    return betas[0], betas[1]


def _check_common(learning_rate, eps, estim_lr0, weight_decay) -> None:
    validate.check_learning_rate("learning_rate", learning_rate)
    validate.check_nonnegative("eps", eps)
    validate.check_positive("estim_lr0", estim_lr0)
    validate.check_nonnegative("weight_decay", weight_decay)


def _scalars(params: Any, estim_lr0: Any) -> tuple[jax.Array, jax.Array, jax.Array]:
    """The initial estimate, numerator and count."""
    dtype = tree_compute_dtype(params)
    return (
        jnp.asarray(estim_lr0, dtype),
        jnp.zeros([], dtype),
        jnp.zeros([], jnp.int32),
    )


def _base_step(learning_rate, b1, b2, estim_lr, count) -> jax.Array:
    r"""$d_t = \eta_t \, d \, \sqrt{1 - \beta_2^t} / (1 - \beta_1^t)$ at update
    ``count + 1``, in ``estim_lr``'s dtype."""
    dtype = estim_lr.dtype
    t = tree_math.safe_increment(count)
    rate = learning_rate(count) if callable(learning_rate) else learning_rate
    correction = jnp.sqrt(1 - tree_math.decay_power(b2, t, dtype)) / (
        1 - tree_math.decay_power(b1, t, dtype)
    )
    return mul(mul(estim_lr, rate), correction).astype(dtype)


def _root(b2: Any) -> Any:
    r"""$\sqrt{\beta_2}$; a Python number stays one, so that $1 - \sqrt{\beta_2}$
    keeps its digits (it cancels badly in float32)."""
    return math.sqrt(b2) if isinstance(b2, (int, float)) else jnp.sqrt(b2)


def _decayed(decay, tree, increment) -> Any:
    """``decay * tree + increment`` leafwise, in ``tree``'s dtypes."""
    return jax.tree.map(
        lambda x, i: add(mul(decay, x), i).astype(x.dtype), tree, increment
    )


def _times(scale, g, h=None) -> Any:
    """``scale * g`` (``scale * g * h``) leafwise, in that order (optax's)."""
    if h is None:
        return jax.tree.map(lambda x: mul(scale, x), g)
    return jax.tree.map(lambda x, y: mul(mul(scale, x), y), g, h)


def _l1(tree: Any, dtype: Any) -> jax.Array:
    return sum(
        (jnp.sum(jnp.abs(x)).astype(dtype) for x in jax.tree.leaves(tree)),
        start=jnp.zeros([], dtype),
    )


def _raised(estimate, numerator, denominator) -> jax.Array:
    """``max(estimate, numerator / denominator)``; the old estimate while the
    denominator is 0."""
    bound = jnp.where(denominator > 0, numerator / denominator, estimate)
    return jnp.maximum(estimate, bound)


def _adamw_step(exp_avg, exp_avg_sq, params, updates, scale, floor, decay) -> Any:
    r"""$-\lambda\theta - c \, m / (\sqrt{v} + \epsilon)$, in the updates' dtypes."""
    return jax.tree.map(
        lambda m, s, p, g: sub(
            mul(-decay, p), div(mul(scale, m), add(jnp.sqrt(s), floor))
        ).astype(g.dtype),
        exp_avg,
        exp_avg_sq,
        params,
        updates,
    )


@recipe
def dadapt_adamw(
    learning_rate: ScalarOrSchedule = 1.0,
    betas: tuple[float | jax.Array, float | jax.Array] = (0.9, 0.999),
    eps: float | jax.Array = 1e-8,
    estim_lr0: float | jax.Array = 1e-6,
    weight_decay: float | jax.Array = 0.0,
) -> optax.GradientTransformationExtraArgs:
    r"""D-Adaptation AdamW: AdamW whose step estimates the distance to the optimum.

    With $d_t = \eta_t d \sqrt{1-\beta_2^t}/(1-\beta_1^t)$ and
    $\beta = \sqrt{\beta_2}$:

    $$
    \begin{aligned}
    m_t &= \beta_1 m_{t-1} + (1-\beta_1) d_t g_t, \quad
    v_t = \beta_2 v_{t-1} + (1-\beta_2) g_t^2, \\
    r_t &= \beta r_{t-1} + (1-\beta) d_t
    \Big\langle g_t, \frac{s_{t-1}}{\sqrt{v_{t-1}} + \epsilon} \Big\rangle, \quad
    s_t = \beta s_{t-1} + (1-\beta) d_t g_t, \\
    d &\leftarrow \max\left(d, \frac{r_t}{(1-\beta) \lVert s_t \rVert_1}\right),
    \quad
    u_t = -\lambda d_t \theta_{t-1} - \frac{m_t}{\sqrt{v_t} + \epsilon}
    \end{aligned}
    $$

    starting from $d =$ ``estim_lr0``; the inner product and the $\ell_1$
    norm run over the whole tree. The update already includes the step (no
    further learning rate is applied).

    Args:
        learning_rate: $\eta$, a factor on $d$ (a number >= 0 or a schedule;
            the authors recommend 1, or a warm-up and decay from 1).
        betas: $(\beta_1, \beta_2)$, each in $[0, 1)$.
        eps: $\epsilon >= 0$, added outside the square root.
        estim_lr0: the initial estimate $d > 0$ (an under-estimate).
        weight_decay: $\lambda >= 0$, decoupled weight decay.

    Returns:
        An ``optax.GradientTransformationExtraArgs``; ``update`` needs
        ``params``.

    Example:
        >>> import jax, jax.numpy as jnp, optax, jaxopt_lite as jol
        >>> opt = jol.dadapt_adamw(estim_lr0=0.1)
        >>> params = jnp.array([1.0, -2.0])
        >>> state = opt.init(params)
        >>> for _ in range(3):
        ...     grads = jax.grad(lambda p: jnp.sum(p**2))(params)
        ...     updates, state = opt.update(grads, state, params)
        ...     params = optax.apply_updates(params, updates)
        >>> [round(float(x), 4) for x in params], round(float(state.estim_lr), 4)
        ([0.5606, -1.5531], 0.8819)

    References:
        Defazio and Mishchenko, *Learning-Rate-Free Learning by
        D-Adaptation*, 2023.
    """
    b1, b2 = _check_betas(betas)
    _check_common(learning_rate, eps, estim_lr0, weight_decay)

    def init_fn(params):
        params = tree_math.as_arrays(params)
        zeros = zeros_like(params)
        return DAdaptAdamWState(zeros, zeros, zeros, *_scalars(params, estim_lr0))

    def update_fn(updates, state, params=None, **extra_args):
        del extra_args
        validate.require_params("dadapt_adamw", params)
        updates, params = tree_math.as_arrays(updates), tree_math.as_arrays(params)
        dtype = state.estim_lr.dtype
        step = _base_step(learning_rate, b1, b2, state.estim_lr, state.count)
        beta = _root(b2)
        weighted = jax.tree.map(
            lambda s, sq: div(s, add(jnp.sqrt(sq), eps)),
            state.grad_sum,
            state.exp_avg_sq,
        )
        inner = tree_math.tree_vdot(updates, weighted).astype(dtype)
        exp_avg = _decayed(b1, state.exp_avg, _times(mul(1 - b1, step), updates))
        exp_avg_sq = _decayed(b2, state.exp_avg_sq, _times(1 - b2, updates, updates))
        grad_sum = _decayed(beta, state.grad_sum, _times(mul(1 - beta, step), updates))
        numerator = add(
            mul(beta, state.numerator_weighted), mul(mul(1 - beta, step), inner)
        ).astype(dtype)
        estim_lr = _raised(
            state.estim_lr, numerator, mul(1 - beta, _l1(grad_sum, dtype)).astype(dtype)
        )
        new_updates = _adamw_step(
            exp_avg, exp_avg_sq, params, updates, 1, eps, mul(weight_decay, step)
        )
        return new_updates, DAdaptAdamWState(
            exp_avg,
            exp_avg_sq,
            grad_sum,
            estim_lr,
            numerator,
            tree_math.safe_increment(state.count),
        )

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


@recipe
def prodigy(
    learning_rate: ScalarOrSchedule = 1.0,
    betas: tuple[float | jax.Array, float | jax.Array] = (0.9, 0.999),
    beta3: float | jax.Array | None = None,
    eps: float | jax.Array = 1e-8,
    estim_lr0: float | jax.Array = 1e-6,
    estim_lr_coef: float | jax.Array = 1.0,
    weight_decay: float | jax.Array = 0.0,
    safeguard_warmup: bool = False,
) -> optax.GradientTransformationExtraArgs:
    r"""Prodigy: D-Adaptation AdamW with an estimate of $d$ that grows faster.

    With $d_t = \eta_t d \sqrt{1-\beta_2^t}/(1-\beta_1^t)$ and $d_0 =$
    ``estim_lr0``:

    $$
    \begin{aligned}
    m_t &= \beta_1 m_{t-1} + (1-\beta_1) d g_t, \quad
    v_t = \beta_2 v_{t-1} + (1-\beta_2) d^2 g_t^2, \\
    r_t &= \beta_3 r_{t-1} + \frac{d}{d_0} d_t
    \langle g_t, \theta_0 - \theta_{t-1} \rangle, \quad
    s_t = \beta_3 s_{t-1} + \frac{d_t}{d_0} d \, g_t, \\
    d &\leftarrow \max\left(d, \kappa \frac{r_t}{\lVert s_t \rVert_1}\right),
    \quad
    u_t = -\lambda d_t \theta_{t-1} - d_t \frac{m_t}{\sqrt{v_t} + d \epsilon}
    \end{aligned}
    $$

    ($m, v, s$ use $d$ before its update, the last step the updated one).
    With ``safeguard_warmup`` the factor $d_t$ in $s_t$ becomes $d$.

    Args:
        learning_rate: $\eta$, a factor on $d$ (a number >= 0 or a schedule;
            the authors recommend 1, or a warm-up and decay from 1).
        betas: $(\beta_1, \beta_2)$, each in $[0, 1)$.
        beta3: $\beta_3$ in $[0, 1)$; ``None`` means $\sqrt{\beta_2}$.
        eps: $\epsilon >= 0$, added outside the square root (scaled by $d$).
        estim_lr0: the initial estimate $d_0 > 0$ (an under-estimate).
        estim_lr_coef: $\kappa >= 0$, a factor on each new estimate.
        weight_decay: $\lambda >= 0$, decoupled weight decay.
        safeguard_warmup: leave $\eta_t$ out of $s_t$ (for warm-ups).

    Returns:
        An ``optax.GradientTransformationExtraArgs``; ``update`` needs
        ``params``.

    Example:
        >>> import jax, jax.numpy as jnp, optax, jaxopt_lite as jol
        >>> opt = jol.prodigy(estim_lr0=0.1)
        >>> params = jnp.array([1.0, -2.0])
        >>> state = opt.init(params)
        >>> for _ in range(3):
        ...     grads = jax.grad(lambda p: jnp.sum(p**2))(params)
        ...     updates, state = opt.update(grads, state, params)
        ...     params = optax.apply_updates(params, updates)
        >>> [round(float(x), 4) for x in params], round(float(state.estim_lr), 4)
        ([0.7016, -1.7006], 0.1)

    References:
        Mishchenko and Defazio, *Prodigy: An Expeditiously Adaptive
        Parameter-Free Learner*, 2024.
    """
    b1, b2 = _check_betas(betas)
    if beta3 is not None:
        validate.check_decay("beta3", beta3)
    _check_common(learning_rate, eps, estim_lr0, weight_decay)
    validate.check_nonnegative("estim_lr_coef", estim_lr_coef)
    validate.check_bool("safeguard_warmup", safeguard_warmup)

    def init_fn(params):
        params = tree_math.as_arrays(params)
        zeros = zeros_like(params)
        return ProdigyState(zeros, zeros, zeros, params, *_scalars(params, estim_lr0))

    def update_fn(updates, state, params=None, **extra_args):
        del extra_args
        validate.require_params("prodigy", params)
        updates, params = tree_math.as_arrays(updates), tree_math.as_arrays(params)
        d = state.estim_lr
        dtype = d.dtype
        b3 = _root(b2) if beta3 is None else beta3
        step = _base_step(learning_rate, b1, b2, d, state.count)
        inner = tree_math.tree_vdot(updates, optax.tree.sub(state.params0, params))
        scaled = _times(d, updates)
        exp_avg = _decayed(b1, state.exp_avg, _times(1 - b1, scaled))
        exp_avg_sq = _decayed(b2, state.exp_avg_sq, _times(1 - b2, scaled, scaled))
        weight = d if safeguard_warmup else step
        grad_sum = _decayed(
            b3,
            state.grad_sum,
            jax.tree.map(lambda x: div(mul(weight, x), estim_lr0), scaled),
        )
        numerator = add(
            mul(b3, state.numerator_weighted),
            mul(div(d, estim_lr0), step) * inner.astype(dtype),
        ).astype(dtype)
        estim_lr = _raised(
            d, mul(estim_lr_coef, numerator).astype(dtype), _l1(grad_sum, dtype)
        )
        new_updates = _adamw_step(
            exp_avg,
            exp_avg_sq,
            params,
            updates,
            step,
            mul(estim_lr, eps),
            mul(weight_decay, step),
        )
        return new_updates, ProdigyState(
            exp_avg,
            exp_avg_sq,
            grad_sum,
            state.params0,
            estim_lr,
            numerator,
            tree_math.safe_increment(state.count),
        )

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)
