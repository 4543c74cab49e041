"""Inference on the one PyMC model of the datasets: MAP fits, NUTS sampling, external-sampler log
densities, results."""

from .checks import ppc_pvalues
from .comparison import (
    BayesFactor,
    LikelihoodRatioTest,
    bayes_factor,
    joint_log_likelihood,
    likelihood_ratio_test,
)
from .evidence import EvidenceResult, evidence, store_evidence
from .fit import FitParameter, FitResult, fit
from .logp import LogDensity, logp_function
from .model import ModelInfo, build_model, model_info
from .results import provenance, read, write
from .sample import sample

__all__ = [
    "build_model",
    "model_info",
    "ModelInfo",
    "fit",
    "FitResult",
    "FitParameter",
    "sample",
    "logp_function",
    "LogDensity",
    "write",
    "read",
    "provenance",
    "evidence",
    "EvidenceResult",
    "store_evidence",
    "bayes_factor",
    "BayesFactor",
    "likelihood_ratio_test",
    "LikelihoodRatioTest",
    "joint_log_likelihood",
    "ppc_pvalues",
]
