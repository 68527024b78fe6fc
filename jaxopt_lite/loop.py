"""The loop core, public: for people who write their own training loop.

`fit` and `sweep` are drivers around these functions; they are pure,
jittable and vmappable, and they are the stable lower layer of the package
(see the "Your own loop" guide). A loop is a `TrainState` made by
`init_train_state`, advanced by `train_step` (one step) or `run_chunk` (many
steps in one ``lax.while_loop``, with history rows, evaluation and early
stopping at their exact steps), with the loss wrapped once in the canonical
form by `Loss`.

Example:
    >>> import jax, jax.numpy as jnp, jaxopt_lite as jol
    >>> from jaxopt_lite import loop
    >>> data = {"x": jnp.linspace(-1, 1, 32)}
    >>> loss = loop.Loss(lambda p, b: jnp.mean((p - b["x"]) ** 2), loop.LossForm())
    >>> cfg = loop.LoopConfig(loop.Sampling(32, 8, shuffle=True, replace=False),
    ...                       log_every=4, chunk_size=8)
    >>> opt = jol.sgd(0.5)
    >>> state = loop.init_train_state(jnp.ones([]), None, opt, jax.random.key(0), cfg)
    >>> state, rows = jax.jit(loop.run_chunk, static_argnums=(0, 1, 2))(
    ...     loss, opt, cfg, state, data, 8, 8)
    >>> int(state.step), rows.train["loss"][rows.train_ran].shape
    (8, (2,))
"""

from jaxopt_lite._loop.chunk import run_chunk as run_chunk
from jaxopt_lite._loop.history import ChunkRows as ChunkRows
from jaxopt_lite._loop.loss import Eval as Eval
from jaxopt_lite._loop.loss import Loss as Loss
from jaxopt_lite._loop.loss import LossForm as LossForm
from jaxopt_lite._loop.sampling import Sampling as Sampling
from jaxopt_lite._loop.sampling import batch_indices as batch_indices
from jaxopt_lite._loop.stopping import StopConfig as StopConfig
from jaxopt_lite._loop.train import EvalConfig as EvalConfig
from jaxopt_lite._loop.train import LoopConfig as LoopConfig
from jaxopt_lite._loop.train import TrainState as TrainState
from jaxopt_lite._loop.train import init_train_state as init_train_state
from jaxopt_lite._loop.train import step_key as step_key
from jaxopt_lite._loop.train import train_step as train_step

__all__ = [
    "ChunkRows",
    "Eval",
    "EvalConfig",
    "LoopConfig",
    "Loss",
    "LossForm",
    "Sampling",
    "StopConfig",
    "TrainState",
    "batch_indices",
    "init_train_state",
    "run_chunk",
    "step_key",
    "train_step",
]
