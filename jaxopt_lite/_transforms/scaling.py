"""Scaling primitives: `scale`, `scale_by_schedule`, `scale_by_learning_rate`
and `current_learning_rate`, which reads the rate back from a state.

Each factory validates its concrete arguments, then returns an
``optax.GradientTransformation`` built from ``init``/``update`` closures.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jaxopt_lite._core import tree as _tree
from jaxopt_lite._core import validate as v
from jaxopt_lite._core.recipe import recipe

ScalarOrSchedule = optax.ScalarOrSchedule


class ScaleState(NamedTuple):
    """``scale`` keeps no state."""


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
    v.check_range("step_size", step_size)

    def init_fn(params):
        del params
        return ScaleState()

    def update_fn(updates, state, params=None):
        del params
        return _tree.tree_scale(step_size, updates), state

    return optax.GradientTransformation(init_fn, update_fn)


class ScaleByScheduleState(NamedTuple):
    """The number of updates done so far (int32, saturating)."""

    count: jax.Array


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
    if not callable(step_size_fn):
        raise TypeError(f"step_size_fn must be callable, got {step_size_fn!r}.")

    def init_fn(params):
        del params
        return ScaleByScheduleState(count=jnp.zeros([], jnp.int32))

    def update_fn(updates, state, params=None):
        del params
        factor = step_size_fn(state.count)
        updates = _tree.tree_scale(factor, updates)
        return updates, ScaleByScheduleState(optax.safe_increment(state.count))

    return optax.GradientTransformation(init_fn, update_fn)


class ScaleByLearningRateState(NamedTuple):
    """Update count (int32, saturating) and the learning rate last applied."""

    count: jax.Array
    learning_rate: jax.Array


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
    v.check_learning_rate("learning_rate", learning_rate)
    sign = -1.0 if flip_sign else 1.0

    def rate_at(count):
        rate = learning_rate(count) if callable(learning_rate) else learning_rate
        return jnp.asarray(rate, jnp.float32)

    def init_fn(params):
        del params
        count = jnp.zeros([], jnp.int32)
        return ScaleByLearningRateState(count=count, learning_rate=rate_at(count))

    def update_fn(updates, state, params=None):
        del params
        rate = rate_at(state.count)
        updates = _tree.tree_scale(sign * rate, updates)
        return updates, ScaleByLearningRateState(
            optax.safe_increment(state.count), rate
        )

    return optax.GradientTransformation(init_fn, update_fn)


def current_learning_rate(opt_state: Any) -> jax.Array | None:
    r"""Read the learning rate from an optimizer state.

    Finds the first field or dictionary entry named ``learning_rate`` in the
    state tree: the rate last applied by `scale_by_learning_rate`, or the
    hyper-parameter held by `inject_hyperparams` (ours or optax's), also
    inside the ``Variable`` wrappers of a flax ``nnx.Optimizer``'s
    ``opt_state``. Before the first update it is the rate of step 0.

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
    """
    paths = jax.tree_util.tree_flatten_with_path(opt_state)[0]
    for path, leaf in paths:
        names = [_key_name(k) for k in path]
        if len(names) > 1 and names[-1] == "value":
            names.pop()  # flax nnx keeps each array in a Variable's `.value`
        if names and names[-1] == "learning_rate":
            return jnp.asarray(leaf)
    return None


def _key_name(key: Any) -> str | None:
    if isinstance(key, jax.tree_util.GetAttrKey):
        return key.name
    if isinstance(key, jax.tree_util.DictKey) and isinstance(key.key, str):
        return key.key
    return None


# ----------------------------------------------------------------------------
# Helpers shared by the transforms of this package's optimizer modules.


# ----------------------------------------------------------------------------
# Momentum and weight decay.
