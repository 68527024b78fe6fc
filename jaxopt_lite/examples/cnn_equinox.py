r"""An equinox CNN with BatchNorm and Dropout on the digits, trained by `fit`.

``eqx.nn.make_with_state`` builds the model and its ``eqx.nn.State`` (the
batch-norm statistics), which `jaxopt_lite.fit` carries through the compiled
loop (``state=``). ``eqx.partition(model, eqx.is_inexact_array)`` leaves only
floating-point arrays in the trained ``params``; the loss reassembles the
model with ``eqx.combine`` and maps it over the batch with
``jax.vmap(..., axis_name="batch")``, the axis ``eqx.nn.BatchNorm`` averages
over. ``eqx.nn.Dropout`` draws from the key `fit` hands the loss every step
(``step_key=True``), split per example; evaluation runs the model under
``eqx.nn.inference_mode``. Reaches about 98% test accuracy. Needs equinox and
scikit-learn.

Run it::

    python -m jaxopt_lite.examples.cnn_equinox --out plots/
"""

from __future__ import annotations

from collections.abc import Sequence

import jax

from jaxopt_lite.examples import _digits_cnn


def build(key: jax.Array) -> tuple:
    """``(params, static, state, loss_fn, eval_fn)`` of the equinox CNN."""
    import equinox as eqx

    class CNN(eqx.Module):
        convs: list
        norms: list
        dropout: eqx.nn.Dropout
        out: eqx.nn.Linear

        def __init__(self, key):
            keys = jax.random.split(key, 3)
            c1, c2 = _digits_cnn.CHANNELS
            self.convs = [
                eqx.nn.Conv2d(1, c1, 3, padding=1, key=keys[0]),
                eqx.nn.Conv2d(c1, c2, 3, padding=1, key=keys[1]),
            ]
            self.norms = [
                eqx.nn.BatchNorm(
                    c, axis_name="batch", momentum=_digits_cnn.MOMENTUM, mode="ema"
                )
                for c in (c1, c2)
            ]
            self.dropout = eqx.nn.Dropout(_digits_cnn.DROPOUT)
            self.out = eqx.nn.Linear(4 * 4 * c2, 10, key=keys[2])

        def __call__(self, x, state, key):  # one image, channels first
            for conv, norm in zip(self.convs, self.norms, strict=True):
                x, state = norm(conv(x), state)
                x = jax.nn.relu(x)
            x = eqx.nn.MaxPool2d(2, 2)(x).reshape(-1)
            return self.out(self.dropout(x, key=key)), state

    model, state = eqx.nn.make_with_state(CNN)(key)
    params, static = eqx.partition(model, eqx.is_inexact_array)

    def images(x):  # (n, 8, 8, 1) -> (n, 1, 8, 8)
        return x.transpose(0, 3, 1, 2)

    def loss_fn(params, state, batch, key):
        model = eqx.combine(params, static)
        keys = jax.random.split(key, batch["x"].shape[0])
        logits, state = jax.vmap(
            model, axis_name="batch", in_axes=(0, None, 0), out_axes=(0, None)
        )(images(batch["x"]), state, keys)
        return _digits_cnn.cross_entropy(logits, batch["y"]), state

    def eval_fn(params, state, data):
        model = eqx.nn.inference_mode(eqx.combine(params, static))
        logits, _ = jax.vmap(
            model, axis_name="batch", in_axes=(0, None, None), out_axes=(0, None)
        )(images(data["x"]), state, None)
        return {"accuracy": _digits_cnn.accuracy(logits, data["y"])}

    return params, static, state, loss_fn, eval_fn


def run(fast: bool = False, out: str | None = None, unroll: int | None = None) -> dict:
    """Train the CNN; returns ``test_accuracy``, ``accuracy_by_epoch``,
    ``steps``, ``time_s``, ``methods``, ``plots`` (``skipped="equinox"`` and
    no numbers when equinox is not installed). ``unroll`` is
    `jaxopt_lite.fit`'s: on CPU, steps compiled into one call (``None``: fit's
    choice, 8 for this CNN; ``1`` compiles the least, as the tests do)."""
    if _digits_cnn.missing("equinox"):
        return _digits_cnn.skipped("equinox")
    train, test = _digits_cnn.load_images()
    params, _, state, loss_fn, eval_fn = build(jax.random.key(0))
    result = _digits_cnn.train(
        "equinox", loss_fn, eval_fn, params, state, train, test, fast, unroll
    )
    return _digits_cnn.report("equinox", result, out, "cnn_equinox.png")


def main(argv: Sequence[str] | None = None) -> None:
    """Print the test accuracy; ``--fast`` and ``--out DIR`` as for `run`."""
    _digits_cnn.main(__doc__, run, "equinox", argv)


if __name__ == "__main__":
    main()
