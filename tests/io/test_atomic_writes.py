"""Multi-file writes are all or nothing: a failed rename puts the old set back (issue 12, item 7)."""

import os

import numpy as np
import pytest

from bayesdl4.datasets import Datasets
from bayesdl4.datasets.spectrum import SpectrumDatasetOnOff
from bayesdl4.errors import DataWriteError
from bayesdl4.utils import fileio
from bayesdl4.utils.fileio import file_checksum
from tests.io.conftest import assert_same_dataset, make_spectrum_dataset
from tests.io.test_map_dataset_io import make_map_dataset


class FailAt:
    """Replacement for the writer's rename that fails on its k-th call (0-based)."""

    def __init__(self, k):
        self.k, self.calls = k, 0

    def __call__(self, src, dst):
        self.calls += 1
        if self.calls - 1 == self.k:
            raise OSError(f"injected I/O error at rename {self.k}")
        os.replace(src, dst)


def _snapshot(folder):
    return {p.name: file_checksum(p) for p in folder.iterdir() if p.is_file()}


@pytest.mark.parametrize("k", range(4))
def test_ogip_write_failing_at_each_rename_keeps_the_old_set(tmp_path, monkeypatch, k):
    """PHA + BKG + ARF + RMF: whichever rename fails, the old four files read back unchanged."""
    old = make_spectrum_dataset(seed=1)
    paths = old.write(tmp_path / "s.fits", format="ogip")
    assert len(paths) == 4
    before = _snapshot(tmp_path)
    rename = FailAt(k)
    monkeypatch.setattr(fileio, "_rename", rename)
    with pytest.raises(DataWriteError, match="injected I/O error.*restored"):
        make_spectrum_dataset(seed=2).write(tmp_path / "s.fits", format="ogip", overwrite=True)
    assert rename.calls == k + 1
    assert _snapshot(tmp_path) == before  # same files, same bytes, no temporary or backup left
    assert_same_dataset(old, SpectrumDatasetOnOff.read(tmp_path / "s.fits"))


def test_ogip_write_onto_a_directory_named_like_a_companion(tmp_path):
    """A directory ``s_arf.fits`` stops the write before the PHA is replaced, even with overwrite."""
    old = make_spectrum_dataset(seed=1)
    old.write(tmp_path / "s.fits", format="ogip")
    os.unlink(tmp_path / "s_arf.fits")
    (tmp_path / "s_arf.fits").mkdir()
    before = _snapshot(tmp_path)
    with pytest.raises(DataWriteError, match=r"s_arf\.fits is a directory"):
        make_spectrum_dataset(seed=2).write(tmp_path / "s.fits", format="ogip", overwrite=True)
    assert _snapshot(tmp_path) == before


def _datasets(seed):
    return Datasets([make_spectrum_dataset(seed=seed), make_map_dataset(name=f"map{seed}")])


@pytest.mark.parametrize("k", range(6))
def test_datasets_write_failing_at_each_rename_keeps_the_old_set(tmp_path, monkeypatch, k):
    """Datasets.write (OGIP spectrum: 4 files, a map dataset, the YAML): every rename in turn."""
    old = _datasets(1)
    out = old.write(tmp_path / "d.yaml", spectrum_format="ogip")
    assert len(out["data"]) + 1 == 6
    before = _snapshot(tmp_path)
    monkeypatch.setattr(fileio, "_rename", FailAt(k))
    new = _datasets(1)  # same names, so the same six targets
    new[0].counts.data[:] += 1
    new[1].counts.data[:] += 1
    with pytest.raises(DataWriteError, match="injected I/O error"):
        new.write(tmp_path / "d.yaml", spectrum_format="ogip", overwrite=True)
    assert _snapshot(tmp_path) == before
    back = Datasets.read(tmp_path / "d.yaml")
    np.testing.assert_array_equal(back[0].counts.data, old[0].counts.data)
    np.testing.assert_array_equal(back[1].counts.data, old[1].counts.data)
