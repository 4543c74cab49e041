"""FluxPoints: SED conversions, files of $GAMMAPY_DATA, own round trips, light curves, bad input."""

import numpy as np
import pytest
from astropy import units as u
from astropy.io import fits
from astropy.table import Table
from astropy.time import Time
from numpy.testing import assert_allclose, assert_array_equal

from bayesdl4.datasets.flux_points import FluxPoints
from bayesdl4.errors import DataFormatError
from bayesdl4.models import PowerLawSpectralModel
from tests.conftest import gammapy_data

HESS = "estimators/crab_hess_fp/crab_hess_fp.fits"
HAWC = "hawc/crab_flux/HAWC19_flux_points.fits"
EDGES = np.array([1.0, 2.0, 5.0, 10.0]) * u.TeV


def e2dnde_points():
    values = {
        "e2dnde": [4e-12, 3e-12, 2e-12] * u.Unit("erg cm-2 s-1"),
        "e2dnde_errn": [4e-13, 3e-13, 5e-13] * u.Unit("erg cm-2 s-1"),
        "e2dnde_errp": [5e-13, 4e-13, 6e-13] * u.Unit("erg cm-2 s-1"),
        "e2dnde_ul": [np.nan, np.nan, 3.5e-12] * u.Unit("erg cm-2 s-1"),
        "ts": np.array([40.0, 25.0, 1.0]),
    }
    return FluxPoints.from_sed("e2dnde", values, energy_min=EDGES[:-1], energy_max=EDGES[1:])


# ------------------------------------------------------------------------------- conversions
def test_conversions_with_the_default_power_law_of_index_two():
    fp = e2dnde_points()
    e_ref = np.sqrt(EDGES[:-1] * EDGES[1:])
    assert_allclose(fp.energy_ref.to_value("TeV"), e_ref.value, rtol=1e-15)
    e2dnde = fp.e2dnde.to_value("erg cm-2 s-1")
    assert_allclose(e2dnde, [4e-12, 3e-12, 2e-12], rtol=1e-14)
    dnde = fp.dnde.to_value("erg-1 cm-2 s-1")
    assert_allclose(dnde, e2dnde / e_ref.to_value("erg") ** 2, rtol=1e-14)
    # for E^-2: flux / dnde(E_ref) = E_ref^2 (1/E_min - 1/E_max), eflux / dnde(E_ref) = E_ref^2 ln(E_max/E_min)
    lo, hi = EDGES[:-1].value, EDGES[1:].value
    ratio = fp.flux.to_value("cm-2 s-1") / fp.dnde.to_value("cm-2 s-1 TeV-1")
    assert_allclose(ratio, e_ref.value**2 * (1 / lo - 1 / hi), rtol=1e-12)
    ratio = fp.eflux.to_value("TeV cm-2 s-1") / fp.dnde.to_value("cm-2 s-1 TeV-1")
    assert_allclose(ratio, e_ref.value**2 * np.log(hi / lo), rtol=1e-12)
    assert_allclose(fp.flux_errp / fp.flux, [5 / 40, 4 / 30, 6 / 20], rtol=1e-12)
    # norms relative to 1e-12 cm-2 s-1 TeV-1 (E / TeV)^-2
    assert_allclose(fp.norm, e2dnde / u.Quantity(1e-12, "TeV cm-2 s-1").to_value("erg cm-2 s-1"),
                    rtol=1e-12)
    # is_ul: no is_ul column, TS and ULs -> sqrt(TS) < 2; sqrt_ts signed by the norm
    assert_array_equal(fp.is_ul, [False, False, True])
    assert_allclose(fp.sqrt_ts, [np.sqrt(40), 5.0, 1.0], rtol=1e-15)


def test_norm_points_need_a_reference_model_and_use_it():
    values = {"norm": np.array([1.0, 0.5, 2.0]), "norm_err": np.array([0.1, 0.1, 0.3])}
    with pytest.raises(DataFormatError, match="reference model"):
        FluxPoints.from_sed("norm", values, energy_min=EDGES[:-1], energy_max=EDGES[1:])
    ref = PowerLawSpectralModel(index=2.5, amplitude="2e-11 cm-2 s-1 TeV-1", reference="1 TeV")
    fp = FluxPoints.from_sed("norm", values, energy_min=EDGES[:-1], energy_max=EDGES[1:],
                             reference_model=ref)
    e_ref = fp.energy_ref.to_value("TeV")
    assert_allclose(fp.dnde.value, values["norm"] * 2e-11 * e_ref**-2.5, rtol=1e-12)
    lo, hi = EDGES[:-1].value, EDGES[1:].value
    assert_allclose(fp.flux_err.value, 0.1 * 2e-11 / 1.5 * (lo**-1.5 - hi**-1.5) * [1, 1, 3],
                    rtol=1e-12)


def test_differential_points_without_edges_cannot_give_integral_fluxes():
    fp = FluxPoints.from_sed("dnde", {"dnde": [1e-12, 1e-13] * u.Unit("cm-2 s-1 TeV-1")},
                             energy_ref=[1.0, 3.0] * u.TeV)
    assert fp.energy_min is None
    with pytest.raises(DataFormatError, match="e_min, e_max"):
        fp.flux  # noqa: B018


# ------------------------------------------------------------------------------- real files
def test_read_hess_crab_likelihood_points():
    path = gammapy_data() / HESS
    fp = FluxPoints.read(path)
    table = Table.read(path, hdu="FLUXPOINTS")
    assert fp.sed_type_init == "likelihood" and fp.n_sigma_ul == 3.0
    assert_allclose(fp.energy_ref.to_value("TeV"), table["e_ref"], rtol=1e-12)
    # dnde = norm * ref_dnde of the file (the template reference at its nodes)
    dnde = np.asarray(table["norm"], float) * table["ref_dnde"]
    assert_allclose(fp.dnde.to_value("cm-2 s-1 TeV-1")[1:], dnde[1:], rtol=1e-12)
    assert_allclose(fp.flux_ref.to_value("cm-2 s-1"), table["ref_flux"], rtol=1e-9)
    # success False in the first row: norm and norm_err read NaN (gammapy's filter)
    assert not fp.success[0] and np.isnan(fp.norm[0]) and np.isnan(fp.norm_err[0])
    assert fp.stat_scan.shape == (5, 11) and fp.norm_scan.shape == (5, 11)
    assert_allclose(fp.norm_scan[2], np.geomspace(0.2, 5, 11), rtol=1e-12)
    assert fp.npred.shape == (5, 1) and fp.npred_excess.dtype == np.float32
    assert_array_equal(fp.is_ul, table["is_ul"])
    assert fp.gti is not None and len(fp.gti) == 1


def test_read_hawc_dnde_points():
    fp = FluxPoints.read(gammapy_data() / HAWC)
    table = Table.read(gammapy_data() / HAWC)
    assert fp.sed_type_init == "dnde"
    assert_allclose(fp.dnde.to_value("cm-2 s-1 TeV-1"), table["dnde"], rtol=1e-14)
    assert_allclose(fp.dnde_ul.value[-1], table["dnde_ul"][-1], rtol=1e-14)
    assert_array_equal(fp.is_ul, table["is_ul"])
    assert fp.is_ul.sum() == 1


@pytest.mark.parametrize("suffix", [".fits", ".ecsv"])
@pytest.mark.parametrize("filename", [HESS, HAWC])
def test_own_round_trip_keeps_every_column(tmp_path, filename, suffix):
    fp = FluxPoints.read(gammapy_data() / filename)
    out = fp.write(tmp_path / f"points{suffix}")
    back = FluxPoints.read(out)
    t1, t2 = fp.to_table(), back.to_table()
    assert t1.colnames == t2.colnames
    for name in t1.colnames:
        a, b = np.asarray(t1[name]), np.asarray(t2[name])
        if a.dtype.kind == "f":
            assert_allclose(b, a, rtol=1e-13, equal_nan=True, err_msg=name)
        else:
            assert_array_equal(b, a, err_msg=name)
    assert t1.meta == t2.meta
    with pytest.raises(FileExistsError):
        fp.write(out)


# ------------------------------------------------------------------------------- light curves
def lightcurve_table():
    table = Table()
    table["time_min"] = [55555.0, 55556.0, 55557.5]
    table["time_max"] = [55556.0, 55557.0, 55558.0]
    table["e_ref"] = np.tile(np.sqrt([3.0, 30.0]), (3, 1)) * u.TeV
    table["e_min"] = np.tile([1.0, 3.0], (3, 1)) * u.TeV
    table["e_max"] = np.tile([3.0, 10.0], (3, 1)) * u.TeV
    table["flux"] = [[1e-12, 2e-13], [2e-12, 3e-13], [1.5e-12, 1e-13]] * u.Unit("cm-2 s-1")
    table["flux_err"] = [[1e-13, 2e-14], [2e-13, 3e-14], [1.5e-13, 1e-14]] * u.Unit("cm-2 s-1")
    table.meta.update(MJDREFI=0, MJDREFF=0.0, TIMESYS="utc", TIMEUNIT="d")
    return table


def test_read_lightcurve_time_axis(tmp_path):
    path = tmp_path / "lc.fits"
    fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU(lightcurve_table(), name="FLUXPOINTS")]).writeto(path)
    fp = FluxPoints.read(path)
    assert fp.shape == (3, 2) and fp.sed_type_init == "flux"  # no SED_TYPE: guessed from columns
    assert_allclose(fp.time_min.mjd, [55555.0, 55556.0, 55557.5], rtol=0, atol=1e-9)
    assert fp.time_min.scale == "utc"
    assert_allclose((fp.time_max - fp.time_min).to_value("d"), [1.0, 1.0, 0.5], atol=1e-9)
    assert_allclose(fp.flux.to_value("cm-2 s-1"), lightcurve_table()["flux"], rtol=1e-14)
    back = FluxPoints.read(fp.write(tmp_path / "lc2.ecsv"))
    assert_allclose(back.flux_err.value, fp.flux_err.value, rtol=1e-15)
    assert_allclose(back.time_max.mjd, fp.time_max.mjd, atol=1e-9)
    assert back.to_table().meta == {"MJDREFI": 0, "MJDREFF": 0.0, "TIMESYS": "utc", "TIMEUNIT": "d"}


# ------------------------------------------------------------------------------- bad input
def write_table(tmp_path, table, name="bad.fits"):
    path = tmp_path / name
    fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU(table, name="FLUXPOINTS")]).writeto(path)
    return path


def dnde_table():
    table = Table()
    table["e_ref"] = [1.0, 2.0, 4.0] * u.TeV
    table["dnde"] = [1e-11, 3e-12, 1e-12] * u.Unit("cm-2 s-1 TeV-1")
    table["dnde_err"] = [1e-12, 3e-13, 1e-13] * u.Unit("cm-2 s-1 TeV-1")
    table.meta["SED_TYPE"] = "dnde"
    return table


def test_unknown_sed_type_names_file_and_keyword(tmp_path):
    table = dnde_table()
    table.meta["SED_TYPE"] = "photons"
    path = write_table(tmp_path, table)
    with pytest.raises(DataFormatError, match=rf"{path}.*'photons'.*SED_TYPE"):
        FluxPoints.read(path)


def test_negative_errors_name_file_and_column(tmp_path):
    table = dnde_table()
    table["dnde_err"][1] = -3e-13
    path = write_table(tmp_path, table)
    with pytest.raises(DataFormatError, match=rf"{path}.*'dnde_err'.*negative.*\[1\]"):
        FluxPoints.read(path)


def test_energies_not_increasing_name_file_and_column(tmp_path):
    table = dnde_table()
    table["e_ref"] = [1.0, 4.0, 2.0] * u.TeV
    path = write_table(tmp_path, table)
    with pytest.raises(DataFormatError, match=rf"{path}.*'e_ref'.*not strictly increasing"):
        FluxPoints.read(path)
    table = dnde_table()
    table["e_min"] = [0.8, 1.6, 1.5] * u.TeV
    table["e_max"] = [1.2, 2.4, 4.5] * u.TeV
    path = write_table(tmp_path, table, "bad2.ecsv".replace(".ecsv", ".fits"))
    with pytest.raises(DataFormatError, match="'e_min'.*not strictly increasing"):
        FluxPoints.read(path)


def test_norm_file_without_reference_names_the_column(tmp_path):
    table = Table()
    table["e_ref"] = [1.0, 2.0] * u.TeV
    table["e_min"] = [0.7, 1.4] * u.TeV
    table["e_max"] = [1.4, 2.8] * u.TeV
    table["norm"] = [1.0, 0.9]
    table.meta["SED_TYPE"] = "likelihood"
    path = write_table(tmp_path, table)
    with pytest.raises(DataFormatError, match=rf"{path}.*reference model.*'ref_dnde'"):
        FluxPoints.read(path)


def test_not_a_flux_points_file(tmp_path):
    path = tmp_path / "notes.ecsv"
    path.write_text("just text\n")
    with pytest.raises(DataFormatError, match="neither FITS nor ECSV"):
        FluxPoints.read(path)


def test_lightcurve_time_min_is_mjd_with_reference():
    table = lightcurve_table()
    table.meta.update(MJDREFI=55000, MJDREFF=0.5, TIMESYS="tt")
    table["time_min"] = [0.0, 1.0, 2.5]
    table["time_max"] = [1.0, 2.0, 3.0]
    fp = FluxPoints.from_table(table)
    assert fp.time_min[0] == Time(55000.5, format="mjd", scale="tt")
