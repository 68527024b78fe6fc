"""Minibatch index sampling inside compiled loops (layer 2).

Shuffling uses a keyed pseudo-random bijection of ``[0, n)`` evaluated only at
the positions a step needs, so an exact per-epoch permutation costs a few
integer operations per example instead of a sort of the whole data set.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

_ROUNDS = 4


def _fmix32(x: jax.Array) -> jax.Array:
    """MurmurHash3's 32-bit finalizer: a cheap, well-mixing bijection of uint32."""
    x = x ^ (x >> 16)
    x = x * jnp.uint32(0x85EBCA6B)
    x = x ^ (x >> 13)
    x = x * jnp.uint32(0xC2B2AE35)
    return x ^ (x >> 16)


def _round_keys(key: jax.Array, epoch: jax.Array) -> jax.Array:
    """Per-round multipliers (odd), offsets and xor masks as uint32, shape
    ``[rounds, 3]``, hashed from the key's bits and the epoch (much cheaper
    than drawing them with ``jax.random`` at every step)."""
    if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        key = jax.random.key_data(key)
    seed = jnp.uint32(0)
    for word in key.reshape(-1).astype(jnp.uint32):
        seed = _fmix32(seed ^ word)
    counter = jnp.arange(_ROUNDS * 3, dtype=jnp.uint32) * jnp.uint32(0x9E3779B9)
    words = _fmix32(_fmix32(seed + counter) ^ _fmix32(epoch.astype(jnp.uint32) + seed))
    words = words.reshape(_ROUNDS, 3)
    return words.at[:, 0].set(words[:, 0] | jnp.uint32(1))


def _mix(x: jax.Array, keys: jax.Array, bits: int) -> jax.Array:
    """A keyed bijection of ``[0, 2**bits)``: odd multiply, add, xor and
    xor-shift rounds, each invertible modulo ``2**bits``."""
    mask = jnp.uint32((1 << bits) - 1)
    shift = max(1, bits // 2)
    for r in range(_ROUNDS):
        x = (x * keys[r, 0] + keys[r, 1]) & mask
        x = x ^ (keys[r, 2] & mask)
        x = x ^ (x >> shift)
    return x


def permute(
    positions: jax.Array, n: int, key: jax.Array, epoch: jax.Array | int = 0
) -> jax.Array:
    """Image of ``positions`` (int values in ``[0, n)``) under a random
    permutation of ``[0, n)`` chosen by ``key`` and ``epoch``.

    The permutation of ``[0, 2**k)`` (``2**k >= n``) is restricted to ``[0, n)``
    by cycle walking, which keeps it a bijection; fewer than two walks are
    needed on average since ``n > 2**(k-1)``.
    """
    if n == 1:
        return jnp.zeros_like(positions)
    bits = (n - 1).bit_length()
    keys = _round_keys(key, jnp.asarray(epoch))
    x = _mix(positions.astype(jnp.uint32), keys, bits)

    def outside(x):
        return jnp.any(x >= n)

    def walk(x):
        return jnp.where(x >= n, _mix(x, keys, bits), x)

    x = jax.lax.while_loop(outside, walk, x)
    return x.astype(jnp.int32)


class Sampling(NamedTuple):
    """How a step draws its batch (static: changing one recompiles).

    With ``stream`` the data of a chunk is a `StreamChunk`: the chunk's batches
    stacked, one per step, made by the host; nothing is sampled."""

    num_examples: int
    batch_size: int  # == num_examples without replacement: the whole data
    shuffle: bool
    replace: bool
    stream: bool = False


class StreamChunk(NamedTuple):
    """The batches of one chunk of a streamed run: ``batches`` leaves are
    ``(rows, *batch_shape)``, row ``i`` the batch of step ``first + i``."""

    batches: Any
    first: jax.Array  # int32: the step of row 0


def _epoch_start(step: jax.Array, num_examples: int, batch_size: int):
    """The epoch of ``step`` and the position of its batch's first example."""
    epoch, within = jnp.divmod(step, num_examples // batch_size)
    return epoch, within * batch_size


def batch_indices(
    step: jax.Array,
    key: jax.Array,
    *,
    num_examples: int,
    batch_size: int,
    shuffle: bool,
    replace: bool,
) -> jax.Array:
    """Example indices of the minibatch used at ``step`` (int32, ``[batch_size]``).

    Without replacement an epoch is ``num_examples // batch_size`` steps and the
    examples left over at the end of an epoch are not used in that epoch;
    shuffled epochs each use a fresh permutation. `sample_batch` takes exactly
    these examples (in order it slices them instead of gathering).
    """
    if replace:
        return jax.random.randint(
            jax.random.fold_in(key, step), (batch_size,), 0, num_examples, jnp.int32
        )
    epoch, start = _epoch_start(step, num_examples, batch_size)
    positions = start + jnp.arange(batch_size, dtype=jnp.int32)
    if not shuffle:
        return positions
    return permute(positions, num_examples, key, epoch)


def sample_batch(sampling: Sampling, data: Any, step: jax.Array, key: jax.Array):
    """The batch of ``step``: its row of a `StreamChunk` (streams), the whole
    ``data`` (full batch without replacement), a slice of consecutive examples
    (in order), or the examples `batch_indices` names, gathered (shuffled or
    with replacement)."""
    if sampling.stream:
        row = step - data.first
        return jax.tree.map(
            lambda x: jax.lax.dynamic_index_in_dim(x, row, keepdims=False),
            data.batches,
        )
    n, size = sampling.num_examples, sampling.batch_size
    if data is None or (size == n and not sampling.replace):
        return data
    if not (sampling.shuffle or sampling.replace):
        start = _epoch_start(step, n, size)[1]
        return jax.tree.map(
            lambda x: jax.lax.dynamic_slice_in_dim(x, start, size, axis=0), data
        )
    indices = batch_indices(
        step,
        key,
        num_examples=n,
        batch_size=size,
        shuffle=sampling.shuffle,
        replace=sampling.replace,
    )
    return jax.tree.map(lambda x: jnp.take(x, indices, axis=0), data)
