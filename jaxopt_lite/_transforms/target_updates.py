"""Updates of a second copy of the parameters, such as the target network of
Q-learning: `periodic_update`."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from jaxopt_lite._core.dtypes import promote
from jaxopt_lite._core.validate import check_int

PyTree = Any


def periodic_update(
    new_tensors: PyTree,
    old_tensors: PyTree,
    steps: int | jax.Array,
    update_period: int | jax.Array,
) -> PyTree:
    r"""Take the new tensors every ``update_period`` steps, else keep the old.

    $$
    \bar\theta_t = \begin{cases} \theta_t & t \bmod P = 0 \\
    \bar\theta_{t-1} & \text{otherwise} \end{cases}
    $$

    The hard update of a target network (every $P$ steps the target is
    replaced by the online parameters), as ``optax.periodic_update``.

    Args:
        new_tensors: $\theta_t$, the tree taken at the update steps.
        old_tensors: $\bar\theta_{t-1}$, the tree kept otherwise (same
            structure, shapes and dtypes).
        steps: $t$, an integer step counter (may be traced).
        update_period: $P$, an integer >= 1 (may be traced).

    Returns:
        ``new_tensors`` or ``old_tensors``.

    Example:
        >>> import jax.numpy as jnp, jaxopt_lite as jol
        >>> jol.periodic_update(jnp.ones(2), jnp.zeros(2), steps=4, update_period=2)
        Array([1., 1.], dtype=float32)
    """
    check_int("steps", steps, minimum=0, traced=True)
    check_int("update_period", update_period, minimum=1, traced=True)
    update = jnp.mod(*promote(steps, update_period)) == 0
    return jax.lax.cond(update, lambda: new_tensors, lambda: old_tensors)
