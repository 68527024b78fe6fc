r"""A flax.linen CNN with BatchNorm and Dropout on the digits, trained by `fit`.

The model's variables split in two: ``variables["params"]`` is trained, and
``{"batch_stats": ...}`` is the model state that `jaxopt_lite.fit` carries
through the compiled loop (``state=``), never differentiated. The loss applies
the model in training mode with ``mutable=["batch_stats"]`` and returns the
updated statistics as the new state; dropout draws from the key `fit` hands
it every step (``step_key=True``). Evaluation uses the running statistics and
no dropout. Reaches about 98% test accuracy. Needs flax and scikit-learn.

Run it::

    python -m jaxopt_lite.examples.cnn_flax_linen --out plots/
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax

from jaxopt_lite.examples import _digits_cnn


def build(key: jax.Array, x: jax.Array) -> tuple:
    """``(params, state, loss_fn, eval_fn)`` of the linen CNN."""
    import flax.linen as nn

    class CNN(nn.Module):
        @nn.compact
        def __call__(self, x, train: bool):
            for channels in _digits_cnn.CHANNELS:
                x = nn.Conv(channels, (3, 3))(x)
                x = nn.BatchNorm(
                    use_running_average=not train, momentum=_digits_cnn.MOMENTUM
                )(x)
                x = nn.relu(x)
            x = nn.max_pool(x, (2, 2), strides=(2, 2)).reshape(x.shape[0], -1)
            x = nn.Dropout(_digits_cnn.DROPOUT, deterministic=not train)(x)
            return nn.Dense(10)(x)

    model = CNN()
    variables = model.init(key, x[:1], train=False)
    params, state = variables["params"], {"batch_stats": variables["batch_stats"]}

    def loss_fn(params, state, batch, key):
        logits, new_state = model.apply(
            {"params": params, **state}, batch["x"], train=True,
            rngs={"dropout": key}, mutable=["batch_stats"],
        )  # fmt: skip
        return _digits_cnn.cross_entropy(logits, batch["y"]), new_state

    def eval_fn(params, state, data):
        logits: Any = model.apply({"params": params, **state}, data["x"], train=False)
        return {"accuracy": _digits_cnn.accuracy(logits, data["y"])}

    return params, state, loss_fn, eval_fn


def run(fast: bool = False, out: str | None = None, unroll: int | None = None) -> dict:
    """Train the CNN; returns ``test_accuracy``, ``accuracy_by_epoch``,
    ``steps``, ``time_s``, ``methods``, ``plots`` (``skipped="flax"`` and no
    numbers when flax is not installed). ``unroll`` is `jaxopt_lite.fit`'s:
    on CPU, steps compiled into one call (``None``: fit's choice, 8 for this
    CNN; ``1`` compiles the least, as the tests do)."""
    if _digits_cnn.missing("flax"):
        return _digits_cnn.skipped("flax")
    train, test = _digits_cnn.load_images()
    params, state, loss_fn, eval_fn = build(jax.random.key(0), train["x"])
    result = _digits_cnn.train(
        "flax.linen", loss_fn, eval_fn, params, state, train, test, fast, unroll
    )
    return _digits_cnn.report("flax.linen", result, out, "cnn_flax_linen.png")


def main(argv: Sequence[str] | None = None) -> None:
    """Print the test accuracy; ``--fast`` and ``--out DIR`` as for `run`."""
    _digits_cnn.main(__doc__, run, "flax", argv)


if __name__ == "__main__":
    main()
