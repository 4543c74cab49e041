"""Models: parameters and priors, spectral models (PyTensor formulas), sky models, containers."""

from .core import ModelBase
from .parameter import Parameter, Parameters
from .priors import GaussianPrior, LogUniformPrior, Prior, UniformPrior
from .sky import Models, SkyModel
from .spectral import *  # noqa: F401,F403
from .spectral import __all__ as _spectral_all

__all__ = [
    "ModelBase",
    "Parameter",
    "Parameters",
    "Prior",
    "UniformPrior",
    "LogUniformPrior",
    "GaussianPrior",
    "SkyModel",
    "Models",
    *_spectral_all,
]
