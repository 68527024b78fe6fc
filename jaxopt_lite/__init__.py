"""jaxopt_lite: optax-compatible first-order optimizers and compiled loops."""

# --- primitive transforms: scaling, momentum, weight decay, Adam-family and
# RMS-like moments, clipping, noise, factored moments, sign, layer-wise and
# Polyak steps, Muon's orthogonalization, GaLore's projection, normalization
# and differentially private aggregation (_transforms/) ---
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
from jaxopt_lite._transforms.adan import scale_by_adan as scale_by_adan
from jaxopt_lite._transforms.adam_variants import scale_by_belief as scale_by_belief
from jaxopt_lite._transforms.adam_variants import scale_by_radam as scale_by_radam
from jaxopt_lite._transforms.adam_variants import scale_by_yogi as scale_by_yogi
from jaxopt_lite._transforms.rms import scale_by_adadelta as scale_by_adadelta
from jaxopt_lite._transforms.rms import scale_by_rms as scale_by_rms
from jaxopt_lite._transforms.rms import scale_by_rss as scale_by_rss
from jaxopt_lite._transforms.rms import scale_by_stddev as scale_by_stddev
from jaxopt_lite._transforms.sm3 import scale_by_sm3 as scale_by_sm3
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
from jaxopt_lite._transforms.norm_scaling import (
    normalize_by_update_norm as normalize_by_update_norm,
)
from jaxopt_lite._transforms.norm_scaling import (
    scale_by_param_block_norm as scale_by_param_block_norm,
)
from jaxopt_lite._transforms.distance_over_gradients import (
    scale_by_distance_over_gradients as scale_by_distance_over_gradients,
)
from jaxopt_lite._transforms.optimistic import (
    scale_by_optimistic_gradient as scale_by_optimistic_gradient,
)
from jaxopt_lite._transforms.rprop import scale_by_rprop as scale_by_rprop
from jaxopt_lite._transforms.noise import add_noise as add_noise
from jaxopt_lite._transforms.polyak import scale_by_polyak as scale_by_polyak
from jaxopt_lite._transforms.sign import scale_by_lion as scale_by_lion
from jaxopt_lite._transforms.layerwise import scale_by_novograd as scale_by_novograd
from jaxopt_lite._transforms.sign import scale_by_sign as scale_by_sign
from jaxopt_lite._transforms.layerwise import (
    scale_by_trust_ratio as scale_by_trust_ratio,
)
from jaxopt_lite._transforms.constraints import (
    keep_params_nonnegative as keep_params_nonnegative,
)

# --- transforms without state: identity, zeros and functions of the updates
# (_combinators/stateless.py) ---
from jaxopt_lite._combinators.stateless import identity as identity
from jaxopt_lite._combinators.stateless import set_to_zero as set_to_zero
from jaxopt_lite._combinators.stateless import stateless as stateless
from jaxopt_lite._combinators.stateless import (
    stateless_with_tree_map as stateless_with_tree_map,
)

# --- combinators: chain, masks, partitions, freezing, inject_hyperparams,
# conditions, skipping, accumulation, averaging, monitoring, flattening,
# plateaus (_combinators/) ---
from jaxopt_lite._transforms.newton_schulz import (
    MuonDimensionNumbers as MuonDimensionNumbers,
)
from jaxopt_lite._transforms.newton_schulz import (
    orthogonalize_via_newton_schulz as orthogonalize_via_newton_schulz,
)
from jaxopt_lite._transforms.muon import MuonState as MuonState
from jaxopt_lite._transforms.muon import scale_by_muon as scale_by_muon
from jaxopt_lite._transforms.muon import scale_by_shape as scale_by_shape
from jaxopt_lite._transforms.galore import (
    GaLoreDimensionNumbers as GaLoreDimensionNumbers,
)
from jaxopt_lite._transforms.galore import GaLoreState as GaLoreState
from jaxopt_lite._transforms.galore import scale_by_galore as scale_by_galore
from jaxopt_lite._transforms.normalize import NormalizeState as NormalizeState
from jaxopt_lite._transforms.normalize import normalize as normalize
from jaxopt_lite._transforms.privacy import (
    DifferentiallyPrivateAggregateState as DifferentiallyPrivateAggregateState,
)
from jaxopt_lite._transforms.privacy import (
    differentially_private_aggregate as differentially_private_aggregate,
)

# --- combinators: chain, masks, partitions, inject_hyperparams, skipping,
# accumulation, averaging, plateaus, schedule-free averaging, SAM, complex
# splitting (_combinators/) ---
from jaxopt_lite._combinators.accumulate import (
    AccumulateGradientsState as AccumulateGradientsState,
)
from jaxopt_lite._combinators.accumulate import ApplyEveryState as ApplyEveryState
from jaxopt_lite._combinators.accumulate import (
    accumulate_gradients as accumulate_gradients,
)
from jaxopt_lite._combinators.accumulate import apply_every as apply_every
from jaxopt_lite._combinators.averaging import EmaState as EmaState
from jaxopt_lite._combinators.averaging import ema as ema
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
from jaxopt_lite._combinators.masking import multi_transform as multi_transform
from jaxopt_lite._combinators.freezing import freeze as freeze
from jaxopt_lite._combinators.freezing import (
    selective_transform as selective_transform,
)
from jaxopt_lite._combinators.conditional import (
    ConditionallyMaskState as ConditionallyMaskState,
)
from jaxopt_lite._combinators.conditional import (
    ConditionallyTransformState as ConditionallyTransformState,
)
from jaxopt_lite._combinators.conditional import (
    conditionally_mask as conditionally_mask,
)
from jaxopt_lite._combinators.conditional import (
    conditionally_transform as conditionally_transform,
)
from jaxopt_lite._combinators.flatten import flatten as flatten
from jaxopt_lite._combinators.monitoring import MonitorState as MonitorState
from jaxopt_lite._combinators.monitoring import SnapshotState as SnapshotState
from jaxopt_lite._combinators.monitoring import measure_with_ema as measure_with_ema
from jaxopt_lite._combinators.monitoring import monitor as monitor
from jaxopt_lite._combinators.monitoring import snapshot as snapshot
from jaxopt_lite._combinators.finite import ApplyIfFiniteState as ApplyIfFiniteState
from jaxopt_lite._combinators.finite import apply_if_finite as apply_if_finite
from jaxopt_lite._combinators.finite import skip_large_updates as skip_large_updates
from jaxopt_lite._combinators.finite import skip_not_finite as skip_not_finite
from jaxopt_lite._combinators.inject import (
    InjectHyperparamsState as InjectHyperparamsState,
)
from jaxopt_lite._combinators.inject import inject_hyperparams as inject_hyperparams
from jaxopt_lite._combinators.inject import (
    inject_stateful_hyperparams as inject_stateful_hyperparams,
)
from jaxopt_lite._combinators.plateau import (
    ReduceLROnPlateauState as ReduceLROnPlateauState,
)
from jaxopt_lite._combinators.plateau import reduce_on_plateau as reduce_on_plateau
from jaxopt_lite._combinators.schedule_free import (
    ScheduleFreeState as ScheduleFreeState,
)
from jaxopt_lite._combinators.schedule_free import schedule_free as schedule_free
from jaxopt_lite._combinators.schedule_free import (
    schedule_free_eval_params as schedule_free_eval_params,
)
from jaxopt_lite._combinators.sam import SAMState as SAMState
from jaxopt_lite._combinators.sam import sam as sam
from jaxopt_lite._combinators.complex import (
    SplitRealAndImaginaryState as SplitRealAndImaginaryState,
)
from jaxopt_lite._combinators.complex import (
    split_real_and_imaginary as split_real_and_imaginary,
)

# --- gradient utilities: scaled backward passes, per-example clipping,
# microbatching, target updates (_transforms/) ---
from jaxopt_lite._transforms.gradient_scaling import scale_gradient as scale_gradient
from jaxopt_lite._transforms.microbatching import microbatch as microbatch
from jaxopt_lite._transforms.per_example_clipping import (
    per_example_global_norm_clip as per_example_global_norm_clip,
)
from jaxopt_lite._transforms.per_example_clipping import (
    per_example_layer_norm_clip as per_example_layer_norm_clip,
)
from jaxopt_lite._transforms.target_updates import periodic_update as periodic_update

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
from jaxopt_lite._optimizers.adam_variants import adamaxw as adamaxw
from jaxopt_lite._optimizers.adan import adan as adan
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
from jaxopt_lite._optimizers.adaptive import sm3 as sm3
from jaxopt_lite._optimizers.sgd import sgd as sgd
from jaxopt_lite._optimizers.layerwise import fromage as fromage
from jaxopt_lite._optimizers.layerwise import lamb as lamb
from jaxopt_lite._optimizers.layerwise import lars as lars
from jaxopt_lite._optimizers.sign import lion as lion
from jaxopt_lite._optimizers.layerwise import novograd as novograd
from jaxopt_lite._optimizers.sign import rprop as rprop
from jaxopt_lite._optimizers.sign import sign_sgd as sign_sgd
from jaxopt_lite._optimizers.sign import signum as signum
from jaxopt_lite._optimizers.optimistic import optimistic_adam as optimistic_adam
from jaxopt_lite._optimizers.optimistic import (
    optimistic_adam_v2 as optimistic_adam_v2,
)
from jaxopt_lite._optimizers.optimistic import (
    optimistic_gradient_descent as optimistic_gradient_descent,
)
from jaxopt_lite._optimizers.adafactor import adafactor as adafactor
from jaxopt_lite._optimizers.sgd import noisy_sgd as noisy_sgd
from jaxopt_lite._optimizers.sgd import polyak_sgd as polyak_sgd
from jaxopt_lite._optimizers.sgd import dpsgd as dpsgd
from jaxopt_lite._optimizers.matrix import galore as galore
from jaxopt_lite._optimizers.matrix import muon as muon
from jaxopt_lite._optimizers.schedule_free import (
    schedule_free_adamw as schedule_free_adamw,
)
from jaxopt_lite._optimizers.schedule_free import schedule_free_sgd as schedule_free_sgd

# --- beyond optax: SOAP, magnitude pruning and its sparsity schedule
# (_transforms/, _optimizers/, _schedules/) ---
from jaxopt_lite._transforms.soap import scale_by_soap as scale_by_soap
from jaxopt_lite._optimizers.soap import soap as soap
from jaxopt_lite._transforms.pruning import prune_by_magnitude as prune_by_magnitude
from jaxopt_lite._transforms.pruning import pruning_masks_of as pruning_masks_of
from jaxopt_lite._transforms.pruning import sparsity_of as sparsity_of
from jaxopt_lite._schedules.sparsity import (
    polynomial_sparsity_schedule as polynomial_sparsity_schedule,
)

# --- optax.contrib's optimizers, primitives and states (also in
# jaxopt_lite.contrib; _transforms/, _optimizers/, _combinators/) ---
from jaxopt_lite._optimizers.contrib_adaptive import acprop as acprop
from jaxopt_lite._transforms.asynchronous_moments import (
    scale_by_acprop as scale_by_acprop,
)
from jaxopt_lite._optimizers.contrib_adaptive import ademamix as ademamix
from jaxopt_lite._transforms.ademamix import (
    ScaleByAdemamixState as ScaleByAdemamixState,
)
from jaxopt_lite._transforms.ademamix import scale_by_ademamix as scale_by_ademamix
from jaxopt_lite._optimizers.contrib_adaptive import (
    simplified_ademamix as simplified_ademamix,
)
from jaxopt_lite._transforms.ademamix import (
    ScaleBySimplifiedAdEMAMixState as ScaleBySimplifiedAdEMAMixState,
)
from jaxopt_lite._transforms.ademamix import (
    scale_by_simplified_ademamix as scale_by_simplified_ademamix,
)
from jaxopt_lite._optimizers.contrib_adaptive import adopt as adopt
from jaxopt_lite._transforms.asynchronous_moments import (
    scale_by_adopt as scale_by_adopt,
)
from jaxopt_lite._optimizers.parameter_free import cocob as cocob
from jaxopt_lite._transforms.cocob import COCOBState as COCOBState
from jaxopt_lite._transforms.cocob import scale_by_cocob as scale_by_cocob
from jaxopt_lite._transforms.d_adaptation import dadapt_adamw as dadapt_adamw
from jaxopt_lite._transforms.d_adaptation import DAdaptAdamWState as DAdaptAdamWState
from jaxopt_lite._transforms.d_adaptation import prodigy as prodigy
from jaxopt_lite._transforms.d_adaptation import ProdigyState as ProdigyState
from jaxopt_lite._optimizers.parameter_free import dog as dog
from jaxopt_lite._transforms.distance_over_gradients import DoGState as DoGState
from jaxopt_lite._transforms.distance_over_gradients import (
    scale_by_dog as scale_by_dog,
)
from jaxopt_lite._optimizers.parameter_free import dowg as dowg
from jaxopt_lite._transforms.distance_over_gradients import DoWGState as DoWGState
from jaxopt_lite._transforms.distance_over_gradients import (
    scale_by_dowg as scale_by_dowg,
)
from jaxopt_lite._optimizers.contrib_adaptive import madgrad as madgrad
from jaxopt_lite._transforms.madgrad import MadgradState as MadgradState
from jaxopt_lite._transforms.madgrad import scale_by_madgrad as scale_by_madgrad
from jaxopt_lite._combinators.mechanic import MechanicState as MechanicState
from jaxopt_lite._combinators.mechanic import mechanize as mechanize
from jaxopt_lite._transforms.momo import momo as momo
from jaxopt_lite._transforms.momo import MomoState as MomoState
from jaxopt_lite._transforms.momo import momo_adam as momo_adam
from jaxopt_lite._transforms.momo import MomoAdamState as MomoAdamState
from jaxopt_lite._optimizers.sophia import sophia as sophia
from jaxopt_lite._transforms.sophia import scale_by_sophia as scale_by_sophia
from jaxopt_lite._transforms.sophia import SophiaState as SophiaState
from jaxopt_lite._transforms.sophia import (
    hutchinson_estimator_diag_hessian as hutchinson_estimator_diag_hessian,
)
from jaxopt_lite._transforms.sophia import HutchinsonState as HutchinsonState

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

# --- checkpoints (_host/) ---
from jaxopt_lite._host.checkpoint import Checkpoint as Checkpoint
from jaxopt_lite._host.checkpoint import has_checkpoint as has_checkpoint
from jaxopt_lite._host.checkpoint import load_checkpoint as load_checkpoint
from jaxopt_lite._host.checkpoint import save_checkpoint as save_checkpoint
from jaxopt_lite._host.checkpoint_store import Checkpointing as Checkpointing

# --- loops and drivers: fit (_fit/), minimize (_minimize/), options and
# loggers (_host/) ---
from jaxopt_lite._host.options import EarlyStopping as EarlyStopping
from jaxopt_lite._loop.gradient import DynamicLossScale as DynamicLossScale
from jaxopt_lite._loop.gradient import Microbatches as Microbatches
from jaxopt_lite._loop.spikes import SpikeSkip as SpikeSkip
from jaxopt_lite._fit.result import FitResult as FitResult
from jaxopt_lite._fit.fit import fit as fit
from jaxopt_lite._minimize.result import MinimizeResult as MinimizeResult
from jaxopt_lite._minimize.minimize import minimize as minimize
from jaxopt_lite._minimize.lbfgsb import LBFGSB as LBFGSB
from jaxopt_lite._minimize.lbfgsb import LBFGSBState as LBFGSBState
from jaxopt_lite._minimize.lbfgsb import lbfgsb as lbfgsb
from jaxopt_lite._host.loggers import Callback as Callback
from jaxopt_lite._host.loggers import CSVLogger as CSVLogger
from jaxopt_lite._host.loggers import TensorBoardLogger as TensorBoardLogger

# --- sweeps (_sweep/) ---
from jaxopt_lite._sweep.result import SweepResult as SweepResult
from jaxopt_lite._sweep.sweep import sweep as sweep

__version__ = "0.1.0"

# --- public submodules: optax.contrib's names, and the loop core for people
# who write their own loop ---
from jaxopt_lite import contrib as contrib
from jaxopt_lite import loop as loop

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
    "scale_by_sm3",
    "scale_by_adam",
    "scale_by_adamax",
    "scale_by_amsgrad",
    "scale_by_adan",
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
    "scale_by_param_block_norm",
    "normalize_by_update_norm",
    "scale_by_distance_over_gradients",
    "scale_by_optimistic_gradient",
    "scale_by_rprop",
    "add_noise",
    "scale_by_polyak",
    "scale_by_lion",
    "scale_by_novograd",
    "scale_by_sign",
    "scale_by_trust_ratio",
    "keep_params_nonnegative",
    # transforms without state
    "identity",
    "set_to_zero",
    "stateless",
    "stateless_with_tree_map",
    "orthogonalize_via_newton_schulz",
    "MuonDimensionNumbers",
    "scale_by_muon",
    "MuonState",
    "scale_by_shape",
    "scale_by_galore",
    "GaLoreDimensionNumbers",
    "GaLoreState",
    "normalize",
    "NormalizeState",
    "differentially_private_aggregate",
    "DifferentiallyPrivateAggregateState",
    # combinators
    "chain",
    "named_chain",
    "masked",
    "MaskedState",
    "partition",
    "PartitionState",
    "multi_transform",
    "freeze",
    "selective_transform",
    "inject_hyperparams",
    "InjectHyperparamsState",
    "inject_stateful_hyperparams",
    "conditionally_transform",
    "ConditionallyTransformState",
    "conditionally_mask",
    "ConditionallyMaskState",
    "apply_if_finite",
    "ApplyIfFiniteState",
    "skip_not_finite",
    "skip_large_updates",
    "accumulate_gradients",
    "AccumulateGradientsState",
    "apply_every",
    "ApplyEveryState",
    "ema",
    "EmaState",
    "ema_params",
    "EmaParamsState",
    "ema_of",
    "lookahead",
    "LookaheadState",
    "slow_params_of",
    "reduce_on_plateau",
    "ReduceLROnPlateauState",
    "snapshot",
    "SnapshotState",
    "monitor",
    "MonitorState",
    "measure_with_ema",
    "flatten",
    # gradient utilities
    "scale_gradient",
    "per_example_global_norm_clip",
    "per_example_layer_norm_clip",
    "microbatch",
    "periodic_update",
    "schedule_free",
    "ScheduleFreeState",
    "schedule_free_eval_params",
    "sam",
    "SAMState",
    "split_real_and_imaginary",
    "SplitRealAndImaginaryState",
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
    "sm3",
    "adam",
    "adamw",
    "nadam",
    "nadamw",
    "adamax",
    "adamaxw",
    "amsgrad",
    "adan",
    "radam",
    "adabelief",
    "yogi",
    "adafactor",
    "lamb",
    "lars",
    "lion",
    "fromage",
    "noisy_sgd",
    "novograd",
    "polyak_sgd",
    "sign_sgd",
    "signum",
    "rprop",
    "optimistic_gradient_descent",
    "optimistic_adam",
    "optimistic_adam_v2",
    # beyond optax: SOAP, magnitude pruning
    "scale_by_soap",
    "soap",
    "prune_by_magnitude",
    "pruning_masks_of",
    "sparsity_of",
    "polynomial_sparsity_schedule",
    "dpsgd",
    "muon",
    "galore",
    "schedule_free_sgd",
    "schedule_free_adamw",
    # optax.contrib (also in jaxopt_lite.contrib)
    "acprop",
    "scale_by_acprop",
    "ademamix",
    "scale_by_ademamix",
    "ScaleByAdemamixState",
    "simplified_ademamix",
    "scale_by_simplified_ademamix",
    "ScaleBySimplifiedAdEMAMixState",
    "adopt",
    "scale_by_adopt",
    "cocob",
    "scale_by_cocob",
    "COCOBState",
    "dadapt_adamw",
    "DAdaptAdamWState",
    "prodigy",
    "ProdigyState",
    "dog",
    "scale_by_dog",
    "DoGState",
    "dowg",
    "scale_by_dowg",
    "DoWGState",
    "madgrad",
    "scale_by_madgrad",
    "MadgradState",
    "mechanize",
    "MechanicState",
    "momo",
    "MomoState",
    "momo_adam",
    "MomoAdamState",
    "sophia",
    "scale_by_sophia",
    "SophiaState",
    "hutchinson_estimator_diag_hessian",
    "HutchinsonState",
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
    "Checkpointing",
    # loops and drivers
    "EarlyStopping",
    "SpikeSkip",
    "Microbatches",
    "DynamicLossScale",
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
