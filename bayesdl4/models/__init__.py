"""Models: parameters and priors, spectral and spatial models (PyTensor formulas), sky models,
containers."""

from .background import FoVBackgroundModel
from .core import ModelBase
from .nuisance import EffectiveAreaScaleModel, EnergyScaleModel, NuisanceModel
from .parameter import Parameter, Parameters
from .population import PopulationPrior, per_dataset
from .priors import (
    FlatPrior,
    GaussianPrior,
    GeneralizedGaussianPrior,
    HalfNormalPrior,
    LogNormalPrior,
    LogUniformPrior,
    Prior,
    TruncatedNormalPrior,
    UniformPrior,
)
from .sky import Models, SkyModel
from .spatial import (
    SPATIAL_MODEL_REGISTRY,
    ConstantSpatialModel,
    DiskSpatialModel,
    GaussianSpatialModel,
    GeneralizedGaussianSpatialModel,
    PointSpatialModel,
    Shell2SpatialModel,
    ShellSpatialModel,
    SpatialModel,
    TemplateSpatialModel,
    spatial_model_from_dict,
)
from .spectral import *  # noqa: F401,F403
from .spectral import __all__ as _spectral_all

__all__ = [
    "ModelBase",
    "FoVBackgroundModel",
    "Parameter",
    "Parameters",
    "Prior",
    "UniformPrior",
    "LogUniformPrior",
    "GaussianPrior",
    "GeneralizedGaussianPrior",
    "HalfNormalPrior",
    "LogNormalPrior",
    "TruncatedNormalPrior",
    "FlatPrior",
    "PopulationPrior",
    "per_dataset",
    "NuisanceModel",
    "EnergyScaleModel",
    "EffectiveAreaScaleModel",
    "SkyModel",
    "Models",
    *_spectral_all,
    "SpatialModel",
    "PointSpatialModel",
    "GaussianSpatialModel",
    "GeneralizedGaussianSpatialModel",
    "DiskSpatialModel",
    "ShellSpatialModel",
    "Shell2SpatialModel",
    "ConstantSpatialModel",
    "TemplateSpatialModel",
    "SPATIAL_MODEL_REGISTRY",
    "spatial_model_from_dict",
]
