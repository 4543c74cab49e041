"""Responses and OFF normalisations that would silently scale or drop npred are refused on reading
(issue 12, item 5); non-numeric DETCHANS and non-ASCII names get the project's errors (item 9)."""

import numpy as np
import pytest
from astropy.io import fits

from bayesdl4.datasets import MapDataset
from bayesdl4.datasets.spectrum import SpectrumDatasetOnOff
from bayesdl4.errors import DataFormatError
from bayesdl4.io._fits import RESPONSE_SUM_TOLERANCE
from bayesdl4.io.gadf_irf import read_edisp_map
from bayesdl4.maps import RegionNDMap
from tests.io.conftest import make_spectrum_dataset
from tests.io.test_map_dataset_io import make_map_dataset

HAWC = "hawc/DL4/nHit-5.fits.gz"


def _edit(path, func):
    with fits.open(path, mode="update") as hdulist:
        func(hdulist)


# ---------------------------------------------------------------------------------------------- RMF
def test_rmf_rows_summing_to_three(tmp_path):
    """The issue's reproduction: an RMF x 3 tripled npred silently."""
    dataset = make_spectrum_dataset()
    dataset.edisp.pdf_matrix *= 3
    dataset.write(tmp_path / "s.fits", format="ogip")
    sums = dataset.edisp.pdf_matrix.sum(axis=1)
    first = int(np.flatnonzero(sums > 1 + RESPONSE_SUM_TOLERANCE)[0])
    with pytest.raises(DataFormatError) as info:
        SpectrumDatasetOnOff.read(tmp_path / "s.fits")
    message = str(info.value)
    assert "s_rmf.fits" in message and "HDU 'MATRIX'" in message
    assert f"row {first} " in message and f"sums to {sums[first]:.6g}" in message
    assert f"(largest {sums.max():.6g})" in message and sums.max() == pytest.approx(3)


def test_rmf_row_just_above_the_tolerance_raises_and_just_below_reads(tmp_path):
    dataset = make_spectrum_dataset()
    row = dataset.edisp.pdf_matrix[8]
    row *= (1 + 0.5 * RESPONSE_SUM_TOLERANCE) / row.sum()
    dataset.write(tmp_path / "ok.fits", format="ogip")
    back = SpectrumDatasetOnOff.read(tmp_path / "ok.fits")
    assert back.edisp.pdf_matrix[8].sum() == pytest.approx(1 + 0.5 * RESPONSE_SUM_TOLERANCE)
    row *= (1 + 2 * RESPONSE_SUM_TOLERANCE) / row.sum()
    dataset.write(tmp_path / "bad.fits", format="ogip")
    with pytest.raises(DataFormatError, match=r"bad_rmf\.fits: HDU 'MATRIX': row 8 "):
        SpectrumDatasetOnOff.read(tmp_path / "bad.fits")


def test_gadf_spectrum_edisp_times_three(tmp_path):
    dataset = make_spectrum_dataset()
    dataset.edisp.pdf_matrix *= 3
    dataset.write(tmp_path / "g.fits", format="gadf")
    with pytest.raises(DataFormatError, match=r"g\.fits: HDU 'EDISP': true-energy bin \d+ .*largest 3\)"):
        SpectrumDatasetOnOff.read(tmp_path / "g.fits")


# ---------------------------------------------------------------------------------------------- EDISP maps
@pytest.mark.realdata
def test_hawc_edisp_map_times_three(gammapy_data, tmp_path):
    """A copy of a real HAWC file with its EDISP kernels x 3 (the originals sum to <= 1.0021)."""
    path = tmp_path / "nHit-5.fits"
    with fits.open(gammapy_data / HAWC) as hdulist:
        hdulist["EDISP"].data = hdulist["EDISP"].data * 3
        hdulist.writeto(path)
    with pytest.raises(DataFormatError) as info:
        MapDataset.read(path)
    message = str(info.value)
    assert "nHit-5.fits" in message and "HDU 'EDISP'" in message
    assert "true-energy bin" in message and "at pixel (x=" in message


@pytest.mark.parametrize("migra", [False, True])
def test_edisp_map_times_three(tmp_path, migra):
    dataset = make_map_dataset(migra=migra)
    dataset.edisp.edisp_map.data *= 3
    dataset.write(tmp_path / "m.fits")
    kind = "migra integral" if migra else "row"
    with pytest.raises(DataFormatError, match=rf"m\.fits: HDU 'EDISP': the {kind} of true-energy bin"):
        MapDataset.read(tmp_path / "m.fits")
    with pytest.raises(DataFormatError, match=r"HDU 'EDISP'"):
        read_edisp_map(tmp_path / "m.fits")


# ---------------------------------------------------------------------------------------------- OFF and livetime
@pytest.fixture
def ogip_dir(tmp_path):
    make_spectrum_dataset().write(tmp_path / "s.fits", format="ogip")
    return tmp_path


def _set_backscal(path, values):
    _edit(path, lambda h: h["SPECTRUM"].data["BACKSCAL"].__setitem__(slice(None), values))


def test_off_backscal_zero_raises(ogip_dir):
    """Before: alpha = 0 and the dataset dropped out of the statistic without a word."""
    _set_backscal(ogip_dir / "s_bkg.fits", 0.0)
    with pytest.raises(DataFormatError, match=r"s_bkg\.fits: BACKSCAL is 0 in channels \[2, 3"):
        SpectrumDatasetOnOff.read(ogip_dir / "s.fits")


def test_backscal_zero_in_bad_channels_only_reads(ogip_dir):
    """Channels 0, 1 and 11 are QUALITY = 1 (not safe): a zero BACKSCAL there changes nothing."""
    with fits.open(ogip_dir / "s_bkg.fits") as hdulist:
        values = np.array(hdulist["SPECTRUM"].data["BACKSCAL"], float)
    values[[0, 1, 11]] = 0.0
    _set_backscal(ogip_dir / "s_bkg.fits", values)
    dataset = SpectrumDatasetOnOff.read(ogip_dir / "s.fits")
    assert not dataset.mask_safe.data.ravel()[[0, 1, 11]].any()
    np.testing.assert_array_equal(dataset.acceptance_off.data.ravel(), values)


def test_on_backscal_zero_raises(ogip_dir):
    _set_backscal(ogip_dir / "s.fits", 0.0)
    with pytest.raises(DataFormatError, match=r"s\.fits: BACKSCAL is 0 in channels"):
        SpectrumDatasetOnOff.read(ogip_dir / "s.fits")


def test_exposure_zero_raises(ogip_dir):
    _edit(ogip_dir / "s.fits", lambda h: h["SPECTRUM"].header.set("EXPOSURE", 0.0))
    with pytest.raises(DataFormatError, match=r"s\.fits: EXPOSURE keyword is 0\.0 s; it must be finite and > 0"):
        SpectrumDatasetOnOff.read(ogip_dir / "s.fits")


def test_gadf_acceptance_off_zero_raises(tmp_path):
    dataset = make_spectrum_dataset()
    dataset.acceptance_off = RegionNDMap(dataset.counts.geom, np.zeros(dataset.counts.data.shape))
    dataset.write(tmp_path / "g.fits", format="gadf")
    with pytest.raises(DataFormatError, match=r"g\.fits: HDU 'ACCEPTANCE_OFF' is 0 in bins"):
        SpectrumDatasetOnOff.read(tmp_path / "g.fits")


# ---------------------------------------------------------------------------------------------- DETCHANS
@pytest.mark.parametrize(("file", "hdu"), [("s.fits", "SPECTRUM"), ("s_rmf.fits", "MATRIX")])
def test_non_numeric_detchans(ogip_dir, file, hdu):
    """Before: ValueError: invalid literal for int() with base 10: 'abc'."""
    _edit(ogip_dir / file, lambda h: h[hdu].header.set("DETCHANS", "abc"))
    with pytest.raises(DataFormatError, match=rf"{file}: HDU '{hdu}' keyword DETCHANS = 'abc' is not a whole number"):
        SpectrumDatasetOnOff.read(ogip_dir / "s.fits")


# ---------------------------------------------------------------------------------------------- names
@pytest.mark.parametrize("fmt", ["ogip", "gadf"])
def test_non_ascii_name_in_spectrum_write(tmp_path, fmt):
    """Before: astropy's ValueError on the header; now nothing is written and the name is given."""
    dataset = make_spectrum_dataset()
    dataset.name = "Kröte"
    with pytest.raises(DataFormatError, match="dataset name 'Kröte' has characters 'ö'"):
        dataset.write(tmp_path / "s.fits", format=fmt)
    assert list(tmp_path.iterdir()) == []


def test_non_ascii_name_in_map_write(tmp_path):
    with pytest.raises(DataFormatError, match="dataset name 'Kröte'"):
        make_map_dataset(name="Kröte").write(tmp_path / "m.fits")
    assert list(tmp_path.iterdir()) == []
