"""The full-batch loop core (layer 2) behind `minimize`: pure and jittable.

One ``lax.while_loop`` (or, to differentiate through the steps, one
``lax.scan``) of: optimizer update with the value, gradient and objective the
line searches need; the value and gradient at the new point (taken from the
line search's state when it holds them); the stopping tests. Nothing here
validates or touches the host.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jaxopt_lite._core import tree_math
from jaxopt_lite._transforms import backtracking, zoom
from jaxopt_lite._transforms.scaling import current_learning_rate

PyTree = Any

RUNNING, CONVERGED, MAX_STEPS, NONFINITE, LINESEARCH_FAILED = -1, 0, 1, 2, 3
STATUSES = ("converged", "max_steps", "nonfinite", "linesearch_failed")

# Line-search states that hold the value (and maybe the gradient) at the point
# they accepted, with the number of trials in ``info.num_linesearch_steps``.
_ZOOM = (optax.ScaleByZoomLinesearchState, zoom.ScaleByZoomLinesearchState)
_BACKTRACK = (
    optax.ScaleByBacktrackingLinesearchState,
    backtracking.ScaleByBacktrackingLinesearchState,
)


class Config(NamedTuple):
    """Static settings; changing one recompiles."""

    max_steps: int
    history_size: int  # rows kept: the first ``history_size`` steps
    has_aux: bool
    cauchy: bool  # the rtol/atol test is on
    bounded: bool
    unroll: bool  # lax.scan of max_steps (reverse-differentiable)


class Tolerances(NamedTuple):
    """Stopping thresholds, as arrays in the parameters' precision."""

    tol: Any  # 0 when not given: an exactly zero gradient
    rtol: Any
    atol: Any


class FullBatchState(NamedTuple):
    """Carry of the full-batch loop."""

    params: PyTree
    opt_state: PyTree
    step: jax.Array  # int32: iterations done
    value: jax.Array
    grad: PyTree
    grad_norm: jax.Array  # of the projected gradient when bounded
    aux: PyTree
    status: jax.Array  # int32, RUNNING until a test fires
    fun_evals: jax.Array  # int32
    grad_evals: jax.Array  # int32
    history: Any  # None in the loop; at the end [history_size, columns] rows


def history_columns(opt_state: PyTree) -> tuple[str, ...]:
    """The names of the history's columns: ``value``, ``grad_norm`` and, when
    the optimizer state holds one, ``learning_rate``."""
    if current_learning_rate(opt_state) is None:
        return ("value", "grad_norm")
    return ("value", "grad_norm", "learning_rate")


def linesearch_states(opt_state: PyTree) -> list[Any]:
    """The line-search states (ours and optax's) inside ``opt_state``."""
    kinds = _ZOOM + _BACKTRACK
    nodes = jax.tree.leaves(opt_state, is_leaf=lambda x: isinstance(x, kinds))
    return [n for n in nodes if isinstance(n, kinds)]


def _linesearch_evals(states: list[Any]) -> tuple[jax.Array, jax.Array]:
    """Function and gradient evaluations made by the line searches."""
    fun = grad = jnp.zeros([], jnp.int32)
    for s in states:
        n = jnp.asarray(s.info.num_linesearch_steps, jnp.int32)
        fun = fun + n
        if isinstance(s, _ZOOM):
            grad = grad + n
        elif s.grad is not None:  # backtracking with store_grad: one gradient
            grad = grad + jnp.minimum(n, 1)
    return fun, grad


def _unsatisfied(state: Any) -> jax.Array:
    """The line search ended with its conditions violated: sufficient
    decrease, and for the zoom search also curvature (strong Wolfe)."""
    bad = jnp.asarray(state.info.decrease_error) > 0
    if isinstance(state, _ZOOM):
        bad |= jnp.asarray(state.info.curvature_error) > 0
    return bad


def project(x: PyTree, lower: PyTree, upper: PyTree) -> PyTree:
    """Clip every leaf of ``x`` into ``[lower, upper]``."""
    return jax.tree.map(jnp.clip, x, lower, upper)


def free_mask(x: PyTree, g: PyTree, lower: PyTree, upper: PyTree) -> PyTree:
    """Per element: not held at a bound by the gradient (a move along ``-g``
    stays feasible)."""
    return jax.tree.map(
        lambda x, g, lo, hi: ~(((x <= lo) & (g > 0)) | ((x >= hi) & (g < 0))),
        x,
        g,
        lower,
        upper,
    )


def _masked(mask: PyTree, tree: PyTree) -> PyTree:
    return jax.tree.map(lambda m, t: jnp.where(m, t, jnp.zeros_like(t)), mask, tree)


def full_batch_loop(
    fun: Callable,
    optimizer: optax.GradientTransformationExtraArgs,
    cfg: Config,
    x0: PyTree,
    args: Any,
    tols: Tolerances,
    lower: PyTree,
    upper: PyTree,
) -> FullBatchState:
    """Minimize ``fun(x, args)`` (``(value, aux)`` with ``cfg.has_aux``) from
    ``x0`` until a stopping test fires (see `minimize` for the tests). The
    history is one ``[history_size, columns]`` array (`history_columns`), NaN
    past the last step."""

    def objective(x):
        out = fun(x, args)
        return out if cfg.has_aux else (out, None)

    value_and_grad = jax.value_and_grad(objective, has_aux=True)

    # Line searches see the objective with args held constant: their step
    # sizes are not differentiated (under "unroll", the steps still are).
    frozen = jax.lax.stop_gradient(args)

    def value_fn(x):
        out = fun(x, frozen)
        return out[0] if cfg.has_aux else out

    def bounded_value_fn(base, mask):
        # A trial point z = base + u is taken as P(base + M u): elements held
        # at a bound stay, the others are clipped, exactly as the loop steps.
        def value_at(z):
            u = _masked(mask, jax.tree.map(jnp.subtract, z, base))
            return value_fn(project(optax.apply_updates(base, u), lower, upper))

        return value_at

    def evaluate(x):
        (value, aux), grad = value_and_grad(x)
        return value, grad, aux

    def search_direction_grad(x, grad):
        if not cfg.bounded:
            return grad, None
        mask = free_mask(x, grad, lower, upper)
        return _masked(mask, grad), mask

    value, grad, aux = evaluate(x0)
    opt_state = optimizer.init(x0)
    dtype = jnp.result_type(value)
    columns = history_columns(opt_state)
    one = jnp.ones([], jnp.int32)
    init = FullBatchState(
        x0, opt_state, jnp.zeros([], jnp.int32), value, grad,
        tree_math.tree_global_norm(search_direction_grad(x0, grad)[0]), aux,
        jnp.full([], RUNNING, jnp.int32), one, one, None,
    )  # fmt: skip
    init = init._replace(status=stopping_status(init, init, tols, cfg, first=True))
    reuse = not (cfg.bounded or cfg.unroll or cfg.has_aux)

    def body(s: FullBatchState) -> tuple[FullBatchState, jax.Array]:
        """One iteration, and the history row of the point it started from."""
        g, mask = search_direction_grad(s.params, s.grad)
        updates, opt_state = optimizer.update(
            g,
            s.opt_state,
            s.params,
            value=s.value,
            grad=g,
            value_fn=bounded_value_fn(s.params, mask) if cfg.bounded else value_fn,
        )
        if cfg.bounded:
            params = project(
                optax.apply_updates(s.params, _masked(mask, updates)), lower, upper
            )
        else:
            params = optax.apply_updates(s.params, updates)
        searches = linesearch_states(opt_state)
        fun_evals, grad_evals = _linesearch_evals(searches)
        stored = searches[0] if len(searches) == 1 else None
        if reuse and stored is not None and stored.grad is not None:
            kept = (jnp.asarray(stored.value, dtype), stored.grad, None)
            fresh = jnp.isfinite(stored.value)
            value, grad, aux = jax.lax.cond(fresh, lambda x: kept, evaluate, params)
            extra = jnp.where(fresh, 0, 1).astype(jnp.int32)
        else:
            value, grad, aux = evaluate(params)
            extra = one
        grad_norm = tree_math.tree_global_norm(search_direction_grad(params, grad)[0])
        row = [s.value, s.grad_norm]
        rate = current_learning_rate(opt_state)
        if rate is not None:
            row.append(rate)
        new = FullBatchState(
            params, opt_state, s.step + 1, jnp.asarray(value, dtype), grad,
            grad_norm, aux, s.status, s.fun_evals + fun_evals + extra,
            s.grad_evals + grad_evals + extra, None,
        )  # fmt: skip
        unsatisfied = None
        if searches:
            unsatisfied = jnp.any(jnp.stack([_unsatisfied(ls) for ls in searches]))
        status = stopping_status(
            s, new, tols, cfg, first=False, unsatisfied=unsatisfied
        )
        failed = status == LINESEARCH_FAILED
        kept = optax.tree.where(
            failed,
            (s.params, s.value, s.grad, s.grad_norm, s.aux),
            (new.params, new.value, new.grad, new.grad_norm, new.aux),
        )
        new = new._replace(
            params=kept[0], value=kept[1], grad=kept[2], grad_norm=kept[3],
            aux=kept[4], status=status,
        )  # fmt: skip
        return new, jnp.stack([jnp.asarray(r, dtype) for r in row])

    nan_row = jnp.full([len(columns)], jnp.nan, dtype)
    final, rows = run_rows(body, init, nan_row, cfg)
    return final._replace(history=rows)


# XLA:CPU runs the operations of a loop body one after another only when
# every buffer they touch holds at most 512 bytes (or there are at most 8 of
# them); otherwise it schedules them concurrently, which on a small problem
# costs microseconds per iteration (a 1000-row history in the loop carry
# doubled the time of a 35-iteration solve). So rows are first written into a
# block of this many rows (192 bytes in float64), carried by an inner loop,
# and copied into the whole buffer once per block.
_BLOCK = 8


def run_rows(
    body: Callable, init: FullBatchState, nan_row: jax.Array, cfg: Config
) -> tuple[FullBatchState, jax.Array]:
    """Iterate ``body`` from ``init`` until the status leaves RUNNING; the
    first ``cfg.history_size`` rows (NaN past the last step). Each row goes
    to the step its iteration started from, so a call of ``body`` that does
    not advance ``step`` (L-BFGS-B's restart) has its row overwritten."""

    def step_if_running(s):
        return jax.lax.cond(s.status == RUNNING, body, lambda s: (s, nan_row), s)

    def block(s):  # at most _BLOCK iterations: (state, [_BLOCK, columns] rows)
        if cfg.unroll:
            return jax.lax.scan(lambda s, _: step_if_running(s), s, length=_BLOCK)

        first = s.step

        def one_row(c):
            s, rows, j = c
            at = s.step - first
            s, row = body(s)
            return s, jax.lax.dynamic_update_index_in_dim(rows, row, at, 0), j + 1

        empty = jnp.broadcast_to(nan_row, (_BLOCK, *nan_row.shape))
        s, rows, _ = jax.lax.while_loop(
            lambda c: (c[0].status == RUNNING) & (c[2] < _BLOCK),
            one_row,
            (s, empty, jnp.zeros([], jnp.int32)),
        )
        return s, rows

    if cfg.unroll:  # reverse-differentiable: scans of fixed length
        blocks = -(-cfg.max_steps // _BLOCK)
        final, rows = jax.lax.scan(lambda s, _: block(s), init, length=blocks)
        return final, rows.reshape(-1, nan_row.shape[0])[: cfg.history_size]
    # Blocks of rows copied into the buffer at the block's first step; those
    # past history_size go to a sink block at the end. One copy of the loop
    # body only: two loops of it (say, a plain loop once the history is full)
    # cost more per call than the blocks do.
    size = -(-cfg.history_size // _BLOCK) * _BLOCK
    rows = jnp.broadcast_to(nan_row, (size + _BLOCK, *nan_row.shape))

    def block_into(c):
        s, rows = c
        start = jnp.minimum(s.step, size)
        s, new_rows = block(s)
        return s, jax.lax.dynamic_update_slice_in_dim(rows, new_rows, start, 0)

    final, rows = jax.lax.while_loop(
        lambda c: c[0].status == RUNNING, block_into, (init, rows)
    )
    return final, rows[: cfg.history_size]


def stopping_status(
    old: FullBatchState,
    new: FullBatchState,
    tols: Tolerances,
    cfg: Config,
    *,
    first: bool,
    unsatisfied: jax.Array | None = None,
) -> jax.Array:
    """The status after reaching ``new`` from ``old``: the first test that
    fires among non-finite, convergence, failed line search and step limit.
    ``unsatisfied``: a line search ended with its condition violated (None:
    there is no line search)."""
    converged = new.grad_norm <= tols.tol
    failed = jnp.asarray(False)
    if not first:
        if unsatisfied is not None:
            moved = (
                tree_math.tree_max_abs(
                    jax.tree.map(jnp.subtract, new.params, old.params)
                )
                > 0
            )
            failed = ~moved | (unsatisfied & ~(new.value < old.value))
        if cfg.cauchy:
            small_steps = jax.tree.map(
                lambda a, b: jnp.all(
                    jnp.abs(a - b) <= tols.atol + tols.rtol * jnp.abs(a)
                ),
                new.params,
                old.params,
            )
            small_step = jnp.all(jnp.stack(jax.tree.leaves(small_steps)))
            small_change = jnp.abs(new.value - old.value) <= (
                tols.atol + tols.rtol * jnp.abs(new.value)
            )
            converged |= small_step & small_change
    nonfinite = ~(jnp.isfinite(new.value) & jnp.isfinite(new.grad_norm))
    status = jnp.where(new.step >= cfg.max_steps, MAX_STEPS, RUNNING)
    status = jnp.where(failed, LINESEARCH_FAILED, status)
    status = jnp.where(converged, CONVERGED, status)
    return jnp.where(nonfinite, NONFINITE, status).astype(jnp.int32)
