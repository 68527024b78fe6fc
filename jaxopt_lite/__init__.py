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
    # loops and drivers
]
