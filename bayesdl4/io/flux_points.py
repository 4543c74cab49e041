"""Flux points files: gammapy 2.1's SED tables (``gadf-sed``) and light curves (``lightcurve``).

A flux points table has one row per energy bin (``gadf-sed``) or per time bin with one array
entry per energy bin (``lightcurve``, columns ``time_min`` / ``time_max`` in MJD). Columns:

- energies: ``e_ref`` and / or ``e_min``, ``e_max``;
- the SED of ``SED_TYPE`` (header keyword; guessed from the columns when absent, as gammapy):
  ``dnde``, ``e2dnde``, ``flux``, ``eflux`` or ``likelihood`` (``norm`` with its reference
  ``ref_dnde``, ``ref_flux``, ``ref_eflux``), with ``_err``, ``_errn``, ``_errp``, ``_ul``;
- ``ts``, ``sqrt_ts``, ``is_ul``, ``success``, ``stat``, ``stat_null``, ``npred``, ``counts``,
  ...; likelihood profiles ``stat_scan`` over ``norm_scan`` (``loglike`` / ``dloglike_scan``
  columns of the GADF spec are read as ``stat = 2 loglike``, as gammapy);
- header: ``UL_CONF`` (confidence of the upper limits, -> ``n_sigma_ul``).

FITS files hold the table in the ``FLUXPOINTS`` HDU (older files: the first table HDU) and the
good time intervals in ``GTI``; ECSV files hold the table alone. Writing produces what gammapy
2.1's ``FluxPoints.write`` produces (the same columns, in the same order and units; a
light curve's header has ``MJDREFI = MJDREFF = 0``, ``TIMEUNIT = d`` and no ``SED_TYPE``), and
``FluxPointsDataset`` files add the ``mask_fit`` and ``mask_safe`` columns in a ``TABLE`` HDU.

Light-curve times are read as ``MJD = MJDREFI + MJDREFF + value [TIMEUNIT]`` in ``TIMESYS``.
gammapy 2.1 adds the values to ``Time(MJDREF)`` instead, which for UTC files (its own, with
``MJDREF = 0``) goes through the leap seconds since 1858 and moves every bin 34 s earlier
(2010-2016 data); here the MJD values of the file are kept.
"""

import logging
import os
import tempfile
from pathlib import Path

import numpy as np
from astropy import units as u
from astropy.io import fits
from astropy.table import Table, vstack
from astropy.time import Time
from scipy import stats

from ..datasets.flux_points import (
    COMMON_QUANTITIES,
    DEFAULT_UNIT,
    FluxPoints,
    canonical_sed_type,
    sed_quantities,
)
from ..errors import DataFormatError
from ..utils.fileio import check_overwrite
from ._fits import open_fits, table_hdu, write_hdulists
from .map_dataset import expand_path

__all__ = [
    "read_flux_points",
    "write_flux_points",
    "flux_points_from_table",
    "flux_points_to_table",
    "read_flux_points_dataset",
    "write_flux_points_dataset",
    "flux_points_dataset_to_hdulist",
]

log = logging.getLogger(__name__)

# gammapy's REQUIRED_COLUMNS, in the order its SED-type guess tries them
REQUIRED_COLUMNS = {
    "dnde": ["e_ref", "dnde"],
    "e2dnde": ["e_ref", "e2dnde"],
    "flux": ["e_min", "e_max", "flux"],
    "eflux": ["e_min", "e_max", "eflux"],
    "likelihood": ["e_min", "e_max", "e_ref", "ref_dnde", "ref_flux", "ref_eflux", "norm"],
}
_FITS_SUFFIXES = (".fits", ".fit", ".fts")


def all_quantities(sed_type):
    """gammapy's ``FluxMaps.all_quantities``: the column order of its tables."""
    names = sed_quantities(sed_type)
    if sed_type != "likelihood":  # gammapy lists errp before errn for the flux SED types
        names[2], names[3] = names[3], names[2]
    return names + list(COMMON_QUANTITIES)


def _guess_sed_type(colnames):
    for sed_type, required in REQUIRED_COLUMNS.items():
        if set(required) <= set(colnames):
            return sed_type
    return None


def _standard_unit(unit):
    """gammapy's ``standardise_unit``: drop ``ph`` and ``ct`` from a unit."""
    unit = u.Unit(unit)
    keep = [(b, p) for b, p in zip(unit.bases, unit.powers, strict=True) if str(b) not in ("ph", "ct")]
    return u.CompositeUnit(unit.scale, [b for b, _ in keep], [p for _, p in keep])


def _column(table, name, source):
    """Column ``name`` as (float or bool array with NaN / False for masked entries, unit or None)."""
    col = table[name]
    data = col.data
    if np.ma.isMaskedArray(data):
        fill = False if data.dtype == bool else np.nan
        data = data.filled(fill) if data.dtype.kind in "fb" else data.filled()
    if data.dtype.kind not in "fiub":
        raise DataFormatError(f"{source}: column {name!r} is not numeric (dtype {data.dtype})")
    unit = None
    if col.unit is not None and str(col.unit) != "":
        try:
            unit = _standard_unit(col.unit)
        except ValueError as exc:
            raise DataFormatError(f"{source}: column {name!r} has an unknown unit ({exc})") from exc
    return np.array(data, dtype=data.dtype.newbyteorder("=")), unit


def _flat(values, name, source):
    """One row of a light curve's per-row energy column (gammapy's ``flat_if_equal``)."""
    if values.ndim == 2:
        if not np.all(values == values[0]):
            raise DataFormatError(
                f"{source}: column {name!r} differs between time bins; a light curve needs the same "
                "energy bins in every row"
            )
        return values[0]
    return values


def _energies(table, format, source):
    found = {}
    for name in ("e_ref", "e_min", "e_max"):
        if name in table.colnames:
            values, unit = _column(table, name, source)
            values = _flat(values, name, source) if format == "lightcurve" else values
            found[name] = u.Quantity(values.astype(float), unit or u.TeV)
    if "e_min" in found and "e_max" in found:
        return found.get("e_ref"), found["e_min"], found["e_max"]
    if "e_ref" in found:
        return found["e_ref"], None, None
    raise DataFormatError(f"{source}: flux points need the column 'e_ref', or 'e_min' and 'e_max'")


def _times(table, source):
    meta = table.meta
    scale = str(meta.get("TIMESYS", "utc")).lower()
    unit = u.Unit(meta.get("TIMEUNIT", "d"))
    try:
        mjdref = (float(meta.get("MJDREFI", 0)), float(meta.get("MJDREFF", 0)))
        out = []
        for name in ("time_min", "time_max"):
            days = (_column(table, name, source)[0].astype(float) * unit).to_value("d")
            # MJD = MJDREF + value, as two doubles; no Time arithmetic (module docstring)
            out.append(Time(mjdref[0], mjdref[1] + days, format="mjd", scale=scale))
    except ValueError as exc:
        raise DataFormatError(f"{source}: bad time columns or MJDREF* / TIMESYS ({exc})") from exc
    if np.any(out[1] <= out[0]):
        raise DataFormatError(f"{source}: columns time_min / time_max: every bin needs time_max > time_min")
    return out


def flux_points_from_table(table, sed_type=None, format=None, reference_model=None,
                           source="table", gti=None):
    """`FluxPoints` from a gammapy flux points table (`~astropy.table.Table`).

    Parameters
    ----------
    table : `~astropy.table.Table`
    sed_type : {"dnde", "e2dnde", "flux", "eflux", "likelihood", "norm"}, optional
        Default: the ``SED_TYPE`` keyword, else guessed from the columns (as gammapy).
    format : {"gadf-sed", "lightcurve"}, optional
        Default: ``lightcurve`` when there is a ``time_min`` column.
    reference_model : SpectralModel, optional
        Default: for norm tables the template ``(e_ref, ref_dnde)``, otherwise a power law of
        index 2.
    source : str
        File name (or description) for error messages.
    gti : `~astropy.table.Table`, optional

    Raises
    ------
    DataFormatError
        Unknown SED type, missing columns, norm points without a reference, negative errors,
        energies not increasing; the message names the source and the column.
    """
    table = Table(table)
    if format is None:
        format = "lightcurve" if "time_min" in table.colnames else "gadf-sed"
        if "x_min" in table.colnames:
            format = "profile"
    if format not in ("gadf-sed", "lightcurve"):
        raise DataFormatError(
            f"{source}: flux points format {format!r} is not supported; use 'gadf-sed' or 'lightcurve'"
        )
    if sed_type is None:
        sed_type = table.meta.get("SED_TYPE") or _guess_sed_type(table.colnames)
    if sed_type is None:
        raise DataFormatError(
            f"{source}: no SED_TYPE keyword and the columns {table.colnames} match no SED type "
            f"(each needs {REQUIRED_COLUMNS}); pass sed_type="
        )
    sed_type = canonical_sed_type(str(sed_type).strip(), source)
    if sed_type == "likelihood":
        for old, new in (("loglike", "stat"), ("loglike_null", "stat_null"),
                         ("dloglike_scan", "stat_scan")):
            if old in table.colnames and new not in table.colnames:
                table[new] = 2 * table[old]
    energy_ref, energy_min, energy_max = _energies(table, format, source)
    if sed_type == "likelihood" and reference_model is None:
        reference_model = _template_reference(table, format, source)

    values, units = {}, {}
    names = all_quantities(sed_type)
    for name in names:
        if name not in table.colnames:
            continue
        data, unit = _column(table, name, source)
        if name in COMMON_QUANTITIES:
            values[name] = data
            if unit is not None and unit != u.dimensionless_unscaled:
                units[name] = unit
        else:
            values[name] = u.Quantity(data.astype(float), unit or DEFAULT_UNIT.get(sed_type, ""))
    norm_scan = None
    if "stat_scan" in values:
        if "norm_scan" not in table.colnames:
            raise DataFormatError(f"{source}: column 'stat_scan' needs the column 'norm_scan'")
        norm_scan = _column(table, "norm_scan", source)[0].astype(float)
    meta = {k: v for k, v in table.meta.items() if k not in ("comments",)}
    meta["sed_type_init"] = sed_type
    conf_ul = table.meta.get("UL_CONF")
    if conf_ul:
        meta["n_sigma_ul"] = float(np.round(stats.norm.isf(0.5 * (1 - float(conf_ul))), 1))
    time_min = time_max = None
    if format == "lightcurve":
        time_min, time_max = _times(table, source)
    return FluxPoints.from_sed(
        sed_type, values, energy_ref=energy_ref, energy_min=energy_min, energy_max=energy_max,
        reference_model=reference_model, norm_scan=norm_scan, meta=meta, gti=gti,
        time_min=time_min, time_max=time_max, units=units, source=source,
    )


def _template_reference(table, format, source):
    """gammapy's reference of norm tables: the template (e_ref, ref_dnde), log-log interpolated."""
    from ..models import TemplateSpectralModel

    missing = [c for c in ("e_ref", "ref_dnde") if c not in table.colnames]
    if missing:
        raise DataFormatError(
            f"{source}: norm flux points (SED_TYPE likelihood) need a reference model: the table "
            f"has no column {missing[0]!r}; add 'e_ref' and 'ref_dnde' or pass reference_model="
        )
    energy, unit = _column(table, "e_ref", source)
    ref, ref_unit = _column(table, "ref_dnde", source)
    if format == "lightcurve":
        energy, ref = _flat(energy, "e_ref", source), _flat(ref, "ref_dnde", source)
    ref = u.Quantity(ref.astype(float), ref_unit or DEFAULT_UNIT["dnde"])
    if not np.all(np.isfinite(ref.value)) or np.any(ref.value <= 0):
        raise DataFormatError(f"{source}: column 'ref_dnde' must be positive and finite")
    return TemplateSpectralModel(energy=u.Quantity(energy.astype(float), unit or u.TeV), values=ref)


# ---------------------------------------------------------------------------------------- writing
def _sed_table(fp, sed_type, time_index=None):
    """gammapy's ``to_table(format="gadf-sed")`` of all points, or of one time bin."""
    index = (Ellipsis,) if time_index is None else (time_index,)
    table = Table()
    table["e_ref"] = fp.energy_ref
    if fp.energy_min is not None:
        table["e_min"] = fp.energy_min
        table["e_max"] = fp.energy_max
    table.meta["SED_TYPE"] = sed_type
    if fp.n_sigma_ul:
        table.meta["UL_CONF"] = np.round(1 - 2 * stats.norm.sf(fp.n_sigma_ul), 7)
    if sed_type == "likelihood":
        table["ref_dnde"] = fp.reference_value("dnde")
        if fp.is_convertible_to_flux_sed_type:
            table["ref_flux"] = fp.reference_value("flux")
            table["ref_eflux"] = fp.reference_value("eflux")
    for name in all_quantities(sed_type):
        try:
            value = fp.get(name)
        except AttributeError:
            continue
        if name in ("sqrt_ts",) and not fp.has_any_ts:
            continue
        value = value[index]
        if isinstance(value, u.Quantity) and name not in COMMON_QUANTITIES:
            value = value.to(DEFAULT_UNIT[sed_type]) if sed_type != "likelihood" else value
        table[name] = value
    if fp.has_stat_profiles:
        table["norm_scan"] = fp.norm_scan[index]
        table["stat"] = fp.get("stat")[index]
        table["stat_scan"] = fp.get("stat_scan")[index]
    table["is_ul"] = fp.is_ul[index]
    if not fp.has_ul:
        table.remove_column("is_ul")
    return table


def flux_points_to_table(fp, sed_type=None, format=None):
    """gammapy 2.1's ``FluxPoints.to_table``: the table ``write`` stores.

    Parameters
    ----------
    fp : `FluxPoints`
    sed_type : {"dnde", "e2dnde", "flux", "eflux", "likelihood", "norm"}, optional
        Default: the SED type the points were read or built with.
    format : {"gadf-sed", "lightcurve"}, optional
        Default: ``lightcurve`` for points with time bins.
    """
    sed_type = canonical_sed_type(sed_type or fp.sed_type_init, fp.source, column="sed_type")
    if sed_type in ("flux", "eflux"):
        fp.reference_value(sed_type)  # DataFormatError without edges
    if format is None:
        format = "gadf-sed" if fp.time_min is None else "lightcurve"
    if format == "gadf-sed":
        if fp.time_min is not None:
            raise DataFormatError(
                f"{fp.source}: points with time bins are written in the 'lightcurve' format"
            )
        return _sed_table(fp, sed_type)
    if format != "lightcurve":
        raise DataFormatError(f"{fp.source}: format must be 'gadf-sed' or 'lightcurve', got {format!r}")
    if fp.time_min is None:
        raise DataFormatError(f"{fp.source}: the 'lightcurve' format needs time bins")
    rows = []
    for i in range(len(fp.time_min)):
        flat = Table()
        flat["time_min"] = [fp.time_min[i].mjd]
        flat["time_max"] = [fp.time_max[i].mjd]
        for column in _sed_table(fp, sed_type, time_index=i).columns.values():
            flat[column.name] = column[np.newaxis]
        rows.append(flat)
    table = vstack(rows)
    table.meta.clear()
    table.meta.update(MJDREFI=0, MJDREFF=0.0, TIMESYS=fp.time_min.scale, TIMEUNIT="d")
    return table


# ---------------------------------------------------------------------------------------- files
def _is_fits(path):
    with open(path, "rb") as handle:
        start = handle.read(6)
    return start in (b"SIMPLE",) or start[:2] == b"\x1f\x8b"


def _read_table(path, role):
    """(table, GTI table or None) of a flux points file (FITS or ECSV)."""
    if not path.is_file():
        from ..errors import DataFileNotFoundError

        raise DataFileNotFoundError(f"{role} {path} does not exist; check the path")
    if _is_fits(path):
        with open_fits(path, role) as hdulist:
            tables = [h for h in hdulist if isinstance(h, fits.BinTableHDU)]
            names = [h.name for h in hdulist]
            hdu = next((h for h in tables if h.name in ("FLUXPOINTS", "TABLE")), None)
            if hdu is None:
                hdu = next((h for h in tables if h.name not in ("GTI",)), None)
            if hdu is None:
                raise DataFormatError(f"{role} {path}: no table HDU with flux points (HDUs: {names})")
            table = Table.read(hdu)
            gti = Table.read(hdulist["GTI"]) if "GTI" in hdulist else None
        return table, gti
    try:
        return Table.read(path, format="ascii.ecsv"), None
    except Exception as exc:  # astropy raises many types on a file that is not ECSV
        raise DataFormatError(
            f"{role} {path} is neither FITS nor ECSV ({exc}); flux points are read from gammapy's "
            "FITS or ECSV files"
        ) from exc


def read_flux_points(filename, sed_type=None, format=None, reference_model=None):
    """Read flux points written by gammapy 2.1 (FITS or ECSV; see the module docstring).

    Parameters
    ----------
    filename : str or Path
        May contain environment variables (``$GAMMAPY_DATA/...``).
    sed_type, format, reference_model
        See `flux_points_from_table`.

    Returns
    -------
    `~bayesdl4.datasets.flux_points.FluxPoints`
    """
    path = expand_path(filename)
    table, gti = _read_table(path, "flux points file")
    return flux_points_from_table(table, sed_type=sed_type, format=format,
                                  reference_model=reference_model, source=str(path), gti=gti)


def _write_table(table, path, overwrite, hdu_name, gti=None):
    """FITS (``hdu_name`` + optional GTI) or ECSV by suffix, all or nothing."""
    path = Path(path)
    if any(s in _FITS_SUFFIXES for s in path.suffixes):
        hdulist = fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU(table, name=hdu_name)])
        if gti is not None:
            hdulist.append(table_hdu(gti, "GTI"))
        return write_hdulists({path: hdulist}, overwrite=overwrite)[0]
    if path.suffix != ".ecsv":
        raise DataFormatError(
            f"{path}: flux points are written as FITS ('.fits', '.fits.gz') or ECSV ('.ecsv')"
        )
    check_overwrite(path, overwrite)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".ecsv", dir=path.parent)
    os.close(fd)
    try:
        table.write(tmp, format="ascii.ecsv", overwrite=True)
        check_overwrite(path, overwrite)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def write_flux_points(fp, filename, sed_type=None, format=None, overwrite=False):
    """Write flux points as gammapy 2.1's ``FluxPoints.write`` (FITS by suffix, else ECSV).

    Returns the path written.
    """
    table = flux_points_to_table(fp, sed_type=sed_type, format=format)
    return _write_table(table, expand_path(filename), overwrite, "FLUXPOINTS", gti=fp.gti)


# ---------------------------------------------------------------------------------------- datasets
def _dataset_table(dataset):
    table = flux_points_to_table(dataset.data)
    mask_safe = dataset.mask_safe
    mask_fit = mask_safe if dataset.mask_fit is None else dataset.mask_fit
    # shape (n, 1, 1), gammapy's map shape: with (n,) gammapy 2.1 broadcasts the masks against
    # its (n, 1, 1) validity mask to (n, 1, n) and cannot evaluate the dataset
    table["mask_fit"] = mask_fit.reshape(-1, 1, 1)
    table["mask_safe"] = mask_safe.reshape(-1, 1, 1)
    return table


def flux_points_dataset_to_hdulist(dataset):
    """The FITS file gammapy 2.1's ``FluxPointsDataset.write`` makes: the flux points table with
    ``mask_fit`` and ``mask_safe`` columns in a ``TABLE`` HDU (``mask_safe`` includes the points
    the stat type cannot use, as gammapy writes it)."""
    return fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU(_dataset_table(dataset), name="TABLE")])


def write_flux_points_dataset(dataset, filename, overwrite=False):
    """Write a `FluxPointsDataset` as gammapy 2.1 (FITS ``TABLE`` HDU, or ECSV by suffix)."""
    return _write_table(_dataset_table(dataset), expand_path(filename), overwrite, "TABLE")


def _mask_column(values, column, path):
    """A point mask from gammapy's column: (n,), (n, 1, 1), or the (n, 1, n) broadcast gammapy
    2.1 writes for a 1D ``mask_safe`` (``mask_valid[i] & mask_safe[j]``: its diagonal)."""
    values = values.astype(bool)
    n = values.shape[0]
    if values.ndim == 1:
        return values
    if values.shape[1:] == (1,) * (values.ndim - 1):
        return values.reshape(n)
    if values.shape == (n, 1, n):
        return values[np.arange(n), 0, np.arange(n)]
    raise DataFormatError(f"{path}: column {column!r} has shape {values.shape}; expected ({n},)")


def read_flux_points_dataset(filename, name=None, dataset_class=None, stat_type="chi2"):
    """Read a `FluxPointsDataset` file (or any flux points file: masks default to all points)."""
    if dataset_class is None:
        from ..datasets.flux_points_dataset import FluxPointsDataset as dataset_class
    path = expand_path(filename)
    table, gti = _read_table(path, "flux points dataset file")
    masks = {}
    for column in ("mask_fit", "mask_safe"):
        if column in table.colnames:
            masks[column] = _mask_column(_column(table, column, str(path))[0], column, path)
            table.remove_column(column)
    data = flux_points_from_table(table, source=str(path), gti=gti)
    return dataset_class(data=data, name=name, stat_type=stat_type, meta={"filenames": [str(path)]},
                         **masks)
