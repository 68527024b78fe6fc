"""The shared table of transforms fed to the generic tests.

Every optimizer and every primitive transform with an optax counterpart is
one (or more) `Row` (``table_row.py``) of `TABLE`; its ``kind`` says which
generic tests it feeds (`rows` selects them). The optimizer rows, the longest
part, are in ``optimizer_rows.py``; the others are here.

``"optimizer"`` (a whole optimizer, ending in a learning rate):
``tests/test_optimizers.py`` runs

* parity with optax (``optax_factory``), 100 steps on a random quadratic and
  on Rosenbrock, to ``parity_rtol`` relative;
* convergence on a parabola and on Rosenbrock (optax's criteria:
  10 000 steps, ``rtol = atol = 3e-2``) with ``converge_kwargs``;
* scan-safe state (tree structure and dtypes) for float32, bfloat16 and
  complex64 parameters (``bf16_ok`` / ``complex_ok``);
* jit == no-jit, no recompilation on a second call, no recompilation when
  the hyper-parameters named in ``traced`` change value;
* `current_learning_rate` (``lr_arg``);
* validation (``invalid``: pairs of argument name and a bad value; the factory
  is called with ``kwargs`` updated by that pair and must raise ``ValueError``
  whose message names the argument);

and ``test_float64.py``, ``test_optax_fidelity.py`` and
``test_compile_once.py`` run their checks over these rows too.

``"transform"`` (a primitive with state): ``tests/test_transforms.py`` runs
parity with optax over four gradients with fixed parameters, in float32 and
(unless ``complex_parity_skip`` says why not, or ``complex_ok`` is false)
complex64; updates and state keeping their dtypes for bfloat16 and complex64;
jit + scan == eager; ``test_float64.py`` adds parity in float64.

``"clipping"`` (a clipping or cleaning transform): ``tests/test_clipping.py``
runs parity with optax on one update of a tree of rank-1 to rank-5 leaves.

Adding an optimizer or a primitive adds a row. Hyper-parameters are given
once in ``kwargs`` and used for both our factory and optax's (unless
``optax_kwargs`` is given). Updates are always called with ``value=loss``
(the loops do so too), so loss-aware rows just set ``needs_value=True`` for
documentation. optax runs under JAX's default dtype promotion
(`helpers.optax_reference`); ours under the strict promotion of conftest.py.

Parameters in the generic optimizer tests are dicts (``{"w": (3,), "b":
(2,)}`` for the jit, float32-state and traced-hyper-parameter tests,
``{"q": (5,), "r": (2,)}`` for parity) or single vectors (convergence,
bfloat16/complex64 state); masks in ``kwargs`` should be callables that
handle both.
"""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp
import optax
import optax.contrib
from optimizer_rows import OPTIMIZER_ROWS, SQUARED_GRADIENTS, optax_rprop_steps
from table_row import KINDS, Row

import jaxopt_lite as jol


def _growing(n: Any) -> Any:
    """A weight-decay schedule ``0.1 (n + 1)``, for ours and optax's."""
    return 0.1 * (n + 1).astype(jnp.float32)


def _primitive(
    fn: str, name: str = "", *, kind: str = "transform", skip: str = "", **kwargs: Any
) -> Row:
    """A row for ``jol.<fn>`` and ``optax.<fn>`` with hyper-parameters
    ``kwargs``; ``skip``: why complex64 parity is not checked."""
    return Row(
        name or fn,
        getattr(jol, fn),
        kwargs,
        getattr(optax, fn),
        kind=kind,
        complex_parity_skip=skip,
    )


# Hyper-parameters away from the defaults, so that every argument is exercised.
_TRANSFORM_ROWS = [
    _primitive("trace", decay=0.7),
    _primitive("trace", "trace_nesterov", decay=0.7, nesterov=True),
    _primitive("add_decayed_weights", weight_decay=0.1),
    _primitive(
        "add_decayed_weights", "add_decayed_weights_schedule", weight_decay=_growing
    ),
    _primitive(
        "add_decayed_weights",
        "add_decayed_weights_mask",
        weight_decay=0.1,
        mask={"w": True, "b": False},
    ),
    _primitive(
        "add_decayed_weights",
        "add_decayed_weights_mask_fn",
        weight_decay=0.1,
        mask=lambda p: {"w": False, "b": True},
    ),
    _primitive(
        "scale_by_rss",
        skip="optax compares a complex accumulator with 0; ours is real",
        initial_accumulator_value=0.2,
        eps=1e-6,
    ),
    _primitive("scale_by_rms", decay=0.8, eps=1e-6, initial_scale=0.1),
    _primitive(
        "scale_by_rms",
        "scale_by_rms_corrected",
        decay=0.8,
        eps=1e-3,
        eps_in_sqrt=False,
        bias_correction=True,
    ),
    _primitive("scale_by_stddev", decay=0.8, eps=1e-3, initial_scale=0.5),
    # (eps inside the root: at step 1 the corrected variance is 0 up to rounding.)
    _primitive(
        "scale_by_stddev",
        "scale_by_stddev_corrected",
        decay=0.8,
        eps=0.1,
        bias_correction=True,
    ),
    _primitive(
        "scale_by_adadelta",
        skip="optax squares complex gradients without the modulus; ours uses |g|^2",
        rho=0.8,
        eps=1e-4,
    ),
    _primitive("scale_by_adam", b1=0.8, b2=0.9, eps=1e-6, eps_root=1e-8),
    _primitive(
        "scale_by_adam", "scale_by_adam_nesterov", b1=0.8, b2=0.9, nesterov=True
    ),
    _primitive("scale_by_amsgrad", b1=0.8, b2=0.9, eps=1e-6),
    _primitive(
        "scale_by_amsgrad",
        "scale_by_amsgrad_uncorrected",
        b1=0.8,
        b2=0.9,
        bias_correction_mu=False,
        bias_correction_nu=False,
    ),
    _primitive("scale_by_adamax", b1=0.8, b2=0.9, eps=1e-6),
    _primitive("scale_by_radam", b1=0.8, b2=0.5, threshold=3.0),
    _primitive(
        "scale_by_radam",
        "scale_by_radam_nesterov",
        b1=0.8,
        b2=0.5,
        threshold=3.0,
        nesterov=True,
    ),
    _primitive("scale_by_belief", b1=0.8, b2=0.9, eps=1e-6, eps_root=1e-8),
    _primitive(
        "scale_by_belief", "scale_by_belief_nesterov", b1=0.8, b2=0.9, nesterov=True
    ),
    _primitive(
        "scale_by_yogi", b1=0.8, b2=0.9, eps=1e-4, initial_accumulator_value=0.01
    ),
    _primitive("scale_by_adan", b1=0.8, b2=0.7, b3=0.9, eps=1e-6, eps_root=1e-8),
    _primitive(
        "scale_by_sm3",
        skip="optax refuses complex parameters; ours uses |g|^2",
        b1=0.5,
    ),
    _primitive(
        "scale_by_sm3",
        "scale_by_sm3_decayed",
        skip="optax refuses complex parameters; ours uses |g|^2",
        b1=0.0,
        b2=0.9,
        eps=1e-6,
    ),
    _primitive("scale_by_optimistic_gradient", alpha=0.7, beta=0.4),
    _primitive(
        "scale_by_distance_over_gradients",
        skip="optax keeps complex initial parameters as float32 (dropping the "
        "imaginary part) and squares without the modulus; ours uses |.|^2",
        reps_rel=1e-2,
        eps=1e-6,
        global_scale=-1.0,
    ),
    _primitive("scale_by_param_block_norm", min_scale=0.5),
    _primitive("normalize_by_update_norm", scale_factor=-0.5, eps=1e-3),
    Row(
        "scale_by_rprop",
        jol.scale_by_rprop,
        {"learning_rate": 0.1, "eta_minus": 0.4, "eta_plus": 1.5},
        optax_rprop_steps,  # optax's steps without its one-update delay
        kind="transform",
        complex_ok=False,
        complex_reason="Rprop compares the signs of successive gradients",
    ),
    _primitive("ema", decay=0.8),
    _primitive("ema", "ema_not_debiased", decay=0.8, debias=False),
    _primitive("apply_every", k=3),
    _primitive("identity"),
    _primitive("set_to_zero"),
    _primitive("stateless_with_tree_map", f=lambda g, p: g * p),
]

_TRANSFORM_ROWS += [
    Row("normalize", jol.normalize, {}, optax.contrib.normalize, kind="transform"),
]


def _contrib(
    fn: str,
    name: str = "",
    *,
    skip: str = "",
    real_only: bool = False,
    reference: Any = None,
    **kwargs: Any,
) -> Row:
    """A ``"transform"`` row for ``jol.<fn>`` and ``optax.contrib.<fn>`` (or
    ``reference``, for primitives optax.contrib does not export);
    ``real_only``: not run on complex parameters at all (``skip`` says
    why)."""
    return Row(
        name or fn,
        getattr(jol, fn),
        kwargs,
        reference or getattr(optax.contrib, fn),
        kind="transform",
        complex_parity_skip=skip,
        complex_ok=not real_only,
        complex_reason=skip if real_only else "",
    )


def _b3_schedule(n: Any) -> Any:
    """AdEMAMix's slow decay, rising from 0.5 to 0.9 (for ours and optax's)."""
    return 0.9 - 0.4 / (n + 1).astype(jnp.float32)


def _alpha_schedule(n: Any) -> Any:
    return 0.5 * (n + 1).astype(jnp.float32)


_REAL_ONLY = "optax.contrib's {} is for real parameters only (as here)"

_CONTRIB_ROWS = [
    _contrib("scale_by_acprop", b1=0.8, b2=0.9, eps=1e-6, eps_root=1e-8),
    _contrib("scale_by_ademamix", b1=0.8, b2=0.9, b3=0.95, alpha=2.0, eps=1e-6),
    _contrib(
        "scale_by_ademamix",
        "scale_by_ademamix_schedules",
        b3=_b3_schedule,
        alpha=_alpha_schedule,
        eps_root=1e-8,
    ),
    _contrib(
        "scale_by_simplified_ademamix",
        skip="optax squares complex gradients without the modulus; ours uses |g|^2",
        b1=0.8,
        b2=0.9,
        alpha=_alpha_schedule,
        eps=1e-6,
    ),
    _contrib(
        "scale_by_adopt",
        skip=_REAL_ONLY.format("ADOPT (it clips)"),
        real_only=True,
        b1=0.8,
        b2=0.9,
    ),
    _contrib(
        "scale_by_adopt",
        "scale_by_adopt_nesterov_unclipped",
        skip=_REAL_ONLY.format("ADOPT"),
        b1=0.8,
        b2=0.9,
        nesterov=True,
        use_clipping=False,
    ),
    _contrib("scale_by_cocob", skip=_REAL_ONLY.format("COCOB"), alpha=10.0),
    _contrib(
        "scale_by_dog",
        reference=optax.contrib._dog.scale_by_dog,
        init_step=("distance", 0.1),
        eps=1e-6,
    ),
    _contrib(
        "scale_by_dowg",
        reference=optax.contrib._dog.scale_by_dowg,
        init_estim_sq_dist=0.01,
    ),
    _contrib(
        "scale_by_madgrad",
        skip="optax's MADGRAD takes cube roots of complex g^2; ours of |g|^2",
        learning_rate=_growing,
        momentum=0.5,
    ),
    _contrib(
        "scale_by_sophia",
        reference=optax.contrib._sophia.scale_by_sophia,
        skip=_REAL_ONLY.format("Sophia (it clips)"),
        real_only=True,
        b1=0.8,
        gamma=0.5,
        update_interval=2,
        hessian_diagonal_fn=SQUARED_GRADIENTS,
    ),
]

_CLIPPING_ROWS = [
    _primitive("clip", kind="clipping", max_delta=0.5),
    _primitive("clip", "clip_zero", kind="clipping", max_delta=0.0),
    _primitive("clip_by_global_norm", kind="clipping", max_norm=1.0),
    _primitive(
        "clip_by_global_norm",
        "clip_by_global_norm_inactive",
        kind="clipping",
        max_norm=1e3,
    ),
    _primitive("clip_by_block_rms", kind="clipping", threshold=0.3),
    _primitive("centralize", kind="clipping"),
]

TABLE: list[Row] = [
    *OPTIMIZER_ROWS,
    *_TRANSFORM_ROWS,
    *_CONTRIB_ROWS,
    *_CLIPPING_ROWS,
]


def rows(kind: str) -> list[Row]:
    """The rows of one kind (see `table_row.KINDS`), in table order."""
    assert kind in KINDS, kind
    return [row for row in TABLE if row.kind == kind]
