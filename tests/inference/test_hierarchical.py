"""Hierarchical multi-run models: populations of per-run parameters with hyperpriors."""

import arviz as az
import numpy as np
import pytest
from astropy import units as u
from scipy import stats

from bayesdl4.datasets.simulate import simulate_spectrum_runs
from bayesdl4.inference import build_model, logp_function, sample
from bayesdl4.models import (
    FoVBackgroundModel,
    GaussianPrior,
    HalfNormalPrior,
    LogParabolaSpectralModel,
    LogUniformPrior,
    Models,
    PopulationPrior,
    PowerLawSpectralModel,
    SkyModel,
    UniformPrior,
    per_dataset,
)

TRUTH = {"amplitude": 3e-11, "alpha": 2.5, "beta": 0.1, "mu": 0.0, "sigma": 0.1}


def _source(amplitude=3e-11, alpha=2.5, beta=0.1, priors=False):
    spectral = LogParabolaSpectralModel(amplitude=amplitude * u.Unit("cm-2 s-1 TeV-1"), reference="1 TeV",
                                        alpha=alpha, beta=beta)
    if priors:
        spectral.amplitude.prior = LogUniformPrior(1e-13, 1e-9)
        spectral.alpha.prior = UniformPrior(1, 5)
        spectral.beta.prior = UniformPrior(-1, 1)
    return SkyModel(spectral, name="src")


def background_runs(n_runs, seed=1, sigma=TRUTH["sigma"]):
    """``n_runs`` runs with a background template whose true per-run norm is log-normal around 1."""
    runs = simulate_spectrum_runs(Models([_source()]), n_runs, random_seed=seed, onoff=False,
                                  livetime=("0.5 h", "2 h"), background_rate="3e-3 s-1 TeV-1")
    rng = np.random.default_rng(seed + 1000)
    norms = np.exp(rng.normal(TRUTH["mu"], sigma, n_runs))
    for k, (dataset, norm) in enumerate(zip(runs, norms, strict=True)):
        background = FoVBackgroundModel(dataset.name)
        background.spectral_model.norm.value = norm
        dataset.models = Models([_source(), background])
        dataset.fake(random_seed=seed * 10_000 + k)
    return runs, norms


def _hierarchical_models(runs, centered=False):
    population = PopulationPrior("bkg", mu=GaussianPrior(0.0, 0.5), sigma=HalfNormalPrior(0.3),
                                 distribution="lognormal", centered=centered)
    models = [_source(amplitude=2e-11, alpha=2.3, beta=0.0, priors=True)]
    for dataset in runs:
        background = FoVBackgroundModel(dataset.name)
        background.spectral_model.norm.prior = population
        models.append(background)
    return Models(models)


def test_population_density_is_the_hierarchical_density():
    """log p = log L + log p(mu) + log p(sigma) + sum log N(z_i; 0, 1) with members
    exp(mu + sigma z_i) (non-centred log-normal population)."""
    runs, _ = background_runs(4, seed=2)
    runs.models = _hierarchical_models(runs)
    logp = logp_function(runs)
    names = logp.names
    assert names[:3] == ["src.amplitude", "src.alpha", "src.beta"]
    assert {"bkg.mu", "bkg.sigma"} <= set(names) and sum(n.startswith("bkg.z[") for n in names) == 4
    theta = logp.x0.copy()
    theta[names.index("bkg.mu")] = 0.05
    theta[names.index("bkg.sigma")] = 0.2
    z = np.array([0.3, -1.2, 0.8, 0.1])
    for i in range(4):
        theta[names.index(f"bkg.z[{i}]")] = z[i]
    value = logp(theta)[0]
    # the likelihood at the members' values, computed with the models set to them
    for dataset, zi in zip(runs, z, strict=True):
        dataset.models[f"{dataset.name}-bkg"].spectral_model.norm.value = np.exp(0.05 + 0.2 * zi)
    for name in ("amplitude", "alpha", "beta"):
        getattr(runs.models["src"].spectral_model, name).value = theta[names.index(f"src.{name}")]
    expected = (-0.5 * runs.stat_sum() + stats.norm(0, 0.5).logpdf(0.05) + stats.halfnorm(scale=0.3).logpdf(0.2)
                + stats.norm.logpdf(z).sum() - np.log(np.log(1e-9 / 1e-13)) - np.log(theta[0])
                - np.log(4.0) - np.log(2.0))
    np.testing.assert_allclose(value, expected, rtol=1e-10)
    members = build_model(runs)["bkg.members"]
    assert members.type.shape[0] == 4 or members.type.shape == (None,)


@pytest.mark.slow
def test_one_hundred_runs_with_a_log_normal_background_population():
    """Issue 8: 100 runs, per-run background norm from a log-normal population, one shared
    log-parabola: no divergences, r_hat <= 1.01, ESS_bulk >= 400 for every parameter, and the 95 %
    intervals of the population parameters contain the truth."""
    runs, norms = background_runs(100, seed=3)
    runs.models = _hierarchical_models(runs)
    tree = sample(runs, draws=1000, tune=1000, chains=4, random_seed=4, progressbar=False)
    posterior = tree["posterior"]
    assert len(posterior.data_vars) >= 103
    assert int(tree["sample_stats"]["diverging"].values.sum()) == 0
    summary = az.summary(tree, kind="diagnostics") if hasattr(az, "summary") else None
    rhat = az.rhat(tree["posterior"].to_dataset())
    ess = az.ess(tree["posterior"].to_dataset(), method="bulk")
    assert max(float(rhat[v].max()) for v in rhat.data_vars) <= 1.01, summary
    assert min(float(ess[v].min()) for v in ess.data_vars) >= 400, summary
    for name in ("mu", "sigma"):
        draws = posterior[f"bkg.{name}"].values.ravel()
        lo, hi = np.quantile(draws, [0.025, 0.975])
        assert lo <= TRUTH[name] <= hi, (name, lo, hi)
    # each run's norm is recovered: the truth inside its 99 % interval for at least 97 of 100 runs
    inside = 0
    for dataset, norm in zip(runs, norms, strict=True):
        lo, hi = np.quantile(posterior[f"{dataset.name}-bkg.norm"].values, [0.005, 0.995])
        inside += lo <= norm <= hi
    assert inside >= 97


@pytest.mark.slow
def test_per_run_flux_variability_on_onoff_runs_samples():
    """A variability model: per-run amplitudes (per_dataset) drawn from a normal population."""
    source = SkyModel(PowerLawSpectralModel(index=2.5, amplitude="3e-11 cm-2 s-1 TeV-1"), name="src")
    runs = simulate_spectrum_runs(Models([source]), 8, random_seed=5, onoff=True, livetime=("1 h", "2 h"))
    start = SkyModel(PowerLawSpectralModel(index=2.3, amplitude="2.5e-11 cm-2 s-1 TeV-1"), name="src")
    start.spectral_model.index.prior = UniformPrior(1, 4)
    models = per_dataset(Models([start]), runs, ["src.amplitude"])
    population = PopulationPrior("flux", mu=GaussianPrior(3e-11, 2e-11), sigma=HalfNormalPrior(1e-11))
    for model in models:
        model.spectral_model.amplitude.prior = population
    assert len(models) == 8 and len({id(m.spectral_model.index) for m in models}) == 1
    runs.models = models
    tree = sample(runs, draws=500, tune=700, chains=2, random_seed=6, progressbar=False)
    posterior = tree["posterior"]
    assert int(tree["sample_stats"]["diverging"].values.sum()) <= 2
    rhat = az.rhat(posterior.to_dataset())
    assert max(float(rhat[v].max()) for v in rhat.data_vars) < 1.05
    mu = posterior["flux.mu"].values.ravel()
    assert np.quantile(mu, 0.005) < 3e-11 < np.quantile(mu, 0.995)
    assert f"src-{runs.names[0]}.amplitude" in posterior
