"""Decoupled weight decay: `add_decayed_weights`."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jaxopt_lite._combinators.masking import masked
from jaxopt_lite._core import tree_math, validate
from jaxopt_lite._core.dtypes import add, mul
from jaxopt_lite._core.recipe import recipe
from jaxopt_lite._transforms.scaling import ScalarOrSchedule

AddDecayedWeightsState = optax.AddDecayedWeightsState
"""The (empty) state for a constant rate: optax's own."""


class AddDecayedWeightsScheduleState(NamedTuple):
    """For a schedule rate: the number of updates done so far (int32,
    saturating). optax's state has the same field (its class is private)."""

    count: jax.Array


@recipe
def add_decayed_weights(
    weight_decay: ScalarOrSchedule = 0.0,
    mask: Any = None,
) -> optax.GradientTransformation:
    r"""Add the parameters times a weight-decay rate to the updates.

    $$
    u_t = g_t + \lambda_t \, \theta_t
    $$

    Placed before `scale_by_learning_rate` this is decoupled weight decay
    (as in `adamw`): the parameters shrink by $\eta \lambda \theta$ each step.

    Args:
        weight_decay: $\lambda$, a finite number, a scalar array or a
            schedule ``step -> rate``. Negative rates are allowed, as in optax
            (its ``fromage`` uses one); the optimizers' own ``weight_decay``
            arguments must be >= 0.
        mask: ``None`` (decay every leaf), or a tree of Python bools with the
            structure of the parameters (or a prefix of it), or a callable
            ``params -> such a tree``; leaves marked ``False`` are left as
            they are (the decay is wrapped in `masked`).

    Returns:
        An ``optax.GradientTransformation``; ``update`` needs ``params``.
        Its state is empty for a constant rate and counts the updates for a
        schedule, as optax's.

    Example:
        >>> import jax.numpy as jnp, jaxopt_lite as jol
        >>> t = jol.add_decayed_weights(0.1, mask={"w": True, "b": False})
        >>> p = {"w": jnp.array([2.0]), "b": jnp.array([2.0])}
        >>> g = {"w": jnp.array([1.0]), "b": jnp.array([1.0])}
        >>> u, _ = t.update(g, t.init(p), p)
        >>> u["w"], u["b"]
        (Array([1.2], dtype=float32), Array([1.], dtype=float32))

    References:
        Loshchilov and Hutter, *Decoupled Weight Decay Regularization*, 2019.
    """
    validate.check_range("weight_decay", weight_decay, allow_schedule=True)

    def init_fn(params):
        del params
        if callable(weight_decay):
            return AddDecayedWeightsScheduleState(count=jnp.zeros([], jnp.int32))
        return AddDecayedWeightsState()

    def update_fn(updates, state, params=validate.MISSING):  # required, as in optax
        validate.require_params("add_decayed_weights", params)
        if callable(weight_decay):
            rate = weight_decay(state.count)
            state = AddDecayedWeightsScheduleState(
                tree_math.safe_increment(state.count)
            )
        else:  # the state is not read (optax's callers may pass anything)
            rate = weight_decay
        new_updates = jax.tree.map(  # None updates stay None, as in optax
            lambda g, p: None if g is None else add(g, mul(rate, p)).astype(g.dtype),
            updates,
            params,
            is_leaf=lambda x: x is None,
        )
        return new_updates, state

    decay = optax.GradientTransformation(init_fn, update_fn)
    if mask is None:
        return decay
    return masked(decay, mask)
