r"""GaLore's primitive: `scale_by_galore`, a base transform run on gradients
projected onto a low-rank subspace refreshed from their SVD."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
import optax.contrib

from jaxopt_lite._core import tree_math, validate
from jaxopt_lite._core.dtypes import at_least_float32, mul, state_dtype
from jaxopt_lite._core.recipe import recipe
from jaxopt_lite._transforms.adam import scale_by_adam
from jaxopt_lite._transforms.matrices import (
    check_spec_tree,
    from_matrices,
    leaf_specs,
    matrix_axes,
    matrix_sizes,
    to_matrices,
)

PyTree = Any


class GaLoreDimensionNumbers(NamedTuple):
    """Which axes of a parameter form the matrix that GaLore projects.

    The reduction axes give the rows and the output axes the columns; every
    axis must be one of the two (no batch axes). For attention weights of
    shape ``(embed, heads, head_dim)``, ``GaLoreDimensionNumbers(0, (1, 2))``
    projects the ``embed x (heads head_dim)`` matrix.
    """

    reduction_axis: Any = 0
    output_axis: Any = 1


GaLoreState = optax.contrib.GaLoreState
"""optax.contrib's class itself (so states equal optax's as trees): update count
(int32, saturating), the base transform's state (on the projected gradients)
and the projector of every leaf (shape ``(0, 0)`` for leaves that are not
projected)."""


def _is_spec(x: Any) -> bool:
    return isinstance(x, GaLoreDimensionNumbers)


class _Plan(NamedTuple):
    """How one leaf is projected: its matrix axes, shape ``(m, n)``, the rank
    kept, and whether the projector acts on the left (``m >= n``)."""

    axes: Any
    m: int
    n: int
    rank: int
    left: bool


@recipe(static=("rank", "weight_dimension_numbers"))
def scale_by_galore(
    rank: int = 128,
    update_proj_gap: int = 200,
    scale: float | jax.Array = 1.0,
    base_optimizer: optax.GradientTransformation | None = None,
    weight_dimension_numbers: Any = None,
) -> optax.GradientTransformation:
    r"""Run a base transform on gradients projected to a low-rank subspace.

    $$
    R_t = P_t^\top G_t, \qquad
    u_t = \alpha \, P_t \, B(R_t)
    \qquad (m \ge n; \text{ otherwise } R_t = G_t P_t, \;
    u_t = \alpha \, B(R_t) P_t^\top)
    $$

    For each matrix $G_t$ of shape $m \times n$, $P_t$ holds the first
    $r = \min(\text{rank}, m, n)$ left (or right) singular vectors of $G_t$,
    recomputed every ``update_proj_gap`` steps (from step 0) and kept in
    between; $B$ is the base transform, whose state lives in the small
    $r \times n$ (or $m \times r$) space. Leaves that are not projected go to
    $B$ whole. The SVD runs in the gradients' precision, at least float32
    (optax uses float32 even for float64 parameters); complex matrices use
    conjugate transposes.

    Args:
        rank: the rank $r$ kept (an integer >= 1; capped by the matrix).
        update_proj_gap: steps between SVDs (an integer >= 1).
        scale: $\alpha$, a finite number.
        base_optimizer: $B$, a transform that does not read the parameters
            (it gets ``params=None``); ``None`` means `scale_by_adam`.
        weight_dimension_numbers: ``None`` (project the 2-D leaves), one
            `GaLoreDimensionNumbers` (for every leaf of rank >= 2), a tree of
            them and ``None`` (a prefix of the parameters' structure), or a
            function ``params -> such a tree``.

    Returns:
        An ``optax.GradientTransformation``.

    Example:
        >>> import jax.numpy as jnp, jaxopt_lite as jol
        >>> t = jol.scale_by_galore(rank=1, base_optimizer=jol.scale(1.0))
        >>> g = jnp.array([[3.0, 0.0], [0.0, 1.0]])
        >>> t.update(g, t.init(g))[0]
        Array([[3., 0.],
               [0., 0.]], dtype=float32)

    References:
        Zhao et al., *GaLore: Memory-Efficient LLM Training by Gradient
        Low-Rank Projection*, 2024.
    """
    validate.check_int("rank", rank)
    validate.check_int("update_proj_gap", update_proj_gap, traced=True)
    validate.check_range("scale", scale)
    base = scale_by_adam() if base_optimizer is None else base_optimizer
    validate.check_transform("base_optimizer", base)
    check_spec_tree(
        weight_dimension_numbers, name="weight_dimension_numbers", is_spec=_is_spec
    )

    def plans(tree) -> list[_Plan | None]:
        leaves = jax.tree.leaves(tree)
        spec = weight_dimension_numbers
        if spec is None:  # the 2-D leaves, as plain matrices
            specs = [
                GaLoreDimensionNumbers() if jnp.ndim(x) == 2 else None for x in leaves
            ]
        elif _is_spec(spec):  # one spec for every leaf that can be a matrix
            specs = [spec if jnp.ndim(x) >= 2 else None for x in leaves]
        else:
            specs = leaf_specs(
                spec, tree, name="weight_dimension_numbers", is_spec=_is_spec
            )
        return [_plan(jnp.shape(x), s) for x, s in zip(leaves, specs, strict=True)]

    def _plan(shape, spec) -> _Plan | None:
        if spec is None:
            return None
        axes = matrix_axes(shape, *spec, what="scale_by_galore")
        if axes.batch:
            raise ValueError(
                f"GaLore dimension numbers {spec} leave the axes {axes.batch} of "
                f"a leaf of shape {tuple(shape)} unassigned: every axis must be a "
                "reduction or an output axis."
            )
        _, m, n = matrix_sizes(shape, axes)
        return _Plan(axes, m, n, min(rank, m, n), m >= n)

    def init_fn(params):
        leaves, treedef = jax.tree.flatten(params)
        projectors, proxies = [], []
        for x, plan in zip(leaves, plans(params), strict=True):
            dtype = state_dtype(x)
            if plan is None:
                projectors.append(jnp.zeros((0, 0), dtype))
                proxies.append(jnp.zeros_like(x, dtype))  # sharded like x
                continue
            big = plan.m if plan.left else plan.n
            small = (plan.rank, plan.n) if plan.left else (plan.m, plan.rank)
            projectors.append(jnp.zeros((big, plan.rank), dtype))
            proxies.append(jnp.zeros(small, dtype))
        return GaLoreState(
            count=jnp.zeros([], jnp.int32),
            base_optimizer_state=base.init(treedef.unflatten(proxies)),
            projector=treedef.unflatten(projectors),
        )

    def project(g, projector, plan, refresh):
        if plan is None:
            return g, projector
        mat = to_matrices(g, plan.axes)[0]

        def fresh():
            u, _, vh = jnp.linalg.svd(
                mat.astype(at_least_float32(mat)), full_matrices=False
            )
            p = u[:, : plan.rank] if plan.left else jnp.conj(vh[: plan.rank]).T
            return p.astype(projector.dtype)

        p = jax.lax.cond(refresh, fresh, lambda: projector)
        return (jnp.conj(p).T @ mat if plan.left else mat @ p), p

    def back(low, g, p, plan):
        if plan is None:
            return low
        mat = p @ low if plan.left else low @ jnp.conj(p).T
        full = from_matrices(mat[None], g.shape, plan.axes)
        return mul(scale, full).astype(g.dtype)

    def update_fn(updates, state, params=None):
        del params
        refresh = state.count % update_proj_gap == 0
        leaves, treedef = jax.tree.flatten(updates)
        leaf_plans = plans(updates)
        projected = [
            project(g, p, plan, refresh)
            for g, p, plan in zip(
                leaves, treedef.flatten_up_to(state.projector), leaf_plans, strict=True
            )
        ]
        low, base_state = base.update(
            treedef.unflatten([r for r, _ in projected]),
            state.base_optimizer_state,
            None,
        )
        new = [
            back(u, g, p, plan)
            for u, g, (_, p), plan in zip(
                treedef.flatten_up_to(low), leaves, projected, leaf_plans, strict=True
            )
        ]
        return treedef.unflatten(new), GaLoreState(
            tree_math.safe_increment(state.count),
            base_state,
            treedef.unflatten([p for _, p in projected]),
        )

    return optax.GradientTransformation(init_fn, update_fn)
