"""Simulated spectra and models shared by the evidence, comparison and check tests."""

import numpy as np
from astropy import units as u
from scipy import integrate, stats

import bayesdl4.graph.flux_points  # noqa: F401 - registers the flux points builder
from bayesdl4.datasets import Datasets
from bayesdl4.datasets.flux_points import FluxPoints
from bayesdl4.datasets.flux_points_dataset import FluxPointsDataset
from bayesdl4.datasets.simulate import simulate_spectrum_onoff
from bayesdl4.models import (
    LogParabolaSpectralModel,
    LogUniformPrior,
    Models,
    PowerLawSpectralModel,
    SkyModel,
    UniformPrior,
)

UNIT = u.Unit("cm-2 s-1 TeV-1")
LP_TRUTH = {"alpha": 2.3, "beta": 0.2, "amplitude": 3e-11}
PL_TRUTH = {"index": 2.3, "amplitude": 3e-11}


def log_parabola():
    """Log-parabola with proper priors: amplitude LogUniform(1e-12, 1e-9), alpha U(1, 5), beta U(-1, 1)."""
    model = LogParabolaSpectralModel(alpha=2.0, beta=0.1, amplitude=1e-11 * UNIT, reference="1 TeV")
    model.amplitude.prior = LogUniformPrior(1e-12, 1e-9)
    model.alpha.prior = UniformPrior(1, 5)
    model.beta.prior = UniformPrior(-1, 1)
    return Models([SkyModel(model, name="src")])


def power_law():
    """Power law with the log-parabola's priors on amplitude and index."""
    model = PowerLawSpectralModel(index=2.0, amplitude=1e-11 * UNIT, reference="1 TeV")
    model.amplitude.prior = LogUniformPrior(1e-12, 1e-9)
    model.index.prior = UniformPrior(1, 5)
    return Models([SkyModel(model, name="src")])


def onoff(truth="log_parabola", n=1, seed=0, livetime="0.5 h"):
    """``n`` On/Off spectra simulated from the log-parabola (`LP_TRUTH`) or power law (`PL_TRUTH`)."""
    if truth == "log_parabola":
        model = LogParabolaSpectralModel(reference="1 TeV", **{**LP_TRUTH, "amplitude": LP_TRUTH["amplitude"] * UNIT})
    else:
        model = PowerLawSpectralModel(reference="1 TeV", **{**PL_TRUTH, "amplitude": PL_TRUTH["amplitude"] * UNIT})
    models = Models([SkyModel(model, name="src")])
    return Datasets([simulate_spectrum_onoff(models, name=f"run{i}", random_seed=seed + i, livetime=livetime)
                     for i in range(n)])


def linear_gaussian(seed=3, log_uniform_first=False):
    """Flux points (Gaussian errors, stat ``chi2``) of a sum of three power laws with frozen indices:
    the likelihood is Gaussian in the three free amplitudes, so the evidence has a closed form.

    Returns (datasets, analytic ln Z, posterior mean, posterior covariance of the amplitudes
    without the priors' cut-offs). Priors: Uniform(0, 1e-10) on each amplitude, or with
    ``log_uniform_first`` LogUniform(1e-13, 1e-9) on the first (then one 1-d quadrature).
    """
    energy = np.geomspace(0.2, 50, 12)
    indices, truth = [1.5, 2.5, 3.5], np.array([1e-11, 3e-11, 1e-11])
    design = np.stack([energy**-g for g in indices], axis=1)
    rng = np.random.default_rng(seed)
    sigma = 0.1 * design @ truth
    y = design @ truth + sigma * rng.standard_normal(energy.size)
    points = FluxPoints.from_sed("dnde", {"dnde": y * UNIT, "dnde_err": sigma * UNIT}, energy_ref=energy * u.TeV)
    datasets = Datasets([FluxPointsDataset(data=points, stat_type="chi2", name="points")])
    lo, hi, log_lo, log_hi = 0.0, 1e-10, 1e-13, 1e-9
    models = []
    for k, index in enumerate(indices):
        spectral = PowerLawSpectralModel(index=index, amplitude=truth[k] * UNIT, reference="1 TeV")
        spectral.index.frozen = True
        uses_log = log_uniform_first and k == 0
        spectral.amplitude.prior = LogUniformPrior(log_lo, log_hi) if uses_log else UniformPrior(lo, hi)
        models.append(SkyModel(spectral, name=f"c{k}"))
    datasets.models = Models(models)
    # -2 ln L = (y - X a)^T W (y - X a): a Gaussian in a with covariance (X^T W X)^-1
    fisher = design.T @ (design / sigma[:, None] ** 2)
    cov = np.linalg.inv(fisher)
    best = cov @ (design.T @ (y / sigma**2))
    chi2_min = float(np.sum(((y - design @ best) / sigma) ** 2))
    for k in range(3):  # the priors hold the likelihood (> 5 sigma on each side: mass lost < 1e-6)
        assert best[k] - 5 * np.sqrt(cov[k, k]) > (log_lo if k == 0 and log_uniform_first else lo)
        assert best[k] + 5 * np.sqrt(cov[k, k]) < hi
    if not log_uniform_first:
        box = stats.multivariate_normal(best, cov).cdf(np.full(3, hi), lower_limit=np.full(3, lo))
        log_z = -0.5 * chi2_min + 0.5 * np.log(np.linalg.det(2 * np.pi * cov)) + np.log(box) - 3 * np.log(hi - lo)
        return datasets, float(log_z), best, cov
    # a_2, a_3 integrate out in closed form; a_1 keeps its marginal Gaussian and the 1/a prior
    rest = np.linalg.inv(fisher[1:, 1:])
    s1 = np.sqrt(cov[0, 0])

    def integrand(a1):
        return np.exp(-0.5 * (a1 - best[0]) ** 2 / cov[0, 0]) / (a1 * np.log(log_hi / log_lo))

    marginal, _ = integrate.quad(integrand, best[0] - 12 * s1, best[0] + 12 * s1, epsabs=0, epsrel=1e-10)
    log_z = -0.5 * chi2_min + 0.5 * np.log(np.linalg.det(2 * np.pi * rest)) + np.log(marginal) - 2 * np.log(hi - lo)
    return datasets, float(log_z), best, cov
