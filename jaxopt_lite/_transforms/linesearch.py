"""What the line searches share (`scale_by_zoom_linesearch` in ``zoom.py``,
`scale_by_backtracking_linesearch` in ``backtracking.py``).

Both are optax-compatible transforms placed last in a chain: they take the
direction computed so far and scale it by a step size found with extra calls
of ``value_fn``. Names, arguments and numbers follow optax's.
"""

from __future__ import annotations

import inspect
from typing import Any

import jax
import jax.numpy as jnp

PyTree = Any


def fn_kwargs(value_fn: Any, extra_args: dict[str, Any]) -> dict[str, Any]:
    """The extra keyword arguments that ``value_fn`` accepts."""
    params = inspect.signature(value_fn).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return dict(extra_args)
    return {k: a for k, a in extra_args.items() if k in params}


def check_update_inputs(
    name: str, params: Any, value: Any, grad: Any, value_fn: Any
) -> None:
    missing = [
        k
        for k, a in (("params", params), ("value", value), ("grad", grad),
                     ("value_fn", value_fn))
        if a is None
    ]  # fmt: skip
    if missing:
        raise TypeError(
            f"{name}.update needs params, value=, grad= and value_fn= (the objective "
            f"at params, its gradient and the objective itself; minimize passes "
            f"them); missing: {', '.join(missing)}."
        )


def real_dtype(params: PyTree) -> Any:
    return jnp.real(jnp.empty((), jax.tree.leaves(params)[0].dtype)).dtype


def nan_to_inf(x: jax.Array) -> jax.Array:
    return jnp.where(jnp.isnan(x), jnp.inf, x)
