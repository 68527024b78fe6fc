r"""Adam-like rescalings that divide the current gradient by the second moment
of the *previous* gradients, so that the two are independent: ACProp
(`scale_by_acprop`) and ADOPT (`scale_by_adopt`).

Both keep optax's states (``ScaleByBeliefState`` for ACProp,
``ScaleByAdamState`` for ADOPT: count, $\mu$, $\nu$); $\nu$ is real (built
from $|g|^2$) for complex parameters.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax

from jaxopt_lite._core import tree_math, validate
from jaxopt_lite._core.dtypes import add, div, promote, tree_compute_dtype
from jaxopt_lite._core.recipe import recipe
from jaxopt_lite._transforms.adam import ScaleByAdamState, _check_moments, _zero_state
from jaxopt_lite._transforms.adam_variants import ScaleByBeliefState


@recipe
def scale_by_acprop(
    b1: float | jax.Array = 0.9,
    b2: float | jax.Array = 0.999,
    eps: float | jax.Array = 1e-16,
    eps_root: float | jax.Array = 1e-16,
) -> optax.GradientTransformation:
    r"""Rescale updates by ACProp: the gradient over AdaBelief's previous spread.

    $$
    \mu_t = \beta_1 \mu_{t-1} + (1-\beta_1) g_t, \quad
    s_t = \beta_2 s_{t-1} + (1-\beta_2) |g_t - \mu_{t-1}|^2 + \epsilon_r, \quad
    u_t = \frac{g_t}{\sqrt{s_{t-1} / (1 - \beta_2^{t-1})} + \epsilon}
    $$

    The denominator only uses the gradients before $g_t$ (asynchronous
    update); at the first step it is $1 + \epsilon$. The state is that of
    `scale_by_belief`.

    Args:
        b1: $\beta_1$, in $[0, 1)$.
        b2: $\beta_2$, in $[0, 1)$.
        eps: $\epsilon >= 0$, added outside the square root.
        eps_root: $\epsilon_r >= 0$, added to $s_t$ at every step.

    Returns:
        An ``optax.GradientTransformation``.

    Example:
        >>> import jax.numpy as jnp, jaxopt_lite as jol
        >>> t = jol.scale_by_acprop(b1=0.5, b2=0.5, eps=0.0, eps_root=0.0)
        >>> u, state = t.update(jnp.array([2.0]), t.init(jnp.zeros(1)))
        >>> u, t.update(jnp.array([2.0]), state)[0]
        (Array([2.], dtype=float32), Array([1.], dtype=float32))

    References:
        Zhuang et al., *Momentum Centering and Asynchronous Update for
        Adaptive Gradient Methods*, 2021.
    """
    _check_moments(b1, b2, eps, eps_root)

    def init_fn(params):
        return ScaleByBeliefState(*_zero_state(params))

    def update_fn(updates, state, params=None):
        del params
        mu = tree_math.tree_update_moment(updates, state.mu, b1, 1)
        error = optax.tree.sub(updates, state.mu)
        nu = tree_math.tree_update_moment(error, state.nu, b2, 2)
        nu = jax.tree.map(lambda n: add(n, eps_root).astype(n.dtype), nu)
        first = state.count == 0
        # s_{t-1}, corrected for its own t - 1 steps (1 before any step).
        nu_prev = tree_math.tree_bias_correction(
            state.nu, b2, jnp.maximum(state.count, 1)
        )
        new_updates = jax.tree.map(
            lambda g, n: div(g, add(jnp.sqrt(jnp.where(first, 1, n)), eps)).astype(
                g.dtype
            ),
            updates,
            nu_prev,
        )
        return new_updates, ScaleByBeliefState(
            tree_math.safe_increment(state.count), mu, nu
        )

    return optax.GradientTransformation(init_fn, update_fn)


def _quarter_power(count: jax.Array) -> jax.Array:
    """ADOPT's default clipping bound $t^{1/4}$."""
    return count**0.25


@recipe
def scale_by_adopt(
    b1: float | jax.Array = 0.9,
    b2: float | jax.Array = 0.9999,
    eps: float | jax.Array = 1e-6,
    mu_dtype: Any = None,
    *,
    nesterov: bool = False,
    use_clipping: bool = True,
    clip_value_fn: Callable[[jax.Array], jax.Array] = _quarter_power,
) -> optax.GradientTransformation:
    r"""Rescale updates by ADOPT: momentum of pre-normalized gradients.

    Each gradient is divided by the root of the second moment of the
    previous ones, clipped, then averaged:

    $$
    n_t = \operatorname{clip}\left(\frac{g_t}{\max(\sqrt{\nu_{t-1}}, \epsilon)},
    \pm c(t-1)\right), \quad
    \mu_t = \beta_1 \mu_{t-1} + (1-\beta_1) n_t, \quad
    \nu_t = \beta_2 \nu_{t-1} + (1-\beta_2) |g_t|^2, \quad
    u_t = \mu_t
    $$

    The first step only records $\nu_1 = |g_1|^2$ and returns $u_1 = \mu_0 =
    0$. With ``nesterov`` the update is $\beta_1 \mu_t + (1-\beta_1) n_t$;
    without ``use_clipping`` $n_t$ is not clipped.

    Args:
        b1: $\beta_1$, in $[0, 1)$.
        b2: $\beta_2$, in $[0, 1)$.
        eps: $\epsilon >= 0$, the floor of $\sqrt{\nu}$.
        mu_dtype: dtype of $\mu$; ``None`` keeps the parameters' dtype.
        nesterov: use Nesterov momentum.
        use_clipping: clip the normalized gradient to $[-c, c]$.
        clip_value_fn: $c$, a function of the number of previous steps (given
            as a float array in the parameters' precision, so that the default
            $c(t) = t^{1/4}$ runs under strict dtype promotion; optax passes
            the int32 count).

    Returns:
        An ``optax.GradientTransformation``.

    Example:
        >>> import jax.numpy as jnp, jaxopt_lite as jol
        >>> t = jol.scale_by_adopt(b1=0.5, b2=0.5)
        >>> u, state = t.update(jnp.array([2.0]), t.init(jnp.zeros(1)))
        >>> u, t.update(jnp.array([-4.0]), state)[0]
        (Array([0.], dtype=float32), Array([-0.5], dtype=float32))

    References:
        Taniguchi et al., *ADOPT: Modified Adam Can Converge with Any
        $\beta_2$ with the Optimal Rate*, 2024.
    """
    _check_moments(b1, b2, eps)
    mu_dtype = validate.check_dtype("mu_dtype", mu_dtype)
    validate.check_bool("nesterov", nesterov)
    validate.check_bool("use_clipping", use_clipping)
    validate.check_callable("clip_value_fn", clip_value_fn)

    def init_fn(params):
        return _zero_state(params, mu_dtype)

    def update_fn(updates, state, params=None):
        del params
        started = state.count > 0
        b1_now = jnp.where(started, *promote(b1, 1.0))
        b2_now = jnp.where(started, *promote(b2, 0.0))
        nu = tree_math.tree_update_moment(updates, state.nu, b2_now, 2)
        bound = clip_value_fn(state.count.astype(tree_compute_dtype(updates)))

        def normalized(g, n):
            ratio = div(g, jnp.maximum(*promote(jnp.sqrt(n), eps)))
            if use_clipping:
                ratio = jnp.clip(*promote(ratio, -bound, bound))
            return ratio

        ratios = jax.tree.map(normalized, updates, state.nu)
        mu = jax.tree.map(lambda r, m: tree_math.ema(b1_now, m, r), ratios, state.mu)
        out = mu
        if nesterov:
            out = jax.tree.map(lambda r, m: tree_math.ema(b1_now, m, r), ratios, mu)
        new_updates = jax.tree.map(lambda g, o: o.astype(g.dtype), updates, out)
        mu = jax.tree.map(lambda m, old: m.astype(old.dtype), mu, state.mu)
        return new_updates, ScaleByAdamState(
            tree_math.safe_increment(state.count), mu, nu
        )

    return optax.GradientTransformation(init_fn, update_fn)
