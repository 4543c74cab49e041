"""FITS helpers shared by the spectrum readers and writers (`gadf_region`, `ogip`).

Opening files and finding HDUs and columns with errors that name the file, HDU and column; energy
axes from edge columns; small HDU builders; and writing several files as one transaction.
"""

import contextlib
import os
import tempfile
from pathlib import Path

import numpy as np
from astropy import units as u
from astropy.io import fits
from astropy.table import Table

from ..errors import DataFileNotFoundError, DataFormatError, GeometryMismatchError
from ..maps import MapAxis
from ..utils.fileio import check_overwrite

__all__ = [
    "open_fits",
    "open_hdu",
    "hdu_names",
    "get_hdu",
    "get_column",
    "column_unit",
    "make_axis",
    "edges_axis",
    "edge_columns",
    "bad_bins",
    "set_header",
    "table_hdu",
    "write_hdulists",
]


# ---------------------------------------------------------------------------------------------- reading
@contextlib.contextmanager
def open_fits(path, role="file"):
    """Open a FITS file read-only, turning a missing or unreadable file into the project's errors.

    Parameters
    ----------
    path : str or Path
    role : str
        What the file is, for messages (e.g. ``"ARF (ANCRFILE of pha.fits)"``).
    """
    path = Path(path)
    if not path.is_file():
        raise DataFileNotFoundError(
            f"{role} {path} does not exist; check the path (and the keyword naming it)"
        )
    try:
        hdulist = fits.open(path, memmap=False)
    except Exception as exc:  # astropy raises OSError, ValueError, TypeError ... on corrupt files
        raise DataFormatError(
            f"{role} {path} is not a readable FITS file ({exc}); re-create or re-download it"
        ) from exc
    try:
        yield hdulist
    finally:
        hdulist.close()


@contextlib.contextmanager
def open_hdu(path, role, names, hint=""):
    """Open a FITS file as `open_fits` and yield ``(hdulist, hdu)``, ``hdu`` the first of ``names`` there.

    A file without any of ``names`` raises `DataFormatError` (see `get_hdu`; ``hint`` says what it should
    hold).
    """
    with open_fits(path, role) as hdulist:
        yield hdulist, get_hdu(hdulist, names, path, hint=hint)


def hdu_names(hdulist):
    return [hdu.name for hdu in hdulist]


def get_hdu(hdulist, names, path, hint=""):
    """The first HDU of ``names`` present in ``hdulist``; else a `DataFormatError` listing what is there."""
    names = [names] if isinstance(names, str) else list(names)
    for name in names:
        if name in hdulist:
            return hdulist[name]
    raise DataFormatError(
        f"{path}: no {' or '.join(repr(n) for n in names)} HDU (HDUs present: {hdu_names(hdulist)}). {hint}".rstrip()
    )


def get_column(hdu, name, path, required=True):
    """Column ``name`` of a binary table HDU as a numpy array (None when absent and not required)."""
    columns = [c.upper() for c in hdu.columns.names] if hdu.columns is not None else []
    if name.upper() not in columns:
        if required:
            raise DataFormatError(
                f"{path}: HDU {hdu.name!r} has no column {name!r} (columns: {hdu.columns.names})"
            )
        return None
    return np.asarray(hdu.data.field(name))


def column_unit(hdu, name):
    for col in hdu.columns:
        if col.name.upper() == name.upper():
            return u.Unit(col.unit) if col.unit else u.dimensionless_unscaled
    return u.dimensionless_unscaled


def make_axis(edges, unit, name, path, hdu_name, interp="log"):
    """A `MapAxis`, with errors naming the file and HDU the edges came from."""
    try:
        return MapAxis(np.asarray(edges, dtype=float), name=name, interp=interp, unit=unit)
    except GeometryMismatchError as exc:
        raise DataFormatError(
            f"{path}: HDU {hdu_name!r} does not define a valid {name} axis: {exc}"
        ) from exc


def edges_axis(hdu, lo_name, hi_name, name, path):
    """A log `MapAxis` from a table's lower / upper edge columns (e.g. ``ENERG_LO`` / ``ENERG_HI``).

    The unit is that of the lower-edge column; an empty table raises `DataFormatError`.
    """
    lo = get_column(hdu, lo_name, path).astype(float)
    hi = get_column(hdu, hi_name, path).astype(float)
    if lo.size == 0:
        raise DataFormatError(f"{path}: {hdu.name} HDU is empty")
    return make_axis(np.append(lo, hi[-1]), column_unit(hdu, lo_name), name, path, hdu.name)


def bad_bins(values, allow_negative=False):
    """Flat indices (the first ten) of non-finite values, and of negative ones unless allowed."""
    bad = ~np.isfinite(values)
    if not allow_negative:
        bad |= values < 0
    return np.flatnonzero(bad)[:10].tolist()


# ---------------------------------------------------------------------------------------------- writing
def edge_columns(edges, lo_name, hi_name):
    """Two float64 columns with the lower and upper bin edges of ``edges`` (a Quantity)."""
    return [
        fits.Column(name=lo_name, format="D", array=edges[:-1].value, unit=str(edges.unit)),
        fits.Column(name=hi_name, format="D", array=edges[1:].value, unit=str(edges.unit)),
    ]


def set_header(hdu, values):
    """Set header keywords of ``hdu`` in the order of the dict ``values``; returns ``hdu``."""
    for key, value in values.items():
        hdu.header[key] = value
    return hdu


def table_hdu(table, extname):
    """A binary table HDU named ``extname`` from a `~astropy.table.Table` (e.g. ``GTI``)."""
    hdu = fits.table_to_hdu(Table(table))
    hdu.name = extname
    return hdu


def write_hdulists(hdulists, overwrite=False):
    """Write several FITS files as one transaction.

    Every file goes to a temporary name beside its target first; only when all are written are they renamed
    onto their targets. With ``overwrite=False`` an existing target raises `FileExistsError` (naming it)
    before anything is written.

    Parameters
    ----------
    hdulists : dict of Path -> `~astropy.io.fits.HDUList`

    Returns
    -------
    paths : list of Path
    """
    targets = [Path(p) for p in hdulists]
    if len(set(targets)) != len(targets):
        raise DataFormatError(
            f"write: two outputs share one file name: {[str(p) for p in targets]}"
        )
    for path in targets:
        check_overwrite(path, overwrite)
    temps = {}
    try:
        for path, hdulist in zip(targets, hdulists.values(), strict=True):
            path.parent.mkdir(parents=True, exist_ok=True)
            suffix = "".join(path.suffixes) or ".tmp"
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
            os.close(fd)
            os.unlink(tmp)  # astropy refuses to write onto an existing file
            temps[path] = Path(tmp)
            hdulist.writeto(tmp)
        for path in targets:  # re-check: a file may have appeared while writing
            check_overwrite(path, overwrite)
        for path in targets:
            os.replace(temps[path], path)
    finally:
        for tmp in temps.values():
            if tmp.exists():
                tmp.unlink()
    return targets
