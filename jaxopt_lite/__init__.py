"""jaxopt_lite: optax-compatible first-order optimizers and compiled loops."""

# --- primitive transforms: scaling, momentum, weight decay, Adam-family and
# RMS-like moments, clipping, noise, factored moments, sign, layer-wise and
# Polyak steps (_transforms/) ---
from jaxopt_lite._transforms.scaling import ScalarOrSchedule as ScalarOrSchedule
from jaxopt_lite._transforms.weight_decay import (
    add_decayed_weights as add_decayed_weights,
)
from jaxopt_lite._transforms.scaling import (
    current_learning_rate as current_learning_rate,
)
from jaxopt_lite._transforms.scaling import scale as scale
from jaxopt_lite._transforms.scaling import (
    scale_by_learning_rate as scale_by_learning_rate,
)
from jaxopt_lite._transforms.scaling import scale_by_schedule as scale_by_schedule
from jaxopt_lite._transforms.sgd import trace as trace
from jaxopt_lite._transforms.adam import scale_by_adam as scale_by_adam
from jaxopt_lite._transforms.adam import scale_by_adamax as scale_by_adamax
from jaxopt_lite._transforms.adam import scale_by_amsgrad as scale_by_amsgrad
from jaxopt_lite._transforms.adam_variants import scale_by_belief as scale_by_belief
from jaxopt_lite._transforms.adam_variants import scale_by_radam as scale_by_radam
from jaxopt_lite._transforms.adam_variants import scale_by_yogi as scale_by_yogi
from jaxopt_lite._transforms.rms import scale_by_adadelta as scale_by_adadelta
from jaxopt_lite._transforms.rms import scale_by_rms as scale_by_rms
from jaxopt_lite._transforms.rms import scale_by_rss as scale_by_rss
from jaxopt_lite._transforms.rms import scale_by_stddev as scale_by_stddev
from jaxopt_lite._transforms.clipping import adaptive_grad_clip as adaptive_grad_clip
from jaxopt_lite._transforms.clipping import centralize as centralize
from jaxopt_lite._transforms.clipping import clip as clip
from jaxopt_lite._transforms.clipping import clip_by_block_rms as clip_by_block_rms
from jaxopt_lite._transforms.clipping import clip_by_global_norm as clip_by_global_norm
from jaxopt_lite._transforms.clipping import zero_nans as zero_nans
from jaxopt_lite._transforms.factored import (
    scale_by_factored_rms as scale_by_factored_rms,
)
from jaxopt_lite._transforms.factored import (
    scale_by_param_block_rms as scale_by_param_block_rms,
)
from jaxopt_lite._transforms.noise import add_noise as add_noise
from jaxopt_lite._transforms.polyak import scale_by_polyak as scale_by_polyak
from jaxopt_lite._transforms.sign import scale_by_lion as scale_by_lion
from jaxopt_lite._transforms.layerwise import scale_by_novograd as scale_by_novograd
from jaxopt_lite._transforms.sign import scale_by_sign as scale_by_sign
from jaxopt_lite._transforms.layerwise import (
    scale_by_trust_ratio as scale_by_trust_ratio,
)

# --- combinators: chain, masks, partitions, inject_hyperparams, skipping,
# accumulation, averaging, plateaus (_combinators/) ---
from jaxopt_lite._combinators.accumulate import (
    AccumulateGradientsState as AccumulateGradientsState,
)
from jaxopt_lite._combinators.accumulate import (
    accumulate_gradients as accumulate_gradients,
)
from jaxopt_lite._combinators.averaging import EmaParamsState as EmaParamsState
from jaxopt_lite._combinators.averaging import LookaheadState as LookaheadState
from jaxopt_lite._combinators.averaging import ema_of as ema_of
from jaxopt_lite._combinators.averaging import ema_params as ema_params
from jaxopt_lite._combinators.averaging import lookahead as lookahead
from jaxopt_lite._combinators.averaging import slow_params_of as slow_params_of
from jaxopt_lite._combinators.masking import MaskedState as MaskedState
from jaxopt_lite._combinators.masking import PartitionState as PartitionState
from jaxopt_lite._combinators.chain import chain as chain
from jaxopt_lite._combinators.masking import masked as masked
from jaxopt_lite._combinators.chain import named_chain as named_chain
from jaxopt_lite._combinators.masking import partition as partition
from jaxopt_lite._combinators.finite import ApplyIfFiniteState as ApplyIfFiniteState
from jaxopt_lite._combinators.finite import apply_if_finite as apply_if_finite
from jaxopt_lite._combinators.inject import (
    InjectHyperparamsState as InjectHyperparamsState,
)
from jaxopt_lite._combinators.inject import inject_hyperparams as inject_hyperparams
from jaxopt_lite._combinators.plateau import (
    ReduceLROnPlateauState as ReduceLROnPlateauState,
)
from jaxopt_lite._combinators.plateau import reduce_on_plateau as reduce_on_plateau

# --- schedules: decays, warm-ups and joins, piecewise and one-cycle
# (_schedules/) ---
from jaxopt_lite._schedules.decay import constant_schedule as constant_schedule
from jaxopt_lite._schedules.decay import cosine_decay_schedule as cosine_decay_schedule
from jaxopt_lite._schedules.decay import exponential_decay as exponential_decay
from jaxopt_lite._schedules.decay import inverse_time_decay as inverse_time_decay
from jaxopt_lite._schedules.decay import linear_schedule as linear_schedule
from jaxopt_lite._schedules.decay import polynomial_schedule as polynomial_schedule
from jaxopt_lite._schedules.decay import step_decay as step_decay
from jaxopt_lite._schedules.joined import join_schedules as join_schedules
from jaxopt_lite._schedules.joined import sgdr_schedule as sgdr_schedule
from jaxopt_lite._schedules.joined import (
    warmup_constant_schedule as warmup_constant_schedule,
)
from jaxopt_lite._schedules.joined import (
    warmup_cosine_decay_schedule as warmup_cosine_decay_schedule,
)
from jaxopt_lite._schedules.joined import (
    warmup_exponential_decay_schedule as warmup_exponential_decay_schedule,
)
from jaxopt_lite._schedules.piecewise import (
    cosine_onecycle_schedule as cosine_onecycle_schedule,
)
from jaxopt_lite._schedules.piecewise import (
    linear_onecycle_schedule as linear_onecycle_schedule,
)
from jaxopt_lite._schedules.piecewise import (
    piecewise_constant_schedule as piecewise_constant_schedule,
)
from jaxopt_lite._schedules.piecewise import (
    piecewise_interpolate_schedule as piecewise_interpolate_schedule,
)

# --- optimizers, each a chain of the primitives above (_optimizers/) ---
from jaxopt_lite._optimizers.adam_variants import adabelief as adabelief
from jaxopt_lite._optimizers.adam import adam as adam
from jaxopt_lite._optimizers.adam_variants import adamax as adamax
from jaxopt_lite._optimizers.adam import adamw as adamw
from jaxopt_lite._optimizers.adam_variants import amsgrad as amsgrad
from jaxopt_lite._optimizers.adam import nadam as nadam
from jaxopt_lite._optimizers.adam import nadamw as nadamw
from jaxopt_lite._optimizers.adam_variants import radam as radam
from jaxopt_lite._optimizers.adam_variants import yogi as yogi
from jaxopt_lite._optimizers.adaptive import adadelta as adadelta
from jaxopt_lite._optimizers.adaptive import adagrad as adagrad
from jaxopt_lite._optimizers.sgd import gd as gd
from jaxopt_lite._optimizers.adaptive import rmsprop as rmsprop
from jaxopt_lite._optimizers.sgd import sgd as sgd
from jaxopt_lite._optimizers.layerwise import lamb as lamb
from jaxopt_lite._optimizers.layerwise import lars as lars
from jaxopt_lite._optimizers.sign import lion as lion
from jaxopt_lite._optimizers.layerwise import novograd as novograd
from jaxopt_lite._optimizers.sign import sign_sgd as sign_sgd
from jaxopt_lite._optimizers.adafactor import adafactor as adafactor
from jaxopt_lite._optimizers.sgd import noisy_sgd as noisy_sgd
from jaxopt_lite._optimizers.sgd import polyak_sgd as polyak_sgd

# --- full-batch: L-BFGS and line searches (_transforms/, _optimizers/) ---
from jaxopt_lite._transforms.lbfgs import ScaleByLBFGSState as ScaleByLBFGSState
from jaxopt_lite._optimizers.lbfgs import lbfgs as lbfgs
from jaxopt_lite._transforms.lbfgs import scale_by_lbfgs as scale_by_lbfgs
from jaxopt_lite._transforms.backtracking import (
    BacktrackingLinesearchInfo as BacktrackingLinesearchInfo,
)
from jaxopt_lite._transforms.backtracking import (
    ScaleByBacktrackingLinesearchState as ScaleByBacktrackingLinesearchState,
)
from jaxopt_lite._transforms.zoom import (
    ScaleByZoomLinesearchState as ScaleByZoomLinesearchState,
)
from jaxopt_lite._transforms.zoom import ZoomLinesearchInfo as ZoomLinesearchInfo
from jaxopt_lite._transforms.backtracking import (
    scale_by_backtracking_linesearch as scale_by_backtracking_linesearch,
)
from jaxopt_lite._transforms.zoom import (
    scale_by_zoom_linesearch as scale_by_zoom_linesearch,
)

# --- checkpoints (_drivers/) ---
from jaxopt_lite._drivers.checkpoint import Checkpoint as Checkpoint
from jaxopt_lite._drivers.checkpoint import has_checkpoint as has_checkpoint
from jaxopt_lite._drivers.checkpoint import load_checkpoint as load_checkpoint
from jaxopt_lite._drivers.checkpoint import save_checkpoint as save_checkpoint

# --- loops and drivers: fit, minimize, loggers (_drivers/) ---
from jaxopt_lite._drivers.fit import EarlyStopping as EarlyStopping
from jaxopt_lite._drivers.fit import FitResult as FitResult
from jaxopt_lite._drivers.fit import fit as fit
from jaxopt_lite._drivers.minimize import MinimizeResult as MinimizeResult
from jaxopt_lite._drivers.minimize import minimize as minimize
from jaxopt_lite._drivers.lbfgsb import LBFGSB as LBFGSB
from jaxopt_lite._drivers.lbfgsb import LBFGSBState as LBFGSBState
from jaxopt_lite._drivers.lbfgsb import lbfgsb as lbfgsb
from jaxopt_lite._drivers.loggers import Callback as Callback
from jaxopt_lite._drivers.loggers import CSVLogger as CSVLogger
from jaxopt_lite._drivers.loggers import TensorBoardLogger as TensorBoardLogger

# --- sweeps (_drivers/) ---
from jaxopt_lite._drivers.sweep_result import SweepResult as SweepResult
from jaxopt_lite._drivers.sweep import sweep as sweep

__version__ = "0.1.0"

__all__ = [
    # primitive transforms
    "ScalarOrSchedule",
    "current_learning_rate",
    "scale",
    "scale_by_learning_rate",
    "scale_by_schedule",
    "trace",
    "add_decayed_weights",
    "scale_by_adadelta",
    "scale_by_rms",
    "scale_by_rss",
    "scale_by_stddev",
    "scale_by_adam",
    "scale_by_adamax",
    "scale_by_amsgrad",
    "scale_by_belief",
    "scale_by_radam",
    "scale_by_yogi",
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
    # combinators
    "chain",
    "named_chain",
    "masked",
    "MaskedState",
    "partition",
    "PartitionState",
    "inject_hyperparams",
    "InjectHyperparamsState",
    "apply_if_finite",
    "ApplyIfFiniteState",
    "accumulate_gradients",
    "AccumulateGradientsState",
    "ema_params",
    "EmaParamsState",
    "ema_of",
    "lookahead",
    "LookaheadState",
    "slow_params_of",
    "reduce_on_plateau",
    "ReduceLROnPlateauState",
    # schedules
    "constant_schedule",
    "linear_schedule",
    "polynomial_schedule",
    "exponential_decay",
    "cosine_decay_schedule",
    "warmup_cosine_decay_schedule",
    "warmup_exponential_decay_schedule",
    "warmup_constant_schedule",
    "piecewise_constant_schedule",
    "piecewise_interpolate_schedule",
    "linear_onecycle_schedule",
    "cosine_onecycle_schedule",
    "sgdr_schedule",
    "join_schedules",
    "step_decay",
    "inverse_time_decay",
    # optimizers
    "gd",
    "sgd",
    "adagrad",
    "rmsprop",
    "adadelta",
    "adam",
    "adamw",
    "nadam",
    "nadamw",
    "adamax",
    "amsgrad",
    "radam",
    "adabelief",
    "yogi",
    "adafactor",
    "lamb",
    "lars",
    "lion",
    "noisy_sgd",
    "novograd",
    "polyak_sgd",
    "sign_sgd",
    # full-batch: L-BFGS and line searches
    "lbfgs",
    "scale_by_lbfgs",
    "ScaleByLBFGSState",
    "scale_by_zoom_linesearch",
    "ScaleByZoomLinesearchState",
    "ZoomLinesearchInfo",
    "scale_by_backtracking_linesearch",
    "ScaleByBacktrackingLinesearchState",
    "BacktrackingLinesearchInfo",
    # checkpoints
    "Checkpoint",
    "has_checkpoint",
    "load_checkpoint",
    "save_checkpoint",
    # loops and drivers
    "EarlyStopping",
    "FitResult",
    "MinimizeResult",
    "fit",
    "minimize",
    "LBFGSB",
    "LBFGSBState",
    "lbfgsb",
    "Callback",
    "CSVLogger",
    "TensorBoardLogger",
    # sweeps
    "SweepResult",
    "sweep",
]
