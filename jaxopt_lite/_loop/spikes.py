"""Loss-spike skipping inside the compiled loop (layer 2).

A step whose loss (or gradient norm) lies more than ``threshold`` standard
deviations above the mean of the last ``window`` accepted steps is skipped
like a non-finite step: its update is not applied and it is counted in
``skipped``. Detection starts once the window is full; a skipped value never
enters the window, so one bad batch does not raise the bar for the next.
After ``max_consecutive`` skips in a row the next step is taken whatever its
value (a lasting shift, not a spike), so a run can never stall.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp


class SpikeSkip(NamedTuple):
    r"""Skip steps whose loss (or gradient norm) spikes.

    $$
    \text{skip step } t \iff v_t > \bar v + \tau\, \sigma_v,
    \qquad \bar v, \sigma_v \text{ over the last } W \text{ accepted steps}
    $$

    Attributes:
        window: $W$, the accepted steps the mean and standard deviation are
            taken over (>= 2); detection starts once $W$ steps were accepted.
        threshold: $\tau$, in standard deviations (> 0).
        metric: ``"loss"`` or ``"grad_norm"``: the value $v$ watched.
        max_consecutive: after this many skips in a row the next step is
            taken (>= 1), so a lasting change of level cannot stall a run.

    Example:
        >>> import jaxopt_lite as jol
        >>> jol.SpikeSkip(window=50, threshold=6.0).metric
        'loss'
    """

    window: int = 50
    threshold: float = 6.0
    metric: str = "loss"
    max_consecutive: int = 5


class SpikeState(NamedTuple):
    """The last accepted values, a ring buffer."""

    values: jax.Array  # [window], in the metric dtype
    count: jax.Array  # int32: accepted values held (at most window)
    at: jax.Array  # int32: where the next accepted value goes
    streak: jax.Array  # int32: skips in a row so far


def init_spike_state(cfg: SpikeSkip, dtype: Any) -> SpikeState:
    """Nothing seen yet."""
    zero = jnp.zeros([], jnp.int32)
    return SpikeState(jnp.zeros([cfg.window], dtype), zero, zero, zero)


def is_spike(cfg: SpikeSkip, state: SpikeState, value: jax.Array) -> jax.Array:
    """Whether ``value`` is a spike (never before the window is full, never
    after ``max_consecutive`` skips in a row, never for a non-finite value,
    which the non-finite guard handles)."""
    mean = jnp.mean(state.values)
    std = jnp.sqrt(jnp.mean((state.values - mean) ** 2))
    ready = (state.count >= cfg.window) & (state.streak < cfg.max_consecutive)
    above = value > mean + jnp.asarray(cfg.threshold, mean.dtype) * std
    return ready & above & jnp.isfinite(value)


def record(
    cfg: SpikeSkip, state: SpikeState, value: jax.Array, accepted: jax.Array,
    spike: jax.Array,
) -> SpikeState:  # fmt: skip
    """Add ``value`` to the window when its step was ``accepted``; count a
    ``spike`` in the streak (any other step ends it)."""
    value = value.astype(state.values.dtype)
    values = state.values.at[state.at].set(
        jnp.where(accepted, value, state.values[state.at])
    )
    step = accepted.astype(jnp.int32)
    return SpikeState(
        values=values,
        count=jnp.minimum(state.count + step, cfg.window),
        at=(state.at + step) % cfg.window,
        streak=jnp.where(spike, state.streak + 1, 0),
    )
