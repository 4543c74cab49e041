"""MAP fits: analytic optimum, simulation truth and gammapy's Fit on real data."""

import numpy as np
import pytest
from astropy import units as u

from bayesdl4.datasets import Datasets, SpectrumDatasetOnOff
from bayesdl4.datasets.simulate import fake_counts, simple_irf_dataset
from bayesdl4.errors import InferenceError
from bayesdl4.inference import fit
from bayesdl4.models import Models, PowerLawSpectralModel, SkyModel
from tests.conftest import gammapy_data
from tests.helpers import TRUTH, simulated_onoff


def test_cash_amplitude_only_has_the_analytic_optimum():
    """One free amplitude, no background: MLE is N / (exposure-weighted unit flux), error sqrt(N) / same."""
    dataset = simple_irf_dataset(name="analytic", background_rate="0 s-1 TeV-1")
    model = PowerLawSpectralModel(index=2.2, amplitude="1e-11 cm-2 s-1 TeV-1")
    model.index.frozen = True
    dataset.models = Models([SkyModel(model, name="src")])
    unit_npred = dataset.npred_signal().data.sum() / 1e-11
    dataset.background = None
    fake_counts(dataset, random_seed=1)
    n_total = dataset.counts.data.sum()
    result = fit(Datasets([dataset]))
    assert result.success
    expected = n_total / unit_npred
    np.testing.assert_allclose(result["src.amplitude"].value, expected, rtol=1e-7)
    np.testing.assert_allclose(result["src.amplitude"].error, np.sqrt(n_total) / unit_npred, rtol=1e-4)
    # best fit is written back to the model
    assert model.amplitude.value == pytest.approx(expected, rel=1e-7)


def test_joint_onoff_fit_recovers_truth():
    datasets = simulated_onoff(n=3)
    result = fit(datasets)
    assert result.success
    for name in ("index", "amplitude"):
        par = result[f"src.{name}"]
        assert abs(par.value - TRUTH[name]) < 3 * par.error, par
    np.testing.assert_allclose(result.total_stat, datasets.stat_sum(), rtol=1e-10)
    assert result.covariance.shape == (2, 2)
    assert -1 < result.correlation[0, 1] < 1


def test_fit_refuses_datasets_without_models():
    dataset = simple_irf_dataset(name="nomodel")
    with pytest.raises(InferenceError, match="no models"):
        fit(Datasets([dataset]))


@pytest.mark.oracle
@pytest.mark.parametrize("tag", ["PL", "ECPL"])
def test_fit_simulated_spectrum_matches_gammapy(tag):
    gp_datasets = pytest.importorskip("gammapy.datasets")
    gp_models = pytest.importorskip("gammapy.modeling.models")
    gp_modeling = pytest.importorskip("gammapy.modeling")
    folder = gammapy_data() / "datasets/simulations"
    path = folder / f"simulated_spectrum_dataset_{tag}.fits"
    model_path = folder / f"simulated_spectrum_dataset_{tag}_model.yaml"
    ours = SpectrumDatasetOnOff.read(path)
    ours.models = Models.read(model_path)
    theirs = gp_datasets.SpectrumDatasetOnOff.read(path)
    theirs.models = gp_models.Models.read(model_path)
    truth = {p.name: p.value for p in ours.models.parameters}
    # start away from the truth on both sides
    for models in (ours.models, theirs.models):
        for par in models.parameters:
            if not par.frozen and par.name == "index":
                par.value *= 1.1
    result = fit(Datasets([ours]))
    gp_result = gp_modeling.Fit().run(gp_datasets.Datasets([theirs]))
    assert result.success and gp_result.success
    gp_pars = {p.name: p for p in theirs.models.parameters.free_parameters}
    for name, par in result.parameters.items():
        short = name.split(".", 1)[1]
        gp = gp_pars[short]
        assert abs(par.value - truth[short]) < 3 * par.error, (name, par, truth[short])
        assert par.value == pytest.approx(gp.value, rel=1e-3, abs=0.05 * gp.error)
        assert par.error == pytest.approx(gp.error, rel=0.05), (name, par.error, gp.error)
    assert result.total_stat == pytest.approx(gp_result.total_stat, abs=1e-3)


@pytest.mark.realdata
def test_onoff_fit_range_mask_is_respected():
    path = gammapy_data() / "joint-crab/spectra/hess/pha_obs23523.fits"
    dataset = SpectrumDatasetOnOff.read(path)
    geom = dataset.counts.geom
    dataset.mask_fit = geom.energy_mask(0.66 * u.TeV, 30 * u.TeV)
    dataset.models = Models([SkyModel(PowerLawSpectralModel(index=2.6, amplitude="3e-11 cm-2 s-1 TeV-1"),
                                      name="crab")])
    result = fit(Datasets([dataset]))
    assert result.success
    assert 2.2 < result["crab.index"].value < 3.0
    assert 1e-11 < result["crab.amplitude"].value < 1e-10


def test_fit_result_write_read_roundtrip(tmp_path):
    from bayesdl4.inference import FitResult, provenance, read, write

    datasets = simulated_onoff(n=1, seed=21)
    result = fit(datasets)
    path = tmp_path / "fit.nc"
    write(result, path)
    back = FitResult.from_datatree(read(path))
    assert back.names == result.names and back.success == result.success
    assert back.total_stat == result.total_stat
    np.testing.assert_array_equal(back.covariance, result.covariance)
    assert back["src.index"].value == result["src.index"].value
    assert back["src.amplitude"].unit == "1 / (TeV s cm2)"
    assert provenance(read(path))["datasets"] == ["run0"]


def test_preconditioner_is_one_over_sqrt_curvature():
    """L-BFGS-B steps in z = x / s, s = 1 / sqrt(|d2 logp / dx2|) at the start; 1 where flat."""
    from bayesdl4.inference.fit import _preconditioner

    curvature = np.array([1e4, 1.0, 1e-2, 0.0])

    def fn(x):
        return -0.5 * np.sum(curvature * x**2), -curvature * x, 0.0

    s = _preconditioner(fn, np.array([0.3, -1.0, 2.0, 5.0]))
    np.testing.assert_allclose(s, [1e-2, 1.0, 10.0, 1.0], rtol=1e-6)


def test_errors_from_a_far_off_start_come_from_the_optimum():
    """Issue 12, item 6: an amplitude starting at 1e-18 (truth 3e-11) gets the error of a fit
    started near the truth, not one scaled by the start value."""
    near = fit(simulated_onoff(n=1, seed=31))
    far_datasets = simulated_onoff(n=1, seed=31)
    amplitude = far_datasets.models["src"].spectral_model.amplitude
    amplitude.prior = None
    amplitude.min = 0.0
    amplitude.value = 1e-18
    amplitude.autoscale()
    far = fit(far_datasets)
    assert far.success, far.message
    for name in ("src.index", "src.amplitude"):
        assert far[name].value == pytest.approx(near[name].value, rel=1e-4)
        assert far[name].error == pytest.approx(near[name].error, rel=1e-3)


def test_prior_support_is_intersected_with_min_max():
    """Issue 12, item 3: a prior does not override the parameter's min / max."""
    from bayesdl4.errors import ModelError
    from bayesdl4.models import GaussianPrior, UniformPrior

    datasets = simulated_onoff(n=1, seed=32)
    index = datasets.models["src"].spectral_model.index
    index.min, index.max = 1.0, 5.0
    index.prior = UniformPrior(6, 9)
    with pytest.raises(ModelError, match="src.index.*do not overlap"):
        fit(datasets)
    index.prior = UniformPrior(1, 4)
    amplitude = datasets.models["src"].spectral_model.amplitude
    amplitude.prior = GaussianPrior(0.0, 1e-10)  # would allow negative amplitudes
    amplitude.min = 0.0
    result = fit(datasets)
    assert result["src.amplitude"].value > 0
    # the truncated Gaussian is renormalised on [0, inf): twice the density
    from bayesdl4.inference import logp_function

    logp = logp_function(datasets)
    theta = np.array([2.5, 3e-11])
    expected = logp.log_likelihood(theta) - np.log(3.0) + np.log(2.0) + GaussianPrior(0.0, 1e-10).logpdf(3e-11)
    np.testing.assert_allclose(logp(theta)[0], expected, rtol=1e-10)


def test_every_bin_masked_and_nan_start_are_clear_errors():
    """Issue 12, item 9 (inference part)."""
    from bayesdl4.errors import ModelError
    from bayesdl4.maps import RegionNDMap

    datasets = simulated_onoff(n=1, seed=33)
    dataset = datasets[0]
    dataset.mask_fit = RegionNDMap(dataset.counts.geom, np.zeros(dataset.counts.geom.data_shape, dtype=bool))
    with pytest.raises(InferenceError, match="no fitted bins"):
        fit(datasets)
    datasets = simulated_onoff(n=1, seed=33)
    datasets.models["src"].spectral_model.index.value = np.nan
    with pytest.raises(ModelError, match="src.index.*not finite"):
        fit(datasets)
    import gc

    assert gc.isenabled()  # the collector paused while building the model runs again after an error


def test_sampling_that_starts_at_a_prior_edge_is_a_named_error():
    """Issue 12, item 9: a start value on the edge of its prior (where the sampler's transform is
    infinite) is refused before sampling, naming the parameter (was: PyMC's 'All initialization
    points failed')."""
    from bayesdl4.errors import ModelError
    from bayesdl4.inference import sample
    from bayesdl4.models import UniformPrior

    datasets = simulated_onoff(n=1, seed=34)
    index = datasets.models["src"].spectral_model.index
    index.prior = UniformPrior(2.0, 4.0)
    index.value = 2.0
    with pytest.raises(ModelError, match="src.index.*edge of its prior support"):
        sample(datasets, draws=10, tune=10, chains=1, progressbar=False)
