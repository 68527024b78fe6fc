"""Learning-rate schedules: pure ``step -> value`` functions.

Each factory checks its concrete arguments, then returns a closure made of
``jnp`` operations only, so a schedule can be jitted, vmapped and fed the int32
step counter of a compiled loop. Hyper-parameters may be Python numbers,
arrays or traced values: nothing branches in Python on their values, so one
can be swept with ``jax.vmap`` or passed as a ``jax.jit`` argument without
recompiling. Traced values are not checked.

A schedule accepts a step (an integer of any size, an integer array such as
an optimizer's int32 count, or a float; an array of steps gives an array of
values) and returns the promoted dtype of its float hyper-parameters, at
least the default float (float32, or float64 with x64); the arithmetic runs
in that dtype, float32 or wider, whatever the step's dtype (``base.py``
says how).

Names, arguments and defaults mirror optax's schedules and give the same
numbers, including optax's constant schedules for ``transition_steps <= 0``
(polynomial, linear and exponential schedules) and ``decay_rate=0``
(exponential ones). Values that optax turns into NaN or silently reinterprets
are rejected with a ``ValueError``: ``decay_rate < 0``, a negative
``transition_begin``, ``warmup_steps=0`` in `warmup_constant_schedule`,
powers and exponents ``<= 0`` (docs/optax-differences.md lists them).
Every schedule returns its end points exactly, compiled or not, and stays
between them (optax's can miss an end by a rounding error under ``jit``,
give NaN for powers below 1, or start a warm-up from 0.0 below 0).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from jaxopt_lite._core import validate
from jaxopt_lite._core.dtypes import compute_dtype, mul
from jaxopt_lite._core.recipe import recipe
from jaxopt_lite._schedules import base


@recipe
def constant_schedule(value: ArrayLike) -> base.Schedule:
    r"""A schedule that always returns the same value.

    $$
    \eta_t = v
    $$

    Args:
        value: the value $v$ (a finite number or array).

    Returns:
        A schedule ``step -> value`` (an array shaped like ``step`` broadcast
        with ``value``).

    Example:
        >>> import jaxopt_lite as jol
        >>> jol.constant_schedule(0.1)(1000)
        Array(0.1, dtype=float32)
    """
    validate.check_range("value", value)
    dtype = base.result_dtype(value)

    def schedule(step):
        shape = jnp.broadcast_shapes(jnp.shape(value), jnp.shape(step))
        return jnp.broadcast_to(jnp.asarray(value).astype(dtype), shape)

    return schedule


@recipe
def polynomial_schedule(
    init_value: ArrayLike,
    end_value: ArrayLike,
    power: ArrayLike,
    transition_steps: ArrayLike,
    transition_begin: ArrayLike = 0,
) -> base.Schedule:
    r"""Move from ``init_value`` to ``end_value`` along a polynomial.

    $$
    \eta_t = (\eta_0 - \eta_{\text{end}})
        \left(1 - \frac{\min(\max(t - t_0, 0), T)}{T}\right)^{p}
        + \eta_{\text{end}}
    $$

    The value is $\eta_0$ up to step $t_0$, reaches
    $\eta_{\text{end}}$ at step $t_0 + T$ and stays there.

    Args:
        init_value: the starting value $\eta_0$.
        end_value: the final value $\eta_{\text{end}}$.
        power: the exponent $p > 0$ (1 is `linear_schedule`).
        transition_steps: the length $T$ of the transition; $T \le 0$ gives
            the constant $\eta_0$ (as in optax).
        transition_begin: the step $t_0 \ge 0$ where the transition starts.

    Returns:
        A schedule ``step -> value``.

    Example:
        >>> import jax.numpy as jnp, jaxopt_lite as jol
        >>> sched = jol.polynomial_schedule(1.0, 0.0, power=2, transition_steps=4)
        >>> sched(jnp.arange(6))
        Array([1.    , 0.5625, 0.25  , 0.0625, 0.    , 0.    ], dtype=float32)
    """
    validate.check_range("init_value", init_value)
    validate.check_range("end_value", end_value)
    validate.check_positive("power", power)
    validate.check_range("transition_steps", transition_steps)
    validate.check_nonnegative("transition_begin", transition_begin)
    dtype = base.result_dtype(init_value, end_value, power)
    return base.polynomial(
        init_value,
        end_value,
        power,
        transition_steps,
        transition_begin,
        dtype,
        empty="init",
    )


@recipe
def linear_schedule(
    init_value: ArrayLike,
    end_value: ArrayLike,
    transition_steps: ArrayLike,
    transition_begin: ArrayLike = 0,
) -> base.Schedule:
    r"""Move linearly from ``init_value`` to ``end_value``.

    $$
    \eta_t = \eta_0 + (\eta_{\text{end}} - \eta_0)
        \frac{\min(\max(t - t_0, 0), T)}{T}
    $$

    Args:
        init_value: the starting value $\eta_0$.
        end_value: the final value $\eta_{\text{end}}$.
        transition_steps: the length $T$ of the transition; $T \le 0$ gives
            the constant $\eta_0$ (as in optax).
        transition_begin: the step $t_0 \ge 0$ where the transition starts.

    Returns:
        A schedule ``step -> value``.

    Example:
        >>> import jax.numpy as jnp, jaxopt_lite as jol
        >>> sched = jol.linear_schedule(
        ...     1.0, 0.5, transition_steps=2, transition_begin=1)
        >>> sched(jnp.arange(5))
        Array([1.  , 1.  , 0.75, 0.5 , 0.5 ], dtype=float32)
    """
    validate.check_range("init_value", init_value)
    validate.check_range("end_value", end_value)
    validate.check_range("transition_steps", transition_steps)
    validate.check_nonnegative("transition_begin", transition_begin)
    dtype = base.result_dtype(init_value, end_value)
    return base.polynomial(
        init_value, end_value, 1, transition_steps, transition_begin, dtype, "init"
    )


@recipe
def exponential_decay(
    init_value: ArrayLike,
    transition_steps: ArrayLike,
    decay_rate: ArrayLike,
    transition_begin: ArrayLike = 0,
    staircase: bool | jax.Array = False,
    end_value: ArrayLike | None = None,
) -> base.Schedule:
    r"""Multiply the value by ``decay_rate`` every ``transition_steps`` steps.

    $$
    \eta_t = \begin{cases}
        \eta_0, & t \le t_0, \\
        \eta_0 \, \gamma^{(t - t_0)/T}, & t > t_0,
    \end{cases}
    $$

    where $\gamma$ is ``decay_rate``, $T$ is ``transition_steps`` and $t_0$ is
    ``transition_begin``. With ``staircase=True`` the exponent is rounded down,
    $\lfloor (t - t_0)/T \rfloor$, so the value drops by $\gamma$ at once every
    $T$ steps instead of continuously.

    $\gamma < 1$ is a decay; $\gamma > 1$ is growth (allowed, as in optax) and
    $\gamma = 1$ is constant. When ``end_value`` is given the value never
    crosses it: $\eta_t \leftarrow \max(\eta_t, \eta_{\text{end}})$ when
    $\gamma < 1$, else $\min(\eta_t, \eta_{\text{end}})$. The bound applies at
    every step, including those before $t_0$.

    Args:
        init_value: the starting value $\eta_0$.
        transition_steps: $T$, the number of steps over which the value is
            multiplied by $\gamma$ once; $T \le 0$ gives the constant
            $\eta_0$ (as in optax).
        decay_rate: $\gamma \ge 0$; $\gamma = 0$ gives the constant
            $\eta_0$ (as in optax).
        transition_begin: $t_0 \ge 0$; the value is held at $\eta_0$ up to and
            including this step, and the decay is counted from it.
        staircase: round the exponent down (a bool, possibly a traced one).
        end_value: an optional bound $\eta_{\text{end}}$ (lower when decaying,
            upper when growing).

    Returns:
        A schedule ``step -> value``.

    Example:
        >>> import jax.numpy as jnp, jaxopt_lite as jol
        >>> sched = jol.exponential_decay(1.0, transition_steps=2, decay_rate=0.5)
        >>> sched(jnp.array([0, 2, 4, 6]))
        Array([1.   , 0.5  , 0.25 , 0.125], dtype=float32)
        >>> stairs = jol.exponential_decay(
        ...     1.0, 2, 0.5, transition_begin=1, staircase=True, end_value=0.3)
        >>> stairs(jnp.arange(7))
        Array([1. , 1. , 1. , 0.5, 0.5, 0.3, 0.3], dtype=float32)
    """
    validate.check_range("init_value", init_value)
    decay = (transition_steps, decay_rate, transition_begin, staircase, end_value)
    base.check_exponential(*decay)
    dtype = base.result_dtype(init_value, decay_rate, end_value)
    return base.exponential(init_value, *decay, dtype)


@recipe
def cosine_decay_schedule(
    init_value: ArrayLike,
    decay_steps: ArrayLike,
    alpha: ArrayLike = 0.0,
    exponent: ArrayLike = 1.0,
) -> base.Schedule:
    r"""Decay along half a cosine period, from ``init_value`` to ``alpha * init_value``.

    $$
    \eta_t = \eta_0 \left[(1 - \alpha)
        \left(\frac{1 + \cos(\pi \min(t, T) / T)}{2}\right)^{p} + \alpha\right]
    $$

    Args:
        init_value: the starting value $\eta_0$.
        decay_steps: the length $T > 0$ of the decay.
        alpha: the final value as a fraction of $\eta_0$.
        exponent: $p > 0$, applied to the cosine factor.

    Returns:
        A schedule ``step -> value``.

    Example:
        >>> import jax.numpy as jnp, jaxopt_lite as jol
        >>> sched = jol.cosine_decay_schedule(1.0, decay_steps=4, alpha=0.1)
        >>> [round(x, 4) for x in sched(jnp.array([0, 2, 4, 8])).tolist()]
        [1.0, 0.55, 0.1, 0.1]

    References:
        Loshchilov and Hutter, *SGDR: Stochastic Gradient Descent with Warm
        Restarts*, 2017.
    """
    validate.check_range("init_value", init_value)
    validate.check_positive("decay_steps", decay_steps)
    validate.check_range("alpha", alpha)
    validate.check_positive("exponent", exponent)
    dtype = base.result_dtype(init_value, alpha, exponent)
    ct = compute_dtype(dtype)
    init = base.lift(init_value, ct)
    end = mul(init, base.lift(alpha, ct))
    return base.cosine(init, end, decay_steps, exponent, dtype)


@recipe
def step_decay(
    init_value: ArrayLike, step_size: ArrayLike, gamma: ArrayLike = 0.1
) -> base.Schedule:
    r"""Multiply the value by ``gamma`` every ``step_size`` steps (PyTorch ``StepLR``).

    $$
    \eta_t = \eta_0 \, \gamma^{\lfloor t / s \rfloor}
    $$

    Equals ``exponential_decay(init_value, step_size, gamma, staircase=True)``;
    the floor is taken in integer arithmetic when the step and ``step_size``
    are integers.

    Args:
        init_value: the starting value $\eta_0$.
        step_size: $s > 0$, the number of steps between drops.
        gamma: $\gamma > 0$, the factor applied at each drop.

    Returns:
        A schedule ``step -> value``.

    Example:
        >>> import jax.numpy as jnp, jaxopt_lite as jol
        >>> jol.step_decay(1.0, step_size=2, gamma=0.5)(jnp.arange(6))
        Array([1.  , 1.  , 0.5 , 0.5 , 0.25, 0.25], dtype=float32)
    """
    validate.check_range("init_value", init_value)
    validate.check_positive("step_size", step_size)
    validate.check_positive("gamma", gamma)
    dtype = base.result_dtype(init_value, gamma)
    ct = compute_dtype(dtype)
    init, gamma = base.lift(init_value, ct), base.lift(gamma, ct)

    def schedule(step):
        drops = base.floor_ratio(step, 0, step_size, ct)
        return jnp.asarray(init * jnp.power(gamma, drops)).astype(dtype)

    return schedule


@recipe
def inverse_time_decay(
    init_value: ArrayLike,
    decay_steps: ArrayLike,
    decay_rate: ArrayLike,
    staircase: bool | jax.Array = False,
) -> base.Schedule:
    r"""Decay as one over time (Keras's ``InverseTimeDecay``).

    $$
    \eta_t = \frac{\eta_0}{1 + r \, t / T}
    \qquad \left(\frac{\eta_0}{1 + r \lfloor t / T \rfloor}
        \text{ with staircase}\right)
    $$

    Args:
        init_value: the starting value $\eta_0$.
        decay_steps: $T > 0$; the value is $\eta_0 / (1 + r)$ at step $T$.
        decay_rate: $r \ge 0$.
        staircase: round $t / T$ down (a bool, possibly a traced one).

    Returns:
        A schedule ``step -> value``.

    Example:
        >>> import jax.numpy as jnp, jaxopt_lite as jol
        >>> sched = jol.inverse_time_decay(1.0, decay_steps=2, decay_rate=1.0)
        >>> sched(jnp.array([0, 2, 6]))
        Array([1.  , 0.5 , 0.25], dtype=float32)
        >>> stairs = jol.inverse_time_decay(1.0, 2, 1.0, staircase=True)
        >>> stairs(jnp.array([1, 3, 5]))
        Array([1.        , 0.5       , 0.33333334], dtype=float32)

    References:
        Robbins and Monro, *A Stochastic Approximation Method*, 1951.
    """
    validate.check_range("init_value", init_value)
    validate.check_positive("decay_steps", decay_steps)
    validate.check_nonnegative("decay_rate", decay_rate)
    validate.check_flag("staircase", staircase)
    dtype = base.result_dtype(init_value, decay_rate)
    ct = compute_dtype(dtype)
    init, rate = base.lift(init_value, ct), base.lift(decay_rate, ct)

    def schedule(step):
        progress = base.ratio(base.time(step, ct), base.time(decay_steps, ct))
        if staircase is not False:  # a Python False needs no floor (a flag)
            floor = base.floor_ratio(step, 0, decay_steps, ct)
            progress = jnp.where(staircase, floor, progress)
        return jnp.asarray(init / (1 + rate * progress)).astype(dtype)

    return schedule
