r"""Training flax (linen and nnx) and equinox models with `jaxopt_lite.fit`.

`jaxopt_lite.fit` needs two things: a pytree of floating-point parameters and
a pure ``loss_fn(params, batch)``. Every JAX neural-network library can give
both; only the way of separating parameters from the model differs:

- **flax.linen**: ``variables = model.init(key, x)``; the parameters are
  ``variables["params"]`` and the loss calls
  ``model.apply({"params": params}, x)``.
- **flax.nnx**: ``graphdef, params, rest = nnx.split(model, nnx.Param, ...)``;
  the loss rebuilds the model with ``nnx.merge(graphdef, params, rest)``, and
  ``nnx.update(model, result.params)`` writes the trained values back.
- **equinox**: a model is itself a pytree, but it may also hold non-arrays
  (activation functions, integer sizes, flags). Split it with
  ``params, static = eqx.partition(model, eqx.is_inexact_array)`` so that
  ``params`` holds only the floating-point arrays (the rest replaced by
  ``None``) and ``static`` everything else; the loss reassembles it with
  ``eqx.combine(params, static)``, and so does the caller after training.

Models with batch norm (a state that is not trained by gradients) and dropout
(a fresh key every step) are shown in the CNN examples `cnn_flax_linen`,
`cnn_flax_nnx` and `cnn_equinox`, with ``fit(..., state=, step_key=True)``.

All three fit the same noisy curve $y = \sin(3x) + \varepsilon$ with a small
tanh MLP and `jaxopt_lite.adam`. Each part is skipped, with a message, when its
library is not installed (``pip install 'jaxopt-lite[examples]'`` installs
both), and the command then exits with an error; neither is a dependency of
jaxopt_lite itself.

Run it::

    python -m jaxopt_lite.examples.flax_equinox --out plots/
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

import jaxopt_lite as jol
from jaxopt_lite.examples import _common

HIDDEN = 32
LIBRARIES = {"flax.linen": "flax", "flax.nnx": "flax", "equinox": "equinox"}


def make_data(n: int = 256, seed: int = 0) -> dict:
    """``{"x": (n, 1), "y": (n, 1)}`` with ``y = sin(3x) + 0.1·noise``."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-2.0, 2.0, size=(n, 1)).astype(np.float32)
    y = (np.sin(3.0 * x) + 0.1 * rng.normal(size=(n, 1))).astype(np.float32)
    return {"x": x, "y": y}


def mse(prediction, target):
    return jnp.mean((prediction - target) ** 2)


def linen_setup(key: jax.Array, x: jax.Array) -> tuple:
    """A flax.linen MLP: returns ``(params, loss_fn, predict)``."""
    import flax.linen as nn

    class MLP(nn.Module):
        @nn.compact
        def __call__(self, x):
            x = jnp.tanh(nn.Dense(HIDDEN)(x))
            x = jnp.tanh(nn.Dense(HIDDEN)(x))
            return nn.Dense(1)(x)

    model = MLP()
    params = model.init(key, x[:1])["params"]

    def predict(params, x):
        return model.apply({"params": params}, x)

    def loss_fn(params, batch):
        return mse(predict(params, batch["x"]), batch["y"])

    return params, loss_fn, predict


def nnx_setup(key: jax.Array, x: jax.Array) -> tuple:
    """A flax.nnx MLP: returns ``(params, loss_fn, predict)``."""
    from flax import nnx

    class MLP(nnx.Module):
        def __init__(self, rngs: nnx.Rngs):
            self.hidden1 = nnx.Linear(1, HIDDEN, rngs=rngs)
            self.hidden2 = nnx.Linear(HIDDEN, HIDDEN, rngs=rngs)
            self.out = nnx.Linear(HIDDEN, 1, rngs=rngs)

        def __call__(self, x):
            x = jnp.tanh(self.hidden1(x))
            x = jnp.tanh(self.hidden2(x))
            return self.out(x)

    model = MLP(nnx.Rngs(params=key))
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)

    def predict(params, x):
        return nnx.merge(graphdef, params, rest)(x)

    def loss_fn(params, batch):
        return mse(predict(params, batch["x"]), batch["y"])

    return params, loss_fn, predict


def equinox_setup(key: jax.Array, x: jax.Array) -> tuple:
    """An equinox MLP: returns ``(params, loss_fn, predict)``."""
    import equinox as eqx

    model = eqx.nn.MLP(1, 1, HIDDEN, depth=2, activation=jnp.tanh, key=key)
    params, static = eqx.partition(model, eqx.is_inexact_array)

    def predict(params, x):
        return jax.vmap(eqx.combine(params, static))(x)

    def loss_fn(params, batch):
        return mse(predict(params, batch["x"]), batch["y"])

    return params, loss_fn, predict


SETUPS: dict[str, Callable] = {
    "flax.linen": linen_setup,
    "flax.nnx": nnx_setup,
    "equinox": equinox_setup,
}


def run(fast: bool = False, out: str | None = None) -> dict:
    """Fit the same curve with each installed library.

    Args:
        fast: 100 epochs instead of 400.
        out: a folder for the PNG plot (``flax_equinox.png``), or ``None``.

    Returns:
        A dict with, for each of ``"flax.linen"``, ``"flax.nnx"`` and
        ``"equinox"``, ``{"loss", "initial_loss", "steps", "time_s"}`` (full-data
        mean squared error after and before training) or ``None`` when the
        library is missing; ``skipped`` (the missing libraries' import names),
        ``methods`` (rows for the demo table), ``time_s`` and ``plots``.
    """
    data = make_data()
    jdata = jax.tree.map(jnp.asarray, data)
    epochs = 100 if fast else 400
    results: dict[str, dict | None] = {}
    fits: dict[str, np.ndarray] = {}
    skipped: list[str] = []
    rows = []
    total = 0.0
    grid = jnp.linspace(-2.0, 2.0, 200)[:, None]
    for name, setup in SETUPS.items():
        if importlib.util.find_spec(LIBRARIES[name]) is None:
            results[name] = None
            if LIBRARIES[name] not in skipped:
                skipped.append(LIBRARIES[name])
            continue
        params, loss_fn, predict = setup(jax.random.key(0), jdata["x"])
        with _common.timer() as t:
            result = jol.fit(
                loss_fn,
                params,
                jol.adam(1e-2),
                data,
                epochs=epochs,
                batch_size=32,
                key=jax.random.key(1),
                progress=False,
            )
            final = float(loss_fn(result.params, jdata))
        total += t["s"]
        results[name] = {
            "loss": final,
            "initial_loss": float(loss_fn(params, jdata)),
            "steps": result.step,
            "time_s": t["s"],
        }
        fits[name] = np.asarray(predict(result.params, grid))[:, 0]
        rows.append(
            {
                "method": f"adam(1e-2), {name} MLP",
                "steps": result.step,
                "final_loss": final,
                "accuracy": None,
                "time_s": t["s"],
            }
        )

    def draw() -> list[str]:
        if not fits:
            return []
        fig, (ax,) = _common.new_figure(1, width=5.4, height=3.6)
        ax.plot(data["x"][:, 0], data["y"][:, 0], ".", color="lightgray", label="data")
        for name, curve in fits.items():
            ax.plot(grid[:, 0], curve, label=name)
        ax.set(xlabel="x", ylabel="y", title="the same MLP in three libraries")
        ax.legend(fontsize=8)
        return [_common.save_figure(fig, out, "flax_equinox.png")]

    plots = _common.maybe_plot(out, draw)
    return {
        **results,
        "skipped": skipped,
        "methods": rows,
        "time_s": total,
        "plots": plots,
    }


def main(argv: Sequence[str] | None = None) -> None:
    """Print a short report; ``--fast`` and ``--out DIR`` as for `run`."""
    args = _common.parse_args(__doc__, argv)
    r = run(fast=args.fast, out=args.out)
    print("fitting y = sin(3x) + noise with a 2-hidden-layer tanh MLP, adam(1e-2)")
    for name in SETUPS:
        part = r[name]
        if part is None:
            print(
                f"  {name:<11} skipped: {LIBRARIES[name]} is not installed "
                f"(pip install 'jaxopt-lite[examples]', or pip install "
                f"{LIBRARIES[name]})"
            )
        else:
            print(
                f"  {name:<11} mse {part['initial_loss']:.4f} -> {part['loss']:.4f} "
                f"in {part['steps']} steps, {part['time_s']:.2f} s"
            )
    _common.report_plots(args.out, r["plots"])
    if r["skipped"]:  # a script or CI must see that parts did not run
        raise SystemExit(f"skipped: needs {', '.join(r['skipped'])}")


if __name__ == "__main__":
    main()
