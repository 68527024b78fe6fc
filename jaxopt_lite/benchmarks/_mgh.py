"""The 35 unconstrained test problems of Moré, Garbow and Hillstrom (1981).

Each problem is a sum of squares $f(x) = \\sum_{i=1}^m f_i(x)^2$ of ``m``
residuals in ``n`` variables, written in pure ``jax.numpy`` (the residuals
compute in the dtype of ``x``), with the paper's standard starting point
``x0`` and, where the paper gives them, the minimum value ``f_star`` and a
minimizer ``x_star``. Problems whose size is free are instantiated at the
sizes listed in `PROBLEMS` (the paper's own choices where it reports one).

References:
    J. J. Moré, B. S. Garbow and K. E. Hillstrom, "Testing unconstrained
    optimization software", ACM Transactions on Mathematical Software 7(1),
    17-41, 1981. The Gulf problem uses the corrected formula (the paper's
    "mi" is a minus sign).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxopt_lite.benchmarks import _mgh_data


class Problem(NamedTuple):
    """One test problem: ``objective(x) = sum(residuals(x) ** 2)``."""

    number: int  # the problem's number in the paper
    name: str
    n: int
    m: int
    residuals: Callable[[jax.Array], jax.Array]
    x0: tuple[float, ...]
    f_star: float | None  # the paper's minimum (None: the paper gives none)
    x_star: tuple[float, ...] | None = None  # a minimizer where known exactly
    note: str = ""

    def objective(self, x: jax.Array) -> jax.Array:
        """The sum of squares of the residuals at ``x``."""
        r = self.residuals(x)
        return jnp.sum(r * r)


def _c(values, x: jax.Array) -> jax.Array:
    """Constants in the dtype of ``x``."""
    return jnp.asarray(values, dtype=x.dtype)


def _i(count: int, x: jax.Array, start: int = 1) -> jax.Array:
    """``start, ..., start + count - 1`` in the dtype of ``x``."""
    return jnp.arange(start, start + count, dtype=x.dtype)


def rosenbrock(x):
    return jnp.stack([10.0 * (x[1] - x[0] ** 2), 1.0 - x[0]])


def freudenstein_roth(x):
    return jnp.stack(
        [
            -13.0 + x[0] + ((5.0 - x[1]) * x[1] - 2.0) * x[1],
            -29.0 + x[0] + ((x[1] + 1.0) * x[1] - 14.0) * x[1],
        ]
    )


def powell_badly_scaled(x):
    return jnp.stack(
        [1e4 * x[0] * x[1] - 1.0, jnp.exp(-x[0]) + jnp.exp(-x[1]) - 1.0001]
    )


def brown_badly_scaled(x):
    return jnp.stack([x[0] - 1e6, x[1] - 2e-6, x[0] * x[1] - 2.0])


def beale(x):
    y = _c([1.5, 2.25, 2.625], x)
    return y - x[0] * (1.0 - x[1] ** _i(3, x))


def jennrich_sampson(x, m=10):
    i = _i(m, x)
    return 2.0 + 2.0 * i - (jnp.exp(i * x[0]) + jnp.exp(i * x[1]))


def helical_valley(x):
    theta = jnp.arctan(x[1] / x[0]) / (2.0 * math.pi)
    theta = theta + jnp.where(x[0] < 0, 0.5, 0.0).astype(x.dtype)
    radius = jnp.sqrt(x[0] ** 2 + x[1] ** 2)
    return jnp.stack([10.0 * (x[2] - 10.0 * theta), 10.0 * (radius - 1.0), x[2]])


def bard(x):
    u = _i(15, x)
    v = 16.0 - u
    w = jnp.minimum(u, v)
    return _c(_mgh_data.BARD_Y, x) - (x[0] + u / (v * x[1] + w * x[2]))


def gaussian(x):
    t = (8.0 - _i(15, x)) / 2.0
    return x[0] * jnp.exp(-x[1] * (t - x[2]) ** 2 / 2.0) - _c(_mgh_data.GAUSSIAN_Y, x)


def meyer(x):
    t = 45.0 + 5.0 * _i(16, x)
    return x[0] * jnp.exp(x[1] / (t + x[2])) - _c(_mgh_data.MEYER_Y, x)


def gulf(x, m=99):
    t = _i(m, x) / 100.0
    y = 25.0 + (-50.0 * jnp.log(t)) ** (2.0 / 3.0)
    return jnp.exp(-(jnp.abs(y - x[1]) ** x[2]) / x[0]) - t


def box_3d(x, m=10):
    t = 0.1 * _i(m, x)
    return (
        jnp.exp(-t * x[0])
        - jnp.exp(-t * x[1])
        - x[2] * (jnp.exp(-t) - jnp.exp(-10.0 * t))
    )


def powell_singular(x):
    return extended_powell_singular(x)


def wood(x):
    return jnp.stack(
        [
            10.0 * (x[1] - x[0] ** 2),
            1.0 - x[0],
            math.sqrt(90.0) * (x[3] - x[2] ** 2),
            1.0 - x[2],
            math.sqrt(10.0) * (x[1] + x[3] - 2.0),
            (x[1] - x[3]) / math.sqrt(10.0),
        ]
    )


def kowalik_osborne(x):
    u = _c(_mgh_data.KOWALIK_OSBORNE_U, x)
    model = x[0] * (u**2 + u * x[1]) / (u**2 + u * x[2] + x[3])
    return _c(_mgh_data.KOWALIK_OSBORNE_Y, x) - model


def brown_dennis(x, m=20):
    t = _i(m, x) / 5.0
    a = x[0] + t * x[1] - jnp.exp(t)
    b = x[2] + x[3] * jnp.sin(t) - jnp.cos(t)
    return a**2 + b**2


def osborne1(x):
    t = 10.0 * _i(33, x, start=0)
    model = x[0] + x[1] * jnp.exp(-t * x[3]) + x[2] * jnp.exp(-t * x[4])
    return _c(_mgh_data.OSBORNE1_Y, x) - model


def biggs_exp6(x, m=13):
    t = 0.1 * _i(m, x)
    y = jnp.exp(-t) - 5.0 * jnp.exp(-10.0 * t) + 3.0 * jnp.exp(-4.0 * t)
    return (
        x[2] * jnp.exp(-t * x[0])
        - x[3] * jnp.exp(-t * x[1])
        + x[5] * jnp.exp(-t * x[4])
        - y
    )


def osborne2(x):
    t = _i(65, x, start=0) / 10.0
    model = x[0] * jnp.exp(-t * x[4])
    for k in range(3):
        model = model + x[1 + k] * jnp.exp(-((t - x[8 + k]) ** 2) * x[5 + k])
    return _c(_mgh_data.OSBORNE2_Y, x) - model


def watson(x):
    n = x.shape[0]
    t = _i(29, x) / 29.0
    powers = t[:, None] ** _i(n, x, start=0)[None, :]  # t_i^(j-1), j = 1..n
    deriv = powers[:, : n - 1] @ (_i(n - 1, x) * x[1:])
    value = powers @ x
    fit = deriv - value**2 - 1.0
    return jnp.concatenate([fit, jnp.stack([x[0], x[1] - x[0] ** 2 - 1.0])])


def extended_rosenbrock(x):
    odd, even = x[0::2], x[1::2]
    return jnp.stack([10.0 * (even - odd**2), 1.0 - odd], axis=1).reshape(-1)


def extended_powell_singular(x):
    a, b, c, d = x[0::4], x[1::4], x[2::4], x[3::4]
    return jnp.stack(
        [
            a + 10.0 * b,
            math.sqrt(5.0) * (c - d),
            (b - 2.0 * c) ** 2,
            math.sqrt(10.0) * (a - d) ** 2,
        ],
        axis=1,
    ).reshape(-1)


def penalty1(x):
    root_a = math.sqrt(1e-5)
    return jnp.concatenate([root_a * (x - 1.0), jnp.stack([jnp.sum(x**2) - 0.25])])


def penalty2(x):
    n = x.shape[0]
    root_a = math.sqrt(1e-5)
    i = _i(n - 1, x, start=2)
    y = jnp.exp(i / 10.0) + jnp.exp((i - 1.0) / 10.0)
    ex = jnp.exp(x / 10.0)
    weights = _i(n, x)[::-1]  # n - j + 1
    return jnp.concatenate(
        [
            jnp.stack([x[0] - 0.2]),
            root_a * (ex[1:] + ex[:-1] - y),
            root_a * (ex[1:] - math.exp(-0.1)),
            jnp.stack([jnp.sum(weights * x**2) - 1.0]),
        ]
    )


def variably_dimensioned(x):
    s = jnp.sum(_i(x.shape[0], x) * (x - 1.0))
    return jnp.concatenate([x - 1.0, jnp.stack([s, s**2])])


def trigonometric(x):
    n = x.shape[0]
    i = _i(n, x)
    return n - jnp.sum(jnp.cos(x)) + i * (1.0 - jnp.cos(x)) - jnp.sin(x)


def brown_almost_linear(x):
    n = x.shape[0]
    linear = x[:-1] + jnp.sum(x) - (n + 1.0)
    return jnp.concatenate([linear, jnp.stack([jnp.prod(x) - 1.0])])


def _grid(x):
    n = x.shape[0]
    h = 1.0 / (n + 1)
    return h, h * _i(n, x)


def discrete_boundary_value(x):
    h, t = _grid(x)
    padded = jnp.pad(x, 1)
    return 2.0 * x - padded[:-2] - padded[2:] + h**2 * (x + t + 1.0) ** 3 / 2.0


def discrete_integral_equation(x):
    h, t = _grid(x)
    cube = (x + t + 1.0) ** 3
    lower = jnp.cumsum(t * cube)  # sum over j <= i
    upper = jnp.cumsum(((1.0 - t) * cube)[::-1])[::-1] - (1.0 - t) * cube  # j > i
    return x + h * ((1.0 - t) * lower + t * upper) / 2.0


def broyden_tridiagonal(x):
    padded = jnp.pad(x, 1)
    return (3.0 - 2.0 * x) * x - padded[:-2] - 2.0 * padded[2:] + 1.0


def broyden_banded(x, lower=5, upper=1):
    n = x.shape[0]
    g = x * (1.0 + x)
    i = jnp.arange(n)
    band = (i[None, :] >= i[:, None] - lower) & (i[None, :] <= i[:, None] + upper)
    band = band & (i[None, :] != i[:, None])
    return x * (2.0 + 5.0 * x**2) + 1.0 - jnp.where(band, g[None, :], 0.0).sum(1)


def linear_full_rank(x, m=20):
    n = x.shape[0]
    s = 2.0 * jnp.sum(x) / m
    return jnp.concatenate([x - s - 1.0, jnp.full((m - n,), -s - 1.0, x.dtype)])


def linear_rank1(x, m=20):
    s = jnp.sum(_i(x.shape[0], x) * x)
    return _i(m, x) * s - 1.0


def linear_rank1_zero(x, m=20):
    n = x.shape[0]
    s = jnp.sum(_i(n - 2, x, start=2) * x[1:-1])
    inner = _i(m - 2, x) * s - 1.0  # (i - 1) * s - 1 for i = 2..m-1
    minus_one = jnp.full((1,), -1.0, x.dtype)
    return jnp.concatenate([minus_one, inner, minus_one])


def chebyquad(x):
    n = x.shape[0]
    y = 2.0 * x - 1.0  # the shifted Chebyshev polynomials T_i(2x - 1)
    rows = [jnp.ones_like(y), y]
    for _ in range(n - 1):
        rows.append(2.0 * y * rows[-1] - rows[-2])
    i = _i(n, x)
    integral = jnp.where(i % 2 == 0, -1.0 / (i**2 - 1.0), 0.0)
    return jnp.stack(rows[1 : n + 1]).mean(axis=1) - integral


def _dims(n: int, fill: Callable[[int], float]) -> tuple[float, ...]:
    return tuple(fill(j) for j in range(1, n + 1))


NOTES = {
    "freudenstein_roth": "local minimum 48.9842 at (11.41, -0.8968)",
    "bard": "also 17.4286 at (0.8406, -inf, -inf)",
    "kowalik_osborne": "also 1.02734e-3 at (inf, -14.07, -inf, -inf)",
    "biggs_exp6": "f = 0 at (1, 10, 1, 5, 4, 3); 5.65565e-3 is another minimum",
    "trigonometric": "local minima; 2.79506e-5 is commonly reached at n = 10",
    "brown_almost_linear": "also f = 1 at (0, ..., 0, n + 1)",
}


def _problems() -> tuple[Problem, ...]:
    n = 10  # the size of the problems whose size is free (Watson: 9; ...)
    m = 20  # residuals of the linear problems
    grid = _dims(n, lambda j: j / (n + 1) * (j / (n + 1) - 1.0))
    ones, zeros = (1.0,) * n, (0.0,) * n
    rows = [
        (1, rosenbrock, 2, 2, (-1.2, 1.0), 0.0, (1.0, 1.0)),
        (2, freudenstein_roth, 2, 2, (0.5, -2.0), 0.0, (5.0, 4.0)),
        (3, powell_badly_scaled, 2, 2, (0.0, 1.0), 0.0, None),
        (4, brown_badly_scaled, 2, 3, (1.0, 1.0), 0.0, (1e6, 2e-6)),
        (5, beale, 2, 3, (1.0, 1.0), 0.0, (3.0, 0.5)),
        (6, jennrich_sampson, 2, 10, (0.3, 0.4), 124.362, None),
        (7, helical_valley, 3, 3, (-1.0, 0.0, 0.0), 0.0, (1.0, 0.0, 0.0)),
        (8, bard, 3, 15, (1.0, 1.0, 1.0), 8.21487e-3, None),
        (9, gaussian, 3, 15, (0.4, 1.0, 0.0), 1.12793e-8, None),
        (10, meyer, 3, 16, (0.02, 4000.0, 250.0), 87.9458, None),
        (11, gulf, 3, 99, (5.0, 2.5, 0.15), 0.0, (50.0, 25.0, 1.5)),
        (12, box_3d, 3, 10, (0.0, 10.0, 20.0), 0.0, (1.0, 10.0, 1.0)),
        (13, powell_singular, 4, 4, (3.0, -1.0, 0.0, 1.0), 0.0, (0.0,) * 4),
        (14, wood, 4, 6, (-3.0, -1.0, -3.0, -1.0), 0.0, (1.0,) * 4),
        (15, kowalik_osborne, 4, 11, (0.25, 0.39, 0.415, 0.39), 3.07505e-4, None),
        (16, brown_dennis, 4, 20, (25.0, 5.0, -5.0, -1.0), 85822.2, None),
        (17, osborne1, 5, 33, (0.5, 1.5, -1.0, 0.01, 0.02), 5.46489e-5, None),
        (18, biggs_exp6, 6, 13, (1.0, 2.0, 1.0, 1.0, 1.0, 1.0), 5.65565e-3, None),
        (
            19, osborne2, 11, 65,
            (1.3, 0.65, 0.65, 0.7, 0.6, 3.0, 5.0, 7.0, 2.0, 4.5, 5.5),
            4.01377e-2, None,
        ),
        (20, watson, 9, 31, (0.0,) * 9, 1.39976e-6, None),
        (21, extended_rosenbrock, n, n, (-1.2, 1.0) * (n // 2), 0.0, ones),
        (22, extended_powell_singular, 12, 12, (3.0, -1.0, 0.0, 1.0) * 3, 0.0,
         (0.0,) * 12),
        (23, penalty1, n, n + 1, _dims(n, float), 7.08765e-5, None),
        (24, penalty2, n, 2 * n, (0.5,) * n, 2.93660e-4, None),
        (25, variably_dimensioned, n, n + 2, _dims(n, lambda j: 1 - j / n), 0.0,
         ones),
        (26, trigonometric, n, n, (1.0 / n,) * n, 0.0, zeros),
        (27, brown_almost_linear, n, n, (0.5,) * n, 0.0, ones),
        (28, discrete_boundary_value, n, n, grid, 0.0, None),
        (29, discrete_integral_equation, n, n, grid, 0.0, None),
        (30, broyden_tridiagonal, n, n, (-1.0,) * n, 0.0, None),
        (31, broyden_banded, n, n, (-1.0,) * n, 0.0, None),
        (32, linear_full_rank, n, m, ones, float(m - n), (-1.0,) * n),
        (33, linear_rank1, n, m, ones, m * (m - 1) / (2 * (2 * m + 1)),
         (3.0 / (2 * m + 1),) + (0.0,) * (n - 1)),
        (34, linear_rank1_zero, n, m, ones, (m * m + 3 * m - 6) / (2 * (2 * m - 3)),
         (0.0, 3.0 / (2 * (2 * m - 3))) + (0.0,) * (n - 2)),
        (35, chebyquad, 8, 8, _dims(8, lambda j: j / 9), 3.51687e-3, None),
    ]  # fmt: skip
    return tuple(
        Problem(
            number,
            fn.__name__,
            dim,
            size,
            fn,
            x0,
            f_star,
            x_star,
            NOTES.get(fn.__name__, ""),
        )
        for number, fn, dim, size, x0, f_star, x_star in rows
    )


PROBLEMS: tuple[Problem, ...] = _problems()
BY_NAME: dict[str, Problem] = {p.name: p for p in PROBLEMS}
