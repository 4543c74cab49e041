"""gammapy 2.1 reads every dataset file bayesdl4 writes, with the same arrays (issue 12, item 10).

The reproduction: a simulated ON/OFF spectrum has a GTI made in memory without ``MJDREFI``, and
gammapy's OGIP reader failed on it with ``KeyError: 'MJDREFI'``.
"""

import logging

import numpy as np
import pytest
from astropy import units as u
from astropy.table import Table

from bayesdl4.datasets import Datasets, MapDataset
from bayesdl4.datasets.simulate import fake_counts, simple_irf_dataset, simulate_spectrum_onoff
from bayesdl4.models import Models, PowerLawSpectralModel, SkyModel
from tests.io.test_map_dataset_io import assert_matches_gammapy, make_map_dataset
from tests.io.test_spectrum_roundtrip_oracle import compare_to_gammapy

gammapy = pytest.importorskip("gammapy")
pytestmark = [pytest.mark.oracle]

GTI_WITHOUT_REFERENCE = Table({"START": [0.0, 200.0] * u.s, "STOP": [100.0, 350.5] * u.s})


def _models():
    spectral = PowerLawSpectralModel(index=2.5, amplitude=3e-11 * u.Unit("cm-2 s-1 TeV-1"))
    return Models([SkyModel(spectral, name="src")])


def _simulated_onoff(name="sim"):
    dataset = simulate_spectrum_onoff(_models(), name=name, random_seed=1)
    assert "MJDREFI" not in dataset.gti.meta  # what gammapy's reader tripped on
    return dataset


def _simulated_plain(name="simplain"):
    dataset = simple_irf_dataset(name=name)
    dataset.models = _models()
    return fake_counts(dataset, random_seed=2)


def _assert_gti(ours_gti, theirs_gti):
    np.testing.assert_allclose(np.asarray(ours_gti["START"]), theirs_gti.met_start.to_value("s"))
    np.testing.assert_allclose(np.asarray(ours_gti["STOP"]), theirs_gti.met_stop.to_value("s"))
    # no reference given: gammapy's default, 2000-01-01 TT
    assert theirs_gti.time_ref.tt.mjd == pytest.approx(51544.0, abs=1e-9)


@pytest.mark.parametrize("fmt", ["ogip", "gadf"])
def test_simulated_onoff_spectrum(tmp_path, fmt):
    from gammapy.datasets import SpectrumDatasetOnOff

    ours = _simulated_onoff()
    ours.write(tmp_path / "sim.fits", format=fmt)
    theirs = SpectrumDatasetOnOff.read(tmp_path / "sim.fits")
    compare_to_gammapy(ours, theirs, livetime=fmt == "ogip")
    _assert_gti(ours.gti, theirs.gti)


def test_simulated_spectrum_without_off_counts(tmp_path):
    """gammapy reads a plain spectrum only in the GADF layout (its OGIP reader needs a BACKFILE)."""
    from gammapy.datasets import SpectrumDataset

    ours = _simulated_plain()
    ours.write(tmp_path / "plain.fits", format="gadf")
    theirs = SpectrumDataset.read(tmp_path / "plain.fits")
    assert theirs.name == ours.name
    np.testing.assert_array_equal(ours.counts.data.ravel(), theirs.counts.data.ravel())
    np.testing.assert_allclose(ours.background.data.ravel(), theirs.background.data.ravel(), rtol=1e-12)
    np.testing.assert_allclose(
        ours.exposure.quantity.to_value(theirs.exposure.unit).ravel(),
        theirs.exposure.data.ravel(),
        rtol=1e-12,
    )
    np.testing.assert_allclose(ours.edisp.pdf_matrix, theirs.edisp.get_edisp_kernel().pdf_matrix, rtol=1e-6)
    np.testing.assert_array_equal(ours.mask_safe.data.ravel(), theirs.mask_safe.data.ravel().astype(bool))
    _assert_gti(ours.gti, theirs.gti)


@pytest.mark.parametrize("kind", ["plain", "onoff", "migra", "reco_psf"])
def test_map_dataset_with_gti_without_reference(tmp_path, kind):
    from gammapy.datasets import MapDataset as GMapDataset
    from gammapy.datasets import MapDatasetOnOff as GMapDatasetOnOff

    ours = make_map_dataset(
        name=f"map-{kind}", onoff=kind == "onoff", migra=kind == "migra", reco_psf=kind == "reco_psf"
    )
    ours.gti = GTI_WITHOUT_REFERENCE.copy()
    ours.write(tmp_path / "m.fits")
    theirs = (GMapDatasetOnOff if kind == "onoff" else GMapDataset).read(tmp_path / "m.fits")
    assert_matches_gammapy(MapDataset.read(tmp_path / "m.fits"), theirs)
    _assert_gti(ours.gti, theirs.gti)


def test_datasets_and_models_files(tmp_path):
    """Datasets.write of simulated spectra and a map dataset, with their models, read by gammapy."""
    from gammapy.datasets import Datasets as GDatasets

    onoff, plain = _simulated_onoff("a"), _simulated_plain("b")
    cube = make_map_dataset(name="c")
    cube.gti = GTI_WITHOUT_REFERENCE.copy()
    datasets = Datasets([onoff, plain, cube])
    datasets.models = _models()
    out = datasets.write(tmp_path / "d.yaml", filename_models=tmp_path / "m.yaml")
    theirs = GDatasets.read(out["datasets"], filename_models=out["models"])
    assert list(theirs.names) == ["a", "b", "c"]
    for ours, their in zip(datasets, theirs, strict=True):
        assert type(their).__name__ == ours.tag
        np.testing.assert_array_equal(ours.counts.data.ravel(), their.counts.data.ravel())
        assert their.gti.time_ref.tt.mjd == pytest.approx(51544.0, abs=1e-9)
    np.testing.assert_array_equal(onoff.counts_off.data.ravel(), theirs[0].counts_off.data.ravel())
    index = theirs.models["src"].spectral_model.index
    assert index.value == 2.5 and not index.frozen


def test_plain_spectrum_in_ogip_warns_that_gammapy_cannot_read_it(tmp_path, caplog):
    """gammapy 2.1's OGIP reader needs a BACKFILE to give a usable dataset; bayesdl4 reads its own
    such files, and says so when writing them."""
    from gammapy.datasets import SpectrumDatasetOnOff

    ours = _simulated_plain()
    with caplog.at_level(logging.WARNING, logger="bayesdl4.io.ogip"):
        ours.write(tmp_path / "p.fits", format="ogip")
    assert "no BACKFILE, and gammapy 2.1 reads them as an ON/OFF dataset" in caplog.text
    theirs = SpectrumDatasetOnOff.read(tmp_path / "p.fits")
    assert theirs.counts_off is None
    with pytest.raises(AttributeError):
        theirs.stat_sum()
