"""Extended sources in the map npred graph: gammapy 2.1's npred and statistic, and gradients."""

import logging

import numpy as np
import pytest
from astropy import units as u
from astropy.coordinates import SkyCoord

import bayesdl4.models as bm
from bayesdl4.datasets import Datasets
from bayesdl4.datasets.map import MapDataset
from bayesdl4.errors import ModelError
from bayesdl4.inference import logp_function
from bayesdl4.irf import PSFMap
from bayesdl4.maps import MapAxis, WcsGeom, WcsNDMap
from bayesdl4.models import Models, PowerLawSpectralModel, SkyModel
from tests.conftest import gammapy_data

CENTER = (83.63, 22.01)
SPECTRUM = dict(index=2.3, amplitude=3e-11 * u.Unit("cm-2 s-1 TeV-1"), reference=1 * u.TeV)
# (class, offset from the map centre in deg, parameters): each source away from the others
SOURCES = [
    ("GaussianSpatialModel", (-0.55, 0.3), dict(sigma=0.08 * u.deg, e=0.6, phi=30 * u.deg)),
    ("DiskSpatialModel", (0.5, 0.3), dict(r_0=0.15 * u.deg, e=0.3, phi=20 * u.deg, edge_width=0.2)),
    ("ShellSpatialModel", (-0.5, -0.3), dict(radius=0.1 * u.deg, width=0.06 * u.deg)),
    ("GeneralizedGaussianSpatialModel", (0.45, -0.3),
     dict(r_0=0.05 * u.deg, eta=0.6, e=0.2, phi=10 * u.deg)),
    ("Shell2SpatialModel", (0.0, 0.45), dict(r_0=0.12 * u.deg, eta=0.5)),
]
TEMPLATE_OFFSET = (0.0, 0.0)


def _template_data():
    """An asymmetric blob on a 0.02 deg, 21 x 15 pixel grid (numpy, for both libraries)."""
    y, x = np.mgrid[:15, :21]
    return np.exp(-0.5 * (((x - 9.0) / 3.0) ** 2 + ((y - 8.0) / 2.0) ** 2)) + 0.3 * (x > 12) * (y < 6)


def _template_geom_kwargs():
    return dict(skydir=SkyCoord(*CENTER, unit="deg", frame="icrs"), binsz=0.02, npix=(21, 15), frame="icrs")


def _dataset(reco_psf, seed=3, flat_exposure=False, npix=(40, 30)):
    """A 40 x 30 pixel (0.05 deg; ``npix``), 3-energy-bin dataset with a Gaussian PSF (true or reco energy),
    a random energy dispersion and exposure (or one flat in space: the factored exposure path),
    and random counts."""
    rng = np.random.default_rng(seed)
    energy = MapAxis.from_energy_bounds("1 TeV", "10 TeV", 3, name="energy")
    energy_true = MapAxis.from_energy_bounds("0.7 TeV", "14 TeV", 4, name="energy_true")
    geom = WcsGeom.create(skydir=CENTER, binsz=0.05, npix=npix, frame="icrs", axes=[energy])
    base = MapDataset.create(geom, energy_axis_true=energy_true, binsz_irf=0.5, reco_psf=reco_psf,
                             name="ext")
    shape = geom.data_shape
    exposure = rng.uniform(1e9, 2e9, base.exposure.geom.data_shape)
    if flat_exposure:
        exposure[:] = exposure[:, :1, :1]
    exposure = WcsNDMap(base.exposure.geom, exposure, "m2 s")
    psf_energy = energy if reco_psf else energy_true
    psf = PSFMap.from_gauss(psf_energy, sigma=np.linspace(0.12, 0.06, psf_energy.nbin) * u.deg,
                            geom=base.psf.psf_map.geom)
    edisp = base.edisp
    edisp.edisp_map.data[...] = rng.uniform(0, 1, edisp.edisp_map.data.shape)
    background = rng.uniform(0.3, 1.0, shape)
    return MapDataset(
        counts=WcsNDMap(geom, rng.poisson(background + 1.0).astype(float)),
        background=WcsNDMap(geom, background), exposure=exposure, psf=psf, edisp=edisp,
        mask_safe=WcsNDMap(geom, rng.uniform(size=shape) > 0.2), name="ext",
    )


def _models(lib, dataset_name, template=True):
    """The same sources in bayesdl4 (``lib=bm``) or gammapy (``lib=gammapy.modeling.models``)."""
    models = []
    for i, (cls, (dx, dy), kwargs) in enumerate(SOURCES):
        pos = dict(lon_0=(CENTER[0] + dx) * u.deg, lat_0=(CENTER[1] + dy) * u.deg, frame="icrs")
        spatial = getattr(lib, cls)(**pos, **kwargs)
        spectral = lib.PowerLawSpectralModel(**SPECTRUM)
        models.append(lib.SkyModel(spectral_model=spectral, spatial_model=spatial, name=f"src{i}"))
    if template:
        if lib is bm:
            from bayesdl4.maps import WcsGeom as Geom
            from bayesdl4.maps import WcsNDMap as Map
        else:
            from gammapy.maps import Map
            from gammapy.maps import WcsGeom as Geom

            Map = Map.from_geom  # noqa: N806
        tgeom = Geom.create(**_template_geom_kwargs())
        tmap = Map(tgeom, data=_template_data(), unit="") if lib is bm else Map(tgeom, data=_template_data())
        spectral = lib.PowerLawSpectralModel(**SPECTRUM)
        models.append(lib.SkyModel(spectral_model=spectral, spatial_model=lib.TemplateSpatialModel(tmap),
                                   name="template"))
    models.append(lib.FoVBackgroundModel(dataset_name=dataset_name))
    return models


def _compare(ours, theirs):
    signal_ours, signal_theirs = ours.npred_signal().data, theirs.npred_signal().data
    sel = signal_theirs > 1e-3 * signal_theirs.max()
    rel = np.abs(signal_ours[sel] - signal_theirs[sel]) / signal_theirs[sel]
    assert rel.max() < 1e-3, rel.max()
    assert signal_ours.sum() == pytest.approx(signal_theirs.sum(), rel=1e-4)
    # -2 ln L of the compact likelihood graph is gammapy's stat_sum (within 0.01)
    logp = logp_function(Datasets([ours]))
    assert logp.log_likelihood(logp.x0) == pytest.approx(-0.5 * theirs.stat_sum(), abs=0.005)


@pytest.mark.oracle
@pytest.mark.parametrize(("reco_psf", "flat_exposure"), [(False, False), (True, False), (False, True)],
                         ids=["true-energy-psf", "reco-energy-psf", "true-energy-psf-flat-exposure"])
def test_extended_npred_and_stat_equal_gammapy(reco_psf, flat_exposure, tmp_path):
    gp_datasets = pytest.importorskip("gammapy.datasets")
    gp_models = pytest.importorskip("gammapy.modeling.models")
    ours = _dataset(reco_psf, flat_exposure=flat_exposure)
    ours.write(tmp_path / "ext.fits")
    theirs = gp_datasets.MapDataset.read(tmp_path / "ext.fits", name="ext")
    ours.models = Models(_models(bm, "ext"))
    theirs.models = _models(gp_models, "ext")
    _compare(ours, theirs)


@pytest.mark.oracle
def test_fermi_crab_as_gaussian_equals_gammapy():
    """A real dataset (true-energy PSF): the Fermi-LAT 3FHL Crab modelled as an elongated Gaussian."""
    gp_datasets = pytest.importorskip("gammapy.datasets")
    gp_models = pytest.importorskip("gammapy.modeling.models")
    folder = gammapy_data() / "fermi-3fhl-crab"
    files = (folder / "Fermi-LAT-3FHL_datasets.yaml", folder / "Fermi-LAT-3FHL_models.yaml")
    ours = Datasets.read(files[0], filename_models=files[1])[0]
    theirs = gp_datasets.Datasets.read(files[0], filename_models=files[1])[0]
    # sigma / 3 above the 0.1 deg pixels: no oversampling, where gammapy would evaluate only a
    # square of half-width 5 sigma and drop the tail (1.9e-3 at its edge for sigma = 0.3 deg)
    gauss = dict(lon_0=83.7 * u.deg, lat_0=22.0 * u.deg, sigma=0.33 * u.deg, e=0.5, phi=45 * u.deg)
    crab_ours, bkg_ours = ours.models[0], ours.models[1]
    crab_theirs, bkg_theirs = theirs.models[0], theirs.models[1]
    ours.models = Models([SkyModel(crab_ours.spectral_model, bm.GaussianSpatialModel(**gauss), name="crab"),
                          bkg_ours])
    theirs.models = [gp_models.SkyModel(spectral_model=crab_theirs.spectral_model,
                                        spatial_model=gp_models.GaussianSpatialModel(**gauss), name="crab"),
                     bkg_theirs]
    _compare(ours, theirs)


@pytest.mark.parametrize("reco_psf", [False, True], ids=["true-energy-psf", "reco-energy-psf"])
def test_gradients_of_every_spatial_parameter_match_finite_differences(reco_psf):
    dataset = _dataset(reco_psf)
    models = _models(bm, "ext", template=False)
    for model in models[:-1]:
        for par in model.spatial_model.parameters:
            par.frozen = False
    dataset.models = Models(models)
    logp = logp_function(Datasets([dataset]))
    names = logp.names
    spatial = [n for n in names if n.startswith("src") and not n.endswith(("index", "amplitude"))]
    # every spatial parameter of every model, positions included
    assert len(spatial) == sum(len(list(m.spatial_model.parameters)) for m in models[:-1])
    theta = logp.x0.copy()
    _, grad = logp(theta)
    mismatches = []
    for name in spatial:
        i = names.index(name)
        h = 1e-6 * max(abs(theta[i]), 1e-2) if not name.endswith(("lon_0", "lat_0")) else 1e-6
        up, down = theta.copy(), theta.copy()
        up[i] += h
        down[i] -= h
        numeric = (logp(up)[0] - logp(down)[0]) / (2 * h)
        if abs(numeric) < 1e-5 or grad[i] != pytest.approx(numeric, rel=1e-3, abs=1e-6):
            # (a parameter that does not move the likelihood would test nothing)
            mismatches.append((name, grad[i], numeric))
    assert not mismatches


def test_model_outside_the_map_raises_and_clipped_model_warns(caplog):
    dataset = _dataset(reco_psf=False)
    far = SkyModel(PowerLawSpectralModel(**SPECTRUM),
                   bm.GaussianSpatialModel(lon_0=90 * u.deg, lat_0=22 * u.deg, sigma=0.1 * u.deg), name="far")
    dataset.models = Models([far])
    with pytest.raises(ModelError, match="far"):
        dataset.npred_signal()
    edge = SkyModel(PowerLawSpectralModel(**SPECTRUM),
                    bm.DiskSpatialModel(lon_0=CENTER[0] + 1.0, lat_0=CENTER[1], r_0=0.2 * u.deg), name="edge")
    dataset.models = Models([edge])
    with caplog.at_level(logging.WARNING, logger="bayesdl4.graph.map_extended"):
        signal = dataset.npred_signal().data
    assert "leaves" in caplog.text and "edge" in caplog.text
    assert signal.sum() > 0


@pytest.mark.parametrize("flat_exposure", [False, True], ids=["exposure-maps", "factored-exposure"])
def test_an_extended_source_at_another_position_reuses_the_compiled_functions(flat_exposure):
    """Issue 11: an extended source's position-dependent arrays (sub-pixel coordinates, exposure,
    PSF kernel spectrum, edisp, the output cutout's place) are graph inputs: moving the source
    compiles nothing while its cutout keeps its shape, and the reused functions give the statistic
    and gradients of a graph built at the new position."""
    from bayesdl4 import compiled
    from bayesdl4.graph.map import map_stat_tensor, prepare_map

    dataset = _dataset(reco_psf=False, flat_exposure=flat_exposure, npix=(80, 60))  # cutouts inside

    def models(dx, dy):
        spatial = bm.GaussianSpatialModel(lon_0=(CENTER[0] + dx) * u.deg, lat_0=(CENTER[1] + dy) * u.deg,
                                          sigma=0.08 * u.deg, frame="icrs")
        spatial.sigma.frozen = False
        return Models([SkyModel(PowerLawSpectralModel(**SPECTRUM), spatial, name="src")])

    dataset.models = models(0.0, 0.0)
    warm = logp_function(Datasets([dataset]))
    values = [warm(warm.x0)[0]]
    for dx, dy in [(0.5, -0.3), (-0.6, 0.3)]:
        dataset.models = models(dx, dy)
        before = compiled.stats()
        logp = logp_function(Datasets([dataset]))
        theta = logp.x0.copy()
        value, grad = logp(theta)
        after = compiled.stats()
        assert after["compiled"] == before["compiled"] and after["disk_hits"] == before["disk_hits"]
        reference = float(map_stat_tensor(prepare_map(dataset), {})[0].sum().eval())
        assert logp.log_likelihood(theta) == pytest.approx(-0.5 * reference, rel=1e-10)
        for name in ("src.lon_0", "src.lat_0", "src.sigma"):
            i = logp.names.index(name)
            h = 1e-6
            up, down = theta.copy(), theta.copy()
            up[i] += h
            down[i] -= h
            numeric = (logp(up)[0] - logp(down)[0]) / (2 * h)
            assert abs(numeric) > 1e-3 and grad[i] == pytest.approx(numeric, rel=1e-3), name
        values.append(value)
    assert len(set(values)) == 3  # the source did move


def test_npred_after_a_small_move_reuses_the_extended_plan_as_gammapys_evaluator():
    """dataset.npred() keeps an extended source's plan (cutout, IRFs) while the source stays within
    its margin, so its compiled function is reused even where the map's edge clips the cutout; a
    larger move plans again. The reused plan's npred equals a fresh plan's to the IRF differences
    over the move."""
    from bayesdl4 import compiled
    from bayesdl4.graph.map_extended import _RECENT_PLANS, EXTENDED_MARGIN

    dataset = _dataset(reco_psf=False, flat_exposure=True)
    spatial = bm.GaussianSpatialModel(lon_0=(CENTER[0] + 0.7) * u.deg, lat_0=CENTER[1] * u.deg,
                                      sigma=0.1 * u.deg, frame="icrs")  # its cutout is clipped
    dataset.models = Models([SkyModel(PowerLawSpectralModel(**SPECTRUM), spatial, name="src")])
    first = dataset.npred_signal().data
    (plan,) = [p for _, p, _, _ in _RECENT_PLANS[dataset].values()]
    before = compiled.stats()
    spatial.lon_0.value += 0.03
    spatial.sigma.value *= 1.02
    moved = dataset.npred_signal().data
    assert compiled.stats()["compiled"] == before["compiled"]
    assert [p for _, p, _, _ in _RECENT_PLANS[dataset].values()] == [plan]
    assert not np.allclose(moved, first)
    dataset.exposure.data *= 2  # changed in place: planned again, not stale
    np.testing.assert_allclose(dataset.npred_signal().data, 2 * moved, rtol=1e-10, atol=1e-12 * moved.max())
    dataset.exposure.data /= 2
    _RECENT_PLANS.pop(dataset)  # a fresh plan at the moved position
    np.testing.assert_allclose(dataset.npred_signal().data.sum(), moved.sum(), rtol=1e-3)
    spatial.lon_0.value -= 2 * EXTENDED_MARGIN
    dataset.npred_signal()
    assert [p for _, p, _, _ in _RECENT_PLANS[dataset].values()] != [plan]
