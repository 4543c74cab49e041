"""Templates of the study tests: small spectra whose repetitions fit in milliseconds."""

import pytest

from bayesdl4 import models as m
from bayesdl4.datasets.simulate import simple_irf_dataset, simulate_spectrum_runs
from bayesdl4.studies import Simulator

#: truth of the repeated-fit studies (joint-crab-like log-parabola)
TRUTH = {"crab.amplitude": 3.8e-11, "crab.alpha": 2.5, "crab.beta": 0.1}


def log_parabola(name="crab", amplitude=(1e-13, 1e-9), alpha=(1.0, 5.0), beta=(-1.0, 1.0),
                 start=(3e-11, 2.3, 0.0)):
    """A log-parabola (reference 1 TeV) with LogUniform / Uniform priors."""
    model = m.LogParabolaSpectralModel(amplitude=f"{start[0]} cm-2 s-1 TeV-1", reference="1 TeV",
                                       alpha=start[1], beta=start[2])
    model.amplitude.prior = m.LogUniformPrior(*amplitude)
    model.alpha.prior = m.UniformPrior(*alpha)
    model.beta.prior = m.UniformPrior(*beta)
    return m.Models([m.SkyModel(model, name=name)])


def onoff_simulator(n_runs=3, seed=1):
    """``n_runs`` On/Off spectra (`simulate_spectrum_runs`) and the crab log-parabola."""
    models = log_parabola()
    return Simulator(simulate_spectrum_runs(models, n_runs, random_seed=seed), models)


def sbc_simulator():
    """The SBC template: one Cash spectrum (10 bins, 0.3-30 TeV, 0.5 h, ~250 background counts)
    and a log-parabola whose priors give ~60-450 source counts."""
    models = log_parabola(name="src", amplitude=(1e-11, 1e-10), alpha=(2.0, 3.0), beta=(0.0, 0.5),
                          start=(3e-11, 2.5, 0.2))
    template = simple_irf_dataset(livetime="0.5 h", energy_bounds=("0.3 TeV", "30 TeV"), nbin_per_decade=5,
                                  background_rate="3e-2 s-1 TeV-1")
    return Simulator([template], models)


@pytest.fixture
def onoff_sim():
    return onoff_simulator()


@pytest.fixture
def sbc_sim():
    return sbc_simulator()
