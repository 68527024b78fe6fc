"""The one form of a loss inside the loop core (layer 2).

Users write their loss the way their model needs: ``loss_fn(params, batch)``,
with a model state (``loss_fn(params, state, batch) -> (loss, new_state)``),
aux metrics (``(loss, aux)``) or a per-step key (``loss_fn(..., key)``): eight
calling conventions. The drivers wrap it once, at the boundary, in a
`Loss`, which always has the canonical form

    loss(params, state, batch, key) -> (loss, (new_state, aux))

(``state`` is ``None`` for a model without one, ``aux`` a dict, ``{}``
without metrics), so the loop core never branches on how the user wrote it.
`Eval` does the same for an evaluation function: ``eval(params, state, data)
-> dict of metrics`` named as the history records them.

Both are pytrees whose only child is the user's function, and whose
calling convention is static data of the tree: a program keyed on their
structure (see the drivers' programs) is reused for the same function, and
the array leaves of a pytree-callable (an ``equinox.Module``) are inputs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax

PyTree = Any


class LossForm(NamedTuple):
    """How the user's loss is called and what it returns (static)."""

    has_state: bool = False  # takes and returns a model state
    has_aux: bool = False  # returns aux metrics next to the loss
    step_key: bool = False  # takes a fresh key as its last argument


@jax.tree_util.register_pytree_node_class
class Loss:
    """A user's loss in the canonical form (see the module docstring).

    Args:
        fn: the user's loss function.
        form: how ``fn`` is called (a `LossForm`).

    Example:
        >>> import jax.numpy as jnp
        >>> loss = Loss(lambda p, b: jnp.sum((p - b) ** 2), LossForm())
        >>> value, (state, aux) = loss(jnp.ones(2), None, jnp.zeros(2), None)
        >>> float(value), state, aux
        (2.0, None, {})
    """

    __slots__ = ("fn", "form")

    def __init__(self, fn: Callable, form: LossForm):
        self.fn, self.form = fn, form

    def __call__(self, params: PyTree, state: PyTree, batch: PyTree, key: Any):
        form = self.form
        args = (params, state, batch) if form.has_state else (params, batch)
        out = self.fn(*args, key) if form.step_key else self.fn(*args)
        if form.has_state:
            value, rest = out
            new_state, aux = rest if form.has_aux else (rest, {})
        else:
            value, aux = out if form.has_aux else (out, {})
            new_state = state
        return value, (new_state, aux)

    def tree_flatten(self):
        return (self.fn,), self.form

    @classmethod
    def tree_unflatten(cls, form: LossForm, children: tuple) -> Loss:
        return cls(children[0], form)


def eval_names(metrics: Any) -> dict[str, Any]:
    """Name an evaluation's output as the history records it: ``eval_<key>``
    for a dict, else ``eval_loss``."""
    if isinstance(metrics, dict):
        return {f"eval_{k}": v for k, v in metrics.items()}
    return {"eval_loss": metrics}


@jax.tree_util.register_pytree_node_class
class Eval:
    """A user's evaluation function in the canonical form ``eval(params,
    state, data) -> {"eval_<metric>": value}``.

    Args:
        fn: ``fn(params, data)``, or ``fn(params, state, data)`` with
            ``has_state``; returns a scalar or a dict of scalars.
        has_state: ``fn`` takes the model state.
    """

    __slots__ = ("fn", "has_state")

    def __init__(self, fn: Callable, has_state: bool):
        self.fn, self.has_state = fn, has_state

    def __call__(self, params: PyTree, state: PyTree, data: PyTree) -> dict:
        out = self.fn(params, state, data) if self.has_state else self.fn(params, data)
        return eval_names(out)

    def tree_flatten(self):
        return (self.fn,), self.has_state

    @classmethod
    def tree_unflatten(cls, has_state: bool, children: tuple) -> Eval:
        return cls(children[0], has_state)
