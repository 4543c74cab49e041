"""MapDataset / MapDatasetOnOff containers: validation, masks, models, create / cutout / slice / to_image.

Derived datasets are compared with gammapy 2.1 doing the same on the same data.
"""

import numpy as np
import pytest
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.table import Table

from bayesdl4.datasets import Datasets, MapDataset, MapDatasetOnOff
from bayesdl4.errors import DataFormatError, GeometryMismatchError, ModelError
from bayesdl4.irf import EDispKernelMap, EDispMap, PSFMap
from bayesdl4.maps import MapAxis, WcsGeom, WcsNDMap
from tests.io.test_map_dataset_io import assert_map_equal, assert_matches_gammapy, make_map_dataset


def _parts(dataset):
    return dict(
        counts=dataset.counts,
        exposure=dataset.exposure,
        background=dataset.background,
        psf=dataset.psf,
        edisp=dataset.edisp,
        mask_safe=dataset.mask_safe,
        mask_fit=dataset.mask_fit,
        name=dataset.name,
    )


@pytest.fixture(scope="module")
def synth():
    return make_map_dataset(name="synth", seed=1)


# ------------------------------------------------------------------------------------ validation
def test_background_axis_mismatch_names_both(synth):
    energy = MapAxis.from_energy_bounds(1 * u.TeV, 100 * u.TeV, 5, name="energy")
    geom = synth.counts.geom.to_image().to_cube([energy])
    parts = _parts(synth) | {"background": WcsNDMap(geom, np.ones(geom.data_shape))}
    with pytest.raises(
        GeometryMismatchError,
        match=r"'synth': background geometry does not match counts: energy axis: 5 bins .* vs 4 bins",
    ) as info:
        MapDataset(**parts)
    assert info.value.attribute == "background"
    # a different sky grid is named too
    shifted = WcsGeom.create(skydir=(83.0, 22.0), binsz=0.1, npix=(8, 6), axes=[synth.energy_axis])
    parts["background"] = WcsNDMap(shifted, np.ones(shifted.data_shape))
    with pytest.raises(
        GeometryMismatchError, match="background geometry does not match counts: WCS differs"
    ):
        MapDataset(**parts)


@pytest.mark.parametrize(
    ("attribute", "change", "error", "message"),
    [
        (
            "exposure",
            lambda d: d.__setitem__((1, 2, 3), np.nan),
            DataFormatError,
            "exposure has 1 non-finite",
        ),
        (
            "exposure",
            lambda d: d.__setitem__((0, 0, 0), -1.0),
            DataFormatError,
            "exposure has 1 negative",
        ),
        (
            "counts",
            lambda d: d.__setitem__((0, 1, 1), -2.0),
            DataFormatError,
            "counts has 1 negative",
        ),
        (
            "counts",
            lambda d: d.__setitem__((0, 1, 1), np.inf),
            DataFormatError,
            "counts has 1 non-finite",
        ),
        (
            "background",
            lambda d: d.__setitem__((3, 1, 1), np.nan),
            DataFormatError,
            "background has 1 non-finite",
        ),
    ],
)
def test_bad_values(synth, attribute, change, error, message):
    parts = _parts(synth)
    m = parts[attribute].copy()
    change(m.data)
    parts[attribute] = m
    with pytest.raises(error, match=f"dataset 'synth': {message}") as info:
        MapDataset(**parts)
    assert info.value.attribute == attribute


def test_background_may_be_slightly_negative(synth):
    # HAWC's background planes hold -8e-18; gammapy accepts them and so do we
    parts = _parts(synth)
    parts["background"] = synth.background.copy()
    parts["background"].data[0] = -8e-18
    assert MapDataset(**parts).background.data.min() == -8e-18


def test_exposure_checks(synth):
    parts = _parts(synth)
    parts["exposure"] = synth.exposure.copy(unit="s")
    with pytest.raises(DataFormatError, match=r"exposure unit s is not area x time"):
        MapDataset(**parts)
    other = WcsGeom.create(
        skydir=(83.63, 22.01), binsz=0.1, npix=(9, 6), axes=[synth.energy_axis_true]
    )
    parts["exposure"] = WcsNDMap(other, np.ones(other.data_shape), unit="m2 s")
    with pytest.raises(
        GeometryMismatchError,
        match=r"exposure sky grid does not match counts: npix \(nx, ny\) \(9, 6\) vs \(8, 6\)",
    ):
        MapDataset(**parts)
    reco = synth.counts.geom.to_image().to_cube([synth.energy_axis.copy()])
    parts["exposure"] = WcsNDMap(reco, np.ones(reco.data_shape), unit="m2 s")
    with pytest.raises(
        GeometryMismatchError,
        match=r"exposure must have the non-spatial axes \['energy_true'\], got \['energy'\]",
    ):
        MapDataset(**parts)


def test_edisp_axes_must_fit(synth):
    parts = _parts(synth)
    energy = MapAxis.from_energy_bounds(1 * u.TeV, 100 * u.TeV, 3, name="energy")
    parts["edisp"] = EDispKernelMap.from_diagonal_response(energy, synth.energy_axis_true)
    with pytest.raises(
        GeometryMismatchError,
        match=r"edisp reco energy axis \(3 bins\) does not match the counts energy axis \(4 bins\)",
    ):
        MapDataset(**parts)
    true = MapAxis.from_energy_bounds(0.5 * u.TeV, 200 * u.TeV, 7, name="energy_true")
    parts["edisp"] = EDispKernelMap.from_diagonal_response(synth.energy_axis, true)
    with pytest.raises(
        GeometryMismatchError,
        match=r"edisp true-energy axis \(7 bins .*\) does not match the exposure's \(6 bins",
    ):
        MapDataset(**parts)
    parts["edisp"] = EDispMap.from_diagonal_response(true)
    with pytest.raises(GeometryMismatchError, match="edisp true-energy axis"):
        MapDataset(**parts)
    # without edisp gammapy applies a diagonal response: allowed
    parts["edisp"] = None
    assert MapDataset(**parts).edisp is None


def test_wrong_types_and_masks(synth):
    parts = _parts(synth)
    with pytest.raises(DataFormatError, match="psf must be a PSFMap, got EDispKernelMap"):
        MapDataset(**(parts | {"psf": synth.edisp}))
    with pytest.raises(
        DataFormatError, match="edisp must be an EDispKernelMap or EDispMap, got PSFMap"
    ):
        MapDataset(**(parts | {"edisp": synth.psf}))
    with pytest.raises(DataFormatError, match="counts must be a WcsNDMap, got ndarray"):
        MapDataset(**(parts | {"counts": synth.counts.data}))
    bad = synth.mask_fit.copy(data=synth.mask_fit.data.astype(int) * 2)
    with pytest.raises(
        DataFormatError, match=r"mask_fit must be boolean \(or 0/1\), got values \[0, 2\]"
    ):
        MapDataset(**(parts | {"mask_fit": bad}))
    ints = synth.mask_fit.copy(data=synth.mask_fit.data.astype(np.int64))
    dataset = MapDataset(**(parts | {"mask_fit": ints}))
    assert dataset.mask_fit.data.dtype == bool
    np.testing.assert_array_equal(dataset.mask_fit.data, synth.mask_fit.data)
    # assigning a mask later is checked the same way, and a refused mask leaves the old one
    dataset.mask_fit = ints
    assert dataset.mask_fit.data.dtype == bool
    with pytest.raises(GeometryMismatchError, match="mask_fit geometry does not match counts"):
        dataset.mask_fit = WcsNDMap(synth.counts.geom.to_image(), np.ones((6, 8), bool))
    np.testing.assert_array_equal(dataset.mask_fit.data, synth.mask_fit.data)
    dataset.mask_safe = None
    np.testing.assert_array_equal(dataset.mask, synth.mask_fit.data)


# ------------------------------------------------------------------------------------ masks, geoms
def test_mask_is_safe_and_fit(synth):
    expected = synth.mask_safe.data & synth.mask_fit.data
    np.testing.assert_array_equal(synth.mask, expected)
    assert 0 < expected.sum() < expected.size
    np.testing.assert_array_equal(synth.mask_image, expected.any(axis=0))
    only_safe = MapDataset(**(_parts(synth) | {"mask_fit": None}))
    np.testing.assert_array_equal(only_safe.mask, synth.mask_safe.data)
    none = MapDataset(counts=synth.counts)
    assert none.mask is None and none.mask_image.all() and none.mask_image.shape == (6, 8)


def test_geoms(synth):
    geoms = synth.geoms
    assert geoms["geom"] is synth.counts.geom
    assert geoms["geom_exposure"].data_shape == (6, 6, 8)
    assert geoms["geom_psf"].data_shape == (6, 66, 2, 3)  # 0.8 x 0.6 deg at 0.25 deg: 3 x 2 pixels
    assert geoms["geom_edisp"].data_shape == (6, 4, 2, 3)
    assert synth.data_shape == (4, 6, 8)
    assert synth.energy_axis_true.nbin == 6


# ------------------------------------------------------------------------------------ models
def test_models_follow_datasets_names(synth):
    from bayesdl4.io.models_yaml import FoVBackgroundModel
    from bayesdl4.models import PowerLawSpectralModel, SkyModel

    a, b = synth.copy(name="a"), synth.copy(name="b")
    datasets = Datasets([a, b])
    everywhere = SkyModel(PowerLawSpectralModel(), name="src")
    datasets.models = [everywhere, FoVBackgroundModel("a"), FoVBackgroundModel("b")]
    assert a.models.names == ["src", "a-bkg"]
    assert b.models.names == ["src", "b-bkg"]
    assert a.models["src"] is b.models["src"]


def test_npred_delegates_to_graph(synth):
    # no models: npred is the background template
    np.testing.assert_array_equal(synth.npred().data, synth.background.data)
    assert synth.npred().geom is synth.counts.geom
    # ON/OFF without models: no signal, the background is WStat's profile alpha (n_on + n_off) / (1 + alpha)
    onoff = make_map_dataset(name="onoff", onoff=True)
    alpha = onoff.alpha.data
    expected = alpha * (onoff.counts.data + onoff.counts_off.data) / (1 + alpha)
    np.testing.assert_allclose(onoff.npred().data, expected, rtol=1e-12)
    # the graph layer names what it cannot build (ModelError)
    from bayesdl4.models import PowerLawSpectralModel, SkyModel

    no_spatial = synth.copy(name="nospatial")
    no_spatial.models = [SkyModel(PowerLawSpectralModel(), name="src")]
    with pytest.raises(ModelError, match="model 'src'"):
        no_spatial.npred()


def test_copy_is_independent(synth):
    other = synth.copy(name="other")
    other.counts.data[...] = 0
    assert other.name == "other" and synth.counts.data.sum() > 0


# ------------------------------------------------------------------------------------ on/off
def test_onoff_background_is_alpha_times_off():
    dataset = make_map_dataset(name="onoff", onoff=True)
    alpha = dataset.acceptance.data / dataset.acceptance_off.data
    np.testing.assert_allclose(dataset.alpha.data, alpha)
    np.testing.assert_allclose(dataset.background.data, alpha * dataset.counts_off.data)
    assert dataset.stat_type == "wstat" and dataset.tag == "MapDatasetOnOff"
    plain = make_map_dataset(name="p")
    built = MapDatasetOnOff.from_map_dataset(plain, counts_off=dataset.counts_off)
    assert built.name == "p"
    np.testing.assert_array_equal(built.acceptance.data, 1.0)  # default acceptances are one
    np.testing.assert_allclose(built.background.data, dataset.counts_off.data)
    wrong = WcsNDMap(plain.counts.geom.to_image(), np.ones((6, 8)))
    with pytest.raises(
        GeometryMismatchError, match="counts_off geometry does not match counts: axes"
    ):
        MapDatasetOnOff.from_map_dataset(plain, counts_off=wrong)
    negative = dataset.counts_off.copy()
    negative.data[0, 0, 0] = -1
    with pytest.raises(DataFormatError, match="counts_off has 1 negative"):
        MapDatasetOnOff.from_map_dataset(plain, counts_off=negative)


# ------------------------------------------------------------------------------------ vs gammapy
@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """(ours, gammapy's) reading of one synthetic dataset file."""
    pytest.importorskip("gammapy")
    from gammapy.datasets import MapDataset as GMapDataset

    path = tmp_path_factory.mktemp("pair") / "synth.fits"
    dataset = make_map_dataset(name="synth", seed=2)
    dataset.write(path)
    return dataset, GMapDataset.read(path, name="synth")


@pytest.mark.oracle
@pytest.mark.parametrize("kind", ["kernel", "migra", "reco_psf"])
def test_create_matches_gammapy(kind):
    pytest.importorskip("gammapy")
    from gammapy.datasets import MapDataset as GMapDataset
    from gammapy.maps import MapAxis as GMapAxis
    from gammapy.maps import WcsGeom as GWcsGeom

    energy = GMapAxis.from_energy_bounds("1 TeV", "10 TeV", 4)
    energy_true = GMapAxis.from_energy_bounds("0.5 TeV", "20 TeV", 10, name="energy_true")
    migra = GMapAxis.from_edges(np.linspace(0.2, 5, 13), name="migra") if kind == "migra" else None
    kwargs = dict(skydir=(83.633, 22.014), binsz=0.02, width=(2, 1.5), frame="icrs", proj="CAR")
    theirs = GMapDataset.create(
        GWcsGeom.create(axes=[energy], **kwargs),
        energy_axis_true=energy_true,
        migra_axis=migra,
        reco_psf=kind == "reco_psf",
        name="empty",
    )
    ours = MapDataset.create(
        WcsGeom.create(axes=[MapAxis(energy.edges, name="energy")], **kwargs),
        energy_axis_true=MapAxis(energy_true.edges, name="energy_true"),
        migra_axis=None if migra is None else MapAxis(migra.edges, name="migra", interp="lin"),
        reco_psf=kind == "reco_psf",
        name="empty",
    )
    # gammapy's Map.from_geom is float32: its diagonal kernels are rounded to float32
    assert_matches_gammapy(ours, theirs, rtol=1e-7)
    if kind == "kernel":
        assert theirs.edisp.edisp_map.data.dtype == np.float32
    assert ours.psf.psf_map.geom.npix == (10, 8)  # 2 x 1.5 deg at 0.2 deg
    assert not ours.mask_safe.data.any()
    assert isinstance(ours.edisp, EDispMap if migra is not None else EDispKernelMap)
    assert ours.exposure.unit == u.Unit("m2 s") and ours.psf.psf_map.unit == u.Unit("sr-1")
    assert len(ours.gti) == 0
    assert ours.gti.meta["MJDREFI"] + ours.gti.meta["MJDREFF"] == pytest.approx(
        theirs.gti.time_ref.tt.mjd, abs=1e-9
    )


@pytest.mark.oracle
def test_stat_sum_matches_gammapy(pair):
    ours, theirs = pair
    # background-only cash statistic over mask_safe & mask_fit
    assert ours.stat_sum() == pytest.approx(theirs.stat_sum(), rel=1e-10)
    assert ours.stat_array().shape == ours.data_shape


@pytest.mark.oracle
def test_cutout_matches_gammapy(pair):
    ours, theirs = pair
    position = SkyCoord(83.55, 22.0, unit="deg")
    width = (0.45, 0.3) * u.deg
    cut = ours.cutout(position, width, name="cut")
    assert_matches_gammapy(cut, theirs.cutout(position, width, name="cut"))
    assert cut.counts.data.shape == (4, 3, 4)
    partial = ours.cutout(position, width, mode="partial", name="cut")
    assert_matches_gammapy(partial, theirs.cutout(position, width, mode="partial", name="cut"))


@pytest.mark.oracle
def test_slice_by_idx_matches_gammapy(pair):
    ours, theirs = pair
    for slices, shape in (
        ({"energy": slice(1, 3)}, (2, 6, 8)),
        ({"energy_true": slice(0, 4)}, (4, 6, 8)),
    ):
        sliced = ours.slice_by_idx(slices, name="s")
        assert_matches_gammapy(sliced, theirs.slice_by_idx(slices, name="s"))
        assert sliced.counts.data.shape == shape
    # both at once: gammapy 2.1 fails (it slices the squashed reco axis of the edisp exposure)
    both = ours.slice_by_idx({"energy": slice(1, 3), "energy_true": slice(0, 4)})
    assert both.edisp.edisp_map.data.shape == (4, 2, 2, 3)
    assert both.edisp.exposure_map.data.shape == (4, 1, 2, 3)
    assert both.exposure.data.shape == (4, 6, 8) and both.psf.psf_map.data.shape[0] == 4
    with pytest.raises(GeometryMismatchError, match="give a slice"):
        ours.slice_by_idx({"energy": 1})


@pytest.mark.oracle
def test_to_image_matches_gammapy(pair):
    ours, theirs = pair
    image = ours.to_image(name="img")
    expected = theirs.to_image(name="img")
    assert_map_equal(image.counts, expected.counts, "counts")
    np.testing.assert_allclose(image.background.data, expected.background.data, rtol=1e-12)
    assert_map_equal(image.mask_safe, expected.mask_safe, "mask_safe")
    assert_map_equal(image.mask_fit, expected.mask_fit, "mask_fit")
    np.testing.assert_allclose(
        image.edisp.edisp_map.data, expected.edisp.edisp_map.data, rtol=1e-12
    )
    assert image.exposure is ours.exposure and image.psf is ours.psf
    # counts outside the safe mask are dropped
    assert image.counts.data.sum() == pytest.approx((ours.counts.data * ours.mask_safe.data).sum())


def test_gti_and_meta_table_are_tables(synth):
    assert isinstance(synth.gti, Table) and synth.gti.meta["MJDREFI"] == 51910
    assert isinstance(synth.meta_table, Table)
    assert isinstance(synth.psf, PSFMap)


# ------------------------------------------------------------------------------------ bad models / IRFs
def _point_source_dataset(reco_psf):
    """A synthetic dataset with a Gaussian PSF and a point source at its centre."""
    from bayesdl4.models import PointSpatialModel, PowerLawSpectralModel, SkyModel

    dataset = make_map_dataset(name="psf", reco_psf=reco_psf, seed=5)
    dataset.mask_fit = None
    spatial = PointSpatialModel(lon_0=83.63 * u.deg, lat_0=22.01 * u.deg, frame="icrs")
    dataset.models = [SkyModel(PowerLawSpectralModel(), spatial, name="src")]
    return dataset


@pytest.mark.parametrize("reco_psf", [True, False])
def test_psf_kernel_that_does_not_normalise_is_an_error(reco_psf):
    dataset = _point_source_dataset(reco_psf)
    psf_energy = dataset.energy_axis if reco_psf else dataset.energy_axis_true
    assert dataset.npred_signal().data.sum() > 0
    # an empty PSF plane (a file without PSF at that energy) where the likelihood needs it
    dataset.psf.psf_map.data[2] = 0.0
    dataset.models = list(dataset.models)
    with pytest.raises(
        DataFormatError,
        match=rf"PSF kernel does not normalise .* {psf_energy.name} plane\(s\) \[2\].*safe mask",
    ):
        dataset.npred_signal()
    if reco_psf:
        # masked out by the safe mask, the empty plane does not matter (HAWC's files)
        mask = dataset.mask_safe.data.copy()
        mask[2] = False
        dataset.mask_safe = WcsNDMap(dataset.counts.geom, mask)
        dataset.models = list(dataset.models)
        signal = dataset.npred_signal().data
        assert signal[2].sum() == 0 and signal[[0, 1, 3]].sum() > 0


def test_psf_required_planes_follow_mask_edisp_and_exposure():
    dataset = _point_source_dataset(reco_psf=False)
    psf, mask = dataset.psf, np.zeros(dataset.data_shape, bool)
    mask[1] = True  # only reco plane 1
    edisp = np.zeros((6, 4))
    edisp[[2, 3], 1] = 0.5
    edisp[4, 2] = 1.0
    np.testing.assert_array_equal(psf.required_planes(mask, edisp), [0, 0, 1, 1, 0, 0])
    exposure = np.ones((6, 6, 8))
    exposure[3] = 0.0
    np.testing.assert_array_equal(psf.required_planes(mask, edisp, exposure), [0, 0, 1, 0, 0, 0])
    reco = _point_source_dataset(reco_psf=True).psf
    np.testing.assert_array_equal(reco.required_planes(mask, edisp), [0, 1, 0, 0])
    assert reco.required_planes().all() and reco.required_planes().size == 4


def test_model_outside_the_map_is_an_error():
    from bayesdl4.models import PointSpatialModel, PowerLawSpectralModel, SkyModel

    dataset = _point_source_dataset(reco_psf=False)
    far = PointSpatialModel(lon_0=90 * u.deg, lat_0=22.01 * u.deg, frame="icrs")
    dataset.models = [SkyModel(PowerLawSpectralModel(), far, name="far")]
    with pytest.raises(
        ModelError,
        match=r"model 'far': position \(90.0000, 22.0100\) deg \(icrs\) lies outside dataset 'psf'; move it",
    ):
        dataset.npred()
