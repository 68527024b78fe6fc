r"""Sharpness-Aware Minimization: `sam` alternates adversarial (ascent) steps
of one optimizer with a descent step of another, taken from where the
adversarial steps started."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import optax
import optax.contrib

from jaxopt_lite._core import validate
from jaxopt_lite._core.dtypes import add, sub
from jaxopt_lite._core.recipe import recipe

PyTree = Any


SAMState = optax.contrib.SAMState
"""optax.contrib's class itself (so states equal optax's as trees): adversarial
steps taken since the last outer step (int32), the outer and adversarial
optimizers' states, and the parameters the adversarial steps started from
(``None`` in opaque mode)."""


def _select(pred: jax.Array, on_true: PyTree, on_false: PyTree) -> PyTree:
    return jax.tree.map(lambda a, b: jnp.where(pred, a, b), on_true, on_false)


def _negated(tree: PyTree) -> PyTree:
    return jax.tree.map(jnp.negative, tree)


@recipe(static=("sync_period",))
def sam(
    optimizer: optax.GradientTransformation,
    adv_optimizer: optax.GradientTransformation,
    sync_period: int = 2,
    reset_state: bool = True,
    opaque_mode: bool = False,
    batch_axis_name: str | None = None,
) -> optax.GradientTransformationExtraArgs:
    r"""SAM: step against the gradient taken at an adversarially perturbed point.

    $$
    \tilde\theta_{k+1} = \tilde\theta_k - A(\tilde g_k), \quad
    \tilde\theta_0 = \theta_t \;(k < K - 1), \qquad
    \theta_{t+1} = \theta_t + O(\tilde g_{K-1})
    $$

    with $K$ = ``sync_period``, $\tilde g_k$ the gradient at
    $\tilde\theta_k$, $A$ the adversarial optimizer (its update negated, so
    ``chain(normalize(), sgd(rho))`` is the ascent step
    $\rho \, g / \lVert g \rVert$ of the paper) and $O$ the outer optimizer.

    In the default (transparent) mode each call to ``update`` is one of these
    steps: $K - 1$ adversarial ones, then the outer one, which returns the
    update from the current (perturbed) parameters to $\theta_{t+1}$. The
    adversarial state is reset after each outer step when ``reset_state``.
    With ``opaque_mode`` every call takes all $K$ steps: ``update`` must get
    ``grad_fn=f`` with ``f(params, k)`` the gradient at ``params`` for
    adversarial step ``k`` (a Python int), and only the outer update is
    returned (needed when something besides the parameters changes at each
    call, such as batch-norm statistics). Other keyword arguments of
    ``update`` reach both optimizers.

    Args:
        optimizer: the outer optimizer $O$.
        adv_optimizer: the adversarial optimizer $A$.
        sync_period: $K$, an integer >= 1.
        reset_state: reset $A$'s state after each outer step.
        opaque_mode: take all steps in one call (see above).
        batch_axis_name: in opaque mode under ``pmap``/``shard_map``, the axis
            name to average the adversarial gradients over (``None``: none).

    Returns:
        An ``optax.GradientTransformationExtraArgs``.

    Example:
        >>> import jax.numpy as jnp, jaxopt_lite as jol
        >>> opt = jol.sam(jol.sgd(0.1), jol.chain(jol.normalize(), jol.sgd(0.5)))
        >>> params = jnp.array([3.0, 4.0])
        >>> state = opt.init(params)
        >>> ascent, state = opt.update(params, state, params)  # at the start
        >>> ascent
        Array([0.3, 0.4], dtype=float32)
        >>> descent, state = opt.update(params + ascent, state, params + ascent)
        >>> params + ascent + descent  # params - 0.1 * gradient at the perturbed point
        Array([2.67, 3.56], dtype=float32)

    References:
        Foret et al., *Sharpness-Aware Minimization for Efficiently Improving
        Generalization*, 2021.
    """
    validate.check_transform("optimizer", optimizer)
    validate.check_transform("adv_optimizer", adv_optimizer)
    validate.check_int("sync_period", sync_period)
    validate.check_bool("reset_state", reset_state)
    validate.check_bool("opaque_mode", opaque_mode)
    if batch_axis_name is not None and not isinstance(batch_axis_name, str):
        raise TypeError(
            f"batch_axis_name must be None or a string, got {batch_axis_name!r}."
        )
    outer = optax.with_extra_args_support(optimizer)
    adv = optax.with_extra_args_support(adv_optimizer)

    def init_fn(params):
        return SAMState(
            steps_since_sync=jnp.zeros([], jnp.int32),
            opt_state=outer.init(params),
            adv_state=adv.init(params),
            cache=None if opaque_mode else params,
        )

    def transparent_update(updates, state, params, **extra_args):
        first = state.steps_since_sync == 0
        last = state.steps_since_sync == sync_period - 1
        adv_updates, adv_state = adv.update(
            updates, state.adv_state, params, **extra_args
        )
        outer_updates, opt_state = outer.update(
            updates, state.opt_state, state.cache, **extra_args
        )
        # from the current parameters to cache + the outer update
        outer_updates = jax.tree.map(
            lambda c, p, u: add(sub(c, p), u).astype(u.dtype),
            state.cache,
            params,
            outer_updates,
        )
        if reset_state:
            adv_state = _select(last, adv.init(params), adv_state)
        else:
            adv_state = _select(last, state.adv_state, adv_state)
        return _select(last, outer_updates, _negated(adv_updates)), SAMState(
            steps_since_sync=(state.steps_since_sync + 1) % sync_period,
            opt_state=_select(last, opt_state, state.opt_state),
            adv_state=adv_state,
            cache=_select(first, params, state.cache),
        )

    def opaque_update(updates, state, params, *, grad_fn, **extra_args):
        if grad_fn is None:
            raise ValueError(
                "sam with opaque_mode=True needs update(..., grad_fn=f), with "
                "f(params, step) the gradient at params."
            )
        adv_params, adv_state = params, state.adv_state
        for k in range(sync_period - 1):
            adv_updates, adv_state = adv.update(
                updates, adv_state, adv_params, **extra_args
            )
            adv_params = optax.apply_updates(adv_params, _negated(adv_updates))
            updates = grad_fn(adv_params, k)
            if batch_axis_name is not None:
                updates = jax.lax.pmean(updates, axis_name=batch_axis_name)
        if reset_state:
            adv_state = adv.init(params)
        updates, opt_state = outer.update(
            updates, state.opt_state, params, **extra_args
        )
        return updates, SAMState(
            steps_since_sync=jnp.zeros([], jnp.int32),
            opt_state=opt_state,
            adv_state=adv_state,
            cache=None,
        )

    def update_fn(
        updates, state, params=validate.MISSING, *, grad_fn=None, **extra_args
    ):
        validate.require_params("sam", params)  # required, as in optax
        if opaque_mode:
            return opaque_update(updates, state, params, grad_fn=grad_fn, **extra_args)
        return transparent_update(updates, state, params, **extra_args)

    # (optax types SAMState.cache as Optional, which its OptState alias omits)
    return optax.GradientTransformationExtraArgs(init_fn, update_fn)  # pyright: ignore[reportArgumentType]
