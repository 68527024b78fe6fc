"""Section 6: full-batch solvers on the Moré-Garbow-Hillstrom problems.

jaxopt_lite's ``minimize(..., lbfgs())`` against scipy's L-BFGS-B, optimistix
LBFGS and BFGS, jaxopt LBFGS and ``optax.lbfgs()`` in a hand-written
``lax.while_loop``, all in float64 (see `_solvers` for each one's stopping
rule). Full mode runs the 35 problems from ``x0`` and from ``10 x0`` plus
L2-regularized logistic regression on the digits (640 parameters); quick and
smoke modes run a few small problems. A problem counts as solved when
``f - f* <= 1e-5 max(1, |f*|)`` or ``||grad f||_2 <= tol``, with ``f*`` the
paper's minimum (for logistic regression: the lowest value any solver
reached); the table also tells apart the runs that reached ``f*`` (``y``)
from those solved by the gradient test alone (``s``: a local minimum, or an
asymptote where the gradient underflows to 0). A last block times one
vmapped ``minimize`` over many starting points against as many sequential
calls.
"""

from __future__ import annotations

import statistics
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxopt_lite.benchmarks import _harness, _mgh, _solvers
from jaxopt_lite.benchmarks._harness import Contestant

TOL = 1e-6

SHORT = {
    "jaxopt_lite": "jaxopt_lite",
    "scipy L-BFGS-B": "scipy",
    "optimistix LBFGS": "optx-lbfgs",
    "optimistix BFGS": "optx-bfgs",
    "jaxopt LBFGS": "jaxopt",
    "optax lbfgs loop": "optax",
}


class Settings(NamedTuple):
    problems: tuple[str, ...] | None  # MGH problem names; None: all 35
    scaled_starts: bool  # also from 10 * x0
    logistic: bool
    max_iters: int
    vmap_starts: int


SETTINGS = {
    "smoke": Settings(("beale",), False, False, 1_000, 4),
    "quick": Settings(
        ("rosenbrock", "beale", "helical_valley"), False, False, 2_000, 8
    ),
    "full": Settings(None, True, True, 5_000, 64),
}


class Case(NamedTuple):
    label: str
    n: int
    fun: Any
    x0: np.ndarray
    f_star: float | None


def logistic_digits(data: dict[str, np.ndarray], l2: float = 1e-3):
    """Multinomial logistic regression on the digits as a function of the
    flattened ``(64, 10)`` weights, mean cross-entropy plus ``l2/2 ||w||^2``."""
    x = np.asarray(data["x"], dtype=np.float64)
    labels = np.asarray(data["y"])
    onehot = np.eye(10)[labels]

    def objective(w: jax.Array) -> jax.Array:
        logits = jnp.asarray(x, w.dtype) @ w.reshape(64, 10)
        logp = jax.nn.log_softmax(logits)
        nll = -jnp.mean(jnp.sum(jnp.asarray(onehot, w.dtype) * logp, axis=1))
        return nll + 0.5 * l2 * jnp.sum(w * w)

    return objective


def cases(settings: Settings, data: dict[str, np.ndarray]) -> list[Case]:
    names = settings.problems or tuple(p.name for p in _mgh.PROBLEMS)
    out = []
    for name in names:
        p = _mgh.BY_NAME[name]
        x0 = np.asarray(p.x0, dtype=np.float64)
        out.append(Case(name, p.n, p.objective, x0, p.f_star))
        if settings.scaled_starts and np.any(x0 != 0):
            out.append(Case(f"{name} (10 x0)", p.n, p.objective, 10 * x0, p.f_star))
    if settings.logistic:
        zeros = np.zeros(640)
        out.append(Case("logistic-digits", 640, logistic_digits(data), zeros, None))
    return out


def _cell(run: dict[str, Any]) -> str:
    # y: reached f*; s: solved only by the gradient test (a stationary point or
    # an asymptote where the gradient underflows, above f*); n: not solved
    mark = "y" if run["reached_f_star"] else ("s" if run["solved"] else "n")
    return f"{mark} {run['iterations']}/{run['fun_evals']} {run['time_s'] * 1e3:.3g}ms"


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def _summaries(runs, timings_by_case, solvers) -> list[dict[str, Any]]:
    by_case: dict[str, dict[str, dict[str, Any]]] = {}
    for r in runs:
        by_case.setdefault(r["problem"], {})[r["solver"]] = r
    out = []
    for solver in solvers:
        evals, times = [], []
        for label, rs in by_case.items():
            mine = rs[solver]
            if not mine["solved"]:
                continue
            scipy = rs.get("scipy L-BFGS-B")
            if scipy is not None and scipy["solved"] and scipy["fun_evals"]:
                evals.append(mine["fun_evals"] / scipy["fun_evals"])
            solved_jax = [s for s in _solvers.JAX_PEERS if s in rs and rs[s]["solved"]]
            if solved_jax:
                t = timings_by_case[label]
                fastest = min(solved_jax, key=lambda s: t[s].median_s)
                times.append(_harness.time_ratio(t, solver, fastest))
        solved = sum(rs[solver]["solved"] for rs in by_case.values())
        reached = sum(rs[solver]["reached_f_star"] for rs in by_case.values())
        out.append(
            {
                "problem": SHORT[solver],
                "solved": f"{solved}/{len(by_case)}",
                "reached_f_star": f"{reached}/{len(by_case)}",
                "median_fun_evals_vs_scipy": _median(evals),
                "median_time_vs_fastest_jax_peer": _median(times),
            }
        )
    return out


def _vmap_target(settings: Settings, repeats: int, ready: list[str]) -> dict[str, Any]:
    """One vmapped jaxopt_lite ``minimize`` over K starts vs K sequential calls."""
    k = settings.vmap_starts
    if "jaxopt_lite" not in ready:
        return {"starts": k, "note": "skipped: jaxopt_lite has no lbfgs"}
    import jaxopt_lite as jol

    p = _mgh.BY_NAME["extended_rosenbrock"]
    rng = np.random.default_rng(0)
    starts = np.asarray(p.x0) * (1 + 0.2 * rng.standard_normal((k, p.n)))
    optimizer = getattr(jol, "lbfgs")()  # noqa: B009 (absent on some versions)
    # one bound method for every call: minimize keys its compiled program on
    # the callable's identity, and each ``p.objective`` is a new bound method
    # (so every call would compile again, and time the compilation)
    objective = p.objective

    def one(x0):
        return jol.minimize(
            objective, x0, optimizer, steps=settings.max_iters, tol=TOL
        ).params

    with jax.enable_x64(True):
        xs = jnp.asarray(starts, jnp.float64)
        try:
            jax.eval_shape(jax.vmap(one), xs)
        except Exception as error:  # report why, keep the other numbers
            return {"starts": k, "note": f"vmap of minimize failed: {error!r:.200}"}
        contestants = [
            Contestant("vmapped", lambda _: jax.vmap(one)(xs)),
            Contestant("sequential", lambda _: [one(x) for x in xs]),
        ]
        t = _harness.interleaved(contestants, repeats)
    return {
        "starts": k,
        "problem": p.name,
        "vmapped_s": t["vmapped"].median_s,
        "sequential_s": t["sequential"].median_s,
        "vmapped_compile_s": t["vmapped"].compile_s,
        "speedup": _harness.speedup(t, "vmapped", "sequential"),
    }


def solvers(mode: _harness.Mode, data: dict[str, np.ndarray]) -> dict[str, Any]:
    """Every available solver on every case of ``mode``: rows, runs, summaries."""
    settings = SETTINGS[mode.name]
    ready, missing = _solvers.available()
    runs: list[dict[str, Any]] = []
    rows: list[dict[str, Any]] = []
    timings_by_case = {}
    for case in cases(settings, data):
        records, timings = _solvers.solve_all(
            case.fun,
            case.x0,
            ready,
            tol=TOL,
            max_iters=settings.max_iters,
            repeats=mode.repeats,
        )
        timings_by_case[case.label] = timings
        f_star = case.f_star
        if f_star is None:
            f_star = min(r["value"] for r in records.values())
        row: dict[str, Any] = {"problem": case.label, "n": case.n}
        for solver, r in records.items():
            t = timings[solver]
            r.update(problem=case.label, solver=solver, n=case.n, f_star=f_star)
            r.update(time_s=t.median_s, compile_s=t.compile_s)
            r["solved"] = _solvers.is_solved(r["value"], r["grad_norm"], f_star, TOL)
            r["reached_f_star"] = _solvers.is_solved(r["value"], np.inf, f_star, TOL)
            r["times_s"] = t.times_s
            runs.append(r)
            row[SHORT[solver]] = _cell(r)
        rows.append(row)
    return {
        "tol": TOL,
        "max_iters": settings.max_iters,
        "repeats": mode.repeats,
        "solvers": ready,
        "peer_versions": {
            name: _harness.package_version(name)
            for name in ("scipy", "optimistix", "jaxopt", "optax", "threadpoolctl")
        },
        "columns": ["problem", "n"] + [SHORT[s] for s in ready],
        "rows": rows,
        "runs": runs,
        "ratios": _summaries(runs, timings_by_case, ready),
        "vmap": _vmap_target(settings, mode.repeats, ready),
        "skipped": [f"{name} ({why})" for name, why in missing.items()],
    }
