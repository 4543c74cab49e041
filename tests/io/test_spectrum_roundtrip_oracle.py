"""Spectrum I/O against gammapy 2.1: same values from the same files, and files exchanged both ways."""

import numpy as np
import pytest
from astropy import units as u

from bayesdl4.datasets.spectrum import SpectrumDatasetOnOff

gammapy = pytest.importorskip("gammapy")
pytestmark = [pytest.mark.oracle]

RTOL = 1e-12


def _gp():
    from gammapy.datasets import SpectrumDatasetOnOff as GPSpectrumDatasetOnOff

    return GPSpectrumDatasetOnOff


def _flat(m):
    return np.asarray(m.data).reshape(-1)


def compare_to_gammapy(ours, theirs, mask_fit=False, livetime=True, name=True):
    """Our dataset holds the values gammapy holds (counts and masks exactly, floats to 1e-12)."""
    if name:
        assert ours.name == theirs.name
    np.testing.assert_array_equal(_flat(ours.counts), _flat(theirs.counts))
    np.testing.assert_array_equal(_flat(ours.counts_off), _flat(theirs.counts_off))
    np.testing.assert_array_equal(_flat(ours.mask_safe), _flat(theirs.mask_safe).astype(bool))
    acc = _flat(theirs.acceptance).astype(np.float64)
    acc_off = _flat(theirs.acceptance_off).astype(np.float64)
    np.testing.assert_allclose(_flat(ours.acceptance), acc, rtol=RTOL, atol=0)
    np.testing.assert_allclose(_flat(ours.acceptance_off), acc_off, rtol=RTOL, atol=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        alpha = np.nan_to_num(acc / acc_off, nan=0.0, posinf=0.0)
    np.testing.assert_allclose(_flat(ours.alpha), alpha, rtol=RTOL, atol=0)
    # exposure in gammapy's unit, on gammapy's (ARF) true-energy edges
    np.testing.assert_allclose(
        ours.exposure.quantity.to_value(theirs.exposure.unit).ravel(),
        _flat(theirs.exposure),
        rtol=RTOL,
        atol=0,
    )
    g_true = theirs.exposure.geom.axes["energy_true"].edges
    np.testing.assert_allclose(
        ours.energy_axis_true.edges.to_value(g_true.unit), g_true.value, rtol=RTOL
    )
    g_reco = theirs.counts.geom.axes["energy"].edges
    np.testing.assert_allclose(
        ours.energy_axis.edges.to_value(g_reco.unit), g_reco.value, rtol=RTOL
    )
    kernel = theirs.edisp.get_edisp_kernel().pdf_matrix
    # gammapy holds kernels in float32, so float64 matrices agree after rounding to float32
    if kernel.dtype == np.float32:
        np.testing.assert_array_equal(ours.edisp.pdf_matrix.astype(np.float32), kernel)
    else:
        np.testing.assert_allclose(ours.edisp.pdf_matrix, kernel, rtol=RTOL, atol=0)
    if livetime:
        assert ours.livetime.to_value("s") == pytest.approx(
            theirs.exposure.meta["livetime"].to_value("s"), rel=RTOL
        )
    if mask_fit:
        np.testing.assert_array_equal(_flat(ours.mask_fit), _flat(theirs.mask_fit).astype(bool))
    region = theirs.counts.geom.region
    assert (ours.counts.geom.region is None) == (region is None)
    if region is not None:
        assert ours.counts.geom.region.center.separation(region.center).to_value("deg") < 1e-9
    if theirs.gti is not None:
        np.testing.assert_allclose(
            np.asarray(ours.gti["START"]), theirs.gti.met_start.to_value("s"), rtol=RTOL
        )


@pytest.mark.realdata
def test_read_matches_gammapy(gammapy_data, pha_file):
    """Every real spectrum: our reader gives gammapy 2.1's counts, alpha, exposure, edisp, masks, livetime, name."""
    path = gammapy_data / pha_file
    ours, theirs = SpectrumDatasetOnOff.read(path), _gp().read(path)
    compare_to_gammapy(ours, theirs)
    # the files hold float32 matrices: our float64 copy equals gammapy's exactly
    np.testing.assert_array_equal(
        ours.edisp.pdf_matrix, theirs.edisp.get_edisp_kernel().pdf_matrix.astype(float)
    )


def _stat(dataset_gp):
    from gammapy.modeling.models import PowerLawSpectralModel, SkyModel

    model = SkyModel(
        spectral_model=PowerLawSpectralModel(
            index=2.4, amplitude="3e-11 cm-2 s-1 TeV-1", reference="1 TeV"
        ),
        name="crab",
    )
    dataset_gp.models = [model]
    return dataset_gp.stat_sum()


@pytest.mark.realdata
@pytest.mark.parametrize("fmt", ["ogip", "gadf"])
@pytest.mark.parametrize(
    "source",
    ["joint-crab/spectra/hess/pha_obs23523.fits", "PKS2155-steady/pks2155-304_steady.fits.gz"],
)
def test_gammapy_reads_ours(gammapy_data, tmp_path, fmt, source):
    """ours -> gammapy: gammapy reads our files to the same arrays and the same WStat as the original."""
    ours = SpectrumDatasetOnOff.read(gammapy_data / source)
    ours.write(tmp_path / "x.fits", format=fmt)
    theirs = _gp().read(tmp_path / "x.fits")
    compare_to_gammapy(ours, theirs, livetime=fmt == "ogip")
    original = _gp().read(gammapy_data / source)
    # PKS 2155's BACKSCAL is float32, which gammapy divides in float32; we keep float64 (alpha differs by ~1e-8)
    original.acceptance.data = original.acceptance.data.astype(np.float64)
    original.acceptance_off.data = original.acceptance_off.data.astype(np.float64)
    assert _stat(theirs) == pytest.approx(_stat(original), rel=1e-12)


@pytest.mark.parametrize("fmt", ["ogip", "gadf"])
def test_gammapy_reads_ours_synthetic(tmp_path, onoff_dataset, fmt):
    """A synthetic dataset with region, GTI, per-bin acceptance_off and a fit mask, read by gammapy."""
    onoff_dataset.write(tmp_path / "syn.fits", format=fmt)
    theirs = _gp().read(tmp_path / "syn.fits")
    compare_to_gammapy(onoff_dataset, theirs, mask_fit=fmt == "gadf", livetime=fmt == "ogip")
    assert theirs.counts.geom.region.radius.to_value("deg") == pytest.approx(0.11, rel=1e-9)
    assert len(theirs.gti.table) == 2


@pytest.mark.realdata
@pytest.mark.parametrize("fmt", ["ogip", "gadf"])
def test_ours_reads_gammapy_written(gammapy_data, tmp_path, fmt):
    """gammapy -> ours: files gammapy 2.1 writes read to gammapy's in-memory values (GADF keeps mask_fit)."""
    theirs = _gp().read(gammapy_data / "PKS2155-steady/pks2155-304_steady.fits.gz")
    mask_fit = theirs.counts.geom.energy_mask(energy_min=0.5 * u.TeV, energy_max=5 * u.TeV)
    theirs.mask_fit = mask_fit
    theirs.write(tmp_path / "g.fits", format=fmt)
    ours = SpectrumDatasetOnOff.read(tmp_path / "g.fits")
    compare_to_gammapy(ours, theirs, mask_fit=fmt == "gadf", livetime=fmt == "ogip")
    if fmt == "ogip":
        assert ours.mask_fit is None  # gammapy's OGIP writer drops the fit mask


@pytest.mark.realdata
def test_ours_reads_gammapy_written_hess_gadf(gammapy_data, tmp_path):
    theirs = _gp().read(gammapy_data / "joint-crab/spectra/hess/pha_obs23559.fits")
    theirs.write(tmp_path / "h.fits", format="gadf")
    compare_to_gammapy(SpectrumDatasetOnOff.read(tmp_path / "h.fits"), theirs, livetime=False)


def test_mask_fit_survives_ours_to_ours_but_gammapy_ogip_drops_it(tmp_path, onoff_dataset):
    onoff_dataset.write(tmp_path / "s.fits", format="ogip")
    np.testing.assert_array_equal(
        SpectrumDatasetOnOff.read(tmp_path / "s.fits").mask_fit.data, onoff_dataset.mask_fit.data
    )
    assert _gp().read(tmp_path / "s.fits").mask_fit is None
