"""`conditionally_transform` and `conditionally_mask`: an inner transform that
only runs at the steps a condition picks."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax

from jaxopt_lite._core import tree_math
from jaxopt_lite._core.recipe import recipe
from jaxopt_lite._core.validate import check_bool, check_callable, check_transform

ConditionFn = Callable[..., Any]


ConditionallyTransformState = optax.ConditionallyTransformState
"""optax's class itself (so states equal optax's as trees): the inner state and
the number of ``update`` calls so far (``step``, int32, saturating)."""

ConditionallyMaskState = optax.ConditionallyMaskState
"""optax's class itself (so states equal optax's as trees): the number of
``update`` calls so far (``step``, int32, saturating) and the inner state."""


def _conditional(inner, should_transform_fn, forward_extra_args, skipped_updates):
    """``init`` and ``update`` of a wrapper that calls ``inner`` at the steps
    where ``should_transform_fn`` is true and otherwise returns
    ``skipped_updates(updates, out_shape)`` with the inner state unchanged;
    ``update`` returns ``(updates, inner_state, step)``."""
    check_transform("inner", inner)
    check_callable("should_transform_fn", should_transform_fn)
    check_bool("forward_extra_args", forward_extra_args)
    inner = optax.with_extra_args_support(inner)

    def init(params):
        return inner.init(params), jnp.zeros([], jnp.int32)

    def update(updates, inner_state, step, params, extra_args):
        def apply(inner_state):
            return inner.update(updates, inner_state, params, **extra_args)

        def skip(inner_state):
            out_shape = jax.eval_shape(apply, inner_state)[0]
            return skipped_updates(updates, out_shape), inner_state

        condition_args = extra_args if forward_extra_args else {}
        run = jnp.asarray(should_transform_fn(step, **condition_args))
        if run.shape != ():  # (a number is true where it is not 0, as in lax.cond)
            raise ValueError(
                "should_transform_fn must return a scalar (a boolean), got an "
                f"array of shape {run.shape}."
            )
        updates, inner_state = jax.lax.cond(run, apply, skip, inner_state)
        return updates, inner_state, tree_math.safe_increment(step)

    return init, update


@recipe
def conditionally_transform(
    inner: optax.GradientTransformation,
    should_transform_fn: ConditionFn,
    forward_extra_args: bool = False,
) -> optax.GradientTransformationExtraArgs:
    r"""Run ``inner`` at the steps a condition picks, else pass updates through.

    $$
    (u_t, S_t) = \begin{cases} T(g_t, S_{t-1}) & c(t) \\
    (g_t, S_{t-1}) & \text{otherwise} \end{cases}
    $$

    where $t = 0, 1, \dots$ counts the calls to ``update``. The inner state
    only changes at the steps where $c$ holds. Same semantics and state as
    ``optax.conditionally_transform``; use `conditionally_mask` to return
    zeros at the other steps instead.

    Args:
        inner: the transform to run conditionally.
        should_transform_fn: $c$, a function of the step counter (an int32
            scalar) returning a scalar boolean (may be traced); with
            ``forward_extra_args`` it also receives the extra keyword
            arguments of ``update`` (such as ``value=``).
        forward_extra_args: pass the extra keyword arguments to
            ``should_transform_fn`` too.

    Returns:
        An ``optax.GradientTransformationExtraArgs`` whose state is a
        `ConditionallyTransformState`.

    Example:
        >>> import jax.numpy as jnp, jaxopt_lite as jol
        >>> opt = jol.conditionally_transform(jol.scale(10.0), lambda t: t % 2 == 0)
        >>> state = opt.init(None)
        >>> u0, state = opt.update(jnp.ones(1), state)
        >>> u1, state = opt.update(jnp.ones(1), state)
        >>> u0, u1
        (Array([10.], dtype=float32), Array([1.], dtype=float32))
    """
    init, update = _conditional(
        inner, should_transform_fn, forward_extra_args, lambda g, shape: g
    )

    def init_fn(params):
        return ConditionallyTransformState(*init(params))

    def update_fn(updates, state, params=None, **extra_args):
        updates, inner_state, step = update(
            updates, state.inner_state, state.step, params, extra_args
        )
        return updates, ConditionallyTransformState(inner_state, step)

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


@recipe
def conditionally_mask(
    inner: optax.GradientTransformation,
    should_transform_fn: ConditionFn,
    forward_extra_args: bool = False,
) -> optax.GradientTransformationExtraArgs:
    r"""Run ``inner`` at the steps a condition picks, else return zeros.

    $$
    (u_t, S_t) = \begin{cases} T(g_t, S_{t-1}) & c(t) \\
    (0, S_{t-1}) & \text{otherwise} \end{cases}
    $$

    where $t = 0, 1, \dots$ counts the calls to ``update``. The inner state
    only changes at the steps where $c$ holds. Same semantics and state as
    ``optax.conditionally_mask``; use `conditionally_transform` to pass the
    updates through unchanged at the other steps instead.

    Args:
        inner: the transform run where $c(t)$ holds.
        should_transform_fn: $c$, called with the int32 step counter (and,
            with ``forward_extra_args``, the extra keyword arguments of
            ``update``); it returns a scalar boolean, possibly traced.
        forward_extra_args: whether $c$ also receives ``value=`` and the
            other extra keyword arguments.

    Returns:
        An ``optax.GradientTransformationExtraArgs`` whose state is a
        `ConditionallyMaskState`.

    Example:
        >>> import jax.numpy as jnp, jaxopt_lite as jol
        >>> opt = jol.conditionally_mask(jol.scale(10.0), lambda t: t >= 1)
        >>> state = opt.init(None)
        >>> u0, state = opt.update(jnp.ones(1), state)
        >>> u1, state = opt.update(jnp.ones(1), state)
        >>> u0, u1, state.step
        (Array([0.], dtype=float32), Array([10.], dtype=float32), Array(2, dtype=int32))
    """
    init, update = _conditional(
        inner,
        should_transform_fn,
        forward_extra_args,
        lambda g, shape: jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shape),
    )

    def init_fn(params):
        inner_state, step = init(params)
        return ConditionallyMaskState(step, inner_state)

    def update_fn(updates, state, params=None, **extra_args):
        updates, inner_state, step = update(
            updates, state.inner_state, state.step, params, extra_args
        )
        return updates, ConditionallyMaskState(step, inner_state)

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)
