r"""Muon's primitives: `scale_by_muon` (momentum orthogonalized by
Newton-Schulz) and the shape-dependent rescaling `scale_by_shape`.

Both read per-leaf dimension numbers (`MuonDimensionNumbers`): ``None`` for
the whole tree gives every matrix its default (a plain matrix, or an
``HWIO`` convolution kernel for 4-D leaves); a tree of dimension numbers and
``None`` (or a function ``params -> such a tree``) picks them leaf by leaf,
and a ``None`` leaf is left untouched.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import optax
import optax.contrib

from jaxopt_lite._core import tree_math, validate
from jaxopt_lite._core.dtypes import mul, tree_compute_dtype, zeros_like
from jaxopt_lite._core.recipe import recipe
from jaxopt_lite._transforms.adam import _first_moment_hat
from jaxopt_lite._transforms.matrices import (
    check_spec_tree,
    from_matrices,
    leaf_specs,
    matrix_axes,
    matrix_sizes,
    to_matrices,
)
from jaxopt_lite._transforms.newton_schulz import (
    NS_COEFFS_PRESETS,
    PRECONDITIONINGS,
    MuonDimensionNumbers,
    coefficient_table,
    default_dimension_numbers,
    newton_schulz,
)

PyTree = Any


def _is_spec(x: Any) -> bool:
    return isinstance(x, MuonDimensionNumbers)


def muon_specs(spec: Any, tree: PyTree, what: str) -> list[Any]:
    """The dimension numbers of every leaf of ``tree`` (see the module
    docstring); with ``spec=None``, a leaf without a default (not a matrix or
    a 4-D kernel) is a ``ValueError`` naming ``what``."""
    if spec is not None:
        return leaf_specs(spec, tree, name="weight_dimension_numbers", is_spec=_is_spec)
    specs = []
    for x in jax.tree.leaves(tree):
        default = default_dimension_numbers(jnp.ndim(x))
        if default is None:
            raise ValueError(
                f"{what} orthogonalizes matrices, but got a leaf of shape "
                f"{jnp.shape(x)}: give weight_dimension_numbers (None for the "
                "leaves to leave alone), or use muon, which sends such leaves "
                "to Adam."
            )
        specs.append(default)
    return specs


MuonState = optax.contrib.MuonState
"""optax.contrib's class itself (so states equal optax's as trees): update count
(int32, saturating), the momentum, and the Newton-Schulz coefficients (shape
``(3,)`` or ``(n, 3)``)."""


@recipe(static=("ns_steps", "weight_dimension_numbers"))
def scale_by_muon(
    ns_coeffs: Any = NS_COEFFS_PRESETS["standard"],
    ns_steps: int = 5,
    beta: float | jax.Array = 0.95,
    eps: float | jax.Array = 1e-8,
    mu_dtype: Any = None,
    *,
    nesterov: bool = True,
    adaptive: bool = False,
    preconditioning: str = "frobenius",
    weight_dimension_numbers: Any = None,
) -> optax.GradientTransformation:
    r"""Orthogonalize the bias-corrected momentum of each matrix (Muon).

    $$
    \mu_t = \beta \mu_{t-1} + (1-\beta) g_t, \qquad
    u_t = \operatorname{NS}(\hat\mu_t) \approx U V^\top
    \text{ where } \hat\mu_t = U \Sigma V^\top
    $$

    with $\hat\mu_t = \mu_t / (1 - \beta^t)$, or with ``nesterov`` the
    look-ahead $\beta \mu_t / (1-\beta^{t+1}) + (1-\beta) g_t / (1-\beta^t)$,
    and NS the Newton-Schulz iteration of
    `orthogonalize_via_newton_schulz`. With ``adaptive`` the result is
    scaled by $\langle \hat\mu_t, u_t \rangle$ (the dual norm).

    Each leaf is orthogonalized as the matrices its dimension numbers
    describe. With ``weight_dimension_numbers=None`` every leaf must be a
    matrix or a 4-D convolution kernel (taken in JAX's ``HWIO`` layout, as
    the ``(kh kw in) x out`` matrix; optax raises for it). A ``None`` leaf of
    a given tree passes its gradient through untouched, neither
    orthogonalized nor rescaled by ``adaptive`` (optax orthogonalizes such a
    leaf when it is a matrix).

    Args:
        ns_coeffs: $(c_0, c_1, c_2)$ of the quintic step, one row per step
            (shape ``(n, 3)``, ``n <= ns_steps``), or a preset name
            (``"standard"``, ``"dion"``).
        ns_steps: the number of steps for 3 coefficients (an integer >= 1).
        beta: the momentum decay $\beta$, in $[0, 1)$.
        eps: $\epsilon >= 0$, in the Newton-Schulz rescaling.
        mu_dtype: dtype of $\mu$; ``None`` keeps the parameters'.
        nesterov: use the Nesterov look-ahead.
        adaptive: scale by the dual norm $\langle \hat\mu_t, u_t \rangle$.
        preconditioning: ``"frobenius"``, ``"spectral"``, ``"aol"`` or
            ``"schatten"`` (see `orthogonalize_via_newton_schulz`).
        weight_dimension_numbers: ``None``, a tree of `MuonDimensionNumbers`
            and ``None`` (its structure a prefix of the parameters'), or a
            function ``params -> such a tree``.

    Returns:
        An ``optax.GradientTransformation``.

    Example:
        >>> import jax.numpy as jnp, jaxopt_lite as jol
        >>> t = jol.scale_by_muon(ns_coeffs=(1.5, -0.5, 0.0), ns_steps=20)
        >>> g = jnp.array([[3.0, 0.0], [0.0, -0.5]])
        >>> t.update(g, t.init(g))[0].round(4)
        Array([[ 1.,  0.],
               [ 0., -1.]], dtype=float32)

    References:
        Jordan et al., *Muon: An optimizer for hidden layers in neural
        networks*, 2024.
        Bernstein and Newhouse, *Old Optimizer, New Norm: An Anthology*, 2024.
    """
    coefficient_table(ns_coeffs, ns_steps)
    validate.check_decay("beta", beta)
    validate.check_nonnegative("eps", eps)
    mu_dtype = validate.check_dtype("mu_dtype", mu_dtype)
    validate.check_bool("nesterov", nesterov)
    validate.check_bool("adaptive", adaptive)
    validate.check_choice("preconditioning", preconditioning, PRECONDITIONINGS)
    check_spec_tree(
        weight_dimension_numbers, name="weight_dimension_numbers", is_spec=_is_spec
    )

    def init_fn(params):
        dtype = tree_compute_dtype(params)
        return MuonState(
            count=jnp.zeros([], jnp.int32),
            mu=zeros_like(params, dtype=mu_dtype),
            ns_coeffs=coefficient_table(ns_coeffs, ns_steps).astype(dtype),
        )

    def orthogonalized(g, m, spec, table):
        if spec is None:
            return g
        axes = matrix_axes(g.shape, *spec, what="scale_by_muon")
        o = newton_schulz(to_matrices(m, axes), table, ns_steps, preconditioning, eps)
        o = from_matrices(o, g.shape, axes)
        if adaptive:
            o = mul(jnp.sum(mul(jnp.conj(m), o)), o)
        return o.astype(g.dtype)

    def update_fn(updates, state, params=None):
        del params
        count = tree_math.safe_increment(state.count)
        mu = tree_math.tree_update_moment(updates, state.mu, beta, 1)
        mu_hat = _first_moment_hat(updates, mu, beta, count, nesterov)
        leaves, treedef = jax.tree.flatten(updates)
        specs = muon_specs(weight_dimension_numbers, updates, "scale_by_muon")
        new = [
            orthogonalized(g, m, spec, state.ns_coeffs)
            for g, m, spec in zip(leaves, jax.tree.leaves(mu_hat), specs, strict=True)
        ]
        return treedef.unflatten(new), MuonState(count, mu, state.ns_coeffs)

    return optax.GradientTransformation(init_fn, update_fn)


@recipe(static=("weight_dimension_numbers",))
def scale_by_shape(
    weight_dimension_numbers: Any = None,
    consistent_rms: float | jax.Array | None = None,
) -> optax.GradientTransformation:
    r"""Rescale each matrix's update by a factor of its shape (Muon's widths).

    $$
    u \leftarrow \sqrt{\max(1, n_\text{out} / n_\text{in})} \; g
    \quad\text{or, with } \rho = \texttt{consistent\_rms}, \quad
    u \leftarrow \rho \sqrt{\max(n_\text{in}, n_\text{out})} \; g
    $$

    $n_\text{in}$ and $n_\text{out}$ are the sizes of the reduction and output
    axes given by the dimension numbers (read as in `scale_by_muon`; ``None``
    leaves are left untouched).

    Args:
        weight_dimension_numbers: as in `scale_by_muon`.
        consistent_rms: ``None`` for the first rule, or $\rho$ (a finite
            number >= 0; 0.2 matches AdamW's update RMS) for the second.

    Returns:
        An ``optax.GradientTransformation``.

    Example:
        >>> import jax.numpy as jnp, jaxopt_lite as jol
        >>> t = jol.scale_by_shape()
        >>> t.update(jnp.ones((1, 4)), t.init(None))[0]
        Array([[2., 2., 2., 2.]], dtype=float32)

    References:
        Jordan et al., *Muon: An optimizer for hidden layers in neural
        networks*, 2024.
        Liu et al., *Muon is Scalable for LLM Training*, 2025.
    """
    if consistent_rms is not None:
        validate.check_nonnegative("consistent_rms", consistent_rms)
    check_spec_tree(
        weight_dimension_numbers, name="weight_dimension_numbers", is_spec=_is_spec
    )

    def factor(shape, spec):
        _, fan_in, fan_out = matrix_sizes(
            shape, matrix_axes(shape, *spec, what="scale_by_shape")
        )
        if consistent_rms is None:
            return math.sqrt(max(1.0, fan_out / fan_in))
        return mul(math.sqrt(max(fan_in, fan_out)), consistent_rms)

    def init_fn(params):
        del params
        return optax.EmptyState()

    def update_fn(updates, state, params=None):
        del params
        leaves, treedef = jax.tree.flatten(updates)
        specs = muon_specs(weight_dimension_numbers, updates, "scale_by_shape")
        new = [
            g if spec is None else mul(factor(g.shape, spec), g).astype(g.dtype)
            for g, spec in zip(leaves, specs, strict=True)
        ]
        return treedef.unflatten(new), state

    return optax.GradientTransformation(init_fn, update_fn)
