"""Truncated and corrupt FITS files raise DataFormatError naming the file (issue 12, items 1 and 9).

astropy stops quietly where a cut-short gzip stream ends, so gammapy 2.1 (and bayesdl4 before)
returned a HAWC map dataset with only COUNTS from a file cut at 50-80 % of its bytes.
"""

import gzip
import os

import numpy as np
import pytest

from bayesdl4.datasets import MapDataset
from bayesdl4.datasets.spectrum import SpectrumDatasetOnOff
from bayesdl4.errors import DataFormatError
from bayesdl4.io._fits import read_fits
from bayesdl4.io.gadf_irf import read_edisp_map
from bayesdl4.maps import WcsNDMap
from tests.io.conftest import make_spectrum_dataset
from tests.io.test_map_dataset_io import make_map_dataset

HAWC = "hawc/DL4/nHit-5.fits.gz"
pytestmark = pytest.mark.filterwarnings(
    "ignore:File may have been truncated", "ignore:Error validating header"
)


def _cut(source, target, fraction):
    data = source.read_bytes()
    target.write_bytes(data[: int(len(data) * fraction)])
    return target


@pytest.mark.realdata
@pytest.mark.parametrize("fraction", [0.5, 0.65, 0.8, 0.99])
def test_truncated_hawc_gzip_raises_naming_the_file(gammapy_data, tmp_path, fraction):
    """The issue's reproduction on a copy of the real file."""
    path = _cut(gammapy_data / HAWC, tmp_path / "nHit-5.fits.gz", fraction)
    with pytest.raises(DataFormatError, match=r"nHit-5\.fits\.gz: the gzip stream ends before") as info:
        MapDataset.read(path)
    assert "truncated" in str(info.value)


@pytest.mark.realdata
def test_complete_hawc_file_keeps_every_hdu(gammapy_data):
    dataset = MapDataset.read(gammapy_data / HAWC)
    for attribute in ("counts", "exposure", "background", "psf", "edisp", "mask_safe", "gti"):
        assert getattr(dataset, attribute) is not None, attribute


@pytest.mark.parametrize("fraction", [0.05, 0.3, 0.6, 0.9, 0.999])
def test_truncated_gzip_map_dataset(tmp_path, fraction):
    """A gzip-compressed map dataset written here, cut anywhere, never reads with HDUs missing."""
    full = tmp_path / "full.fits.gz"
    make_map_dataset().write(full)
    assert full.read_bytes()[:2] == b"\x1f\x8b"
    back = MapDataset.read(full)
    assert back.psf is not None and back.edisp is not None and back.gti is not None
    cut = _cut(full, tmp_path / "cut.fits.gz", fraction)
    with pytest.raises(DataFormatError, match=r"cut\.fits\.gz"):
        MapDataset.read(cut)


def test_gzip_header_followed_by_garbage(tmp_path):
    """Before: zlib.error: Error -3 while decompressing data."""
    full = tmp_path / "full.fits.gz"
    make_map_dataset().write(full)
    bad = tmp_path / "bad.fits.gz"
    bad.write_bytes(full.read_bytes()[:10] + np.random.default_rng(0).bytes(4000))
    with pytest.raises(DataFormatError, match=r"bad\.fits\.gz: the gzip stream is corrupt"):
        MapDataset.read(bad)
    with pytest.raises(DataFormatError, match=r"bad\.fits\.gz"):
        WcsNDMap.read(bad)


@pytest.mark.parametrize("fraction", [0.4, 0.7, 0.95, 0.9999])
def test_truncated_plain_fits_names_file_and_hdu(tmp_path, fraction):
    """Before: ValueError: cannot reshape array (or HDUs silently missing)."""
    full = tmp_path / "full.fits"
    make_map_dataset().write(full)
    cut = _cut(full, tmp_path / "cut.fits", fraction)
    expected = r"cut\.fits: .*(is cut short|ends inside the header|ends inside the last 2880-byte)"
    with pytest.raises(DataFormatError, match=expected):
        MapDataset.read(cut)


def test_truncated_edisp_map_file(tmp_path):
    full = tmp_path / "full.fits"
    make_map_dataset().write(full)
    assert read_edisp_map(full) is not None
    cut = _cut(full, tmp_path / "cut.fits", 0.5)
    with pytest.raises(DataFormatError, match=r"cut\.fits"):
        read_edisp_map(cut)


@pytest.mark.parametrize("which", ["s.fits", "s_arf.fits", "s_rmf.fits"])
def test_truncated_ogip_files(tmp_path, which):
    make_spectrum_dataset().write(tmp_path / "s.fits", format="ogip")
    data = (tmp_path / which).read_bytes()
    (tmp_path / which).write_bytes(data[: len(data) - 3000])
    with pytest.raises(DataFormatError, match=rf"{which.replace('.', '[.]')}"):
        SpectrumDatasetOnOff.read(tmp_path / "s.fits")


def test_read_fits_on_a_directory_and_a_missing_file(tmp_path):
    (tmp_path / "d.fits").mkdir()
    with pytest.raises(DataFormatError, match=r"d\.fits is a directory"):
        read_fits(tmp_path / "d.fits")
    with pytest.raises(FileNotFoundError, match=r"nope\.fits: file not found"):
        read_fits(tmp_path / "nope.fits")


def test_gzip_and_plain_read_the_same(tmp_path):
    make_map_dataset().write(tmp_path / "a.fits")
    (tmp_path / "a.fits.gz").write_bytes(gzip.compress((tmp_path / "a.fits").read_bytes()))
    plain, packed = MapDataset.read(tmp_path / "a.fits"), MapDataset.read(tmp_path / "a.fits.gz")
    np.testing.assert_array_equal(plain.counts.data, packed.counts.data)
    np.testing.assert_array_equal(plain.edisp.edisp_map.data, packed.edisp.edisp_map.data)
    assert os.path.getsize(tmp_path / "a.fits.gz") < os.path.getsize(tmp_path / "a.fits")
