"""One runner per full-batch solver for the ``solvers`` benchmark section.

Every runner takes a function ``fun`` of a flat float64 vector, a starting
point, a gradient tolerance ``tol`` and an iteration budget, and builds a
`Contestant` whose timed call solves the problem and records the solver's own
counts: ``iterations`` (accepted steps) and ``fun_evals`` (objective
evaluations, each with its gradient unless noted). The final value and
gradient norm are then computed once, untimed, with the same jitted
``value_and_grad`` for every solver.

Stopping rules, aligned on ``||grad f||_2 <= tol`` as far as each peer allows:

- **jaxopt_lite** ``minimize(..., lbfgs(), tol=tol)``, **jaxopt** ``LBFGS(tol=tol)``
  and the **optax** ``lbfgs()`` loop stop on the gradient's L2 norm.
- **scipy** L-BFGS-B stops on the projected gradient's inf-norm (``gtol``);
  ``gtol = tol / sqrt(n)`` implies the L2 criterion. Its relative-decrease
  test is disabled (``ftol=0``), so it stops on the gradient, on ``maxiter``,
  or when its line search fails.
- **optimistix** ``LBFGS`` and ``BFGS`` have no gradient test: they stop when
  both the step and the change in ``f`` are small (``rtol``, ``atol``; here
  both ``OPTX_TOL``), an independent criterion.

All solvers run with the BLAS libraries (OpenBLAS) limited to one thread, when
threadpoolctl is installed: scipy's L-BFGS-B calls BLAS on tiny matrices, and
on a two-core machine idle-spinning BLAS threads competing with JAX's slowed
each scipy iteration from microseconds to milliseconds (100x on a 2-D problem).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxopt_lite.benchmarks import _harness
from jaxopt_lite.benchmarks._harness import Contestant

OPTX_TOL = 1e-10

Fun = Callable[[jax.Array], jax.Array]
Record = dict[str, Any]


def scipy_lbfgsb(fun: Fun, x0: jax.Array, tol: float, max_iters: int, record):
    from scipy.optimize import minimize

    value_and_grad = jax.jit(jax.value_and_grad(fun))

    def host(x):
        value, grad = value_and_grad(jnp.asarray(x))
        return float(value), np.asarray(grad, dtype=np.float64)

    options = {
        "gtol": tol / math.sqrt(x0.size),
        "ftol": 0.0,
        "maxiter": max_iters,
        "maxfun": 20 * max_iters,
    }

    def run(_):
        res = minimize(
            host, np.asarray(x0), jac=True, method="L-BFGS-B", options=options
        )
        record.update(x=res.x, iterations=int(res.nit), fun_evals=int(res.nfev))
        record["status"] = str(res.message)
        return res.x

    return run


def optimistix_solver(kind: str) -> Callable:
    """The runner of ``optimistix.LBFGS`` or ``optimistix.BFGS`` (``kind``)."""

    def runner(fun: Fun, x0: jax.Array, tol: float, max_iters: int, record):
        optx = _harness.peer_module("optimistix")

        solver = getattr(optx, kind)(rtol=OPTX_TOL, atol=OPTX_TOL)

        @jax.jit
        def solve(x):
            sol = optx.minimise(
                lambda y, _: fun(y), solver, x, max_steps=max_iters, throw=False
            )
            ok = sol.result == optx.RESULTS.successful
            return sol.value, sol.state.num_accepted_steps, sol.stats["num_steps"], ok

        def run(_):
            x, accepted, steps, ok = solve(x0)
            # each optimistix step evaluates fun once (value and linearization)
            record.update(x=x, iterations=int(accepted), fun_evals=int(steps))
            record["status"] = "successful" if bool(ok) else "not successful"
            return x

        return run

    return runner


def jaxopt_lbfgs(fun: Fun, x0: jax.Array, tol: float, max_iters: int, record):
    jaxopt = _harness.peer_module("jaxopt")

    solve = jax.jit(jaxopt.LBFGS(fun=fun, tol=tol, maxiter=max_iters).run)

    def run(_):
        x, state = solve(x0)
        record.update(
            x=x,
            iterations=int(state.iter_num),
            fun_evals=int(state.num_fun_eval),
            grad_evals=int(state.num_grad_eval),
        )
        record["status"] = f"error {float(state.error):.3g}"
        return x

    return run


def optax_lbfgs(fun: Fun, x0: jax.Array, tol: float, max_iters: int, record):
    """``optax.lbfgs()`` (zoom line search) in a hand-written ``lax.while_loop``."""
    opt = optax.lbfgs()
    value_and_grad = optax.value_and_grad_from_state(fun)

    @jax.jit
    def solve(x):
        grad_norm = optax.tree.norm(jax.grad(fun)(x))

        def cond(carry):
            _, _, k, norm, _ = carry
            return (k < max_iters) & (norm > tol)

        def body(carry):
            x, state, k, _, evals = carry
            value, grad = value_and_grad(x, state=state)
            updates, state = opt.update(
                grad, state, x, value=value, grad=grad, value_fn=fun
            )
            x = optax.apply_updates(x, updates)
            evals = evals + optax.tree.get(state, "num_linesearch_steps")
            norm = optax.tree.norm(optax.tree.get(state, "grad"))
            return x, state, k + 1, norm, evals

        init = (x, opt.init(x), jnp.asarray(0), grad_norm, jnp.asarray(1))
        x, _, k, _, evals = jax.lax.while_loop(cond, body, init)
        return x, k, evals

    def run(_):
        x, k, evals = solve(x0)
        # one evaluation at x0, then the line search's (value and gradient each)
        record.update(x=x, iterations=int(k), fun_evals=int(evals))
        return x

    return run


def jaxopt_lite_lbfgs(fun: Fun, x0: jax.Array, tol: float, max_iters: int, record):
    """``jaxopt_lite.minimize`` with ``jaxopt_lite.lbfgs()``."""
    import jaxopt_lite as jol

    optimizer = jol.lbfgs()

    def run(_):
        result = jol.minimize(fun, x0, optimizer, steps=max_iters, tol=tol)
        record.update(
            x=result.params,
            iterations=int(result.steps),
            fun_evals=int(result.fun_evals),
            grad_evals=int(result.grad_evals),
            status=str(result.status),
        )
        return result.params

    return run


# name -> (module that must import, runner)
SOLVERS: dict[str, tuple[str, Callable]] = {
    "jaxopt_lite": ("jaxopt_lite", jaxopt_lite_lbfgs),
    "scipy L-BFGS-B": ("scipy.optimize", scipy_lbfgsb),
    "optimistix LBFGS": ("optimistix", optimistix_solver("LBFGS")),
    "optimistix BFGS": ("optimistix", optimistix_solver("BFGS")),
    "jaxopt LBFGS": ("jaxopt", jaxopt_lbfgs),
    "optax lbfgs loop": ("optax", optax_lbfgs),
}
JAX_PEERS = ("optimistix LBFGS", "optimistix BFGS", "jaxopt LBFGS", "optax lbfgs loop")


def available() -> tuple[list[str], dict[str, str]]:
    """The solvers that can run here, and why each of the others cannot."""
    ready, missing = [], {}
    for name, (module, _) in SOLVERS.items():
        if _harness.optional_module(module) is None:
            missing[name] = f"{module} is not installed"
        else:
            ready.append(name)
    return ready, missing


def is_solved(value: float, grad_norm: float, f_star: float, tol: float) -> bool:
    """``f - f* <= 1e-5 max(1, |f*|)`` or ``||grad||_2 <= tol``."""
    close = value - f_star <= 1e-5 * max(1.0, abs(f_star))
    return bool(close or grad_norm <= tol)


def one_blas_thread() -> contextlib.AbstractContextManager:
    threadpoolctl = _harness.optional_module("threadpoolctl")
    if threadpoolctl is None:
        return contextlib.nullcontext()
    return threadpoolctl.threadpool_limits(limits=1, user_api="blas")


def _guarded(run: Callable, x0: jax.Array, record: Record) -> Callable:
    """``run``, recording an exception (and ``x0`` as the result) instead of
    raising it, so one failing peer does not stop the section."""

    def guarded(arg):
        try:
            return run(arg)
        except Exception as error:  # a peer's failure is a result too
            record.update(x=x0, iterations=None, fun_evals=None)
            record["status"] = f"raised {error!r:.200}"
            return x0

    return guarded


def solve_all(
    fun: Fun,
    x0: np.ndarray,
    solvers: list[str],
    *,
    tol: float,
    max_iters: int,
    repeats: int,
) -> tuple[dict[str, Record], dict[str, _harness.Timing]]:
    """Run ``solvers`` on ``fun`` from ``x0`` (float64), interleaved, and return
    each one's record (with the final ``value`` and ``grad_norm``) and timing."""
    with jax.enable_x64(True), one_blas_thread():
        x = jnp.asarray(x0, dtype=jnp.float64)
        records: dict[str, Record] = {name: {} for name in solvers}
        contestants = [
            Contestant(
                name,
                _guarded(
                    SOLVERS[name][1](fun, x, tol, max_iters, records[name]),
                    x,
                    records[name],
                ),
            )
            for name in solvers
        ]
        timings = _harness.interleaved(contestants, repeats)
        value_and_grad = jax.jit(jax.value_and_grad(fun))
        for record in records.values():
            value, grad = value_and_grad(jnp.asarray(record.pop("x"), jnp.float64))
            record["value"] = float(value)
            record["grad_norm"] = float(jnp.linalg.norm(grad))
    return records, timings


def smoke(
    names: list[str], solvers: list[str] | None = None, max_iters: int = 1_000
) -> list[Record]:
    """``solvers`` (default: every available one) on the MGH problems ``names``
    from ``x0``, one timed repeat: one record per (problem, solver), with a
    ``note`` instead of numbers for a solver that cannot run here."""
    from jaxopt_lite.benchmarks import _mgh

    ready, missing = available()
    wanted = list(SOLVERS) if solvers is None else solvers
    run = [s for s in wanted if s in ready]
    out: list[Record] = []
    for name in names:
        p = _mgh.BY_NAME[name]
        assert p.f_star is not None
        records, timings = solve_all(
            p.objective,
            np.asarray(p.x0),
            run,
            tol=1e-6,
            max_iters=max_iters,
            repeats=1,
        )
        for solver, r in records.items():
            r.update(problem=name, solver=solver, time_s=timings[solver].median_s)
            r["solved"] = is_solved(r["value"], r["grad_norm"], p.f_star, 1e-6)
            out.append(r)
        for solver in wanted:
            if solver in missing:
                note = missing[solver]
                out.append({"problem": name, "solver": solver, "note": note})
                out[-1]["available"] = False
    return out
