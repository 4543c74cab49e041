"""The one PyMC model: structure added with ``with model:`` counts in fit, sample and logp_function
alike; every dataset is one likelihood term; nothing the likelihood would ignore passes silently."""

import numpy as np
import pymc as pm
import pytest
from astropy import units as u
from scipy import stats

from bayesdl4.datasets import Datasets
from bayesdl4.datasets.simulate import simple_irf_dataset
from bayesdl4.errors import InferenceError, ModelError
from bayesdl4.inference import build_model, fit, logp_function, model_info, sample
from bayesdl4.models import (
    EffectiveAreaScaleModel,
    EnergyScaleModel,
    FoVBackgroundModel,
    GaussianPrior,
    HalfNormalPrior,
    Models,
    PopulationPrior,
    PowerLawSpectralModel,
    SkyModel,
)
from bayesdl4.models.spatial import PointSpatialModel
from tests.helpers import simulated_onoff


@pytest.fixture(scope="module")
def datasets():
    return simulated_onoff(n=2, seed=41)


def test_model_has_a_variable_per_parameter_and_a_term_per_dataset(datasets):
    model = build_model(datasets)
    assert "src.index" in model.named_vars and "src.amplitude" in model.named_vars
    assert list(model.coords["dataset"]) == datasets.names
    point = model.initial_point()
    # the potential holds each dataset's log-likelihood: -0.5 * stat_sum, gammapy's convention
    loglike, index = model.replace_rvs_by_values([model["log_likelihood"], model["src.index"]])
    per_dataset = model.compile_fn(loglike, inputs=model.value_vars)(point)
    np.testing.assert_allclose(per_dataset, [-0.5 * d.stat_sum() for d in datasets], rtol=1e-10)
    np.testing.assert_allclose(model.compile_fn(index, inputs=model.value_vars, on_unused_input="ignore")(point),
                               datasets.models["src"].spectral_model.index.value)
    assert model_info(model).table.free_names == ["src.index", "src.amplitude"]


def test_a_hyperprior_added_with_the_model_counts_in_fit_sample_and_logp(datasets):
    """One test of all three: a user's Normal(2.2, 0.03) penalty on the index and a new free
    variable move the MAP, the draws and the density consistently."""
    plain = fit(simulated_onoff(n=2, seed=41))
    model = build_model(simulated_onoff(n=2, seed=41))
    with model:
        shift = pm.Normal("shift", 0.0, 1.0)
        pm.Potential("index_penalty", pm.logp(pm.Normal.dist(2.2 + 0.01 * shift, 0.03), model["src.index"]))
    result = fit(model)
    assert "shift" in result.parameters
    index = result["src.index"].value
    assert index < plain["src.index"].value - 3 * result["src.index"].error  # pulled towards 2.2
    # logp_function is the same density: its gradient vanishes at fit's optimum and its value
    # differs from the plain density by exactly the added terms
    logp = logp_function(model)
    assert logp.names == ["src.index", "src.amplitude", "shift"]
    theta = np.array([result[n].value for n in logp.names])
    value, grad = logp(theta)
    scale = np.array([result[n].error for n in logp.names])
    np.testing.assert_allclose(grad * scale, 0.0, atol=2e-3)
    plain_logp = logp_function(simulated_onoff(n=2, seed=41))
    added = stats.norm(2.2 + 0.01 * theta[2], 0.03).logpdf(theta[0]) + stats.norm(0, 1).logpdf(theta[2])
    np.testing.assert_allclose(value, plain_logp(theta[:2])[0] + added, rtol=1e-10)
    # NUTS draws the same posterior: its mean sits at the (nearly Gaussian) MAP
    tree = sample(model, draws=300, tune=300, chains=2, random_seed=1, progressbar=False)
    posterior = tree["posterior"]
    assert "shift" in posterior and "src.index" in posterior
    draws = posterior["src.index"].values
    assert abs(draws.mean() - index) < 0.3 * draws.std()
    assert draws.std() == pytest.approx(result["src.index"].error, rel=0.25)


def test_components_the_likelihood_would_ignore_raise():
    """Issue 8, item 8: temporal models, spatial models on spectra, background models on ON/OFF
    spectra and the spatial part of a background model each name themselves."""
    datasets = simulated_onoff(n=1, seed=42)
    name = datasets[0].name
    spectral = PowerLawSpectralModel(index=2.5, amplitude="3e-11 cm-2 s-1 TeV-1")
    cases = {
        "spatial": SkyModel(spectral.copy(), PointSpatialModel(lon_0="83.6 deg", lat_0="22 deg"), name="spatial"),
        "onoff-bkg": FoVBackgroundModel(name),
    }
    temporal = SkyModel(spectral.copy(), name="temporal")
    temporal.temporal_dict = {"type": "ConstantTemporalModel"}
    cases["temporal"] = temporal
    for component in cases.values():
        datasets.models = Models([SkyModel(spectral.copy(), name="src"), component])
        with pytest.raises(ModelError, match=component.name):
            fit(datasets)
    cash = simple_irf_dataset(name="cash")
    background = FoVBackgroundModel("cash", spatial_dict={"type": "ConstantSpatialModel"})
    cash.models = Models([SkyModel(spectral.copy(), name="src"), background])
    with pytest.raises(ModelError, match="spatial part of background model 'cash-bkg'"):
        fit(Datasets([cash]))


def test_bad_hierarchies_and_priors_are_clear_errors():
    datasets = simulated_onoff(n=2, seed=43)
    models = datasets.models
    population = PopulationPrior("pop", mu=GaussianPrior(0, 1), sigma=HalfNormalPrior(1))
    spectral = models["src"].spectral_model
    spectral.index.prior = population
    spectral.amplitude.prior = population  # another unit
    with pytest.raises(ModelError, match="different units"):
        build_model(datasets)
    with pytest.raises(ModelError, match="sigma > 0"):
        GaussianPrior(0.0, -1.0)
    with pytest.raises(ModelError, match="positive values"):
        PopulationPrior("p", mu=GaussianPrior(0, 1), sigma=GaussianPrior(0, 1))


def test_nuisance_models_shift_and_scale_the_predicted_counts():
    """EnergyScaleModel: dnde_z(E) = dnde(E / (1 + z)) / (1 + z); EffectiveAreaScaleModel: a factor."""
    datasets = simulated_onoff(n=1, seed=44)
    dataset = datasets[0]
    source = datasets.models["src"]
    reference = dataset.npred_signal().data.ravel()
    dataset.models = Models([source, EffectiveAreaScaleModel([dataset.name], norm=1.3)])
    np.testing.assert_allclose(dataset.npred_signal().data.ravel(), 1.3 * reference, rtol=1e-12)
    z = 0.1
    dataset.models = Models([source, EnergyScaleModel([dataset.name], z=z)])
    axis = dataset.energy_axis_true
    spectral = source.spectral_model
    shifted = spectral.integral(axis.edges_min / (1 + z), axis.edges_max / (1 + z)).to_value("cm-2 s-1")
    exposure = dataset.exposure.quantity.to_value("cm2 s").ravel()
    expected = (shifted * exposure) @ dataset.edisp.pdf_matrix
    np.testing.assert_allclose(dataset.npred_signal().data.ravel(), expected, rtol=1e-9)
    # for a power law the shift is a constant factor (1 + z)^(index - 1)
    np.testing.assert_allclose(expected, reference * (1 + z) ** (spectral.index.value - 1), rtol=1e-9)


def test_gradients_match_finite_differences_for_every_parameter_kind():
    """Source, energy-scale, area-scale and population parameters: the density's gradient in
    physical units against central differences."""
    datasets = simulated_onoff(n=3, seed=45)
    names = datasets.names
    escale = EnergyScaleModel(names, z=0.02, name="escale")
    escale.z.prior = GaussianPrior(0.0, 0.1)
    area = EffectiveAreaScaleModel(names[:2], norm=1.05, name="area")
    area.norm.prior = GaussianPrior(1.0, 0.1)
    datasets.models = Models(list(datasets.models) + [escale, area])
    logp = logp_function(datasets)
    theta = logp.x0 * (1 + 0.01 * np.arange(1, logp.x0.size + 1))
    value, grad = logp(theta)
    assert np.isfinite(value)
    for i, name in enumerate(logp.names):
        h = 1e-6 * abs(theta[i])
        up, down = theta.copy(), theta.copy()
        up[i] += h
        down[i] -= h
        numeric = (logp(up)[0] - logp(down)[0]) / (2 * h)
        assert grad[i] == pytest.approx(numeric, rel=1e-5), name


def test_all_parameters_frozen_or_no_models_are_clear_errors():
    datasets = simulated_onoff(n=1, seed=46)
    for par in datasets.models.parameters:
        par.frozen = True
    with pytest.raises(InferenceError, match="all parameters are frozen"):
        build_model(datasets)
    with pytest.raises(InferenceError, match="no datasets"):
        build_model([])


@pytest.mark.slow
def test_explicit_background_single_bin_matches_the_closed_form_marginal():
    """Issue 8, item 6: one ON/OFF bin, flat priors on the signal s >= 0 and the OFF mean b >= 0:
    p(s | n_on, n_off) ~ sum_i c_i s^i e^-s / i! (Loredo 1992), c_i ~ (1 + 1/alpha)^i
    (n_on + n_off - i)! / (n_on - i)!. The explicit-background posterior's 5/50/95 % quantiles
    match it to 1 %."""
    from scipy.special import gammaln, logsumexp

    from bayesdl4.datasets import SpectrumDatasetOnOff
    from bayesdl4.maps import RegionNDMap
    from bayesdl4.models import ConstantSpectralModel, UniformPrior

    base = simple_irf_dataset(name="onebin", energy_bounds=("1 TeV", "1.25 TeV"), nbin_per_decade=10)
    geom = base.counts.geom
    assert geom.data_shape == (1, 1, 1)
    n_on, n_off, alpha = 50.0, 40.0, 0.25  # s ~ 40 +- 7.5: the quantiles' Monte-Carlo errors ~0.3 %
    dataset = SpectrumDatasetOnOff(
        counts=RegionNDMap(geom, np.full((1, 1, 1), n_on)), counts_off=RegionNDMap(geom, np.full((1, 1, 1), n_off)),
        acceptance=RegionNDMap(geom, np.ones((1, 1, 1))), acceptance_off=RegionNDMap(geom, np.full((1, 1, 1), 1 / alpha)),
        exposure=base.exposure, edisp=base.edisp, mask_safe=base.mask_safe, name="onebin")
    dataset.stat_type = "poisson_onoff"
    spectral = ConstantSpectralModel(const=1e-12 * u.Unit("cm-2 s-1 TeV-1"))
    dataset.models = Models([SkyModel(spectral, name="src")])
    per_unit = dataset.npred_signal().data.sum() / 1e-12  # s = per_unit * const
    spectral.const.value = 30.0 / per_unit
    spectral.const.prior = UniformPrior(0.0, 150.0 / per_unit)  # flat in s up to 150 (posterior mass there ~0)
    # 100,000 draws: the Monte-Carlo error of the 5 % quantile is then well below 1 %
    tree = sample(Datasets([dataset]), draws=25000, tune=1000, chains=4, random_seed=3, progressbar=False,
                  posterior_predictive=False)
    s_draws = tree["posterior"]["src.const"].values.ravel() * per_unit
    assert "onebin.mu_off" in tree["posterior"]
    grid = np.linspace(0.0, 150.0, 150001)
    i = np.arange(n_on + 1)
    log_c = i * np.log(1 + 1 / alpha) + gammaln(n_on + n_off - i + 1) - gammaln(n_on - i + 1)
    log_terms = log_c[None, :] + i[None, :] * np.log(np.maximum(grid[:, None], 1e-300)) - grid[:, None] \
        - gammaln(i + 1)[None, :]
    density = np.exp(logsumexp(log_terms, axis=1) - logsumexp(log_terms, axis=1).max())
    cdf = np.cumsum(density)
    cdf /= cdf[-1]
    for q in (0.05, 0.5, 0.95):
        exact = np.interp(q, cdf, grid)
        assert np.quantile(s_draws, q) == pytest.approx(exact, rel=0.01), q


def test_fov_background_model_scales_a_spectrum_background():
    """Issue 8, item 5: on a SpectrumDataset the background model's norm (and tilt) scale the
    background per reco bin, as gammapy's FoVBackgroundModel does."""
    dataset = simple_irf_dataset(name="cash")
    source = SkyModel(PowerLawSpectralModel(index=2.5, amplitude="3e-11 cm-2 s-1 TeV-1"), name="src")
    background = FoVBackgroundModel("cash")
    background.spectral_model.norm.value = 1.5
    background.spectral_model.tilt.value = 0.2
    dataset.models = Models([source, background])
    energy = dataset.energy_axis.center.to_value("TeV")
    expected = dataset.background.data.ravel() * 1.5 * energy ** -0.2
    np.testing.assert_allclose(dataset.npred_background().data.ravel(), expected, rtol=1e-12)
    # the norm is a free parameter of the fit and enters the likelihood
    dataset.fake(random_seed=5)
    background.spectral_model.norm.value = 1.0
    result = fit(Datasets([dataset]))
    assert result["cash-bkg.norm"].value == pytest.approx(1.5, abs=4 * result["cash-bkg.norm"].error)


def test_map_components_the_likelihood_would_ignore_raise_and_nuisances_act_on_maps():
    """Item 8 on map datasets (temporal model, unmodelled spatial dict, FoV spatial part, a model
    of a type the builder does not take), and the nuisance models' factors on a map's npred."""
    from tests.datasets.builders import CENTER, random_map

    dataset = random_map(np.random.default_rng(3), "map", npix=9)
    spatial = PointSpatialModel(lon_0=CENTER.ra, lat_0=CENTER.dec, frame="icrs")
    source = SkyModel(PowerLawSpectralModel(index=2.5, amplitude="3e-11 cm-2 s-1 TeV-1"), spatial, name="src")
    temporal = source.copy(name="temporal")
    temporal.temporal_dict = {"type": "ConstantTemporalModel"}
    unknown = SkyModel(source.spectral_model.copy(), name="unknown")
    unknown.spatial_dict = {"type": "SomeOtherSpatialModel"}
    for component, message in ((temporal, "temporal model"), (unknown, "cannot evaluate"),
                               (FoVBackgroundModel("map", spatial_dict={"type": "ConstantSpatialModel"}),
                                "spatial part")):
        dataset.models = Models([source, component])
        with pytest.raises(ModelError, match=message):
            dataset.npred()
    dataset.models = Models([source])
    reference = dataset.npred_signal().data
    dataset.models = Models([source, EffectiveAreaScaleModel(["map"], norm=0.8)])
    np.testing.assert_allclose(dataset.npred_signal().data, 0.8 * reference, rtol=1e-12)
    dataset.models = Models([source, EnergyScaleModel(["map"], z=0.1)])
    # a power law seen through an energy scale: (1 + z)^(index - 1) on every bin
    np.testing.assert_allclose(dataset.npred_signal().data, reference * 1.1 ** 1.5, rtol=1e-9)


def test_a_nuisance_on_a_dataset_type_that_cannot_take_it_is_refused():
    from bayesdl4.datasets import FluxPoints, FluxPointsDataset
    from bayesdl4.maps import MapAxis

    axis = MapAxis.from_energy_bounds("1 TeV", "10 TeV", nbin=3, name="energy")
    spectral = PowerLawSpectralModel(index=2.5, amplitude="3e-11 cm-2 s-1 TeV-1")
    dnde = spectral(axis.center)
    points = FluxPoints.from_sed("dnde", {"dnde": dnde, "dnde_err": 0.1 * dnde}, energy_min=axis.edges_min,
                                 energy_max=axis.edges_max)
    dataset = FluxPointsDataset(data=points, name="fp")
    dataset.models = Models([SkyModel(spectral, name="src"), EnergyScaleModel(["fp"], z=0.0)])
    with pytest.raises(ModelError, match="cannot act on flux points"):
        fit(Datasets([dataset]))
