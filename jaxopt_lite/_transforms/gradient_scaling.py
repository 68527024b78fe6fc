"""`scale_gradient`: the identity on the way forward, a scaled gradient on the
way back."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from jaxopt_lite._core import validate
from jaxopt_lite._core.dtypes import mul

PyTree = Any


@jax.custom_vjp
def _scaled(inputs: PyTree, scale: Any) -> PyTree:
    del scale
    return inputs


def _scaled_fwd(inputs: PyTree, scale: Any) -> tuple[PyTree, Any]:
    return inputs, scale


def _scaled_bwd(scale: Any, cotangents: PyTree) -> tuple[PyTree, None]:
    # scale == 0 gives exact zeros (optax stops the gradient there), also
    # for infinite or NaN cotangents; scale == 1 returns them as they are.
    def one(c):
        return jnp.where(scale == 0, jnp.zeros_like(c), mul(c, scale).astype(c.dtype))

    return jax.tree.map(one, cotangents), None


_scaled.defvjp(_scaled_fwd, _scaled_bwd)


def scale_gradient(inputs: PyTree, scale: float | jax.Array) -> PyTree:
    r"""Return ``inputs`` unchanged, with the gradient through them scaled.

    $$
    y = x, \qquad \frac{\partial L}{\partial x} = s\,\frac{\partial L}{\partial y}
    $$

    Inside a loss it slows down or stops the learning of what feeds
    ``inputs`` without changing the forward computation (``scale=0`` acts
    as ``jax.lax.stop_gradient``). The same results as
    ``optax.scale_gradient``, without its Python test of the value, so
    ``scale`` may also be a traced array (under ``jit`` or ``vmap``).
    ``scale`` itself gets no gradient.

    Args:
        inputs: a tree of arrays.
        scale: $s$, a real number or scalar array (may be traced).

    Returns:
        ``inputs``, with the scaled backward pass.

    Example:
        >>> import jax, jax.numpy as jnp, jaxopt_lite as jol
        >>> jax.grad(lambda x: jnp.sum(jol.scale_gradient(x, 0.5) ** 2))(
        ...     jnp.array([1.0, 2.0]))
        Array([1., 2.], dtype=float32)
    """
    validate.check_range("scale", scale)
    return _scaled(inputs, scale)
