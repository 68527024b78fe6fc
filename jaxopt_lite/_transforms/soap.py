r"""SOAP: Adam run in the eigenbasis of Shampoo's Kronecker-factored
preconditioner (`scale_by_soap`).

Every axis of a leaf with at least two axes whose length is at most
``max_precond_dim`` gets a factor $F_k$, an exponential moving average of the
gradient's outer product over all the other axes (for a matrix: $L = E[G
G^{\mathsf H}]$ on the rows, $R = E[G^{\mathsf T} \bar G]$ on the columns),
and an orthonormal basis $Q_k$ of $F_k$'s eigenvectors. Adam's moments live in
the rotated coordinates $G' = G \times_k Q_k^{\mathsf H}$ (the gradient with
$Q_k^{\mathsf H}$ applied along each axis $k$; $Q_L^{\mathsf T} G Q_R$ for a
real matrix). Other axes, and leaves with fewer than two axes, are not
rotated: those leaves get plain Adam.

Factors and bases are kept in the parameters' dtype promoted to at least
float32 (complex parameters get Hermitian factors and unitary bases); the
moments are kept like Adam's, $\mu$ in the parameters' dtype and $\nu$ in the
matching real dtype.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jaxopt_lite._core import tree_math, validate
from jaxopt_lite._core.dtypes import (
    add,
    at_least_float32,
    compute_dtype,
    div,
    mul,
    promote,
    real_full_like,
    zeros_like,
)
from jaxopt_lite._core.recipe import recipe

_HIGHEST = jax.lax.Precision.HIGHEST


class ScaleBySoapState(NamedTuple):
    """Update count (int32, saturating); Adam's moments in the rotated
    coordinates; per leaf, a tuple with one factor $F_k$ and one basis $Q_k$
    per axis (``None`` for an axis that is not rotated)."""

    count: jax.Array
    mu: tree_math.PyTree
    nu: tree_math.PyTree
    factors: tree_math.PyTree
    bases: tree_math.PyTree


def _rotated_axes(shape: Sequence[int], max_precond_dim: int) -> tuple[bool, ...]:
    """Which axes of a leaf of ``shape`` are rotated: all axes of length at
    most ``max_precond_dim`` of a leaf with two axes or more."""
    if len(shape) < 2:
        return (False,) * len(shape)
    return tuple(n <= max_precond_dim for n in shape)


def _along(x: jax.Array, matrix: jax.Array, axis: int, contract: int) -> jax.Array:
    r"""``matrix`` applied along ``axis`` of ``x``, contracting the matrix's
    axis ``contract`` (1: $y = M x$; 0: $y = M^{\mathsf T} x$)."""
    x, matrix = promote(x, matrix)
    y = jnp.tensordot(x, matrix, axes=([axis], [contract]), precision=_HIGHEST)
    return jnp.moveaxis(y, -1, axis)


def _project(x: jax.Array, bases: tuple) -> jax.Array:
    r"""Into the rotated coordinates: $Q_k^{\mathsf H}$ along every axis $k$."""
    for axis, q in enumerate(bases):
        if q is not None:
            x = _along(x, q.conj(), axis, 0)
    return x


def _project_back(x: jax.Array, bases: tuple) -> jax.Array:
    """Back to the parameters' coordinates: $Q_k$ along every axis $k$."""
    for axis, q in enumerate(bases):
        if q is not None:
            x = _along(x, q, axis, 1)
    return x


def _update_factors(g: jax.Array, factors: tuple, beta: Any) -> tuple:
    r"""$F_k \leftarrow \beta F_k + (1 - \beta) \sum g_{\dots a \dots}
    \bar g_{\dots b \dots}$, the sum over every axis but $k$."""
    new = []
    for axis, f in enumerate(factors):
        if f is not None:
            others = [k for k in range(g.ndim) if k != axis]
            outer = jnp.tensordot(g, g.conj(), (others, others), precision=_HIGHEST)
            f = tree_math.ema(beta, f, outer).astype(f.dtype)
        new.append(f)
    return tuple(new)


def _eigenbasis(f: jax.Array | None) -> jax.Array | None:
    """Eigenvectors of the Hermitian ``f``, largest eigenvalue first."""
    return None if f is None else jnp.flip(jnp.linalg.eigh(f)[1], axis=1)


def _refresh(factors: tuple, bases: tuple, nu: jax.Array) -> tuple[tuple, jax.Array]:
    r"""One power-iteration step per axis, $Q_k \leftarrow \mathrm{QR}(F_k Q_k)$,
    after sorting $Q_k$'s columns (and $\nu$ along axis $k$) by the estimated
    eigenvalues $\mathrm{diag}(Q_k^{\mathsf H} F_k Q_k)$, largest first."""
    new = []
    for axis, (f, q) in enumerate(zip(factors, bases, strict=True)):
        if f is None:
            new.append(None)
            continue
        fq = jnp.matmul(f, q, precision=_HIGHEST)
        order = jnp.argsort(-jnp.sum(q.conj() * fq, axis=0).real)
        nu = jnp.take(nu, order, axis=axis)
        new.append(jnp.linalg.qr(fq[:, order])[0])
    return tuple(new), nu


def _refresh_all(mus: list, nus: list, factors: list, bases: list) -> tuple:
    r"""`_refresh` every leaf's bases, carrying $\mu$ over to the new ones."""
    new_mus, new_nus, new_bases = [], [], []
    for mu, nu, fs, qs in zip(mus, nus, factors, bases, strict=True):
        original = _project_back(mu, qs)
        qs, nu = _refresh(fs, qs, nu)
        new_mus.append(_project(original, qs).astype(mu.dtype))
        new_nus.append(nu)
        new_bases.append(qs)
    return new_mus, new_nus, new_bases


def _correction(b1: Any, b2: Any, t: jax.Array, like: jax.Array) -> jax.Array:
    r"""$\sqrt{1 - \beta_2^t} / (1 - \beta_1^t)$ in ``like``'s compute dtype."""
    t = t.astype(compute_dtype(like))
    c1 = 1 - jnp.power(*promote(b1, t))
    c2 = 1 - jnp.power(*promote(b2, t))
    return div(jnp.sqrt(c2), c1)


@recipe(static=("max_precond_dim",))
def scale_by_soap(
    b1: float | jax.Array = 0.95,
    b2: float | jax.Array = 0.95,
    shampoo_beta: float | jax.Array | None = None,
    eps: float | jax.Array = 1e-8,
    precondition_frequency: int | jax.Array = 10,
    max_precond_dim: int = 10000,
) -> optax.GradientTransformation:
    r"""Rescale updates by Adam in the eigenbasis of Shampoo's preconditioner (SOAP).

    For a matrix leaf with gradient $G_t$ (other shapes: one factor per axis,
    see the module notes), with $t$ counting the updates that follow the
    first one:

    $$
    \begin{aligned}
    G'_t &= Q_L^{\mathsf T} G_t Q_R, \quad
    \mu_t = \beta_1 \mu_{t-1} + (1-\beta_1) G'_t, \quad
    \nu_t = \beta_2 \nu_{t-1} + (1-\beta_2) |G'_t|^2 \\
    u_t &= \frac{\sqrt{1-\beta_2^t}}{1-\beta_1^t}\,
    Q_L \left(\frac{\mu_t}{\sqrt{\nu_t} + \epsilon}\right) Q_R^{\mathsf T} \\
    L_t &= \beta_s L_{t-1} + (1-\beta_s) G_t G_t^{\mathsf T}, \quad
    R_t = \beta_s R_{t-1} + (1-\beta_s) G_t^{\mathsf T} G_t
    \end{aligned}
    $$

    Every $f$ updates ($t \bmod f = 0$) each basis is refreshed by one step
    of power iteration, $Q \leftarrow \mathrm{QR}(L_t Q)$ (after sorting its
    columns, and $\nu$'s matching rows, by the estimated eigenvalues
    $\mathrm{diag}(Q^{\mathsf T} L_t Q)$, largest first), and $\mu$ is carried
    over to the new basis ($\mu \leftarrow Q_{\text{new}}^{\mathsf T}
    Q_{\text{old}} \mu$ on each side). The very first update only starts the
    factors, $L_1 = (1-\beta_s) G_1 G_1^{\mathsf T}$, and takes exact
    eigenbases of them (``eigh``); it returns zero updates for every leaf, so
    the gradient that builds a basis is never projected onto it. Leaves with
    fewer than two axes are not rotated ($Q = I$): Adam with the same first
    update skipped.

    This is the algorithm of the authors' reference implementation (with
    ``merge_dims``, ``precondition_1d`` and ``normalize_grads`` off, as by
    default there), including its bias correction, which leaves $\epsilon$
    outside the corrected root: $\sqrt{1-\beta_2^t}/(1-\beta_1^t)$ times
    $\mu / (\sqrt\nu + \epsilon)$.

    Args:
        b1: Adam's $\beta_1$, in $[0, 1)$.
        b2: Adam's $\beta_2$, in $[0, 1)$.
        shampoo_beta: $\beta_s$ in $[0, 1)$, the decay of the factors $L, R$;
            ``None`` (the default) uses ``b2`` (the reference's
            ``shampoo_beta=-1``).
        eps: $\epsilon >= 0$, added to $\sqrt{\nu}$.
        precondition_frequency: $f$, an integer >= 1: the bases are refreshed
            every $f$ updates.
        max_precond_dim: axes longer than this (an integer >= 1) get no factor
            (and are not rotated): their factor would take $n^2$ memory and an
            $O(n^3)$ refresh.

    Returns:
        An ``optax.GradientTransformation``.

    Example:
        >>> import jax, jax.numpy as jnp, jaxopt_lite as jol
        >>> t = jol.scale_by_soap()
        >>> state = t.init(jnp.ones((2, 2)))
        >>> update = jax.jit(t.update)
        >>> u, state = update(jnp.array([[2.0, 0.0], [0.0, 1.0]]), state)
        >>> u  # the first update only builds the bases
        Array([[0., 0.],
               [0., 0.]], dtype=float32)
        >>> u, state = update(jnp.array([[0.0, 3.0], [0.5, 0.0]]), state)
        >>> u.round(4)
        Array([[0., 1.],
               [1., 0.]], dtype=float32)

    References:
        Vyas, Morwani, Zhao, Kwun, Shapira, Brandfonbrener, Janson and Kakade,
        *SOAP: Improving and Stabilizing Shampoo using Adam*, 2024.
        Gupta, Koren and Singer, *Shampoo: Preconditioned Stochastic Tensor
        Optimization*, 2018.
    """
    validate.check_decay("b1", b1)
    validate.check_decay("b2", b2)
    if shampoo_beta is not None:
        validate.check_decay("shampoo_beta", shampoo_beta)
    validate.check_nonnegative("eps", eps)
    validate.check_int("precondition_frequency", precondition_frequency, traced=True)
    validate.check_int("max_precond_dim", max_precond_dim)
    beta_s = b2 if shampoo_beta is None else shampoo_beta

    def init_fn(params):
        def factors(p):
            shape, dtype = jnp.shape(p), at_least_float32(p)
            return tuple(
                jnp.zeros((n, n), dtype) if rotated else None
                for n, rotated in zip(
                    shape, _rotated_axes(shape, max_precond_dim), strict=True
                )
            )

        def identities(p):
            return tuple(
                None if f is None else jnp.eye(f.shape[0], dtype=f.dtype)
                for f in factors(p)
            )

        return ScaleBySoapState(
            count=jnp.zeros([], jnp.int32),
            mu=zeros_like(params),
            nu=real_full_like(params, 0.0),
            factors=jax.tree.map(factors, params),
            bases=jax.tree.map(identities, params),
        )

    def update_fn(updates, state, params=None):
        del params
        updates = tree_math.as_arrays(updates)
        treedef = jax.tree.structure(updates)
        grads = treedef.flatten_up_to(updates)
        mus, nus = treedef.flatten_up_to(state.mu), treedef.flatten_up_to(state.nu)
        bases = treedef.flatten_up_to(state.bases)
        # Gradients in the dtype of their factors and bases.
        wide = [g.astype(at_least_float32(g)) for g in grads]
        factors = [
            _update_factors(g, fs, beta_s)
            for g, fs in zip(wide, treedef.flatten_up_to(state.factors), strict=True)
        ]

        def first():
            exact = [tuple(map(_eigenbasis, fs)) for fs in factors]
            return [jnp.zeros_like(g) for g in grads], mus, nus, exact

        def later():
            t = state.count
            steps, new_mus, new_nus = [], [], []
            for g, w, mu, nu, qs in zip(grads, wide, mus, nus, bases, strict=True):
                rotated = _project(w, qs)
                mu = tree_math.ema(b1, mu, rotated).astype(mu.dtype)
                nu = tree_math.ema(b2, nu, tree_math.abs_sq(rotated)).astype(nu.dtype)
                step = _project_back(div(mu, add(jnp.sqrt(nu), eps)), qs)
                steps.append(mul(_correction(b1, b2, t, w), step).astype(g.dtype))
                new_mus.append(mu)
                new_nus.append(nu)
            refresh = jnp.remainder(t, precondition_frequency) == 0
            new_mus, new_nus, new_bases = jax.lax.cond(
                refresh,
                lambda: _refresh_all(new_mus, new_nus, factors, bases),
                lambda: (new_mus, new_nus, bases),
            )
            return steps, new_mus, new_nus, new_bases

        steps, mus, nus, bases = jax.lax.cond(state.count == 0, first, later)
        state = ScaleBySoapState(
            count=tree_math.safe_increment(state.count),
            mu=treedef.unflatten(mus),
            nu=treedef.unflatten(nus),
            factors=treedef.unflatten(factors),
            bases=treedef.unflatten(bases),
        )
        return treedef.unflatten(steps), state

    return optax.GradientTransformation(init_fn, update_fn)
