r"""Sophia: momentum over a clipped, EMA-smoothed diagonal Hessian estimate
(`scale_by_sophia`), with Hutchinson's estimator of the Hessian diagonal
(`hutchinson_estimator_diag_hessian`) as its default."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import optax
import optax.contrib

from jaxopt_lite._core import tree_math, validate
from jaxopt_lite._core.dtypes import div, mul, promote, zeros_like
from jaxopt_lite._core.recipe import recipe

HutchinsonState = optax.contrib.HutchinsonState
"""optax.contrib's class itself (so states equal optax's as trees): the PRNG key
of the next draw (here a typed key)."""


@recipe
def hutchinson_estimator_diag_hessian(
    random_seed: Any = None,
) -> optax.GradientTransformationExtraArgs:
    r"""Estimate the diagonal of the Hessian of ``obj_fn`` with Hutchinson's trick.

    $$
    \hat h = z \odot (\nabla^2 f(\theta)\, z), \qquad
    z_i \in \{-1, +1\} \text{ uniformly at random}
    $$

    an unbiased (but noisy) estimate of $\operatorname{diag}\nabla^2 f$, from
    one Hessian-vector product (forward over reverse mode). The input updates
    are ignored; ``update`` returns $\hat h$. Meant as the
    ``hessian_diagonal_fn`` of `sophia`.

    Args:
        random_seed: an integer seed, a PRNG key (typed or raw) or ``None``
            (seed 0); a fresh key is split off at every update.

    Returns:
        An ``optax.GradientTransformationExtraArgs``; ``update`` needs
        ``params`` and ``obj_fn``, the loss as a function of the parameters
        alone.

    Example:
        >>> import jax.numpy as jnp, jaxopt_lite as jol
        >>> t = jol.hutchinson_estimator_diag_hessian()
        >>> f = lambda p: jnp.sum(jnp.array([1.0, 3.0]) * p**2)
        >>> p = jnp.ones(2)
        >>> t.update(p, t.init(p), p, obj_fn=f)[0]
        Array([2., 6.], dtype=float32)

    References:
        Hutchinson, *A stochastic estimator of the trace of the influence
        matrix for Laplacian smoothing splines*, 1989.
    """
    # None: the key is made in init, so that importing the package (which
    # builds the default estimator) starts no XLA backend (jax.distributed)
    key = (
        None if random_seed is None else validate.check_key("random_seed", random_seed)
    )

    def init_fn(params):
        del params
        return HutchinsonState(
            validate.check_key("random_seed", None) if key is None else key
        )

    def update_fn(updates, state, params: Any = None, obj_fn=None, **extra_args):
        del updates, extra_args
        validate.require_params("hutchinson_estimator_diag_hessian", params)
        if obj_fn is None:
            raise TypeError(
                "hutchinson_estimator_diag_hessian needs the objective: call "
                "update(updates, state, params, obj_fn=loss_of_params)."
            )
        key, draw = jax.random.split(state.key)
        signs = optax.tree.random_like(
            draw, params, jax.random.rademacher, dtype=jnp.float32
        )
        signs = jax.tree.map(lambda z, p: z.astype(p.dtype), signs, params)
        hvp = jax.jvp(jax.grad(obj_fn), (params,), (signs,))[1]
        return jax.tree.map(jnp.multiply, hvp, signs), HutchinsonState(key)

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


_HUTCHINSON = hutchinson_estimator_diag_hessian()


SophiaState = optax.contrib.SophiaState
"""optax.contrib's class itself (so states equal optax's as trees): update
count (int32, saturating), the momentum ``mu``, the moving average ``nu`` of
the Hessian diagonal estimates and the estimator's state."""


@recipe
def scale_by_sophia(
    b1: float | jax.Array = 0.965,
    b2: float | jax.Array = 0.99,
    eps: float | jax.Array = 1e-8,
    gamma: float | jax.Array = 0.01,
    clip_threshold: float | jax.Array | None = 1.0,
    update_interval: int | jax.Array = 10,
    hessian_diagonal_fn: optax.GradientTransformation = _HUTCHINSON,
    mu_dtype: Any = None,
    verbose: bool = False,
    print_win_rate_every_n_steps: int = 0,
) -> optax.GradientTransformationExtraArgs:
    r"""Rescale updates by Sophia: momentum over a clipped diagonal Hessian.

    $$
    \mu_t = \beta_1 \mu_{t-1} + (1-\beta_1) g_t, \quad
    u_t = \operatorname{clip}\left(\frac{\mu_t / (1-\beta_1^t)}
    {\max(\gamma h_{t-1}, \epsilon)}, \pm\rho\right), \quad
    h_t = \begin{cases}
    \beta_2 h_{t-1} + (1-\beta_2) \hat h_t & (t-1) \bmod k = 0 \\
    h_{t-1} & \text{otherwise}
    \end{cases}
    $$

    with $\hat h_t$ from ``hessian_diagonal_fn`` (every $k$ =
    ``update_interval`` steps, starting with the first), $h_0 = 0$ and
    $\rho$ = ``clip_threshold`` (no clipping when ``None``).

    Args:
        b1: $\beta_1$, in $[0, 1)$.
        b2: $\beta_2$, in $[0, 1)$.
        eps: $\epsilon >= 0$, the floor of the denominator.
        gamma: $\gamma >= 0$, the scale of the Hessian estimate.
        clip_threshold: $\rho > 0$, or ``None``.
        update_interval: $k >= 1$ (an integer, possibly traced).
        hessian_diagonal_fn: a transform whose ``update`` returns a Hessian
            diagonal estimate; it gets the gradients, its state, the
            ``params`` and every extra keyword argument of this ``update``.
            The default, `hutchinson_estimator_diag_hessian`, needs
            ``obj_fn=``. (Across devices, it should average its estimate.)
        mu_dtype: dtype of $\mu$; ``None`` keeps the parameters' dtype.
        verbose: print the fraction of unclipped coordinates (the "win
            rate", best between 0.1 and 0.5) every
            ``print_win_rate_every_n_steps`` steps.
        print_win_rate_every_n_steps: an integer, >= 1 when ``verbose``.

    Returns:
        An ``optax.GradientTransformationExtraArgs``; ``update`` needs
        ``params`` and what ``hessian_diagonal_fn`` needs.

    Example:
        >>> import jax.numpy as jnp, jaxopt_lite as jol
        >>> t = jol.scale_by_sophia(b1=0.5)
        >>> f = lambda p: jnp.sum(p**2)
        >>> p = jnp.ones(2)
        >>> u, state = t.update(jnp.array([2.0, -1e-9]), t.init(p), p, obj_fn=f)
        >>> u, state.nu
        (Array([ 1. , -0.1], dtype=float32), Array([0.02, 0.02], dtype=float32))

    References:
        Liu, Li, Hall, Liang and Ma, *Sophia: A Scalable Stochastic
        Second-order Optimizer for Language Model Pre-training*, 2024.
    """
    validate.check_decay("b1", b1)
    validate.check_decay("b2", b2)
    validate.check_nonnegative("eps", eps)
    validate.check_nonnegative("gamma", gamma)
    if clip_threshold is not None:
        validate.check_positive("clip_threshold", clip_threshold)
    validate.check_int("update_interval", update_interval, traced=True)
    validate.check_transform("hessian_diagonal_fn", hessian_diagonal_fn)
    mu_dtype = validate.check_dtype("mu_dtype", mu_dtype)
    validate.check_bool("verbose", verbose)
    validate.check_int(
        "print_win_rate_every_n_steps", print_win_rate_every_n_steps, minimum=0
    )
    if verbose:
        validate.check_int(
            "print_win_rate_every_n_steps (with verbose=True)",
            print_win_rate_every_n_steps,
        )
    estimator = optax.with_extra_args_support(hessian_diagonal_fn)

    def init_fn(params):
        return SophiaState(
            count=jnp.zeros([], jnp.int32),
            mu=zeros_like(params, dtype=mu_dtype),
            nu=zeros_like(params),
            hessian_fn_state=estimator.init(params),
        )

    def update_fn(updates, state, params=None, **extra_args):
        validate.require_params("scale_by_sophia", params)
        count = tree_math.safe_increment(state.count)
        mu = jax.tree.map(lambda g, m: tree_math.ema(b1, m, g), updates, state.mu)
        mu_hat = tree_math.tree_bias_correction(mu, b1, count)
        ratio = jax.tree.map(
            lambda m, h: div(m, jnp.maximum(*promote(mul(gamma, h), eps))),
            mu_hat,
            state.nu,
        )
        if clip_threshold is not None:
            bound = clip_threshold
            if verbose:
                _print_win_rate(ratio, bound, count, print_win_rate_every_n_steps)
            ratio = jax.tree.map(lambda r: jnp.clip(*promote(r, -bound, bound)), ratio)

        def estimate(hessian_state, nu):
            diagonal, hessian_state = estimator.update(
                updates, hessian_state, params, **extra_args
            )
            return hessian_state, tree_math.tree_update_moment(diagonal, nu, b2, 1)

        hessian_state, nu = jax.lax.cond(
            state.count % update_interval == 0,
            estimate,
            lambda hessian_state, nu: (hessian_state, nu),
            state.hessian_fn_state,
            state.nu,
        )
        new_updates = jax.tree.map(lambda g, r: r.astype(g.dtype), updates, ratio)
        mu = jax.tree.map(lambda m, old: m.astype(old.dtype), mu, state.mu)
        return new_updates, SophiaState(count, mu, nu, hessian_state)

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def _print_win_rate(ratio: Any, threshold: Any, count: jax.Array, every: int) -> None:
    """Print the fraction of coordinates that ``threshold`` leaves unclipped,
    when ``count`` is a multiple of ``every``."""
    inside = sum(
        jnp.sum(jnp.less(*promote(jnp.abs(r), threshold)))
        for r in jax.tree.leaves(ratio)
    )
    rate = inside / optax.tree.size(ratio)
    jax.lax.cond(
        count % every == 0,
        lambda: jax.debug.print("Sophia optimizer win rate: {}", rate),
        lambda: None,
    )
