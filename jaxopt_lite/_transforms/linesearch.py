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

from jaxopt_lite._core import dtypes

PyTree = Any


def fn_kwargs(name: str, value_fn: Any, extra_args: dict[str, Any]) -> dict[str, Any]:
    """The extra keyword arguments of ``update``, all of which ``value_fn``
    must accept (as optax's line searches require: an argument that reaches
    no function is a mistake, not something to drop silently)."""
    try:
        params = inspect.signature(value_fn).parameters
    except (TypeError, ValueError):  # no signature to read: pass them all
        return dict(extra_args)
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return dict(extra_args)
    unused = [k for k in extra_args if k not in params]
    if unused:
        raise TypeError(
            f"Unexpected keyword arguments passed to {name}.update: {unused}; "
            f"value_fn does not take them (its parameters: {list(params)}). Pass "
            "only arguments value_fn accepts, by name (optax's line searches "
            "refuse them too, with this message's first words)."
        )
    return dict(extra_args)


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
    """The real dtype of the parameters' first leaf: the line search's
    values, slopes and step sizes are computed in it."""
    return dtypes.real_dtype(jax.tree.leaves(params)[0])


def nan_to_inf(x: jax.Array) -> jax.Array:
    return jnp.where(jnp.isnan(x), jnp.inf, x)
