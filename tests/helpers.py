"""Simulated datasets the tests make themselves (no external data)."""

from astropy import units as u

from bayesdl4.datasets import Datasets
from bayesdl4.datasets.simulate import simulate_spectrum_onoff
from bayesdl4.models import Models, PowerLawSpectralModel, SkyModel, UniformPrior

TRUTH = {"index": 2.5, "amplitude": 3e-11}


def simulated_onoff(n=3, seed=0, livetime="1 h"):
    """``n`` ON/OFF spectra of a power law (truth in `TRUTH`) with a fitted model starting off-truth."""
    truth = PowerLawSpectralModel(index=TRUTH["index"], amplitude=TRUTH["amplitude"] * u.Unit("cm-2 s-1 TeV-1"))
    datasets = Datasets([
        simulate_spectrum_onoff(Models([SkyModel(truth, name="src")]), name=f"run{i}", random_seed=seed + i,
                                livetime=livetime)
        for i in range(n)
    ])
    model = PowerLawSpectralModel(index=2.0, amplitude=1e-11 * u.Unit("cm-2 s-1 TeV-1"))
    model.index.prior = UniformPrior(1, 4)
    model.amplitude.prior = UniformPrior(1e-13, 1e-9)
    datasets.models = Models([SkyModel(model, name="src")])
    return datasets
