"""float64 trajectories against ``torch.optim`` (a second, independent
oracle): SGD (momentum, Nesterov, L2 weight decay), Adam, AdamW, RMSprop
(plain, centered, momentum), Adagrad, Adadelta, NAdam, RAdam and Adamax, 50
steps on a float64 quadratic, to ~1e-12.

Where torch's rule differs in a detail, the hyper-parameters are chosen to
make the two rules the same: RMSprop with ``eps_in_sqrt=False`` (torch adds
eps outside the root), Adagrad and RAdam with ``eps=0`` (torch places eps
elsewhere), NAdam with torch's ``momentum_decay`` so large that its momentum
schedule is the constant $\\beta_1$ (Dozat's NAdam, as in optax). Skipped
when torch is not installed (it is not in the dev extra: the wheel is large).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxopt_lite as jol

torch = pytest.importorskip("torch")

STEPS = 50
RNG = np.random.default_rng(0)
_A = RNG.normal(size=(6, 6))
HESS = _A @ _A.T / 6 + 0.3 * np.eye(6)
LIN = RNG.normal(size=6)
X0 = RNG.normal(size=6)


def _grad(x: np.ndarray) -> np.ndarray:
    return HESS @ x - LIN


def _torch_run(make) -> np.ndarray:
    # torch keeps some scalars (NAdam's momentum product, step counts) in its
    # default dtype: make that float64 too.
    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        x = torch.tensor(X0.copy(), dtype=torch.float64, requires_grad=True)
        opt = make([x])
        for _ in range(STEPS):
            opt.zero_grad()
            x.grad = torch.tensor(_grad(x.detach().numpy()), dtype=torch.float64)
            opt.step()
    finally:
        torch.set_default_dtype(default)
    return x.detach().numpy()


def _ours_run(opt) -> np.ndarray:
    hess, lin = jnp.asarray(HESS), jnp.asarray(LIN)

    def step(carry, _):
        x, state = carry
        updates, state = opt.update(hess @ x - lin, state, x)
        return (optax.apply_updates(x, updates), state), None

    x0 = jnp.asarray(X0)
    (x, _), _ = jax.jit(lambda: jax.lax.scan(step, (x0, opt.init(x0)), None, STEPS))()
    assert x.dtype == jnp.float64
    return np.asarray(x)


T = torch.optim
CASES = {
    "sgd_momentum": (
        lambda: jol.sgd(0.05, momentum=0.9),
        lambda p: T.SGD(p, lr=0.05, momentum=0.9),
    ),
    "sgd_nesterov_weight_decay": (
        lambda: jol.chain(
            jol.add_decayed_weights(0.01), jol.sgd(0.05, momentum=0.8, nesterov=True)
        ),
        lambda p: T.SGD(p, lr=0.05, momentum=0.8, nesterov=True, weight_decay=0.01),
    ),
    "adam": (
        lambda: jol.adam(0.05, b1=0.8, b2=0.95),
        lambda p: T.Adam(p, lr=0.05, betas=(0.8, 0.95)),
    ),
    "adamw": (
        lambda: jol.adamw(0.05, weight_decay=0.1),
        lambda p: T.AdamW(p, lr=0.05, weight_decay=0.1),
    ),
    "rmsprop": (
        lambda: jol.rmsprop(0.01, decay=0.99, eps_in_sqrt=False),
        lambda p: T.RMSprop(p, lr=0.01, alpha=0.99),
    ),
    "rmsprop_centered_momentum": (
        lambda: jol.rmsprop(
            0.01, decay=0.9, eps=1e-6, centered=True, momentum=0.5, eps_in_sqrt=False
        ),
        lambda p: T.RMSprop(
            p, lr=0.01, alpha=0.9, eps=1e-6, centered=True, momentum=0.5
        ),
    ),
    "adagrad": (
        lambda: jol.adagrad(0.5, initial_accumulator_value=0.1, eps=0.0),
        lambda p: T.Adagrad(p, lr=0.5, initial_accumulator_value=0.1, eps=0.0),
    ),
    "adadelta": (
        lambda: jol.adadelta(1.0, rho=0.9, eps=1e-6, weight_decay=0.01),
        lambda p: T.Adadelta(p, lr=1.0, rho=0.9, eps=1e-6, weight_decay=0.01),
    ),
    "nadam": (
        lambda: jol.nadam(0.05),
        lambda p: T.NAdam(p, lr=0.05, momentum_decay=1e9),
    ),
    "radam": (
        lambda: jol.radam(0.05, eps=0.0),
        lambda p: T.RAdam(p, lr=0.05, eps=0.0),
    ),
    "adamax": (
        lambda: jol.adamax(0.05),
        lambda p: T.Adamax(p, lr=0.05),
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_float64_matches_torch(name):
    ours_factory, torch_factory = CASES[name]
    with jax.enable_x64(True):
        ours = _ours_run(ours_factory())
    theirs = _torch_run(torch_factory)
    assert not np.allclose(ours, X0)
    np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-12)
