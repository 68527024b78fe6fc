"""Momentum: `trace` (heavy-ball and Nesterov) and the plain moving average used
by `adafactor`."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import optax

from jaxopt_lite._core import tree_math, validate
from jaxopt_lite._core.dtypes import add, cast_like, mul, promoted_dtype, zeros_like
from jaxopt_lite._core.recipe import recipe
from jaxopt_lite._core.validate import check_bool, check_dtype

# optax's class itself, so that states compare equal to optax's as trees.
TraceState = optax.TraceState


@recipe
def trace(
    decay: float | jax.Array,
    nesterov: bool = False,
    accumulator_dtype: Any = None,
) -> optax.GradientTransformation:
    r"""Heavy-ball momentum: keep a decaying sum of past updates.

    $$
    m_t = g_t + \beta \, m_{t-1}, \qquad
    u_t = \begin{cases} g_t + \beta \, m_t & \text{(Nesterov)} \\
    m_t & \text{(otherwise)} \end{cases}
    $$

    Unlike an exponential moving average, $g_t$ is not multiplied by
    $1 - \beta$.

    Args:
        decay: the momentum $\beta$, in $[0, 1]$.
        nesterov: use Nesterov's look-ahead form.
        accumulator_dtype: dtype of the buffer $m$; ``None`` keeps the dtype
            of the parameters.

    Returns:
        An ``optax.GradientTransformation``.

    Example:
        >>> import jax.numpy as jnp, jaxopt_lite as jol
        >>> t = jol.trace(0.5)
        >>> u, s = t.update(jnp.array([1.0]), t.init(jnp.zeros(1)))
        >>> t.update(jnp.array([1.0]), s)[0]
        Array([1.5], dtype=float32)

    References:
        Polyak, *Some methods of speeding up the convergence of iteration
        methods*, 1964.
        Sutskever et al., *On the importance of initialization and momentum in
        deep learning*, 2013.
    """
    validate.check_momentum("decay", decay)
    check_bool("nesterov", nesterov)
    accumulator_dtype = check_dtype("accumulator_dtype", accumulator_dtype)

    def init_fn(params):
        return TraceState(trace=zeros_like(params, dtype=accumulator_dtype))

    def update_fn(updates, state, params=None):
        del params

        def plus_decayed(g, m):  # g + decay * m; None updates stay None (optax)
            return None if g is None else add(g, mul(decay, m))

        none = lambda x: x is None
        new_trace = jax.tree.map(plus_decayed, updates, state.trace, is_leaf=none)
        if nesterov:
            out = jax.tree.map(plus_decayed, updates, new_trace, is_leaf=none)
        else:
            out = new_trace
        return cast_like(out, updates), TraceState(cast_like(new_trace, state.trace))

    return optax.GradientTransformation(init_fn, update_fn)


def momentum_ema(
    decay: Any, accumulator_dtype: Any = None
) -> optax.GradientTransformation:
    r"""Exponential moving average of the updates, without bias correction.

    $$
    m_t = \beta m_{t-1} + (1 - \beta) g_t, \qquad u_t = m_t
    $$

    The optional momentum of `adafactor` (private: its state is the
    ``optax.EmaState`` of ``optax.ema(decay, debias=False)``). For complex
    leaves the buffer uses the complex type of ``accumulator_dtype``'s
    precision (optax would drop the imaginary part).
    """

    def zeros(p):
        dtype = p.dtype if accumulator_dtype is None else accumulator_dtype
        if jnp.iscomplexobj(p):  # keep the imaginary part of complex steps
            dtype = promoted_dtype(dtype, p.dtype)
        return jnp.zeros_like(p, dtype)  # p's sharding too

    def init_fn(params):
        ema = jax.tree.map(zeros, params)
        return optax.EmaState(count=jnp.zeros([], jnp.int32), ema=ema)

    def update_fn(updates, state, params=None):
        del params
        # The updates come from the average before it is rounded to the
        # buffer's dtype (as optax.ema does; the same for float32 buffers).
        raw = jax.tree.map(lambda g, m: tree_math.ema(decay, m, g), updates, state.ema)
        out = cast_like(raw, updates)
        ema = cast_like(raw, state.ema)
        return out, optax.EmaState(tree_math.safe_increment(state.count), ema)

    return optax.GradientTransformation(init_fn, update_fn)
