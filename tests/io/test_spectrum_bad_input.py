"""Broken spectrum files raise the project's errors, naming the file (and HDU / keyword / column) at fault."""

import shutil

import numpy as np
import pytest
from astropy.io import fits

from bayesdl4.datasets.spectrum import SpectrumDataset, SpectrumDatasetOnOff
from bayesdl4.errors import DataFileNotFoundError, DataFormatError, GeometryMismatchError
from bayesdl4.io.spectrum import read_spectrum_dataset


@pytest.fixture
def ogip_dir(tmp_path, onoff_dataset):
    """A synthetic OGIP spectrum s.fits with s_bkg / s_arf / s_rmf beside it."""
    onoff_dataset.write(tmp_path / "s.fits", format="ogip")
    return tmp_path


@pytest.fixture
def hess_dir(gammapy_data, tmp_path):
    """A copy of the H.E.S.S. run 23523 files (PHA, BKG, ARF, RMF) to break."""
    src = gammapy_data / "joint-crab/spectra/hess"
    for kind in ("pha", "bkg", "arf", "rmf"):
        shutil.copy(src / f"{kind}_obs23523.fits", tmp_path)
    return tmp_path


def edit(path, func):
    with fits.open(path, mode="update") as hdul:
        func(hdul)


def replace_table(path, extname, columns_update=None, nrows=None):
    """Rewrite table HDU ``extname`` with changed columns or only its first ``nrows`` rows."""
    tmp = path.with_name("tmp_" + path.name)
    with fits.open(path) as hdul:
        old = hdul[extname]
        data = old.data if nrows is None else old.data[:nrows]
        cols = []
        for col in old.columns:
            array = np.array(data[col.name])
            if columns_update and col.name in columns_update:
                array = columns_update[col.name](array)
            cols.append(fits.Column(name=col.name, format=col.format, unit=col.unit, array=array))
        header = old.header.copy()
        hdul[extname] = fits.BinTableHDU.from_columns(cols, header=header, name=extname)
        hdul.writeto(tmp)
    tmp.replace(path)


# ---------------------------------------------------------------------------------------------- unreadable / missing
def test_missing_file(tmp_path):
    with pytest.raises(DataFileNotFoundError, match="nope.fits"):
        read_spectrum_dataset(tmp_path / "nope.fits")
    with pytest.raises(FileNotFoundError):  # also a FileNotFoundError, as Python code expects
        read_spectrum_dataset(tmp_path / "nope.fits")


def test_unreadable_file(tmp_path):
    path = tmp_path / "junk.fits"
    path.write_bytes(b"this is not a FITS file\n" * 200)
    with pytest.raises(DataFormatError, match="junk.fits.*not a readable FITS file"):
        SpectrumDatasetOnOff.read(path)


@pytest.mark.parametrize(
    "kind,keyword", [("arf", "ANCRFILE"), ("rmf", "RESPFILE"), ("bkg", "BACKFILE")]
)
def test_referenced_file_missing(ogip_dir, kind, keyword):
    (ogip_dir / f"s_{kind}.fits").unlink()
    with pytest.raises(
        DataFileNotFoundError, match=rf"s\.fits: {keyword} = 's_{kind}.fits'.*does not exist"
    ):
        SpectrumDatasetOnOff.read(ogip_dir / "s.fits")


@pytest.mark.realdata
def test_real_referenced_file_missing(hess_dir):
    (hess_dir / "arf_obs23523.fits").unlink()
    with pytest.raises(DataFormatError, match="pha_obs23523.fits: ANCRFILE = 'arf_obs23523.fits'"):
        SpectrumDatasetOnOff.read(hess_dir / "pha_obs23523.fits")


def test_ancrfile_keyword_missing(ogip_dir):
    edit(ogip_dir / "s.fits", lambda h: h["SPECTRUM"].header.remove("ANCRFILE"))
    with pytest.raises(DataFormatError, match="s.fits: SPECTRUM header has no ANCRFILE keyword"):
        SpectrumDatasetOnOff.read(ogip_dir / "s.fits")


def test_onoff_read_needs_backfile(ogip_dir):
    edit(ogip_dir / "s.fits", lambda h: h["SPECTRUM"].header.remove("BACKFILE"))
    with pytest.raises(DataFormatError, match="s.fits: has no OFF counts"):
        SpectrumDatasetOnOff.read(ogip_dir / "s.fits")
    assert type(SpectrumDataset.read(ogip_dir / "s.fits")) is SpectrumDataset


# ---------------------------------------------------------------------------------------------- wrong HDUs
def test_unknown_layout(ogip_dir):
    edit(ogip_dir / "s.fits", lambda h: setattr(h["SPECTRUM"], "name", "FOO"))
    with pytest.raises(DataFormatError, match=r"s.fits: cannot tell the format.*'FOO'"):
        read_spectrum_dataset(ogip_dir / "s.fits")
    with pytest.raises(DataFormatError, match="s.fits: no 'SPECTRUM' HDU"):
        read_spectrum_dataset(ogip_dir / "s.fits", format="ogip")


@pytest.mark.parametrize(
    "kind,hdu,message",
    [
        ("arf", "SPECRESP", r"s_arf.fits: no 'SPECRESP' HDU"),
        ("rmf", "MATRIX", r"s_rmf.fits: no 'MATRIX'"),
    ],
)
def test_missing_hdu_in_referenced_file(ogip_dir, kind, hdu, message):
    edit(ogip_dir / f"s_{kind}.fits", lambda h: setattr(h[hdu], "name", "OTHER"))
    with pytest.raises(DataFormatError, match=message):
        SpectrumDatasetOnOff.read(ogip_dir / "s.fits")


def test_missing_column(ogip_dir):
    edit(ogip_dir / "s.fits", lambda h: h["SPECTRUM"].columns.change_name("COUNTS", "CNTS"))
    with pytest.raises(DataFormatError, match="s.fits: SPECTRUM HDU has no COUNTS column"):
        SpectrumDatasetOnOff.read(ogip_dir / "s.fits")


def test_gadf_missing_bands(tmp_path, onoff_dataset):
    onoff_dataset.write(tmp_path / "g.fits", format="gadf")
    with fits.open(tmp_path / "g.fits") as hdul:
        hdus = fits.HDUList([h.copy() for h in hdul if h.name != "COUNTS_OFF_BANDS"])
        hdus.writeto(tmp_path / "g2.fits")
    with pytest.raises(DataFormatError, match="g2.fits: no 'COUNTS_OFF_BANDS' HDU"):
        SpectrumDatasetOnOff.read(tmp_path / "g2.fits")


# ---------------------------------------------------------------------------------------------- channel mismatches
def test_bkg_channel_count_mismatch(ogip_dir):
    replace_table(ogip_dir / "s_bkg.fits", "SPECTRUM", nrows=11)
    replace_table(ogip_dir / "s_bkg.fits", "EBOUNDS", nrows=11)
    edit(ogip_dir / "s_bkg.fits", lambda h: h["SPECTRUM"].header.set("DETCHANS", 11))
    with pytest.raises(
        GeometryMismatchError, match=r"s.fits has 12 channels but its BKG file .*s_bkg.fits has 11"
    ):
        SpectrumDatasetOnOff.read(ogip_dir / "s.fits")


def test_pha_ebounds_mismatch(ogip_dir):
    replace_table(ogip_dir / "s.fits", "EBOUNDS", nrows=10)
    with pytest.raises(
        GeometryMismatchError, match="s.fits: EBOUNDS has 10 channels but SPECTRUM has 12"
    ):
        SpectrumDatasetOnOff.read(ogip_dir / "s.fits")


def test_detchans_mismatch(ogip_dir):
    edit(ogip_dir / "s.fits", lambda h: h["SPECTRUM"].header.set("DETCHANS", 13))
    with pytest.raises(
        GeometryMismatchError, match="s.fits: SPECTRUM has 12 rows but DETCHANS = 13"
    ):
        SpectrumDatasetOnOff.read(ogip_dir / "s.fits")


def test_rmf_channel_mismatch(ogip_dir):
    for name in ("s.fits", "s_bkg.fits"):  # a 10-channel spectrum with the 12-channel RMF
        replace_table(ogip_dir / name, "SPECTRUM", nrows=10)
        replace_table(ogip_dir / name, "EBOUNDS", nrows=10)
        edit(ogip_dir / name, lambda h: h["SPECTRUM"].header.set("DETCHANS", 10))
    with pytest.raises(
        GeometryMismatchError, match=r"s.fits has 10 channels but its RMF .*s_rmf.fits has 12"
    ):
        SpectrumDatasetOnOff.read(ogip_dir / "s.fits")


def test_rmf_detchans_disagrees_with_its_ebounds(ogip_dir):
    edit(ogip_dir / "s_rmf.fits", lambda h: h["MATRIX"].header.set("DETCHANS", 9))
    with pytest.raises(
        GeometryMismatchError, match="s_rmf.fits: MATRIX DETCHANS = 9 but EBOUNDS has 12"
    ):
        SpectrumDatasetOnOff.read(ogip_dir / "s.fits")


def test_arf_rmf_true_energy_mismatch(ogip_dir):
    replace_table(ogip_dir / "s_arf.fits", "SPECRESP", nrows=17)
    with pytest.raises(
        GeometryMismatchError, match=r"RMF .*s_rmf.fits true-energy binning .* ARF .*s_arf.fits"
    ):
        SpectrumDatasetOnOff.read(ogip_dir / "s.fits")


@pytest.mark.realdata
def test_real_rmf_ebounds_values_differ(hess_dir):
    replace_table(hess_dir / "rmf_obs23523.fits", "EBOUNDS", {"E_MAX": lambda x: x * 1.01})
    with pytest.raises(
        GeometryMismatchError, match="EBOUNDS of .*pha_obs23523.fits and of its RMF"
    ):
        SpectrumDatasetOnOff.read(hess_dir / "pha_obs23523.fits")


# ---------------------------------------------------------------------------------------------- bad values
def test_negative_counts(ogip_dir):
    replace_table(
        ogip_dir / "s.fits",
        "SPECTRUM",
        {"COUNTS": lambda c: np.where(np.arange(c.size) == 4, -3, c)},
    )
    with pytest.raises(
        DataFormatError, match=r"s.fits: SPECTRUM column COUNTS has negative .* channels \[4\]"
    ):
        SpectrumDatasetOnOff.read(ogip_dir / "s.fits")


def test_negative_off_counts(ogip_dir):
    replace_table(ogip_dir / "s_bkg.fits", "SPECTRUM", {"COUNTS": lambda c: -np.abs(c) - 1})
    with pytest.raises(DataFormatError, match="s_bkg.fits: SPECTRUM column COUNTS has negative"):
        SpectrumDatasetOnOff.read(ogip_dir / "s.fits")


def test_nan_arf(ogip_dir):
    replace_table(
        ogip_dir / "s_arf.fits",
        "SPECRESP",
        {"SPECRESP": lambda a: np.where(np.arange(a.size) == 2, np.nan, a)},
    )
    with pytest.raises(
        DataFormatError, match=r"s_arf.fits: SPECRESP column SPECRESP has .*NaN.* bins \[2\]"
    ):
        SpectrumDatasetOnOff.read(ogip_dir / "s.fits")


@pytest.mark.parametrize(
    "value,message", [(-5.0, "EXPOSURE keyword is -5.0 s"), ("NaN", "EXPOSURE keyword is nan s")]
)
def test_bad_exposure_keyword(ogip_dir, value, message):
    """astropy cannot write a NaN keyword, but a string 'NaN' (or a negative livetime) can be in a file."""
    edit(ogip_dir / "s.fits", lambda h: h["SPECTRUM"].header.set("EXPOSURE", value))
    with pytest.raises(DataFormatError, match=f"s.fits: {message}"):
        SpectrumDatasetOnOff.read(ogip_dir / "s.fits")


def test_missing_exposure_keyword(ogip_dir):
    edit(ogip_dir / "s.fits", lambda h: h["SPECTRUM"].header.remove("EXPOSURE"))
    with pytest.raises(DataFormatError, match="s.fits: SPECTRUM header has no EXPOSURE keyword"):
        SpectrumDatasetOnOff.read(ogip_dir / "s.fits")


def test_nan_backscal(ogip_dir):
    replace_table(ogip_dir / "s_bkg.fits", "SPECTRUM", {"BACKSCAL": lambda b: b * np.nan})
    with pytest.raises(DataFormatError, match="s_bkg.fits: BACKSCAL has negative or non-finite"):
        SpectrumDatasetOnOff.read(ogip_dir / "s.fits")


def test_gadf_nan_exposure(tmp_path, onoff_dataset):
    onoff_dataset.write(tmp_path / "g.fits", format="gadf")
    edit(tmp_path / "g.fits", lambda h: h["EXPOSURE"].data["DATA"].__setitem__(3, np.nan))
    with pytest.raises(
        DataFormatError,
        match=r"g.fits: HDU 'EXPOSURE' has negative or non-finite values in bins \[3\]",
    ):
        SpectrumDatasetOnOff.read(tmp_path / "g.fits")


def test_gadf_negative_counts(tmp_path, onoff_dataset):
    onoff_dataset.write(tmp_path / "g.fits", format="gadf")
    edit(tmp_path / "g.fits", lambda h: h["COUNTS_OFF"].data["DATA"].__setitem__(0, -1.0))
    with pytest.raises(DataFormatError, match="g.fits: HDU 'COUNTS_OFF' has negative"):
        SpectrumDatasetOnOff.read(tmp_path / "g.fits")


def test_gadf_edisp_shape_mismatch(tmp_path, onoff_dataset):
    onoff_dataset.write(tmp_path / "g.fits", format="gadf")
    with fits.open(tmp_path / "g.fits") as hdul:
        hdus = [h.copy() for h in hdul]
    idx = [h.name for h in hdus].index("EDISP")
    hdus[idx] = fits.BinTableHDU(hdus[idx].data[:10], header=hdus[idx].header, name="EDISP")
    fits.HDUList(hdus).writeto(tmp_path / "g2.fits")
    with pytest.raises(
        GeometryMismatchError, match="g2.fits: HDU 'EDISP' holds 120 values but its axes"
    ):
        SpectrumDatasetOnOff.read(tmp_path / "g2.fits")
