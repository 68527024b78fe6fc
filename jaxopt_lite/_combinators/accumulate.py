"""`accumulate_gradients`: one optimizer step every k micro-steps;
`apply_every`: the sum of k updates, emitted every k steps."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jaxopt_lite._core import tree_math
from jaxopt_lite._core.dtypes import at_least_float32, div
from jaxopt_lite._core.recipe import recipe
from jaxopt_lite._core.validate import (
    check_bool,
    check_dtype,
    check_int,
    check_transform,
)


class AccumulateGradientsState(NamedTuple):
    """Micro-step and step counters, the inner state and the running gradient.

    ``mini_step``: micro-steps accumulated since the last inner step (int32,
    in ``[0, k)``); ``gradient_step``: inner steps taken (int32, saturating);
    ``inner_opt_state``: the wrapped transform's state; ``acc_grads``: the
    running mean (or sum) of this round's gradients; ``total_skipped``:
    micro-steps dropped by ``skip_nonfinite`` (int32, saturating).
    """

    mini_step: jax.Array
    gradient_step: jax.Array
    inner_opt_state: Any
    acc_grads: Any
    total_skipped: jax.Array


@recipe
def accumulate_gradients(
    inner: optax.GradientTransformation,
    every_k_schedule: int | Callable[[jax.Array], Any],
    *,
    use_grad_mean: bool = True,
    skip_nonfinite: bool = False,
    accumulator_dtype: Any = None,
) -> optax.GradientTransformationExtraArgs:
    r"""Accumulate gradients over $k$ micro-steps, then take one inner step.

    $$
    a_j = a_{j-1} + \frac{g_j - a_{j-1}}{j}, \quad
    u_j = \begin{cases} T(a_k) & j = k \\ 0 & j < k \end{cases}
    $$

    Micro-steps $j = 1, \dots, k$ return zero updates and only average the
    gradients; the $k$-th passes the mean (or, with
    ``use_grad_mean=False``, the sum) to ``inner``, returns its update and
    starts a new round. The inner transform, and the extra arguments such as
    ``value=`` that reach it, only run on those steps. This is the semantics
    and the numbers of ``optax.MultiSteps(inner, k).gradient_transformation()``
    (see ``optax.MultiSteps`` for ``use_grad_mean``); a batch of $k B$
    examples can so be processed as $k$ batches of $B$.

    Args:
        inner: the transform that receives the accumulated gradient.
        every_k_schedule: $k$, an integer >= 1 (may be traced), or a
            function of the number of inner steps taken so far returning it
            (to grow the effective batch size during training).
        use_grad_mean: average the micro-step gradients (default) or sum them.
        skip_nonfinite: drop micro-steps whose gradients hold a NaN or an
            infinity as if they never happened (zero update, state unchanged
            but ``total_skipped``), like ``optax.skip_not_finite``.
        accumulator_dtype: dtype of ``acc_grads``; ``None`` (the default) uses
            each gradient's dtype promoted to at least float32 (float32 for
            float32 or bfloat16 gradients, as in optax; complex stays complex).

    Returns:
        An ``optax.GradientTransformationExtraArgs`` whose state is an
        `AccumulateGradientsState`.

    Example:
        >>> import jax.numpy as jnp, jaxopt_lite as jol
        >>> opt = jol.accumulate_gradients(jol.scale_by_learning_rate(1.0), 2)
        >>> state = opt.init(jnp.zeros(1))
        >>> u1, state = opt.update(jnp.array([1.0]), state)
        >>> u2, state = opt.update(jnp.array([3.0]), state)
        >>> u1, u2
        (Array([0.], dtype=float32), Array([-2.], dtype=float32))
    """
    check_transform("inner", inner)
    if not callable(every_k_schedule):
        check_int("every_k_schedule", every_k_schedule, minimum=1, traced=True)
    check_bool("use_grad_mean", use_grad_mean)
    check_bool("skip_nonfinite", skip_nonfinite)
    accumulator_dtype = check_dtype(
        "accumulator_dtype", accumulator_dtype, kind=jnp.inexact
    )
    inner = optax.with_extra_args_support(inner)

    def k_at(gradient_step):
        if callable(every_k_schedule):
            return every_k_schedule(gradient_step)
        return every_k_schedule

    def acc_dtype(x):
        if accumulator_dtype is not None:
            return accumulator_dtype
        return at_least_float32(x)

    def init_fn(params):
        return AccumulateGradientsState(
            mini_step=jnp.zeros([], jnp.int32),
            gradient_step=jnp.zeros([], jnp.int32),
            inner_opt_state=inner.init(params),
            acc_grads=jax.tree.map(lambda p: jnp.zeros_like(p, acc_dtype(p)), params),
            total_skipped=jnp.zeros([], jnp.int32),
        )

    def update_fn(updates, state, params=None, **extra_args):
        k = k_at(state.gradient_step)
        n = state.mini_step
        if use_grad_mean:
            acc = jax.tree.map(
                lambda g, a: a + div(g.astype(a.dtype) - a, n + 1),
                updates,
                state.acc_grads,
            )
        else:
            acc = jax.tree.map(
                lambda g, a: a + g.astype(a.dtype), updates, state.acc_grads
            )
        finite = (
            tree_math.tree_all_finite(updates) if skip_nonfinite else jnp.array(True)
        )
        emit = (n == k - 1) & finite
        grads = jax.tree.map(lambda a, g: a.astype(g.dtype), acc, updates)

        def step(inner_state):
            return inner.update(grads, inner_state, params, **extra_args)

        out_shape = jax.eval_shape(step, state.inner_opt_state)[0]

        def wait(inner_state):
            zeros = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), out_shape)
            return zeros, inner_state

        new_updates, inner_state = jax.lax.cond(emit, step, wait, state.inner_opt_state)
        new_state = AccumulateGradientsState(
            mini_step=tree_math.safe_increment(n) % k,
            gradient_step=jnp.where(
                emit, tree_math.safe_increment(state.gradient_step), state.gradient_step
            ),
            inner_opt_state=inner_state,
            acc_grads=optax.tree.where(emit, optax.tree.zeros_like(acc), acc),
            total_skipped=state.total_skipped,
        )
        if not skip_nonfinite:
            return new_updates, new_state
        # A dropped micro-step leaves the state as it was (emit is False, so
        # the updates are already zero).
        skipped = state._replace(
            total_skipped=tree_math.safe_increment(state.total_skipped)
        )
        return new_updates, optax.tree.where(finite, new_state, skipped)

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


ApplyEveryState = optax.ApplyEvery
"""optax's class ``optax.ApplyEvery`` itself (so states equal optax's as
trees), under the name of the naming rule of states here: ``count``, the
updates since the last emitted sum (int32, in ``[0, k)``); ``grad_acc``, the
running sum of this round's updates (after an emitted step it still holds
that round's sum, reset by the next update)."""


@recipe
def apply_every(k: int | jax.Array = 1) -> optax.GradientTransformation:
    r"""Sum the updates of $k$ steps and return the sum every $k$-th step.

    $$
    a_t = \begin{cases} g_t & t \bmod k = 0 \\ a_{t-1} + g_t &
    \text{otherwise} \end{cases}, \qquad
    u_t = \begin{cases} a_t & t \bmod k = k - 1 \\ 0 & \text{otherwise}
    \end{cases}
    $$

    with $t = 0, 1, \dots$ counting the calls to ``update``. Placed last in a
    chain it applies, every $k$ steps, the sum of the $k$ steps' updates (the
    others are zeros), as ``optax.apply_every``. Unlike
    `accumulate_gradients` the transforms before it still run, and keep
    their state, at every step. A NaN or infinite update makes its round's
    sum NaN or infinite, and only that sum (optax multiplies by 0 and 1, so
    from then on every update it returns is NaN: docs/optax-differences.md).

    Args:
        k: the period, an integer >= 1 (may be traced).

    Returns:
        An ``optax.GradientTransformation`` whose state is an
        `ApplyEveryState`.

    Example:
        >>> import jax.numpy as jnp, jaxopt_lite as jol
        >>> t = jol.apply_every(2)
        >>> state = t.init(jnp.zeros(1))
        >>> u0, state = t.update(jnp.array([1.0]), state)
        >>> u1, state = t.update(jnp.array([3.0]), state)
        >>> u0, u1
        (Array([0.], dtype=float32), Array([4.], dtype=float32))
    """
    check_int("k", k, minimum=1, traced=True)

    def init_fn(params):
        return ApplyEveryState(jnp.zeros([], jnp.int32), optax.tree.zeros_like(params))

    def update_fn(updates, state, params=None):
        del params
        phase = state.count % k
        grad_acc = jax.tree.map(
            lambda g, a: jnp.where(phase == 0, g, a + g.astype(a.dtype)).astype(
                a.dtype
            ),
            updates,
            state.grad_acc,
        )
        emit = phase == k - 1
        updates = jax.tree.map(
            lambda a: jnp.where(emit, a, jnp.zeros_like(a)), grad_acc
        )
        count = tree_math.safe_increment(state.count) % k
        return updates, ApplyEveryState(count.astype(jnp.int32), grad_acc)

    return optax.GradientTransformation(init_fn, update_fn)
