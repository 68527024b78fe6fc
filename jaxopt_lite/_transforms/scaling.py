"""Scaling primitives: `scale`, `scale_by_schedule` and `scale_by_learning_rate`
and `current_learning_rate`, which reads the effective rate back from a state.

Each factory validates its concrete arguments, then returns an
``optax.GradientTransformation`` built from ``init``/``update`` closures.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
import optax.contrib

from jaxopt_lite._combinators.masking import PartitionState
from jaxopt_lite._combinators.plateau import ReduceLROnPlateauState
from jaxopt_lite._core import tree_math, validate
from jaxopt_lite._core.dtypes import mul, tree_compute_dtype
from jaxopt_lite._core.recipe import recipe

ScalarOrSchedule = optax.ScalarOrSchedule


# optax's class itself, so that states compare equal to optax's as trees.
ScaleState = optax.ScaleState


@recipe
def scale(step_size: float | jax.Array) -> optax.GradientTransformation:
    r"""Multiply updates by a fixed factor.

    $$
    u \leftarrow \alpha \, g
    $$

    Args:
        step_size: the factor $\alpha$ (a number or a scalar array; it may
            be negative, e.g. ``-learning_rate``).

    Returns:
        An ``optax.GradientTransformation``.

    Example:
        >>> import jax.numpy as jnp, jaxopt_lite as jol
        >>> t = jol.scale(-0.5)
        >>> t.update(jnp.array([2.0]), t.init(None))[0]
        Array([-1.], dtype=float32)
    """
    validate.check_range("step_size", step_size)

    def init_fn(params):
        del params
        return ScaleState()

    def update_fn(updates, state, params=None):
        del params
        return tree_math.tree_scale(step_size, updates), state

    return optax.GradientTransformation(init_fn, update_fn)


# optax's class itself, so that states compare equal to optax's as trees.
ScaleByScheduleState = optax.ScaleByScheduleState


@recipe
def scale_by_schedule(
    step_size_fn: Callable[[jax.Array], jax.Array],
) -> optax.GradientTransformation:
    r"""Multiply updates by a factor that depends on the step count.

    $$
    u_t \leftarrow s(t) \, g_t
    $$

    Args:
        step_size_fn: a schedule ``count -> factor``; ``count`` is the int32
            number of updates done before this one.

    Returns:
        An ``optax.GradientTransformation``.

    Example:
        >>> import jax.numpy as jnp, jaxopt_lite as jol
        >>> t = jol.scale_by_schedule(lambda n: 1.0 / (n + 1))
        >>> u, s = t.update(jnp.array([2.0]), t.init(None))
        >>> t.update(jnp.array([2.0]), s)[0]
        Array([1.], dtype=float32)
    """
    validate.check_callable("step_size_fn", step_size_fn)

    def init_fn(params):
        del params
        return ScaleByScheduleState(count=jnp.zeros([], jnp.int32))

    def update_fn(updates, state, params=None):
        del params
        factor = step_size_fn(state.count)
        updates = tree_math.tree_scale(factor, updates)
        return updates, ScaleByScheduleState(tree_math.safe_increment(state.count))

    return optax.GradientTransformation(init_fn, update_fn)


class ScaleByLearningRateState(NamedTuple):
    """Update count (int32, saturating) and the learning rate last applied
    (``applied_rate``, in the parameters' precision: float32 for float32,
    bfloat16 or complex64 parameters, float64 for float64 ones). The field is
    not named ``learning_rate`` so that ``optax.tree.get(state,
    "learning_rate")`` finds only the hyper-parameter of `inject_hyperparams`
    (see docs/optax-differences.md)."""

    count: jax.Array
    applied_rate: jax.Array


@recipe
def scale_by_learning_rate(
    learning_rate: ScalarOrSchedule, *, flip_sign: bool = True
) -> optax.GradientTransformation:
    r"""Multiply updates by minus the learning rate (a constant or a schedule).

    $$
    u_t \leftarrow -\eta_t \, g_t, \qquad
    \eta_t = \eta(t) \text{ for a schedule, else } \eta
    $$

    The rate applied last is kept in the state, so
    `current_learning_rate` can read it back from any optimizer built
    with this transform.

    Args:
        learning_rate: a number >= 0, a scalar array (possibly traced, so it can
            be swept with ``vmap`` without recompiling) or a schedule
            ``step -> rate``.
        flip_sign: multiply by $-\eta$ (descent, the default) or by
            $+\eta$.

    Returns:
        An ``optax.GradientTransformation``.

    Example:
        >>> import jax.numpy as jnp, jaxopt_lite as jol
        >>> t = jol.scale_by_learning_rate(0.1)
        >>> u, state = t.update(jnp.array([1.0, -2.0]), t.init(None))
        >>> u
        Array([-0.1,  0.2], dtype=float32)
        >>> jol.current_learning_rate(state)
        Array(0.1, dtype=float32)
    """
    validate.check_learning_rate("learning_rate", learning_rate)
    sign = -1.0 if flip_sign else 1.0

    def rate_at(count, dtype):
        rate = learning_rate(count) if callable(learning_rate) else learning_rate
        return jnp.asarray(rate, dtype)

    def init_fn(params):
        count = jnp.zeros([], jnp.int32)
        dtype = tree_compute_dtype(params)
        return ScaleByLearningRateState(count, rate_at(count, dtype))

    def update_fn(updates, state, params=None):
        del params
        rate = rate_at(state.count, state.applied_rate.dtype)
        updates = tree_math.tree_scale(sign * rate, updates)
        return updates, ScaleByLearningRateState(
            tree_math.safe_increment(state.count), rate
        )

    return optax.GradientTransformation(init_fn, update_fn)


_PLATEAU_STATES = (ReduceLROnPlateauState, optax.contrib.ReduceLROnPlateauState)


def current_learning_rate(opt_state: Any) -> jax.Array | None:
    r"""Read the effective learning rate from an optimizer state.

    $$
    \eta_{\text{eff}} = \eta \prod_{\text{plateaus after } \eta} s
    $$

    $\eta$ is the first rate found in the order the transforms run: the
    hyper-parameter ``learning_rate`` of `inject_hyperparams` (ours or
    optax's; any dictionary entry or field named ``learning_rate`` counts),
    or the rate last applied by `scale_by_learning_rate` (so every optimizer
    of this package). Each `reduce_on_plateau` state (ours or
    ``optax.contrib``'s) that runs after that rate, in the same chain or an
    enclosing one, multiplies it by its current scale $s$: with
    ``chain(adam(0.1), reduce_on_plateau())`` the reported rate is
    ``0.1 * scale``. The groups of `partition` run side by side: a plateau
    in one group only scales a rate of that group, and the rate reported is
    the first group's (in label order) that has one. The ``Variable``
    wrappers of a flax ``nnx.Optimizer``'s ``opt_state`` are seen through.
    Before the first update the rate is that of step 0.

    Args:
        opt_state: the state of any optimizer built from this package's pieces
            (and many optax ones).

    Returns:
        A scalar array, or ``None`` when the state holds no learning rate.

    Example:
        >>> import jaxopt_lite as jol
        >>> opt = jol.sgd(jol.exponential_decay(1.0, 1, 0.5))
        >>> jol.current_learning_rate(opt.init({"w": 1.0}))
        Array(1., dtype=float32)
        >>> opt = jol.chain(jol.sgd(0.1), jol.reduce_on_plateau())
        >>> state = opt.init({"w": 1.0})
        >>> state = (state[0], state[1]._replace(scale=state[1].scale * 0.5))
        >>> jol.current_learning_rate(state)
        Array(0.05, dtype=float32)
    """
    rate, after, _ = _walk(opt_state)
    if rate is None:
        return None
    rate = jnp.asarray(rate)
    return rate if after is None else mul(rate, after).astype(rate.dtype)


def _walk(node: Any) -> tuple[Any, Any, Any]:
    """``(rate, after, total)`` for a sub-state: the first rate in it, the
    product of the plateau scales that run after that rate (``None`` for
    none), and the product of all plateau scales that scale the whole
    sub-state's output (``None`` for none)."""
    if isinstance(node, ScaleByLearningRateState):
        return node.applied_rate, None, None
    if isinstance(node, _PLATEAU_STATES):
        return None, None, node.scale
    if isinstance(node, PartitionState):
        for _, child in _children(node.inner_states):
            rate, after, _ = _walk(child)
            if rate is not None:
                return rate, after, None
        return None, None, None
    rate, after, total = None, None, None
    for key, child in _children(node):
        if key == "hyperparams_states":  # schedule states, not rates
            continue
        if rate is None and key == "learning_rate":
            value = _unwrap(child)
            if _is_scalar(value):
                rate = value
                continue
        child_rate, child_after, child_total = _walk(child)
        if rate is None and child_rate is not None:
            rate, after = child_rate, child_after
        elif rate is not None:
            after = _times(after, child_total)
        total = _times(total, child_total)
    return rate, after, total


def _unwrap(node: Any) -> Any:
    """The array inside a wrapper whose only child is ``value`` (a flax nnx
    ``Variable``), else ``node``."""
    kids = _children(node)
    return kids[0][1] if len(kids) == 1 and kids[0][0] == "value" else node


def _children(node: Any) -> list[tuple[Any, Any]]:
    """The direct children of a pytree node with their key names, in the
    order ``jax.tree`` flattens them (none for a leaf)."""
    pairs = jax.tree_util.tree_flatten_with_path(node, is_leaf=lambda x: x is not node)[
        0
    ]
    if len(pairs) == 1 and pairs[0][0] == ():
        return []  # node is a leaf
    return [(_key_name(path[0]), child) for path, child in pairs]


def _key_name(key: Any) -> str | None:
    if isinstance(key, jax.tree_util.GetAttrKey):
        return key.name
    if isinstance(key, jax.tree_util.DictKey) and isinstance(key.key, str):
        return key.key
    return None


def _is_scalar(x: Any) -> bool:
    if isinstance(x, bool) or isinstance(x, numbers.Number):
        return not isinstance(x, bool)
    return isinstance(x, (jax.Array, np.ndarray, np.generic)) and np.ndim(x) == 0


def _times(a: Any, b: Any) -> Any:
    if a is None:
        return b
    return a if b is None else mul(a, b)
