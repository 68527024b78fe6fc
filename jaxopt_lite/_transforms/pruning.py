r"""Magnitude pruning as a gradient transformation: `prune_by_magnitude`, and
the readers of its state, `pruning_masks_of` and `sparsity_of`.

The transform keeps one boolean mask per pruned leaf (``True``: the weight is
kept). At the steps where the scheduled sparsity rises it removes the
smallest-magnitude weights still kept, and at every step it rewrites the
updates so that `optax.apply_updates` leaves every removed weight at exactly
zero. Masks only lose entries: a weight once pruned stays pruned.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxopt_lite._combinators.averaging import _find
from jaxopt_lite._combinators.masking import masked
from jaxopt_lite._core import tree_math, validate
from jaxopt_lite._core.dtypes import add, mul, tree_compute_dtype
from jaxopt_lite._core.recipe import recipe
from jaxopt_lite._transforms.scaling import ScalarOrSchedule

SCOPES = ("leaf", "global")


class PruneByMagnitudeState(NamedTuple):
    """Update count (int32, saturating), the sparsity the masks were last
    pruned to (in the parameters' compute dtype), and one boolean mask per
    pruned leaf, shaped like it (``True``: kept)."""

    count: jax.Array
    sparsity: jax.Array
    masks: tree_math.PyTree


def _matrices(params: tree_math.PyTree) -> tree_math.PyTree:
    """The default selection: leaves with at least two axes longer than 1
    (weight matrices and kernels; not biases or scales, even when they are
    shaped ``(1, n)`` to broadcast)."""
    return jax.tree.map(lambda p: sum(n > 1 for n in jnp.shape(p)) >= 2, params)


def _keep_largest(scores: jax.Array, pruned: jax.Array) -> jax.Array:
    """A flat mask keeping all but the ``pruned`` lowest ``scores`` (ties go
    to the earlier index)."""
    order = jnp.argsort(scores, stable=True)
    keep_sorted = jnp.arange(scores.size, dtype=pruned.dtype) >= pruned
    return jnp.zeros(scores.size, bool).at[order].set(keep_sorted)


def _prune(masks: list, weights: list, target: jax.Array, scope: str) -> list:
    """New masks at sparsity ``target``: the weights already pruned score
    below any magnitude, so they are the first to go again."""
    dtype = tree_compute_dtype(weights)
    scores = [
        jnp.where(m, jnp.abs(w).astype(dtype), -1).ravel()
        for m, w in zip(masks, weights, strict=True)
    ]

    def count(n: int) -> jax.Array:
        return jnp.round(mul(target, float(n))).astype(jnp.int32)

    if scope == "leaf":
        kept = [_keep_largest(s, count(s.size)) for s in scores]
    else:
        flat = jnp.concatenate(scores)
        ends = np.cumsum([s.size for s in scores])[:-1]
        kept = jnp.split(_keep_largest(flat, count(flat.size)), ends)
    return [m & k.reshape(m.shape) for m, k in zip(masks, kept, strict=True)]


@recipe
def prune_by_magnitude(
    sparsity: ScalarOrSchedule,
    mask: Any = None,
    scope: str = "leaf",
) -> optax.GradientTransformationExtraArgs:
    r"""Zero the smallest weights as the scheduled sparsity rises, and keep them at 0.

    With $m$ a leaf's mask ($1$: kept), $\theta_t$ the parameters and $u_t$
    the incoming updates (the optimizer's final step), at each update

    $$
    \begin{aligned}
    m &\leftarrow m \odot \big[\, \text{rank of } |\theta_t + u_t|
    \text{ among the kept weights} \ge k_t \big]
    \quad \text{when } s_t > s_{\text{last}},
    \qquad k_t = \mathrm{round}(s_t n) - (\text{weights pruned}) \\
    u'_t &= m \odot u_t - (1 - m) \odot \theta_t
    \end{aligned}
    $$

    so after ``optax.apply_updates`` the parameters are
    $m \odot (\theta_t + u_t)$: the weights pruned at this step are set to
    zero, and those pruned before stay exactly zero (their update is
    $-\theta = 0$). Masks are recomputed only at the steps where the
    scheduled sparsity $s_t$ exceeds the sparsity last pruned to (a schedule
    that falls back is held at its maximum), and a weight once pruned stays
    pruned. With ``scope="leaf"`` each selected leaf of $n$ weights loses
    $\mathrm{round}(s_t n)$ of them; with ``scope="global"`` one threshold
    ranks the weights of all selected leaves together ($n$ their total), so
    leaves end up with different sparsities. Ties are broken by position.

    Put it last in a `chain`, after the learning rate
    (``chain(adam(1e-3), prune_by_magnitude(schedule))``), so the updates it
    rewrites are the ones applied. Updates of pruned weights should come in the
    parameters' dtype (as every optimizer here gives them) for the zeros to be
    exact.

    Args:
        sparsity: $s_t$, the fraction of the selected weights to prune: a
            number in $[0, 1]$ (one-shot pruning at the first update), an array,
            or a schedule ``step -> sparsity`` such as
            `polynomial_sparsity_schedule` (gradual pruning).
        mask: which leaves are pruned: ``None`` (the default) selects the
            leaves with at least two axes longer than 1 (weight matrices and
            kernels; not biases or normalization scales, even shaped
            ``(1, n)``); or a tree of Python bools shaped like the parameters
            (or a prefix of it), or a callable ``params -> such a tree``, as
            for `masked`.
        scope: ``"leaf"`` (the default: every selected leaf pruned to the
            same sparsity, as Zhu and Gupta prune each layer) or ``"global"``
            (one magnitude threshold across all selected leaves).

    Returns:
        An ``optax.GradientTransformationExtraArgs``; ``update`` needs
        ``params``. Read the masks with `pruning_masks_of` and the sparsity
        reached with `sparsity_of`.

    Example:
        >>> import jax.numpy as jnp, optax, jaxopt_lite as jol
        >>> params = {"w": jnp.array([[0.5, -2.0], [0.1, 1.0]]), "b": jnp.ones(2)}
        >>> opt = jol.chain(jol.sgd(0.1), jol.prune_by_magnitude(0.5))
        >>> state = opt.init(params)
        >>> grads = {"w": jnp.ones((2, 2)), "b": jnp.ones(2)}
        >>> updates, state = opt.update(grads, state, params)
        >>> optax.apply_updates(params, updates)["w"]
        Array([[ 0. , -2.1],
               [ 0. ,  0.9]], dtype=float32)
        >>> jol.sparsity_of(state)
        Array(0.5, dtype=float32)

    References:
        Zhu and Gupta, *To prune, or not to prune: exploring the efficacy of
        pruning for model compression*, 2017.
        Han, Pool, Tran and Dally, *Learning both Weights and Connections for
        Efficient Neural Networks*, 2015.
    """
    validate.check_range("sparsity", sparsity, 0.0, 1.0, allow_schedule=True)
    validate.check_choice("scope", scope, SCOPES)

    def init_fn(params):
        return PruneByMagnitudeState(
            count=jnp.zeros([], jnp.int32),
            sparsity=jnp.zeros([], tree_compute_dtype(params)),
            masks=jax.tree.map(lambda p: jnp.ones(jnp.shape(p), bool), params),
        )

    def update_fn(updates, state, params=None):
        validate.require_params("prune_by_magnitude", params)
        updates, params = tree_math.as_arrays(updates), tree_math.as_arrays(params)
        treedef = jax.tree.structure(updates)
        us, ps = treedef.flatten_up_to(updates), treedef.flatten_up_to(params)
        masks = treedef.flatten_up_to(state.masks)
        level = sparsity(state.count) if callable(sparsity) else sparsity
        level = jnp.asarray(level).astype(state.sparsity.dtype)
        rises = level > state.sparsity
        if masks:
            weights = [add(p, u).astype(p.dtype) for p, u in zip(ps, us, strict=True)]
            masks = jax.lax.cond(
                rises, lambda: _prune(masks, weights, level, scope), lambda: masks
            )
        new_updates = [
            jnp.where(m, u, -p.astype(u.dtype))
            for m, u, p in zip(masks, us, ps, strict=True)
        ]
        new_state = PruneByMagnitudeState(
            count=tree_math.safe_increment(state.count),
            sparsity=jnp.where(rises, level, state.sparsity),
            masks=treedef.unflatten(masks),
        )
        return treedef.unflatten(new_updates), new_state

    prune = optax.GradientTransformation(init_fn, update_fn)
    return masked(prune, _matrices if mask is None else mask)


def pruning_masks_of(opt_state: Any) -> Any:
    r"""Read the pruning masks kept by `prune_by_magnitude`.

    Args:
        opt_state: a state holding a `prune_by_magnitude` state anywhere
            inside it (the first one found is used).

    Returns:
        A tree like the parameters: a boolean array per pruned leaf (``True``
        where the weight is kept) and ``None`` for the leaves that are not
        pruned. Raises ``ValueError`` when the state holds no pruning state.

    Example:
        >>> import jax.numpy as jnp, jaxopt_lite as jol
        >>> opt = jol.prune_by_magnitude(0.5)
        >>> params = {"w": jnp.ones((2, 3)), "b": jnp.ones((1, 3))}
        >>> masks = jol.pruning_masks_of(opt.init(params))
        >>> masks["b"], masks["w"].shape, bool(masks["w"].all())
        (None, (2, 3), True)
    """
    state = _find(
        opt_state, PruneByMagnitudeState, "pruning_masks_of", "prune_by_magnitude"
    )
    return jax.tree.map(
        lambda m: None if isinstance(m, optax.MaskedNode) else m,
        state.masks,
        is_leaf=lambda m: isinstance(m, optax.MaskedNode),
    )


def sparsity_of(opt_state: Any) -> jax.Array:
    r"""Read the fraction of pruned weights from a `prune_by_magnitude` state.

    $$
    s = 1 - \frac{\sum_\ell \sum_i m_{\ell, i}}{\sum_\ell n_\ell}
    $$

    over the pruned leaves $\ell$ of $n_\ell$ weights and masks $m_\ell$ (the
    sparsity reached, which can differ from the schedule's value by rounding
    to whole weights).

    Args:
        opt_state: a state holding a `prune_by_magnitude` state anywhere
            inside it (the first one found is used).

    Returns:
        A float32 scalar (0 when nothing is pruned). Raises ``ValueError``
        when the state holds no pruning state.

    Example:
        >>> import jax.numpy as jnp, jaxopt_lite as jol
        >>> opt = jol.prune_by_magnitude(0.5)
        >>> jol.sparsity_of(opt.init({"w": jnp.ones((2, 2))}))
        Array(0., dtype=float32)
    """
    masks = jax.tree.leaves(pruning_masks_of(opt_state))
    total = sum(m.size for m in masks)
    pruned = sum(jnp.sum(~m, dtype=jnp.int32) for m in masks)
    return jnp.asarray(pruned, jnp.float32) / max(total, 1)
