r"""Schedule-Free learning: `schedule_free` replaces a base optimizer's
momentum by interpolation and averaging; `schedule_free_eval_params` gives
the averaged parameters to evaluate."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import optax
import optax.contrib

from jaxopt_lite._core import tree_math, validate
from jaxopt_lite._core.dtypes import add, div, mul, sub, tree_compute_dtype
from jaxopt_lite._core.recipe import recipe

PyTree = Any


ScheduleFreeState = optax.contrib.ScheduleFreeState
r"""optax.contrib's class itself (so states equal optax's as trees): $\beta_1$,
the sum of the averaging weights, the number of updates done (int32,
saturating: the step the schedule is read at), the largest learning rate so
far, the base optimizer's state and the sequence $z$."""


def _averaged(y: jax.Array, z: jax.Array, b1: Any) -> jax.Array:
    r"""$x = (y - (1 - \beta_1) z) / \beta_1$ (in the promoted dtype)."""
    return div(sub(y, mul(1 - b1, z)), b1)


def _copy(p: Any, dtype: Any) -> Any:
    """A copy of ``p`` in ``dtype`` (a distinct buffer, so that parameters and
    state can both be donated); abstract leaves stay abstract."""
    if isinstance(p, jax.ShapeDtypeStruct):
        return jax.ShapeDtypeStruct(jnp.shape(p), dtype)
    return jnp.array(p, dtype=dtype)


def schedule_free_eval_params(state: Any, params: PyTree) -> PyTree:
    r"""The parameters to evaluate a `schedule_free` run at (its average $x$).

    $$
    x_t = \frac{y_t - (1 - \beta_1) z_t}{\beta_1}
    $$

    where $y_t$ are the parameters the run trains (where gradients are taken)
    and $z_t$ the base optimizer's sequence, kept in the state.

    Args:
        state: a `ScheduleFreeState` (the state of `schedule_free`,
            `schedule_free_sgd` or `schedule_free_adamw`).
        params: the current parameters $y_t$.

    Returns:
        $x_t$, with the parameters' structure and dtypes.

    Example:
        >>> import jax.numpy as jnp, jaxopt_lite as jol
        >>> opt = jol.schedule_free_sgd(0.5, b1=0.5)
        >>> params = jnp.array([2.0])
        >>> state = opt.init(params)
        >>> for grad in (1.0, -1.0):
        ...     updates, state = opt.update(jnp.array([grad]), state, params)
        ...     params = params + updates
        >>> params, jol.schedule_free_eval_params(state, params)
        (Array([1.875], dtype=float32), Array([1.75], dtype=float32))
    """
    if not hasattr(state, "b1") or not hasattr(state, "z"):
        raise ValueError(
            "schedule_free_eval_params needs the ScheduleFreeState of a "
            f"schedule_free optimizer, got {type(state).__name__}."
        )
    return jax.tree.map(
        lambda y, z: _averaged(y, z, state.b1).astype(y.dtype), params, state.z
    )


@recipe
def schedule_free(
    base_optimizer: optax.GradientTransformation,
    learning_rate: optax.ScalarOrSchedule,
    b1: float | jax.Array = 0.9,
    weight_lr_power: float | jax.Array = 2.0,
    state_dtype: Any = None,
) -> optax.GradientTransformationExtraArgs:
    r"""Make a base optimizer schedule-free: interpolate and average its iterates.

    $$
    z_{t+1} = z_t + B_t(g_t), \quad
    c_{t+1} = \frac{w_t}{\sum_{s \le t} w_s}, \quad
    x_{t+1} = (1 - c_{t+1}) x_t + c_{t+1} z_{t+1}, \quad
    y_{t+1} = \beta_1 x_{t+1} + (1 - \beta_1) z_{t+1}
    $$

    The gradient $g_t$ is taken at $y_t$ (the parameters the run trains),
    $B_t$ is the base optimizer's update (without momentum: e.g. ``sgd`` or
    ``adam`` with ``b1=0``), and the weights are
    $w_t = (\max_{s \le t} \gamma_s)^{p}$ with $\gamma_s$ the learning rate at
    step $s$ and $p$ ``weight_lr_power`` ($c = 0$ while all weights are 0).
    Evaluate at $x_t$ (`schedule_free_eval_params`). $x_t$ is recomputed from
    $y_t$ and $z_t$, so the memory is the base optimizer's plus $z$.

    The schedule is read at step $t = 0, 1, \dots$ for the $(t+1)$-th update,
    as by the base optimizer. optax reads it at $t + 1$ (its counter starts at
    1, optax PR 1744), so with a warm-up from 0 its first averaging weight is
    that of step 1 while the base step is 0; with a constant rate the numbers
    are the same.

    Args:
        base_optimizer: the optimizer whose steps are averaged.
        learning_rate: its learning rate, a number >= 0 or a schedule (with
            a warm-up, without decay).
        b1: $\beta_1$, the interpolation, in $(0, 1]$.
        weight_lr_power: $p$, a finite number.
        state_dtype: dtype of $z$; ``None`` keeps the parameters'.

    Returns:
        An ``optax.GradientTransformationExtraArgs``. The scalars of the
        state are in the parameters' precision (at least float32).

    Example:
        >>> import jax.numpy as jnp, jaxopt_lite as jol
        >>> opt = jol.schedule_free(jol.sgd(0.5), 0.5, b1=0.5)
        >>> params = jnp.array([2.0])
        >>> updates, state = opt.update(jnp.array([1.0]), opt.init(params), params)
        >>> updates  # z = 2 - 0.5, and all the weight on it: x = y = z
        Array([-0.5], dtype=float32)

    References:
        Defazio et al., *The Road Less Scheduled*, 2024.
    """
    validate.check_transform("base_optimizer", base_optimizer)
    validate.check_learning_rate("learning_rate", learning_rate)
    validate.check_range("b1", b1, 0.0, 1.0, low_closed=False)
    validate.check_range("weight_lr_power", weight_lr_power)
    state_dtype = validate.check_dtype("state_dtype", state_dtype)
    base = optax.with_extra_args_support(base_optimizer)

    def init_fn(params):
        dtype = tree_compute_dtype(params)
        z = jax.tree.map(lambda p: _copy(p, state_dtype or jnp.result_type(p)), params)
        return ScheduleFreeState(
            b1=jnp.asarray(b1, dtype),
            weight_sum=jnp.zeros([], dtype),
            step_count=jnp.zeros([], jnp.int32),
            max_lr=jnp.zeros([], dtype),
            base_optimizer_state=base.init(params),
            z=z,
        )

    def update_fn(updates, state, params=None, **extra_args):
        validate.require_params("schedule_free", params)
        updates, params = tree_math.as_arrays(updates), tree_math.as_arrays(params)
        dtype = state.max_lr.dtype
        rate = (
            learning_rate(state.step_count)
            if callable(learning_rate)
            else learning_rate
        )
        max_lr = jnp.maximum(state.max_lr, jnp.asarray(rate).astype(dtype))
        weight = jnp.power(max_lr, jnp.asarray(weight_lr_power).astype(dtype))
        weight_sum = state.weight_sum + weight
        # 0 / 0 (no weight yet) is 0; a NaN weight stays NaN.
        ratio = jnp.nan_to_num(weight / weight_sum, nan=0.0, posinf=jnp.inf)
        ck = jnp.where(jnp.isnan(weight) | jnp.isnan(weight_sum), jnp.nan, ratio)

        base_updates, base_state = base.update(
            updates, state.base_optimizer_state, params, **extra_args
        )
        z = jax.tree.map(lambda z, u: add(z, u).astype(z.dtype), state.z, base_updates)

        def new_update(y, z_old, z_new):
            x = add(mul(1 - ck, _averaged(y, z_old, b1)), mul(ck, z_new))
            return sub(add(mul(b1, x), mul(1 - b1, z_new)), y).astype(y.dtype)

        new_updates = jax.tree.map(new_update, params, state.z, z)
        return new_updates, ScheduleFreeState(
            b1=state.b1,
            weight_sum=weight_sum,
            step_count=tree_math.safe_increment(state.step_count),
            max_lr=max_lr,
            base_optimizer_state=base_state,
            z=z,
        )

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)
