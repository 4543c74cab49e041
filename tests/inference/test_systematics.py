"""Energy-scale nuisances: the joint-crab systematics model of Nigro et al. (2019) against gammapy."""

import sys
from pathlib import Path

import numpy as np
import pytest

from bayesdl4.inference import fit, sample
from tests.conftest import gammapy_data

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _ours():
    sys.path.insert(0, str(EXAMPLES))
    from joint_crab import read_datasets
    from joint_crab_systematics import systematics_models

    from bayesdl4.models import UniformPrior

    datasets = read_datasets(gammapy_data())
    datasets.models = systematics_models(datasets)
    # gammapy 2.1 adds the prior of a linked parameter once per model holding it (five times
    # here): uniform priors on the shared spectrum keep both sides' optimum the same
    datasets.models["crab"].spectral_model.amplitude.prior = UniformPrior(1e-13, 1e-9)
    return datasets


def _gammapy(names):
    from astropy import units as u
    from gammapy.datasets import Datasets, SpectrumDatasetOnOff
    from gammapy.modeling import Parameter
    from gammapy.modeling import models as gm

    from tests.conftest import JOINT_CRAB_RANGES

    class ScaledLogParabola(gm.SpectralModel):
        """dnde(E / (1 + z)) / (1 + z) of a log-parabola (the paper's energy-scale convention)."""

        tag = ["ScaledLogParabola"]
        amplitude = Parameter("amplitude", "3e-11 cm-2 s-1 TeV-1")
        reference = Parameter("reference", "1 TeV", frozen=True)
        alpha = Parameter("alpha", 2.3)
        beta = Parameter("beta", 0.0)
        z = Parameter("z", 0.0)

        @staticmethod
        def evaluate(energy, amplitude, reference, alpha, beta, z):
            return gm.LogParabolaSpectralModel.evaluate(energy / (1 + z), amplitude, reference, alpha, beta) / (1 + z)

    folder = gammapy_data() / "joint-crab" / "spectra"
    datasets = []
    for instrument, (emin, emax) in JOINT_CRAB_RANGES.items():
        for path in sorted((folder / instrument).glob("pha_*.fits")):
            name = f"{instrument}_{path.stem.removeprefix('pha_')}"
            dataset = SpectrumDatasetOnOff.read(path, name=name)
            dataset.mask_fit = dataset.counts.geom.energy_mask(emin * u.TeV, emax * u.TeV)
            datasets.append(dataset)
    datasets = Datasets(datasets)
    shared = ScaledLogParabola()
    shared.amplitude.prior = gm.UniformPrior(min=1e-13, max=1e-9)
    shared.alpha.prior = gm.UniformPrior(min=1, max=5)
    shared.beta.prior = gm.UniformPrior(min=-1, max=1)
    sigma = {"fermi": 0.05, "magic": 0.15, "veritas": 0.15, "fact": 0.15, "hess": 0.15}
    models = []
    for instrument, s in sigma.items():
        spectral = ScaledLogParabola(amplitude=shared.amplitude, reference=shared.reference, alpha=shared.alpha,
                                     beta=shared.beta)
        spectral.z.prior = gm.GaussianPrior(mu=0, sigma=s)
        members = [n for n in names if n.startswith(f"{instrument}_")]
        models.append(gm.SkyModel(spectral_model=spectral, name=f"crab-{instrument}", datasets_names=members))
    datasets.models = models
    return datasets, sigma


@pytest.mark.slow
@pytest.mark.oracle
@pytest.mark.realdata
def test_joint_crab_systematics_fit_equals_gammapy_and_the_z_posteriors_are_reported():
    pytest.importorskip("gammapy")
    from gammapy.modeling import Fit

    datasets = _ours()
    result = fit(datasets)
    assert result.success, result.message
    theirs, sigma = _gammapy(datasets.names)
    gp_result = Fit().run(theirs)
    assert gp_result.success
    models = theirs.models
    shared = models["crab-hess"].spectral_model
    pairs = {f"crab.{n}": getattr(shared, n) for n in ("amplitude", "alpha", "beta")}
    pairs.update({f"{i}-energy-scale.z": models[f"crab-{i}"].spectral_model.z for i in sigma})
    for name, par in pairs.items():
        ours = result[name]
        # within 0.05 sigma (gammapy's log-log trapezoids differ from exact integrals by ~1e-5)
        assert abs(ours.value - par.value) < 0.05 * par.error, (name, ours, par.value, par.error)
        assert ours.error == pytest.approx(par.error, rel=0.1), (name, ours.error, par.error)
    # each instrument's z is reported with its posterior
    tree = sample(datasets, draws=300, tune=300, chains=2, random_seed=2, progressbar=False)
    for instrument in sigma:
        draws = tree["posterior"][f"{instrument}-energy-scale.z"].values
        assert draws.shape == (2, 300) and np.all(np.isfinite(draws))
        assert 0.01 * sigma[instrument] < draws.std() < 1.2 * sigma[instrument]
