"""Inference: the joint PyMC model, MAP fits, NUTS sampling, external-sampler log densities, results."""

from .fit import FitParameter, FitResult, fit
from .logp import LogDensity, logp_function
from .model import JointModel
from .results import provenance, read, write
from .sample import sample

__all__ = [
    "fit",
    "FitResult",
    "FitParameter",
    "sample",
    "logp_function",
    "LogDensity",
    "JointModel",
    "write",
    "read",
    "provenance",
]
