"""Adam variants that change the step, not the moments: rectified Adam
(`scale_by_radam`), AdaBelief (`scale_by_belief`) and Yogi (`scale_by_yogi`)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from jaxopt_lite._core import tree_math, validate
from jaxopt_lite._core.dtypes import (
    add,
    full_like,
    mul,
    promote,
    real_full_like,
    sub,
)
from jaxopt_lite._core.recipe import recipe
from jaxopt_lite._core.validate import check_bool
from jaxopt_lite._transforms.adam import (
    ScaleByAdamState,
    _adam_ratio,
    _check_moments,
    _first_moment_hat,
    _zero_state,
)

# optax's class itself, so that states compare equal to optax's as trees.
ScaleByBeliefState = optax.ScaleByBeliefState


@recipe
def scale_by_radam(
    b1: float | jax.Array = 0.9,
    b2: float | jax.Array = 0.999,
    eps: float | jax.Array = 1e-8,
    eps_root: float | jax.Array = 0.0,
    threshold: float | jax.Array = 5.0,
    *,
    nesterov: bool = False,
) -> optax.GradientTransformation:
    r"""Rescale updates by Rectified Adam (RAdam).

    Adam's step is scaled by a variance rectification term, or replaced by
    plain momentum while the variance estimate is unreliable.

    $$
    \rho_\infty = \frac{2}{1-\beta_2} - 1, \quad
    \rho_t = \rho_\infty - \frac{2 t \beta_2^t}{1 - \beta_2^t}, \quad
    u_t = \begin{cases}
    r_t \, \dfrac{\hat\mu_t}{\sqrt{\hat\nu_t + \epsilon_r} + \epsilon}
        & \rho_t \ge \tau \\
    \hat\mu_t & \text{otherwise}
    \end{cases}
    $$

    with $r_t = \sqrt{\frac{(\rho_t - 4)(\rho_t - 2)\rho_\infty}
    {(\rho_\infty - 4)(\rho_\infty - 2)\rho_t}}$ and the moments of
    `scale_by_adam`.

    Args:
        b1: $\beta_1$, in $[0, 1)$.
        b2: $\beta_2$, in $[0, 1)$.
        eps: $\epsilon >= 0$, added outside the square root.
        eps_root: $\epsilon_r >= 0$, added inside the square root.
        threshold: $\tau$, the tractability threshold on $\rho_t$.
        nesterov: use Nesterov momentum for $\hat\mu_t$.

    Returns:
        An ``optax.GradientTransformation``.

    Example:
        >>> import jax.numpy as jnp, jaxopt_lite as jol
        >>> t = jol.scale_by_radam(b1=0.5)
        >>> t.update(jnp.array([2.0, -0.5]), t.init(jnp.zeros(2)))[0]
        Array([ 2. , -0.5], dtype=float32)

    References:
        Liu et al., *On the Variance of the Adaptive Learning Rate and
        Beyond*, 2020.
    """
    _check_moments(b1, b2, eps, eps_root)
    validate.check_range("threshold", threshold)
    check_bool("nesterov", nesterov)

    def init_fn(params):
        return _zero_state(params)

    def update_fn(updates, state, params=None):
        del params
        count = tree_math.safe_increment(state.count)
        mu = tree_math.tree_update_moment(updates, state.mu, b1, 1)
        nu = tree_math.tree_update_moment(updates, state.nu, b2, 2)
        mu_hat = _first_moment_hat(updates, mu, b1, count, nesterov)
        nu_hat = tree_math.tree_bias_correction(nu, b2, count)
        rho_inf = 2.0 / (1.0 - b2) - 1.0
        b2t = jax.lax.pow(jnp.asarray(b2), count)  # b2**count, float ** int
        twice = (2 * count).astype(b2t.dtype)  # 2t, in b2t's precision
        rho = rho_inf - twice * b2t / (1 - b2t)
        rect = jnp.sqrt(
            (rho - 4.0)
            * (rho - 2.0)
            * rho_inf
            / ((rho_inf - 4.0) * (rho_inf - 2.0) * rho)
        )
        adam_step = _adam_ratio(updates, mu_hat, nu_hat, eps, eps_root)
        new_updates = jax.tree.map(
            lambda g, a, m: jnp.where(
                jnp.greater_equal(*promote(rho, threshold)),
                *promote(rect.astype(a.dtype) * a, m),
            ).astype(g.dtype),
            updates,
            adam_step,
            mu_hat,
        )
        return new_updates, ScaleByAdamState(count, mu, nu)

    return optax.GradientTransformation(init_fn, update_fn)


@recipe
def scale_by_belief(
    b1: float | jax.Array = 0.9,
    b2: float | jax.Array = 0.999,
    eps: float | jax.Array = 1e-16,
    eps_root: float | jax.Array = 1e-16,
    *,
    nesterov: bool = False,
) -> optax.GradientTransformation:
    r"""Rescale updates by AdaBelief's moments (Adam on the prediction error).

    The second moment tracks the prediction error $g_t - \mu_t$ instead of
    $g_t$.

    $$
    \mu_t = \beta_1 \mu_{t-1} + (1-\beta_1) g_t, \quad
    s_t = \beta_2 s_{t-1} + (1-\beta_2) |g_t - \mu_t|^2 + \epsilon_r, \quad
    u_t = \frac{\hat\mu_t}{\sqrt{\hat s_t} + \epsilon}
    $$

    Hats are bias corrections as in `scale_by_adam`.

    Args:
        b1: $\beta_1$, in $[0, 1)$.
        b2: $\beta_2$, in $[0, 1)$.
        eps: $\epsilon >= 0$, added outside the square root.
        eps_root: $\epsilon_r >= 0$, added to $s_t$ at every step.
        nesterov: use Nesterov momentum for $\hat\mu_t$.

    Returns:
        An ``optax.GradientTransformation``.

    Example:
        >>> import jax.numpy as jnp, jaxopt_lite as jol
        >>> t = jol.scale_by_belief(b1=0.5, b2=0.75, eps=0.0, eps_root=0.0)
        >>> t.update(jnp.array([1.0]), t.init(jnp.zeros(1)))[0]
        Array([2.], dtype=float32)

    References:
        Zhuang et al., *AdaBelief Optimizer: Adapting Stepsizes by the Belief
        in Observed Gradients*, 2020.
    """
    _check_moments(b1, b2, eps, eps_root)
    check_bool("nesterov", nesterov)

    def init_fn(params):
        return ScaleByBeliefState(*_zero_state(params))

    def update_fn(updates, state, params=None):
        del params
        count = tree_math.safe_increment(state.count)
        mu = tree_math.tree_update_moment(updates, state.mu, b1, 1)
        error = optax.tree.sub(updates, mu)
        nu = tree_math.tree_update_moment(error, state.nu, b2, 2)
        nu = jax.tree.map(lambda n: add(n, eps_root).astype(n.dtype), nu)
        mu_hat = _first_moment_hat(updates, mu, b1, count, nesterov)
        nu_hat = tree_math.tree_bias_correction(nu, b2, count)
        new_updates = _adam_ratio(updates, mu_hat, nu_hat, eps, 0.0)
        return new_updates, ScaleByBeliefState(count, mu, nu)

    return optax.GradientTransformation(init_fn, update_fn)


@recipe
def scale_by_yogi(
    b1: float | jax.Array = 0.9,
    b2: float | jax.Array = 0.999,
    eps: float | jax.Array = 1e-3,
    eps_root: float | jax.Array = 0.0,
    initial_accumulator_value: float | jax.Array = 1e-6,
) -> optax.GradientTransformation:
    r"""Rescale updates by Yogi's moments (Adam with an additive second moment).

    The second moment grows or shrinks by at most $(1-\beta_2)|g_t|^2$ per
    step.

    $$
    \nu_t = \nu_{t-1} - (1-\beta_2)\,\mathrm{sign}(\nu_{t-1} - |g_t|^2)\,|g_t|^2,
    \quad
    u_t = \frac{\hat\mu_t}{\sqrt{\hat\nu_t + \epsilon_r} + \epsilon}
    $$

    with $\mu_t$ and the bias corrections of `scale_by_adam`, and both
    moments starting at ``initial_accumulator_value``.

    Args:
        b1: $\beta_1$, in $[0, 1)$.
        b2: $\beta_2$, in $[0, 1)$.
        eps: $\epsilon >= 0$, added outside the square root.
        eps_root: $\epsilon_r >= 0$, added inside the square root.
        initial_accumulator_value: $\mu_0 = \nu_0 >= 0$.

    Returns:
        An ``optax.GradientTransformation``.

    Example:
        >>> import jax.numpy as jnp, jaxopt_lite as jol
        >>> t = jol.scale_by_yogi(0.5, 0.75, eps=0.0, initial_accumulator_value=0.0)
        >>> t.update(jnp.array([2.0, -0.5]), t.init(jnp.zeros(2)))[0]
        Array([ 1., -1.], dtype=float32)

    References:
        Zaheer et al., *Adaptive Methods for Nonconvex Optimization*, 2018.
    """
    _check_moments(b1, b2, eps, eps_root)
    validate.check_nonnegative("initial_accumulator_value", initial_accumulator_value)

    def init_fn(params):
        return ScaleByAdamState(
            count=jnp.zeros([], jnp.int32),
            mu=full_like(params, initial_accumulator_value),
            nu=real_full_like(params, initial_accumulator_value),
        )

    def update_fn(updates, state, params=None):
        del params
        count = tree_math.safe_increment(state.count)
        mu = tree_math.tree_update_moment(updates, state.mu, b1, 1)

        def second(g, n):
            g2 = tree_math.abs_sq(g)
            return sub(n, mul(mul(1 - b2, jnp.sign(n - g2)), g2)).astype(n.dtype)

        nu = jax.tree.map(second, updates, state.nu)
        mu_hat = tree_math.tree_bias_correction(mu, b1, count)
        nu_hat = tree_math.tree_bias_correction(nu, b2, count)
        new_updates = _adam_ratio(updates, mu_hat, nu_hat, eps, eps_root)
        return new_updates, ScaleByAdamState(count, mu, nu)

    return optax.GradientTransformation(init_fn, update_fn)
