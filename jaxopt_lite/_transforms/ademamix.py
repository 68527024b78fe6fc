r"""AdEMAMix: Adam with a mixture of a fast and a slow moving average of the
gradients (`scale_by_ademamix`), and its simplified form with one
accumulated momentum (`scale_by_simplified_ademamix`).

Second moments are real (built from $|g|^2$) for complex parameters.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import optax
import optax.contrib

from jaxopt_lite._core import tree_math, validate
from jaxopt_lite._core.dtypes import add, mul, real_full_like, sub, zeros_like
from jaxopt_lite._core.recipe import recipe
from jaxopt_lite._transforms.adam import _adam_ratio, _check_moments
from jaxopt_lite._transforms.scaling import ScalarOrSchedule

ScaleByAdemamixState = optax.contrib.ScaleByAdemamixState
"""optax.contrib's class itself (so states equal optax's as trees): update
counts (int32, saturating) of the fast and of the slow average (``count_m2``
also indexes the schedules of $\\beta_3$ and $\\alpha$), the fast average
``m1``, the slow average ``m2`` and the second moment ``nu``."""


def _at(value: Any, count: jax.Array) -> Any:
    """A hyper-parameter that may be a schedule, at step ``count``."""
    return value(count) if callable(value) else value


@recipe
def scale_by_ademamix(
    b1: float | jax.Array = 0.9,
    b2: float | jax.Array = 0.999,
    b3: ScalarOrSchedule = 0.9999,
    alpha: ScalarOrSchedule = 6.0,
    eps: float | jax.Array = 1e-8,
    eps_root: float | jax.Array = 0.0,
    mu_dtype: Any = None,
) -> optax.GradientTransformation:
    r"""Rescale updates by AdEMAMix: Adam's fast average plus a slow one.

    $$
    m^{(1)}_t = \beta_1 m^{(1)}_{t-1} + (1-\beta_1) g_t, \quad
    m^{(2)}_t = \beta_3 m^{(2)}_{t-1} + (1-\beta_3) g_t, \quad
    \nu_t = \beta_2 \nu_{t-1} + (1-\beta_2) |g_t|^2,
    $$

    $$
    u_t = \frac{m^{(1)}_t / (1-\beta_1^t) + \alpha\, m^{(2)}_t}
    {\sqrt{\nu_t / (1-\beta_2^t) + \epsilon_r} + \epsilon}
    $$

    The slow average is not bias-corrected: it fills up over about
    $1/(1-\beta_3)$ steps, which is why $\beta_3$ and $\alpha$ may be
    schedules (warm-ups, in the paper).

    Args:
        b1: $\beta_1$, in $[0, 1)$.
        b2: $\beta_2$, in $[0, 1)$.
        b3: $\beta_3$, in $[0, 1)$, or a schedule of the step count.
        alpha: $\alpha$, the weight of the slow average (a number or a
            schedule).
        eps: $\epsilon >= 0$, added outside the square root.
        eps_root: $\epsilon_r >= 0$, added inside the square root.
        mu_dtype: dtype of both averages; ``None`` keeps the parameters'
            dtype. (optax also stores $\nu$ in this dtype; ours stays in the
            parameters' real dtype, like `scale_by_adam`'s.)

    Returns:
        An ``optax.GradientTransformation``.

    Example:
        >>> import jax.numpy as jnp, jaxopt_lite as jol
        >>> t = jol.scale_by_ademamix(b1=0.5, b2=0.75, b3=0.5, alpha=2.0, eps=0.0)
        >>> t.update(jnp.array([2.0, -0.5]), t.init(jnp.zeros(2)))[0]
        Array([ 2., -2.], dtype=float32)

    References:
        Pagliardini, Ablin and Grangier, *The AdEMAMix Optimizer: Better,
        Faster, Older*, 2024.
    """
    _check_moments(b1, b2, eps, eps_root)
    validate.check_range("b3", b3, 0.0, 1.0, high_closed=False, allow_schedule=True)
    validate.check_range("alpha", alpha, allow_schedule=True)
    mu_dtype = validate.check_dtype("mu_dtype", mu_dtype)

    def init_fn(params):
        zero = jnp.zeros([], jnp.int32)
        return ScaleByAdemamixState(
            count=zero,
            count_m2=zero,
            m1=zeros_like(params, dtype=mu_dtype),
            m2=zeros_like(params, dtype=mu_dtype),
            nu=real_full_like(params, 0.0),
        )

    def update_fn(updates, state, params=None):
        del params
        alpha_now = _at(alpha, state.count_m2)
        m1 = tree_math.tree_update_moment(updates, state.m1, b1, 1)
        m2 = tree_math.tree_update_moment(updates, state.m2, _at(b3, state.count_m2), 1)
        nu = tree_math.tree_update_moment(updates, state.nu, b2, 2)
        count = tree_math.safe_increment(state.count)
        m1_hat = tree_math.tree_bias_correction(m1, b1, count)
        mixed = jax.tree.map(lambda f, s: add(f, mul(alpha_now, s)), m1_hat, m2)
        nu_hat = tree_math.tree_bias_correction(nu, b2, count)
        new_updates = _adam_ratio(updates, mixed, nu_hat, eps, eps_root)
        return new_updates, ScaleByAdemamixState(
            count, tree_math.safe_increment(state.count_m2), m1, m2, nu
        )

    return optax.GradientTransformation(init_fn, update_fn)


ScaleBySimplifiedAdEMAMixState = optax.contrib.ScaleBySimplifiedAdEMAMixState
"""optax.contrib's class itself (so states equal optax's as trees): update
count ``t`` (int32, saturating), the accumulated momentum ``m`` and the second
moment ``n``."""


@recipe
def scale_by_simplified_ademamix(
    b1: float | jax.Array = 0.99,
    b2: float | jax.Array = 0.95,
    alpha: ScalarOrSchedule = 0.0,
    eps: float | jax.Array = 1e-8,
    eps_root: float | jax.Array = 0.0,
) -> optax.GradientTransformation:
    r"""Rescale updates by simplified AdEMAMix (a summed momentum, over RMS).

    The undamped momentum plus $\alpha$ times the gradient, over the root of
    Adam's second moment:

    $$
    m_t = \beta_1 m_{t-1} + g_t, \quad
    \nu_t = \beta_2 \nu_{t-1} + (1-\beta_2) |g_t|^2, \quad
    u_t = \frac{m_t + \alpha g_t}{\sqrt{\nu_t / (1-\beta_2^t) + \epsilon_r} + \epsilon}
    $$

    The momentum is a sum, not an average ($m_t$ grows to about
    $g / (1-\beta_1)$), and is not bias-corrected.

    Args:
        b1: $\beta_1$, in $[0, 1]$.
        b2: $\beta_2$, in $[0, 1)$.
        alpha: $\alpha$, the weight of the current gradient (a number or a
            schedule of the step count).
        eps: $\epsilon >= 0$, added outside the square root.
        eps_root: $\epsilon_r >= 0$, added inside the square root.

    Returns:
        An ``optax.GradientTransformation``.

    Example:
        >>> import jax.numpy as jnp, jaxopt_lite as jol
        >>> t = jol.scale_by_simplified_ademamix(b1=0.5, alpha=1.0, eps=0.0)
        >>> u, state = t.update(jnp.array([2.0]), t.init(jnp.zeros(1)))
        >>> u, t.update(jnp.array([2.0]), state)[0]
        (Array([2.], dtype=float32), Array([2.5], dtype=float32))

    References:
        Morwani et al., *Connections between Schedule-Free Optimizers,
        AdEMAMix, and Accelerated SGD Variants*, 2025.
    """
    validate.check_momentum("b1", b1)
    validate.check_decay("b2", b2)
    validate.check_range("alpha", alpha, allow_schedule=True)
    validate.check_nonnegative("eps", eps)
    validate.check_nonnegative("eps_root", eps_root)

    def init_fn(params):
        return ScaleBySimplifiedAdEMAMixState(
            t=jnp.zeros([], jnp.int32),
            m=zeros_like(params),
            n=real_full_like(params, 0.0),
        )

    def update_fn(updates, state, params=None):
        del params
        alpha_now = _at(alpha, state.t)
        none = lambda x: x is None  # None updates stay None, as in the moments

        def momentum(g, m):
            return None if g is None else add(g, mul(b1, m)).astype(m.dtype)

        def second_moment(g, n):  # g^2 + b2 (n - g^2): optax's order of operations
            if g is None:
                return None
            g2 = tree_math.abs_sq(g)
            return add(g2, mul(b2, sub(n, g2))).astype(n.dtype)

        m = jax.tree.map(momentum, updates, state.m, is_leaf=none)
        n = jax.tree.map(second_moment, updates, state.n, is_leaf=none)
        t = tree_math.safe_increment(state.t)
        n_hat = tree_math.tree_bias_correction(n, b2, t)
        numerator = jax.tree.map(lambda m, g: add(m, mul(alpha_now, g)), m, updates)
        new_updates = _adam_ratio(updates, numerator, n_hat, eps, eps_root)
        return new_updates, ScaleBySimplifiedAdEMAMixState(t, m, n)

    return optax.GradientTransformation(init_fn, update_fn)
