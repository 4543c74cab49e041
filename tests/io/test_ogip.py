"""OGIP / GADF spectrum I/O without gammapy: real files read with the right content, lossless round trips,
overwrite protection and all-or-nothing writes."""

from pathlib import Path

import numpy as np
import pytest
from astropy import units as u
from astropy.io import fits

from bayesdl4.datasets.spectrum import SpectrumDataset, SpectrumDatasetOnOff
from bayesdl4.errors import DataFormatError
from bayesdl4.io.ogip import ogip_filenames, read_arf, read_rmf
from bayesdl4.io.spectrum import (
    detect_spectrum_format,
    read_spectrum_dataset,
    write_spectrum_dataset,
)
from bayesdl4.utils.fileio import file_checksum


# ---------------------------------------------------------------------------------------------- names
def test_ogip_filenames_follow_gammapy(tmp_path):
    names = ogip_filenames(tmp_path / "pha_obs1.fits.gz")
    assert names["pha"].name == "pha_obs1.fits.gz"
    assert names["bkg"].name == "pha_obs1_bkg.fits.gz"
    assert names["arf"].name == "pha_obs1_arf.fits.gz"
    assert names["rmf"].name == "pha_obs1_rmf.fits.gz"
    assert ogip_filenames("a/b/spec.fits")["rmf"] == Path("a/b/spec_rmf.fits")


# ---------------------------------------------------------------------------------------------- real files
@pytest.mark.realdata
def test_read_real_spectrum(gammapy_data, pha_file, pha_lists):
    """Every real PHA reads as an OnOff dataset with the shapes of its EBOUNDS and ARF and gammapy's name."""
    path = gammapy_data / pha_file
    dataset = SpectrumDatasetOnOff.read(path)
    n_reco, n_true = pha_lists["shapes"][pha_file]
    assert isinstance(dataset, SpectrumDatasetOnOff)
    assert dataset.counts.data.shape == (n_reco, 1, 1)
    assert dataset.counts_off.data.shape == (n_reco, 1, 1)
    assert dataset.exposure.data.shape == (n_true, 1, 1)
    assert dataset.edisp.pdf_matrix.shape == (n_true, n_reco)
    assert dataset.mask_safe.data.dtype == bool
    with fits.open(path) as hdul:
        header = hdul["SPECTRUM"].header
        obs_ids = [card.value for card in header.cards if card.keyword == "OBS_ID"]
        # gammapy's name: str(OBS_ID), or str(list) for stacked spectra that repeat the keyword (FACT)
        assert dataset.name == str(obs_ids[0] if len(obs_ids) == 1 else obs_ids)
        assert dataset.livetime.to_value("s") == header["EXPOSURE"]
        np.testing.assert_array_equal(dataset.counts.data.ravel(), hdul["SPECTRUM"].data["COUNTS"])
        quality = np.asarray(hdul["SPECTRUM"].data["QUALITY"]).astype(int)
        np.testing.assert_array_equal(dataset.mask_safe.data.ravel(), quality == 0)
    # rows of the redistribution matrix are probabilities
    assert np.all(dataset.edisp.pdf_matrix.sum(axis=1) <= 1 + 1e-6)
    assert detect_spectrum_format(path) == "ogip"


@pytest.mark.realdata
def test_exposure_is_arf_times_livetime(gammapy_data, pha_lists):
    """exposure = SPECRESP x EXPOSURE keyword on the ARF's float64 true-energy edges (not the RMF's float32)."""
    pha = gammapy_data / pha_lists["hess"]
    dataset = read_spectrum_dataset(pha)
    with fits.open(pha.parent / "arf_obs23523.fits") as arf, fits.open(pha) as hdul:
        specresp = arf["SPECRESP"].data["SPECRESP"]
        lo = arf["SPECRESP"].data["ENERG_LO"]
        livetime = hdul["SPECTRUM"].header["EXPOSURE"]
    np.testing.assert_array_equal(dataset.exposure.data.ravel(), specresp * livetime)
    assert dataset.exposure.unit == u.Unit("cm2 s")
    np.testing.assert_array_equal(dataset.energy_axis_true.edges.value[:-1], lo)
    np.testing.assert_array_equal(dataset.edisp.energy_axis_true.edges.value[:-1], lo)


@pytest.mark.realdata
def test_fact_per_bin_backscal(gammapy_data):
    """The stacked FACT spectrum has per-bin BACKSCAL: alpha = BACKSCAL_on / BACKSCAL_off bin by bin."""
    pha = gammapy_data / "joint-crab/spectra/fact/pha_stacked.fits"
    dataset = read_spectrum_dataset(pha)
    with fits.open(pha) as on, fits.open(pha.parent / "bkg_stacked.fits") as off:
        b_on = on["SPECTRUM"].data["BACKSCAL"]
        b_off = off["SPECTRUM"].data["BACKSCAL"]
    with np.errstate(divide="ignore", invalid="ignore"):
        expected = np.nan_to_num(b_on / b_off, nan=0.0, posinf=0.0)
    np.testing.assert_array_equal(dataset.alpha.data.ravel(), expected)
    assert np.unique(dataset.alpha.data[dataset.mask_safe.data]).size > 1


@pytest.mark.realdata
def test_region_and_gti_are_read(gammapy_data):
    """The PKS 2155 file carries gammapy's ON region (REGION HDU) and six GTIs."""
    dataset = read_spectrum_dataset(gammapy_data / "PKS2155-steady/pks2155-304_steady.fits.gz")
    region = dataset.counts.geom.region
    assert region.center.icrs.ra.deg == pytest.approx(329.72, abs=1e-6)
    assert region.center.icrs.dec.deg == pytest.approx(-30.22, abs=1e-6)
    assert region.radius.to_value("deg") == pytest.approx(0.11, rel=1e-6)
    assert len(dataset.gti) == 6
    assert dataset.exposure.unit == u.Unit("m2 s")


def test_rmf_matrix_round_trip_with_groups(tmp_path, onoff_dataset):
    """Rows with two channel groups and an empty row survive the RMF grouping exactly (float64 matrix)."""
    write_spectrum_dataset(onoff_dataset, tmp_path / "s.fits")
    true, reco, matrix = read_rmf(tmp_path / "s_rmf.fits")
    np.testing.assert_array_equal(matrix, onoff_dataset.edisp.pdf_matrix)
    assert matrix[0].sum() == 0 and matrix[5, 7] == 0.013
    assert reco.nbin == 12 and true.nbin == 18
    axis, specresp = read_arf(tmp_path / "s_arf.fits")
    np.testing.assert_allclose(
        specresp.to_value("cm2") * 1800.25, onoff_dataset.exposure.data.ravel(), rtol=1e-15
    )


# ---------------------------------------------------------------------------------------------- round trips
@pytest.mark.parametrize("fmt", ["ogip", "gadf"])
def test_round_trip_onoff(tmp_path, onoff_dataset, assert_same, fmt):
    """ours -> ours: every array, both masks, livetime, name, region and GTI come back."""
    paths = onoff_dataset.write(tmp_path / "spec.fits", format=fmt)
    assert paths[0] == tmp_path / "spec.fits"
    back = SpectrumDatasetOnOff.read(tmp_path / "spec.fits")
    assert_same(onoff_dataset, back, rtol=1e-15)
    assert back.mask_fit.data.sum() == 6
    assert back.meta["obs_id"] in (4242, "synthetic-0")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in paths)


@pytest.mark.parametrize("fmt", ["ogip", "gadf"])
def test_round_trip_plain(tmp_path, plain_dataset, assert_same, fmt):
    """A dataset without OFF counts writes and reads back as a SpectrumDataset, with its background."""
    paths = plain_dataset.write(tmp_path / "plain.fits", format=fmt)
    if fmt == "ogip":
        assert {p.name for p in paths} == {"plain.fits", "plain_arf.fits", "plain_rmf.fits"}
    back = SpectrumDataset.read(tmp_path / "plain.fits")
    assert type(back) is SpectrumDataset
    assert_same(plain_dataset, back, rtol=1e-15)
    np.testing.assert_allclose(back.background.data.ravel(), 0.37 * np.arange(1, 13))
    with pytest.raises(DataFormatError, match="plain.fits.*no OFF counts.*SpectrumDataset.read"):
        SpectrumDatasetOnOff.read(tmp_path / "plain.fits")


def test_generic_read_returns_the_class_of_the_file(tmp_path, onoff_dataset):
    onoff_dataset.write(tmp_path / "s.fits", format="gadf")
    assert type(SpectrumDataset.read(tmp_path / "s.fits")) is SpectrumDatasetOnOff


def test_round_trip_without_optional_parts(tmp_path, make_dataset, assert_same):
    """No region, GTI, mask_fit or livetime: nothing is invented (OGIP writes EXPOSURE = 1 s then)."""
    dataset = make_dataset(region=False, gti=False, mask_fit=False)
    dataset.livetime = None
    dataset.write(tmp_path / "g.fits", format="gadf")
    assert_same(dataset, SpectrumDatasetOnOff.read(tmp_path / "g.fits"))
    dataset.write(tmp_path / "o.fits", format="ogip")
    back = SpectrumDatasetOnOff.read(tmp_path / "o.fits")
    assert back.livetime.to_value("s") == 1.0 and back.mask_fit is None and back.gti is None
    np.testing.assert_allclose(back.exposure.data, dataset.exposure.data, rtol=1e-15)


def test_name_argument_overrides_file(tmp_path, onoff_dataset):
    onoff_dataset.write(tmp_path / "s.fits")
    assert SpectrumDatasetOnOff.read(tmp_path / "s.fits", name="mine").name == "mine"


@pytest.mark.realdata
@pytest.mark.parametrize("fmt", ["ogip", "gadf"])
def test_real_round_trip(gammapy_data, tmp_path, assert_same, fmt):
    """A real H.E.S.S. spectrum survives ours -> ours in both formats."""
    original = SpectrumDatasetOnOff.read(gammapy_data / "joint-crab/spectra/hess/pha_obs23526.fits")
    original.write(tmp_path / "x.fits", format=fmt)
    assert_same(original, SpectrumDatasetOnOff.read(tmp_path / "x.fits"), rtol=1e-15)


# ---------------------------------------------------------------------------------------------- overwrite / atomic
@pytest.mark.parametrize("fmt", ["ogip", "gadf"])
def test_overwrite_protection(tmp_path, onoff_dataset, make_dataset, fmt):
    paths = onoff_dataset.write(tmp_path / "s.fits", format=fmt)
    sums = {p: file_checksum(p) for p in paths}
    other = make_dataset(seed=3)
    with pytest.raises(FileExistsError, match="s.fits"):
        other.write(tmp_path / "s.fits", format=fmt)
    assert {p: file_checksum(p) for p in paths} == sums
    other.write(tmp_path / "s.fits", format=fmt, overwrite=True)
    assert SpectrumDatasetOnOff.read(tmp_path / "s.fits").name == "synthetic-3"
    assert sorted(tmp_path.iterdir()) == sorted(paths)  # no temporary files left


def test_one_existing_sibling_blocks_the_whole_write(tmp_path, onoff_dataset):
    (tmp_path / "s_rmf.fits").write_bytes(b"keep me")
    with pytest.raises(FileExistsError, match="s_rmf.fits"):
        onoff_dataset.write(tmp_path / "s.fits")
    assert [p.name for p in tmp_path.iterdir()] == ["s_rmf.fits"]
    assert (tmp_path / "s_rmf.fits").read_bytes() == b"keep me"


def test_failed_write_leaves_nothing(tmp_path, onoff_dataset, monkeypatch):
    """If the third file fails to write, none of the four appears and no temporary file remains."""
    calls = {"n": 0}
    original = fits.HDUList.writeto

    def failing_writeto(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError("disk full")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(fits.HDUList, "writeto", failing_writeto)
    with pytest.raises(OSError, match="disk full"):
        onoff_dataset.write(tmp_path / "s.fits")
    assert list(tmp_path.iterdir()) == []


def test_unknown_format(tmp_path, onoff_dataset):
    with pytest.raises(DataFormatError, match="unknown spectrum format"):
        onoff_dataset.write(tmp_path / "s.fits", format="xspec")


@pytest.mark.parametrize("fmt", ["ogip", "gadf"])
def test_compound_galactic_region_and_off_region(tmp_path, onoff_dataset, fmt):
    """A union of a circle and a rotated rectangle (galactic) as ON region and a separate OFF region
    round-trip through the pixel-coordinate region tables (to ~1e-9 deg, the WCS projection)."""
    from astropy.coordinates import SkyCoord
    from regions import CircleSkyRegion, RectangleSkyRegion

    from bayesdl4.maps import RegionGeom, RegionNDMap

    def gal(lon, lat):
        return SkyCoord(lon, lat, unit="deg", frame="galactic")

    on = CircleSkyRegion(gal(10, 1), 0.2 * u.deg).union(
        RectangleSkyRegion(gal(10.5, 1.2), 0.3 * u.deg, 0.1 * u.deg, angle=30 * u.deg)
    )
    off = CircleSkyRegion(gal(12, 1), 0.2 * u.deg)
    axes = onoff_dataset.counts.geom.axes
    onoff_dataset.counts = RegionNDMap(RegionGeom(on, axes), onoff_dataset.counts.data)
    onoff_dataset.counts_off = RegionNDMap(RegionGeom(off, axes), onoff_dataset.counts_off.data)
    onoff_dataset.write(tmp_path / "c.fits", format=fmt)
    back = SpectrumDatasetOnOff.read(tmp_path / "c.fits")
    region = back.counts.geom.region
    assert region.region1.center.separation(gal(10, 1)).deg < 1e-9
    assert region.region1.radius.to_value("deg") == pytest.approx(0.2, rel=1e-9)
    assert region.region2.angle.to_value("deg") == pytest.approx(30, abs=1e-6)
    assert region.region2.width.to_value("deg") == pytest.approx(0.3, rel=1e-8)
    assert back.counts_off.geom.region.center.separation(gal(12, 1)).deg < 1e-9
