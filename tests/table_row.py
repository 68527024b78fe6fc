"""What a row of the shared table of transforms (``transform_table.py``)
holds, and the helpers its rows share."""

from __future__ import annotations

import dataclasses
import inspect
import math
from collections.abc import Callable, Mapping
from typing import Any

import optax
from helpers import optax_reference

import jaxopt_lite as jol

NAN = math.nan
KINDS = ("optimizer", "transform", "clipping")

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


def schedule(init_value: float) -> Callable[[Any], Any]:
    """Our exponential-decay schedule (compared with `optax_schedule`)."""
    return jol.exponential_decay(init_value, transition_steps=10, decay_rate=0.5)


def optax_schedule(init_value: float) -> Callable[[Any], Any]:
    return optax.exponential_decay(init_value, transition_steps=10, decay_rate=0.5)


@dataclasses.dataclass(frozen=True)
class Row:
    """One transform configuration under test."""

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
    kind: str = "optimizer"
    """Which generic tests the row feeds: one of `KINDS`."""
    complex_parity_skip: str = ""
    """(``"transform"`` rows) Why parity with optax is not checked on
    complex64; empty: it is."""
    complex_ok: bool = True
    """Whether the row runs on complex parameters at all (``"optimizer"`` and
    ``"transform"`` rows); ``complex_reason`` says why not."""
    complex_reason: str = ""
    # The fields below are read by the tests of "optimizer" rows.
    parity_rtol: float = 1e-5
    needs_value: bool = False
    """The update reads ``value=`` (Polyak-like step sizes)."""
    bf16_ok: bool = True
    bf16_reason: str = ""
    converge_kwargs: Mapping[str, Any] | None = None
    """Hyper-parameters for the convergence tests; ``None`` skips them."""
    converge_skip: Mapping[str, str] = dataclasses.field(default_factory=dict)
    """Problem name (``"parabola"``, ``"rosenbrock"``), or problem and dtype
    (``"rosenbrock/complex64"``) -> reason to skip."""
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
        """Ours with the test hyper-parameters."""
        return self.factory(**self.kwargs)

    @property
    def optax_make(self) -> Callable[[], optax.GradientTransformation] | None:
        """A zero-argument factory for optax's equivalent (run under JAX's
        default dtype promotion), or ``None``."""
        if self.optax_factory is None:
            return None
        kwargs = self.kwargs if self.optax_kwargs is None else self.optax_kwargs
        factory = self.optax_factory
        return lambda: optax_reference(factory(**kwargs))

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
