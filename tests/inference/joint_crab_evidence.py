"""The joint-crab evidence case of issue 11 on both sides: bayesdl4 (SMC) and gammapy's Sampler.

Priors: amplitude LogUniform(1e-12, 1e-9) cm-2 s-1 TeV-1, alpha / index Uniform(1, 5),
beta Uniform(0, 1); the ten OGIP spectra with the joint-crab fit ranges.
"""

import logging
import warnings

import numpy as np
from astropy import units as u

from tests.conftest import JOINT_CRAB_RANGES, gammapy_data

START = {"amplitude": "3.8e-11 cm-2 s-1 TeV-1", "reference": "1 TeV"}


def _paths():
    folder = gammapy_data() / "joint-crab" / "spectra"
    return [(instrument, path) for instrument in JOINT_CRAB_RANGES
            for path in sorted((folder / instrument).glob("pha_*.fits"))]


def _spectral(module, kind):
    if kind == "log_parabola":
        model = module.LogParabolaSpectralModel(alpha=2.5, beta=0.1, **START)
        shape = {"alpha": (1, 5), "beta": (0, 1)}
    else:
        model = module.PowerLawSpectralModel(index=2.6, **START)
        shape = {"index": (1, 5)}
    model.amplitude.prior = module.LogUniformPrior(min=1e-12, max=1e-9)
    for name, (lo, hi) in shape.items():
        getattr(model, name).prior = module.UniformPrior(min=lo, max=hi)
    return module.SkyModel(model, name="crab")


def joint_crab_datasets(kind):
    """bayesdl4 `Datasets` of the ten spectra with the model ``kind`` and its priors."""
    from bayesdl4 import models
    from bayesdl4.datasets import Datasets, SpectrumDatasetOnOff

    datasets = []
    for instrument, path in _paths():
        dataset = SpectrumDatasetOnOff.read(path)
        dataset.mask_fit = dataset.counts.geom.energy_mask(*(e * u.TeV for e in JOINT_CRAB_RANGES[instrument]))
        datasets.append(dataset)
    datasets = Datasets(datasets)
    datasets.models = models.Models([_spectral(models, kind)])
    return datasets


def ours(kind, seed=1, **kwargs):
    """bayesdl4's SMC evidence (`EvidenceResult`)."""
    from bayesdl4.inference import evidence

    return evidence(joint_crab_datasets(kind), method="smc", random_seed=seed, progressbar=False, **kwargs)


def gammapy_log_z(kind, seed=1):
    """(ln Z, error) of gammapy 2.1's `Sampler` with its defaults (UltraNest)."""
    import astropy  # noqa: F401  (installs astropy's logger class first)
    from gammapy.datasets import Datasets, SpectrumDatasetOnOff
    from gammapy.modeling import Sampler
    from gammapy.modeling import models as gp_models

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name in ("gammapy", "ultranest"):
            logging.getLogger(name).setLevel(logging.WARNING)
        datasets = []
        for instrument, path in _paths():
            dataset = SpectrumDatasetOnOff.read(path)
            dataset.mask_fit = dataset.counts.geom.energy_mask(*(e * u.TeV for e in JOINT_CRAB_RANGES[instrument]))
            datasets.append(dataset)
        datasets = Datasets(datasets)
        datasets.models = gp_models.Models([_spectral(gp_models, kind)])
        state = np.random.get_state()
        np.random.seed(seed)  # UltraNest draws from NumPy's global generator
        try:
            result = Sampler(run_opts={"show_status": False, "viz_callback": False}).run(datasets)
        finally:
            np.random.set_state(state)
    return float(result.sampler_results["logz"]), float(result.sampler_results["logzerr"])
