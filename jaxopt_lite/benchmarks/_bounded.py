"""Section 10: bound-constrained problems, L-BFGS-B against L-BFGS-B.

``minimize(fun, x0, lbfgsb(), lower=, upper=)`` against scipy's L-BFGS-B
(the Fortran algorithm, here its C translation) and jaxopt's ``LBFGSB``, in
float64, on the bounded problems of the CUTEst collection as written in pure
JAX by the ``sif2jax`` package (without it, on two Moré-Garbow-Hillstrom
problems given a box; in smoke mode, on one). Quick mode runs two (a
small and a large one), full mode every bounded problem with at most 1000
variables.

Two runs of ours: with scipy's stopping tests (``lbfgsb()``: projected
gradient $\\le 10^{-5}$ or relative reduction $\\le 2.2 \\cdot 10^{-9}$),
compared with scipy's iterations; and without the reduction test
(``lbfgsb(ftol=0)``), which stops as jaxopt's solver does (projected
gradient $\\le 10^{-5}$, or its line search failing), timed against it. A run
counts as solved when its projected gradient's largest element is at most
``PGTOL`` or its value is within $10^{-5}$ (relative, as in the ``solvers``
section) of the best value any contestant reached.
"""

from __future__ import annotations

import importlib.util
import math
import statistics
import sys
import types
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxopt_lite.benchmarks import _harness, _mgh, _solvers
from jaxopt_lite.benchmarks._harness import Contestant

PGTOL = 1e-5
VALUE_RTOL = 1e-5  # or within this of the best value reached (as in _solver_section)
SMALL, LARGE = 20, 100  # n <= SMALL: small problems; n >= LARGE: large ones

OURS, OURS_PG, SCIPY, JAXOPT = (
    "jaxopt_lite",
    "jaxopt_lite (ftol=0)",
    "scipy L-BFGS-B",
    "jaxopt LBFGSB",
)


class Settings(NamedTuple):
    # sif2jax names; None: every one up to max_n; (): none, the built-in boxes
    problems: tuple[str, ...] | None
    max_n: int
    max_iters: int
    repeats: int  # timed repeats (compilation dominates this section's time)


SETTINGS = {
    # smoke mode (the test suite) does not import sif2jax: seconds, not minutes
    "smoke": Settings((), 1000, 500, 1),
    # one small problem (n = 10) and one large (n = 100): compilation and
    # importing sif2jax take most of the section's time
    "quick": Settings(("HS110", "LEVYMONT"), 1000, 2000, 3),
    "full": Settings(None, 1000, 2000, 3),
}


class Case(NamedTuple):
    name: str
    fun: Any
    x0: np.ndarray
    lower: np.ndarray
    upper: np.ndarray


def _mgh_cases(smoke: bool) -> list[Case]:
    """Without sif2jax: two Moré-Garbow-Hillstrom problems in a box that
    excludes their unconstrained minimizer (one in smoke mode)."""
    out = []
    boxes = (("beale", 0.0, 2.5), ("rosenbrock", -1.5, 0.5))
    for name, lo, hi in boxes[: 1 if smoke else 2]:
        p = _mgh.BY_NAME[name]
        x0 = np.clip(np.asarray(p.x0, np.float64), lo, hi)
        out.append(
            Case(f"{name} (box)", p.objective, x0, np.full(p.n, lo), np.full(p.n, hi))
        )
    return out


_SLOW_MODULE = "sif2jax.cutest._constrained_minimisation.cleuven7"


def import_sif2jax() -> Any:
    """``sif2jax``, or ``None`` when it is not installed.

    Its module of the constrained problem CLEUVEN7 builds a dense matrix one
    element at a time when imported, most of the package's import time
    (about 80%, minutes on a busy machine). This section never uses that
    problem, so when sif2jax is not imported yet, a stand-in module takes
    that one's place in ``sys.modules`` (the benchmark runs in its own
    process)."""
    if "sif2jax" not in sys.modules and importlib.util.find_spec("sif2jax"):
        stub = types.ModuleType(_SLOW_MODULE)
        stub.__dict__["CLEUVEN7"] = type("CLEUVEN7", (), {"__doc__": "Not loaded."})
        sys.modules.setdefault(_SLOW_MODULE, stub)
    return _harness.optional_module("sif2jax")


def cases(settings: Settings) -> tuple[list[Case], str]:
    """The problems of ``settings`` and where they come from."""
    sif2jax = import_sif2jax() if settings.problems != () else None
    if sif2jax is None:
        why = "smoke mode" if settings.problems == () else "sif2jax is not installed"
        return _mgh_cases(
            settings.problems == ()
        ), f"Moré-Garbow-Hillstrom in a box ({why})"
    out, seen = [], set()
    with jax.enable_x64(True):
        for p in sif2jax.bounded_minimisation_problems:
            if p.name in seen or (
                settings.problems and p.name not in settings.problems
            ):
                continue
            seen.add(p.name)
            # the size from shapes alone: building y0 of the 100 000-variable
            # problems eagerly takes minutes
            n = math.prod(jax.eval_shape(lambda p=p: p.y0).shape)
            if n > settings.max_n:
                continue
            lower, upper = (
                np.broadcast_to(np.asarray(b, np.float64), (n,)).copy()
                for b in p.bounds
            )
            x0 = np.clip(np.asarray(p.y0, np.float64).reshape(-1), lower, upper)
            fun = lambda y, p=p: p.objective(y, p.args)
            out.append(Case(p.name, fun, x0, lower, upper))
    return out, f"sif2jax {_harness.package_version('sif2jax')}"


def _runners(case: Case, max_iters: int, records: dict[str, dict]) -> list[Contestant]:
    import jaxopt_lite as jol

    x0 = jnp.asarray(case.x0)
    lower, upper = jnp.asarray(case.lower), jnp.asarray(case.upper)

    def ours(name, solver):
        def run(_):
            r = jol.minimize(
                case.fun, x0, solver, lower=lower, upper=upper, steps=max_iters
            )
            records[name].update(
                x=r.params, iterations=r.steps, fun_evals=r.fun_evals, status=r.status
            )
            return r.params

        return Contestant(name, run)

    value_and_grad = jax.jit(jax.value_and_grad(case.fun))

    def scipy(_):
        from scipy.optimize import minimize

        def fg(x):
            value, grad = value_and_grad(jnp.asarray(x))
            return float(value), np.asarray(grad, np.float64)

        bounds = [
            (None if np.isinf(a) else a, None if np.isinf(b) else b)
            for a, b in zip(case.lower, case.upper, strict=True)
        ]
        res = minimize(
            fg, case.x0, jac=True, method="L-BFGS-B", bounds=bounds,
            options={"maxiter": max_iters},
        )  # fmt: skip
        records[SCIPY].update(
            x=res.x, iterations=int(res.nit), fun_evals=int(res.nfev),
            status=str(res.message),
        )  # fmt: skip
        return res.x

    out = [ours(OURS, jol.lbfgsb()), ours(OURS_PG, jol.lbfgsb(ftol=0.0))]
    if _harness.optional_module("scipy.optimize") is not None:
        out.append(Contestant(SCIPY, scipy))
    jaxopt = _harness.optional_module("jaxopt")
    if jaxopt is not None:
        solver = jaxopt.LBFGSB(fun=case.fun, tol=PGTOL, maxiter=max_iters)
        solve = jax.jit(solver.run)

        def run_jaxopt(_):
            x, state = solve(x0, bounds=(lower, upper))
            records[JAXOPT].update(
                x=x, iterations=int(state.iter_num), fun_evals=int(state.num_fun_eval),
                status=f"error {float(state.error):.3g}",
            )  # fmt: skip
            return x

        out.append(Contestant(JAXOPT, run_jaxopt))
    return out


def _projected_gradient(grad, x, lower, upper) -> float:
    return float(np.max(np.abs(np.clip(x - grad, lower, upper) - x), initial=0.0))


def _geomean(values: list[float]) -> float | None:
    return math.exp(statistics.fmean(math.log(v) for v in values)) if values else None


def _summary(runs: list[dict], names: list[str]) -> dict[str, Any]:
    by_case: dict[str, dict[str, dict]] = {}
    for r in runs:
        by_case.setdefault(r["problem"], {})[r["solver"]] = r
    out: dict[str, Any] = {"problems": len(by_case)}
    for name in names:
        out[f"solved {name}"] = sum(rs[name]["solved"] for rs in by_case.values())
    if SCIPY in names:
        out["scipy solved, jaxopt_lite not"] = sorted(
            c
            for c, rs in by_case.items()
            if rs[SCIPY]["solved"] and not rs[OURS]["solved"]
        )
        ratios = [
            rs[OURS]["iterations"] / rs[SCIPY]["iterations"]
            for rs in by_case.values()
            if rs[OURS]["solved"] and rs[SCIPY]["solved"] and rs[SCIPY]["iterations"]
        ]
        out["median iterations vs scipy"] = (
            statistics.median(ratios) if ratios else None
        )
        out["same iterations as scipy"] = sum(
            rs[OURS]["iterations"] == rs[SCIPY]["iterations"] for rs in by_case.values()
        )
    if JAXOPT in names:
        for label, keep in (
            ("n <= 20", lambda n: n <= SMALL),
            ("n >= 100", lambda n: n >= LARGE),
        ):
            ratios = [
                rs[OURS_PG]["time_s"] / rs[JAXOPT]["time_s"]
                for rs in by_case.values()
                if keep(rs[OURS_PG]["n"])
                and rs[OURS_PG]["solved"]
                and rs[JAXOPT]["solved"]
            ]
            out[f"time vs jaxopt, {label} (geometric mean)"] = _geomean(ratios)
            out[f"time vs jaxopt, {label}, problems"] = len(ratios)
    return out


def _cell(r: dict) -> str:
    mark = "y" if r["solved"] else "n"
    return f"{mark} {r['iterations']}/{r['fun_evals']} {r['time_s'] * 1e3:.3g}ms"


def bounded(mode: _harness.Mode) -> dict[str, Any]:
    """Every case of ``mode`` with every available contestant."""
    settings = SETTINGS[mode.name]
    found, source = cases(settings)
    runs, rows = [], []
    names: list[str] = []
    for case in found:
        # scipy's BLAS on one thread (see _solvers)
        with jax.enable_x64(True), _solvers.one_blas_thread():
            records: dict[str, dict] = {
                name: {} for name in (OURS, OURS_PG, SCIPY, JAXOPT)
            }
            contestants = _runners(case, settings.max_iters, records)
            names = [c.name for c in contestants]
            timings = _harness.interleaved(contestants, settings.repeats)
            value_and_grad = jax.jit(jax.value_and_grad(case.fun))
            values = {}
            for name in names:
                x = np.asarray(records[name].pop("x"), np.float64)
                value, grad = value_and_grad(jnp.asarray(x))
                values[name] = float(value)
                records[name].update(
                    value=float(value),
                    projected_gradient=_projected_gradient(
                        np.asarray(grad), x, case.lower, case.upper
                    ),
                )
        best = min(v for v in values.values() if math.isfinite(v))
        row: dict[str, Any] = {"problem": case.name, "n": case.x0.size}
        for name in names:
            r = records[name]
            close = r["value"] - best <= VALUE_RTOL * max(1.0, abs(best))
            r.update(
                problem=case.name, solver=name, n=case.x0.size,
                solved=bool(r["projected_gradient"] <= PGTOL or close),
                time_s=timings[name].median_s, compile_s=timings[name].compile_s,
            )  # fmt: skip
            runs.append(r)
            row[name] = _cell(r)
        rows.append(row)
    missing = [n for n in (SCIPY, JAXOPT) if n not in names]
    return {
        "source": source,
        "pgtol": PGTOL,
        "max_iters": settings.max_iters,
        "repeats": settings.repeats,
        "columns": ["problem", "n", *names],
        "rows": rows,
        "runs": runs,
        "ratios": [{"problem": "summary", **_summary(runs, names)}],
        "skipped": [f"{n} (not installed)" for n in missing],
    }
