r"""Mechanic: a learning-rate tuner around any optimizer (`mechanize`)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import optax.contrib

from jaxopt_lite._core import tree_math, validate
from jaxopt_lite._core.dtypes import add, div, mul, sub, tree_compute_dtype
from jaxopt_lite._core.recipe import recipe

MechanicState = optax.contrib.MechanicState
"""optax.contrib's class itself (so states equal optax's as trees): the base
optimizer's state, the update count (int32, saturating), the per-$\\beta$
vectors $r$, $m$, $v$ and scales $s$ (``num_betas`` values each, in the
parameters' precision) and the reference point $\\theta_0$ (``x0``, set at the
first update)."""


@recipe(static=("num_betas",))
def mechanize(
    base_optimizer: optax.GradientTransformation,
    weight_decay: float | jax.Array = 1e-2,
    eps: float | jax.Array = 1e-8,
    s_init: float | jax.Array = 1e-6,
    num_betas: int = 6,
) -> optax.GradientTransformationExtraArgs:
    r"""Mechanic: learn the scale of another optimizer's updates on the fly.

    The parameters are kept at $\theta_t = \theta_0 + (\sum_i s_i) \Delta_t$,
    where $\Delta_t$ sums the base optimizer's updates $b_t$ and the scales
    $s_i$ are bet by an online learner, one per $\beta_i = 1 - 10^{-i}$
    ($i = 1, \dots,$ ``num_betas``):

    $$
    \begin{aligned}
    \tilde g_t &= g_t + \lambda \Big(\sum_i s_i\Big)
    \frac{\lVert g_t \rVert}{\lVert \theta_{t-1} \rVert + \epsilon}\,\theta_{t-1},
    \quad
    h_t = \Big\langle \tilde g_t, \frac{\theta_0 - \theta_{t-1}}{\sum_i s_i
    + \epsilon} \Big\rangle, \\
    m_i &\leftarrow \max(\beta_i m_i, |h_t| + \epsilon), \quad
    v_i \leftarrow \beta_i^2 v_i + h_t^2, \quad
    r_i \leftarrow \beta_i r_i + \operatorname{clip}(h_t, \pm m_i^{\text{old}}) s_i, \\
    s_i &\leftarrow \frac{s_{\text{init}} m_i / n + (r_i)_+}{\sqrt{v_i} + \epsilon},
    \quad
    \theta_t = \theta_0 - \Big(\sum_i s_i\Big)
    \Big(\frac{\theta_0 - \theta_{t-1}}{\sum_i s_i^{\text{old}} + \epsilon}
    - b_t\Big)
    \end{aligned}
    $$

    and the update is $u_t = \theta_t - \theta_{t-1}$. $\theta_0$ is taken at
    the first update (so parameters replaced after ``init`` count); norms and
    inner products run over the whole tree. Keep the base optimizer's learning
    rate (or schedule peak) at about 1: Mechanic learns the scale.

    Args:
        base_optimizer: the optimizer whose updates are scaled (ours or
            optax's; extra keyword arguments of ``update`` reach it).
        weight_decay: $\lambda >= 0$, a decay added to the gradients Mechanic
            sees (not to the base optimizer's).
        eps: $\epsilon >= 0$.
        s_init: $s_{\text{init}} >= 0$, the initial scale of each $s_i$.
        num_betas: $n >= 1$, the number of $\beta_i$ (a Python int).

    Returns:
        An ``optax.GradientTransformationExtraArgs``; ``update`` needs
        ``params``.

    Example:
        >>> import jax, jax.numpy as jnp, optax, jaxopt_lite as jol
        >>> opt = jol.mechanize(jol.sgd(1.0), s_init=0.1)
        >>> params = jnp.array([1.0, -2.0])
        >>> state = opt.init(params)
        >>> for _ in range(3):
        ...     grads = jax.grad(lambda p: jnp.sum(p**2))(params)
        ...     updates, state = opt.update(grads, state, params)
        ...     params = optax.apply_updates(params, updates)
        >>> [round(float(x), 4) for x in params]
        [0.3167, -0.6335]

    References:
        Cutkosky, Defazio and Mehta, *Mechanic: A Learning Rate Tuner*, 2023.
    """
    validate.check_transform("base_optimizer", base_optimizer)
    validate.check_nonnegative("weight_decay", weight_decay)
    validate.check_nonnegative("eps", eps)
    validate.check_nonnegative("s_init", s_init)
    validate.check_int("num_betas", num_betas)
    base = optax.with_extra_args_support(base_optimizer)
    decays = np.array([1.0 - 0.1**i for i in range(1, num_betas + 1)])

    def init_fn(params):
        params = tree_math.as_arrays(params)
        dtype = tree_compute_dtype(params)
        zeros = jnp.zeros([num_betas], dtype)
        return MechanicState(
            base_optimizer_state=base.init(params),
            count=jnp.zeros([], jnp.int32),
            r=zeros,
            m=zeros,
            v=zeros,
            s=jnp.full([num_betas], s_init, dtype),
            x0=params,
        )

    def update_fn(updates, state, params=None, **extra_args):
        validate.require_params("mechanize", params)
        updates, params = tree_math.as_arrays(updates), tree_math.as_arrays(params)
        dtype = state.s.dtype
        base_updates, base_state = base.update(
            updates, state.base_optimizer_state, params, **extra_args
        )
        x0 = optax.tree.where(state.count == 0, params, state.x0)
        total = jnp.sum(state.s)
        coef = div(
            mul(mul(weight_decay, total), tree_math.tree_global_norm(updates)),
            add(tree_math.tree_global_norm(params), eps),
        ).astype(dtype)
        decayed = jax.tree.map(lambda g, p: add(g, mul(coef, p)), updates, params)
        previous = jax.tree.map(
            lambda a, p: div(sub(a, p), add(total, eps)), x0, params
        )
        h = tree_math.tree_vdot(decayed, previous).astype(dtype)
        betas = jnp.asarray(decays, dtype)
        m = jnp.maximum(betas * state.m, add(jnp.abs(h), eps).astype(dtype))
        var = betas**2 * state.v + h**2
        r = betas * state.r + jnp.clip(h, -state.m, state.m) * state.s
        wealth = mul(s_init / num_betas, m).astype(dtype) + jnp.maximum(r, 0)
        s = div(wealth, add(jnp.sqrt(var), eps)).astype(dtype)
        new_updates = jax.tree.map(
            lambda a, d, b, p, g: sub(sub(a, mul(jnp.sum(s), sub(d, b))), p).astype(
                g.dtype
            ),
            x0,
            previous,
            base_updates,
            params,
            updates,
        )
        count = tree_math.safe_increment(state.count)
        return new_updates, MechanicState(base_state, count, r, m, var, s, x0)

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)
