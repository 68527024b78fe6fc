"""`reduce_on_plateau`: shrink the step when the loss stops improving."""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from jaxopt_lite._core import tree_math, validate
from jaxopt_lite._core.dtypes import (
    add,
    div,
    mul,
    promote,
    sub,
    tree_compute_dtype,
)
from jaxopt_lite._core.recipe import recipe
from jaxopt_lite._core.validate import check_int


class ReduceLROnPlateauState(NamedTuple):
    """The current factor and the plateau bookkeeping.

    ``scale``: the factor applied to the updates; ``best_value``: the best
    (averaged) loss so far; ``plateau_count``: evaluations without improvement
    (int32); ``cooldown_count``: evaluations left in the cooldown (int32);
    ``count``: losses accumulated towards the next evaluation (int32);
    ``avg_value``: their running mean. Floats are float32 (float64 for
    float64 parameters).
    """

    scale: jax.Array
    best_value: jax.Array
    plateau_count: jax.Array
    cooldown_count: jax.Array
    count: jax.Array
    avg_value: jax.Array


@recipe
def reduce_on_plateau(
    factor: float | jax.Array = 0.1,
    patience: int | jax.Array = 10,
    rtol: float | jax.Array = 1e-4,
    atol: float | jax.Array = 0.0,
    cooldown: int | jax.Array = 0,
    accumulation_size: int | jax.Array = 1,
    min_scale: float | jax.Array = 0.0,
) -> optax.GradientTransformationExtraArgs:
    r"""Multiply the updates by a factor that shrinks when the loss plateaus.

    $$
    \bar f \text{ improves on } f^\star \iff
    \bar f < f^\star - \text{rtol}\,|f^\star| - \text{atol}, \qquad
    s \leftarrow \max(\text{factor}\cdot s,\ \text{min\_scale})
    \text{ after patience evaluations without improvement}
    $$

    Each ``update`` reads the loss from ``value=``; every
    ``accumulation_size`` calls, the mean $\bar f$ of the losses seen is
    compared to the best mean so far $f^\star$. After ``patience``
    evaluations in a row without improvement the scale $s$ (initially 1)
    is multiplied by ``factor``, and the next ``cooldown`` evaluations cannot
    reduce it again. Chain it after an optimizer:
    ``chain(adam(1e-3), reduce_on_plateau(...))``.

    The same numbers as ``optax.contrib.reduce_on_plateau`` for positive
    losses, with two fixes: the improvement threshold uses $|f^\star|$, so
    negative losses (log-likelihoods, for instance) are handled correctly
    (optax's $(1-\text{rtol}) f^\star - \text{atol}$ is above $f^\star$
    when $f^\star < 0$, so any loss within rtol of the best counts as an
    improvement and the scale never shrinks), and ``patience=0`` reduces on
    every evaluation without improvement (docs/optax-differences.md).
    `current_learning_rate` reports the optimizer's rate times this scale.

    Args:
        factor: multiplier of the scale at a plateau, in $(0, 1]$.
        patience: evaluations without improvement before a reduction, an
            integer >= 0.
        rtol: relative improvement required, in $[0, 1]$.
        atol: absolute improvement required, >= 0 (``rtol`` and ``atol`` are
            not both 0).
        cooldown: evaluations after a reduction during which the plateau count
            stays at 0, an integer >= 0.
        accumulation_size: losses averaged per evaluation, an integer >= 1
            (use the number of minibatches per epoch to compare epochs).
        min_scale: the scale never goes below this, >= 0.

    Returns:
        An ``optax.GradientTransformationExtraArgs`` whose state is a
        `ReduceLROnPlateauState`; ``update`` requires ``value=``.

    Example:
        >>> import jax.numpy as jnp, jaxopt_lite as jol
        >>> opt = jol.reduce_on_plateau(factor=0.5, patience=2)
        >>> state = opt.init(jnp.zeros(1))
        >>> for loss in [-1.0, -1.0, -1.0]:
        ...     updates, state = opt.update(jnp.ones(1), state, value=loss)
        >>> updates, state.scale
        (Array([0.5], dtype=float32), Array(0.5, dtype=float32))

    References:
        PyTorch, ``torch.optim.lr_scheduler.ReduceLROnPlateau``.
    """
    validate.check_range("factor", factor, 0.0, 1.0, low_closed=False)
    check_int("patience", patience, minimum=0, traced=True)
    validate.check_range("rtol", rtol, 0.0, 1.0)
    validate.check_nonnegative("atol", atol)
    check_int("cooldown", cooldown, minimum=0, traced=True)
    check_int("accumulation_size", accumulation_size, minimum=1, traced=True)
    validate.check_nonnegative("min_scale", min_scale)
    r, a = validate.concrete_values(rtol), validate.concrete_values(atol)
    if r is not None and a is not None and not (r > 0).any() and not (a > 0).any():
        raise ValueError(
            "rtol=0.0 and atol=0.0 are not allowed together: at least one must be "
            "positive, or no loss can count as an improvement."
        )

    def init_fn(params):
        dtype = tree_compute_dtype(params)
        return ReduceLROnPlateauState(
            scale=jnp.ones([], dtype),
            best_value=jnp.full([], math.inf, dtype),
            plateau_count=jnp.zeros([], jnp.int32),
            cooldown_count=jnp.zeros([], jnp.int32),
            count=jnp.zeros([], jnp.int32),
            avg_value=jnp.zeros([], dtype),
        )

    def evaluate(state):
        best, mean = state.best_value, state.avg_value
        # best - rtol * |best| - atol, written as optax writes it for best >= 0
        # so that positive losses give bit-identical decisions.
        shrunk = sub(
            jnp.where(best >= 0, mul(1 - rtol, best), mul(1 + rtol, best)), atol
        )
        threshold = jnp.where(jnp.isfinite(best), shrunk, best)
        improved = mean < threshold
        best = jnp.where(improved, mean, best)
        bad = jnp.where(improved, 0, tree_math.safe_increment(state.plateau_count))
        cooling = state.cooldown_count > 0
        reduce = ~cooling & ~improved & (bad >= patience)
        scale = jnp.where(reduce, *promote(mul(state.scale, factor), state.scale))
        scale = jnp.maximum(*promote(scale, min_scale))
        scale = jnp.where(cooling, *promote(state.scale, scale))
        plateau = jnp.where(cooling | reduce, 0, bad)
        cooldown_count = jnp.where(
            cooling, state.cooldown_count - 1, jnp.where(reduce, cooldown, 0)
        )
        return ReduceLROnPlateauState(
            scale=scale.astype(state.scale.dtype),
            best_value=best,
            plateau_count=plateau.astype(jnp.int32),
            cooldown_count=cooldown_count.astype(jnp.int32),
            count=jnp.zeros([], jnp.int32),
            avg_value=jnp.zeros_like(state.avg_value),
        )

    def update_fn(updates, state, params=None, *, value=None, **extra_args):
        del params, extra_args
        value = validate.require_value("reduce_on_plateau", value)
        if jnp.shape(value) != ():
            raise ValueError(
                f"reduce_on_plateau: value must be a scalar loss, got shape "
                f"{jnp.shape(value)}."
            )
        if not isinstance(state, ReduceLROnPlateauState):
            # optax.contrib's state has the same fields, in the same order.
            state = ReduceLROnPlateauState(*(jnp.asarray(x) for x in state))
        count = tree_math.safe_increment(state.count)
        value = jnp.asarray(value).astype(state.avg_value.dtype)
        mean = div(add(mul(state.count, state.avg_value), value), count)
        state = state._replace(
            count=count, avg_value=mean.astype(state.avg_value.dtype)
        )
        state = jax.lax.cond(count >= accumulation_size, evaluate, lambda s: s, state)
        return tree_math.tree_scale(state.scale, updates), state

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)
