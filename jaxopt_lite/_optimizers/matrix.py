r"""Optimizers that treat weight matrices as matrices: `muon` (orthogonalized
momentum, Adam for the other leaves) and `galore` (a base transform in a
low-rank subspace of each matrix's gradients).

Both end in `scale_by_learning_rate`, so `current_learning_rate` works and
the learning rate may be a number, an array (possibly traced) or a schedule.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import optax

from jaxopt_lite._combinators.chain import chain
from jaxopt_lite._combinators.masking import partition
from jaxopt_lite._core import validate
from jaxopt_lite._core.recipe import recipe
from jaxopt_lite._optimizers.adam import adamw
from jaxopt_lite._transforms.galore import scale_by_galore
from jaxopt_lite._transforms.matrices import check_spec_tree, leaf_specs
from jaxopt_lite._transforms.muon import scale_by_muon, scale_by_shape
from jaxopt_lite._transforms.newton_schulz import (
    NS_COEFFS_PRESETS,
    MuonDimensionNumbers,
    default_dimension_numbers,
)
from jaxopt_lite._transforms.scaling import ScalarOrSchedule, scale_by_learning_rate
from jaxopt_lite._transforms.weight_decay import add_decayed_weights


def _is_muon_spec(x: Any) -> bool:
    return isinstance(x, MuonDimensionNumbers)


@recipe(static=("ns_steps", "muon_weight_dimension_numbers"))
def muon(
    learning_rate: ScalarOrSchedule,
    ns_coeffs: Any = NS_COEFFS_PRESETS["standard"],
    ns_steps: int = 5,
    beta: float | jax.Array = 0.95,
    eps: float | jax.Array = 1e-8,
    weight_decay: ScalarOrSchedule = 0.0,
    weight_decay_mask: Any = None,
    mu_dtype: Any = None,
    *,
    nesterov: bool = True,
    adaptive: bool = False,
    preconditioning: str = "frobenius",
    adam_b1: float | jax.Array = 0.9,
    adam_b2: float | jax.Array = 0.999,
    adam_eps_root: float | jax.Array = 0.0,
    adam_weight_decay: ScalarOrSchedule = 0.0,
    adam_learning_rate: ScalarOrSchedule | None = None,
    muon_weight_dimension_numbers: Any = None,
    consistent_rms: float | jax.Array | None = None,
) -> optax.GradientTransformationExtraArgs:
    r"""Muon: orthogonalized momentum for the matrices, AdamW for the rest.

    $$
    \theta_{t+1} = \theta_t - \eta_t \left( s \,
    \operatorname{NS}(\hat\mu_t) + \lambda \theta_t \right), \qquad
    s = \sqrt{\max(1, n_\text{out} / n_\text{in})}
    $$

    for the matrices, with $\hat\mu_t$ the (Nesterov) bias-corrected momentum
    and NS the orthogonalization of `scale_by_muon`; $s$ is
    $\rho \sqrt{\max(n_\text{in}, n_\text{out})}$ with ``consistent_rms``
    $= \rho$ (`scale_by_shape`). Every other leaf is updated by `adamw`
    (``adam_*`` arguments, ``eps``, ``mu_dtype``, ``nesterov``).

    Which leaves are matrices: without ``muon_weight_dimension_numbers``,
    the 2-D leaves and the 4-D ones, taken as convolution kernels in JAX's
    ``HWIO`` layout ``(kh, kw, in, out)`` and orthogonalized as
    ``(kh kw in) x out`` matrices (optax sends 4-D leaves to Adam; for
    ``OIHW`` kernels give ``MuonDimensionNumbers((1, 2, 3), 0)``). With it,
    a tree of `MuonDimensionNumbers` and ``None`` (a prefix of the
    parameters' structure) or a function ``params -> such a tree``: leaves
    under ``None`` go to AdamW and are neither orthogonalized nor rescaled.

    Args:
        learning_rate: $\eta$: a number >= 0, a scalar array or a schedule.
        ns_coeffs: the Newton-Schulz coefficients (see `scale_by_muon`), or a
            preset name (``"standard"``, ``"dion"``).
        ns_steps: the number of Newton-Schulz steps.
        beta: the momentum decay, in $[0, 1)$.
        eps: $\epsilon >= 0$ of the Newton-Schulz rescaling and of AdamW.
        weight_decay: $\lambda >= 0$ for the matrices (number, array or
            schedule), multiplied by the learning rate.
        weight_decay_mask: which matrices get weight decay (a tree of bools
            or a function ``params -> tree``, see `add_decayed_weights`).
        mu_dtype: dtype of the momenta; ``None`` keeps the parameters'.
        nesterov: use Nesterov momentum (both parts).
        adaptive: scale by the dual norm (see `scale_by_muon`).
        preconditioning: ``"frobenius"``, ``"spectral"``, ``"aol"`` or
            ``"schatten"``.
        adam_b1: AdamW's $\beta_1$.
        adam_b2: AdamW's $\beta_2$.
        adam_eps_root: AdamW's $\epsilon$ inside the square root.
        adam_weight_decay: AdamW's weight decay.
        adam_learning_rate: AdamW's learning rate; ``None`` uses
            ``learning_rate``.
        muon_weight_dimension_numbers: which leaves are matrices, and how
            (see above).
        consistent_rms: ``None``, or $\rho >= 0$ (see `scale_by_shape`).

    Returns:
        An ``optax.GradientTransformationExtraArgs``.

    Example:
        >>> import jax, jax.numpy as jnp, optax, jaxopt_lite as jol
        >>> params = {"w": jnp.array([[1.0, 2.0], [3.0, 4.0]]), "b": jnp.ones(2)}
        >>> opt = jol.muon(0.1, ns_coeffs=(1.5, -0.5, 0.0), ns_steps=30)
        >>> state = opt.init(params)
        >>> grads = jax.grad(lambda p: jnp.sum(p["w"] ** 2) + jnp.sum(p["b"]))(params)
        >>> singular_values = lambda m: jnp.linalg.svd(m, compute_uv=False).tolist()
        >>> [round(s, 2) for s in singular_values(grads["w"])]
        [10.93, 0.73]
        >>> updates, state = opt.update(grads, state, params)
        >>> [round(s, 4) for s in singular_values(updates["w"])]
        [0.1, 0.1]

    References:
        Jordan et al., *Muon: An optimizer for hidden layers in neural
        networks*, 2024.
        Liu et al., *Muon is Scalable for LLM Training*, 2025.
    """
    validate.check_weight_decay("weight_decay", weight_decay)
    spec = muon_weight_dimension_numbers
    check_spec_tree(spec, name="muon_weight_dimension_numbers", is_spec=_is_muon_spec)

    def labels(params):
        leaves, treedef = jax.tree.flatten(params)
        if spec is None:
            matrices = [default_dimension_numbers(jnp.ndim(x)) for x in leaves]
        else:
            matrices = leaf_specs(
                spec,
                params,
                name="muon_weight_dimension_numbers",
                is_spec=_is_muon_spec,
            )
        return treedef.unflatten(["adam" if m is None else "muon" for m in matrices])

    orthogonalized = chain(
        scale_by_muon(
            ns_coeffs,
            ns_steps,
            beta,
            eps,
            mu_dtype,
            nesterov=nesterov,
            adaptive=adaptive,
            preconditioning=preconditioning,
            weight_dimension_numbers=spec,
        ),
        scale_by_shape(spec, consistent_rms),
        add_decayed_weights(weight_decay, weight_decay_mask),
        scale_by_learning_rate(learning_rate),
    )
    adam = adamw(
        learning_rate if adam_learning_rate is None else adam_learning_rate,
        adam_b1,
        adam_b2,
        eps,
        adam_eps_root,
        mu_dtype,
        adam_weight_decay,
        nesterov=nesterov,
    )
    return partition({"muon": orthogonalized, "adam": adam}, labels)


@recipe(static=("rank", "weight_dimension_numbers"))
def galore(
    learning_rate: ScalarOrSchedule,
    rank: int = 128,
    update_proj_gap: int = 200,
    scale: float | jax.Array = 1.0,
    base_optimizer: optax.GradientTransformation | None = None,
    weight_decay: ScalarOrSchedule = 0.0,
    mask: Any = None,
    weight_dimension_numbers: Any = None,
) -> optax.GradientTransformationExtraArgs:
    r"""GaLore: a base optimizer run on low-rank projections of the gradients.

    $$
    \theta_{t+1} = \theta_t - \eta_t \left( \alpha \, P_t B(P_t^\top G_t)
    + \lambda \theta_t \right)
    $$

    for each projected matrix ($B(G_t P_t) P_t^\top$ for wide ones), with
    $P_t$ the leading singular vectors of the gradient, refreshed every
    ``update_proj_gap`` steps (`scale_by_galore`); leaves that are not
    projected get $B(G_t)$. The weight decay is applied in the full space
    (`add_decayed_weights`), then the learning rate.

    Args:
        learning_rate: $\eta$: a number >= 0, a scalar array or a schedule.
        rank: the rank kept (an integer >= 1).
        update_proj_gap: steps between SVDs (an integer >= 1).
        scale: $\alpha$, a finite number.
        base_optimizer: $B$, a transform that does not read the parameters;
            ``None`` means `scale_by_adam` (put weight decay in
            ``weight_decay``, not in $B$).
        weight_decay: $\lambda >= 0$ (number, array or schedule).
        mask: which leaves get weight decay (see `add_decayed_weights`).
        weight_dimension_numbers: which leaves are projected, and how (see
            `scale_by_galore`).

    Returns:
        An ``optax.GradientTransformationExtraArgs``.

    Example:
        >>> import jax, jax.numpy as jnp, optax, jaxopt_lite as jol
        >>> params = {"w": jnp.ones((4, 3)), "b": jnp.ones(3)}
        >>> opt = jol.galore(0.1, rank=1)
        >>> state = opt.init(params)
        >>> state[0].projector["w"].shape
        (4, 1)
        >>> grads = jax.grad(lambda p: jnp.sum(p["w"] ** 2) + jnp.sum(p["b"]))(params)
        >>> updates, state = opt.update(grads, state, params)
        >>> updates["w"][0].round(3)  # Adam's sign-like step on P^T G, times P
        Array([-0.05, -0.05, -0.05], dtype=float32)

    References:
        Zhao et al., *GaLore: Memory-Efficient LLM Training by Gradient
        Low-Rank Projection*, 2024.
    """
    validate.check_weight_decay("weight_decay", weight_decay)
    return chain(
        scale_by_galore(
            rank, update_proj_gap, scale, base_optimizer, weight_dimension_numbers
        ),
        add_decayed_weights(weight_decay, mask),
        scale_by_learning_rate(learning_rate),
    )
