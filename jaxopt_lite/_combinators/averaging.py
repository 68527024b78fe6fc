"""Moving averages: of the updates (`ema`), and wrappers that keep a second
copy of the parameters in the optimizer state: their exponential moving
average (`ema_params`) and lookahead's slow weights (`lookahead`)."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jaxopt_lite._core import dtypes, tree_math, validate
from jaxopt_lite._core.dtypes import add, compute_dtype, div, mul, promote, sub
from jaxopt_lite._core.recipe import recipe
from jaxopt_lite._core.validate import (
    check_bool,
    check_dtype,
    check_int,
    check_transform,
)

EmaState = optax.EmaState
"""optax's class itself (so states equal optax's as trees): update count
(int32, saturating) and the moving average of the updates (a tree like them,
not bias-corrected)."""


@recipe
def ema(
    decay: float | jax.Array,
    debias: bool = True,
    accumulator_dtype: Any = None,
) -> optax.GradientTransformation:
    r"""Replace the updates by their exponential moving average.

    $$
    m_t = \beta\, m_{t-1} + (1-\beta)\, g_t, \qquad
    u_t = \begin{cases} \dfrac{m_t}{1-\beta^t} & \text{debias} \\ m_t &
    \text{otherwise} \end{cases}
    $$

    with $m_0 = 0$. Unlike `trace` (momentum, $m_t = \beta m_{t-1} + g_t$)
    the new update has weight $1-\beta$. Same numbers and state as
    ``optax.ema``. Updates keep their dtype; integer or boolean updates (a
    measurement, see `measure_with_ema`) give floating averages.

    Args:
        decay: $\beta$ in $[0, 1)$ (may be traced).
        debias: divide by $1-\beta^t$, so early averages do not lean
            towards 0.
        accumulator_dtype: the dtype of ``EmaState.ema``; ``None`` keeps the
            parameters' dtype.

    Returns:
        An ``optax.GradientTransformation`` whose state is an `EmaState`.

    Example:
        >>> import jax.numpy as jnp, jaxopt_lite as jol
        >>> t = jol.ema(0.5, debias=False)
        >>> state = t.init(jnp.zeros(1))
        >>> u, state = t.update(jnp.array([4.0]), state)
        >>> u, state.ema
        (Array([2.], dtype=float32), Array([2.], dtype=float32))
    """
    validate.check_decay("decay", decay)
    check_bool("debias", debias)
    accumulator_dtype = check_dtype(
        "accumulator_dtype", accumulator_dtype, kind=jnp.inexact
    )

    def init_fn(params):
        return EmaState(
            jnp.zeros([], jnp.int32), dtypes.zeros_like(params, accumulator_dtype)
        )

    def update_fn(updates, state, params=None):
        del params
        count = tree_math.safe_increment(state.count)
        # The average in the precision of the update and the state together
        # (optax's), cast to the state's dtype only when stored; None updates
        # stay None (optax lets them through).
        new = jax.tree.map(
            lambda g, m: None if g is None else tree_math.ema(decay, m, g),
            updates,
            state.ema,
            is_leaf=lambda x: x is None,
        )
        out = tree_math.tree_bias_correction(new, decay, count) if debias else new
        out = jax.tree.map(
            lambda u, g: (
                u.astype(g.dtype) if jnp.issubdtype(g.dtype, jnp.inexact) else u
            ),
            out,
            updates,
        )
        return out, EmaState(count, dtypes.cast_like(new, state.ema))

    return optax.GradientTransformation(init_fn, update_fn)


class EmaParamsState(NamedTuple):
    """Update count (int32, saturating), the moving average of the parameters
    (a tree like them) and the inner state."""

    count: jax.Array
    ema: Any
    inner_state: Any


@recipe
def ema_params(
    inner: optax.GradientTransformation,
    decay: float | jax.Array,
    *,
    debias: bool = True,
    accumulator_dtype: Any = None,
) -> optax.GradientTransformationExtraArgs:
    r"""Keep an exponential moving average of the parameters in the state.

    $$
    \theta_t = \theta_{t-1} + u_t, \qquad
    \bar\theta_t = \bar\theta_{t-1} + w_t\,(\theta_t - \bar\theta_{t-1}),
    \qquad w_t = \begin{cases} \dfrac{1-\beta}{1-\beta^t} & \text{debias}
    \\ 1-\beta & \text{otherwise} \end{cases}
    $$

    The updates of ``inner`` pass through unchanged; the average starts at the
    initial parameters $\bar\theta_0 = \theta_0$ and is read with `ema_of`.
    With ``debias=True`` it is the bias-corrected average of
    $\theta_1, \dots, \theta_t$ (what ``optax.ema(decay, debias=True)`` gives
    when fed the parameters), so it does not lean towards $\theta_0$ early
    on; with ``debias=False`` it is the usual
    $\bar\theta_t = \beta\bar\theta_{t-1} + (1-\beta)\theta_t$.

    The wrapper must see the final updates: make it the outermost transform
    (inside `accumulate_gradients`, which only steps every $k$ calls, and
    inside or outside `apply_if_finite`, which leaves the state alone on
    skipped steps). ``update`` needs ``params``.

    Args:
        inner: the optimizer whose parameters are averaged.
        decay: $\beta$ in $[0, 1)$ (may be traced).
        debias: correct the bias of the average towards its start.
        accumulator_dtype: dtype of the average; ``None`` keeps each
            parameter's dtype (give ``jnp.float32`` for bfloat16 parameters).

    Returns:
        An ``optax.GradientTransformationExtraArgs`` whose state is an
        `EmaParamsState`.

    Example:
        >>> import jax.numpy as jnp, jaxopt_lite as jol
        >>> opt = jol.ema_params(jol.scale_by_learning_rate(1.0), decay=0.5,
        ...                      debias=False)
        >>> params = jnp.array([0.0])
        >>> state = opt.init(params)
        >>> updates, state = opt.update(jnp.array([-4.0]), state, params)
        >>> jol.ema_of(state)
        Array([2.], dtype=float32)

    References:
        Polyak and Juditsky, *Acceleration of stochastic approximation by
        averaging*, 1992.
    """
    check_transform("inner", inner)
    validate.check_decay("decay", decay)
    check_bool("debias", debias)
    accumulator_dtype = check_dtype(
        "accumulator_dtype", accumulator_dtype, kind=jnp.inexact
    )
    inner = optax.with_extra_args_support(inner)

    def init_fn(params):
        ema = optax.tree.cast(params, accumulator_dtype)
        return EmaParamsState(jnp.zeros([], jnp.int32), ema, inner.init(params))

    def update_fn(updates, state, params=None, **extra_args):
        validate.require_params("ema_params", params)
        updates, inner_state = inner.update(
            updates, state.inner_state, params, **extra_args
        )
        count = tree_math.safe_increment(state.count)

        def weight(m):  # in the average's precision (float64 for float64)
            if not debias:
                return 1 - decay
            steps = jnp.asarray(count).astype(compute_dtype(m))
            return div(1 - decay, 1 - jnp.power(*promote(decay, steps)))

        ema = jax.tree.map(
            lambda m, p, u: add(m, mul(weight(m), (p + u).astype(m.dtype) - m)).astype(
                m.dtype
            ),
            state.ema,
            params,
            updates,
        )
        return updates, EmaParamsState(count, ema, inner_state)

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def ema_of(opt_state: Any) -> Any:
    r"""Read the moving average of the parameters kept by `ema_params`.

    Args:
        opt_state: a state holding an `EmaParamsState` anywhere inside it
            (e.g. the state of ``chain(..., ema_params(...))`` or of a wrapper
            around it). The first one found is used.

    Returns:
        The average, a tree like the parameters. Raises ``ValueError`` when
        the state holds no `EmaParamsState`.

    Example:
        >>> import jax.numpy as jnp, jaxopt_lite as jol
        >>> opt = jol.ema_params(jol.scale_by_learning_rate(0.1), decay=0.9)
        >>> jol.ema_of(opt.init({"w": jnp.ones(2)}))
        {'w': Array([1., 1.], dtype=float32)}
    """
    return _find(opt_state, EmaParamsState, "ema_of", "ema_params").ema


class LookaheadState(NamedTuple):
    """The fast optimizer's state, the fast steps since the last
    synchronisation (int32, in ``[0, sync_period)``) and the slow parameters."""

    fast_state: Any
    steps_since_sync: jax.Array
    slow_params: Any


@recipe
def lookahead(
    fast_optimizer: optax.GradientTransformation,
    sync_period: int | jax.Array,
    slow_step_size: float | jax.Array,
    reset_state: bool = False,
) -> optax.GradientTransformationExtraArgs:
    r"""Lookahead: $k$ fast steps forward, then the slow weights move part way.

    $$
    \begin{aligned}
    \theta &\leftarrow \theta + u \quad \text{(the fast optimizer's step)} \\
    \text{every } k \text{ steps:}\quad
    \phi &\leftarrow \phi + \alpha\,(\theta - \phi), \qquad \theta \leftarrow \phi
    \end{aligned}
    $$

    The same numbers as ``optax.lookahead``, with a simpler contract: the
    parameters are the ordinary (fast) parameters $\theta$, so gradients,
    loops and losses need no change, and the slow parameters $\phi$ live in
    the state, read with `slow_params_of` (use them for evaluation). optax
    instead passes ``optax.LookaheadParams(fast, slow)`` as the parameters;
    ``opt_state.slow_params`` here is its ``params.slow``. The synchronising
    step returns the update that moves $\theta$ onto the new $\phi$, so
    lookahead must be the outermost transform. ``update`` needs ``params``.

    Args:
        fast_optimizer: the inner optimizer (extra arguments such as ``value=``
            reach it).
        sync_period: $k$, an integer >= 1 (may be traced).
        slow_step_size: $\alpha$ in $[0, 1]$ (may be traced).
        reset_state: re-initialise the fast optimizer's state (from the
            synchronised parameters) at every synchronisation.

    Returns:
        An ``optax.GradientTransformationExtraArgs`` whose state is a
        `LookaheadState`.

    Example:
        >>> import jax.numpy as jnp, jaxopt_lite as jol
        >>> opt = jol.lookahead(jol.scale_by_learning_rate(1.0), sync_period=2,
        ...                     slow_step_size=0.5)
        >>> params = jnp.array([0.0])
        >>> state = opt.init(params)
        >>> for _ in range(2):
        ...     updates, state = opt.update(jnp.array([-1.0]), state, params)
        ...     params = params + updates
        >>> params, jol.slow_params_of(state)
        (Array([1.], dtype=float32), Array([1.], dtype=float32))

    References:
        Zhang, Lucas, Hinton and Ba, *Lookahead Optimizer: k steps forward,
        1 step back*, 2019.
    """
    check_transform("fast_optimizer", fast_optimizer)
    check_int("sync_period", sync_period, minimum=1, traced=True)
    validate.check_range("slow_step_size", slow_step_size, 0.0, 1.0)
    check_bool("reset_state", reset_state)
    fast = optax.with_extra_args_support(fast_optimizer)

    def check_params(params):
        validate.require_params("lookahead", params)
        if isinstance(params, optax.LookaheadParams):
            raise TypeError(
                "jaxopt_lite.lookahead takes the ordinary (fast) parameters, not "
                "optax.LookaheadParams: pass params.fast; the slow parameters are "
                "kept in the state (read them with jaxopt_lite.slow_params_of)."
            )

    def init_fn(params):
        check_params(params)
        return LookaheadState(fast.init(params), jnp.zeros([], jnp.int32), params)

    def update_fn(updates, state, params=validate.MISSING, **extra_args):  # as in optax
        check_params(params)
        updates, fast_state = fast.update(
            updates, state.fast_state, params, **extra_args
        )
        sync = state.steps_since_sync == sync_period - 1
        gap = jax.tree.map(
            lambda p, u, s: p + u - s, params, updates, state.slow_params
        )
        slow = jax.tree.map(
            lambda s, d: jnp.where(
                sync, *promote(add(s, mul(slow_step_size, d)), s)
            ).astype(s.dtype),
            state.slow_params,
            gap,
        )
        updates = jax.tree.map(
            lambda u, d: jnp.where(
                sync, *promote(sub(u, mul(1 - slow_step_size, d)), u)
            ).astype(u.dtype),
            updates,
            gap,
        )
        if reset_state:
            fresh = fast.init(slow)
            fast_state = jax.tree.map(
                lambda f, c: jnp.where(sync, f, c).astype(jnp.result_type(c)),
                fresh,
                fast_state,
            )
        steps = (state.steps_since_sync + 1) % sync_period
        return updates, LookaheadState(fast_state, steps.astype(jnp.int32), slow)

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def slow_params_of(opt_state: Any) -> Any:
    r"""Read the slow parameters $\phi$ kept by `lookahead`.

    Args:
        opt_state: a state holding a `LookaheadState` anywhere inside it. The
            first one found is used.

    Returns:
        The slow parameters, a tree like the parameters. Raises ``ValueError``
        when the state holds no `LookaheadState`.

    Example:
        >>> import jax.numpy as jnp, jaxopt_lite as jol
        >>> opt = jol.lookahead(jol.scale_by_learning_rate(0.1), 5, 0.5)
        >>> jol.slow_params_of(opt.init(jnp.ones(2)))
        Array([1., 1.], dtype=float32)
    """
    return _find(opt_state, LookaheadState, "slow_params_of", "lookahead").slow_params


def _find(opt_state: Any, cls: type, reader: str, maker: str) -> Any:
    nodes = jax.tree.leaves(opt_state, is_leaf=lambda x: isinstance(x, cls))
    for node in nodes:
        if isinstance(node, cls):
            return node
    raise ValueError(
        f"{reader}: the optimizer state holds no {cls.__name__}; build the "
        f"optimizer with jaxopt_lite.{maker}."
    )
