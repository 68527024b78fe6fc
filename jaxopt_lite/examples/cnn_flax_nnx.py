r"""A flax.nnx CNN with BatchNorm and Dropout on the digits, trained by `fit`.

``nnx.split(model, nnx.Param, nnx.BatchStat)`` separates the graph definition,
the trained parameters and the batch statistics, which `jaxopt_lite.fit`
carries as the model state (``state=``). The loss rebuilds the model with
``nnx.merge``, runs it in training mode with dropout driven by the key `fit`
hands it every step (``step_key=True``: ``nnx.Dropout`` is built without an
RNG stream and called with ``rngs=key``), and returns the updated statistics
with ``nnx.state(model, nnx.BatchStat)``. The graph is split twice, once
after ``model.train()`` and once after ``model.eval()``, so evaluation uses
the running statistics. ``nnx.update(model, params, state)`` writes the
trained values back. Reaches about 98% test accuracy. Needs flax and
scikit-learn.

Run it::

    python -m jaxopt_lite.examples.cnn_flax_nnx --out plots/
"""

from __future__ import annotations

from collections.abc import Sequence

import jax

from jaxopt_lite.examples import _digits_cnn


def build(key: jax.Array) -> tuple:
    """``(model, params, state, loss_fn, eval_fn)`` of the nnx CNN."""
    from flax import nnx

    class CNN(nnx.Module):
        def __init__(self, rngs: nnx.Rngs):
            (c1, c2), kernel = _digits_cnn.CHANNELS, (3, 3)
            self.conv1 = nnx.Conv(1, c1, kernel, rngs=rngs)
            self.norm1 = nnx.BatchNorm(c1, momentum=_digits_cnn.MOMENTUM, rngs=rngs)
            self.conv2 = nnx.Conv(c1, c2, kernel, rngs=rngs)
            self.norm2 = nnx.BatchNorm(c2, momentum=_digits_cnn.MOMENTUM, rngs=rngs)
            self.dropout = nnx.Dropout(_digits_cnn.DROPOUT)  # keys come from fit
            self.out = nnx.Linear(4 * 4 * c2, 10, rngs=rngs)

        def __call__(self, x, key=None):
            x = nnx.relu(self.norm1(self.conv1(x)))
            x = nnx.relu(self.norm2(self.conv2(x)))
            x = nnx.max_pool(x, (2, 2), strides=(2, 2)).reshape(x.shape[0], -1)
            return self.out(self.dropout(x, rngs=key))

    model = CNN(nnx.Rngs(params=key))
    model.train()
    train_graph, params, state = nnx.split(model, nnx.Param, nnx.BatchStat)
    model.eval()
    eval_graph = nnx.graphdef(model)

    def loss_fn(params, state, batch, key):
        model = nnx.merge(train_graph, params, state, copy=True)
        logits = model(batch["x"], key)
        return _digits_cnn.cross_entropy(logits, batch["y"]), nnx.state(
            model, nnx.BatchStat
        )

    def eval_fn(params, state, data):
        logits = nnx.merge(eval_graph, params, state)(data["x"])
        return {"accuracy": _digits_cnn.accuracy(logits, data["y"])}

    return model, params, state, loss_fn, eval_fn


def run(fast: bool = False, out: str | None = None, unroll: int | None = None) -> dict:
    """Train the CNN; returns ``test_accuracy``, ``accuracy_by_epoch``,
    ``steps``, ``time_s``, ``methods``, ``plots`` (``skipped="flax"`` and no
    numbers when flax is not installed). ``unroll`` is `jaxopt_lite.fit`'s:
    on CPU, steps compiled into one call (``None``: fit's choice, 8 for this
    CNN; ``1`` compiles the least, as the tests do)."""
    if _digits_cnn.missing("flax"):
        return _digits_cnn.skipped("flax")
    train, test = _digits_cnn.load_images()
    _, params, state, loss_fn, eval_fn = build(jax.random.key(0))
    result = _digits_cnn.train(
        "flax.nnx", loss_fn, eval_fn, params, state, train, test, fast, unroll
    )
    return _digits_cnn.report("flax.nnx", result, out, "cnn_flax_nnx.png")


def main(argv: Sequence[str] | None = None) -> None:
    """Print the test accuracy; ``--fast`` and ``--out DIR`` as for `run`."""
    _digits_cnn.main(__doc__, run, "flax", argv)


if __name__ == "__main__":
    main()
