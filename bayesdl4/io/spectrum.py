"""Spectrum dataset files: format detection and dispatch to the OGIP and GADF readers / writers.

``SpectrumDataset.read`` / ``SpectrumDatasetOnOff.read`` and ``.write`` delegate here.
"""

from pathlib import Path

from ..errors import DataFormatError
from ._fits import hdu_names, open_fits
from .gadf_region import read_gadf_spectrum, write_gadf_spectrum
from .ogip import ogip_filenames, read_ogip_spectrum, write_ogip_spectrum

__all__ = [
    "detect_spectrum_format",
    "read_spectrum_dataset",
    "write_spectrum_dataset",
    "ogip_filenames",
]

FORMATS = ("ogip", "gadf")


def detect_spectrum_format(filename):
    """``"ogip"`` for a PHA file (a ``SPECTRUM`` HDU), ``"gadf"`` for gammapy's region-map layout (``COUNTS``
    with ``COUNTS_BANDS``); otherwise a `DataFormatError` listing the HDUs found."""
    path = Path(filename)
    with open_fits(path, "spectrum dataset file") as hdulist:
        if "SPECTRUM" in hdulist:
            return "ogip"
        if "COUNTS" in hdulist and "COUNTS_BANDS" in hdulist:
            return "gadf"
        raise DataFormatError(
            f"{path}: cannot tell the format: neither an OGIP PHA file (SPECTRUM HDU) nor gammapy's GADF "
            f"spectrum layout (COUNTS and COUNTS_BANDS HDUs); HDUs present: {hdu_names(hdulist)}"
        )


def read_spectrum_dataset(filename, name=None, format=None, dataset_class=None, checksum=False):
    """Read a spectrum dataset from an OGIP PHA file (with its BKG/ARF/RMF) or a GADF region-layout file.

    Parameters
    ----------
    filename : str or Path
    name : str, optional
        Dataset name; default from the file (``str(OBS_ID)`` for OGIP, the ``NAME`` keyword for GADF).
    format : {None, "ogip", "gadf"}
        None detects it from the HDUs.
    dataset_class : type, optional
        The class ``read`` was called on. The class returned matches the file: `SpectrumDatasetOnOff` when
        it holds OFF counts (OGIP ``BACKFILE``, GADF ``COUNTS_OFF``), else `SpectrumDataset`. Asking
        `SpectrumDatasetOnOff` for a file without OFF counts raises `DataFormatError`.
    checksum : bool
        Verify the ``CHECKSUM`` / ``DATASUM`` keywords of every HDU that has them (as gammapy's
        ``checksum=True``); a mismatch raises `DataFormatError` naming the file and HDU.

    Returns
    -------
    dataset : `SpectrumDataset` or `SpectrumDatasetOnOff`
    """
    if format is None:
        format = detect_spectrum_format(filename)
    if format == "ogip":
        return read_ogip_spectrum(
            filename, name=name, dataset_class=dataset_class, checksum=checksum
        )
    if format == "gadf":
        return read_gadf_spectrum(
            filename, name=name, dataset_class=dataset_class, checksum=checksum
        )
    raise DataFormatError(
        f"{filename}: unknown spectrum format {format!r}; use one of {FORMATS} or None"
    )


def write_spectrum_dataset(dataset, filename, format="ogip", overwrite=False):
    """Write a spectrum dataset; all files are written, or none.

    Parameters
    ----------
    dataset : `SpectrumDataset` or `SpectrumDatasetOnOff`
    filename : str or Path
        ``"ogip"``: the PHA file, with ``<stem>_bkg``, ``<stem>_arf`` and ``<stem>_rmf`` beside it (gammapy's
        names). ``"gadf"``: the one FITS file.
    format : {"ogip", "gadf"}
    overwrite : bool
        Without it, an existing target raises `FileExistsError` naming it and nothing is written.

    Returns
    -------
    paths : list of Path
        The files written.
    """
    if format == "ogip":
        return write_ogip_spectrum(dataset, filename, overwrite=overwrite)
    if format == "gadf":
        return write_gadf_spectrum(dataset, filename, overwrite=overwrite)
    raise DataFormatError(f"unknown spectrum format {format!r}; use one of {FORMATS}")
