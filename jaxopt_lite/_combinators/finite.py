"""`apply_if_finite`: skip updates whose gradients hold a NaN or an infinity;
`skip_not_finite` and `skip_large_updates`, the skip tests of
``optax.MultiSteps``."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jaxopt_lite._core import tree_math
from jaxopt_lite._core.dtypes import promote
from jaxopt_lite._core.recipe import recipe
from jaxopt_lite._core.validate import check_int, check_number, check_transform


class ApplyIfFiniteState(NamedTuple):
    """Counters of non-finite gradients and the inner state.

    ``notfinite_count``: consecutive non-finite gradients up to now (int32,
    reset to 0 by a finite one); ``last_finite``: whether the last gradient was
    finite (bool); ``total_notfinite``: non-finite gradients since ``init``
    (int32, saturating); ``inner_state``: the state of the wrapped transform.
    """

    notfinite_count: jax.Array
    last_finite: jax.Array
    total_notfinite: jax.Array
    inner_state: Any


@recipe
def apply_if_finite(
    inner: optax.GradientTransformation, max_consecutive_errors: int | jax.Array
) -> optax.GradientTransformationExtraArgs:
    r"""Skip steps whose gradients hold a NaN or an infinity.

    $$
    (u_t, S_t) = \begin{cases} T(g_t, S_{t-1}) & g_t \text{ finite or }
    n_t > N \\ (0, S_{t-1}) & \text{otherwise} \end{cases}
    $$

    where $n_t$ counts the consecutive non-finite gradients up to step $t$
    and $N$ is ``max_consecutive_errors``. A skipped step returns zero
    updates and leaves the inner state untouched; after more than $N$
    non-finite gradients in a row the update is applied anyway (so a run that
    is truly broken shows it). Same numbers and state as
    ``optax.apply_if_finite``.

    Args:
        inner: the transform to protect.
        max_consecutive_errors: $N$, an integer >= 0 (may be traced).

    Returns:
        An ``optax.GradientTransformationExtraArgs`` whose state is an
        `ApplyIfFiniteState`.

    Example:
        >>> import jax.numpy as jnp, jaxopt_lite as jol
        >>> opt = jol.apply_if_finite(jol.scale_by_learning_rate(0.1), 3)
        >>> updates, state = opt.update(jnp.array([jnp.nan, 1.0]), opt.init(None))
        >>> updates, state.total_notfinite
        (Array([0., 0.], dtype=float32), Array(1, dtype=int32))
    """
    check_transform("inner", inner)
    check_int("max_consecutive_errors", max_consecutive_errors, minimum=0, traced=True)
    inner = optax.with_extra_args_support(inner)

    def init_fn(params):
        return ApplyIfFiniteState(
            notfinite_count=jnp.zeros([], jnp.int32),
            last_finite=jnp.array(True),
            total_notfinite=jnp.zeros([], jnp.int32),
            inner_state=inner.init(params),
        )

    def update_fn(updates, state, params=None, **extra_args):
        finite = tree_math.tree_all_finite(updates)
        notfinite_count = jnp.where(
            finite,
            jnp.zeros([], jnp.int32),
            tree_math.safe_increment(state.notfinite_count),
        )
        total_notfinite = jnp.where(
            finite,
            state.total_notfinite,
            tree_math.safe_increment(state.total_notfinite),
        )

        def apply(operands):
            updates, inner_state = operands
            return inner.update(updates, inner_state, params, **extra_args)

        # Zeros shaped like what ``inner`` returns (usually like ``updates``).
        out_shape = jax.eval_shape(apply, (updates, state.inner_state))[0]

        def skip(operands):
            zeros = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), out_shape)
            return zeros, operands[1]

        apply_now = finite | (notfinite_count > max_consecutive_errors)
        updates, inner_state = jax.lax.cond(
            apply_now, apply, skip, (updates, state.inner_state)
        )
        return updates, ApplyIfFiniteState(
            notfinite_count, finite, total_notfinite, inner_state
        )

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def skip_not_finite(
    updates: Any, gradient_step: Any, params: Any
) -> tuple[jax.Array, dict[str, jax.Array]]:
    r"""Say whether a micro-step's updates hold a NaN or an infinity.

    $$
    n = \#\{i : g_i \notin \mathbb{R}\}, \qquad \text{skip} = (n > 0)
    $$

    A ``should_skip_update_fn`` for ``optax.MultiSteps``, with optax's
    signature and result (``accumulate_gradients(...,
    skip_nonfinite=True)`` does the same inside jaxopt_lite). The count is
    int32 (optax's follows the default integer, int64 under x64).

    Args:
        updates: the gradients of the micro-step.
        gradient_step: unused (the protocol's step counter).
        params: unused.

    Returns:
        ``(skip, info)``: a scalar bool, and the dict ``{"should_skip": skip,
        "num_not_finite": n}`` that ``optax.MultiSteps`` stores in its
        ``skip_state``.

    Example:
        >>> import jax.numpy as jnp, jaxopt_lite as jol
        >>> skip, info = jol.skip_not_finite(jnp.array([1.0, jnp.nan]), 0, None)
        >>> skip, info["num_not_finite"]
        (Array(True, dtype=bool), Array(1, dtype=int32))
    """
    del gradient_step, params
    counts = [
        jnp.sum(~jnp.isfinite(x), dtype=jnp.int32) for x in jax.tree.leaves(updates)
    ]
    num_not_finite = sum(counts, jnp.zeros([], jnp.int32))
    should_skip = num_not_finite > 0
    return should_skip, {"should_skip": should_skip, "num_not_finite": num_not_finite}


def skip_large_updates(
    updates: Any, gradient_step: Any, params: Any, max_squared_norm: Any
) -> tuple[jax.Array, dict[str, jax.Array]]:
    r"""Say whether a micro-step's updates are too large (or not finite).

    $$
    \text{skip} = \lnot\left(\lVert g \rVert_2^2 < \text{max\_squared\_norm}
    \right)
    $$

    A ``should_skip_update_fn`` for ``optax.MultiSteps``, with optax's
    signature and result (bind ``max_squared_norm`` with
    ``functools.partial``). A NaN norm is skipped too. The squares of complex
    elements are their squared moduli, and they are summed in float32 or
    wider (optax sums bfloat16 squares in bfloat16).

    Args:
        updates: the micro-step's gradients, whose norm is tested.
        gradient_step: the step counter ``optax.MultiSteps`` passes (not
            used).
        params: the parameters, or ``None`` (not used).
        max_squared_norm: the largest squared global norm accepted (a number
            or a scalar array, possibly traced).

    Returns:
        ``(skip, info)``: a scalar bool, and the dict ``{"should_skip": skip,
        "norm_squared": n}`` that ``optax.MultiSteps`` stores in its
        ``skip_state``.

    Example:
        >>> import jax.numpy as jnp, jaxopt_lite as jol
        >>> skip, info = jol.skip_large_updates(jnp.array([3.0, 4.0]), 0, None, 20.0)
        >>> skip, info["norm_squared"]
        (Array(True, dtype=bool), Array(25., dtype=float32))
    """
    del gradient_step, params
    check_number("max_squared_norm", max_squared_norm)
    norm_squared = tree_math.tree_sum_squares(updates)
    should_skip = ~jnp.less(*promote(norm_squared, max_squared_norm))
    return should_skip, {"should_skip": should_skip, "norm_squared": norm_squared}
