r"""SM3's rescaling (`scale_by_sm3`): an AdaGrad-like second moment kept as
one accumulator per axis of each parameter array (memory: the sum of the
array's dimensions, not their product).

The accumulators are real (built from $|g|^2$, so complex parameters work) in
the parameters' real dtype; the momentum is kept in the parameters' dtype.
Updates come back in the gradients' dtype.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import optax

from jaxopt_lite._core import tree_math, validate
from jaxopt_lite._core.dtypes import add, mul, state_dtype, zeros_like
from jaxopt_lite._core.recipe import recipe

# optax's class itself, so that states compare equal to optax's as trees.
ScaleBySM3State = optax.ScaleBySM3State


def _cover(x: jax.Array) -> list[jax.Array]:
    """Zero accumulators for parameter ``x``: one per axis, or one shaped like
    ``x`` when it has fewer than two axes."""
    dtype = state_dtype(x, real=True)
    if jnp.ndim(x) < 2:  # shaped like x, and sharded like it
        return [jnp.zeros_like(x, dtype)]
    return [jnp.zeros((n,), dtype) for n in jnp.shape(x)]


def _along(acc: jax.Array, axis: int, ndim: int) -> jax.Array:
    """Accumulator ``acc`` of ``axis`` shaped to broadcast against a rank
    ``ndim`` array."""
    return acc.reshape([-1 if i == axis else 1 for i in range(ndim)])


@recipe
def scale_by_sm3(
    b1: float | jax.Array = 0.9,
    b2: float | jax.Array = 1.0,
    eps: float | jax.Array = 1e-8,
) -> optax.GradientTransformation:
    r"""Rescale updates by SM3's cover-based second moment, then average them.

    For a parameter array with $k \ge 2$ axes, axis $r$ keeps an accumulator
    $\mu^{(r)}$ of its length. Element $i$ reads the smallest accumulator
    among its axes:

    $$
    \begin{aligned}
    \nu_t(i) &= c\, |g_t(i)|^2 + \beta_2 \min_{r} \mu^{(r)}_{t-1}(i_r), \qquad
        c = \begin{cases} 1 & \beta_2 = 1 \\ 1 - \beta_2 & \text{otherwise}
        \end{cases} \\
    \mu^{(r)}_t(j) &= \max_{i : i_r = j} \nu_t(i), \qquad
    m_t = \beta_1 m_{t-1} + (1 - \beta_1) \frac{g_t}{\sqrt{\nu_t + \epsilon}}
    \end{aligned}
    $$

    and the update is $m_t$ (with $g/\sqrt{\cdot} = 0$ where $\nu_t = 0$).
    Arrays with fewer than two axes keep $\nu$ itself. With $\beta_2 = 1$
    (the default) this is SM3-II, an AdaGrad whose sums of squares are
    bounded through the cover of the axes.

    Args:
        b1: $\beta_1$, the momentum of the rescaled gradients, in $[0, 1)$.
        b2: $\beta_2$, in $[0, 1]$ (1: running sums, as in the paper).
        eps: $\epsilon >= 0$, added inside the square root.

    Returns:
        An ``optax.GradientTransformation``.

    Example:
        >>> import jax.numpy as jnp, jaxopt_lite as jol
        >>> t = jol.scale_by_sm3(b1=0.0, eps=0.0)
        >>> t.update(jnp.array([[3.0, -1.0], [0.0, 2.0]]), t.init(jnp.zeros((2, 2))))[0]
        Array([[ 1., -1.],
               [ 0.,  1.]], dtype=float32)

    References:
        Anil, Gupta, Koren and Singer, *Memory-Efficient Adaptive
        Optimization*, 2019.
    """
    validate.check_decay("b1", b1)
    validate.check_range("b2", b2, 0.0, 1.0)
    validate.check_nonnegative("eps", eps)

    def init_fn(params):
        return ScaleBySM3State(jax.tree.map(_cover, params), zeros_like(params))

    def second_moment(g, accumulators):
        if g.ndim < 2:
            previous = accumulators[0]
        else:
            previous = functools.reduce(
                jnp.minimum,
                [_along(a, r, g.ndim) for r, a in enumerate(accumulators)],
            )
        fresh = jnp.where(b2 == 1, 1.0, 1 - b2)
        return add(mul(fresh, tree_math.abs_sq(g)), mul(b2, previous))

    def covered(nu, accumulators):
        if nu.ndim < 2:
            return [nu.astype(accumulators[0].dtype)]
        axes = range(nu.ndim)
        return [
            jnp.max(nu, axis=tuple(i for i in axes if i != r)).astype(a.dtype)
            for r, a in enumerate(accumulators)
        ]

    def rescale(g, nu):
        inverse_root = jnp.where(nu > 0, jax.lax.rsqrt(add(nu, eps)), 0.0)
        return mul(g, inverse_root)

    def update_fn(updates, state, params=None):
        del params
        nu = jax.tree.map(second_moment, updates, state.mu)
        momentum = tree_math.tree_update_moment(
            jax.tree.map(rescale, updates, nu), state.nu, b1, 1
        )
        mu = jax.tree.map(covered, nu, state.mu)
        new_updates = jax.tree.map(lambda m, g: m.astype(g.dtype), momentum, updates)
        return new_updates, ScaleBySM3State(mu, momentum)

    return optax.GradientTransformation(init_fn, update_fn)
