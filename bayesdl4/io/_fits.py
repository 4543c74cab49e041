"""FITS helpers shared by the readers and writers of `bayesdl4.io`.

Opening files checked to be complete (`read_fits`: a truncated or corrupt gzip stream, or an HDU
cut short, raises instead of losing HDUs) and finding HDUs and columns with errors that name the
file, HDU and column; energy axes from edge columns; the response normalisation check; small HDU
builders; and writing several files as one transaction.
"""

import contextlib
import io
import logging
import zlib
from pathlib import Path

import numpy as np
from astropy import units as u
from astropy.io import fits
from astropy.table import Table

from ..errors import DataFileNotFoundError, DataFormatError, GeometryMismatchError
from ..maps import MapAxis
from ..utils.fileio import write_files

log = logging.getLogger(__name__)

__all__ = [
    "read_fits",
    "open_fits",
    "open_hdu",
    "hdu_names",
    "get_hdu",
    "get_column",
    "column_unit",
    "make_axis",
    "edges_axis",
    "edge_columns",
    "check_header_text",
    "bad_bins",
    "check_response_sums",
    "RESPONSE_SUM_TOLERANCE",
    "set_header",
    "table_hdu",
    "with_gti_reference",
    "write_hdulists",
]


# ---------------------------------------------------------------------------------------------- reading
_GZIP_MAGIC = b"\x1f\x8b"
_BLOCK = 2880  # FITS block size in bytes


class _NamedBytesIO(io.BytesIO):
    """In-memory file whose ``name`` astropy reports as ``HDUList.filename()`` (for messages)."""

    def __init__(self, data, name):
        super().__init__(data)
        self.name = name


def _gunzip(path, role):
    """The decompressed bytes of a gzip file; a corrupt or cut-short stream raises `DataFormatError`.

    astropy stops quietly where a truncated gzip stream ends, silently dropping the HDUs after it;
    here the stream must end with its end-of-stream marker (and pass zlib's CRC and size checks).
    """
    parts = []
    with open(path, "rb") as handle:
        data = handle.read()
    while data:
        decompressor = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        try:
            parts.append(decompressor.decompress(data))
            parts.append(decompressor.flush())
        except zlib.error as exc:
            raise DataFormatError(
                f"{role} {path}: the gzip stream is corrupt ({exc}); re-create or re-download the file"
            ) from exc
        if not decompressor.eof:
            raise DataFormatError(
                f"{role} {path}: the gzip stream ends before its end-of-stream marker, so the file is "
                "truncated (an interrupted download or copy?); re-create or re-download it"
            )
        data = decompressor.unused_data  # a further gzip member, or trailing zero padding
        if data and not data.startswith(_GZIP_MAGIC):
            if data.strip(b"\0"):
                log.warning("%s: %d bytes after the gzip stream are ignored", path, len(data))
            break
    return b"".join(parts)


def _check_complete(hdulist, path, role, size, tail):
    """Raise `DataFormatError` if an HDU's data or a header runs past the end of the file.

    ``size`` is the (decompressed) file size in bytes; ``tail(offset)`` returns 8 bytes at
    ``offset``, used to tell a truncated header from harmless trailing bytes.
    """
    end = 0
    for index, hdu in enumerate(hdulist):
        info = hdu.fileinfo()
        if info is None:
            continue
        data_end = info["datLoc"] + hdu.size
        if data_end > size:
            raise DataFormatError(
                f"{role} {path}: HDU {index} ({hdu.name!r}) is cut short: its data need "
                f"{data_end} bytes but the file has {size}; the file is truncated, re-create or "
                "re-download it"
            )
        end = data_end + (-data_end) % _BLOCK
    if size < end:  # FITS pads every HDU to 2880-byte blocks: a cut in the padding lost what follows
        raise DataFormatError(
            f"{role} {path}: the file ends inside the last 2880-byte block of HDU "
            f"{len(hdulist) - 1} ({hdulist[-1].name!r}), so it is truncated and the HDUs after it "
            "are missing; re-create or re-download it"
        )
    if size > end and tail(end).startswith(b"XTENSION"):
        raise DataFormatError(
            f"{role} {path}: the file ends inside the header of HDU {len(hdulist)}, after HDUs "
            f"{hdu_names(hdulist)}; the file is truncated, re-create or re-download it"
        )


def _verify_checksums(hdulist, path, role):
    """Raise `DataFormatError` naming the HDU whose ``CHECKSUM`` / ``DATASUM`` keyword fails."""
    checked = 0
    for hdu in hdulist:
        for keyword, verify in (("DATASUM", hdu.verify_datasum), ("CHECKSUM", hdu.verify_checksum)):
            if keyword in hdu.header:
                checked += 1
                if verify() == 0:
                    raise DataFormatError(
                        f"{role} {path}: HDU {hdu.name!r} fails its {keyword} check, so its content "
                        "changed after it was written; re-create or re-download the file"
                    )
    if not checked:
        log.warning("%s: checksum=True but no HDU has CHECKSUM or DATASUM keywords to check", path)


def read_fits(path, role="file", checksum=False):
    """Open a FITS file (plain or gzip-compressed) read-only, checking that it is complete.

    A gzip file is decompressed into memory (faster than astropy's seeking in the gzip stream);
    a corrupt or truncated gzip stream, an HDU whose data run past the end of the file, or a
    file that ends inside a header raises `DataFormatError` naming the file, instead of
    astropy's silent loss of the last HDUs (or its ``cannot reshape`` error later).

    Parameters
    ----------
    path : str or Path
    role : str
        What the file is, for messages (e.g. ``"ARF (ANCRFILE of pha.fits)"``).
    checksum : bool
        Verify the ``CHECKSUM`` / ``DATASUM`` keywords of every HDU that has them.

    Returns
    -------
    hdulist : `~astropy.io.fits.HDUList`
        Close it (or use it in a ``with`` block).
    """
    path = Path(path)
    if path.is_dir():
        raise DataFormatError(f"{role} {path} is a directory, not a FITS file; give the file's path")
    if not path.is_file():
        raise DataFileNotFoundError(
            f"{role} {path}: file not found (it does not exist); check the path (and the keyword "
            "naming it)"
        )
    with open(path, "rb") as handle:
        compressed = handle.read(2) == _GZIP_MAGIC
    if compressed:
        raw = _gunzip(path, role)
        source, size = _NamedBytesIO(raw, str(path)), len(raw)

        def tail(offset):
            return raw[offset : offset + 8]
    else:
        source, size = str(path), path.stat().st_size

        def tail(offset):
            with open(path, "rb") as handle:
                handle.seek(offset)
                return handle.read(8)

    try:
        hdulist = fits.open(source, memmap=False)
        hdulist.readall()
    except Exception as exc:  # astropy raises OSError, ValueError, TypeError ... on corrupt files
        raise DataFormatError(
            f"{role} {path} is not a readable FITS file ({exc}); re-create or re-download it"
        ) from exc
    try:
        _check_complete(hdulist, path, role, size, tail)
        if checksum:
            _verify_checksums(hdulist, path, role)
    except BaseException:
        hdulist.close()
        raise
    return hdulist


@contextlib.contextmanager
def open_fits(path, role="file", checksum=False):
    """`read_fits` as a context manager that closes the file.

    Parameters
    ----------
    path : str or Path
    role : str
        What the file is, for messages (e.g. ``"ARF (ANCRFILE of pha.fits)"``).
    checksum : bool
        Verify the ``CHECKSUM`` / ``DATASUM`` keywords of every HDU that has them.
    """
    hdulist = read_fits(path, role, checksum=checksum)
    try:
        yield hdulist
    finally:
        hdulist.close()


@contextlib.contextmanager
def open_hdu(path, role, names, hint="", checksum=False):
    """Open a FITS file as `open_fits` and yield ``(hdulist, hdu)``, ``hdu`` the first of ``names`` there.

    A file without any of ``names`` raises `DataFormatError` (see `get_hdu`; ``hint`` says what it should
    hold). ``checksum``: verify the HDUs' ``CHECKSUM`` / ``DATASUM`` keywords (`read_fits`).
    """
    with open_fits(path, role, checksum=checksum) as hdulist:
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


# A response row (one true-energy bin) holds the probabilities of the reco channels: they sum to at
# most 1 (less where events fall outside the channels). gammapy 2.1 accepts any sum, so an RMF or
# EDISP map multiplied by a factor silently multiplies npred. The OGIP RMFs in $GAMMAPY_DATA sum to
# 1 within 4e-8, but HAWC's public EDISP kernels reach 1.0021, hence 1e-2 rather than 1e-3.
RESPONSE_SUM_TOLERANCE = 1e-2


def check_response_sums(sums, path, hdu_name, describe_row):
    """Raise `DataFormatError` if a response row sums above ``1 + RESPONSE_SUM_TOLERANCE``.

    Parameters
    ----------
    sums : ndarray
        Row sums, first axis the true-energy bin (further axes e.g. sky pixels).
    path : str or Path
    hdu_name : str
    describe_row : callable
        ``describe_row(index_tuple) -> str`` names the first bad row in the message.
    """
    sums = np.asarray(sums, dtype=float)
    bad = sums > 1 + RESPONSE_SUM_TOLERANCE
    if not np.any(bad):
        return
    first = tuple(int(i) for i in np.argwhere(bad)[0])
    raise DataFormatError(
        f"{path}: HDU {hdu_name!r}: {describe_row(first)} sums to {sums[first]:.6g}, and "
        f"{int(bad.sum())} row(s) in all sum above 1 + {RESPONSE_SUM_TOLERANCE:g} (largest "
        f"{sums.max():.6g}); a response row holds probabilities, which sum to at most 1, so the "
        "response is not normalised (scaled by a factor?): re-create the file"
    )


# ---------------------------------------------------------------------------------------------- writing
def check_header_text(value, what, hint):
    """Raise `DataFormatError` if ``value`` cannot go in a FITS header (printable ASCII only).

    ``what`` names the value (``"dataset name 'x'"``), ``hint`` says how to fix it.
    """
    text = str(value)
    bad = sorted({c for c in text if not 32 <= ord(c) < 127})
    if bad:
        raise DataFormatError(
            f"{what} {text!r} has characters {''.join(bad)!r} that a FITS header cannot hold "
            f"(printable ASCII only); {hint}"
        )


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


# gammapy 2.1's reference time when none is given (``TIME_REF_DEFAULT``: 2000-01-01 00:00:00 TT)
GTI_REFERENCE_DEFAULT = {"MJDREFI": 51544, "MJDREFF": 0.0, "TIMESYS": "tt", "TIMEUNIT": "s"}


def with_gti_reference(table):
    """A GTI table whose meta has the ``MJDREFI`` / ``MJDREFF`` keywords gammapy needs to read it.

    A table without them (e.g. made in memory with ``START`` / ``STOP`` in seconds) gets gammapy's
    default reference time, 2000-01-01 TT, which is also what gammapy assumes for such times;
    gammapy 2.1 cannot read a GTI HDU without ``MJDREFI`` (``KeyError``).
    """
    table = Table(table)
    missing = [key for key in ("MJDREFI", "MJDREFF") if key not in table.meta]
    if missing:
        log.info("GTI table has no %s: writing gammapy's default reference, MJD 51544.0 TT", missing)
        for key, value in GTI_REFERENCE_DEFAULT.items():
            table.meta.setdefault(key, value)
    return table


def table_hdu(table, extname):
    """A binary table HDU named ``extname`` from a `~astropy.table.Table` (e.g. ``GTI``).

    A ``GTI`` table gets gammapy's default time reference if it has none (`with_gti_reference`).
    """
    table = with_gti_reference(table) if extname == "GTI" else Table(table)
    hdu = fits.table_to_hdu(table)
    hdu.name = extname
    return hdu


def write_hdulists(hdulists, overwrite=False):
    """Write several FITS files as one transaction (`bayesdl4.utils.fileio.atomic_files`).

    Every target is checked first (with ``overwrite=False`` an existing one raises
    `FileExistsError` naming it, a directory raises `DataWriteError`), every file is staged
    beside its target, and the staged files are renamed into place only when all are written;
    a failed rename puts back the files already replaced.

    Parameters
    ----------
    hdulists : dict of Path -> `~astropy.io.fits.HDUList`

    Returns
    -------
    paths : list of Path
    """
    return write_files({path: hdulist.writeto for path, hdulist in hdulists.items()}, overwrite)
