"""jaxopt_lite: optax-compatible first-order optimizers and compiled loops."""

# The public names, imported by section; `__all__` lists them (and makes
# them the package's exports for type checkers).
# fmt: off

# --- primitive transforms: scaling, momentum, weight decay, Adam-family and
# RMS-like moments, clipping, noise, factored moments, sign, layer-wise and
# Polyak steps, Muon's orthogonalization, GaLore's projection, normalization
# and differentially private aggregation (_transforms/) ---
from jaxopt_lite._transforms.scaling import ScalarOrSchedule
from jaxopt_lite._transforms.weight_decay import add_decayed_weights
from jaxopt_lite._transforms.scaling import (
    current_learning_rate, scale, scale_by_learning_rate, scale_by_schedule,
)
from jaxopt_lite._transforms.sgd import trace
from jaxopt_lite._transforms.adam import (
    scale_by_adam, scale_by_adamax, scale_by_amsgrad,
)
from jaxopt_lite._transforms.adan import scale_by_adan
from jaxopt_lite._transforms.adam_variants import (
    scale_by_belief, scale_by_radam, scale_by_yogi,
)
from jaxopt_lite._transforms.rms import (
    scale_by_adadelta, scale_by_rms, scale_by_rss, scale_by_stddev,
)
from jaxopt_lite._transforms.sm3 import scale_by_sm3
from jaxopt_lite._transforms.clipping import (
    adaptive_grad_clip, centralize, clip, clip_by_block_rms, clip_by_global_norm,
    zero_nans,
)
from jaxopt_lite._transforms.factored import (
    scale_by_factored_rms, scale_by_param_block_rms,
)
from jaxopt_lite._transforms.norm_scaling import (
    normalize_by_update_norm, scale_by_param_block_norm,
)
from jaxopt_lite._transforms.distance_over_gradients import (
    scale_by_distance_over_gradients,
)
from jaxopt_lite._transforms.optimistic import scale_by_optimistic_gradient
from jaxopt_lite._transforms.rprop import scale_by_rprop
from jaxopt_lite._transforms.noise import add_noise
from jaxopt_lite._transforms.polyak import scale_by_polyak
from jaxopt_lite._transforms.sign import scale_by_lion
from jaxopt_lite._transforms.layerwise import scale_by_novograd
from jaxopt_lite._transforms.sign import scale_by_sign
from jaxopt_lite._transforms.layerwise import scale_by_trust_ratio
from jaxopt_lite._transforms.constraints import keep_params_nonnegative

# --- transforms without state: identity, zeros and functions of the updates
# (_combinators/stateless.py) ---
from jaxopt_lite._combinators.stateless import (
    identity, set_to_zero, stateless, stateless_with_tree_map,
)

# --- combinators: chain, masks, partitions, freezing, inject_hyperparams,
# conditions, skipping, accumulation, averaging, monitoring, flattening,
# plateaus (_combinators/) ---
from jaxopt_lite._transforms.newton_schulz import (
    MuonDimensionNumbers, orthogonalize_via_newton_schulz,
)
from jaxopt_lite._transforms.muon import MuonState, scale_by_muon, scale_by_shape
from jaxopt_lite._transforms.galore import (
    GaLoreDimensionNumbers, GaLoreState, scale_by_galore,
)
from jaxopt_lite._transforms.normalize import NormalizeState, normalize
from jaxopt_lite._transforms.privacy import (
    DifferentiallyPrivateAggregateState, differentially_private_aggregate,
)

# --- combinators: chain, masks, partitions, inject_hyperparams, skipping,
# accumulation, averaging, plateaus, schedule-free averaging, SAM, complex
# splitting (_combinators/) ---
from jaxopt_lite._combinators.accumulate import (
    AccumulateGradientsState, ApplyEveryState, accumulate_gradients, apply_every,
)
from jaxopt_lite._combinators.averaging import (
    EmaState, ema, EmaParamsState, LookaheadState, ema_of, ema_params, lookahead,
    slow_params_of,
)
from jaxopt_lite._combinators.masking import MaskedState, PartitionState
from jaxopt_lite._combinators.chain import chain
from jaxopt_lite._combinators.masking import masked
from jaxopt_lite._combinators.chain import named_chain
from jaxopt_lite._combinators.masking import partition, multi_transform
from jaxopt_lite._combinators.freezing import freeze, selective_transform
from jaxopt_lite._combinators.conditional import (
    ConditionallyMaskState, ConditionallyTransformState, conditionally_mask,
    conditionally_transform,
)
from jaxopt_lite._combinators.flatten import flatten
from jaxopt_lite._combinators.monitoring import (
    MonitorState, SnapshotState, measure_with_ema, monitor, snapshot,
)
from jaxopt_lite._combinators.finite import (
    ApplyIfFiniteState, apply_if_finite, skip_large_updates, skip_not_finite,
)
from jaxopt_lite._combinators.inject import (
    InjectHyperparamsState, inject_hyperparams, inject_stateful_hyperparams,
)
from jaxopt_lite._combinators.plateau import ReduceLROnPlateauState, reduce_on_plateau
from jaxopt_lite._combinators.schedule_free import (
    ScheduleFreeState, schedule_free, schedule_free_eval_params,
)
from jaxopt_lite._combinators.sam import SAMState, sam
from jaxopt_lite._combinators.complex import (
    SplitRealAndImaginaryState, split_real_and_imaginary,
)

# --- gradient utilities: scaled backward passes, per-example clipping,
# microbatching, target updates (_transforms/) ---
from jaxopt_lite._transforms.gradient_scaling import scale_gradient
from jaxopt_lite._transforms.microbatching import microbatch
from jaxopt_lite._transforms.per_example_clipping import (
    per_example_global_norm_clip, per_example_layer_norm_clip,
)
from jaxopt_lite._transforms.target_updates import periodic_update

# --- schedules: decays, warm-ups and joins, piecewise and one-cycle
# (_schedules/) ---
from jaxopt_lite._schedules.decay import (
    constant_schedule, cosine_decay_schedule, exponential_decay, inverse_time_decay,
    linear_schedule, polynomial_schedule, step_decay,
)
from jaxopt_lite._schedules.joined import (
    join_schedules, sgdr_schedule, warmup_constant_schedule,
    warmup_cosine_decay_schedule, warmup_exponential_decay_schedule,
)
from jaxopt_lite._schedules.piecewise import (
    cosine_onecycle_schedule, linear_onecycle_schedule, piecewise_constant_schedule,
    piecewise_interpolate_schedule,
)

# --- optimizers, each a chain of the primitives above (_optimizers/) ---
from jaxopt_lite._optimizers.adam_variants import adabelief
from jaxopt_lite._optimizers.adam import adam
from jaxopt_lite._optimizers.adam_variants import adamax, adamaxw
from jaxopt_lite._optimizers.adan import adan
from jaxopt_lite._optimizers.adam import adamw
from jaxopt_lite._optimizers.adam_variants import amsgrad
from jaxopt_lite._optimizers.adam import nadam, nadamw
from jaxopt_lite._optimizers.adam_variants import radam, yogi
from jaxopt_lite._optimizers.adaptive import adadelta, adagrad
from jaxopt_lite._optimizers.sgd import gd
from jaxopt_lite._optimizers.adaptive import rmsprop, sm3
from jaxopt_lite._optimizers.sgd import sgd
from jaxopt_lite._optimizers.layerwise import fromage, lamb, lars
from jaxopt_lite._optimizers.sign import lion
from jaxopt_lite._optimizers.layerwise import novograd
from jaxopt_lite._optimizers.sign import rprop, sign_sgd, signum
from jaxopt_lite._optimizers.optimistic import (
    optimistic_adam, optimistic_adam_v2, optimistic_gradient_descent,
)
from jaxopt_lite._optimizers.adafactor import adafactor
from jaxopt_lite._optimizers.sgd import noisy_sgd, polyak_sgd, dpsgd
from jaxopt_lite._optimizers.matrix import galore, muon
from jaxopt_lite._optimizers.schedule_free import schedule_free_adamw, schedule_free_sgd

# --- beyond optax: SOAP, magnitude pruning and its sparsity schedule
# (_transforms/, _optimizers/, _schedules/) ---
from jaxopt_lite._transforms.soap import scale_by_soap
from jaxopt_lite._optimizers.soap import soap
from jaxopt_lite._transforms.pruning import (
    prune_by_magnitude, pruning_masks_of, sparsity_of,
)
from jaxopt_lite._schedules.sparsity import polynomial_sparsity_schedule

# --- optax.contrib's optimizers, primitives and states (also in
# jaxopt_lite.contrib; _transforms/, _optimizers/, _combinators/) ---
from jaxopt_lite._optimizers.contrib_adaptive import acprop
from jaxopt_lite._transforms.asynchronous_moments import scale_by_acprop
from jaxopt_lite._optimizers.contrib_adaptive import ademamix
from jaxopt_lite._transforms.ademamix import ScaleByAdemamixState, scale_by_ademamix
from jaxopt_lite._optimizers.contrib_adaptive import simplified_ademamix
from jaxopt_lite._transforms.ademamix import (
    ScaleBySimplifiedAdEMAMixState, scale_by_simplified_ademamix,
)
from jaxopt_lite._optimizers.contrib_adaptive import adopt
from jaxopt_lite._transforms.asynchronous_moments import scale_by_adopt
from jaxopt_lite._optimizers.parameter_free import cocob
from jaxopt_lite._transforms.cocob import COCOBState, scale_by_cocob
from jaxopt_lite._transforms.d_adaptation import (
    dadapt_adamw, DAdaptAdamWState, prodigy, ProdigyState,
)
from jaxopt_lite._optimizers.parameter_free import dog
from jaxopt_lite._transforms.distance_over_gradients import DoGState, scale_by_dog
from jaxopt_lite._optimizers.parameter_free import dowg
from jaxopt_lite._transforms.distance_over_gradients import DoWGState, scale_by_dowg
from jaxopt_lite._optimizers.contrib_adaptive import madgrad
from jaxopt_lite._transforms.madgrad import MadgradState, scale_by_madgrad
from jaxopt_lite._combinators.mechanic import MechanicState, mechanize
from jaxopt_lite._transforms.momo import momo, MomoState, momo_adam, MomoAdamState
from jaxopt_lite._optimizers.sophia import sophia
from jaxopt_lite._transforms.sophia import (
    scale_by_sophia, SophiaState, hutchinson_estimator_diag_hessian, HutchinsonState,
)

# --- full-batch: L-BFGS and line searches (_transforms/, _optimizers/) ---
from jaxopt_lite._transforms.lbfgs import ScaleByLBFGSState
from jaxopt_lite._optimizers.lbfgs import lbfgs
from jaxopt_lite._transforms.lbfgs import scale_by_lbfgs
from jaxopt_lite._transforms.backtracking import (
    BacktrackingLinesearchInfo, ScaleByBacktrackingLinesearchState,
)
from jaxopt_lite._transforms.zoom import ScaleByZoomLinesearchState, ZoomLinesearchInfo
from jaxopt_lite._transforms.backtracking import scale_by_backtracking_linesearch
from jaxopt_lite._transforms.zoom import scale_by_zoom_linesearch

# --- checkpoints (_host/) ---
from jaxopt_lite._host.checkpoint import (
    Checkpoint, has_checkpoint, load_checkpoint, save_checkpoint,
)
from jaxopt_lite._host.checkpoint_store import Checkpointing

# --- loops and drivers: fit (_fit/), minimize (_minimize/), options and
# loggers (_host/) ---
from jaxopt_lite._host.options import EarlyStopping
from jaxopt_lite._loop.gradient import DynamicLossScale, Microbatches
from jaxopt_lite._loop.spikes import SpikeSkip
from jaxopt_lite._fit.result import FitResult
from jaxopt_lite._fit.fit import fit
from jaxopt_lite._minimize.result import MinimizeResult
from jaxopt_lite._minimize.minimize import minimize
from jaxopt_lite._minimize.lbfgsb import LBFGSB, LBFGSBState, lbfgsb
from jaxopt_lite._host.loggers import Callback, CSVLogger, TensorBoardLogger

# --- sweeps (_sweep/) ---
from jaxopt_lite._sweep.result import SweepResult
from jaxopt_lite._sweep.sweep import sweep

__version__ = "0.1.0"

# --- public submodules: optax.contrib's names, and the loop core for people
# who write their own loop ---
from jaxopt_lite import contrib as contrib
from jaxopt_lite import loop as loop
# fmt: on

# fmt: off
__all__ = [
    # primitive transforms
    "ScalarOrSchedule", "current_learning_rate", "scale", "scale_by_learning_rate",
    "scale_by_schedule", "trace", "add_decayed_weights", "scale_by_adadelta",
    "scale_by_rms", "scale_by_rss", "scale_by_stddev", "scale_by_sm3", "scale_by_adam",
    "scale_by_adamax", "scale_by_amsgrad", "scale_by_adan", "scale_by_belief",
    "scale_by_radam", "scale_by_yogi", "adaptive_grad_clip", "centralize", "clip",
    "clip_by_block_rms", "clip_by_global_norm", "zero_nans", "scale_by_factored_rms",
    "scale_by_param_block_rms", "scale_by_param_block_norm", "normalize_by_update_norm",
    "scale_by_distance_over_gradients", "scale_by_optimistic_gradient",
    "scale_by_rprop", "add_noise", "scale_by_polyak", "scale_by_lion",
    "scale_by_novograd", "scale_by_sign", "scale_by_trust_ratio",
    "keep_params_nonnegative",
    # transforms without state
    "identity", "set_to_zero", "stateless", "stateless_with_tree_map",
    "orthogonalize_via_newton_schulz", "MuonDimensionNumbers", "scale_by_muon",
    "MuonState", "scale_by_shape", "scale_by_galore", "GaLoreDimensionNumbers",
    "GaLoreState", "normalize", "NormalizeState", "differentially_private_aggregate",
    "DifferentiallyPrivateAggregateState",
    # combinators
    "chain", "named_chain", "masked", "MaskedState", "partition", "PartitionState",
    "multi_transform", "freeze", "selective_transform", "inject_hyperparams",
    "InjectHyperparamsState", "inject_stateful_hyperparams", "conditionally_transform",
    "ConditionallyTransformState", "conditionally_mask", "ConditionallyMaskState",
    "apply_if_finite", "ApplyIfFiniteState", "skip_not_finite", "skip_large_updates",
    "accumulate_gradients", "AccumulateGradientsState", "apply_every",
    "ApplyEveryState", "ema", "EmaState", "ema_params", "EmaParamsState", "ema_of",
    "lookahead", "LookaheadState", "slow_params_of", "reduce_on_plateau",
    "ReduceLROnPlateauState", "snapshot", "SnapshotState", "monitor", "MonitorState",
    "measure_with_ema", "flatten",
    # gradient utilities
    "scale_gradient", "per_example_global_norm_clip", "per_example_layer_norm_clip",
    "microbatch", "periodic_update", "schedule_free", "ScheduleFreeState",
    "schedule_free_eval_params", "sam", "SAMState", "split_real_and_imaginary",
    "SplitRealAndImaginaryState",
    # schedules
    "constant_schedule", "linear_schedule", "polynomial_schedule", "exponential_decay",
    "cosine_decay_schedule", "warmup_cosine_decay_schedule",
    "warmup_exponential_decay_schedule", "warmup_constant_schedule",
    "piecewise_constant_schedule", "piecewise_interpolate_schedule",
    "linear_onecycle_schedule", "cosine_onecycle_schedule", "sgdr_schedule",
    "join_schedules", "step_decay", "inverse_time_decay",
    # optimizers
    "gd", "sgd", "adagrad", "rmsprop", "adadelta", "sm3", "adam", "adamw", "nadam",
    "nadamw", "adamax", "adamaxw", "amsgrad", "adan", "radam", "adabelief", "yogi",
    "adafactor", "lamb", "lars", "lion", "fromage", "noisy_sgd", "novograd",
    "polyak_sgd", "sign_sgd", "signum", "rprop", "optimistic_gradient_descent",
    "optimistic_adam", "optimistic_adam_v2",
    # beyond optax: SOAP, magnitude pruning
    "scale_by_soap", "soap", "prune_by_magnitude", "pruning_masks_of", "sparsity_of",
    "polynomial_sparsity_schedule", "dpsgd", "muon", "galore", "schedule_free_sgd",
    "schedule_free_adamw",
    # optax.contrib (also in jaxopt_lite.contrib)
    "acprop", "scale_by_acprop", "ademamix", "scale_by_ademamix",
    "ScaleByAdemamixState", "simplified_ademamix", "scale_by_simplified_ademamix",
    "ScaleBySimplifiedAdEMAMixState", "adopt", "scale_by_adopt", "cocob",
    "scale_by_cocob", "COCOBState", "dadapt_adamw", "DAdaptAdamWState", "prodigy",
    "ProdigyState", "dog", "scale_by_dog", "DoGState", "dowg", "scale_by_dowg",
    "DoWGState", "madgrad", "scale_by_madgrad", "MadgradState", "mechanize",
    "MechanicState", "momo", "MomoState", "momo_adam", "MomoAdamState", "sophia",
    "scale_by_sophia", "SophiaState", "hutchinson_estimator_diag_hessian",
    "HutchinsonState",
    # full-batch: L-BFGS and line searches
    "lbfgs", "scale_by_lbfgs", "ScaleByLBFGSState", "scale_by_zoom_linesearch",
    "ScaleByZoomLinesearchState", "ZoomLinesearchInfo",
    "scale_by_backtracking_linesearch", "ScaleByBacktrackingLinesearchState",
    "BacktrackingLinesearchInfo",
    # checkpoints
    "Checkpoint", "has_checkpoint", "load_checkpoint", "save_checkpoint",
    "Checkpointing",
    # loops and drivers
    "EarlyStopping", "SpikeSkip", "Microbatches", "DynamicLossScale", "FitResult",
    "MinimizeResult", "fit", "minimize", "LBFGSB", "LBFGSBState", "lbfgsb", "Callback",
    "CSVLogger", "TensorBoardLogger",
    # sweeps
    "SweepResult", "sweep",
]
# fmt: on
