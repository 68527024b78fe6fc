"""optax.contrib's names, under ``jaxopt_lite.contrib`` as in optax.

Every name here is also exported at the top level (``jaxopt_lite.muon`` and
``jaxopt_lite.contrib.muon`` are the same function), so code written for
``optax.contrib`` ports by changing the import only. ``scale_by_shape`` and
``orthogonalize_via_newton_schulz`` are Muon's pieces from optax's
``optax.contrib._muon`` module.
"""

from jaxopt_lite._combinators.complex import (
    SplitRealAndImaginaryState as SplitRealAndImaginaryState,
)
from jaxopt_lite._combinators.complex import (
    split_real_and_imaginary as split_real_and_imaginary,
)
from jaxopt_lite._combinators.sam import SAMState as SAMState
from jaxopt_lite._combinators.sam import sam as sam
from jaxopt_lite._combinators.schedule_free import (
    ScheduleFreeState as ScheduleFreeState,
)
from jaxopt_lite._combinators.schedule_free import schedule_free as schedule_free
from jaxopt_lite._combinators.schedule_free import (
    schedule_free_eval_params as schedule_free_eval_params,
)
from jaxopt_lite._optimizers.matrix import galore as galore
from jaxopt_lite._optimizers.matrix import muon as muon
from jaxopt_lite._optimizers.schedule_free import (
    schedule_free_adamw as schedule_free_adamw,
)
from jaxopt_lite._optimizers.schedule_free import schedule_free_sgd as schedule_free_sgd
from jaxopt_lite._optimizers.sgd import dpsgd as dpsgd
from jaxopt_lite._transforms.galore import (
    GaLoreDimensionNumbers as GaLoreDimensionNumbers,
)
from jaxopt_lite._transforms.galore import GaLoreState as GaLoreState
from jaxopt_lite._transforms.galore import scale_by_galore as scale_by_galore
from jaxopt_lite._transforms.muon import MuonState as MuonState
from jaxopt_lite._transforms.muon import scale_by_muon as scale_by_muon
from jaxopt_lite._transforms.muon import scale_by_shape as scale_by_shape
from jaxopt_lite._transforms.newton_schulz import (
    MuonDimensionNumbers as MuonDimensionNumbers,
)
from jaxopt_lite._transforms.newton_schulz import (
    orthogonalize_via_newton_schulz as orthogonalize_via_newton_schulz,
)
from jaxopt_lite._transforms.normalize import NormalizeState as NormalizeState
from jaxopt_lite._transforms.normalize import normalize as normalize
from jaxopt_lite._transforms.privacy import (
    DifferentiallyPrivateAggregateState as DifferentiallyPrivateAggregateState,
)
from jaxopt_lite._transforms.privacy import (
    differentially_private_aggregate as differentially_private_aggregate,
)

__all__: list[str] = [
    "DifferentiallyPrivateAggregateState",
    "GaLoreDimensionNumbers",
    "GaLoreState",
    "MuonDimensionNumbers",
    "MuonState",
    "NormalizeState",
    "SAMState",
    "ScheduleFreeState",
    "SplitRealAndImaginaryState",
    "differentially_private_aggregate",
    "dpsgd",
    "galore",
    "muon",
    "normalize",
    "orthogonalize_via_newton_schulz",
    "sam",
    "scale_by_galore",
    "scale_by_muon",
    "scale_by_shape",
    "schedule_free",
    "schedule_free_adamw",
    "schedule_free_eval_params",
    "schedule_free_sgd",
    "split_real_and_imaginary",
]
