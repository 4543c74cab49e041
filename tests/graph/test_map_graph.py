"""Map npred graph: gammapy's HAWC numbers, compact likelihood, gradients across pixel boundaries."""

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from astropy import units as u
from astropy.coordinates import SkyCoord
from scipy.special import erf

from bayesdl4.datasets import Datasets
from bayesdl4.datasets.map import MapDataset
from bayesdl4.graph.map import _interp_profile, _pixel_averaged_profile
from bayesdl4.inference import logp_function
from bayesdl4.irf import PSFMap
from bayesdl4.maps import MapAxis, WcsGeom, WcsNDMap
from bayesdl4.models import (
    FoVBackgroundModel,
    LogParabolaSpectralModel,
    Models,
    PointSpatialModel,
    PowerLawSpectralModel,
    SkyModel,
)
from tests.conftest import gammapy_data

CRAB = dict(lon_0=83.63 * u.deg, lat_0=22.02 * u.deg)
LP = dict(amplitude=3.5e-13 * u.Unit("cm-2 s-1 TeV-1"), reference=7 * u.TeV, alpha=2.8, beta=0.12)


def _small_dataset(placement="gammapy", width=1.2):
    """A 3-energy-bin dataset of ``width`` deg a side in 0.05 deg pixels (24 x 24 by default) with a
    Gaussian PSF and flat exposure and background."""
    energy = MapAxis.from_energy_bounds("1 TeV", "10 TeV", 3, name="energy")
    energy_true = MapAxis.from_energy_bounds("0.7 TeV", "14 TeV", 4, name="energy_true")
    geom = WcsGeom.create(skydir=SkyCoord(83.63, 22.01, unit="deg"), width=width, binsz=0.05, axes=[energy])
    dataset = MapDataset.create(geom, energy_axis_true=energy_true, name="small")
    dataset.exposure = WcsNDMap(dataset.exposure.geom, np.full(dataset.exposure.data.shape, 1e10), "m2 s")
    dataset.background = WcsNDMap(geom, np.full(dataset.counts.data.shape, 0.5))
    dataset.psf = PSFMap.from_gauss(energy_true, sigma=[0.12, 0.1, 0.08, 0.06] * u.deg)
    dataset.mask_safe = WcsNDMap(geom, np.ones(dataset.counts.data.shape, dtype=bool))
    spatial = PointSpatialModel(frame="icrs", placement=placement, **CRAB)
    model = SkyModel(PowerLawSpectralModel(index=2.5, amplitude="2e-12 cm-2 s-1 TeV-1"), spatial, name="src")
    dataset.models = Models([model, FoVBackgroundModel("small")])
    rng = np.random.default_rng(1)
    dataset.counts = WcsNDMap(geom, rng.poisson(dataset.npred().data).astype(float))
    return dataset


@pytest.mark.parametrize("placement", ["gammapy", "exact"])
def test_compact_likelihood_equals_full_statistic(placement):
    dataset = _small_dataset(placement)
    logp = logp_function(Datasets([dataset]))
    np.testing.assert_allclose(logp.log_likelihood(logp.x0), -0.5 * dataset.stat_sum(), rtol=1e-10)
    # the point source conserves its flux: signal sums to flux x exposure (PSF inside the map)
    signal = dataset.npred_signal().data.sum()
    assert signal > 10


@pytest.mark.parametrize("placement", ["gammapy", "exact"])
def test_gradients_match_finite_differences_across_pixel_boundaries(placement):
    dataset = _small_dataset(placement)
    logp = logp_function(Datasets([dataset]))
    names = logp.names
    # positions just below, on and above a pixel boundary in lon (pixels are 0.05 deg)
    for shift in (-0.0251, -0.0249, 0.013):
        theta = logp.x0.copy()
        theta[names.index("src.lon_0")] += shift
        _, grad = logp(theta)
        for i, name in enumerate(names):
            # positions: a step far below the PSF profile's node spacing, where the
            # piecewise-linear interpolation has kinks
            h = 2e-6 if name.endswith(("lon_0", "lat_0")) else 1e-5 * abs(theta[i])
            up, down = theta.copy(), theta.copy()
            up[i] += h
            down[i] -= h
            numeric = (logp(up)[0] - logp(down)[0]) / (2 * h)
            assert grad[i] == pytest.approx(numeric, rel=2e-3, abs=1e-3 * (1 + abs(numeric))), (placement, shift, name)


@pytest.mark.oracle
def test_hawc_npred_and_stat_equal_gammapy():
    gp_datasets = pytest.importorskip("gammapy.datasets")
    gp_models = pytest.importorskip("gammapy.modeling.models")
    path = gammapy_data() / "hawc/DL4/nHit-5.fits.gz"
    ours = MapDataset.read(path, name="nHit-5")
    spatial = PointSpatialModel(frame="icrs", placement="gammapy", **CRAB)  # gammapy's numbers bin by bin
    ours.models = Models([SkyModel(LogParabolaSpectralModel(**LP), spatial, name="crab"), FoVBackgroundModel("nHit-5")])
    theirs = gp_datasets.MapDataset.read(path, name="nHit-5")
    theirs.models = [
        gp_models.SkyModel(spectral_model=gp_models.LogParabolaSpectralModel(**LP),
                           spatial_model=gp_models.PointSpatialModel(frame="icrs", **CRAB), name="crab"),
        gp_models.FoVBackgroundModel(dataset_name="nHit-5"),
    ]
    npred_ours, npred_theirs = ours.npred().data, theirs.npred().data
    mask = theirs.mask_safe.data
    sel = mask & (npred_theirs > 1e-3 * npred_theirs[mask].max())
    rel = np.abs(npred_ours[sel] - npred_theirs[sel]) / npred_theirs[sel]
    assert rel.max() < 1e-3
    assert abs(ours.stat_sum() - theirs.stat_sum()) < 0.01
    logp = logp_function(Datasets([ours]))
    assert logp.log_likelihood(logp.x0) == pytest.approx(-0.5 * theirs.stat_sum(), abs=0.005)


@pytest.mark.oracle
def test_fermi_crab_npred_and_stat_equal_gammapy():
    gp_datasets = pytest.importorskip("gammapy.datasets")
    folder = gammapy_data() / "fermi-3fhl-crab"
    files = (folder / "Fermi-LAT-3FHL_datasets.yaml", folder / "Fermi-LAT-3FHL_models.yaml")
    ours = Datasets.read(files[0], filename_models=files[1])[0]
    # gammapy's YAML has no placement: the default "exact"; gammapy's numbers need "gammapy"
    assert ours.models["Crab Nebula"].spatial_model.placement == "exact"
    ours.models["Crab Nebula"].spatial_model.placement = "gammapy"
    ours.models = list(ours.models)
    theirs = gp_datasets.Datasets.read(files[0], filename_models=files[1])[0]
    signal_ours, signal_theirs = ours.npred_signal().data, theirs.npred_signal().data
    sel = signal_theirs > 1e-3 * signal_theirs.max()
    assert np.max(np.abs(signal_ours[sel] - signal_theirs[sel]) / signal_theirs[sel]) < 1e-3
    assert abs(ours.stat_sum() - theirs.stat_sum()) < 0.01
    logp = logp_function(Datasets([ours]))
    assert logp.log_likelihood(logp.x0) == pytest.approx(-0.5 * theirs.stat_sum(), abs=0.005)


def test_psf_profile_interpolation_matches_numpy():
    """`_interp_profile` (exact placement): linear between nodes, constant inside the first node, clipped
    at 0, 0 beyond the last node; uniform nodes (floor index) and non-uniform ones (searchsorted)."""
    rng = np.random.default_rng(0)
    profile = rng.normal(size=(3, 50))
    sep = rng.uniform(0, 0.8, size=(7, 9))
    sep[0, 0] = 0.001  # inside the first node
    for rad in (0.0075 + 0.015 * np.arange(50), np.sort(rng.uniform(0, 0.8, 50))):
        ours = _interp_profile(pt.as_tensor(sep), rad, profile).eval()
        expected = [np.where(sep > rad[-1], 0, np.maximum(np.interp(sep, rad, p, left=p[0], right=p[-1]), 0))
                    for p in profile]
        np.testing.assert_allclose(ours, expected, rtol=0, atol=1e-12)


def test_pixel_averaged_profile_of_a_gaussian():
    """Exact placement evaluates the PSF averaged over a pixel: for a 2D Gaussian of sigma 1.5 pixels,
    the mean over the pixel at the source is (erf(h / (2 sqrt(2) sigma)) / h)^2, and far out it tends
    to the Gaussian convolved with the pixel (variance sigma^2 + h^2 / 12 per axis)."""
    h, sigma = 0.05, 0.075
    rad = 0.0025 + 0.005 * np.arange(200)
    gauss = np.exp(-0.5 * rad**2 / sigma**2) / (2 * np.pi * sigma**2)
    averaged = _pixel_averaged_profile(rad, gauss[None], np.array([h, h]), n_sub=16)[0]
    centre = (erf(h / (2 * np.sqrt(2) * sigma)) / h) ** 2
    assert averaged[0] == pytest.approx(centre, rel=2e-3)
    assert averaged[0] < gauss[0]  # the pixel average lowers the peak
    var = sigma**2 + h**2 / 12
    smoothed = np.exp(-0.5 * rad**2 / var) / (2 * np.pi * var)
    near = rad < 2 * sigma
    np.testing.assert_allclose(averaged[near], smoothed[near], rtol=5e-3)


@pytest.mark.parametrize("reco", [False, True])
def test_deposit_at_dynamic_offsets_equals_dense_bilinear_convolution(reco):
    """gammapy placement: the 4 kernel copies placed at floor(x0), floor(y0) equal the bilinear deposit
    on the full grid convolved with the kernel (numpy, absolute pixel indices), for positions across
    pixel centres, on integers and up to the cutout's margin."""
    from bayesdl4.graph.map import POINT_MARGIN, _deposit_convolved, prepare_map

    dataset = _small_dataset("gammapy")
    data = prepare_map(dataset)
    plan = data.sources[0]
    n_planes, n = plan.kernel.shape[0], plan.kernel.shape[-1]
    if reco:  # each deposit pixel with its exposure, through a (here diagonal) edisp, then the kernel
        plan.kernel_is_reco = True
        plan.edisp = np.eye(plan.edges_true.size - 1)[:, :n_planes] * np.linspace(0.5, 1.0, n_planes)
    flux, x0, y0 = pt.dvector("flux"), pt.dscalar("x0"), pt.dscalar("y0")
    fn = pytensor.function([flux, x0, y0], _deposit_convolved(plan, flux, x0, y0), mode="FAST_COMPILE")
    n_true = plan.edges_true.size - 1
    flux_value = np.linspace(1.0, 2.0, n_true)
    ny, nx = data.shape[1:]
    rows, cols = np.arange(ny)[plan.ys], np.arange(nx)[plan.xs]
    for dx, dy in [(0.0, 0.0), (0.3, 0.7), (-0.5, 0.5), (1.0, -1.0), (-POINT_MARGIN + 0.2, POINT_MARGIN + 0.6)]:
        px, py = plan.base[0] + dx, plan.base[1] + dy
        image = np.zeros((n_planes, ny + 2 * n, nx + 2 * n))  # padded full grid
        weights = []
        for iy in (np.floor(py), np.floor(py) + 1):
            for ix in (np.floor(px), np.floor(px) + 1):
                w = max(0.0, 1 - abs(ix - px)) * max(0.0, 1 - abs(iy - py))
                r0, c0 = int(iy) - n // 2 + n, int(ix) - n // 2 + n
                image[:, r0 : r0 + n, c0 : c0 + n] += w * plan.kernel
                weights.append((int(iy), int(ix), w))
        image = image[:, n : n + ny, n : n + nx][:, rows][:, :, cols]
        if reco:
            m = POINT_MARGIN
            expected = np.zeros_like(image)
            for iy, ix, w in weights:
                exposure = plan.deposit_exposure[:, iy - plan.base[1] + m, ix - plan.base[0] + m]
                per_pixel = (flux_value * exposure * w) @ plan.edisp  # (n_e,)
                single = np.zeros((n_planes, ny + 2 * n, nx + 2 * n))
                r0, c0 = iy - n // 2 + n, ix - n // 2 + n
                single[:, r0 : r0 + n, c0 : c0 + n] = plan.kernel
                expected += per_pixel[:, None, None] * single[:, n : n + ny, n : n + nx][:, rows][:, :, cols]
        else:
            expected = np.tensordot(plan.edisp, flux_value[:, None, None] * plan.exposure * image, axes=[[0], [0]])
        np.testing.assert_allclose(fn(flux_value, px, py), expected, rtol=1e-12, atol=1e-12 * expected.max())


def test_new_counts_of_a_map_reuse_the_compiled_functions():
    """Issue 11: the counts enter the map density as inputs, so fake + fit in a loop compiles once;
    each fit sees its own counts (its statistic is the full Cash sum of those counts)."""
    from bayesdl4 import compiled
    from bayesdl4.inference import fit

    def models():
        spatial = PointSpatialModel(frame="icrs", placement="gammapy", **CRAB)
        spectral = PowerLawSpectralModel(index=2.5, amplitude="2e-12 cm-2 s-1 TeV-1")
        return Models([SkyModel(spectral, spatial, name="src"), FoVBackgroundModel("small")])

    dataset = _small_dataset()
    fit(Datasets([dataset]))  # compiles (or loads) the functions a fit needs
    stats = []
    for seed in (11, 12):
        dataset.models = models()
        dataset.fake(random_seed=seed)
        before = compiled.stats()
        result = fit(Datasets([dataset]))
        after = compiled.stats()
        assert after["compiled"] == before["compiled"] and after["disk_hits"] == before["disk_hits"]
        assert result.success
        # the numpy convenience at the best fit: its own graph, with the cutout at the fitted position
        assert result.total_stat == pytest.approx(dataset.stat_sum(), rel=1e-9)
        stats.append(result.total_stat)
    assert stats[0] != stats[1]


@pytest.mark.parametrize("placement", ["gammapy", "exact"])
def test_a_point_source_at_another_position_reuses_the_compiled_functions(placement):
    """Issue 11: a point source's cutout, exposure, PSF kernel and edisp enter the map graph as
    inputs, so that moving the source (a TS map, a study over positions) compiles nothing; at each
    position the reused functions give the statistic of a graph built there with constants, and the
    fit finds the source that was simulated there."""
    from bayesdl4 import compiled
    from bayesdl4.graph.map import map_stat_tensor, prepare_map
    from bayesdl4.inference import fit

    def models(lon, lat):
        spatial = PointSpatialModel(frame="icrs", placement=placement, lon_0=lon * u.deg, lat_0=lat * u.deg)
        spectral = PowerLawSpectralModel(index=2.5, amplitude="2e-12 cm-2 s-1 TeV-1")
        return Models([SkyModel(spectral, spatial, name="src"), FoVBackgroundModel("small")])

    dataset = _small_dataset(placement, width=3.0)  # cutouts stay inside the map
    dataset.fake(random_seed=0)
    warm = logp_function(Datasets([dataset]))
    warm.log_likelihood(warm.x0)
    fit(Datasets([dataset]))  # compiles (or loads) what fake, logp_function and fit need
    for seed, (lon, lat) in enumerate([(83.93, 21.81), (83.38, 22.37)], start=1):
        before = compiled.stats()
        dataset.models = models(lon, lat)
        dataset.fake(random_seed=seed)
        logp = logp_function(Datasets([dataset]))
        reference = float(map_stat_tensor(prepare_map(dataset), {})[0].sum().eval())
        assert logp.log_likelihood(logp.x0) == pytest.approx(-0.5 * reference, rel=1e-10)
        result = fit(Datasets([dataset]))
        after = compiled.stats()
        assert after["compiled"] == before["compiled"] and after["disk_hits"] == before["disk_hits"]
        assert result.success
        for name, truth in (("src.lon_0", lon), ("src.lat_0", lat)):
            assert abs(result[name].value - truth) < 4 * result[name].error, (name, result[name], truth)
        assert result.total_stat == pytest.approx(float(map_stat_tensor(prepare_map(dataset), {})[0].sum().eval()),
                                                  rel=1e-9)


def test_npred_conveniences_reuse_the_last_plan_and_see_changes_in_place():
    """dataset.npred() / stat_array() again with new parameter values only call the compiled
    function; a map changed in place, another model or a moved point source prepare again, so no
    result is stale."""
    from bayesdl4.graph import evaluate

    dataset = _small_dataset()
    spectral = dataset.models["src"].spectral_model
    first = dataset.npred().data
    entry = evaluate._LAST["entry"]
    spectral.amplitude.value *= 2
    second = dataset.npred().data
    assert evaluate._LAST["entry"] is entry  # reused: only the function was called
    signal = dataset.npred_signal().data
    np.testing.assert_allclose(second - first, signal / 2, rtol=1e-9, atol=1e-12 * signal.max())
    dataset.background.data *= 3  # in place: a fresh plan
    np.testing.assert_allclose(dataset.npred_background().data, 3 * 0.5 * np.ones_like(signal), rtol=1e-12)
    assert evaluate._LAST["entry"] is not entry
    counts = dataset.counts.data.copy()
    stat = dataset.stat_array()
    dataset.counts.data[...] = 0  # the statistic sees the new counts
    np.testing.assert_allclose(dataset.stat_array(), 2 * dataset.npred().data, rtol=1e-12)
    dataset.counts.data[...] = counts
    np.testing.assert_allclose(dataset.stat_array(), stat, rtol=1e-12)
    dataset.models["src"].spatial_model.lon_0.value += 0.05  # a moved point source: new arrays
    moved = dataset.npred_signal().data
    assert not np.allclose(moved, signal)
    evaluate._LAST.clear()
    np.testing.assert_allclose(dataset.npred_signal().data, moved, rtol=1e-12)
