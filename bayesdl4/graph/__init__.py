"""Graph builders: datasets + models -> PyTensor npred and per-bin likelihood graphs.

One builder per dataset type (`protocol`), registered by dataset class; importing this package
registers the spectrum, map and flux-points builders.
"""

from . import flux_points as _flux_points  # noqa: F401  (registers the flux-points builder)
from . import map_builder as _map_builder  # noqa: F401  (registers the map builders)
from . import spectrum as _spectrum  # noqa: F401  (registers the spectrum builder)
from .evaluate import evaluate_npred, evaluate_stat_array, graph_inputs
from .params import ParameterTable
from .protocol import (
    DatasetGraphBuilder,
    GroupGraph,
    GroupPlan,
    LatentSpec,
    builder_for,
    plan_groups,
    register_builder,
)

__all__ = [
    "DatasetGraphBuilder",
    "GroupGraph",
    "GroupPlan",
    "LatentSpec",
    "ParameterTable",
    "builder_for",
    "plan_groups",
    "register_builder",
    "evaluate_npred",
    "evaluate_stat_array",
    "graph_inputs",
]
