"""`microbatch`: a function evaluated on a batch one slice at a time, the
results combined (summed, averaged or concatenated)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
from optax.microbatching import AccumulationType, Accumulator

from jaxopt_lite._core.dtypes import compute_dtype, div, mul
from jaxopt_lite._core.validate import (
    check_callable,
    check_count,
    check_int,
    check_prefix,
)

PyTree = Any


@dataclasses.dataclass(frozen=True)
class _Combine:
    """How the results of the slices are combined: ``carry = init(shape)``,
    then ``carry = update(carry, value, index)`` per slice, then
    ``finalize(carry)`` (the protocol of ``optax.microbatching.Accumulator``;
    a tree leaf, as that is)."""

    init: Callable[[Any], Any]
    update: Callable[[Any, Any, Any], Any]
    finalize: Callable[[Any], Any]


def _require_floating(kind: AccumulationType, shape: Any) -> None:
    if not jnp.issubdtype(shape.dtype, jnp.floating):
        raise ValueError(
            f"the {kind.name} accumulator needs floating-point results, got one of "
            f"dtype {shape.dtype} (use SUM or CONCAT for it)."
        )


def _running_mean(carry: jax.Array, value: jax.Array, index: Any) -> jax.Array:
    """``carry * i / (i + 1) + value / (i + 1)`` written as optax does, in the
    precision of ``carry`` (at least float32)."""
    dtype = compute_dtype(carry)
    p = div(index.astype(dtype), (index + 1).astype(dtype))
    return (mul(carry, p) + mul(value, 1 - p)).astype(carry.dtype)


def _leafwise(kind: AccumulationType, count: int) -> _Combine:
    """The built-in combination ``kind`` of each leaf of a slice's result."""

    def zeros(shape):
        if kind in (AccumulationType.MEAN, AccumulationType.RUNNING_MEAN):
            _require_floating(kind, shape)
        if kind is AccumulationType.CONCAT:
            return jnp.zeros((count, *shape.shape), shape.dtype)
        return jnp.zeros(shape.shape, shape.dtype)

    def update(carry, value, index):
        if kind is AccumulationType.CONCAT:
            return carry.at[index].set(value)
        if kind is AccumulationType.RUNNING_MEAN:
            return _running_mean(carry, value, index)
        return carry + value

    def finalize(carry):
        if kind is AccumulationType.MEAN:
            return carry / count
        if kind is AccumulationType.CONCAT:
            # Slice i holds rows i, i + count, i + 2 count, ...: back in order.
            return jnp.swapaxes(carry, 0, 1).reshape(-1, *carry.shape[2:])
        return carry

    return _Combine(
        lambda shapes: jax.tree.map(zeros, shapes),
        lambda carry, values, i: jax.tree.map(
            lambda c, x: update(c, x, i), carry, values
        ),
        lambda carry: jax.tree.map(finalize, carry),
    )


def _combiner(accumulator: Any, count: int) -> _Combine:
    """One `_Combine` for a tree of accumulators (a prefix of the results)."""

    def one(acc):
        if isinstance(acc, Accumulator):
            return acc
        if isinstance(acc, AccumulationType):
            return _leafwise(acc, count)
        raise ValueError(
            "accumulator leaves must be optax.microbatching.AccumulationType "
            f"members or Accumulator objects, got {acc!r}."
        )

    combines = jax.tree.map(one, accumulator)

    def init(shapes):
        check_prefix("accumulator", accumulator, shapes, "function's results")
        return jax.tree.map(lambda c, s: c.init(s), combines, shapes)

    return _Combine(
        init,
        lambda carry, values, i: jax.tree.map(
            lambda c, car, x: c.update(car, x, i), combines, carry, values
        ),
        lambda carry: jax.tree.map(lambda c, car: c.finalize(car), combines, carry),
    )


def _as_tuple(value: Any, kind: type) -> tuple:
    return (value,) if isinstance(value, kind) else tuple(value)


def microbatch(
    fun: Callable[..., Any],
    argnums: int | Sequence[int],
    microbatch_size: int | None,
    accumulator: Any = AccumulationType.SUM,
    *,
    argnames: str | Sequence[str] = (),
    in_axes: int | Sequence[int] = 0,
    num_real_microbatches: int | jax.Array | None = None,
) -> Callable[..., Any]:
    r"""Evaluate ``fun`` on slices of a batch in turn, and combine the results.

    $$
    F(x) = \operatorname{combine}\big(f(x^{(0)}), \dots, f(x^{(K-1)})\big),
    \qquad x^{(i)} = \{x_{i + jK} : 0 \le j < \text{microbatch\_size}\}
    $$

    where $K$ is the batch size divided by ``microbatch_size``. The slices
    run one after another in a ``lax.fori_loop``, so only one slice's
    intermediate values are in memory at a time: gradients of a batch too
    large for the device, for instance. Slice $i$ holds the examples
    $i, i+K, i+2K, \dots$, as in ``optax.microbatch``, whose arguments,
    numbers and accumulators (``optax.microbatching.AccumulationType``
    members or ``Accumulator`` objects) this takes:

    - ``SUM``: the sum of the slices' results;
    - ``MEAN``: their mean (floating results), i.e. the sum divided by $K$;
    - ``RUNNING_MEAN``: their running mean over the slices run (floating
      results), computed in the results' precision (optax's fails on float32
      results under x64 and on bfloat16 ones);
    - ``CONCAT``: the results concatenated along axis 0, in the batch's
      order.

    Args:
        fun: the function to evaluate.
        argnums: the position (or positions) of the arguments with a batch
            axis.
        microbatch_size: the number of examples per slice; it must divide
            the batch size. ``None`` returns ``fun`` itself.
        accumulator: how to combine the results: an ``AccumulationType`` or
            ``Accumulator``, or a tree of them that is a prefix of
            ``fun``'s results (built-in kinds apply leaf by leaf; an
            ``Accumulator`` gets its whole subtree).
        argnames: the name (or names) of keyword arguments with a batch axis.
        in_axes: the batch axis of each argument of ``argnums`` then
            ``argnames`` (one integer for all). Every batch axis has the
            same size.
        num_real_microbatches: run only the first this many slices (an
            integer, may be traced): batches of varying size without
            recompiling. ``MEAN`` still divides by $K$.

    Returns:
        A function of the same arguments as ``fun``.

    Example:
        >>> import jax.numpy as jnp, jaxopt_lite as jol
        >>> from optax.microbatching import AccumulationType
        >>> f = lambda x: (x + 1, jnp.sum(3 * x))
        >>> g = jol.microbatch(f, argnums=0, microbatch_size=2,
        ...     accumulator=(AccumulationType.CONCAT, AccumulationType.SUM))
        >>> g(jnp.array([1.0, 2.0, 3.0, 4.0]))
        (Array([2., 3., 4., 5.], dtype=float32), Array(30., dtype=float32))
    """
    check_callable("fun", fun)
    check_count("microbatch_size", microbatch_size, optional=True)
    if num_real_microbatches is not None:
        check_int(
            "num_real_microbatches", num_real_microbatches, minimum=0, traced=True
        )
    if microbatch_size is None:
        return fun
    argnums = _as_tuple(argnums, int)
    argnames = _as_tuple(argnames, str)
    in_axes = (
        (in_axes,) * (len(argnums) + len(argnames))
        if isinstance(in_axes, int)
        else tuple(in_axes)
    )
    if len(in_axes) != len(argnums) + len(argnames):
        raise ValueError(
            f"in_axes={in_axes} must give one axis per batch argument "
            f"(argnums={argnums}, argnames={argnames})."
        )
    size = int(microbatch_size)

    batched = [("args", i) for i in argnums] + [("kwargs", n) for n in argnames]

    def on_batch(args, kwargs, f):
        """Copies of ``args`` (a tuple) and ``kwargs`` with ``f(leaf, axis)``
        applied to the leaves of the batch arguments."""
        new = {"args": list(args), "kwargs": dict(kwargs)}
        for (where, key), axis in zip(batched, in_axes, strict=True):
            new[where][key] = jax.tree.map(lambda x, a=axis: f(x, a), new[where][key])
        return tuple(new["args"]), new["kwargs"]

    def microbatched(*args: Any, **kwargs: Any) -> Any:
        sizes = set()
        on_batch(args, kwargs, lambda x, axis: sizes.add(jnp.shape(x)[axis]))
        if len(sizes) != 1:
            raise ValueError(
                f"the batch arguments must have one batch size, got sizes "
                f"{sorted(sizes)}."
            )
        batch = sizes.pop()
        if batch % size:
            raise ValueError(
                f"the batch size {batch} must be divisible by microbatch_size={size}."
            )
        count = batch // size
        # Each batch axis becomes two: (example in the slice, slice).
        args, kwargs = on_batch(
            args,
            kwargs,
            lambda x, axis: x.reshape(
                *x.shape[:axis], size, count, *x.shape[axis + 1 :]
            ),
        )

        def call(index):
            sliced_args, sliced_kwargs = on_batch(
                args, kwargs, lambda x, axis: jnp.take(x, index, axis=axis + 1)
            )
            return fun(*sliced_args, **sliced_kwargs)

        combine = _combiner(accumulator, count)
        carry = combine.init(jax.eval_shape(call, 0))
        stop = count if num_real_microbatches is None else num_real_microbatches
        carry = jax.lax.fori_loop(
            0, stop, lambda i, c: combine.update(c, call(i), i), carry
        )
        return combine.finalize(carry)

    return microbatched
