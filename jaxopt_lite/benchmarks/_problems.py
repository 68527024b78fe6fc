"""The problems the benchmarks train: an MLP on digits, Rosenbrock, logistic
regression, and the same MLP in PyTorch."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

BATCH_SIZE = 128
NUM_CLASSES = 10


def digits() -> tuple[dict[str, np.ndarray], str]:
    """scikit-learn's 1,797 8x8 digits as ``{"x": float32 (n, 64) in [0, 1],
    "y": int32 (n,)}`` and the name of the data set. Without scikit-learn, random
    data of the same shapes (the timings do not depend on the values)."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        rng = np.random.default_rng(0)
        x = rng.random((1797, 64), dtype=np.float32)
        y = rng.integers(0, NUM_CLASSES, 1797).astype(np.int32)
        return {"x": x, "y": y}, "random 1797x64 (scikit-learn not installed)"
    x, y = load_digits(return_X_y=True)
    return (
        {"x": (x / 16.0).astype(np.float32), "y": y.astype(np.int32)},
        "sklearn load_digits (1797x64)",
    )


def init_mlp(key: jax.Array, hidden: int, inputs: int = 64) -> dict[str, jax.Array]:
    """He-initialized ``inputs -> hidden -> 10`` MLP parameters."""
    k1, k2 = jax.random.split(key)
    return {
        "w1": jax.random.normal(k1, (inputs, hidden)) * jnp.sqrt(2.0 / inputs),
        "b1": jnp.zeros(hidden),
        "w2": jax.random.normal(k2, (hidden, NUM_CLASSES)) * jnp.sqrt(2.0 / hidden),
        "b2": jnp.zeros(NUM_CLASSES),
    }


def mlp_loss(params: dict[str, jax.Array], batch: dict[str, jax.Array]) -> jax.Array:
    """Mean softmax cross-entropy of the MLP on ``batch``."""
    h = jax.nn.relu(batch["x"] @ params["w1"] + params["b1"][None, :])
    logits = h @ params["w2"] + params["b2"][None, :]
    logp = jax.nn.log_softmax(logits)
    return -jnp.mean(jnp.take_along_axis(logp, batch["y"][:, None], axis=1))


def rosenbrock(x: jax.Array) -> jax.Array:
    """The n-dimensional Rosenbrock function, minimum 0 at ``x = 1``."""
    return jnp.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)


def logistic_objective(data: dict[str, np.ndarray], l2: float = 1e-3):
    """Multinomial logistic regression on ``data`` with an L2 penalty, as a
    function of ``{"w": (64, 10), "b": (10,)}`` (strongly convex)."""
    x = jnp.asarray(data["x"])
    y = jnp.asarray(data["y"])

    def objective(params: dict[str, jax.Array]) -> jax.Array:
        logits = x @ params["w"] + params["b"][None, :]
        logp = jax.nn.log_softmax(logits)
        nll = -jnp.mean(jnp.take_along_axis(logp, y[:, None], axis=1))
        return nll + 0.5 * l2 * jnp.sum(params["w"] ** 2)

    return objective


def torch_mlp(torch: Any, params: dict[str, jax.Array]) -> Any:
    """``torch.nn.Sequential(Linear, ReLU, Linear)`` holding copies of ``params``."""
    w1, b1 = np.asarray(params["w1"]), np.asarray(params["b1"])
    w2, b2 = np.asarray(params["w2"]), np.asarray(params["b2"])
    model = torch.nn.Sequential(
        torch.nn.Linear(w1.shape[0], w1.shape[1]),
        torch.nn.ReLU(),
        torch.nn.Linear(w2.shape[0], w2.shape[1]),
    )
    with torch.no_grad():
        model[0].weight.copy_(torch.from_numpy(w1.T.copy()))
        model[0].bias.copy_(torch.from_numpy(b1.copy()))
        model[2].weight.copy_(torch.from_numpy(w2.T.copy()))
        model[2].bias.copy_(torch.from_numpy(b2.copy()))
    return model
