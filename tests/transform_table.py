"""The shared table of optimizers fed to the generic tests.

Every optimizer of the package is one (or more) `Row` here. Generic tests in
``tests/test_optimizers.py`` are parametrized over `ROWS`:

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
  whose message names the argument).

Adding an optimizer adds a row. Hyper-parameters are given once in ``kwargs``
and used for both our factory and optax's (unless ``optax_kwargs`` is given).
The update is always called with ``value=loss`` (the loops do so too), so
loss-aware rows just set ``needs_value=True`` for documentation.

Parameters in the generic tests are dicts (``{"w": (3,), "b": (2,)}`` for the
jit, float32-state and traced-hyper-parameter tests, ``{"q": (5,), "r": (2,)}``
for parity) or single vectors (convergence, bfloat16/complex64 state); masks
in ``kwargs`` should be callables that handle both.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
from collections.abc import Callable, Mapping
from typing import Any

import optax

import jaxopt_lite as jol

NAN = math.nan

# Common invalid-argument cases.
LR_INVALID = (("learning_rate", -1.0), ("learning_rate", NAN))
B_INVALID = (("b1", 1.0), ("b1", -0.1), ("b2", 1.0), ("b2", NAN))
EPS_INVALID = (("eps", -1.0),)


def ours(name: str) -> Callable[..., optax.GradientTransformation]:
    """Our factory ``jol.<name>``, looked up when called (so a row may be added
    before its optimizer lands)."""

    def factory(**kwargs: Any) -> optax.GradientTransformation:
        return getattr(jol, name)(**kwargs)

    factory.__name__ = name
    factory.jol_name = name  # type: ignore[attr-defined]
    return factory


def _schedule(init_value: float) -> Callable[[Any], Any]:
    """Our exponential-decay schedule (compared with `_optax_schedule`)."""
    return jol.exponential_decay(init_value, transition_steps=10, decay_rate=0.5)


def _optax_schedule(init_value: float) -> Callable[[Any], Any]:
    return optax.exponential_decay(init_value, transition_steps=10, decay_rate=0.5)


@dataclasses.dataclass(frozen=True)
class Row:
    """One optimizer configuration under test."""

    name: str
    """The test id."""
    factory: Callable[..., optax.GradientTransformation]
    """Our factory, e.g. ``jol.adam``."""
    kwargs: Mapping[str, Any]
    """Test hyper-parameters (learning rate a number or a schedule)."""
    optax_factory: Callable[..., optax.GradientTransformation] | None = None
    """optax's equivalent, or ``None`` when optax lacks it."""
    optax_kwargs: Mapping[str, Any] | None = None
    """Arguments for ``optax_factory``; ``None`` means the same as ``kwargs``."""
    parity_rtol: float = 1e-5
    needs_value: bool = False
    """The update reads ``value=`` (Polyak-like step sizes)."""
    complex_ok: bool = True
    complex_reason: str = ""
    bf16_ok: bool = True
    bf16_reason: str = ""
    converge_kwargs: Mapping[str, Any] | None = None
    """Hyper-parameters for the convergence tests; ``None`` skips them."""
    converge_skip: Mapping[str, str] = dataclasses.field(default_factory=dict)
    """Problem name (``"parabola"``, ``"rosenbrock"``) -> reason to skip."""
    converge_steps: int = 10_000
    traced: tuple[str, ...] = ("learning_rate",)
    """Hyper-parameters that may be traced arrays (changing them must not
    recompile)."""
    invalid: tuple[tuple[str, Any], ...] = LR_INVALID
    """(argument name, bad value) pairs that must raise ``ValueError``."""
    lr_arg: str | None = "learning_rate"
    """The argument whose value `current_learning_rate` reports; ``None``
    when the rate is not a fixed number or schedule (skips that test)."""

    def make(self) -> optax.GradientTransformation:
        """Our optimizer with the test hyper-parameters."""
        return self.factory(**self.kwargs)

    @property
    def optax_make(self) -> Callable[[], optax.GradientTransformation] | None:
        """A zero-argument factory for optax's equivalent, or ``None``."""
        if self.optax_factory is None:
            return None
        kwargs = self.kwargs if self.optax_kwargs is None else self.optax_kwargs
        factory = self.optax_factory
        return lambda: factory(**kwargs)

    def target(self) -> Callable[..., optax.GradientTransformation]:
        """The factory itself (``jol.<name>`` for rows made with `ours`)."""
        name = getattr(self.factory, "jol_name", None)
        return self.factory if name is None else getattr(jol, name)

    def hyper_value(self, name: str) -> Any:
        """The value of hyper-parameter ``name``: from ``kwargs``, else the
        factory's default."""
        if name in self.kwargs:
            return self.kwargs[name]
        return inspect.signature(self.target()).parameters[name].default

    def make_converge(self) -> optax.GradientTransformation:
        assert self.converge_kwargs is not None
        return self.factory(**self.converge_kwargs)


ADAM_INVALID = LR_INVALID + B_INVALID + EPS_INVALID

ROWS: list[Row] = [
    # --- part A rows ---
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
        {"learning_rate": _schedule(0.01)},
        optax.sgd,
        {"learning_rate": _optax_schedule(0.01)},
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
        invalid=(*LR_INVALID, ("momentum", 1.0), ("momentum", -0.5)),
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
        {"learning_rate": _schedule(0.05), "eps_root": 1e-8},
        optax.adam,
        {"learning_rate": _optax_schedule(0.05), "eps_root": 1e-8},
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
        {"learning_rate": _schedule(0.05), "weight_decay": 0.1},
        optax.adamw,
        {"learning_rate": _optax_schedule(0.05), "weight_decay": 0.1},
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
    # --- part B rows ---
    # Part B appends its rows below this line (lion, lamb, lars, novograd,
    # sign_sgd, noisy_sgd, polyak_sgd, adafactor, ...).
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
        {"learning_rate": _schedule(0.01)},
        optax.sign_sgd,
        {"learning_rate": _optax_schedule(0.01)},
        traced=(),
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
            ("momentum", 1.0),
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
            ("momentum", 1.0),
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
]

ROW_IDS = [row.name for row in ROWS]
