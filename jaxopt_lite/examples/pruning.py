r"""Gradual magnitude pruning of the digits MLP to 90% zero weights, at dense accuracy.

The MLP of `digits_mlp` (same data split, layers and loss) is trained twice by
`jaxopt_lite.fit`, for the same number of epochs from the same initial
weights: once dense with `jaxopt_lite.adam`, and once with
`jaxopt_lite.prune_by_magnitude` chained after adam,

    jol.chain(jol.adam(lr), jol.prune_by_magnitude(schedule))

(the dense run is the same chain with a final sparsity of 0, which changes
none of adam's updates, so that both runs share one compiled program), which
zeroes the smallest-magnitude entries of every weight matrix (biases are
left dense) as the sparsity target of Zhu and Gupta's gradual schedule
(`jaxopt_lite.polynomial_sparsity_schedule`) rises,

$$
s_t = s_f \left(1 - \frac{\tau_t - t_0}{t_1 - t_0}\right)^3 \text{ below } s_f,
\qquad \tau_t = t_0 + \Delta t \left\lfloor \frac{t - t_0}{\Delta t} \right\rfloor,
$$

from 0 at step $t_0$ to $s_f = 0.9$ at step $t_1$, one rise per epoch
($\Delta t$), then trains on for the remaining epochs with the pruned weights
held at exactly zero. The test set is touched once per model, at the end.

Needs scikit-learn (``pip install 'jaxopt-lite[examples]'``).

Run it::

    python -m jaxopt_lite.examples.pruning --out plots/
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

import jaxopt_lite as jol
from jaxopt_lite.examples import _common, digits_mlp


def run(fast: bool = False, out: str | None = None) -> dict:
    """Train the digits MLP dense and pruned to 90% sparse weight matrices.

    Args:
        fast: one hidden layer of 256 units, adam(3e-3) and 20 epochs
            (pruning from epoch 2 to epoch 12), instead of two layers (256 and
            128 units), adam(1e-3) and 100 epochs (pruning from epoch 10 to
            60).
        out: a folder for the PNG plot (``pruning.png``), or ``None``.

    Returns:
        A dict with ``dense_test_accuracy``, ``pruned_test_accuracy``,
        ``accuracy_drop`` (dense minus pruned), ``target_sparsity``,
        ``sparsity`` (the fraction of weight-matrix entries that are exactly
        zero in the pruned model), ``sparsity_of_state`` (what
        `jaxopt_lite.sparsity_of` reads from the optimizer state),
        ``zero_weights`` and ``weights`` (counts over the weight matrices),
        ``dense_zero_weights``, ``epochs``, ``steps``, ``layout``,
        ``learning_rate``, ``methods`` (rows for the demo table), ``time_s``
        and ``plots``.
    """
    train, val, test = digits_mlp.load_data()
    hidden, lr, epochs = ((256,), 3e-3, 20) if fast else ((256, 128), 1e-3, 100)
    batch_size, target = 32, 0.9
    steps_per_epoch = len(train["y"]) // batch_size
    steps = epochs * steps_per_epoch

    def pruned_adam(final_sparsity: float):
        schedule = jol.polynomial_sparsity_schedule(
            final_sparsity,
            begin_step=epochs // 10 * steps_per_epoch,
            end_step=epochs * 6 // 10 * steps_per_epoch,
            frequency=steps_per_epoch,
        )
        return jol.chain(jol.adam(lr), jol.prune_by_magnitude(schedule)), schedule

    sizes = [64, *hidden, 10]
    layout = "-".join(str(n) for n in sizes)
    params = digits_mlp.init_mlp(jax.random.key(0), sizes)
    # The dense run prunes to sparsity 0, which leaves adam's updates as they
    # are: fit then runs both trainings with one compiled program.
    (dense, _), (sparse, schedule) = pruned_adam(0.0), pruned_adam(target)
    optimizers = {"dense": dense, "pruned": sparse}
    results, tests, times = {}, {}, {}
    for name, optimizer in optimizers.items():
        with _common.timer() as t:
            results[name] = jol.fit(
                digits_mlp.loss_fn,
                params,
                optimizer,
                train,
                steps=steps,
                batch_size=batch_size,
                key=jax.random.key(1),
                eval_fn=digits_mlp.eval_fn,
                eval_data=val,
                log_every=steps_per_epoch,
                progress=False,
            )
            tests[name] = jax.device_get(digits_mlp.eval_fn(results[name].params, test))
        times[name] = t["s"]

    def zeros(layers: list[dict]) -> int:
        return sum(int(jnp.sum(layer["w"] == 0)) for layer in layers)

    weights = sum(layer["w"].size for layer in params)
    pruned = results["pruned"]
    zero_weights = zeros(pruned.params)
    accuracy = {name: float(m["accuracy"]) for name, m in tests.items()}

    def draw() -> list[str]:
        fig, (ax_acc, ax_sparse) = _common.new_figure(2)
        for name, result in results.items():
            epoch = result.history["eval_step"] / steps_per_epoch
            ax_acc.plot(epoch, result.history["eval_accuracy"], label=name)
        ax_acc.set(
            xlabel="epoch",
            ylabel="validation accuracy",
            title=f"digits MLP {layout}",
            ylim=(0.8, 1.0),
        )
        ax_acc.legend(fontsize=8, loc="lower right")
        step = np.arange(steps + 1)
        ax_sparse.plot(step / steps_per_epoch, np.asarray(schedule(step)))
        ax_sparse.set(
            xlabel="epoch",
            ylabel="sparsity of the weight matrices",
            title="polynomial_sparsity_schedule",
        )
        return [_common.save_figure(fig, out, "pruning.png")]

    plots = _common.maybe_plot(out, draw)
    return {
        "dense_test_accuracy": accuracy["dense"],
        "pruned_test_accuracy": accuracy["pruned"],
        "accuracy_drop": accuracy["dense"] - accuracy["pruned"],
        "target_sparsity": target,
        "sparsity": zero_weights / weights,
        "sparsity_of_state": float(jol.sparsity_of(pruned.opt_state)),
        "zero_weights": zero_weights,
        "weights": weights,
        "dense_zero_weights": zeros(results["dense"].params),
        "epochs": epochs,
        "steps": pruned.step,
        "layout": layout,
        "learning_rate": lr,
        "methods": [
            {
                "method": f"adam({lr:g}), MLP {layout}, {label}",
                "steps": results[name].step,
                "final_loss": float(results[name].history["loss"][-1]),
                "accuracy": accuracy[name],
                "time_s": times[name],
            }
            for name, label in (("dense", "dense"), ("pruned", f"{target:.0%} pruned"))
        ],
        "time_s": sum(times.values()),
        "plots": plots,
    }


def main(argv: Sequence[str] | None = None) -> None:
    """Print a short report; ``--fast`` and ``--out DIR`` as for `run`."""
    args = _common.parse_args(__doc__, argv)
    r = run(fast=args.fast, out=args.out)
    print(
        f"digits MLP {r['layout']}, adam({r['learning_rate']:g}), "
        f"{r['epochs']} epochs ({r['steps']} steps) each"
    )
    print(f"  dense:  test accuracy {r['dense_test_accuracy']:.2%}")
    print(
        f"  pruned: test accuracy {r['pruned_test_accuracy']:.2%} with "
        f"{r['zero_weights']} of {r['weights']} weights zero "
        f"({r['sparsity']:.1%}; target {r['target_sparsity']:.0%})"
    )
    print(f"  accuracy lost to pruning: {100 * r['accuracy_drop']:.2f} points")
    print(f"  time: {r['time_s']:.2f} s (including compilation)")
    _common.report_plots(args.out, r["plots"])


if __name__ == "__main__":
    main()
