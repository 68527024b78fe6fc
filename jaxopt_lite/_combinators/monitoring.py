"""Measurements of the updates kept in the state, to be read back with
``optax.tree.get``: `snapshot`, `monitor` and `measure_with_ema`."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import optax

from jaxopt_lite._combinators.averaging import ema
from jaxopt_lite._combinators.chain import chain
from jaxopt_lite._combinators.stateless import stateless
from jaxopt_lite._core.dtypes import promoted_dtype
from jaxopt_lite._core.recipe import recipe
from jaxopt_lite._core.validate import check_callable

PyTree = Any
Measure = Callable[[PyTree], PyTree]


SnapshotState = optax.SnapshotState
"""optax's class itself (so states equal optax's as trees): ``measurement``, a
dict ``{measure_name: value}`` holding the last measurement."""


@recipe
def snapshot(measure_name: str, measure: Measure) -> optax.GradientTransformation:
    r"""Keep a measurement of the updates in the state; pass them on unchanged.

    $$
    u \leftarrow g, \qquad S \leftarrow \{\text{measure\_name}: f(g)\}
    $$

    Put it in a `chain` to look at the updates at that point (the gradient
    before clipping, say); read the value with ``optax.tree.get(state,
    measure_name)``. Before the first update the state holds $f$ of the
    parameters, as in ``optax.snapshot``.

    Args:
        measure_name: the key the measurement is stored under.
        measure: $f$, a function of the updates returning a tree of arrays.

    Returns:
        An ``optax.GradientTransformation`` whose state is a `SnapshotState`.

    Example:
        >>> import jax.numpy as jnp, optax, jaxopt_lite as jol
        >>> opt = jol.chain(jol.snapshot("raw", jnp.linalg.norm), jol.clip(1.0))
        >>> updates, state = opt.update(jnp.array([3.0, 4.0]), opt.init(jnp.zeros(2)))
        >>> updates, optax.tree.get(state, "raw")
        (Array([1., 1.], dtype=float32), Array(5., dtype=float32))
    """
    if not isinstance(measure_name, str):
        raise TypeError(f"measure_name must be a string, got {measure_name!r}.")
    check_callable("measure", measure)

    def init_fn(params):
        return SnapshotState({measure_name: measure(params)})

    def update_fn(updates, state, params=None):
        del state, params
        return updates, SnapshotState({measure_name: measure(updates)})

    return optax.GradientTransformation(init_fn, update_fn)


MonitorState = optax.MonitorState
"""optax's class itself (so states equal optax's as trees): ``measurements``, a
dict ``{name: value}`` of the last measurements (zeros of their shapes and
dtypes before the first update); ``measure_states``: the states of the
measuring transforms, a tuple in the order of ``measures``."""


@recipe
def monitor(
    measures: Mapping[str, optax.GradientTransformation | Measure],
) -> optax.GradientTransformationExtraArgs:
    r"""Keep several measurements of the updates, some of them stateful.

    $$
    u \leftarrow g, \qquad S.\text{measurements}[k] \leftarrow
    M_k(g, S_k) \quad \text{for each name } k
    $$

    Each measure is a function of the updates (as for `snapshot`) or a
    transform whose output is the measurement and whose state is kept, such
    as `measure_with_ema`; it receives the updates, the parameters and the
    extra keyword arguments of ``update``. The updates pass on unchanged;
    read a measurement with ``optax.tree.get(state, name)``.

    optax's ``monitor`` starts with an empty dict of measurements, so its
    state changes structure at the first update and cannot be carried
    through ``lax.scan`` or a compiled loop. Here ``init`` fills it with
    zeros of the measurements' shapes and dtypes (from the measures applied
    abstractly to the parameters, so a measuring transform that needs extra
    keyword arguments cannot be used); after an update the state is
    optax's (docs/optax-differences.md).

    Args:
        measures: a dict ``name -> measure``, each a function of the updates
            or a gradient transformation.

    Returns:
        An ``optax.GradientTransformationExtraArgs`` whose state is a
        `MonitorState`.

    Example:
        >>> import jax.numpy as jnp, optax, jaxopt_lite as jol
        >>> opt = jol.chain(
        ...     jol.monitor({"norm": optax.tree.norm,
        ...                  "clipped": jol.measure_with_ema(
        ...                      lambda g: optax.tree.norm(g) > 1.0, decay=0.9)}),
        ...     jol.clip_by_global_norm(1.0))
        >>> updates, state = opt.update(jnp.array([3.0, 4.0]), opt.init(jnp.zeros(2)))
        >>> optax.tree.get(state, "norm"), optax.tree.get(state, "clipped")
        (Array(5., dtype=float32), Array(0.99999976, dtype=float32))
    """
    if not isinstance(measures, Mapping):
        raise TypeError(f"measures must be a dict name -> measure, got {measures!r}.")
    transforms = {}
    for name, m in measures.items():
        if not isinstance(name, str):
            raise TypeError(f"measures keys must be strings, got {name!r}.")
        if isinstance(m, optax.GradientTransformation):
            transforms[name] = optax.with_extra_args_support(m)
        elif callable(m):
            transforms[name] = optax.with_extra_args_support(
                stateless(lambda g, _, m=m: m(g))
            )
        else:
            raise TypeError(
                f"measures[{name!r}] must be a function of the updates or a "
                f"gradient transformation, got {m!r}."
            )

    def init_fn(params):
        states = tuple(t.init(params) for t in transforms.values())
        shapes = {
            name: jax.eval_shape(t.update, params, s, params)[0]
            for (name, t), s in zip(transforms.items(), states, strict=True)
        }
        zeros = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)
        return MonitorState(zeros, states)

    def update_fn(updates, state, params=None, **extra_args):
        measurements, states = {}, []
        for (name, t), s in zip(transforms.items(), state.measure_states, strict=True):
            measurements[name], s = t.update(updates, s, params, **extra_args)
            states.append(s)
        return updates, MonitorState(measurements, tuple(states))

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


@recipe
def measure_with_ema(
    measure: Measure,
    decay: float | jax.Array,
    debias: bool = True,
    accumulator_dtype: Any = None,
) -> optax.GradientTransformationExtraArgs:
    r"""Return the exponential moving average of a measurement of the updates.

    $$
    m_t = \beta\, m_{t-1} + (1-\beta)\, f(g_t), \qquad
    u_t = \begin{cases} \dfrac{m_t}{1-\beta^t} & \text{debias} \\ m_t &
    \text{otherwise} \end{cases}
    $$

    A measure for `monitor` (its output replaces the updates, so it belongs
    there rather than directly in a chain): `stateless` ($f$) chained with
    `ema`, as ``optax.measure_with_ema``, whose state is that chain's,
    ``(optax.EmptyState(), EmaState)``. A boolean or integer measurement
    (``norm > threshold``) is averaged as a float from the start (optax
    starts from a boolean or integer zero that becomes a float at the first
    update, so its state changes dtype: docs/optax-differences.md).

    Args:
        measure: $f$, a function of the updates returning a tree of arrays.
        decay: $\beta$ in $[0, 1)$ (may be traced).
        debias: divide by $1-\beta^t$.
        accumulator_dtype: the dtype of the average; ``None`` keeps the
            measurement's (a float dtype for boolean or integer ones).

    Returns:
        An ``optax.GradientTransformationExtraArgs``.

    Example:
        >>> import jax.numpy as jnp, jaxopt_lite as jol
        >>> t = jol.measure_with_ema(jnp.sum, decay=0.5, debias=False)
        >>> state = t.init(jnp.zeros(2))
        >>> t.update(jnp.array([1.0, 3.0]), state)[0]
        Array(2., dtype=float32)
    """
    check_callable("measure", measure)
    average = ema(decay, debias, accumulator_dtype)

    def as_float(x):
        # What the first update makes of a boolean or integer measurement.
        return (
            x
            if jnp.issubdtype(x.dtype, jnp.inexact)
            else x.astype(promoted_dtype(x, 1.0))
        )

    def init_fn(params):
        return average.init(jax.tree.map(as_float, measure(params)))

    return chain(
        stateless(lambda updates, _: measure(updates)), average._replace(init=init_fn)
    )
