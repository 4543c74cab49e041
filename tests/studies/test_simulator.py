"""Simulator: truths from the priors, predictions equal to the datasets' npred, Poisson repetitions."""

import pickle

import numpy as np
import pytest
from scipy import stats

from bayesdl4 import compiled
from bayesdl4 import models as m
from bayesdl4.datasets.simulate import simple_irf_dataset, simulate_spectrum_runs
from bayesdl4.errors import DataFormatError, ModelError
from bayesdl4.studies import Simulator, effective_priors
from tests.studies.conftest import TRUTH, log_parabola


@pytest.mark.parametrize("onoff", [True, False])
def test_prediction_is_the_datasets_npred_at_the_truth(onoff):
    models = log_parabola()
    template = simulate_spectrum_runs(models, 3, random_seed=4, onoff=onoff)
    simulator = Simulator(template, models)
    predicted = simulator.predict(TRUTH)
    spectral = models["crab"].spectral_model
    for name, value in TRUTH.items():
        getattr(spectral, name.split(".")[1]).value = value
    template.models = models
    for dataset, (signal, background) in zip(template, predicted, strict=True):
        np.testing.assert_allclose(signal, dataset.npred_signal().data, rtol=1e-12, atol=1e-12)
        # On/Off: the true background is the template's alpha x counts_off; Cash: its background
        np.testing.assert_allclose(background, dataset.background.data, rtol=1e-12)
        assert signal.sum() > 100


def test_repetitions_are_poisson_draws_of_the_prediction(onoff_sim):
    (signal, background), *_ = onoff_sim.predict(TRUTH)
    alpha = onoff_sim.template[0].alpha.data
    on = np.array([onoff_sim.simulate(TRUTH, seed)[0].counts.data for seed in range(400)])
    off = np.array([onoff_sim.simulate(TRUTH, seed)[0].counts_off.data for seed in range(400)])
    mean, mean_off = signal + background, background / alpha
    # totals over the spectrum: 400 Poisson sums, mean within 4 standard errors
    for draws, expected in ((on, mean), (off, mean_off)):
        totals = draws.reshape(400, -1).sum(axis=1)
        assert abs(totals.mean() - expected.sum()) < 4 * np.sqrt(expected.sum() / 400)
        assert np.var(totals) == pytest.approx(expected.sum(), rel=0.25)


def test_same_seed_same_datasets_and_fresh_models_at_their_start(onoff_sim):
    a, b = onoff_sim.simulate(TRUTH, 7), onoff_sim.simulate(TRUTH, 7)
    c = onoff_sim.simulate(TRUTH, 8)
    np.testing.assert_array_equal(a[1].counts_off.data, b[1].counts_off.data)
    assert not np.array_equal(a[1].counts.data, c[1].counts.data)
    assert a.models["crab"].spectral_model.alpha.value == 2.3  # the start, not the truth
    assert a.models["crab"] is not b.models["crab"]
    assert a[0].exposure is onoff_sim.template[0].exposure  # IRFs shared, not copied


def test_truths_follow_the_priors():
    simulator = Simulator([simple_irf_dataset()], log_parabola(alpha=(2.0, 3.0)))
    draws = [simulator.draw_parameters(seed) for seed in range(2000)]
    alpha = np.array([d["crab.alpha"] for d in draws])
    amplitude = np.array([d["crab.amplitude"] for d in draws])
    assert stats.kstest(alpha, stats.uniform(2.0, 1.0).cdf).pvalue > 0.01
    assert stats.kstest(np.log10(amplitude), stats.uniform(-13, 4).cdf).pvalue > 0.01
    assert simulator.draw_parameters(5) == simulator.draw_parameters(5)


def test_bounds_restrict_the_prior_as_in_the_model():
    models = log_parabola()
    models["crab"].spectral_model.alpha.min = 2.0
    priors = effective_priors(models)
    assert priors["crab.alpha"].support == (2.0, 5.0)
    simulator = Simulator([simple_irf_dataset()], models)
    assert min(simulator.draw_parameters(s)["crab.alpha"] for s in range(200)) >= 2.0


def test_improper_and_weighted_priors_are_refused_by_name():
    models = log_parabola()
    models["crab"].spectral_model.beta.prior = None
    with pytest.raises(ModelError, match="crab.beta.*improper"):
        Simulator([simple_irf_dataset()], models)
    models["crab"].spectral_model.beta.prior = m.UniformPrior(-1, 1, weight=2.0)
    with pytest.raises(ModelError, match="crab.beta.*weight 2"):
        Simulator([simple_irf_dataset()], models)


def test_background_of_wrong_shape_is_refused(onoff_sim):
    with pytest.raises(DataFormatError, match="run0.*shape"):
        Simulator(onoff_sim.template, onoff_sim.models, background=[np.ones(3)] * 3)


def test_a_pickled_simulator_predicts_the_same_and_compiles_nothing_new(onoff_sim):
    expected = onoff_sim.predict(TRUTH)
    copy = pickle.loads(pickle.dumps(onoff_sim))
    assert copy._prediction is None  # the compiled function does not travel
    before = compiled.stats()["compiled"]
    for (s, b), (s2, b2) in zip(expected, copy.predict(TRUTH), strict=True):
        np.testing.assert_array_equal(s, s2)
        np.testing.assert_array_equal(b, b2)
    assert compiled.stats()["compiled"] == before  # same graph: found in the compiled-function cache


def test_map_template_prediction_is_the_npred():
    from astropy import units as u
    from astropy.coordinates import SkyCoord

    from bayesdl4.datasets import MapDataset
    from bayesdl4.irf import PSFMap
    from bayesdl4.maps import MapAxis, WcsGeom, WcsNDMap

    energy = MapAxis.from_energy_bounds("1 TeV", "10 TeV", 3, name="energy")
    energy_true = MapAxis.from_energy_bounds("0.7 TeV", "14 TeV", 4, name="energy_true")
    geom = WcsGeom.create(skydir=SkyCoord(83.63, 22.01, unit="deg"), width=1.2, binsz=0.05, axes=[energy])
    dataset = MapDataset.create(geom, energy_axis_true=energy_true, name="map")
    dataset.exposure = WcsNDMap(dataset.exposure.geom, np.full(dataset.exposure.data.shape, 1e10), "m2 s")
    dataset.background = WcsNDMap(geom, np.full(dataset.counts.data.shape, 0.5))
    dataset.psf = PSFMap.from_gauss(energy_true, sigma=[0.12, 0.1, 0.08, 0.06] * u.deg)
    dataset.mask_safe = WcsNDMap(geom, np.ones(dataset.counts.data.shape, dtype=bool))
    spectral = m.PowerLawSpectralModel(index=2.5, amplitude="2e-12 cm-2 s-1 TeV-1")
    spectral.index.prior = m.UniformPrior(2, 3)
    spectral.amplitude.prior = m.LogUniformPrior(1e-12, 1e-11)
    spatial = m.PointSpatialModel(lon_0="83.63 deg", lat_0="22.02 deg", frame="icrs")
    spatial.lon_0.frozen = spatial.lat_0.frozen = True
    dataset.models = m.Models([m.SkyModel(spectral, spatial, name="src")])
    simulator = Simulator([dataset])
    assert simulator.names == ["src.index", "src.amplitude"]
    (signal, background), = simulator.predict({"src.index": 2.5, "src.amplitude": 2e-12})
    np.testing.assert_allclose(signal, dataset.npred_signal().data, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(background, 0.5)
    assert signal.shape == (3, 24, 24) and signal.sum() > 100
    counts = simulator.simulate({"src.index": 2.5, "src.amplitude": 2e-12}, 1)[0].counts.data
    assert abs(counts.sum() - (signal + background).sum()) < 4 * np.sqrt((signal + background).sum())
