"""The single files of an OGIP spectrum: PHA (and BKG), ARF and RMF, read to arrays and built as HDUs.

`bayesdl4.io.ogip` assembles them into a dataset (and names the files); the conventions are in its
docstring. All energies and the matrix are written in float64.
"""

import logging
from pathlib import Path

import numpy as np
from astropy import units as u
from astropy.io import fits
from astropy.table import Table

from ..errors import DataFormatError, GeometryMismatchError
from ._fits import (
    bad_bins,
    check_response_sums,
    column_unit,
    edge_columns,
    edges_axis,
    get_column,
    hdu_names,
    open_hdu,
    set_header,
    table_hdu,
)
from .gadf_region import region_from_table_hdu, region_to_table_hdu

__all__ = [
    "read_pha",
    "read_arf",
    "read_rmf",
    "spectrum_header",
    "pha_hdulist",
    "arf_hdulist",
    "rmf_hdulist",
]

log = logging.getLogger(__name__)

_QUALITY_BAD = 1  # OGIP: 0 good, 1 bad (set by software); gammapy treats any non-zero as bad


# ---------------------------------------------------------------------------------------------- readers
def _ebounds_axis(hdul, path):
    return edges_axis(hdul["EBOUNDS"], "E_MIN", "E_MAX", "energy", path)


def _detchans(header, path, hdu_name, default=None):
    """The ``DETCHANS`` keyword as an int (``default`` when absent); else `DataFormatError`."""
    value = header.get("DETCHANS", default)
    if value is None:
        return None
    text = str(value).strip()
    if isinstance(value, bool) or not text.isdigit() and not (
        isinstance(value, float) and value.is_integer() and value >= 0
    ):
        raise DataFormatError(
            f"{path}: HDU {hdu_name!r} keyword DETCHANS = {value!r} is not a whole number; it must "
            "give the number of channels"
        )
    return int(float(text))


def read_pha(filename, role="PHA file", checksum=False):
    """Contents of an OGIP PHA (or BKG) file as plain arrays.

    Returns
    -------
    pha : dict
        ``counts`` (float64, (n_channels,)), ``backscal``, ``quality``, ``mask_fit`` (or None),
        ``background`` (or None), ``header`` (SPECTRUM header as a dict), ``energy_axis`` (from EBOUNDS, or
        None), ``region``, ``wcs``, ``gti`` (Table or None), ``meta_table`` (Table or None).
    """
    path = Path(filename)
    hint = "An OGIP PHA file holds its counts in a SPECTRUM extension."
    with open_hdu(path, role, "SPECTRUM", hint, checksum) as (hdul, hdu):
        header = dict(hdu.header)
        obs_ids = [card.value for card in hdu.header.cards if card.keyword == "OBS_ID"]
        if len(obs_ids) > 1:  # stacked spectra repeat OBS_ID; astropy (and so gammapy) reads a list
            header["OBS_ID"] = obs_ids
        if hdu.columns is None or hdu.data is None:
            raise DataFormatError(f"{path}: SPECTRUM HDU has no table data")
        names = [c.upper() for c in hdu.columns.names]
        if "COUNTS" not in names:
            hint = " (a RATE spectrum: convert it to COUNTS x EXPOSURE)" if "RATE" in names else ""
            raise DataFormatError(
                f"{path}: SPECTRUM HDU has no COUNTS column{hint}; columns: {hdu.columns.names}"
            )
        counts = np.asarray(hdu.data.field("COUNTS"))
        if counts.ndim != 1:
            raise DataFormatError(
                f"{path}: SPECTRUM column COUNTS has shape {counts.shape}; type II PHA files (several spectra "
                "in one table) are not supported: split them into one file per spectrum"
            )
        counts = counts.astype(np.float64)
        n = counts.size
        bad = bad_bins(counts)
        if bad:
            raise DataFormatError(
                f"{path}: SPECTRUM column COUNTS has negative or non-finite values in channels {bad}; "
                "counts must be >= 0"
            )
        detchans = _detchans(header, path, "SPECTRUM")
        if detchans is not None and detchans != n:
            raise GeometryMismatchError(
                f"{path}: SPECTRUM has {n} rows but DETCHANS = {detchans}; the file is inconsistent"
            )
        out = {"counts": counts, "header": header}

        quality = get_column(hdu, "QUALITY", path, required=False)
        if quality is None:
            quality = np.full(n, int(header.get("QUALITY", 0)))
        out["quality"] = np.asarray(quality).astype(np.int64).reshape(n)

        backscal = get_column(hdu, "BACKSCAL", path, required=False)
        if backscal is None:
            backscal = np.full(n, float(header.get("BACKSCAL", 1.0)))
        backscal = np.asarray(backscal, dtype=np.float64).reshape(n)
        bad = bad_bins(backscal)
        if bad:
            raise DataFormatError(
                f"{path}: BACKSCAL has negative or non-finite values in channels {bad}; BACKSCAL must be >= 0"
            )
        out["backscal"] = backscal

        mask_fit = get_column(hdu, "MASK_FIT", path, required=False)
        out["mask_fit"] = None if mask_fit is None else np.asarray(mask_fit).astype(bool).reshape(n)
        background = get_column(hdu, "BACKGROUND", path, required=False)
        out["background"] = (
            None if background is None else np.asarray(background, np.float64).reshape(n)
        )

        out["energy_axis"] = _ebounds_axis(hdul, path) if "EBOUNDS" in hdul else None
        if out["energy_axis"] is not None and out["energy_axis"].nbin != n:
            raise GeometryMismatchError(
                f"{path}: EBOUNDS has {out['energy_axis'].nbin} channels but SPECTRUM has {n}; "
                "the file is inconsistent"
            )
        out["region"], out["wcs"] = (None, None)
        if "REGION" in hdul:
            out["region"], out["wcs"] = region_from_table_hdu(hdul["REGION"], path)
        out["gti"] = Table.read(hdul["GTI"]) if "GTI" in hdul else None
        out["meta_table"] = Table.read(hdul["META_TABLE"]) if "META_TABLE" in hdul else None
    return out


def read_arf(filename, role="ARF file", checksum=False):
    """True energy axis (float64 edges) and effective area of an OGIP ARF.

    Returns
    -------
    energy_axis_true : `MapAxis`
    specresp : `~astropy.units.Quantity`, shape (n_energy_true,)
    """
    path = Path(filename)
    hint = "An OGIP ARF holds the effective area in a SPECRESP extension."
    with open_hdu(path, role, "SPECRESP", hint, checksum) as (_, hdu):
        axis = edges_axis(hdu, "ENERG_LO", "ENERG_HI", "energy_true", path)
        values = get_column(hdu, "SPECRESP", path).astype(np.float64)
        bad = bad_bins(values)
        if bad:
            raise DataFormatError(
                f"{path}: SPECRESP column SPECRESP has negative or non-finite (NaN) values in bins {bad}; "
                "the effective area must be finite and >= 0"
            )
        return axis, u.Quantity(values, column_unit(hdu, "SPECRESP"))


def read_rmf(filename, role="RMF file", checksum=False):
    """Redistribution matrix of an OGIP RMF.

    Returns
    -------
    energy_axis_true : `MapAxis`
        From ``ENERG_LO`` / ``ENERG_HI`` (often float32).
    energy_axis : `MapAxis`
        From the RMF's ``EBOUNDS``.
    matrix : ndarray, shape (n_energy_true, n_channels)
        ``pdf[true, reco]``.
    """
    path = Path(filename)
    hint = "An OGIP RMF holds a MATRIX extension."
    with open_hdu(path, role, ("MATRIX", "SPECRESP MATRIX"), hint, checksum) as (hdul, hdu):
        if "EBOUNDS" not in hdul:
            raise DataFormatError(
                f"{path}: RMF has no EBOUNDS HDU (HDUs present: {hdu_names(hdul)})"
            )
        energy_axis = _ebounds_axis(hdul, path)
        axis_true = edges_axis(hdu, "ENERG_LO", "ENERG_HI", "energy_true", path)
        detchans = _detchans(hdu.header, path, hdu.name, default=energy_axis.nbin)
        if detchans != energy_axis.nbin:
            raise GeometryMismatchError(
                f"{path}: MATRIX DETCHANS = {detchans} but EBOUNDS has {energy_axis.nbin} channels"
            )
        colnames = [c.upper() for c in hdu.columns.names]
        for column in ("N_GRP", "F_CHAN", "N_CHAN", "MATRIX"):
            if column not in colnames:
                raise DataFormatError(
                    f"{path}: {hdu.name} HDU has no column {column!r} (columns: {hdu.columns.names})"
                )
        fchan_index = colnames.index("F_CHAN") + 1
        tlmin = hdu.header.get(f"TLMIN{fchan_index}")
        if tlmin not in (None, 0):
            log.warning(
                "%s: F_CHAN has TLMIN%s = %s; it is read as a 0-based index, as gammapy does",
                path,
                fchan_index,
                tlmin,
            )
        n_grp = np.asarray(hdu.data.field("N_GRP"))
        f_chan = hdu.data.field("F_CHAN")
        n_chan = hdu.data.field("N_CHAN")
        values = hdu.data.field("MATRIX")
        matrix = np.zeros((axis_true.nbin, detchans), dtype=np.float64)
        for i in range(axis_true.nbin):
            groups = int(n_grp[i])
            if groups == 0:
                continue
            starts = np.atleast_1d(np.asarray(f_chan[i])).astype(np.int64)
            widths = np.atleast_1d(np.asarray(n_chan[i])).astype(np.int64)
            row = np.atleast_1d(np.asarray(values[i], dtype=np.float64))
            pos = 0
            for k in range(groups):
                start, width = starts[k], widths[k]
                if start < 0 or start + width > detchans or pos + width > row.size:
                    raise DataFormatError(
                        f"{path}: MATRIX row {i} group {k} (F_CHAN={start}, N_CHAN={width}) lies outside the "
                        f"{detchans} channels or the row's {row.size} matrix values"
                    )
                matrix[i, start : start + width] = row[pos : pos + width]
                pos += width
        bad = bad_bins(matrix.ravel())
        if bad:
            raise DataFormatError(
                f"{path}: MATRIX has negative or non-finite entries; the RMF is corrupt"
            )
        edges = axis_true.edges
        check_response_sums(
            matrix.sum(axis=1),
            path,
            hdu.name,
            lambda i: f"row {i[0]} (true energy {edges[i[0]]:.4g} to {edges[i[0] + 1]:.4g})",
        )
    return axis_true, energy_axis, matrix


# ---------------------------------------------------------------------------------------------- writers
def spectrum_header(dataset, n_channels, hduclas2, livetime_s, names):
    meta = dataset.meta or {}
    header = fits.Header()
    header["TELESCOP"] = str(meta.get("telescop", "unknown"))
    header["INSTRUME"] = str(meta.get("instrume", "unknown"))
    header["FILTER"] = "None"
    header["HDUCLASS"] = ("OGIP", "format conforms to OGIP standard")
    header["HDUCLAS1"] = "SPECTRUM"
    header["HDUCLAS2"] = hduclas2
    header["HDUCLAS3"] = "COUNT"
    header["HDUCLAS4"] = "TYPE:1"
    header["HDUVERS"] = "1.2.1"
    header["CHANTYPE"] = "PHA"
    header["DETCHANS"] = n_channels
    header["POISSERR"] = True
    header["CORRFILE"] = ""
    header["CORRSCAL"] = ""
    header["AREASCAL"] = 1.0
    header["EXPOSURE"] = (livetime_s, "[s] livetime")
    header["OBS_ID"] = dataset.name  # gammapy names a dataset read from OGIP by str(OBS_ID)
    header["ANCRFILE"] = names["arf"].name
    if names.get("bkg") is not None:
        header["BACKFILE"] = names["bkg"].name
    if names.get("rmf") is not None:
        header["RESPFILE"] = names["rmf"].name
    return header


def _counts_column(counts):
    counts = np.asarray(counts, dtype=np.float64)
    if np.all(counts == np.round(counts)) and counts.max(initial=0) < 2**31:
        return fits.Column(name="COUNTS", format="J", array=counts.astype(np.int32), unit="count")
    log.info("counts are not integers: writing the COUNTS column as float64")
    return fits.Column(name="COUNTS", format="D", array=counts, unit="count")


def _ebounds_hdu(energy_axis):
    cols = [
        fits.Column(name="CHANNEL", format="J", array=np.arange(energy_axis.nbin, dtype=np.int32)),
        *edge_columns(energy_axis.edges, "E_MIN", "E_MAX"),
    ]
    hdu = fits.BinTableHDU.from_columns(cols, name="EBOUNDS")
    return set_header(
        hdu,
        {
            "TELESCOP": "DUMMY",
            "INSTRUME": "DUMMY",
            "FILTER": "None",
            "CHANTYPE": "PHA",
            "DETCHANS": energy_axis.nbin,
            "HDUCLASS": "OGIP",
            "HDUCLAS1": "RESPONSE",
            "HDUCLAS2": "EBOUNDS",
            "HDUVERS": "1.2.0",
        },
    )


def pha_hdulist(
    dataset, counts, backscal, header, region_geom, extra_columns=(), gti=None, meta_table=None
):
    n = counts.size
    mask_safe = (
        dataset.mask_safe.data.reshape(n).astype(bool)
        if dataset.mask_safe is not None
        else np.ones(n, bool)
    )
    quality = np.where(mask_safe, 0, _QUALITY_BAD).astype(np.int16)
    cols = [
        fits.Column(name="CHANNEL", format="J", array=np.arange(n, dtype=np.int32)),
        _counts_column(counts),
        fits.Column(name="QUALITY", format="I", array=quality),
        fits.Column(name="BACKSCAL", format="D", array=np.asarray(backscal, np.float64)),
        *extra_columns,
    ]
    spectrum = fits.BinTableHDU.from_columns(cols, header=header, name="SPECTRUM")
    hdulist = fits.HDUList([fits.PrimaryHDU(), spectrum, _ebounds_hdu(region_geom.axis("energy"))])
    if region_geom.region is not None:
        hdulist.append(region_to_table_hdu(region_geom.region, region_geom.wcs, "REGION"))
    if gti is not None:
        hdulist.append(table_hdu(gti, "GTI"))
    if meta_table is not None:
        hdulist.append(table_hdu(meta_table, "META_TABLE"))
    return hdulist


def arf_hdulist(exposure, livetime_s):
    axis = exposure.geom.axis("energy_true")
    specresp = exposure.quantity.reshape(axis.nbin) / (livetime_s * u.s)
    cols = [
        *edge_columns(axis.edges, "ENERG_LO", "ENERG_HI"),
        fits.Column(
            name="SPECRESP",
            format="D",
            array=specresp.value,
            unit=specresp.unit.to_string("fits")
            if _fits_unit_ok(specresp.unit)
            else str(specresp.unit),
        ),
    ]
    hdu = fits.BinTableHDU.from_columns(cols, name="SPECRESP")
    set_header(
        hdu,
        {
            "TELESCOP": "unknown",
            "INSTRUME": "unknown",
            "FILTER": "None",
            "HDUCLASS": "OGIP",
            "HDUCLAS1": "RESPONSE",
            "HDUCLAS2": "SPECRESP",
            "HDUVERS": "1.1.0",
        },
    )
    return fits.HDUList([fits.PrimaryHDU(), hdu])


def _fits_unit_ok(unit):
    try:
        unit.to_string("fits")
        return True
    except (ValueError, u.UnitsError):
        return False


def rmf_hdulist(edisp, energy_axis):
    pdf = edisp.pdf_matrix
    n_grp, f_chan, n_chan, values = [], [], [], []
    for row in pdf:
        pos = np.flatnonzero(row)
        groups = np.split(pos, np.flatnonzero(np.diff(pos) != 1) + 1) if pos.size else []
        n_grp.append(len(groups))
        f_chan.append(np.array([g[0] for g in groups], dtype=np.int32))
        n_chan.append(np.array([g.size for g in groups], dtype=np.int32))
        values.append(row[pos].astype(np.float64))
    cols = [
        *edge_columns(edisp.energy_axis_true.edges, "ENERG_LO", "ENERG_HI"),
        fits.Column(name="N_GRP", format="I", array=np.asarray(n_grp, dtype=np.int16)),
        fits.Column(
            name="F_CHAN", format="PJ()", array=np.array(f_chan + [None], dtype=object)[:-1]
        ),
        fits.Column(
            name="N_CHAN", format="PJ()", array=np.array(n_chan + [None], dtype=object)[:-1]
        ),
        fits.Column(
            name="MATRIX", format="PD()", array=np.array(values + [None], dtype=object)[:-1]
        ),
    ]
    hdu = fits.BinTableHDU.from_columns(cols, name="MATRIX")
    set_header(
        hdu,
        {
            "TELESCOP": "unknown",
            "INSTRUME": "unknown",
            "FILTER": "None",
            "CHANTYPE": "PHA",
            "HDUCLASS": "OGIP",
            "HDUCLAS1": "RESPONSE",
            "HDUCLAS2": "RSP_MATRIX",
            "HDUVERS": "1.3.0",
            "DETCHANS": energy_axis.nbin,
            "NUMGRP": int(np.sum(n_grp)),
            "NUMELT": int(sum(v.size for v in values)),
            "TLMIN4": 0,
            "TLMAX4": energy_axis.nbin - 1,
        },
    )
    return fits.HDUList([fits.PrimaryHDU(), hdu, _ebounds_hdu(energy_axis)])
