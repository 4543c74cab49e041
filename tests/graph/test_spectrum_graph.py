"""npred and statistic graphs of spectrum datasets against numpy algebra and gammapy."""

import numpy as np
import pytest
from astropy import units as u

from bayesdl4.datasets import Datasets, SpectrumDatasetOnOff
from bayesdl4.graph import ParameterTable, graph_inputs, plan_groups
from bayesdl4.maps import RegionNDMap
from bayesdl4.models import LogParabolaSpectralModel, Models, PowerLawSpectralModel, SkyModel
from bayesdl4.stats import cash, wstat
from tests.conftest import gammapy_data
from tests.helpers import simulated_onoff


def _expected_signal(dataset, spectral):
    axis = dataset.energy_axis_true
    flux = spectral.integral(axis.edges_min, axis.edges_max).to_value("cm-2 s-1")
    exposure = dataset.exposure.quantity.to_value("cm2 s").ravel()
    return (flux * exposure) @ dataset.edisp.pdf_matrix


def test_npred_signal_is_flux_times_exposure_through_edisp():
    datasets = simulated_onoff(n=1)
    dataset = datasets[0]
    spectral = dataset.models[0].spectral_model
    np.testing.assert_allclose(dataset.npred_signal().data.ravel(), _expected_signal(dataset, spectral),
                               rtol=1e-10)


def test_two_sources_add_and_model_names_select():
    datasets = simulated_onoff(n=1)
    dataset = datasets[0]
    a = PowerLawSpectralModel(index=2.0, amplitude="1e-11 cm-2 s-1 TeV-1")
    b = PowerLawSpectralModel(index=3.0, amplitude="2e-11 cm-2 s-1 TeV-1")
    dataset.models = [SkyModel(a, name="a"), SkyModel(b, name="b")]
    total = dataset.npred_signal().data.ravel()
    only_b = dataset.npred_signal(model_names=["b"]).data.ravel()
    np.testing.assert_allclose(total, _expected_signal(dataset, a) + _expected_signal(dataset, b), rtol=1e-10)
    np.testing.assert_allclose(only_b, _expected_signal(dataset, b), rtol=1e-10)


def test_stat_sum_uses_masked_bins_and_wstat():
    datasets = simulated_onoff(n=1)
    dataset = datasets[0]
    geom = dataset.counts.geom
    dataset.mask_fit = geom.energy_mask(1 * u.TeV, 30 * u.TeV)
    mu = dataset.npred_signal().data.ravel()
    per_bin = wstat(dataset.counts.data.ravel(), dataset.counts_off.data.ravel(), dataset.alpha.data.ravel(), mu)
    mask = dataset.mask_bins
    assert 0 < mask.sum() < mask.size
    np.testing.assert_allclose(dataset.stat_sum(), per_bin[mask].sum(), rtol=1e-12)


def _plans(datasets):
    return plan_groups(datasets, ParameterTable(datasets.models))


def test_graph_keeps_only_bins_that_matter_and_shares_flux():
    datasets = simulated_onoff(n=2)
    for dataset in datasets:
        geom = dataset.counts.geom
        dataset.mask_fit = RegionNDMap(geom, geom.energy_mask(1 * u.TeV, 10 * u.TeV))
    (plan,) = _plans(datasets)  # one group: same statistic and model structure
    assert plan.arrays["counts"].size == sum(d.mask_bins.sum() for d in datasets)
    n_true = datasets[0].energy_axis_true.nbin
    rows = plan.arrays["src0.inverse"].size
    assert rows < 2 * n_true  # true-energy bins that cannot reach a fitted bin are dropped
    # same binning and source: one flux integral per distinct true-energy bin serves both datasets
    assert plan.arrays["src0.lo"].size == rows // 2
    np.testing.assert_array_equal(plan.arrays["src0.inverse"][: rows // 2], plan.arrays["src0.inverse"][rows // 2:])


def _graph_size(n):
    import pytensor.tensor as pt
    from pytensor.graph.traversal import io_toposort

    datasets = simulated_onoff(n=n, seed=5)
    table = ParameterTable(datasets.models)
    (plan,) = plan_groups(datasets, table)
    inputs = graph_inputs(plan.arrays)
    theta = pt.dvector("theta")
    graph = plan.builder.build(plan, inputs, theta, {})
    total = graph.loglike_datasets.sum()
    return len(io_toposort([theta, *inputs.values()], [total, pt.grad(total, theta)]))


def test_graph_size_does_not_grow_with_the_number_of_datasets():
    assert _graph_size(2) == _graph_size(12)


def test_per_run_parameters_are_gathered_not_repeated():
    """Per-dataset amplitudes (a variability model) keep one graph; each dataset sees its own."""
    from bayesdl4.models import per_dataset

    datasets = simulated_onoff(n=3, seed=6)
    datasets.models = per_dataset(datasets.models, datasets, ["src.amplitude"])
    for k, dataset in enumerate(datasets):
        dataset.models[0].spectral_model.amplitude.value = (k + 1) * 1e-11
    (plan,) = _plans(datasets)
    assert plan.arrays["src0.idx0"].size == plan.arrays["src0.lo"].size  # one flux per (bin, run)
    for dataset in datasets:
        expected = _expected_signal(dataset, dataset.models[0].spectral_model)
        np.testing.assert_allclose(dataset.npred_signal().data.ravel(), expected, rtol=1e-10)
        assert dataset.models[0].spectral_model.index is datasets[0].models[0].spectral_model.index


def test_cash_dataset_with_background():
    datasets = simulated_onoff(n=1)
    from bayesdl4.datasets.simulate import fake_counts, simple_irf_dataset

    dataset = simple_irf_dataset(name="cash")
    dataset.models = datasets.models
    fake_counts(dataset, random_seed=3)
    mu = dataset.npred_signal().data.ravel() + dataset.background.data.ravel()
    np.testing.assert_allclose(dataset.npred().data.ravel(), mu, rtol=1e-12)
    np.testing.assert_allclose(dataset.stat_sum(), cash(dataset.counts.data.ravel(), mu).sum(), rtol=1e-12)


@pytest.mark.oracle
def test_npred_and_stat_equal_gammapy_on_hess_spectrum():
    gp_datasets = pytest.importorskip("gammapy.datasets")
    gp_models = pytest.importorskip("gammapy.modeling.models")
    path = gammapy_data() / "joint-crab/spectra/hess/pha_obs23523.fits"
    ours = SpectrumDatasetOnOff.read(path)
    theirs = gp_datasets.SpectrumDatasetOnOff.read(path)
    geom = ours.counts.geom
    ours.mask_fit = geom.energy_mask(0.66 * u.TeV, 30 * u.TeV)
    theirs.mask_fit = theirs.counts.geom.energy_mask(0.66 * u.TeV, 30 * u.TeV)
    kwargs = dict(amplitude=3.8e-11 * u.Unit("cm-2 s-1 TeV-1"), reference=1 * u.TeV, alpha=2.5, beta=0.12)
    ours.models = Models([SkyModel(LogParabolaSpectralModel(**kwargs), name="crab")])
    theirs.models = [gp_models.SkyModel(spectral_model=gp_models.LogParabolaSpectralModel(**kwargs), name="crab")]
    # gammapy integrates log-parabolas with log-log trapezoids (5 nodes per bin here): ~2e-5 relative
    np.testing.assert_allclose(ours.npred_signal().data.ravel(), theirs.npred_signal().data.ravel(), rtol=5e-5)
    assert abs(ours.stat_sum() - theirs.stat_sum()) < 1e-3
    # a power law has an exact integral in both: agreement to rounding
    kwargs = dict(amplitude=3.8e-11 * u.Unit("cm-2 s-1 TeV-1"), reference=1 * u.TeV, index=2.6)
    ours.models = Models([SkyModel(PowerLawSpectralModel(**kwargs), name="crab")])
    theirs.models = [gp_models.SkyModel(spectral_model=gp_models.PowerLawSpectralModel(**kwargs), name="crab")]
    np.testing.assert_allclose(ours.npred_signal().data.ravel(), theirs.npred_signal().data.ravel(), rtol=1e-9)
    np.testing.assert_allclose(ours.npred_background().data.ravel(), theirs.npred_background().data.ravel(),
                               rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(ours.stat_sum(), theirs.stat_sum(), rtol=1e-9)
    assert len(Datasets([ours])) == 1
