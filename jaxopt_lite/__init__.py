"""jaxopt_lite: optax-compatible first-order optimizers and compiled loops."""

# --- transforms (_transforms.py) ---
from jaxopt_lite._transforms import ScalarOrSchedule as ScalarOrSchedule
from jaxopt_lite._transforms import current_learning_rate as current_learning_rate
from jaxopt_lite._transforms import scale as scale
from jaxopt_lite._transforms import scale_by_learning_rate as scale_by_learning_rate
from jaxopt_lite._transforms import scale_by_schedule as scale_by_schedule

# --- combinators (_combine.py) ---
from jaxopt_lite._combine import chain as chain

# --- schedules (_schedules.py) ---

# --- optimizers (_optimizers*.py) ---

# --- optimizers part B ---
from jaxopt_lite._clipping import adaptive_grad_clip as adaptive_grad_clip
from jaxopt_lite._clipping import centralize as centralize
from jaxopt_lite._clipping import clip as clip
from jaxopt_lite._clipping import clip_by_block_rms as clip_by_block_rms
from jaxopt_lite._clipping import clip_by_global_norm as clip_by_global_norm
from jaxopt_lite._clipping import zero_nans as zero_nans
from jaxopt_lite._factored import scale_by_factored_rms as scale_by_factored_rms
from jaxopt_lite._factored import scale_by_param_block_rms as scale_by_param_block_rms
from jaxopt_lite._noise import add_noise as add_noise
from jaxopt_lite._polyak import scale_by_polyak as scale_by_polyak
from jaxopt_lite._sign_trust import scale_by_lion as scale_by_lion
from jaxopt_lite._sign_trust import scale_by_novograd as scale_by_novograd
from jaxopt_lite._sign_trust import scale_by_sign as scale_by_sign
from jaxopt_lite._sign_trust import scale_by_trust_ratio as scale_by_trust_ratio

# --- checkpoints (_checkpoint.py) ---
from jaxopt_lite._checkpoint import Checkpoint as Checkpoint
from jaxopt_lite._checkpoint import has_checkpoint as has_checkpoint
from jaxopt_lite._checkpoint import load_checkpoint as load_checkpoint
from jaxopt_lite._checkpoint import save_checkpoint as save_checkpoint

# --- loops and drivers ---

__version__ = "0.1.0"

__all__ = [
    # transforms
    "ScalarOrSchedule",
    "current_learning_rate",
    "scale",
    "scale_by_learning_rate",
    "scale_by_schedule",
    # combinators
    "chain",
    # schedules
    # optimizers
    # optimizers part B
    "adaptive_grad_clip",
    "centralize",
    "clip",
    "clip_by_block_rms",
    "clip_by_global_norm",
    "zero_nans",
    "scale_by_factored_rms",
    "scale_by_param_block_rms",
    "add_noise",
    "scale_by_polyak",
    "scale_by_lion",
    "scale_by_novograd",
    "scale_by_sign",
    "scale_by_trust_ratio",
    # checkpoints
    "Checkpoint",
    "has_checkpoint",
    "load_checkpoint",
    "save_checkpoint",
    # loops and drivers
]
