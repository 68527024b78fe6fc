"""Primitive gradient transformations: the pieces optimizers are chained from.

Each factory validates its concrete arguments, then returns an
``optax.GradientTransformation`` built from ``init``/``update`` closures.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jaxopt_lite import _tree
from jaxopt_lite import _validate as v
from jaxopt_lite._combine import masked

ScalarOrSchedule = float | jax.Array | Callable[[jax.Array], jax.Array]


class ScaleState(NamedTuple):
    """``scale`` keeps no state."""


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
        return updates, ScaleByScheduleState(_tree.safe_increment(state.count))

    return optax.GradientTransformation(init_fn, update_fn)


class ScaleByLearningRateState(NamedTuple):
    """Update count (int32, saturating) and the learning rate last applied."""

    count: jax.Array
    learning_rate: jax.Array


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
            _tree.safe_increment(state.count), rate
        )

    return optax.GradientTransformation(init_fn, update_fn)


def current_learning_rate(opt_state: Any) -> jax.Array | None:
    r"""Read the learning rate from an optimizer state.

    Finds the first field or dictionary entry named ``learning_rate`` in the
    state tree: the rate last applied by `scale_by_learning_rate`, or the
    hyper-parameter held by `inject_hyperparams` (ours or optax's).
    Before the first update it is the rate of step 0.

    $$
    \eta_t \text{ as used by the last update}
    $$

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
        if path and _key_name(path[-1]) == "learning_rate":
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


def check_bool(name: str, value: Any) -> None:
    """Raise ``TypeError`` unless ``value`` is a Python bool (a static switch)."""
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, got {value!r}.")


def check_dtype(name: str, dtype: Any) -> Any:
    """Canonicalize an optional floating or complex dtype (``None`` passes)."""
    if dtype is None:
        return None
    try:
        canonical = jax.dtypes.canonicalize_dtype(dtype)
    except TypeError as error:
        raise TypeError(f"{name} must be a dtype or None, got {dtype!r}.") from error
    if not jnp.issubdtype(canonical, jnp.inexact):
        raise TypeError(
            f"{name}={dtype!r} is not allowed: it must be a floating or complex "
            "dtype (or None)."
        )
    return canonical


def real_dtype(x: jax.Array) -> Any:
    """The real dtype matching ``x`` (``float32`` for ``complex64``)."""
    dtype = jnp.asarray(x).dtype
    return (
        jnp.finfo(dtype).dtype if jnp.issubdtype(dtype, jnp.complexfloating) else dtype
    )


def real_full_like(tree: _tree.PyTree, fill_value: Any) -> _tree.PyTree:
    """Arrays shaped like ``tree`` filled with ``fill_value``, in each leaf's real
    dtype (second moments of complex parameters are real)."""
    return jax.tree.map(
        lambda x: jnp.full(jnp.shape(x), fill_value, real_dtype(x)), tree
    )


def full_like(tree: _tree.PyTree, fill_value: Any, dtype: Any = None) -> _tree.PyTree:
    """Arrays shaped like ``tree`` filled with ``fill_value`` (leaf dtypes kept
    unless ``dtype`` is given)."""
    return jax.tree.map(
        lambda x: jnp.full(
            jnp.shape(x), fill_value, jnp.asarray(x).dtype if dtype is None else dtype
        ),
        tree,
    )


def cast_like(tree: _tree.PyTree, like: _tree.PyTree) -> _tree.PyTree:
    """Cast every leaf of ``tree`` to the dtype of the matching leaf of ``like``."""
    return jax.tree.map(
        lambda x, y: jnp.asarray(x).astype(jnp.asarray(y).dtype), tree, like
    )


# ----------------------------------------------------------------------------
# Momentum and weight decay.


class TraceState(NamedTuple):
    """The momentum buffer."""

    trace: _tree.PyTree


def trace(
    decay: float | jax.Array,
    nesterov: bool = False,
    accumulator_dtype: Any = None,
) -> optax.GradientTransformation:
    r"""Heavy-ball momentum: keep a decaying sum of past updates.

    $$
    m_t = g_t + \beta \, m_{t-1}, \qquad
    u_t = \begin{cases} g_t + \beta \, m_t & \text{(Nesterov)} \\
    m_t & \text{(otherwise)} \end{cases}
    $$

    Unlike an exponential moving average, $g_t$ is not multiplied by
    $1 - \beta$.

    Args:
        decay: the momentum $\beta$, in $[0, 1]$.
        nesterov: use Nesterov's look-ahead form.
        accumulator_dtype: dtype of the buffer $m$; ``None`` keeps the dtype
            of the parameters.

    Returns:
        An ``optax.GradientTransformation``.

    Example:
        >>> import jax.numpy as jnp, jaxopt_lite as jol
        >>> t = jol.trace(0.5)
        >>> u, s = t.update(jnp.array([1.0]), t.init(jnp.zeros(1)))
        >>> t.update(jnp.array([1.0]), s)[0]
        Array([1.5], dtype=float32)

    References:
        Polyak, *Some methods of speeding up the convergence of iteration
        methods*, 1964.
        Sutskever et al., *On the importance of initialization and momentum in
        deep learning*, 2013.
    """
    v.check_range("decay", decay, 0.0, 1.0)
    check_bool("nesterov", nesterov)
    accumulator_dtype = check_dtype("accumulator_dtype", accumulator_dtype)

    def init_fn(params):
        return TraceState(trace=_tree.tree_zeros_like(params, dtype=accumulator_dtype))

    def update_fn(updates, state, params=None):
        del params
        new_trace = jax.tree.map(lambda g, m: g + decay * m, updates, state.trace)
        if nesterov:
            out = jax.tree.map(lambda g, m: g + decay * m, updates, new_trace)
        else:
            out = new_trace
        return cast_like(out, updates), TraceState(cast_like(new_trace, state.trace))

    return optax.GradientTransformation(init_fn, update_fn)


class AddDecayedWeightsState(NamedTuple):
    """The number of updates done so far (int32, saturating), for schedules."""

    count: jax.Array


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
        weight_decay: $\lambda$, a number >= 0, a scalar array or a schedule
            ``step -> rate``.
        mask: ``None`` (decay every leaf), or a tree of Python bools with the
            structure of the parameters (or a prefix of it), or a callable
            ``params -> such a tree``; leaves marked ``False`` are left as
            they are (the decay is wrapped in `masked`).

    Returns:
        An ``optax.GradientTransformation``; ``update`` needs ``params``.

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
    v.check_range(
        "weight_decay",
        weight_decay,
        0.0,
        math.inf,
        high_closed=False,
        allow_schedule=True,
    )

    def init_fn(params):
        del params
        return AddDecayedWeightsState(count=jnp.zeros([], jnp.int32))

    def update_fn(updates, state, params=None):
        if params is None:
            raise ValueError(
                "add_decayed_weights needs the parameters: call "
                "update(updates, state, params)."
            )
        rate = weight_decay(state.count) if callable(weight_decay) else weight_decay
        new_updates = jax.tree.map(
            lambda g, p: (g + rate * p).astype(g.dtype), updates, params
        )
        return new_updates, AddDecayedWeightsState(_tree.safe_increment(state.count))

    decay = optax.GradientTransformation(init_fn, update_fn)
    if mask is None:
        return decay
    return masked(decay, mask)
