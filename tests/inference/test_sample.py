"""NUTS sampling: convergence, agreement with MAP, DataTree layout, LOO, reproducibility, results I/O."""

import json

import arviz as az
import numpy as np
import pytest

from bayesdl4.errors import InferenceError
from bayesdl4.inference import fit, provenance, read, sample, write
from tests.helpers import simulated_onoff

DRAWS, TUNE, CHAINS, SEED = 1000, 1000, 4, 11


@pytest.fixture(scope="module")
def joint():
    datasets = simulated_onoff(n=3, seed=5)
    result = fit(datasets)
    posterior = sample(datasets, draws=DRAWS, tune=TUNE, chains=CHAINS, random_seed=SEED, progressbar=False)
    return datasets, result, posterior


def test_converges_without_divergences(joint):
    _, result, posterior = joint
    rhat = az.rhat(posterior["posterior"].to_dataset())
    for name in result.names:
        assert float(rhat[name]) <= 1.01, (name, float(rhat[name]))
    assert int(posterior["sample_stats"]["diverging"].sum()) == 0


def test_posterior_mean_agrees_with_map(joint):
    _, result, posterior = joint
    for name, par in result.parameters.items():
        draws = posterior["posterior"][name].values
        assert abs(draws.mean() - par.value) < 0.1 * par.error, (name, draws.mean(), par)
        assert draws.std() == pytest.approx(par.error, rel=0.1)


def test_datatree_layout_units_and_pointwise_loglike(joint):
    datasets, result, posterior = joint
    assert {"posterior", "sample_stats", "log_likelihood", "posterior_predictive", "observed_data"} <= set(
        posterior.children)
    post = posterior["posterior"]
    assert set(post.data_vars) == set(result.names)  # no internal __scaled variables
    assert post["src.amplitude"].attrs["unit"] == "1 / (TeV s cm2)"
    assert post["src.amplitude"].shape == (CHAINS, DRAWS)
    loglike = posterior["log_likelihood"]
    for dataset in datasets:
        nbins = int(dataset.mask_bins.sum())
        assert loglike[dataset.name].dims == ("chain", "draw", f"{dataset.name}_bin")
        assert loglike[dataset.name].shape == (CHAINS, DRAWS, nbins)
        np.testing.assert_array_equal(posterior["observed_data"][dataset.name].values,
                                      dataset.counts.data.ravel()[dataset.mask_bins])
    # pointwise terms at one draw sum to -0.5 x the datasets' statistic at those parameter values
    model = datasets.models["src"].spectral_model
    model.index.value = float(post["src.index"][0, 0])
    model.amplitude.value = float(post["src.amplitude"][0, 0])
    total = sum(float(loglike[d.name][0, 0].sum()) for d in datasets)
    np.testing.assert_allclose(total, -0.5 * datasets.stat_sum(), rtol=1e-10)


def test_posterior_predictive_counts_are_calibrated(joint):
    datasets, _, posterior = joint
    for dataset in datasets:
        pred = posterior["posterior_predictive"][dataset.name].values
        observed = posterior["observed_data"][dataset.name].values
        # total ON counts fall inside the predictive distribution
        totals = pred.sum(axis=-1).ravel()
        assert np.quantile(totals, 0.001) < observed.sum() < np.quantile(totals, 0.999)
        assert f"{dataset.name}.counts_off" in posterior["posterior_predictive"]


def test_loo_works_per_dataset(joint):
    datasets, _, posterior = joint
    loo = az.loo(posterior, var_name=datasets[0].name)
    assert np.isfinite(loo.elpd)
    assert loo.n_data_points == int(datasets[0].mask_bins.sum())


def test_write_read_roundtrip_with_provenance(joint, tmp_path):
    datasets, _, posterior = joint
    path = tmp_path / "posterior.nc"
    write(posterior, path)
    with pytest.raises(FileExistsError):
        write(posterior, path)
    back = read(path)
    np.testing.assert_array_equal(back["posterior"]["src.index"].values, posterior["posterior"]["src.index"].values)
    np.testing.assert_array_equal(back["log_likelihood"]["run0"].values, posterior["log_likelihood"]["run0"].values)
    info = provenance(back)
    assert info["datasets"] == datasets.names
    assert info["versions"]["pymc"] and info["versions"]["bayesdl4"]
    assert "PowerLawSpectralModel" in info["models_yaml"]
    assert not list(tmp_path.glob(".*"))  # no temporary files left behind
    json.dumps(info)


def test_same_seed_same_draws():
    datasets = simulated_onoff(n=1, seed=2)
    a = sample(datasets, draws=50, tune=50, chains=2, random_seed=3, progressbar=False)
    b = sample(datasets, draws=50, tune=50, chains=2, random_seed=3, progressbar=False)
    np.testing.assert_array_equal(a["posterior"]["src.index"].values, b["posterior"]["src.index"].values)
    np.testing.assert_array_equal(a["posterior_predictive"]["run0"].values, b["posterior_predictive"]["run0"].values)


def test_pymc_sampler_selectable_and_bad_name():
    datasets = simulated_onoff(n=1, seed=4)
    posterior = sample(datasets, draws=100, tune=200, chains=2, random_seed=1, nuts_sampler="pymc",
                       progressbar=False)
    assert posterior["posterior"]["src.index"].shape == (2, 100)
    with pytest.raises(InferenceError, match="nuts_sampler"):
        sample(datasets, nuts_sampler="emcee")
