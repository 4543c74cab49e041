"""MapDatasetOnOff WStat graph: gammapy 2.1's stat_sum and npred, gradients, a fit recovering the truth."""

import numpy as np
import pytest
from astropy import units as u
from astropy.coordinates import SkyCoord

from bayesdl4.datasets import Datasets
from bayesdl4.datasets.map import MapDataset, MapDatasetOnOff
from bayesdl4.errors import ModelError
from bayesdl4.inference import fit, logp_function
from bayesdl4.irf import PSFMap
from bayesdl4.maps import MapAxis, WcsGeom, WcsNDMap
from bayesdl4.models import (
    FoVBackgroundModel,
    Models,
    PointSpatialModel,
    PowerLawSpectralModel,
    SkyModel,
)
from bayesdl4.stats import wstat

TRUTH = dict(lon_0=83.63, lat_0=22.02, index=2.4, amplitude=1e-11)
MU_OFF = 0.6  # true mean OFF counts per bin: with alpha 0.1-0.5 most ON and many OFF bins are 0


def _models(placement, name="onoff", **values):
    values = TRUTH | values
    spatial = PointSpatialModel(
        lon_0=values["lon_0"] * u.deg,
        lat_0=values["lat_0"] * u.deg,
        frame="icrs",
        placement=placement,
    )
    spectral = PowerLawSpectralModel(
        index=values["index"], amplitude=values["amplitude"] * u.Unit("cm-2 s-1 TeV-1")
    )
    return Models([SkyModel(spectral, spatial, name="src")])


def _onoff_dataset(placement="gammapy", seed=0, name="onoff", width=1.2):
    """``width / 0.05`` pixels a side (24 x 24 by default), 3 reco / 4 true energy bins, Gaussian PSF; ON and OFF counts simulated from
    the truth with per-bin alpha in [0.1, 0.5] (0 in a few bins), a partial safe and fit mask."""
    rng = np.random.default_rng(seed)
    energy = MapAxis.from_energy_bounds("1 TeV", "10 TeV", 3, name="energy")
    energy_true = MapAxis.from_energy_bounds("0.7 TeV", "14 TeV", 4, name="energy_true")
    geom = WcsGeom.create(
        skydir=SkyCoord(83.63, 22.01, unit="deg"), width=width, binsz=0.05, axes=[energy]
    )
    base = MapDataset.create(geom, energy_axis_true=energy_true, binsz_irf=0.4, name=name)
    shape = geom.data_shape
    exposure_shape = base.exposure.data.shape
    base.exposure = WcsNDMap(
        base.exposure.geom, rng.uniform(0.8e10, 1.2e10, exposure_shape), "m2 s"
    )
    base.psf = PSFMap.from_gauss(
        energy_true, sigma=[0.12, 0.1, 0.08, 0.06] * u.deg, geom=base.psf.psf_map.geom
    )
    mask_safe = np.ones(shape, bool)
    mask_safe[0, :, :3] = False
    base.mask_safe = WcsNDMap(geom, mask_safe)
    mask_fit = np.ones(shape, bool)
    mask_fit[:, shape[1] * 5 // 6 :, :] = False
    base.mask_fit = WcsNDMap(geom, mask_fit)
    base.background = None
    base.models = _models(placement, name=name)
    signal = base.npred_signal().data
    acceptance_off = rng.uniform(2.0, 10.0, shape)
    acceptance = np.ones(shape)
    acceptance[1, 5:7, 5:7] = 0.0  # alpha = 0: gammapy's nan_to_num gives 0 there
    alpha = acceptance / acceptance_off
    counts = rng.poisson(signal + alpha * MU_OFF).astype(float)
    counts_off = rng.poisson(MU_OFF, shape).astype(float)
    dataset = MapDatasetOnOff.from_map_dataset(
        base,
        counts_off=WcsNDMap(geom, counts_off),
        acceptance=WcsNDMap(geom, acceptance),
        acceptance_off=WcsNDMap(geom, acceptance_off),
    )
    dataset.counts = WcsNDMap(geom, counts)
    dataset.models = _models(placement, name=name)
    return dataset


def test_simulated_dataset_has_the_edge_cases():
    dataset = _onoff_dataset()
    mask = dataset.mask
    on, off = dataset.counts.data[mask], dataset.counts_off.data[mask]
    assert (
        (on == 0).sum() > 1000 and (off == 0).sum() > 300 and ((on == 0) & (off == 0)).sum() > 100
    )
    assert (dataset.alpha.data[mask] == 0).sum() == 4
    assert dataset.counts.data.sum() > 500  # a clear source


def test_stat_sum_is_wstat_of_npred_signal():
    dataset = _onoff_dataset()
    signal = dataset.npred_signal().data
    expected = wstat(dataset.counts.data, dataset.counts_off.data, dataset.alpha.data, signal)
    np.testing.assert_allclose(dataset.stat_array(), expected, rtol=1e-12, atol=1e-12)
    assert dataset.stat_sum() == pytest.approx(expected[dataset.mask].sum(), rel=1e-12)
    # the compact likelihood of the fit (constant for bins no source reaches) is the same sum
    logp = logp_function(Datasets([dataset]))
    assert logp.log_likelihood(logp.x0) == pytest.approx(-0.5 * dataset.stat_sum(), rel=1e-10)
    # npred = signal + profiled background alpha * mu_bkg; its off-region mean is >= 0
    background = dataset.npred_background().data
    assert background.min() >= 0 and np.all(background[dataset.alpha.data == 0] == 0)
    np.testing.assert_allclose(dataset.npred().data, signal + background, rtol=1e-12)
    # without signal the profiled background is the ML estimate alpha (n_on + n_off) / (1 + alpha)
    empty = dataset.copy(name="empty")
    empty.models = None
    a = dataset.alpha.data
    np.testing.assert_allclose(
        empty.npred_background().data,
        a * (dataset.counts.data + dataset.counts_off.data) / (1 + a),
        rtol=1e-12,
        atol=1e-300,
    )


@pytest.mark.oracle
def test_stat_sum_and_npred_equal_gammapy(tmp_path):
    gp_datasets = pytest.importorskip("gammapy.datasets")
    gp_models = pytest.importorskip("gammapy.modeling.models")
    ours = _onoff_dataset(placement="gammapy")
    ours.write(tmp_path / "onoff.fits")
    theirs = gp_datasets.MapDatasetOnOff.read(tmp_path / "onoff.fits", name="onoff")
    theirs.models = [
        gp_models.SkyModel(
            spectral_model=gp_models.PowerLawSpectralModel(
                index=TRUTH["index"], amplitude=TRUTH["amplitude"] * u.Unit("cm-2 s-1 TeV-1")
            ),
            spatial_model=gp_models.PointSpatialModel(
                lon_0=TRUTH["lon_0"] * u.deg, lat_0=TRUTH["lat_0"] * u.deg, frame="icrs"
            ),
            name="src",
        )
    ]
    signal_theirs = theirs.npred_signal().data
    signal_ours = ours.npred_signal().data
    sel = signal_theirs > 1e-3 * signal_theirs.max()
    assert np.max(np.abs(signal_ours[sel] - signal_theirs[sel]) / signal_theirs[sel]) < 1e-4
    # gammapy's float32 signal leaves ~1e-7 where the profile is exactly 0 (n_off = 0, C < 0)
    np.testing.assert_allclose(
        ours.npred_background().data, theirs.npred_background().data, rtol=1e-4, atol=1e-6
    )
    stat_theirs = theirs.stat_sum()
    assert stat_theirs > 500
    assert ours.stat_sum() == pytest.approx(stat_theirs, abs=0.01)
    logp = logp_function(Datasets([ours]))
    assert logp.log_likelihood(logp.x0) == pytest.approx(-0.5 * stat_theirs, abs=0.005)
    # the file gammapy writes reads here to the same statistic
    theirs.write(tmp_path / "gp.fits")
    back = MapDataset.read(tmp_path / "gp.fits")
    assert type(back) is MapDatasetOnOff
    back.models = _models("gammapy")
    assert back.stat_sum() == pytest.approx(ours.stat_sum(), rel=1e-12)
    # off the truth too: a shifted source with another spectrum
    for m in (ours.models["src"], theirs.models["src"]):
        m.spatial_model.lon_0.value = 83.58
        m.spectral_model.index.value = 2.1
    assert ours.stat_sum() == pytest.approx(theirs.stat_sum(), abs=0.01)


@pytest.mark.parametrize("placement", ["gammapy", "exact"])
def test_gradients_match_finite_differences(placement):
    dataset = _onoff_dataset(placement)
    logp = logp_function(Datasets([dataset]))
    names = logp.names
    assert set(names) == {"src.lon_0", "src.lat_0", "src.index", "src.amplitude"}
    theta = logp.x0.copy()
    theta[names.index("src.lon_0")] += 0.013  # between pixel centres
    theta[names.index("src.index")] += 0.1
    _, grad = logp(theta)
    for i, name in enumerate(names):
        h = 2e-6 if name.endswith(("lon_0", "lat_0")) else 1e-5 * abs(theta[i])
        up, down = theta.copy(), theta.copy()
        up[i] += h
        down[i] -= h
        numeric = (logp(up)[0] - logp(down)[0]) / (2 * h)
        assert abs(numeric) > 0
        assert grad[i] == pytest.approx(numeric, rel=2e-3, abs=1e-3 * (1 + abs(numeric))), (
            placement,
            name,
        )


def test_map_fit_recovers_the_truth():
    dataset = _onoff_dataset("exact", seed=3)
    # start away from the truth
    dataset.models = _models("exact", lon_0=83.66, lat_0=22.0, index=2.1, amplitude=6e-12)
    start = dataset.stat_sum()
    result = fit(Datasets([dataset]))
    assert result.success, result.message
    assert result.total_stat < start - 10
    for name, truth in TRUTH.items():
        par = result[f"src.{name}"]
        assert par.error > 0
        assert abs(par.value - truth) < 3 * par.error, (name, par.value, par.error, truth)
    # the errors are those of a bright source: position to a few thousandths of a degree
    assert result["src.lon_0"].error < 0.01 and result["src.index"].error < 0.1


@pytest.mark.slow
def test_nuts_posterior_covers_the_truth():
    from bayesdl4.inference import sample

    dataset = _onoff_dataset("exact", seed=3)
    idata = sample(
        Datasets([dataset]), draws=200, tune=200, chains=2, random_seed=1, progressbar=False
    )
    posterior = idata["posterior"]
    for name, truth in TRUTH.items():
        draws = np.asarray(posterior[f"src.{name}"]).ravel()
        assert abs(draws.mean() - truth) < 3 * draws.std(), (name, draws.mean(), draws.std())
    assert draws.size == 400


def test_background_model_on_onoff_is_refused():
    dataset = _onoff_dataset()
    dataset.models = list(dataset.models) + [FoVBackgroundModel("onoff")]
    with pytest.raises(ModelError, match=r"'onoff' is a MapDatasetOnOff.*'onoff-bkg'.*remove it"):
        dataset.stat_sum()


def test_joint_with_an_onoff_spectrum_adds_the_statistics():
    from tests.io.conftest import make_spectrum_dataset

    onoff_map = _onoff_dataset()
    spectrum = make_spectrum_dataset(onoff=True)
    models = list(onoff_map.models)
    models[0].datasets_names = ["onoff"]
    spectral = PowerLawSpectralModel(index=2.2, amplitude=1e-11 * u.Unit("cm-2 s-1 TeV-1"))
    datasets = Datasets([onoff_map, spectrum])
    datasets.models = models + [SkyModel(spectral, name="spec", datasets_names=[spectrum.name])]
    assert onoff_map.models.names == ["src"] and spectrum.models.names == ["spec"]
    expected = onoff_map.stat_sum() + spectrum.stat_sum()
    assert spectrum.stat_sum() > 10 and onoff_map.stat_sum() > 500
    logp = logp_function(datasets)
    assert -2 * logp.log_likelihood(logp.x0) == pytest.approx(expected, rel=1e-10)


def test_new_counts_of_an_onoff_map_reuse_the_compiled_functions():
    """Issue 11: ON and OFF counts of a map enter the WStat density as inputs, so fake + fit in a
    loop compiles once; each fit sees its own counts (its statistic is gammapy's WStat sum of them)."""
    from bayesdl4 import compiled

    dataset = _onoff_dataset()
    truth = dataset.alpha.data * MU_OFF
    fit(Datasets([dataset]))  # compiles (or loads) what a fit needs
    stats = []
    for seed in (1, 2):
        dataset.models = _models("gammapy")
        dataset.fake(random_seed=seed, npred_background=truth)
        before = compiled.stats()
        result = fit(Datasets([dataset]))
        after = compiled.stats()
        assert after["compiled"] == before["compiled"] and after["disk_hits"] == before["disk_hits"]
        assert result.success
        expected = wstat(dataset.counts.data, dataset.counts_off.data, dataset.alpha.data,
                         dataset.npred_signal().data)[dataset.mask].sum()
        assert result.total_stat == pytest.approx(expected, rel=1e-9)
        stats.append(result.total_stat)
    assert stats[0] != stats[1]


def test_a_point_source_moved_in_an_onoff_map_reuses_the_compiled_functions():
    """Issue 11: as for `MapDataset`, a point source's position-dependent arrays and the bins it
    reaches enter the ON/OFF map graph as inputs: moving the source compiles nothing, and at each
    position the reused functions give the statistic of a graph built there with constants."""
    from bayesdl4 import compiled
    from bayesdl4.graph.map_onoff import map_onoff_tensors, prepare_map_onoff

    dataset = _onoff_dataset(width=3.0)  # the cutouts stay inside the map
    truth = dataset.alpha.data * MU_OFF
    warm = logp_function(Datasets([dataset]))
    warm.log_likelihood(warm.x0)
    fit(Datasets([dataset]))  # compiles (or loads) what logp_function and fit need
    for seed, (lon, lat) in enumerate([(83.93, 21.81), (83.38, 22.27)], start=1):
        dataset.models = _models("gammapy", lon_0=lon, lat_0=lat)
        dataset.fake(random_seed=seed, npred_background=truth)
        before = compiled.stats()
        logp = logp_function(Datasets([dataset]))
        reference = float(map_onoff_tensors(prepare_map_onoff(dataset), {})[0].sum().eval())
        assert logp.log_likelihood(logp.x0) == pytest.approx(-0.5 * reference, rel=1e-10)
        result = fit(Datasets([dataset]))
        after = compiled.stats()
        assert after["compiled"] == before["compiled"] and after["disk_hits"] == before["disk_hits"]
        assert result.success
        for name, value in (("src.lon_0", lon), ("src.lat_0", lat)):
            assert abs(result[name].value - value) < 4 * result[name].error, (name, result[name], value)
        expected = wstat(dataset.counts.data, dataset.counts_off.data, dataset.alpha.data,
                         dataset.npred_signal().data)[dataset.mask].sum()
        assert result.total_stat == pytest.approx(expected, rel=1e-9)
