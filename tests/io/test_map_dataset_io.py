"""Map dataset files: real gammapy-data files and round trips, checked against gammapy 2.1's reading.

Every array, axis, mask, GTI row and meta-table value read here is compared with what gammapy 2.1
reads from the same file; files written here are read by gammapy and compared back; files written
by gammapy are read here. Bad inputs raise our error types naming the file and HDU.
"""

import os

import numpy as np
import pytest
from astropy import units as u
from astropy.io import fits
from astropy.table import Table

from bayesdl4.datasets import MapDataset, MapDatasetOnOff
from bayesdl4.errors import DataFileNotFoundError, DataFormatError, GeometryMismatchError
from bayesdl4.io.map_dataset import read_map_dataset_from_cubes
from bayesdl4.irf import EDispKernelMap, EDispMap, PSFMap
from bayesdl4.maps import MapAxis, WcsGeom, WcsNDMap
from tests.conftest import gammapy_data

HAWC = [f"hawc/DL4/nHit-{n}.fits.gz" for n in range(5, 10)]
FERMI = "fermi-3fhl-crab/Fermi-LAT-3FHL_data_Fermi-LAT.fits"
GC = "fermi-3fhl-gc/fermi-3fhl-gc-"


# ------------------------------------------------------------------------------------ helpers
def make_map_dataset(name="synth", seed=0, onoff=False, migra=False, reco_psf=False):
    """A small dataset with every part filled with distinct non-trivial values."""
    rng = np.random.default_rng(seed)
    energy = MapAxis.from_energy_bounds(1 * u.TeV, 100 * u.TeV, 4, name="energy")
    energy_true = MapAxis.from_energy_bounds(0.5 * u.TeV, 200 * u.TeV, 6, name="energy_true")
    geom = WcsGeom.create(
        skydir=(83.63, 22.01), binsz=0.1, npix=(8, 6), frame="icrs", proj="CAR", axes=[energy]
    )
    migra_axis = MapAxis(np.linspace(0.2, 5, 9), name="migra", interp="lin") if migra else None
    base = MapDataset.create(
        geom,
        energy_axis_true=energy_true,
        migra_axis=migra_axis,
        binsz_irf=0.25,
        reco_psf=reco_psf,
        name=name,
    )
    shape = geom.data_shape
    counts = WcsNDMap(geom, rng.poisson(5.0, shape).astype(float))
    background = WcsNDMap(geom, rng.uniform(1, 4, shape))
    exposure = WcsNDMap(
        base.exposure.geom, rng.uniform(1e9, 5e9, base.exposure.geom.data_shape), unit="m2 s"
    )
    psf_energy = energy if reco_psf else energy_true
    psf_geom = base.psf.psf_map.geom
    psf = PSFMap.from_gauss(
        psf_energy, sigma=np.linspace(0.3, 0.1, psf_energy.nbin) * u.deg, geom=psf_geom
    )
    psf.exposure_map.data[...] = rng.uniform(1, 2, psf.exposure_map.data.shape)
    edisp = base.edisp
    values = rng.uniform(0, 1, edisp.edisp_map.data.shape)
    # each row (true-energy bin and pixel) sums (migra: integrates) to a value in [0.5, 1], as
    # the readers require
    first_axis = edisp.edisp_map.geom.axes[0]
    width = first_axis.bin_width.value.reshape(1, -1, 1, 1) if first_axis.name == "migra" else 1.0
    total = rng.uniform(0.5, 1, (values.shape[0], 1) + values.shape[2:])
    edisp.edisp_map.data[...] = values / np.sum(values * width, axis=1, keepdims=True) * total
    edisp.exposure_map.data[...] = rng.uniform(1, 2, edisp.exposure_map.data.shape)
    mask_safe = WcsNDMap(geom, rng.uniform(size=shape) > 0.3)
    mask_fit = WcsNDMap(geom, rng.uniform(size=shape) > 0.5)
    gti = Table(
        {"START": [0.0, 100.5], "STOP": [50.0, 400.25]},
        meta={"MJDREFI": 51910, "MJDREFF": 7.428703703703703e-4, "TIMESYS": "tt", "TIMEUNIT": "s"},
    )
    gti["START"].unit = gti["STOP"].unit = "s"
    meta_table = Table({"OBS_ID": [23523, 23526], "TELESCOP": ["HESS", "HESS"]})
    kwargs = dict(
        counts=counts,
        exposure=exposure,
        psf=psf,
        edisp=edisp,
        mask_safe=mask_safe,
        mask_fit=mask_fit,
        gti=gti,
        meta_table=meta_table,
        name=name,
    )
    if onoff:
        return MapDatasetOnOff(
            counts_off=WcsNDMap(geom, rng.poisson(20.0, shape).astype(float)),
            acceptance=WcsNDMap(geom, np.ones(shape)),
            acceptance_off=WcsNDMap(geom, rng.uniform(3, 6, shape)),
            **kwargs,
        )
    return MapDataset(background=background, **kwargs)


def _assert_axes(ours, theirs, what):
    assert [ax.name for ax in ours] == list(theirs.names), what
    for ax, gax in zip(ours, theirs, strict=True):
        assert ax.node_type == gax.node_type, f"{what}: {ax.name} node type"
        assert ax.interp == gax.interp, f"{what}: {ax.name} interp"
        np.testing.assert_allclose(
            ax.edges.to_value(gax.unit), gax.edges.value, rtol=1e-12, err_msg=f"{what}: {ax.name}"
        )
        np.testing.assert_allclose(
            ax.center.to_value(gax.unit), gax.center.value, rtol=1e-12, err_msg=f"{what}: {ax.name}"
        )


def assert_map_equal(ours, theirs, what, rtol=0):
    """Same data (exactly, or to ``rtol``), unit, axes and WCS as a gammapy map (None matches None)."""
    if theirs is None:
        assert ours is None, f"{what}: gammapy has none"
        return
    assert ours is not None, f"{what}: missing"
    assert ours.data.shape == theirs.data.shape, what
    assert ours.data.dtype.kind == theirs.data.dtype.kind, f"{what}: dtype {ours.data.dtype}"
    if rtol:
        np.testing.assert_allclose(ours.data, theirs.data, rtol=rtol, atol=0, err_msg=what)
    else:
        np.testing.assert_array_equal(ours.data, theirs.data, err_msg=what)
    assert ours.unit == theirs.unit, f"{what}: unit {ours.unit} vs {theirs.unit}"
    _assert_axes(ours.geom.axes, theirs.geom.axes, what)
    assert ours.geom.wcs.wcs.compare(theirs.geom.wcs.wcs, tolerance=1e-12), f"{what}: WCS"


def _assert_table_equal(ours, theirs, what):
    assert ours.colnames == theirs.colnames, what
    assert len(ours) == len(theirs), what
    for col in ours.colnames:
        a, b = np.asarray(ours[col]), np.asarray(theirs[col])
        if a.dtype.kind in "fc":
            np.testing.assert_array_equal(a, b, err_msg=f"{what}: {col}")
        else:
            assert a.astype(str).tolist() == b.astype(str).tolist(), f"{what}: {col}"


def assert_matches_gammapy(ours, theirs, rtol=0):
    """Every part of a bayesdl4 map dataset equals gammapy's reading (``rtol`` for gammapy's float32
    in-memory maps)."""
    assert ours.name == theirs.name
    assert ours.tag == theirs.tag
    assert_map_equal(ours.counts, theirs.counts, "counts")
    assert_map_equal(ours.exposure, theirs.exposure, "exposure")
    if ours.tag == "MapDataset":
        assert_map_equal(ours.background, theirs.background, "background")
    else:
        for attr in ("counts_off", "acceptance", "acceptance_off"):
            assert_map_equal(getattr(ours, attr), getattr(theirs, attr), attr)
        np.testing.assert_allclose(ours.background.data, theirs.background.data, rtol=1e-12)
    assert_map_equal(ours.mask_safe, theirs.mask_safe, "mask_safe")
    assert_map_equal(ours.mask_fit, theirs.mask_fit, "mask_fit")
    if theirs.psf is None:
        assert ours.psf is None
    else:
        assert ours.psf.energy_name == theirs.psf.energy_name
        assert_map_equal(ours.psf.psf_map, theirs.psf.psf_map, "psf", rtol=rtol)
        assert_map_equal(ours.psf.exposure_map, theirs.psf.exposure_map, "psf exposure")
    if theirs.edisp is None:
        assert ours.edisp is None
    else:
        assert type(ours.edisp).__name__ == type(theirs.edisp).__name__
        assert_map_equal(ours.edisp.edisp_map, theirs.edisp.edisp_map, "edisp", rtol=rtol)
        assert_map_equal(ours.edisp.exposure_map, theirs.edisp.exposure_map, "edisp exposure")
    if theirs.gti is None:
        assert ours.gti is None
    else:
        assert len(ours.gti) == len(theirs.gti.table)
        from astropy.time import Time

        scale = str(ours.gti.meta.get("TIMESYS", "tt")).lower()
        ref = Time(ours.gti.meta["MJDREFI"] + ours.gti.meta["MJDREFF"], format="mjd", scale=scale)
        assert ref.tt.mjd == pytest.approx(theirs.gti.time_ref.tt.mjd, abs=1e-9)
        np.testing.assert_allclose(ours.gti["START"], theirs.gti.met_start.to_value("s"), atol=1e-4)
        np.testing.assert_allclose(ours.gti["STOP"], theirs.gti.met_stop.to_value("s"), atol=1e-4)
    if theirs.meta_table is None:
        assert ours.meta_table is None
    else:
        _assert_table_equal(ours.meta_table, theirs.meta_table, "meta_table")


@pytest.fixture(scope="module")
def gp():
    """gammapy.datasets (the oracle); the test is skipped without gammapy."""
    pytest.importorskip("gammapy")
    import gammapy.datasets

    return gammapy.datasets


def _no_temp_files(folder):
    return [p for p in os.listdir(folder) if p.startswith(".")]


# ------------------------------------------------------------------------------------ real files
@pytest.mark.realdata
@pytest.mark.oracle
@pytest.mark.parametrize("relpath", HAWC + [FERMI])
def test_real_files_match_gammapy(relpath, gp):
    path = gammapy_data() / relpath
    ours = MapDataset.read(path)
    theirs = gp.MapDataset.read(path, name=ours.name)
    assert_matches_gammapy(ours, theirs)
    if relpath in HAWC:
        # the facts the graph code relies on (CONVENTIONS.md)
        assert ours.name == path.name.split(".")[0]
        assert ours.psf.is_reco and isinstance(ours.edisp, EDispKernelMap)
        assert ours.counts.data.shape == (10, 120, 120) and ours.exposure.data.shape[0] == 50
        assert len(ours.gti) > 1000 and ours.meta_table["TELESCOP"][0] == "HAWC"
        assert ours.mask_fit is None


@pytest.mark.realdata
def test_fermi_file_name_and_parts():
    ours = MapDataset.read(gammapy_data() / FERMI)
    # no NAME keyword: gammapy invents a random name, we take the file name
    assert ours.name == "Fermi-LAT-3FHL_data_Fermi-LAT"
    assert MapDataset.read(gammapy_data() / FERMI, name="Fermi-LAT").name == "Fermi-LAT"
    assert len(ours.gti) == 0 and ours.meta_table is None
    assert ours.edisp.exposure_map is not None and ours.psf.exposure_map is not None
    assert ours.exposure.unit == u.Unit("cm2 s")
    assert int(ours.mask_safe.data.sum()) == 8280  # of 10000 bins (gammapy reads the same, above)


@pytest.mark.realdata
@pytest.mark.oracle
@pytest.mark.filterwarnings(
    "ignore::astropy.wcs.FITSFixedWarning"
)  # gammapy's Map.read of Fermi cubes
def test_fermi_gc_cubes_assembled_like_gammapy(gp):
    from gammapy.irf import PSFMap as GPSFMap
    from gammapy.maps import Map

    base = gammapy_data() / GC
    ours = read_map_dataset_from_cubes(
        f"{base}counts-cube.fits.gz",
        f"{base}exposure-cube.fits.gz",
        background=f"{base}background-cube.fits.gz",
        psf=f"{base}psf-cube.fits.gz",
        name="fermi-3fhl-gc",
    )
    # gammapy's own test recipe (datasets/tests/test_map.py::get_fermi_3fhl_gc_dataset) + gtpsf
    theirs = gp.MapDataset(
        counts=Map.read(f"{base}counts-cube.fits.gz"),
        background=Map.read(f"{base}background-cube.fits.gz"),
        exposure=Map.read(f"{base}exposure-cube.fits.gz"),
        psf=GPSFMap.read(f"{base}psf-cube.fits.gz", format="gtpsf"),
        name="fermi-3fhl-gc",
    )
    assert_map_equal(ours.counts, theirs.counts, "counts")
    assert_map_equal(ours.background, theirs.background, "background")
    assert_map_equal(ours.exposure, theirs.exposure, "exposure")
    assert ours.exposure.geom.axis("energy_true").node_type == "center"
    # gammapy holds the gtpsf PSF on a region geometry; the profiles and axes are the same
    np.testing.assert_array_equal(
        ours.psf.psf_map.data[..., 0, 0], theirs.psf.psf_map.data[..., 0, 0]
    )
    assert ours.psf.psf_map.unit == theirs.psf.psf_map.unit
    _assert_axes(ours.psf.psf_map.geom.axes, theirs.psf.psf_map.geom.axes, "psf")
    assert ours.edisp is None
    assert len(ours.gti) == 38961  # the counts file's GTI table


# ------------------------------------------------------------------------------------ round trips
@pytest.mark.oracle
@pytest.mark.parametrize(
    "kind",
    ["plain", "onoff", "migra", "reco_psf"],
)
def test_written_file_read_by_gammapy(kind, tmp_path, gp):
    dataset = make_map_dataset(
        name="synth", onoff=kind == "onoff", migra=kind == "migra", reco_psf=kind == "reco_psf"
    )
    path = tmp_path / "synth.fits"
    dataset.write(path)
    cls = gp.MapDatasetOnOff if kind == "onoff" else gp.MapDataset
    theirs = cls.read(path, name="synth")
    assert_matches_gammapy(dataset, theirs)
    if kind == "migra":
        assert isinstance(dataset.edisp, EDispMap)
    # and back: ours reads the same file to the same arrays
    again = MapDataset.read(path)
    assert type(again) is type(dataset)
    assert_matches_gammapy(again, theirs)
    assert _no_temp_files(tmp_path) == []


@pytest.mark.realdata
@pytest.mark.oracle
def test_real_file_rewritten_then_read_by_gammapy(tmp_path, gp):
    ours = MapDataset.read(gammapy_data() / FERMI, name="Fermi-LAT")
    ours.mask_fit = WcsNDMap(ours.counts.geom, np.zeros(ours.data_shape, bool))
    ours.mask_fit.data[:, 5:20, 10:30] = True
    ours.write(tmp_path / "fermi.fits")
    theirs = gp.MapDataset.read(tmp_path / "fermi.fits")
    assert theirs.name == "Fermi-LAT"
    assert_matches_gammapy(ours, theirs)
    assert int(theirs.mask_fit.data.sum()) == 5 * 15 * 20


@pytest.mark.oracle
@pytest.mark.parametrize("kind", ["plain", "onoff", "migra"])
def test_gammapy_written_file_read_here(kind, tmp_path, gp):
    from gammapy.data import GTI
    from gammapy.maps import Map
    from gammapy.maps import MapAxis as GMapAxis
    from gammapy.maps import WcsGeom as GWcsGeom

    rng = np.random.default_rng(3)
    energy = GMapAxis.from_energy_bounds("1 TeV", "10 TeV", 3)
    energy_true = GMapAxis.from_energy_bounds("0.5 TeV", "20 TeV", 5, name="energy_true")
    geom = GWcsGeom.create(
        skydir=(266.4, -28.9), binsz=0.05, npix=(7, 5), frame="galactic", axes=[energy]
    )
    migra = GMapAxis.from_edges(np.linspace(0.2, 5, 7), name="migra") if kind == "migra" else None
    dataset = gp.MapDataset.create(
        geom, energy_axis_true=energy_true, migra_axis=migra, binsz_irf=0.1, name="gp-written"
    )
    dataset.counts.data = rng.poisson(3.0, dataset.counts.data.shape).astype(float)
    dataset.background.data = rng.uniform(0.5, 2, dataset.background.data.shape)
    dataset.exposure.data = rng.uniform(1e8, 2e8, dataset.exposure.data.shape)
    values = rng.uniform(0, 1, dataset.edisp.edisp_map.data.shape)
    # rows sum (migra: integrate) to at most 1, as a response must (the readers check it)
    width = migra.bin_width.value.reshape(1, -1, 1, 1) if kind == "migra" else 1.0
    dataset.edisp.edisp_map.data = values / np.sum(values * width, axis=1, keepdims=True) * 0.9
    dataset.psf.psf_map.data = rng.uniform(0, 1, dataset.psf.psf_map.data.shape)
    dataset.mask_safe.data = rng.uniform(size=dataset.mask_safe.data.shape) > 0.4
    dataset.mask_fit = Map.from_geom(geom, data=rng.uniform(size=geom.data_shape) > 0.5)
    dataset.gti = GTI.create([1, 10] * u.s, [5, 20] * u.s, reference_time="2010-01-01")
    if kind == "onoff":
        dataset = gp.MapDatasetOnOff.from_map_dataset(
            dataset,
            acceptance=1,
            acceptance_off=Map.from_geom(geom, data=4.0),
            counts_off=Map.from_geom(geom, data=rng.poisson(10.0, geom.data_shape).astype(float)),
            name="gp-written",
        )
        dataset.mask_fit = Map.from_geom(geom, data=rng.uniform(size=geom.data_shape) > 0.5)
    path = tmp_path / "gp.fits"
    dataset.write(path)
    ours = MapDataset.read(path)
    theirs = type(dataset).read(path, name=ours.name)
    assert ours.name == "gp-written"
    assert type(ours).__name__ == type(dataset).__name__
    assert_matches_gammapy(ours, theirs)
    assert (
        ours.mask_fit.data.dtype == bool and 0 < ours.mask_fit.data.sum() < ours.mask_fit.data.size
    )


def test_round_trip_keeps_everything(tmp_path):
    for onoff in (False, True):
        dataset = make_map_dataset(name="rt", onoff=onoff)
        path = tmp_path / f"rt{onoff}.fits.gz"
        dataset.write(path)
        back = MapDataset.read(path)
        assert type(back) is type(dataset)
        for attr in ("counts", "exposure", "mask_safe", "mask_fit", "background"):
            np.testing.assert_array_equal(getattr(back, attr).data, getattr(dataset, attr).data)
        np.testing.assert_array_equal(back.psf.psf_map.data, dataset.psf.psf_map.data)
        np.testing.assert_array_equal(back.edisp.edisp_map.data, dataset.edisp.edisp_map.data)
        np.testing.assert_array_equal(back.gti["STOP"], [50.0, 400.25])
        assert back.gti.meta["MJDREFI"] == 51910
        assert back.meta_table["OBS_ID"].tolist() == [23523, 23526]
        assert back.mask_fit.data.dtype == bool


def test_hdu_layout_is_gammapys(tmp_path):
    path = tmp_path / "x.fits"
    make_map_dataset(name="x").write(path)
    with fits.open(path) as hdulist:
        names = [h.name for h in hdulist]
        assert hdulist[0].header["NAME"] == "x"
        assert hdulist["MASK_FIT"].data.dtype.kind == "i"  # masks stored as integers, as gammapy
    assert names == [
        "PRIMARY",
        "COUNTS",
        "COUNTS_BANDS",
        "EXPOSURE",
        "EXPOSURE_BANDS",
        "BACKGROUND",
        "BACKGROUND_BANDS",
        "EDISP",
        "EDISP_BANDS",
        "EDISP_EXPOSURE",
        "EDISP_EXPOSURE_BANDS",
        "PSF",
        "PSF_BANDS",
        "PSF_EXPOSURE",
        "PSF_EXPOSURE_BANDS",
        "MASK_SAFE",
        "MASK_SAFE_BANDS",
        "MASK_FIT",
        "MASK_FIT_BANDS",
        "GTI",
        "META_TABLE",
    ]


# ------------------------------------------------------------------------------------ overwrite
def test_overwrite_protection_and_no_temp_files(tmp_path):
    path = tmp_path / "d.fits"
    make_map_dataset(name="first").write(path)
    before = path.read_bytes()
    with pytest.raises(FileExistsError, match="d.fits"):
        make_map_dataset(name="second").write(path)
    assert path.read_bytes() == before
    make_map_dataset(name="second").write(path, overwrite=True)
    assert fits.getheader(path)["NAME"] == "second"
    assert _no_temp_files(tmp_path) == []


def test_failed_write_leaves_nothing(tmp_path):
    dataset = make_map_dataset(name="bad")
    dataset.meta = {"obsid": object()}  # silently skipped: not a FITS value
    dataset.gti = Table({"START": [object()]}, dtype=[object])  # cannot be written to FITS
    with pytest.raises(Exception):  # noqa: B017 - astropy's own error for an object column
        dataset.write(tmp_path / "bad.fits")
    assert os.listdir(tmp_path) == []


# ------------------------------------------------------------------------------------ bad inputs
@pytest.fixture(scope="module")
def base_hdus():
    """HDUs of a valid dataset file, built once (building HDUs is slow in astropy)."""
    return make_map_dataset(name="b").to_hdulist()


def _write_hdulist(path, mutate, base_hdus):
    hdulist = fits.HDUList([hdu.copy() for hdu in base_hdus])
    mutate(hdulist)
    hdulist.writeto(path)
    return path


def test_missing_file_and_not_fits(tmp_path):
    with pytest.raises(DataFileNotFoundError, match="nope.fits"):
        MapDataset.read(tmp_path / "nope.fits")
    (tmp_path / "text.fits").write_text("not a FITS file")
    with pytest.raises(DataFormatError, match="text.fits"):
        MapDataset.read(tmp_path / "text.fits")


def test_exposure_with_nan_names_file_and_hdu(tmp_path, base_hdus):
    def mutate(h):
        h["EXPOSURE"].data[2, 1, 1] = np.nan

    path = _write_hdulist(tmp_path / "nan.fits", mutate, base_hdus)
    with pytest.raises(DataFormatError, match=r"nan\.fits, HDU 'EXPOSURE'.*non-finite"):
        MapDataset.read(path)


def test_background_axis_mismatch_names_both(tmp_path, base_hdus):
    other = make_map_dataset(name="o")
    energy = MapAxis.from_energy_bounds(1 * u.TeV, 100 * u.TeV, 5, name="energy")
    bad = WcsNDMap(other.counts.geom.to_image().to_cube([energy]), np.ones((5, 6, 8)))

    def mutate(h):
        del h["BACKGROUND"], h["BACKGROUND_BANDS"]
        h.extend(bad.to_hdulist(hdu="BACKGROUND")[1:])

    path = _write_hdulist(tmp_path / "bkg.fits", mutate, base_hdus)
    with pytest.raises(
        GeometryMismatchError,
        match=r"HDU 'BACKGROUND'.*background.*counts.*energy axis: 5 bins.* vs 4 bins",
    ):
        MapDataset.read(path)


def test_missing_bands_hdu_lists_hdus(tmp_path, base_hdus):
    def mutate(h):
        del h["EXPOSURE_BANDS"]

    path = _write_hdulist(tmp_path / "nobands.fits", mutate, base_hdus)
    with pytest.raises(
        DataFormatError, match=r"nobands\.fits.*EXPOSURE_BANDS.*available HDUs: \[.*'COUNTS'"
    ):
        MapDataset.read(path)


def test_file_without_cube_hdus_lists_hdus(tmp_path, base_hdus):
    def mutate(h):
        for name in ("COUNTS", "BACKGROUND", "MASK_SAFE", "MASK_FIT"):
            del h[name], h[f"{name}_BANDS"]

    path = _write_hdulist(tmp_path / "empty.fits", mutate, base_hdus)
    with pytest.raises(
        DataFormatError,
        match=r"empty\.fits: not a map dataset.*HDUs present: \['PRIMARY', 'EXPOSURE'",
    ):
        MapDataset.read(path)


def test_onoff_requested_for_plain_file(tmp_path):
    path = tmp_path / "plain.fits"
    make_map_dataset(name="p").write(path)
    with pytest.raises(
        DataFormatError, match=r"plain\.fits: a MapDatasetOnOff file needs a COUNTS_OFF HDU"
    ):
        MapDatasetOnOff.read(path)


@pytest.mark.realdata
def test_spectrum_file_given_to_map_reader():
    with pytest.raises(DataFormatError, match="spectrum dataset.*SpectrumDataset.read"):
        MapDataset.read(gammapy_data() / "joint-crab/spectra/hess/pha_obs23523.fits")


def test_cubes_with_mismatched_background(tmp_path):
    dataset = make_map_dataset(name="c")
    dataset.counts.write(tmp_path / "counts.fits")
    dataset.exposure.write(tmp_path / "exposure.fits")
    dataset.background.slice_by_idx({"energy": slice(0, 3)}).write(tmp_path / "bkg.fits")
    with pytest.raises(
        GeometryMismatchError, match=r"bkg\.fits: .*background geometry does not match counts"
    ):
        read_map_dataset_from_cubes(
            tmp_path / "counts.fits", tmp_path / "exposure.fits", background=tmp_path / "bkg.fits"
        )
    with pytest.raises(DataFileNotFoundError, match="nope.fits"):
        read_map_dataset_from_cubes(tmp_path / "counts.fits", tmp_path / "nope.fits")
