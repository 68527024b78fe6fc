"""The rows of kind ``"optimizer"`` of the shared table
(``transform_table.py``): every optimizer of the package, one row per
configuration under test."""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import optax
import optax.contrib
from table_row import (
    B_INVALID,
    EPS_INVALID,
    LR_INVALID,
    NAN,
    Row,
    optax_schedule,
    ours,
    schedule,
)

import jaxopt_lite as jol

ADAM_INVALID = LR_INVALID + B_INVALID + EPS_INVALID


def optax_rprop_steps(**kwargs):
    """optax's ``scale_by_rprop`` returning the step it has just computed (its
    new state's ``prev_updates``): optax 0.2.8 returns the previous step
    instead, one update late (google-deepmind/optax#1725;
    docs/optax-differences.md), while computing the right one in its state.
    The table compares ours with this, so with optax's own arithmetic."""
    inner = optax.scale_by_rprop(**kwargs)

    def update(updates, state, params=None):
        state = inner.update(updates, state, params)[1]
        return state.prev_updates, state

    return optax.GradientTransformation(inner.init, update)


def optax_rprop(**kwargs):
    """optax's ``rprop`` with the steps of `optax_rprop_steps`."""
    return optax.chain(optax_rprop_steps(**kwargs), optax.scale(-1.0))


def optax_optimistic_adam(**kwargs):
    """optax's ``optimistic_adam`` without its DeprecationWarning (ours keeps
    the name without one: docs/optax-differences.md)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return optax.optimistic_adam(**kwargs)


OPTIMIZER_ROWS: list[Row] = [
    # --- optimizers: SGD, adaptive and the Adam family ---
    Row(
        "gd",
        ours("gd"),
        {"learning_rate": 0.01},
        optax.sgd,
        converge_kwargs={"learning_rate": 1e-3},
        converge_steps=20_000,
    ),
    Row(
        "gd_schedule",
        ours("gd"),
        {"learning_rate": schedule(0.01)},
        optax.sgd,
        {"learning_rate": optax_schedule(0.01)},
        traced=(),
    ),
    Row(
        "sgd",
        ours("sgd"),
        {"learning_rate": 0.01},
        optax.sgd,
        converge_kwargs={"learning_rate": 1e-3, "momentum": 0.9},
    ),
    Row(
        "sgd_momentum",
        ours("sgd"),
        {"learning_rate": 0.01, "momentum": 0.9},
        optax.sgd,
        converge_kwargs={"learning_rate": 1e-3, "momentum": 0.9},
        traced=("learning_rate", "momentum"),
        invalid=(*LR_INVALID, ("momentum", 1.5), ("momentum", -0.5)),
    ),
    Row(
        "sgd_nesterov",
        ours("sgd"),
        {"learning_rate": 0.01, "momentum": 0.9, "nesterov": True},
        optax.sgd,
        # lr=1e-3 (optax's sgd setting) is at the edge of stability with
        # Nesterov momentum on the complex Rosenbrock problem (optax's too).
        converge_kwargs={"learning_rate": 5e-4, "momentum": 0.9, "nesterov": True},
        traced=("learning_rate", "momentum"),
    ),
    Row(
        "adagrad",
        ours("adagrad"),
        {"learning_rate": 0.1},
        optax.adagrad,
        converge_kwargs={"learning_rate": 1.0},
        traced=("learning_rate", "initial_accumulator_value", "eps"),
        invalid=(*LR_INVALID, ("initial_accumulator_value", -1.0), ("eps", -1.0)),
    ),
    Row(
        "rmsprop",
        ours("rmsprop"),
        {"learning_rate": 0.01},
        optax.rmsprop,
        # The same formulas; compiled in one program with optax's (jax 0.10),
        # XLA fuses the two differently and Rosenbrock's valley grows the
        # last-bit differences to 2.3e-5 in 100 steps.
        parity_rtol=5e-5,
        converge_kwargs={"learning_rate": 5e-3},
        traced=("learning_rate", "decay", "eps", "initial_scale"),
        invalid=(*LR_INVALID, ("decay", 1.0), ("eps", -1.0)),
    ),
    Row(
        "rmsprop_centered_momentum",
        ours("rmsprop"),
        {
            "learning_rate": 0.01,
            "centered": True,
            "momentum": 0.9,
            "nesterov": True,
            "eps": 1e-3,
        },
        optax.rmsprop,
        converge_kwargs={"learning_rate": 5e-3, "momentum": 0.9},
        traced=("learning_rate", "decay", "momentum"),
        invalid=(*LR_INVALID, ("momentum", 1.5)),
    ),
    Row(
        "rmsprop_bias_correction",
        ours("rmsprop"),
        {"learning_rate": 0.01, "bias_correction": True, "eps_in_sqrt": False},
        optax.rmsprop,
    ),
    Row(
        "adadelta",
        ours("adadelta"),
        {"learning_rate": 0.1, "weight_decay": 1e-3},
        optax.adadelta,
        complex_ok=False,
        complex_reason="adadelta is not run on complex64 here: optax's does not "
        "support it, and ours (which uses |g|^2) converges too slowly on the "
        "complex Rosenbrock problem; test_transforms checks its complex dtypes.",
        converge_kwargs={"learning_rate": 0.1},
        traced=("learning_rate", "rho", "eps", "weight_decay"),
        invalid=(*LR_INVALID, ("rho", 1.0), ("eps", -1.0), ("weight_decay", -1.0)),
    ),
    Row(
        "adam",
        ours("adam"),
        {"learning_rate": 0.01},
        optax.adam,
        converge_kwargs={"learning_rate": 0.1},
        traced=("learning_rate", "b1", "b2", "eps", "eps_root"),
        invalid=(*ADAM_INVALID, ("eps_root", -1.0)),
    ),
    Row(
        "adam_schedule",
        ours("adam"),
        {"learning_rate": schedule(0.05), "eps_root": 1e-8},
        optax.adam,
        {"learning_rate": optax_schedule(0.05), "eps_root": 1e-8},
        traced=(),
    ),
    Row(
        "adam_nesterov",
        ours("adam"),
        {"learning_rate": 0.01, "nesterov": True},
        optax.adam,
    ),
    Row(
        "adamw",
        ours("adamw"),
        {"learning_rate": 0.01, "weight_decay": 0.1},
        optax.adamw,
        converge_kwargs={"learning_rate": 0.1},
        traced=("learning_rate", "b1", "b2", "weight_decay"),
        invalid=(*ADAM_INVALID, ("weight_decay", -1.0)),
    ),
    Row(
        "adamw_schedule",
        ours("adamw"),
        {"learning_rate": schedule(0.05), "weight_decay": 0.1},
        optax.adamw,
        {"learning_rate": optax_schedule(0.05), "weight_decay": 0.1},
        traced=(),
    ),
    Row(
        "nadam",
        ours("nadam"),
        {"learning_rate": 0.01},
        optax.nadam,
        converge_kwargs={"learning_rate": 1e-2},
        invalid=ADAM_INVALID,
    ),
    Row(
        "nadamw",
        ours("nadamw"),
        {"learning_rate": 0.01, "weight_decay": 0.1},
        optax.nadamw,
        converge_kwargs={"learning_rate": 1e-2},
        invalid=(*ADAM_INVALID, ("weight_decay", -1.0)),
    ),
    Row(
        "adamax",
        ours("adamax"),
        {"learning_rate": 0.01},
        optax.adamax,
        converge_kwargs={"learning_rate": 0.1},
        traced=("learning_rate", "b1", "b2", "eps"),
        invalid=ADAM_INVALID,
    ),
    Row(
        "adamaxw",
        ours("adamaxw"),
        {"learning_rate": 0.01, "weight_decay": 0.1},
        optax.adamaxw,
        converge_kwargs={"learning_rate": 0.1},
        traced=("learning_rate", "b1", "b2", "eps", "weight_decay"),
        invalid=(*ADAM_INVALID, ("weight_decay", -1.0)),
    ),
    Row(
        "adan",
        ours("adan"),
        {"learning_rate": 0.01, "weight_decay": 0.1},
        optax.adan,
        converge_kwargs={"learning_rate": 0.1},
        traced=("learning_rate", "b1", "b2", "b3", "eps", "eps_root", "weight_decay"),
        invalid=(
            *ADAM_INVALID,
            ("b3", 1.0),
            ("eps_root", -1.0),
            ("weight_decay", -1.0),
        ),
    ),
    Row(
        "amsgrad",
        ours("amsgrad"),
        {"learning_rate": 0.01},
        optax.amsgrad,
        converge_kwargs={"learning_rate": 0.1},
        traced=("learning_rate", "b1", "b2", "eps"),
        invalid=ADAM_INVALID,
    ),
    Row(
        "radam",
        ours("radam"),
        {"learning_rate": 0.01},
        optax.radam,
        converge_kwargs={"learning_rate": 5e-3},
        traced=("learning_rate", "b1", "b2", "threshold"),
        invalid=ADAM_INVALID,
    ),
    Row(
        "adabelief",
        ours("adabelief"),
        {"learning_rate": 0.01},
        optax.adabelief,
        converge_kwargs={"learning_rate": 1e-2},
        traced=("learning_rate", "b1", "b2", "eps"),
        invalid=ADAM_INVALID,
    ),
    Row(
        "yogi",
        ours("yogi"),
        {"learning_rate": 0.01},
        optax.yogi,
        converge_kwargs={"learning_rate": 1e-1},
        traced=("learning_rate", "b1", "b2", "eps"),
        invalid=ADAM_INVALID,
    ),
    Row(
        "optimistic_adam",
        ours("optimistic_adam"),
        {"learning_rate": 0.01, "optimism": 0.005},
        optax_optimistic_adam,
        converge_kwargs={"learning_rate": 0.01},
        traced=("learning_rate", "optimism", "b1", "b2", "eps"),
        invalid=(*ADAM_INVALID, ("optimism", NAN)),
        lr_arg=None,  # its scale_by_learning_rate applies 1.0 (optax's chain)
    ),
    Row(
        "optimistic_adam_v2",
        ours("optimistic_adam_v2"),
        {"learning_rate": 0.01, "beta": 0.5, "nesterov": False},
        optax.optimistic_adam_v2,
        converge_kwargs={"learning_rate": 0.01},
        traced=("learning_rate", "alpha", "beta", "b1", "b2", "eps_root"),
        invalid=(*ADAM_INVALID, ("alpha", NAN), ("beta", NAN)),
    ),
    Row(
        "optimistic_gradient_descent",
        ours("optimistic_gradient_descent"),
        {"learning_rate": 0.01, "alpha": 0.8, "beta": 0.6},
        optax.optimistic_gradient_descent,
        converge_kwargs={"learning_rate": 1e-3, "beta": 0.5},
        converge_skip={
            "rosenbrock/complex64": "optimistic steps settle into a cycle in "
            "the complex Rosenbrock valley at rates gd converges with (loss "
            "0.71; optax's, the same numbers)."
        },
        converge_steps=20_000,  # as gd's: plain gradient steps on Rosenbrock
        traced=("learning_rate", "alpha", "beta"),
        invalid=(*LR_INVALID, ("alpha", NAN), ("beta", NAN)),
    ),
    Row(
        "sm3",
        ours("sm3"),
        {"learning_rate": 0.1},
        optax.sm3,
        converge_kwargs={"learning_rate": 1.0},
        traced=("learning_rate", "momentum"),
        invalid=(*LR_INVALID, ("momentum", 1.0), ("momentum", -0.1)),
    ),
    # --- optimizers: sign, layer-wise, noise, Polyak and Adafactor ---
    Row(
        "sign_sgd",
        ours("sign_sgd"),
        {"learning_rate": 0.01},
        optax.sign_sgd,
        converge_kwargs={"learning_rate": 0.1},
        converge_skip={
            "rosenbrock": "sign_sgd needs a decaying learning rate to solve "
            "Rosenbrock (as in optax's tests)."
        },
    ),
    Row(
        "sign_sgd_schedule",
        ours("sign_sgd"),
        {"learning_rate": schedule(0.01)},
        optax.sign_sgd,
        {"learning_rate": optax_schedule(0.01)},
        traced=(),
    ),
    Row(
        "signum",
        ours("signum"),
        {"learning_rate": 0.01, "beta": 0.8},
        optax.signum,
        # Signed steps need a decaying rate to settle (sign_sgd's row skips
        # Rosenbrock for that reason).
        converge_kwargs={"learning_rate": jol.exponential_decay(0.05, 1000, 0.5)},
        traced=("learning_rate", "beta"),
        invalid=(*LR_INVALID, ("beta", 1.0), ("accumulator_dtype", jnp.int32)),
    ),
    Row(
        "rprop",
        ours("rprop"),
        {"learning_rate": 0.01},
        optax_rprop,
        complex_ok=False,
        complex_reason="Rprop compares signs of successive gradients; complex "
        "parameters are refused (test_rprop_and_friends checks the error).",
        converge_kwargs={"learning_rate": 0.01},
        traced=("learning_rate", "eta_minus", "min_step_size", "max_step_size"),
        invalid=(
            *LR_INVALID,
            ("eta_minus", 0.0),
            ("eta_plus", 0.9),
            ("min_step_size", -1.0),
            ("max_step_size", 1e-7),
        ),
        lr_arg=None,  # the initial step size, kept per element in the state
    ),
    Row(
        "lion",
        ours("lion"),
        {"learning_rate": 0.01, "weight_decay": 1e-3},
        optax.lion,
        converge_kwargs={"learning_rate": 1e-2, "weight_decay": 1e-4},
        traced=("learning_rate", "b1", "b2", "weight_decay"),
        invalid=(*LR_INVALID, *B_INVALID, ("weight_decay", -1.0)),
    ),
    Row(
        "lamb",
        ours("lamb"),
        {"learning_rate": 0.01, "weight_decay": 1e-2},
        optax.lamb,
        converge_kwargs={"learning_rate": 1e-3},
        traced=("learning_rate", "b1", "b2", "eps", "weight_decay"),
        invalid=(*ADAM_INVALID, ("eps_root", -1.0), ("weight_decay", -1.0)),
    ),
    Row(
        "lars",
        ours("lars"),
        {"learning_rate": 0.1, "weight_decay": 1e-3},
        optax.lars,
        converge_kwargs={"learning_rate": 1.0},
        traced=("learning_rate", "weight_decay", "trust_coefficient", "momentum"),
        invalid=(
            *LR_INVALID,
            ("weight_decay", -1.0),
            ("trust_coefficient", -1.0),
            ("eps", NAN),
            ("momentum", 1.5),
        ),
    ),
    Row(
        "lars_nesterov_masked",
        ours("lars"),
        {
            "learning_rate": 0.1,
            "weight_decay": 1e-3,
            "nesterov": True,
            # Masks as callables, so they fit every test problem's params.
            "trust_ratio_mask": lambda p: (
                {k: k != "b" for k in p} if isinstance(p, dict) else False
            ),
            "weight_decay_mask": lambda p: (
                {k: k == "b" for k in p} if isinstance(p, dict) else True
            ),
        },
        optax.lars,
    ),
    Row(
        "fromage",
        ours("fromage"),
        {"learning_rate": 0.01},
        optax.fromage,
        # Relative steps of a fixed size need a decaying rate to settle.
        converge_kwargs={"learning_rate": jol.exponential_decay(0.01, 4000, 0.5)},
        converge_steps=20_000,
        traced=("learning_rate", "min_norm"),
        invalid=(*LR_INVALID, ("min_norm", -1.0)),
        lr_arg=None,  # scale_by_learning_rate applies eta / sqrt(1 + eta^2)
    ),
    Row(
        "fromage_schedule",
        ours("fromage"),
        {"learning_rate": schedule(0.05)},
        optax.fromage,
        {"learning_rate": optax_schedule(0.05)},
        traced=(),
        lr_arg=None,
    ),
    Row(
        "novograd",
        ours("novograd"),
        {"learning_rate": 0.01, "weight_decay": 1e-3},
        optax.novograd,
        converge_kwargs={"learning_rate": 1e-3},
        traced=("learning_rate", "b1", "b2", "eps", "weight_decay"),
        invalid=(*ADAM_INVALID, ("eps_root", -1.0), ("weight_decay", -1.0)),
    ),
    Row(
        "noisy_sgd",
        ours("noisy_sgd"),
        {"learning_rate": 0.01, "eta": 1e-4, "key": 0},
        optax.noisy_sgd,
        converge_kwargs={"learning_rate": 1e-3, "eta": 1e-4, "key": 0},
        converge_steps=20_000,  # complex Rosenbrock needs more (optax too)
        traced=("learning_rate", "eta", "gamma"),
        invalid=(*LR_INVALID, ("eta", -1.0), ("gamma", NAN)),
    ),
    Row(
        "polyak_sgd",
        ours("polyak_sgd"),
        {"max_learning_rate": 0.1, "f_min": -20.0},
        optax.polyak_sgd,
        needs_value=True,
        converge_kwargs={"max_learning_rate": 1.0},
        traced=("max_learning_rate", "scaling", "f_min", "eps"),
        invalid=(
            ("max_learning_rate", -1.0),
            ("scaling", -1.0),
            ("f_min", NAN),
            ("eps", -1.0),
            ("variant", "sps++"),
        ),
        lr_arg="scaling",
    ),
    Row(
        "polyak_sgd_plus",
        ours("polyak_sgd"),
        {"max_learning_rate": 0.1, "f_min": -20.0, "variant": "sps+", "scaling": 0.5},
        optax.polyak_sgd,
        needs_value=True,
        lr_arg="scaling",
        traced=("scaling",),
        invalid=(),
    ),
    Row(
        "adafactor",
        ours("adafactor"),
        {"learning_rate": 0.01},
        optax.adafactor,
        converge_kwargs={"learning_rate": 5e-3},
        traced=("learning_rate", "decay_rate", "eps", "clipping_threshold"),
        invalid=(
            *LR_INVALID,
            ("decay_rate", -1.0),
            ("clipping_threshold", 0.0),
            ("momentum", 1.5),
            ("eps", -1.0),
            ("weight_decay_rate", -1.0),
            ("min_dim_size_to_factor", -1),
        ),
    ),
    Row(
        "adafactor_default",
        ours("adafactor"),
        {},
        optax.adafactor,
        complex_ok=False,
        complex_reason="without a learning rate adafactor oscillates on the "
        "complex parabola (optax's too); the adafactor row covers complex64.",
        converge_kwargs={},
        converge_skip={
            "rosenbrock": "without a learning rate adafactor's relative steps "
            "do not reach the Rosenbrock minimum in 10 000 steps (optax's "
            "neither: same numbers)."
        },
        traced=(),
        invalid=(),
        lr_arg=None,
    ),
    Row(
        "adafactor_momentum_decay",
        ours("adafactor"),
        {
            "learning_rate": 0.01,
            "momentum": 0.9,
            "weight_decay_rate": 1e-3,
            "multiply_by_parameter_scale": False,
            "clipping_threshold": None,
        },
        optax.adafactor,
        traced=("learning_rate", "momentum", "weight_decay_rate"),
        invalid=(("momentum", -0.5), ("weight_decay_rate", NAN)),
    ),
    # --- beyond optax: no counterpart there, so no parity row (tests/test_soap.py
    # checks the numbers against the algorithm written in NumPy) ---
    Row(
        "soap",
        ours("soap"),
        {"learning_rate": 0.01, "shampoo_beta": 0.9},
        converge_kwargs={"learning_rate": 0.01, "weight_decay": 0.0},
        traced=("learning_rate", "b1", "b2", "shampoo_beta", "eps", "weight_decay"),
        invalid=(
            *ADAM_INVALID,
            ("shampoo_beta", 1.0),
            ("weight_decay", -1.0),
            ("precondition_frequency", 0),
            ("max_precond_dim", 0),
        ),
    ),
]


def _drop_extra_args(
    transform: optax.GradientTransformation,
) -> optax.GradientTransformation:
    """optax's ``sam`` rejects the ``value=`` the generic tests pass."""
    return optax.GradientTransformation(
        transform.init, lambda u, s, p, **_: transform.update(u, s, p)
    )


def _optax_sam(**kwargs):
    return _drop_extra_args(optax.contrib.sam(**kwargs))


OPTIMIZER_ROWS += [
    # --- optimizers: optax.contrib's muon, galore, schedule-free and SAM ---
    # (the generic problems have vector leaves: muon's AdamW part and galore's
    # unprojected path; test_muon.py and test_galore.py cover the matrices)
    Row(
        "muon",
        ours("muon"),
        {"learning_rate": 0.01, "weight_decay": 0.1, "adam_weight_decay": 0.01},
        optax.contrib.muon,
        traced=("learning_rate", "beta", "eps", "adam_b1", "adam_b2"),
        invalid=(
            *LR_INVALID,
            ("beta", 1.0),
            ("eps", -1.0),
            ("weight_decay", -1.0),
            ("ns_steps", 0),
            ("ns_coeffs", (1.0, 2.0)),
            ("preconditioning", "polar"),
            ("consistent_rms", NAN),
        ),
    ),
    Row(
        "galore",
        ours("galore"),
        {"learning_rate": 0.01, "rank": 2, "weight_decay": 0.1},
        optax.contrib.galore,
        traced=("learning_rate", "scale", "weight_decay"),
        invalid=(*LR_INVALID, ("rank", 0), ("update_proj_gap", 0), ("scale", NAN)),
    ),
    Row(
        "schedule_free_sgd",
        ours("schedule_free_sgd"),
        {"learning_rate": 0.01, "weight_decay": 0.01},
        optax.contrib.schedule_free_sgd,
        # The average x converges like 1/t: a larger rate than sgd's, and
        # more steps (optax's numbers are the same).
        converge_kwargs={"learning_rate": 2.5e-3},
        converge_steps=20_000,
        traced=("learning_rate", "b1", "weight_decay", "weight_lr_power"),
        invalid=(
            *LR_INVALID,
            ("b1", 0.0),
            ("b1", 1.5),
            ("weight_decay", -1.0),
            ("weight_lr_power", NAN),
            ("warmup_steps", 0),
        ),
    ),
    Row(
        "schedule_free_adamw",
        ours("schedule_free_adamw"),
        {"learning_rate": 0.01, "weight_decay": 0.01},
        optax.contrib.schedule_free_adamw,
        converge_kwargs={"learning_rate": 0.1},
        traced=("learning_rate", "b1", "b2", "eps", "weight_decay"),
        invalid=(*LR_INVALID, ("b2", 1.0), ("eps", -1.0), ("weight_decay", -1.0)),
    ),
    Row(
        "schedule_free_adam_b1_0",
        ours("schedule_free"),
        {
            "base_optimizer": jol.adam(0.05, b1=0.0),
            "learning_rate": 0.05,
            "b1": 0.8,
            "weight_lr_power": 1.0,
        },
        optax.contrib.schedule_free,
        {
            "base_optimizer": optax.adam(0.05, b1=0.0),
            "learning_rate": 0.05,
            "b1": 0.8,
            "weight_lr_power": 1.0,
        },
        traced=("b1", "weight_lr_power"),
        invalid=(("b1", NAN), ("state_dtype", jnp.int32)),
    ),
    Row(
        "sam",
        ours("sam"),
        {
            "optimizer": jol.sgd(0.01, momentum=0.5),
            "adv_optimizer": jol.chain(jol.normalize(), jol.sgd(0.05)),
            "sync_period": 3,
        },
        _optax_sam,
        {
            "optimizer": optax.sgd(0.01, momentum=0.5),
            "adv_optimizer": optax.chain(optax.contrib.normalize(), optax.sgd(0.05)),
            "sync_period": 3,
        },
        traced=(),
        invalid=(("sync_period", 0),),
        lr_arg=None,
    ),
]


def _squared_gradients() -> optax.GradientTransformation:
    """A Hessian-diagonal stand-in for sophia's rows (Gauss-Newton-like
    $g^2$), which needs no ``obj_fn``: the generic tests pass only ``value``."""
    return optax.GradientTransformation(
        lambda params: optax.EmptyState(),
        lambda updates, state, params=None: (
            jax.tree.map(lambda g: g * g, updates),
            state,
        ),
    )


SQUARED_GRADIENTS = _squared_gradients()
_NO_COMPLEX = "optax.contrib's {} is for real parameters only (as here)."
_NO_LR = None  # the learning rate is applied inside the update

OPTIMIZER_ROWS += [
    # --- optimizers: optax.contrib ---
    Row(
        "acprop",
        ours("acprop"),
        {"learning_rate": 0.01, "weight_decay": 1e-3},
        optax.contrib.acprop,
        # (optax's test uses 1e-3, float32 only; the complex Rosenbrock
        # problem needs 1e-4)
        converge_kwargs={"learning_rate": 1e-4},
        converge_steps=30_000,
        traced=("learning_rate", "b1", "b2", "eps", "weight_decay"),
        invalid=(*ADAM_INVALID, ("eps_root", -1.0), ("weight_decay", -1.0)),
    ),
    Row(
        "ademamix",
        ours("ademamix"),
        {"learning_rate": 0.01, "b3": 0.99, "alpha": 2.0, "weight_decay": 1e-3},
        optax.contrib.ademamix,
        converge_kwargs={"learning_rate": 1e-3},
        converge_steps=30_000,
        traced=("learning_rate", "b1", "b2", "b3", "alpha"),
        invalid=(*ADAM_INVALID, ("b3", 1.0), ("alpha", NAN)),
    ),
    Row(
        "simplified_ademamix",
        ours("simplified_ademamix"),
        {"learning_rate": 0.001, "b1": 0.9, "alpha": 1.0, "weight_decay": 1e-3},
        optax.contrib.simplified_ademamix,
        converge_kwargs={"learning_rate": 1e-3},
        converge_steps=30_000,
        traced=("learning_rate", "b1", "b2", "alpha"),
        invalid=(*LR_INVALID, ("b1", 1.5), ("b2", 1.0), ("alpha", NAN)),
    ),
    Row(
        "adopt",
        ours("adopt"),
        {"learning_rate": 0.01},
        optax.contrib.adopt,
        complex_ok=False,
        complex_reason=_NO_COMPLEX.format("adopt (it clips a ratio)"),
        converge_kwargs={"learning_rate": 1e-2},
        traced=("learning_rate", "b1", "b2", "eps"),
        invalid=ADAM_INVALID,
    ),
    Row(
        "sophia",
        ours("sophia"),
        {"learning_rate": 0.01, "hessian_diagonal_fn": SQUARED_GRADIENTS},
        optax.contrib.sophia,
        complex_ok=False,
        complex_reason=_NO_COMPLEX.format("sophia"),
        converge_kwargs={
            "learning_rate": 1e-2,
            "hessian_diagonal_fn": SQUARED_GRADIENTS,
        },
        traced=("learning_rate", "b1", "b2", "gamma", "clip_threshold"),
        invalid=(
            *LR_INVALID,
            *B_INVALID,
            ("gamma", -1.0),
            ("clip_threshold", 0.0),
            ("update_interval", 0),
        ),
    ),
    Row(
        "madgrad",
        ours("madgrad"),
        {"learning_rate": 0.01, "weight_decay": 1e-3},
        optax.contrib.madgrad,
        converge_kwargs={"learning_rate": 1e-2},
        traced=("learning_rate", "momentum", "eps", "weight_decay"),
        invalid=(*LR_INVALID, ("momentum", 1.5), ("eps", -1.0)),
        lr_arg=_NO_LR,
    ),
    Row(
        "cocob",
        ours("cocob"),
        {"weight_decay": 1e-3},
        optax.contrib.cocob,
        complex_ok=False,
        complex_reason=_NO_COMPLEX.format("cocob"),
        converge_kwargs={},
        converge_steps=30_000,
        traced=("learning_rate", "alpha", "eps", "weight_decay"),
        invalid=(*LR_INVALID, ("alpha", 0.0), ("eps", -1.0)),
    ),
    Row(
        "dog",
        ours("dog"),
        {"weight_decay": 1e-3},
        optax.contrib.dog,
        complex_ok=False,
        complex_reason=_NO_COMPLEX.format("dog"),
        converge_kwargs={},
        traced=("learning_rate", "eps", "weight_decay"),
        invalid=(
            *LR_INVALID,
            ("init_step", ("radius", 1.0)),
            ("init_step", ("distance", -1.0)),
            ("eps", -1.0),
        ),
    ),
    Row(
        "dog_learning_rate",
        ours("dog"),
        {"init_step": ("learning_rate", 0.01)},
        optax.contrib.dog,
        complex_ok=False,
        complex_reason=_NO_COMPLEX.format("dog"),
        traced=(),
        invalid=(),
    ),
    Row(
        "dowg",
        ours("dowg"),
        {"weight_decay": 1e-3},
        optax.contrib.dowg,
        complex_ok=False,
        complex_reason=_NO_COMPLEX.format("dowg"),
        converge_kwargs={},
        traced=("learning_rate", "eps"),
        invalid=(*LR_INVALID, ("init_estim_sq_dist", -1.0), ("eps", NAN)),
    ),
    Row(
        "dadapt_adamw",
        ours("dadapt_adamw"),
        {"weight_decay": 1e-3},
        optax.contrib.dadapt_adamw,
        complex_ok=False,
        complex_reason=_NO_COMPLEX.format("dadapt_adamw"),
        converge_kwargs={"learning_rate": 0.1},
        converge_steps=30_000,
        traced=("learning_rate", "eps", "estim_lr0", "weight_decay"),
        invalid=(
            *LR_INVALID,
            ("betas", (1.0, 0.9)),
            ("estim_lr0", 0.0),
            ("weight_decay", -1.0),
        ),
        lr_arg=_NO_LR,
    ),
    Row(
        "prodigy",
        ours("prodigy"),
        {"weight_decay": 1e-3, "estim_lr0": 1e-3},
        optax.contrib.prodigy,
        complex_ok=False,
        complex_reason=_NO_COMPLEX.format("prodigy"),
        converge_kwargs={"learning_rate": 0.1},
        converge_steps=30_000,
        traced=("learning_rate", "eps", "estim_lr0", "estim_lr_coef"),
        invalid=(
            *LR_INVALID,
            ("betas", (0.9, NAN)),
            ("beta3", 1.0),
            ("estim_lr_coef", -1.0),
        ),
        lr_arg=_NO_LR,
    ),
    Row(
        "prodigy_safeguard",
        ours("prodigy"),
        {"learning_rate": schedule(1.0), "safeguard_warmup": True},
        optax.contrib.prodigy,
        {"learning_rate": optax_schedule(1.0), "safeguard_warmup": True},
        complex_ok=False,
        complex_reason=_NO_COMPLEX.format("prodigy"),
        traced=(),
        invalid=(),
        lr_arg=_NO_LR,
    ),
    Row(
        "momo",
        ours("momo"),
        {"learning_rate": 0.1, "weight_decay": 1e-3},
        optax.contrib.momo,
        needs_value=True,
        complex_ok=False,
        complex_reason=_NO_COMPLEX.format("momo"),
        converge_kwargs={"learning_rate": 0.1},
        converge_steps=30_000,
        traced=("learning_rate", "beta", "lower_bound", "weight_decay"),
        invalid=(*LR_INVALID, ("beta", 1.0), ("lower_bound", NAN)),
        lr_arg=_NO_LR,
    ),
    Row(
        "momo_adapt",
        ours("momo"),
        {"learning_rate": 0.1, "lower_bound": -5.0, "adapt_lower_bound": True},
        optax.contrib.momo,
        needs_value=True,
        complex_ok=False,
        complex_reason=_NO_COMPLEX.format("momo"),
        traced=("learning_rate", "lower_bound"),
        invalid=(),
        lr_arg=_NO_LR,
    ),
    Row(
        "momo_adam",
        ours("momo_adam"),
        {"learning_rate": 0.1, "weight_decay": 1e-3},
        optax.contrib.momo_adam,
        needs_value=True,
        complex_ok=False,
        complex_reason=_NO_COMPLEX.format("momo_adam"),
        converge_kwargs={"learning_rate": 0.1},
        traced=("learning_rate", "b1", "b2", "eps", "weight_decay"),
        invalid=(*ADAM_INVALID, ("weight_decay", -1.0)),
        lr_arg=_NO_LR,
    ),
    Row(
        "momo_adam_adapt",
        ours("momo_adam"),
        {"learning_rate": 0.1, "lower_bound": -5.0, "adapt_lower_bound": True},
        optax.contrib.momo_adam,
        needs_value=True,
        complex_ok=False,
        complex_reason=_NO_COMPLEX.format("momo_adam"),
        traced=(),
        invalid=(),
        lr_arg=_NO_LR,
    ),
    Row(
        "mechanize",
        ours("mechanize"),
        # (sgd: bit-identical to optax's, which mechanize's feedback needs for
        # 1e-5 parity after 100 steps)
        {"base_optimizer": jol.sgd(0.1, 0.9)},
        optax.contrib.mechanize,
        {"base_optimizer": optax.sgd(0.1, 0.9)},
        complex_ok=False,
        complex_reason=_NO_COMPLEX.format("mechanize"),
        converge_kwargs={"base_optimizer": jol.sgd(1.0), "weight_decay": 0.0},
        converge_steps=30_000,
        traced=("weight_decay", "eps", "s_init"),
        invalid=(("weight_decay", -1.0), ("s_init", NAN), ("num_betas", 0)),
        lr_arg=_NO_LR,
    ),
]
