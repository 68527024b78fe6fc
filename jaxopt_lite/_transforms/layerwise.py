"""Per-layer (per-leaf) normalised transforms: the trust ratio of LARS and LAMB,
and NovoGrad's layer-wise second moment."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import optax

from jaxopt_lite._core import tree_math, validate
from jaxopt_lite._core.dtypes import (
    add,
    div,
    mul,
    promote,
    state_dtype,
    zeros_like,
)
from jaxopt_lite._core.recipe import recipe
from jaxopt_lite._core.tree_math import safe_norm
from jaxopt_lite._core.validate import check_dtype

# optax's class itself, so that states compare equal to optax's as trees.
ScaleByTrustRatioState = optax.ScaleByTrustRatioState


@recipe
def scale_by_trust_ratio(
    min_norm: float | jax.Array = 0.0,
    trust_coefficient: float | jax.Array = 1.0,
    eps: float | jax.Array = 0.0,
) -> optax.GradientTransformation:
    r"""Rescale each leaf by the ratio of its parameter norm to its update norm.

    $$
    u \leftarrow \rho \, g, \qquad
    \rho = \begin{cases}
        1 & \lVert w \rVert = 0 \text{ or } \lVert g \rVert = 0 \\
        \kappa \dfrac{\max(\lVert w \rVert, n_0)}{\max(\lVert g \rVert, n_0)
            + \epsilon} & \text{otherwise}
    \end{cases}
    $$

    Norms are L2 norms of one leaf (a layer's weight vector or matrix), so
    every layer moves by a step proportional to its own size, as in LARS and
    LAMB.

    Args:
        min_norm: the floor $n_0$ of both norms, a finite number >= 0.
        trust_coefficient: the multiplier $\kappa$, a finite number >= 0.
        eps: $\epsilon$ added to the denominator, a finite number >= 0.

    Returns:
        An ``optax.GradientTransformation`` (``update`` needs ``params``).

    Example:
        >>> import jax.numpy as jnp, jaxopt_lite as jol
        >>> t = jol.scale_by_trust_ratio()
        >>> params = jnp.array([3.0, 4.0])
        >>> t.update(jnp.array([0.1, 0.0]), t.init(params), params)[0]
        Array([5., 0.], dtype=float32)

    References:
        You, Gitman and Ginsburg, *Large batch training of convolutional
        networks*, 2017.
    """
    validate.check_nonnegative("min_norm", min_norm)
    validate.check_nonnegative("trust_coefficient", trust_coefficient)
    validate.check_nonnegative("eps", eps)

    def one(g, p):
        param_norm = safe_norm(p, min_norm)
        update_norm = safe_norm(g, min_norm)
        ratio = div(mul(trust_coefficient, param_norm), add(update_norm, eps))
        ratio = jnp.where((param_norm == 0.0) | (update_norm == 0.0), 1.0, ratio)
        return mul(g, ratio).astype(g.dtype)

    def init_fn(params):
        del params
        return ScaleByTrustRatioState()

    def update_fn(updates, state, params=validate.MISSING):  # required, as in optax
        validate.require_params("scale_by_trust_ratio", params)
        return jax.tree.map(one, updates, params), state

    return optax.GradientTransformation(init_fn, update_fn)


# optax's class itself, so that states compare equal to optax's as trees.
ScaleByNovogradState = optax.ScaleByNovogradState


@recipe
def scale_by_novograd(
    b1: float | jax.Array = 0.9,
    b2: float | jax.Array = 0.25,
    eps: float | jax.Array = 1e-8,
    eps_root: float | jax.Array = 0.0,
    weight_decay: float | jax.Array = 0.0,
    mu_dtype: Any = None,
) -> optax.GradientTransformation:
    r"""NovoGrad's direction: gradients normalized by a per-layer second moment.

    $$
    \begin{aligned}
    v_t &= \beta_2 v_{t-1} + (1 - \beta_2) \lVert g_t \rVert^2
        \quad (v_1 = \lVert g_1 \rVert^2) \\
    m_t &= \beta_1 m_{t-1} + \frac{g_t}{\sqrt{v_t + \epsilon_r} + \epsilon}
        + \lambda w_t \quad (m_0 = 0), \qquad u_t = m_t
    \end{aligned}
    $$

    The second moment $v$ is one scalar per leaf (layer), which halves
    Adam's memory.

    Args:
        b1: the momentum decay $\beta_1$, in [0, 1).
        b2: the second-moment decay $\beta_2$, in [0, 1).
        eps: $\epsilon$ added outside the square root, a finite number >= 0.
        eps_root: $\epsilon_r$ added inside the square root, >= 0.
        weight_decay: the decoupled weight decay $\lambda$, >= 0.
        mu_dtype: dtype of the momentum (``None``: the parameters' dtype).

    Returns:
        An ``optax.GradientTransformation`` (``update`` needs ``params``).

    Example:
        >>> import jax.numpy as jnp, jaxopt_lite as jol
        >>> t = jol.scale_by_novograd(eps=0.0)
        >>> params = jnp.zeros(2)
        >>> t.update(jnp.array([3.0, 4.0]), t.init(params), params)[0]
        Array([0.6, 0.8], dtype=float32)

    References:
        Ginsburg et al., *Stochastic gradient methods with layer-wise adaptive
        moments for training of deep networks*, 2019.
    """
    validate.check_decay("b1", b1)
    validate.check_decay("b2", b2)
    validate.check_nonnegative("eps", eps)
    validate.check_nonnegative("eps_root", eps_root)
    validate.check_nonnegative("weight_decay", weight_decay)
    mu_dtype = check_dtype("mu_dtype", mu_dtype)

    def init_fn(params):
        mu = zeros_like(params, dtype=mu_dtype)
        nu = jax.tree.map(lambda p: jnp.zeros([], state_dtype(p, real=True)), params)
        return ScaleByNovogradState(count=jnp.zeros([], jnp.int32), mu=mu, nu=nu)

    def update_fn(updates, state, params=validate.MISSING):  # required, as in optax
        validate.require_params("scale_by_novograd", params)
        count = tree_math.safe_increment(state.count)
        first = count == 1

        def new_nu(g, n):
            sq = jnp.linalg.norm(g) ** 2  # (rounded as optax does)
            return jnp.where(first, *promote(sq, tree_math.ema(b2, n, sq))).astype(
                n.dtype
            )

        def new_mu(g, p, m, n):
            step = add(
                div(g, add(jnp.sqrt(add(n, eps_root)), eps)), mul(weight_decay, p)
            )
            return jnp.where(first, *promote(step, add(mul(b1, m), step))).astype(
                m.dtype
            )

        nu = jax.tree.map(new_nu, updates, state.nu)
        mu = jax.tree.map(new_mu, updates, params, state.mu, nu)
        new_updates = jax.tree.map(lambda m, g: m.astype(g.dtype), mu, updates)
        return new_updates, ScaleByNovogradState(count=count, mu=mu, nu=nu)

    return optax.GradientTransformation(init_fn, update_fn)
