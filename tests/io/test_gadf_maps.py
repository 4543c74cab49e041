"""GADF sky-map FITS I/O: real files read as gammapy 2.1 reads them, round trips both ways, errors."""

import json
import os
from pathlib import Path

import numpy as np
import pytest
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.io import fits

from bayesdl4.errors import DataFormatError
from bayesdl4.io.gadf_maps import map_to_hdulist, read_map, read_map_hdu
from bayesdl4.maps import MapAxis, WcsGeom, WcsNDMap

CRAB = SkyCoord(83.63, 22.01, unit="deg")


def gammapy_data():
    path = os.environ.get("GAMMAPY_DATA")
    if not path:
        pytest.skip("GAMMAPY_DATA is not set: the real-data tests need the gammapy-data directory")
    return Path(path)


def real_cases():
    """(relative path, hdu) of every sky map in the files named by the brief."""
    gc = "fermi-3fhl-gc/fermi-3fhl-gc-{}.fits.gz"
    cases = [(gc.format(name), None) for name in ("counts", "background", "exposure", "psf")]
    cases += [(gc.format(f"{name}-cube"), None) for name in ("counts", "background", "exposure")]
    cases += [("fermi-3fhl-crab/Fermi-LAT-3FHL_iem.fits", None)]
    crab = "fermi-3fhl-crab/Fermi-LAT-3FHL_data_Fermi-LAT.fits"
    cases += [
        (crab, hdu)
        for hdu in ("COUNTS", "EXPOSURE", "BACKGROUND", "EDISP", "PSF", "PSF_EXPOSURE", "MASK_SAFE")
    ]
    hawc = "hawc/DL4/nHit-5.fits.gz"
    cases += [
        (hawc, hdu) for hdu in ("COUNTS", "EXPOSURE", "BACKGROUND", "EDISP", "PSF", "MASK_SAFE")
    ]
    return cases


def small_map(axes=None, unit="cm2 s", dtype=float, frame="icrs", proj="CAR"):
    if axes is None:
        axes = [MapAxis.from_energy_bounds(1 * u.TeV, 100 * u.TeV, 3, name="energy_true")]
    geom = WcsGeom.create(
        skydir=CRAB, width=(0.6, 0.4), binsz=0.1, frame=frame, proj=proj, axes=axes
    )
    data = np.random.default_rng(0).uniform(0, 10, geom.data_shape).astype(dtype)
    return WcsNDMap(geom, data, unit=unit, meta={"livetime": "1 s"})


def assert_axes_equal(ours, theirs, rtol=1e-12):
    assert [a.name for a in ours] == [a.name for a in theirs]
    for a, b in zip(ours, theirs, strict=True):
        assert a.node_type == b.node_type and a.interp == b.interp and a.nbin == b.nbin
        np.testing.assert_allclose(a.edges.value, b.edges.to_value(a.unit), rtol=rtol, atol=0)
        np.testing.assert_allclose(a.center.value, b.center.to_value(a.unit), rtol=rtol, atol=0)


def assert_same_as_gammapy(ours, theirs):
    """Data, unit, WCS, shape and axes of our map equal those of a gammapy map."""
    assert ours.data.shape == theirs.data.shape
    assert ours.data.dtype == theirs.data.dtype.newbyteorder("=")
    np.testing.assert_array_equal(ours.data, theirs.data)
    assert ours.unit == theirs.unit
    # cmp=1 ignores ancillary keys (DATE-OBS, MJDREF); FITS headers keep ~14 digits
    assert ours.geom.wcs.wcs.compare(theirs.geom.wcs.wcs, cmp=1, tolerance=1e-9)
    assert ours.geom.npix == tuple(int(np.max(n)) for n in theirs.geom.npix)
    assert_axes_equal(ours.geom.axes, theirs.geom.axes)


# real files vs gammapy ------------------------------------------------------------------
@pytest.mark.realdata
@pytest.mark.oracle
@pytest.mark.filterwarnings("ignore::astropy.wcs.FITSFixedWarning")  # emitted by gammapy's reader
@pytest.mark.parametrize("path, hdu", real_cases(), ids=lambda v: str(v).split("/")[-1])
def test_read_real_maps_like_gammapy(path, hdu):
    gammapy_maps = pytest.importorskip("gammapy.maps")
    filename = gammapy_data() / path
    ours = WcsNDMap.read(filename, hdu=hdu)
    theirs = gammapy_maps.Map.read(filename, hdu=hdu)
    assert_same_as_gammapy(ours, theirs)


@pytest.mark.realdata
def test_real_map_contents():
    """Facts about the files that do not need gammapy: axes, units and conventions."""
    root = gammapy_data()
    exposure = WcsNDMap.read(root / "fermi-3fhl-gc/fermi-3fhl-gc-exposure-cube.fits.gz")
    axis = exposure.geom.axes[0]
    # Fermi ENERGIES table: true-energy nodes in MeV, unit inferred from the GTI HDU
    assert axis.name == "energy_true" and axis.node_type == "center" and axis.unit == u.MeV
    assert exposure.unit == u.Unit("cm2 s") and exposure.data.shape == (12, 200, 400)
    counts = WcsNDMap.read(root / "fermi-3fhl-gc/fermi-3fhl-gc-counts-cube.fits.gz")
    assert counts.geom.axes[0].name == "energy" and counts.geom.axes[0].unit == u.keV
    np.testing.assert_allclose(
        counts.geom.axes[0].edges[[0, -1]].to_value("GeV"), [10, 500], rtol=1e-6
    )
    assert counts.geom.frame == "galactic" and counts.data.dtype == np.int32

    hawc = root / "hawc/DL4/nHit-5.fits.gz"
    psf = WcsNDMap.read(hawc, hdu="PSF")
    assert [a.name for a in psf.geom.axes] == ["rad", "energy"]
    assert psf.data.shape == (10, 200, 6, 6)
    assert psf.unit == u.Unit("deg-2")
    mask = WcsNDMap.read(hawc, hdu="MASK_SAFE")
    assert mask.data.dtype == bool and mask.is_mask
    # the MASK_SAFE of nHit-5 keeps 4 of 10 energy planes (whole planes)
    planes = mask.data.any(axis=(1, 2))
    assert planes.sum() == 4 and np.array_equal(planes, mask.data.all(axis=(1, 2)))
    exposure = WcsNDMap.read(hawc, hdu="EXPOSURE")
    assert exposure.meta == {"livetime": "1 s"}

    crab_psf = WcsNDMap.read(root / "fermi-3fhl-crab/Fermi-LAT-3FHL_data_Fermi-LAT.fits", hdu="PSF")
    rad = crab_psf.geom.axis("rad")  # THETA nodes column, read as gammapy's "rad"
    assert rad.node_type == "center" and rad.nbin == 300


@pytest.mark.realdata
def test_fermi_gtpsf_cube_is_refused_clearly():
    filename = gammapy_data() / "fermi-3fhl-gc/fermi-3fhl-gc-psf-cube.fits.gz"
    with pytest.raises(DataFormatError, match="not a WCS sky map.*gtpsf"):
        read_map(filename)


# round trips ---------------------------------------------------------------------------
@pytest.mark.realdata
@pytest.mark.oracle
@pytest.mark.filterwarnings("ignore::astropy.wcs.FITSFixedWarning")  # emitted by gammapy's reader
@pytest.mark.parametrize(
    "path, hdu",
    [
        ("hawc/DL4/nHit-5.fits.gz", "EXPOSURE"),
        ("hawc/DL4/nHit-5.fits.gz", "PSF"),
        ("hawc/DL4/nHit-5.fits.gz", "MASK_SAFE"),
        ("fermi-3fhl-crab/Fermi-LAT-3FHL_data_Fermi-LAT.fits", "PSF"),
        ("fermi-3fhl-gc/fermi-3fhl-gc-exposure-cube.fits.gz", None),
        ("fermi-3fhl-gc/fermi-3fhl-gc-counts.fits.gz", None),
    ],
    ids=lambda v: str(v).split("/")[-1],
)
def test_write_like_gammapy_and_read_back(tmp_path, path, hdu):
    """Our file == gammapy's file for the same map (headers, columns), and each reads the other's."""
    gammapy_maps = pytest.importorskip("gammapy.maps")
    filename = gammapy_data() / path
    ours = WcsNDMap.read(filename, hdu=hdu)
    theirs = gammapy_maps.Map.read(filename, hdu=hdu)
    out_hdu = hdu or "COUNTS"
    ours.write(tmp_path / "ours.fits", hdu=out_hdu)
    theirs.write(tmp_path / "theirs.fits", hdu=out_hdu)

    with fits.open(tmp_path / "ours.fits") as a, fits.open(tmp_path / "theirs.fits") as b:
        assert [h.name for h in a] == [h.name for h in b]
        for ha, hb in zip(a, b, strict=True):
            header_a, header_b = dict(ha.header), dict(hb.header)
            meta_a, meta_b = header_a.pop("META", "{}"), header_b.pop("META", "{}")
            assert header_a == header_b, ha.name
            # gammapy re-encodes META quantities ("1 s" -> "1.0 s"): compare their meaning
            meta_a, meta_b = json.loads(meta_a), json.loads(meta_b)
            assert {k: u.Quantity(v) for k, v in meta_a.items()} == {
                k: u.Quantity(v) for k, v in meta_b.items()
            }
            if isinstance(ha, fits.BinTableHDU):
                assert [(c.name, c.format, c.unit) for c in ha.columns] == [
                    (c.name, c.format, c.unit) for c in hb.columns
                ]
                for name in ha.columns.names:
                    # gammapy recomputes edges through log/exp: equal to rounding
                    np.testing.assert_allclose(ha.data[name], hb.data[name], rtol=1e-14, atol=0)
            elif ha.data is not None:
                np.testing.assert_array_equal(ha.data, hb.data)

    # ours -> gammapy and gammapy -> ours
    assert_same_as_gammapy(ours, gammapy_maps.Map.read(tmp_path / "ours.fits", hdu=out_hdu))
    back = WcsNDMap.read(tmp_path / "theirs.fits", hdu=out_hdu)
    assert_same_as_gammapy(back, theirs)
    assert back.geom.is_allclose(ours.geom)


@pytest.mark.oracle
@pytest.mark.parametrize("hdu", [None, "exposure"])
def test_synthetic_round_trip_gammapy(tmp_path, hdu):
    gammapy_maps = pytest.importorskip("gammapy.maps")
    axes = [
        MapAxis.from_energy_bounds(1 * u.TeV, 100 * u.TeV, 3, name="energy"),
        MapAxis.from_nodes(np.linspace(0, 0.4, 5) * u.deg, name="rad", interp="lin"),
    ]
    m = small_map(axes=axes, frame="galactic", proj="TAN")
    m.write(tmp_path / "m.fits.gz", hdu=hdu)
    theirs = gammapy_maps.Map.read(tmp_path / "m.fits.gz", hdu=hdu)
    assert_same_as_gammapy(m, theirs)
    assert theirs.meta["livetime"] == 1 * u.s
    name = "PRIMARY" if hdu is None else "EXPOSURE"
    with fits.open(tmp_path / "m.fits.gz") as hdulist:
        assert hdulist[name].header["BANDSHDU"] == f"{name}_BANDS"
        assert hdulist[f"{name}_BANDS"].header["AXCOLS1"] == "E_MIN,E_MAX"
        assert hdulist[f"{name}_BANDS"].header["AXCOLS2"] == "RAD"
        assert hdulist[name].header["WCSSHAPE"] == "(6,4,3,5)"
    again = WcsNDMap.read(tmp_path / "m.fits.gz", hdu=hdu)
    np.testing.assert_array_equal(again.data, m.data)
    assert again.geom.is_allclose(m.geom) and again.meta == m.meta


@pytest.mark.oracle
def test_read_gammapy_sparse_and_image_maps(tmp_path):
    gammapy_maps = pytest.importorskip("gammapy.maps")
    axis = gammapy_maps.MapAxis.from_energy_bounds("1 TeV", "10 TeV", 2)
    geom = gammapy_maps.WcsGeom.create(skydir=CRAB, width=1, binsz=0.1, axes=[axis])
    data = np.zeros(geom.data_shape, dtype=np.float32)
    data[0, 3, 4], data[1, 7, 2] = 2.5, 4.0
    theirs = gammapy_maps.Map.from_geom(geom, data=data, unit="sr-1")
    theirs.write(tmp_path / "sparse.fits", sparse=True, hdu="SKYMAP")
    ours = WcsNDMap.read(tmp_path / "sparse.fits", hdu="SKYMAP")
    np.testing.assert_array_equal(ours.data, data)
    assert ours.unit == u.Unit("sr-1")

    image = gammapy_maps.Map.from_geom(geom.to_image(), data=data[0], unit="cm-2")
    image.write(tmp_path / "image.fits")
    ours = WcsNDMap.read(tmp_path / "image.fits")
    assert ours.geom.is_image and ours.unit == u.Unit("cm-2")
    np.testing.assert_array_equal(ours.data, data[0])
    with fits.open(tmp_path / "image.fits") as hdulist:
        assert len(hdulist) == 1  # no bands table for a map without axes


def test_round_trip_without_gammapy(tmp_path):
    m = small_map()
    m.write(tmp_path / "m.fits", hdu="EXPOSURE")
    back = read_map(tmp_path / "m.fits", hdu="EXPOSURE")
    np.testing.assert_array_equal(back.data, m.data)
    assert back.unit == u.Unit("cm2 s") and back.geom.is_allclose(m.geom)
    mask = WcsNDMap(m.geom, m.data > 5)
    mask.write(tmp_path / "mask.fits", hdu="MASK_SAFE")
    with fits.open(tmp_path / "mask.fits") as hdulist:
        assert hdulist["MASK_SAFE"].data.dtype.kind == "i"  # written as integers, as gammapy
        assert read_map_hdu(hdulist, "MASK_SAFE").data.dtype == bool
    np.testing.assert_array_equal(read_map(tmp_path / "mask.fits", hdu="MASK_SAFE").data, mask.data)


def test_overwrite_protection(tmp_path):
    m = small_map()
    path = tmp_path / "m.fits"
    m.write(path)
    before = path.read_bytes()
    with pytest.raises(FileExistsError, match="overwrite=True"):
        m.copy(data=m.data * 2).write(path)
    assert path.read_bytes() == before
    m.copy(data=m.data * 2).write(path, overwrite=True)
    np.testing.assert_allclose(read_map(path).data, 2 * m.data)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.fits"]  # no temporary files left


# errors ---------------------------------------------------------------------------------
def test_missing_hdu_names_file_hdu_and_available(tmp_path):
    path = tmp_path / "m.fits"
    small_map().write(path, hdu="EXPOSURE")
    with pytest.raises(DataFormatError) as info:
        read_map(path, hdu="COUNTS")
    message = str(info.value)
    assert "m.fits" in message and "'COUNTS'" in message
    assert "['PRIMARY', 'EXPOSURE', 'EXPOSURE_BANDS']" in message
    with pytest.raises(DataFormatError, match="file not found"):
        read_map(tmp_path / "nope.fits")


def test_bands_hdu_missing_or_mismatched(tmp_path):
    hdulist = map_to_hdulist(small_map(), hdu="EXPOSURE")
    # BANDSHDU names an HDU that is not there
    del hdulist["EXPOSURE_BANDS"]
    with pytest.raises(DataFormatError, match="no bands HDU 'EXPOSURE_BANDS'"):
        read_map_hdu(hdulist, "EXPOSURE")

    # a bands table with the wrong number of bins
    other = map_to_hdulist(
        small_map(axes=[MapAxis.from_energy_bounds(1 * u.TeV, 100 * u.TeV, 5, name="energy_true")]),
        hdu="EXPOSURE",
    )
    hdulist.append(other["EXPOSURE_BANDS"])
    with pytest.raises(DataFormatError, match="WCSSHAPE .* does not match"):
        read_map_hdu(hdulist, "EXPOSURE")
    del hdulist["EXPOSURE"].header["WCSSHAPE"]
    with pytest.raises(DataFormatError, match="data shape .* does not match"):
        read_map_hdu(hdulist, "EXPOSURE")

    # a cube without any bands table
    hdulist = map_to_hdulist(small_map(), hdu="EXPOSURE")
    del hdulist["EXPOSURE"].header["BANDSHDU"]
    del hdulist["EXPOSURE"].header["WCSSHAPE"]
    with pytest.raises(DataFormatError, match="data shape .* does not match"):
        read_map_hdu(hdulist, "EXPOSURE")

    # a bands table without the columns named by AXCOLS1
    hdulist = map_to_hdulist(small_map(), hdu="EXPOSURE")
    hdulist["EXPOSURE_BANDS"].header["AXCOLS1"] = "FOO_MIN,FOO_MAX"
    with pytest.raises(DataFormatError, match="missing column 'FOO_MIN'"):
        read_map_hdu(hdulist, "EXPOSURE")


def test_non_map_hdu_refused(tmp_path):
    hdulist = fits.HDUList(
        [fits.PrimaryHDU(), fits.BinTableHDU.from_columns([fits.Column("X", "D", array=[1.0])])]
    )
    with pytest.raises(DataFormatError, match="not a WCS sky map"):
        read_map_hdu(hdulist)
