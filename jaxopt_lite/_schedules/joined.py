"""Schedules made of others run one after another: warmups, SGDR restarts and
`join_schedules`.

The shared checks, dtype helpers and unchecked builders live in
``_schedules``; see its docstring for the conventions all schedules follow.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from jaxopt_lite._core import validate
from jaxopt_lite._core.dtypes import compute_dtype
from jaxopt_lite._core.recipe import recipe
from jaxopt_lite._schedules import base


@recipe
def warmup_cosine_decay_schedule(
    init_value: ArrayLike,
    peak_value: ArrayLike,
    warmup_steps: ArrayLike,
    decay_steps: ArrayLike,
    end_value: ArrayLike = 0.0,
    exponent: ArrayLike = 1.0,
) -> base.Schedule:
    r"""Linear warmup to ``peak_value``, then cosine decay to ``end_value``.

    $$
    \eta_t = \begin{cases}
        \eta_0 + (\eta_{\text{peak}} - \eta_0)\, t / W, & t < W, \\
        \eta_{\text{peak}} \left[(1 - \alpha)\, c_{t - W}^{\,p} + \alpha\right],
            & t \ge W,
    \end{cases}
    \qquad
    c_s = \frac{1 + \cos\left(\pi \frac{\min(s, D - W)}{D - W}\right)}{2}
    $$

    with $\alpha = \eta_{\text{end}} / \eta_{\text{peak}}$ ($0$ when
    $\eta_{\text{peak}} = 0$). ``decay_steps`` $D$ counts the warmup too.

    Args:
        init_value: the value $\eta_0$ at step 0.
        peak_value: the value $\eta_{\text{peak}}$ at the end of the warmup.
        warmup_steps: $W \ge 0$ (0: no warmup).
        decay_steps: $D > W$, the total length of the schedule.
        end_value: the value $\eta_{\text{end}}$ from step $D$ on.
        exponent: $p > 0$, applied to the cosine factor.

    Returns:
        A schedule ``step -> value``.

    Example:
        >>> import jax.numpy as jnp, jaxopt_lite as jol
        >>> sched = jol.warmup_cosine_decay_schedule(0.0, 1.0, 2, 6, end_value=0.2)
        >>> [round(x, 4) for x in sched(jnp.array([0, 1, 2, 4, 6, 9])).tolist()]
        [0.0, 0.5, 1.0, 0.6, 0.2, 0.2]

    References:
        Goyal et al., *Accurate, Large Minibatch SGD: Training ImageNet in
        1 Hour*, 2017. Loshchilov and Hutter, *SGDR: Stochastic Gradient
        Descent with Warm Restarts*, 2017.
    """
    validate.check_range("init_value", init_value)
    validate.check_range("peak_value", peak_value)
    validate.check_nonnegative("warmup_steps", warmup_steps)
    validate.check_positive("decay_steps", decay_steps)
    validate.check_less(
        "warmup_steps", warmup_steps, "decay_steps", decay_steps, strict=True
    )
    validate.check_range("end_value", end_value)
    validate.check_positive("exponent", exponent)
    dtype = base.result_dtype(init_value, peak_value, end_value, exponent)
    ct = compute_dtype(dtype)
    peak, end = base.lift(peak_value, ct), base.lift(end_value, ct)
    # optax decays to peak * (end / peak), hence to 0 when the peak is 0.
    end = jnp.where(peak == 0, 0.0, end).astype(ct)
    warmup = base.polynomial(init_value, peak_value, 1, warmup_steps, 0, dtype)
    cosine_steps = base.offset(decay_steps, warmup_steps, ct)
    decay = base.cosine(peak, end, cosine_steps, exponent, dtype)
    return base.join([warmup, decay], [warmup_steps])


@recipe
def warmup_exponential_decay_schedule(
    init_value: ArrayLike,
    peak_value: ArrayLike,
    warmup_steps: ArrayLike,
    transition_steps: ArrayLike,
    decay_rate: ArrayLike,
    transition_begin: ArrayLike = 0,
    staircase: bool | jax.Array = False,
    end_value: ArrayLike | None = None,
) -> base.Schedule:
    r"""Linear warmup to ``peak_value``, then `exponential_decay` from it.

    $$
    \eta_t = \begin{cases}
        \eta_0 + (\eta_{\text{peak}} - \eta_0)\, t / W, & t < W, \\
        \text{exponential\_decay}(\eta_{\text{peak}}, T, \gamma, t_0)(t - W),
            & t \ge W,
    \end{cases}
    $$

    so the decay is held for $t_0$ steps after the warmup.

    Args:
        init_value: the value $\eta_0$ at step 0.
        peak_value: the value $\eta_{\text{peak}}$ at the end of the warmup.
        warmup_steps: $W \ge 0$ (0: no warmup).
        transition_steps: $T$, see `exponential_decay`.
        decay_rate: $\gamma \ge 0$ ($\gamma = 0$, like ``transition_steps
            <= 0``, keeps the peak value after the warmup, as in optax).
        transition_begin: $t_0 \ge 0$, counted from the end of the warmup.
        staircase: round the decay exponent down.
        end_value: an optional bound for the decay.

    Returns:
        A schedule ``step -> value``.

    Example:
        >>> import jax.numpy as jnp, jaxopt_lite as jol
        >>> sched = jol.warmup_exponential_decay_schedule(0.0, 1.0, 2, 1, 0.5)
        >>> sched(jnp.arange(6))
        Array([0.   , 0.5  , 1.   , 0.5  , 0.25 , 0.125], dtype=float32)
    """
    validate.check_range("init_value", init_value)
    validate.check_range("peak_value", peak_value)
    validate.check_nonnegative("warmup_steps", warmup_steps)
    decay = (transition_steps, decay_rate, transition_begin, staircase, end_value)
    base.check_exponential(*decay)
    dtype = base.result_dtype(init_value, peak_value, decay_rate, end_value)
    warmup = base.polynomial(init_value, peak_value, 1, warmup_steps, 0, dtype)
    return base.join(
        [warmup, base.exponential(peak_value, *decay, dtype)], [warmup_steps]
    )


@recipe
def warmup_constant_schedule(
    init_value: ArrayLike, peak_value: ArrayLike, warmup_steps: ArrayLike
) -> base.Schedule:
    r"""Linear warmup to ``peak_value``, then constant.

    $$
    \eta_t = \eta_0 + (\eta_{\text{peak}} - \eta_0) \frac{\min(t, W)}{W}
    $$

    Args:
        init_value: the value $\eta_0$ at step 0.
        peak_value: the value $\eta_{\text{peak}}$ from step $W$ on.
        warmup_steps: $W > 0$ (for no warmup use `constant_schedule`).

    Returns:
        A schedule ``step -> value``.

    Example:
        >>> import jax.numpy as jnp, jaxopt_lite as jol
        >>> jol.warmup_constant_schedule(0.0, 1.0, 4)(jnp.array([0, 1, 4, 9]))
        Array([0.  , 0.25, 1.  , 1.  ], dtype=float32)

    References:
        Goyal et al., *Accurate, Large Minibatch SGD: Training ImageNet in
        1 Hour*, 2017.
    """
    validate.check_range("init_value", init_value)
    validate.check_range("peak_value", peak_value)
    validate.check_positive("warmup_steps", warmup_steps)
    dtype = base.result_dtype(init_value, peak_value)
    return base.polynomial(init_value, peak_value, 1, warmup_steps, 0, dtype)


@recipe
def sgdr_schedule(cosine_kwargs: Iterable[Mapping[str, ArrayLike]]) -> base.Schedule:
    r"""Stochastic gradient descent with warm restarts: cosine cycles back to back.

    Cycle $k$ is ``warmup_cosine_decay_schedule(**cosine_kwargs[k])``, of
    length $D_k$ (its ``decay_steps``), started at $B_k = \sum_{j<k} D_j$:

    $$
    \eta_t = s_k(t - B_k), \qquad B_k \le t < B_{k+1}
    $$

    and the last cycle continues after its end.

    Args:
        cosine_kwargs: one dict of `warmup_cosine_decay_schedule` arguments
            per cycle (at least one).

    Returns:
        A schedule ``step -> value``.

    Example:
        >>> import jax.numpy as jnp, jaxopt_lite as jol
        >>> cycle = dict(init_value=1.0, peak_value=1.0, warmup_steps=0, decay_steps=2)
        >>> sched = jol.sgdr_schedule([cycle, cycle])
        >>> [round(x, 4) for x in sched(jnp.arange(5)).tolist()]
        [1.0, 0.5, 1.0, 0.5, 0.0]

    References:
        Loshchilov and Hutter, *SGDR: Stochastic Gradient Descent with Warm
        Restarts*, 2017.
    """
    if isinstance(cosine_kwargs, Mapping) or not isinstance(cosine_kwargs, Iterable):
        raise TypeError(
            f"cosine_kwargs must be a list of dicts, got {cosine_kwargs!r}."
        )
    cycles = list(cosine_kwargs)
    if not cycles:
        raise ValueError("cosine_kwargs=[] is not allowed: give at least one cycle.")
    schedules, starts, start = [], [], 0
    for i, kwargs in enumerate(cycles):
        if not isinstance(kwargs, Mapping):
            raise TypeError(f"cosine_kwargs[{i}] must be a dict, got {kwargs!r}.")
        try:
            schedules.append(warmup_cosine_decay_schedule(**kwargs))
        except (TypeError, ValueError) as error:
            raise type(error)(f"cosine_kwargs[{i}]: {error}") from error
        start = start + kwargs["decay_steps"]
        starts.append(start)
    return base.join(schedules, starts[:-1])


@recipe
def join_schedules(
    schedules: Sequence[base.Schedule], boundaries: Sequence[ArrayLike]
) -> base.Schedule:
    r"""Run schedules one after the other, each restarted from step 0.

    With boundaries $b_1 \le \dots \le b_k$ (and $b_0 = 0$):

    $$
    \eta_t = s_i(t - b_i), \qquad b_i \le t < b_{i+1}
    $$

    The first schedule also covers steps before $b_1$ and the last one all
    steps from $b_k$ on.

    Args:
        schedules: $k + 1$ schedules ``step -> value``.
        boundaries: $k$ non-decreasing steps where the next schedule takes over.

    Returns:
        A schedule ``step -> value``.

    Example:
        >>> import jax.numpy as jnp, jaxopt_lite as jol
        >>> warmup = jol.linear_schedule(0.0, 1.0, transition_steps=2)
        >>> decay = jol.exponential_decay(1.0, 1, 0.5)
        >>> jol.join_schedules([warmup, decay], [2])(jnp.arange(5))
        Array([0.  , 0.5 , 1.  , 0.5 , 0.25], dtype=float32)
    """
    if not isinstance(schedules, Sequence):
        raise TypeError(f"schedules must be a list of schedules, got {schedules!r}.")
    if not schedules:
        raise ValueError("schedules=[] is not allowed: give at least one schedule.")
    for i, schedule in enumerate(schedules):
        validate.check_callable(f"schedules[{i}]", schedule)
    if not isinstance(boundaries, Sequence) or len(boundaries) != len(schedules) - 1:
        raise ValueError(
            f"boundaries={boundaries!r} is not allowed: it must be a list of "
            f"{len(schedules) - 1} steps (one fewer than the schedules)."
        )
    for i, boundary in enumerate(boundaries):
        validate.check_range(f"boundaries[{i}]", boundary)
    for i in range(len(boundaries) - 1):
        validate.check_less(
            f"boundaries[{i}]",
            boundaries[i],
            f"boundaries[{i + 1}]",
            boundaries[i + 1],
            strict=False,
        )
    return base.join(list(schedules), list(boundaries))
