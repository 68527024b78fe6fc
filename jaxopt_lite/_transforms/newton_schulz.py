r"""Orthogonalization by a Newton-Schulz iteration: the core of `scale_by_muon`.

A matrix $X = U \Sigma V^\top$ is mapped to approximately $U V^\top$ by a
few steps of the odd quintic $X \leftarrow c_0 X + c_1 (X X^\top) X + c_2 (X
X^\top)^2 X$, after a rescaling that puts every singular value in $(0, 1]$.
The steps run in a ``lax.scan`` over the table of coefficients, so memory
does not grow with their number (optax unrolls the loop: every step's
intermediates are kept, optax PR 1650).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jaxopt_lite._core import tree_math, validate
from jaxopt_lite._core.dtypes import add, div, mul, promote
from jaxopt_lite._core.recipe import recipe
from jaxopt_lite._transforms.matrices import from_matrices, matrix_axes, to_matrices

PRECONDITIONINGS = ("frobenius", "spectral", "aol", "schatten")
NS_COEFFS_PRESETS = {
    "standard": (3.4445, -4.7750, 2.0315),
    "dion": (
        (4.0848, -6.8946, 2.9270),
        (3.9505, -6.3029, 2.6377),
        (3.7418, -5.5913, 2.3037),
        (2.8769, -3.1427, 1.2046),
        (2.8366, -3.0525, 1.2012),
    ),
}


class MuonDimensionNumbers(NamedTuple):
    """Which axes of a parameter form the matrix that Muon orthogonalizes.

    For $x W = y$ the reduction axes are the rows of $W$ (the inputs) and the
    output axes its columns; every other axis is a batch axis, each slice
    along them orthogonalized on its own. The default is a plain matrix
    ``(in, out)``. A convolution kernel in JAX's ``HWIO`` layout
    ``(kh, kw, in, out)`` is ``MuonDimensionNumbers((0, 1, 2), 3)``, what
    4-D leaves get when no dimension numbers are given; a PyTorch or
    equinox ``OIHW`` kernel is ``MuonDimensionNumbers((1, 2, 3), 0)``.
    """

    reduction_axis: Any = 0
    output_axis: Any = 1


def default_dimension_numbers(ndim: int) -> MuonDimensionNumbers | None:
    """A matrix for rank 2, an ``HWIO`` convolution kernel for rank 4, else
    ``None`` (not a matrix)."""
    if ndim == 2:
        return MuonDimensionNumbers()
    if ndim == 4:
        return MuonDimensionNumbers((0, 1, 2), 3)
    return None


def coefficient_table(ns_coeffs: Any, ns_steps: Any) -> jax.Array:
    """``ns_coeffs`` (a preset name, 3 coefficients or rows of 3) as an array
    of shape ``(3,)`` or ``(n, 3)``; ``ValueError`` for other shapes and for
    more rows than ``ns_steps``."""
    validate.check_int("ns_steps", ns_steps)
    if isinstance(ns_coeffs, str):
        validate.check_choice("ns_coeffs", ns_coeffs, tuple(NS_COEFFS_PRESETS))
        ns_coeffs = NS_COEFFS_PRESETS[ns_coeffs]
    table = jnp.asarray(ns_coeffs)
    if table.ndim not in (1, 2) or table.shape[-1] != 3 or table.size == 0:
        raise ValueError(
            f"ns_coeffs must have shape (3,) or (n, 3), got shape {table.shape}."
        )
    if table.ndim == 2 and table.shape[0] > ns_steps:
        raise ValueError(
            f"ns_coeffs has {table.shape[0]} rows of coefficients but "
            f"ns_steps={ns_steps}: give at most ns_steps rows (one per step)."
        )
    return table


def _gram(x: jax.Array) -> jax.Array:
    return x @ jnp.conj(jnp.swapaxes(x, -1, -2))


def _quintic(x: jax.Array, a: jax.Array, c: jax.Array) -> jax.Array:
    """$c_0 X + (c_1 A + c_2 A^2) X$ for $A = X X^H$."""
    return c[0] * x + (c[1] * a + c[2] * (a @ a)) @ x


def _at_least(r: jax.Array, eps: Any) -> jax.Array:
    return jnp.maximum(*promote(r, eps)).astype(r.dtype)


def _first_step(x: jax.Array, c: jax.Array, preconditioning: str, eps: Any):
    """The first step, fused with the ``aol`` or ``schatten`` rescaling."""
    a = _gram(x)
    if preconditioning == "aol":  # each row by the root of its row sum of |A|
        s = jax.lax.rsqrt(_at_least(jnp.sum(jnp.abs(a), axis=-1), eps))[..., None]
        x, a = mul(x, s), mul(a, s * jnp.swapaxes(s, -1, -2))
    else:  # schatten: the whole matrix by the root of ||A||_F
        s = jax.lax.rsqrt(_at_least(tree_math.l2_norm(a, axis=(-2, -1)), eps))
        s = s[..., None, None]
        x, a = mul(x, s), mul(a, s * s)
    return _quintic(x, a, c)


def newton_schulz(
    x: jax.Array, table: jax.Array, steps: int, preconditioning: str, eps: Any
) -> jax.Array:
    """Orthogonalize each matrix of ``x`` (shape ``(batch, m, n)``) with the
    coefficients ``table`` (``(3,)``, used ``steps`` times, or ``(k, 3)``,
    one row per step), in ``x``'s dtype."""
    dtype = x.dtype
    transposed = x.shape[-2] > x.shape[-1]  # iterate on the smaller Gram matrix
    if transposed:
        x = jnp.swapaxes(x, -1, -2)
    if preconditioning == "frobenius":
        x = div(x, add(tree_math.l2_norm(x, axis=(-2, -1), keepdims=True), eps))
    elif preconditioning == "spectral":
        norm = jnp.linalg.norm(x, ord=2, axis=(-2, -1), keepdims=True)
        x = div(x, add(norm, eps))
    x = x.astype(dtype)
    rows = table.astype(dtype)
    if rows.ndim == 1:
        rows = jnp.broadcast_to(rows, (steps, 3))
    if preconditioning in ("aol", "schatten"):
        x = _first_step(x, rows[0], preconditioning, eps).astype(dtype)
        rows = rows[1:]
    x, _ = jax.lax.scan(lambda y, c: (_quintic(y, _gram(y), c), None), x, rows)
    return jnp.swapaxes(x, -1, -2) if transposed else x


@recipe(static=("ns_steps", "dimension_numbers"))
def orthogonalize_via_newton_schulz(
    x: jax.Array,
    ns_coeffs: Any,
    ns_steps: int = 5,
    preconditioning: str = "frobenius",
    eps: float | jax.Array = 1e-8,
    dimension_numbers: MuonDimensionNumbers | None = None,
) -> jax.Array:
    r"""Map a matrix to (approximately) the nearest semi-orthogonal one.

    $$
    X_0 = \frac{G}{\lVert G \rVert_F + \epsilon}, \qquad
    X_{k+1} = c_0 X_k + c_1 (X_k X_k^\top) X_k + c_2 (X_k X_k^\top)^2 X_k
    $$

    With $G = U \Sigma V^\top$, every step applies the same odd polynomial to
    the singular values, so $X_K = U p(\Sigma) V^\top$; the default
    coefficients push them towards roughly $[0.7, 1.2]$ in 5 steps rather
    than exactly 1, which is as good for Muon and much faster. A tall matrix
    is iterated as its transpose. ``preconditioning`` replaces the Frobenius
    scaling: ``"spectral"`` divides by $\lVert G \rVert_2 + \epsilon$,
    ``"aol"`` scales the rows by $(\sum_j |X X^\top|_{ij})^{-1/2}$ and
    ``"schatten"`` by $\lVert X X^\top \rVert_F^{-1/2}$ inside the first
    step. The steps run in a ``lax.scan`` (memory independent of their
    number).

    Args:
        x: the matrix, or a tensor with ``dimension_numbers`` (a 4-D tensor
            without them is an ``HWIO`` convolution kernel, see
            `MuonDimensionNumbers`).
        ns_coeffs: $(c_0, c_1, c_2)$, shape ``(3,)``, or one row per step,
            shape ``(n, 3)``.
        ns_steps: the number of steps for coefficients of shape ``(3,)``.
        preconditioning: ``"frobenius"``, ``"spectral"``, ``"aol"`` or
            ``"schatten"``.
        eps: $\epsilon >= 0$.
        dimension_numbers: which axes form the matrix (`MuonDimensionNumbers`);
            the other axes are batch axes.

    Returns:
        An array of ``x``'s shape and dtype.

    Example:
        >>> import jax.numpy as jnp, jaxopt_lite as jol
        >>> o = jol.orthogonalize_via_newton_schulz(
        ...     jnp.array([[3.0, 0.0], [0.0, 0.5]]), jnp.array([1.5, -0.5, 0.0]),
        ...     ns_steps=20)
        >>> o.round(4)
        Array([[1., 0.],
               [0., 1.]], dtype=float32)

    References:
        Jordan et al., *Muon: An optimizer for hidden layers in neural
        networks*, 2024.
        Boissin et al., *Turbo-Muon: Accelerating Orthogonality-Based
        Optimization with Pre-Conditioning*, 2025.
        Grishina et al., *Accelerating Newton-Schulz Iteration for
        Orthogonalization via Chebyshev-type Polynomials*, 2025.
    """
    table = coefficient_table(ns_coeffs, ns_steps)
    validate.check_choice("preconditioning", preconditioning, PRECONDITIONINGS)
    validate.check_nonnegative("eps", eps)
    if dimension_numbers is None:
        dimension_numbers = default_dimension_numbers(jnp.ndim(x))
        if dimension_numbers is None:
            raise ValueError(
                f"x of shape {jnp.shape(x)} is not a matrix (nor a 4-D "
                "convolution kernel): give its dimension_numbers."
            )
    axes = matrix_axes(
        jnp.shape(x), *dimension_numbers, what="orthogonalize_via_newton_schulz"
    )
    x = jnp.asarray(x)
    y = newton_schulz(to_matrices(x, axes), table, ns_steps, preconditioning, eps)
    return from_matrices(y, x.shape, axes)
