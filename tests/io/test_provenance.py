"""Checksums taken when files are read, datasets changed in memory, and `verify` (issue 12, item 8)."""

import json
import logging
import shutil
import types

import numpy as np
import pytest
from astropy.io import fits

from bayesdl4.datasets import MapDataset
from bayesdl4.datasets.spectrum import SpectrumDatasetOnOff
from bayesdl4.errors import DataFormatError
from bayesdl4.io.provenance import (
    CHANGED_IN_MEMORY,
    changed_since_read,
    data_checksums,
    verify,
)
from bayesdl4.maps import RegionNDMap
from bayesdl4.utils.fileio import file_checksum
from tests.io.conftest import make_spectrum_dataset
from tests.io.test_map_dataset_io import make_map_dataset

OGIP = ("s.fits", "s_bkg.fits", "s_arf.fits", "s_rmf.fits")


@pytest.fixture
def ogip(tmp_path):
    make_spectrum_dataset().write(tmp_path / "s.fits", format="ogip")
    return tmp_path


def _attrs(datasets):
    """What a result of fit / sample records (its root attribute)."""
    return {"bayesdl4_data_checksums": json.dumps(data_checksums(datasets))}


def test_ogip_read_records_the_checksum_of_each_file(ogip):
    dataset = SpectrumDatasetOnOff.read(ogip / "s.fits")
    expected = {str(ogip / name): file_checksum(ogip / name) for name in OGIP}
    assert dataset.meta["checksums"] == expected
    assert data_checksums([dataset]) == expected
    assert changed_since_read(dataset) is False


@pytest.mark.parametrize("fmt", ["gadf"])
def test_gadf_spectrum_read_records_its_checksum(tmp_path, fmt):
    make_spectrum_dataset().write(tmp_path / "g.fits", format=fmt)
    dataset = SpectrumDatasetOnOff.read(tmp_path / "g.fits")
    assert dataset.meta["checksums"] == {str(tmp_path / "g.fits"): file_checksum(tmp_path / "g.fits")}


def test_map_dataset_read_records_its_checksum(tmp_path):
    """Before: map datasets recorded nothing ({} in results)."""
    make_map_dataset().write(tmp_path / "m.fits")
    dataset = MapDataset.read(tmp_path / "m.fits")
    assert data_checksums([dataset]) == {str(tmp_path / "m.fits"): file_checksum(tmp_path / "m.fits")}


def test_checksum_is_the_one_taken_at_read_time(ogip):
    """A file replaced after reading keeps its read-time checksum in the record, and verify names it."""
    dataset = SpectrumDatasetOnOff.read(ogip / "s.fits")
    before = file_checksum(ogip / "s_arf.fits")
    other = make_spectrum_dataset(seed=5)
    other.exposure.data[...] *= 2
    other.write(ogip / "x.fits", format="ogip")
    shutil.copy(ogip / "x_arf.fits", ogip / "s_arf.fits")
    assert file_checksum(ogip / "s_arf.fits") != before
    recorded = data_checksums([dataset])
    assert recorded[str(ogip / "s_arf.fits")] == before
    problems = verify(_attrs([dataset]))
    assert len(problems) == 1
    assert problems[0].startswith(f"{ogip / 's_arf.fits'}: the file changed after it was read")


def test_record_module_reads_the_checksums_taken_at_read_time(ogip):
    from bayesdl4.inference.record import data_checksums as recorded_for_results

    dataset = SpectrumDatasetOnOff.read(ogip / "s.fits")
    before = dataset.meta["checksums"]
    (ogip / "s_bkg.fits").write_bytes((ogip / "s_bkg.fits").read_bytes() + b"\0" * 2880)
    assert recorded_for_results([dataset]) == before


def test_verify_passes_on_unchanged_files_and_names_missing_ones(ogip, caplog):
    dataset = SpectrumDatasetOnOff.read(ogip / "s.fits")
    attrs = _attrs([dataset])
    assert verify(attrs) == []
    (ogip / "s_rmf.fits").unlink()
    with caplog.at_level(logging.WARNING):
        problems = verify(attrs)
    assert problems == [f"{ogip / 's_rmf.fits'}: the data file this result was computed from is missing"]
    assert "s_rmf.fits" in caplog.text


def test_dataset_changed_in_memory_is_marked(ogip):
    dataset = SpectrumDatasetOnOff.read(ogip / "s.fits")
    dataset.counts.data.ravel()[4] += 1
    assert changed_since_read(dataset) is True
    recorded = data_checksums([dataset])
    key = CHANGED_IN_MEMORY + dataset.name
    assert key in recorded and str(ogip / "s.fits") in recorded[key]
    problems = verify(_attrs([dataset]))
    assert problems == [
        f"dataset {dataset.name!r} was changed in memory after it was read from {recorded[key]}: "
        "the files alone do not reproduce this result"
    ]


def test_fit_mask_is_not_a_change_of_the_data(ogip):
    dataset = SpectrumDatasetOnOff.read(ogip / "s.fits")
    dataset.mask_fit = RegionNDMap(dataset.counts.geom, np.ones(dataset.counts.data.shape, bool))
    assert changed_since_read(dataset) is False
    dataset.edisp.pdf_matrix[3, 3] *= 0.5
    assert changed_since_read(dataset) is True


def test_map_dataset_changed_in_memory(tmp_path):
    make_map_dataset().write(tmp_path / "m.fits")
    dataset = MapDataset.read(tmp_path / "m.fits")
    assert changed_since_read(dataset) is False
    dataset.exposure.data[0, 0, 0] *= 1.5
    assert changed_since_read(dataset) is True


def test_dataset_not_read_from_files_records_nothing():
    dataset = make_spectrum_dataset()
    assert changed_since_read(dataset) is None
    assert data_checksums([dataset]) == {}


def test_verify_needs_a_record():
    with pytest.raises(ValueError, match="records no data checksums"):
        verify(types.SimpleNamespace(attrs={"bayesdl4_versions": "{}"}))


def test_read_with_checksum_true_checks_fits_checksums(ogip):
    """``read(..., checksum=True)`` verifies CHECKSUM / DATASUM (it was ignored before)."""
    with fits.open(ogip / "s_arf.fits", mode="update") as hdulist:
        for hdu in hdulist:
            hdu.add_checksum()
    assert SpectrumDatasetOnOff.read(ogip / "s.fits", checksum=True).name == "synthetic-0"
    with fits.open(ogip / "s_arf.fits") as hdulist:
        offset = hdulist["SPECRESP"].fileinfo()["datLoc"] + 40
    raw = bytearray((ogip / "s_arf.fits").read_bytes())
    raw[offset] ^= 0x01  # one bit of one effective-area value flipped on disk
    (ogip / "s_arf.fits").write_bytes(bytes(raw))
    assert SpectrumDatasetOnOff.read(ogip / "s.fits").exposure is not None  # not checked by default
    with pytest.raises(DataFormatError, match=r"s_arf\.fits: HDU 'SPECRESP' fails its DATASUM check"):
        SpectrumDatasetOnOff.read(ogip / "s.fits", checksum=True)
