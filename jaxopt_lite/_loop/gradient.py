r"""A step's loss and gradient (layer 2): microbatches, mixed precision, loss
scaling.

* **Microbatches.** The step's batch is split into ``count`` equal parts
  along its leading axis; their gradients are accumulated inside the step
  (a ``lax.scan``) and applied once, so a batch too large for memory trains
  as one that fits. Each part's loss is weighted by its total weight $W_i$
  (its example count, or the sum of a per-example weight), and the step's
  loss and gradient are $\sum_i W_i L_i / \sum_i W_i$: for a weighted mean
  loss, the same as the whole batch's, not a mean of per-part means.
* **Mixed precision.** With a compute dtype, the parameters and the batch's
  floating leaves are cast to it inside the differentiated function: the
  forward and backward passes run in it, the gradient comes back in the
  parameters' dtype, and the master parameters and optimizer state never
  leave it.
* **Loss scaling** (float16). The loss is multiplied by the scale before
  differentiation and the gradient divided by it; with a dynamic scale a
  step whose gradient is not finite halves the scale (and is skipped), and
  ``growth_interval`` finite steps in a row double it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jaxopt_lite._loop.loss import Loss

PyTree = Any


class Microbatches(NamedTuple):
    r"""Accumulate a step's gradient over microbatches.

    $$
    L = \frac{\sum_i W_i L_i}{\sum_i W_i}, \qquad
    \nabla L = \frac{\sum_i W_i \nabla L_i}{\sum_i W_i}
    $$

    Attributes:
        count: microbatches per step (the batch size must be a multiple).
        weight: how much each example weighs: ``None`` (every example
            counts once: $W_i$ is the microbatch's size), the name of a batch
            leaf (``batch[weight]``, one weight per example) or a function
            ``weight(batch) -> per-example weights``. With weights, the loss
            should be the weighted mean over its batch,
            $L_i = \sum_j w_j \ell_j / \sum_j w_j$ (tokens of unequal count,
            masked examples): the step then equals the whole batch's.

    Example:
        >>> import jaxopt_lite as jol
        >>> jol.Microbatches(4, weight="mask").count
        4
    """

    count: int
    weight: str | Callable[[Any], Any] | None = None


class DynamicLossScale(NamedTuple):
    r"""A loss scale for float16 training that adapts itself.

    $$
    s \leftarrow \begin{cases} s / f & \text{a non-finite gradient (the step
    is skipped)} \\ s \cdot f & \text{after } n \text{ finite steps in a row}
    \end{cases}
    $$

    Attributes:
        initial: the first scale $s$ (> 0).
        factor: $f$ (> 1).
        growth_interval: $n$, finite steps in a row before the scale grows.
        minimum: the scale never goes below this (> 0).

    Example:
        >>> import jaxopt_lite as jol
        >>> jol.DynamicLossScale().initial
        32768.0
    """

    initial: float = 2.0**15
    factor: float = 2.0
    growth_interval: int = 2000
    minimum: float = 1.0


class Precision(NamedTuple):
    """Static mixed-precision settings of a loop."""

    compute_dtype: Any = None  # None: the parameters' own dtypes
    loss_scale: DynamicLossScale | float | None = None  # a number: fixed


class LossScaleState(NamedTuple):
    """The current loss scale and the finite steps in a row (float32, int32)."""

    scale: jax.Array
    good: jax.Array


def init_loss_scale(precision: Precision | None) -> LossScaleState | None:
    """The loss scale before the first step (``None`` without scaling)."""
    if precision is None or precision.loss_scale is None:
        return None
    scale = precision.loss_scale
    initial = scale.initial if isinstance(scale, DynamicLossScale) else scale
    return LossScaleState(jnp.asarray(initial, jnp.float32), jnp.zeros([], jnp.int32))


def update_loss_scale(
    precision: Precision, state: LossScaleState, finite: jax.Array
) -> LossScaleState:
    """The scale after a step whose gradient was ``finite`` (or not)."""
    rule = precision.loss_scale
    if not isinstance(rule, DynamicLossScale):
        return state
    good = jnp.where(finite, state.good + 1, 0)
    grow = good >= rule.growth_interval
    factor = jnp.asarray(rule.factor, jnp.float32)
    scale = jnp.where(
        finite,
        jnp.where(grow, state.scale * factor, state.scale),
        jnp.maximum(state.scale / factor, jnp.asarray(rule.minimum, jnp.float32)),
    )
    return LossScaleState(scale, jnp.where(grow, 0, good))


def _cast(tree: PyTree, dtype: Any) -> PyTree:
    def cast(x):
        if jnp.issubdtype(jnp.result_type(x), jnp.floating):
            return jnp.asarray(x).astype(dtype)
        return x

    return jax.tree.map(cast, tree)


def _weights(rule: Microbatches, part: PyTree, size: int, dtype: Any) -> jax.Array:
    if rule.weight is None:
        return jnp.asarray(size, dtype)
    weights = part[rule.weight] if isinstance(rule.weight, str) else rule.weight(part)
    return jnp.sum(weights).astype(dtype)


def value_and_grad(
    loss_fn: Loss,
    microbatches: Microbatches | None,
    precision: Precision | None,
    params: PyTree,
    model_state: PyTree,
    batch: PyTree,
    key: jax.Array,
    scale: jax.Array | None,
    *,
    unroll: bool = False,
) -> tuple[jax.Array, PyTree, dict, PyTree]:
    """``(loss, model_state, aux, grads)`` of one step (see the module
    docstring); ``scale`` is the loss scale, or ``None``; ``unroll``: the
    microbatches as straight-line code, not a loop (the unrolled form)."""
    compute = None if precision is None else precision.compute_dtype

    def objective(p, state, part, k):
        if compute is not None:
            p, part = _cast(p, compute), _cast(part, compute)
        loss, (state, aux) = loss_fn(p, state, part, k)
        scaled = loss if scale is None else loss.astype(jnp.float32) * scale
        return scaled, (loss, state, aux)

    differentiate = jax.value_and_grad(objective, has_aux=True)

    def unscale(grads):
        if scale is None:
            return grads
        return jax.tree.map(lambda g: (g / scale).astype(g.dtype), grads)

    if microbatches is None or microbatches.count == 1:
        (_, (loss, state, aux)), grads = differentiate(params, model_state, batch, key)
        return loss, state, aux, unscale(grads)

    count = microbatches.count
    parts = jax.tree.map(lambda x: x.reshape(count, -1, *x.shape[1:]), batch)
    size = jax.tree.leaves(batch)[0].shape[0] // count
    dtype = jnp.result_type(*jax.tree.leaves(params), jnp.float32)

    def one(carry, xs):
        grads, loss, aux, total, state = carry
        part, i = xs
        (_, (value, state, extra)), g = differentiate(
            params, state, part, jax.random.fold_in(key, i)
        )
        w = _weights(microbatches, part, size, dtype)
        grads = jax.tree.map(lambda a, b: a + w * b.astype(a.dtype), grads, g)
        aux = jax.tree.map(lambda a, b: a + w * b.astype(dtype), aux, extra)
        return (grads, loss + w * value.astype(dtype), aux, total + w, state), None

    first = jax.tree.map(lambda x: x[0], parts)
    shapes = jax.eval_shape(differentiate, params, model_state, first, key)
    aux0 = jax.tree.map(lambda s: jnp.zeros(s.shape, dtype), shapes[0][1][2])
    zero = jnp.zeros([], dtype)
    grads0 = jax.tree.map(jnp.zeros_like, params)
    carry = (grads0, zero, aux0, zero, model_state)
    (grads, loss, aux, total, state), _ = jax.lax.scan(
        one, carry, (parts, jnp.arange(count)), unroll=count if unroll else 1
    )
    grads = jax.tree.map(lambda g: g / total.astype(g.dtype), grads)
    aux = jax.tree.map(lambda a: a / total, aux)
    return loss / total, state, aux, unscale(grads)
