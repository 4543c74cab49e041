"""Simulation studies: repetitions on a dataset template, simulation-based calibration, Dask.

* `Simulator`: a template (IRFs, livetimes) and models with priors -> truths drawn from the
  priors and Poisson datasets at them, predicted by one function compiled once;
* `simulation_based_calibration` -> `SBCResult` (ranks, coverage, tests, netCDF);
* `fit_repetitions`: MAP fits of many simulated repetitions (bias, pulls, error coverage);
* `map_tasks`: any independent runs (per-run preparation and fits) serially or on Dask, with the
  same results either way.

Every repetition of one template has the same model structure, so the likelihood is compiled
once per process (`bayesdl4.compiled.stats` counts it) and each Dask worker compiles once.
"""

from .calibration import coverage_test, rank_of_truth, rank_uniformity_test
from .parallel import map_tasks, resolve_client
from .repeat import FitRepetitions, fit_repetitions
from .sbc import SBCResult, SBCSettings, misspecify_background, simulation_based_calibration
from .simulator import Simulator, effective_priors

__all__ = [
    "Simulator",
    "effective_priors",
    "simulation_based_calibration",
    "SBCResult",
    "SBCSettings",
    "misspecify_background",
    "fit_repetitions",
    "FitRepetitions",
    "map_tasks",
    "resolve_client",
    "rank_uniformity_test",
    "rank_of_truth",
    "coverage_test",
]
