r"""`split_real_and_imaginary`: run a transform on the real and imaginary
parts of complex parameters as separate real parameters."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
import optax.contrib

from jaxopt_lite._core.recipe import recipe
from jaxopt_lite._core.validate import check_transform


class SplitRealAndImaginaryArrays(NamedTuple):
    """The real and imaginary parts of a complex array."""

    real: jax.Array
    imaginary: jax.Array


SplitRealAndImaginaryState = optax.contrib.SplitRealAndImaginaryState
"""optax.contrib's class itself (so states equal optax's as trees): the state of
the inner transform (on the split parameters)."""


def _split(x: Any) -> Any:
    if jnp.iscomplexobj(x):
        return SplitRealAndImaginaryArrays(jnp.real(x), jnp.imag(x))
    return x


def _merge(x: Any) -> Any:
    if isinstance(x, SplitRealAndImaginaryArrays):
        return jax.lax.complex(x.real, x.imaginary)
    return x


@recipe
def split_real_and_imaginary(
    inner: optax.GradientTransformation,
) -> optax.GradientTransformation:
    r"""Apply ``inner`` to complex leaves as pairs of real ones.

    $$
    u = T(\operatorname{Re} g, \operatorname{Im} g)_{\text{re}}
    + i \, T(\operatorname{Re} g, \operatorname{Im} g)_{\text{im}}
    $$

    Each complex leaf of the parameters and updates becomes a pair
    ``(real, imaginary)`` of real arrays for ``inner`` (so its moments are
    those of two real parameters, not of the modulus), and the pair of
    updates it returns is merged back. Real leaves pass through unchanged.
    (JAX's gradients of real losses in complex parameters are conjugated
    with respect to the usual convention: conjugate them before ``update``.)

    Args:
        inner: the transform to run on real arrays.

    Returns:
        An ``optax.GradientTransformation``.

    Example:
        >>> import jax.numpy as jnp, jaxopt_lite as jol
        >>> t = jol.split_real_and_imaginary(jol.scale_by_adam(eps=0.0))
        >>> g = jnp.array([3.0 - 0.5j])
        >>> t.update(g, t.init(g))[0].round(4)  # sign(g) for each part
        Array([1.-1.j], dtype=complex64)
    """
    check_transform("inner", inner)

    def init_fn(params):
        return SplitRealAndImaginaryState(inner.init(jax.tree.map(_split, params)))

    def update_fn(updates, state, params=None):
        new_updates, inner_state = inner.update(
            jax.tree.map(_split, updates),
            state.inner_state,
            jax.tree.map(_split, params),
        )
        merged = jax.tree.map(
            _merge,
            new_updates,
            is_leaf=lambda x: isinstance(x, SplitRealAndImaginaryArrays),
        )
        return merged, SplitRealAndImaginaryState(inner_state)

    return optax.GradientTransformation(init_fn, update_fn)
