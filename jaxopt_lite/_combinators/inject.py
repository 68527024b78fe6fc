"""`inject_hyperparams`: hyper-parameters that live in the optimizer state
(and `inject_stateful_hyperparams`, its deprecated optax name)."""

from __future__ import annotations

import functools
import inspect
import numbers
import warnings
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxopt_lite._core import tree_math
from jaxopt_lite._core.dtypes import tree_compute_dtype
from jaxopt_lite._core.recipe import recipe
from jaxopt_lite._core.validate import check_callable, check_dtype


class InjectHyperparamsState(NamedTuple):
    """Update count (int32, saturating), the hyper-parameters used by the last
    update (a dict of scalar arrays; before the first update, those of step 0),
    the states of the stateful schedules (a dict, empty when there are none)
    and the state of the inner transform: optax's layout."""

    count: jax.Array
    hyperparams: dict[str, jax.Array]
    hyperparams_states: dict[str, Any]
    inner_state: Any


@recipe
def inject_hyperparams(
    inner_factory: Callable[..., optax.GradientTransformation],
    static_args: str | Iterable[str] = (),
    hyperparam_dtype: Any = None,
) -> Callable[..., optax.GradientTransformationExtraArgs]:
    r"""Make a factory whose numeric hyper-parameters live in the optimizer state.

    $$
    h_t = \begin{cases} s(t) & h \text{ given as a schedule } s \\
    \text{state.hyperparams}[h] & \text{otherwise} \end{cases}
    \qquad u_t, S_t = F(h_t).\text{update}(g_t, S_{t-1})
    $$

    ``inject_hyperparams(F)(...)`` takes the arguments of ``F``; each number or
    array becomes an entry of ``state.hyperparams`` that can be read
    (`current_learning_rate` finds ``learning_rate`` there), replaced between
    steps (``state._replace(hyperparams={**state.hyperparams, "b1": 0.8})``)
    or batched with ``vmap``, all without recompiling. A callable argument is
    a schedule: it is evaluated at the step count every update (the first
    update uses ``s(0)``), and its value is stored in ``state.hyperparams``;
    changing a scheduled entry by hand has no effect. Booleans, ``None``,
    strings, dtypes (such as ``mu_dtype=jnp.bfloat16``) and the arguments
    named in ``static_args`` are passed through unchanged. ``F`` is called
    again at every update with the current values (as traced arrays under
    ``jit``), so its own checks only run on concrete values; the values given
    here are checked once, when calling the returned factory. To change a
    value under ``jit`` without a retrace, give an array of the stored dtype
    (``jnp.asarray(0.01, jnp.float32)``, not the Python float ``0.01``).

    Integer hyper-parameters are stored as int32 arrays; name them in
    ``static_args`` when ``F`` needs a Python ``int``. A stateful schedule
    (an object with ``init()``, ``update(state, **extra_args)`` and
    ``__call__(state, **extra_args)``, like optax's ``StatefulSchedule``)
    keeps its state in ``state.hyperparams_states``: each update uses its
    value at the current schedule state, then advances that state, both with
    the extra keyword arguments of ``update`` (such as ``value=``).

    Args:
        inner_factory: a function returning a gradient transformation, such as
            `scale_by_learning_rate` or an optimizer like ``adam``.
        static_args: the name (or names) of arguments of ``inner_factory`` to
            pass through unchanged, e.g. a callable that is not a schedule.
        hyperparam_dtype: the dtype of floating hyper-parameters. ``None`` (the
            default) uses the widest real floating dtype of the parameters,
            but at least float32: float32 for float32, bfloat16, float16 or
            complex64 parameters, float64 for float64 ones. (optax uses the
            parameters' dtype, which rounds ``b2=0.999`` to ``1.0`` in
            bfloat16: docs/optax-differences.md.)

    Returns:
        A factory with the same arguments as ``inner_factory`` that returns an
        ``optax.GradientTransformationExtraArgs`` whose state is an
        `InjectHyperparamsState`.

    Example:
        >>> import jax.numpy as jnp, jaxopt_lite as jol
        >>> opt = jol.inject_hyperparams(jol.scale_by_learning_rate)(learning_rate=0.1)
        >>> state = opt.init(jnp.zeros(2))
        >>> state.hyperparams["learning_rate"]
        Array(0.1, dtype=float32)
        >>> state = state._replace(hyperparams={"learning_rate": jnp.array(0.5)})
        >>> updates, state = opt.update(jnp.ones(2), state)
        >>> updates
        Array([-0.5, -0.5], dtype=float32)
        >>> jol.current_learning_rate(state)
        Array(0.5, dtype=float32)
    """
    check_callable("inner_factory", inner_factory)
    signature = inspect.signature(inner_factory)
    if isinstance(static_args, str):
        static_args = (static_args,)
    try:
        static = frozenset(static_args)
    except TypeError:
        raise TypeError(
            "static_args must be a string or an iterable of strings, got "
            f"{static_args!r}."
        ) from None
    has_var_kwargs = any(
        p.kind is inspect.Parameter.VAR_KEYWORD for p in signature.parameters.values()
    )
    unknown = sorted(str(s) for s in static - set(signature.parameters))
    if any(not isinstance(s, str) for s in static) or (unknown and not has_var_kwargs):
        raise ValueError(
            f"static_args={sorted(map(str, static))} is not allowed: every entry must "
            f"name an argument of {_name(inner_factory)}, whose arguments are "
            f"{list(signature.parameters)}."
        )
    hyperparam_dtype = check_dtype("hyperparam_dtype", hyperparam_dtype)

    @recipe
    @functools.wraps(inner_factory)
    def factory(*args: Any, **kwargs: Any) -> optax.GradientTransformationExtraArgs:
        try:
            bound = signature.bind(*args, **kwargs)
        except TypeError as e:
            raise TypeError(f"{_name(inner_factory)}(): {e}") from None
        bound.apply_defaults()
        arguments: dict[str, Any] = {}
        for pname, value in bound.arguments.items():
            kind = signature.parameters[pname].kind
            if kind is inspect.Parameter.VAR_KEYWORD:
                arguments.update(value)
            elif kind is inspect.Parameter.VAR_POSITIONAL:
                if value:
                    raise TypeError(
                        "inject_hyperparams cannot inject positional *args of "
                        f"{_name(inner_factory)}; pass hyper-parameters by name."
                    )
            else:
                arguments[pname] = value
        schedules, stateful, numeric, other = {}, {}, {}, {}
        for pname, value in arguments.items():
            if pname in static or isinstance(value, (bool, np.bool_, type, np.dtype)):
                other[pname] = value  # flags and dtypes (a dtype class is callable)
            elif (
                callable(value) and hasattr(value, "init") and hasattr(value, "update")
            ):
                stateful[pname] = value
            elif callable(value):
                schedules[pname] = value
            elif _is_numeric(value):
                numeric[pname] = value
            else:
                other[pname] = value
        # Let the inner factory check the values once, before any tracing.
        inner_factory(
            **other,
            **numeric,
            **{k: s(jnp.zeros([], jnp.int32)) for k, s in schedules.items()},
            **{k: f(f.init()) for k, f in stateful.items()},
        )

        def build(hyperparams):
            return optax.with_extra_args_support(inner_factory(**other, **hyperparams))

        def float_dtype(params):
            if hyperparam_dtype is not None:
                return hyperparam_dtype
            return tree_compute_dtype(params)

        def init_fn(params):
            count = jnp.zeros([], jnp.int32)
            dtype = float_dtype(params)
            hyperparams = {k: _as_array(x, dtype) for k, x in numeric.items()}
            hyperparams.update(
                {k: _as_array(s(count), dtype) for k, s in schedules.items()}
            )
            states = {k: f.init() for k, f in stateful.items()}
            # A stateful schedule's value may start as an integer (a running
            # total from 0) and become a float: it is stored as a float.
            hyperparams.update(
                {k: _as_float(f(states[k]), dtype) for k, f in stateful.items()}
            )
            inner_state = build(hyperparams).init(params)
            return InjectHyperparamsState(count, hyperparams, states, inner_state)

        def update_fn(updates, state, params=None, **extra_args):
            dtype = float_dtype(params)
            hyperparams = {}
            for k, x in state.hyperparams.items():
                old_dtype = jnp.result_type(x)
                if k in stateful:
                    x = stateful[k](state.hyperparams_states[k], **extra_args)
                    x = _as_float(x, old_dtype)
                elif k in schedules:
                    x = schedules[k](state.count)
                    if jnp.issubdtype(jnp.result_type(x), jnp.inexact):
                        x = jnp.asarray(x, old_dtype)
                hyperparams[k] = _as_array(x, dtype)
            updates, inner_state = build(hyperparams).update(
                updates, state.inner_state, params, **extra_args
            )
            count = tree_math.safe_increment(state.count)
            states = {
                k: f.update(state.hyperparams_states[k], **extra_args)
                for k, f in stateful.items()
            }
            return updates, InjectHyperparamsState(
                count, hyperparams, states, inner_state
            )

        return optax.GradientTransformationExtraArgs(init_fn, update_fn)

    return factory


# No @recipe: what it returns carries inject_hyperparams' recipe, so the
# drivers rebuild the optimizer without warning again.
def inject_stateful_hyperparams(
    inner_factory: Callable[..., optax.GradientTransformation],
    static_args: str | Iterable[str] = (),
    hyperparam_dtype: Any = None,
) -> Callable[..., optax.GradientTransformationExtraArgs]:
    r"""`inject_hyperparams` under the name optax has deprecated for it.

    $$
    h_t = \text{the schedule's value at its state (or at } t\text{), else }
    \text{state.hyperparams}[h] \qquad u_t, S_t = F(h_t).\text{update}(g_t,
    S_{t-1})
    $$

    optax's ``inject_stateful_hyperparams`` warns (``DeprecationWarning``)
    and calls ``inject_hyperparams``, which takes stateful schedules since;
    this one does the same with `inject_hyperparams`: the arguments, the
    numbers and the `InjectHyperparamsState` are those of
    `inject_hyperparams`. New code should call `inject_hyperparams`.

    Args:
        inner_factory: a function returning a gradient transformation.
        static_args: names of arguments passed through unchanged.
        hyperparam_dtype: the dtype of floating hyper-parameters.

    Returns:
        The factory `inject_hyperparams` returns.

    Example:
        >>> import warnings, jax.numpy as jnp, jaxopt_lite as jol
        >>> with warnings.catch_warnings():
        ...     warnings.simplefilter("ignore", DeprecationWarning)
        ...     factory = jol.inject_stateful_hyperparams(jol.scale)
        >>> opt = factory(step_size=2.0)
        >>> opt.update(jnp.ones(1), opt.init(jnp.ones(1)))[0]
        Array([2.], dtype=float32)
    """
    warnings.warn(
        "inject_stateful_hyperparams is deprecated (as in optax): call "
        "jaxopt_lite.inject_hyperparams, which takes stateful schedules too.",
        DeprecationWarning,
        stacklevel=2,
    )
    return inject_hyperparams(inner_factory, static_args, hyperparam_dtype)


def _name(f: Any) -> str:
    return getattr(f, "__name__", repr(f))


def _is_numeric(value: Any) -> bool:
    return isinstance(value, (numbers.Number, np.ndarray, np.generic, jax.Array))


def _as_array(value: Any, float_dtype: Any) -> jax.Array:
    """A strongly typed array: strongly typed JAX arrays are kept as they are,
    other floating values become ``float_dtype``, the rest keep their kind."""
    if isinstance(value, jax.Array) and not jax.typeof(value).weak_type:
        return value
    dtype = jnp.result_type(value)
    if jnp.issubdtype(dtype, jnp.floating):
        dtype = float_dtype
    return jnp.asarray(value, jax.dtypes.canonicalize_dtype(dtype))


def _as_float(value: Any, float_dtype: Any) -> jax.Array:
    """`_as_array`, with real integers stored as ``float_dtype`` too."""
    if jnp.issubdtype(jnp.result_type(value), jnp.integer):
        return jnp.asarray(value, float_dtype)
    return _as_array(value, float_dtype)
