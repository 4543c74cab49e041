"""GADF sky maps in FITS: an image HDU plus a ``<NAME>_BANDS`` table with the non-spatial axes.

Reads and writes what gammapy 2.1 reads and writes (``Map.read`` / ``Map.write``):

- the image HDU carries the celestial WCS, ``WCSSHAPE = (nx,ny,n_0,...)``, ``BUNIT``, ``META``
  (JSON) and ``BANDSHDU`` naming the bands table;
- the bands table has ``CHANNEL`` and, per axis, ``NAME, NAME_MIN, NAME_MAX`` columns (``ENERGY,
  E_MIN, E_MAX`` for reconstructed energy) with ``AXCOLSi`` / ``INTERPi`` keywords saying which
  columns define the axis: two columns (``X_MIN,X_MAX``) for an edges axis, one (``X``) for a
  nodes axis such as ``THETA`` / ``rad`` sampled at bin centres;
- Fermi-LAT science-tools cubes are read too: ``EBOUNDS`` (counts cubes, ``E_MIN/E_MAX`` in keV)
  and ``ENERGIES`` (exposure / template cubes: true-energy nodes in MeV).

Not supported (a `DataFormatError` says so): HEALPix maps, region maps, multi-resolution
(``NPIX`` column) geometries, label and time axes.
"""

from __future__ import annotations

import json
import logging

import numpy as np
from astropy import units as u
from astropy.io import fits
from astropy.table import Table

from ..errors import DataFormatError, GeometryMismatchError
from ..maps.axes import MapAxis
from ..maps.wcs import WcsGeom, _parse_wcsshape
from ..maps.wcsmap import WcsNDMap
from ..utils.fileio import atomic_path
from ._fits import read_fits

__all__ = [
    "read_map",
    "read_map_hdu",
    "write_map",
    "map_to_hdulist",
    "find_bands_hdu",
    "axes_from_bands_hdu",
    "axes_to_bands_hdu",
    "axes_to_header",
    "geom_to_header",
]

log = logging.getLogger(__name__)

# gammapy stores these maps as integers and reads them back as booleans (by HDU name)
_BOOL_HDU_TAGS = ("mask", "is_ul", "success")


def _describe(hdulist) -> str:
    name = hdulist.filename() if hasattr(hdulist, "filename") else None
    return str(name) if name else "<in-memory HDU list>"


def _hdu_names(hdulist) -> list[str]:
    return [hdu.name for hdu in hdulist]


def _get_hdu(hdulist, key, role="map"):
    """HDU ``key`` (name or index) or a DataFormatError naming the file and listing the HDUs."""
    try:
        return hdulist[key]
    except (KeyError, IndexError) as exc:
        raise DataFormatError(
            f"{_describe(hdulist)}: no {role} HDU {key!r}; available HDUs: {_hdu_names(hdulist)}"
        ) from exc


def find_bands_hdu(hdulist, hdu) -> str | None:
    """Name of the bands HDU for image ``hdu``, as gammapy finds it.

    The ``BANDSHDU`` keyword if present; otherwise ``EBOUNDS`` or ``ENERGIES`` (Fermi cubes) for
    a 3D image; otherwise None (a 2D image without axes).
    """
    if "BANDSHDU" in hdu.header:
        return hdu.header["BANDSHDU"]
    is_cube = False
    if isinstance(hdu, fits.ImageHDU | fits.PrimaryHDU) and hdu.header.get("NAXIS") == 3:
        is_cube = True
    elif isinstance(hdu, fits.BinTableHDU):
        is_cube = (
            hdu.header.get("INDXSCHM", "") in ("EXPLICIT", "IMPLICIT", "") and len(hdu.columns) > 1
        )
    if is_cube:
        for name in ("EBOUNDS", "ENERGIES"):
            if name in hdulist:
                return name
    return None


def _bands_format(hdu_bands) -> str:
    if hdu_bands is None:
        return "gadf"
    if hdu_bands.name == "ENERGIES":
        return "fgst-template"
    if hdu_bands.name == "EBOUNDS":
        return "fgst-ccube"
    return "gadf"


# axes <-> bands table -------------------------------------------------------------------
def axes_from_bands_hdu(hdu_bands, format=None) -> list[MapAxis]:
    """Non-spatial axes from a bands table HDU (``format`` guessed from the HDU name if None)."""
    if hdu_bands is None:
        return []
    format = _bands_format(hdu_bands) if format is None else format
    table = Table.read(hdu_bands)
    where = f"bands HDU {hdu_bands.name!r}"

    def column(name):
        if name not in table.colnames:
            raise DataFormatError(f"{where}: missing column {name!r}; columns: {table.colnames}")
        col = table[name]
        if col.dtype.kind in "USO":
            raise DataFormatError(
                f"{where}: column {name!r} holds labels; label axes are not supported"
            )
        return u.Quantity(np.asarray(col, dtype=float), col.unit or "")

    try:
        if format == "fgst-ccube":
            emin, emax = column("E_MIN"), column("E_MAX")
            edges = np.append(emin.value, emax.to_value(emin.unit)[-1]) * emin.unit
            return [MapAxis(edges, name="energy", interp="log")]
        if format == "fgst-template":
            for name in ("Energy", "ENERGY", "energy"):
                if name in table.colnames:
                    nodes = np.asarray(table[name], dtype=float)
                    return [MapAxis.from_nodes(nodes * u.MeV, name="energy_true", interp="log")]
            raise DataFormatError(f"{where}: no Energy column; columns: {table.colnames}")
        if format != "gadf":
            raise DataFormatError(f"{where}: unknown bands format {format!r}")

        if "NPIX" in table.colnames:
            raise DataFormatError(
                f"{where}: multi-resolution geometries (NPIX column) are not supported"
            )
        axes = []
        for idx in range(1, 6):
            axcols = table.meta.get(f"AXCOLS{idx}")
            if axcols is None:
                break
            colnames = [c.strip() for c in str(axcols).split(",")]
            if colnames[0] == "E_MIN":
                name = "energy"
            else:
                name = colnames[0].replace("_MIN", "").lower()
                if name == "theta":  # older gammapy files
                    name = "rad"
            if name == "time":
                raise DataFormatError(f"{where}: time axes are not supported")
            interp = str(table.meta.get(f"INTERP{idx}", "lin")).strip()
            if interp not in ("lin", "log"):
                raise DataFormatError(
                    f"{where}: axis {name!r} has interp {interp!r}; only 'lin' and 'log' are supported"
                )
            if len(colnames) == 1:
                nodes = np.unique(column(colnames[0]))
                axes.append(MapAxis.from_nodes(nodes, name=name, interp=interp))
            elif len(colnames) == 2:
                lo, hi = np.unique(column(colnames[0])), np.unique(column(colnames[1]))
                edges = np.append(lo.value, hi.to_value(lo.unit)[-1]) * lo.unit
                axes.append(MapAxis(edges, name=name, interp=interp))
            else:
                raise DataFormatError(
                    f"{where}: AXCOLS{idx}={axcols!r} must name one or two columns"
                )
        return axes
    except GeometryMismatchError as exc:
        raise DataFormatError(f"{where}: invalid axis: {exc}") from exc


def axes_to_header(axes) -> fits.Header:
    """``AXCOLSi`` / ``INTERPi`` keywords of the axes (i from 1), as gammapy writes them."""
    header = fits.Header()
    for idx, ax in enumerate(axes, start=1):
        name = ax.name.upper()
        if ax.name == "energy":
            header[f"AXCOLS{idx}"] = "E_MIN,E_MAX" if ax.node_type == "edges" else "ENERGY"
        else:
            header[f"AXCOLS{idx}"] = f"{name}_MIN,{name}_MAX" if ax.node_type == "edges" else name
        header[f"INTERP{idx}"] = ax.interp
    return header


def axes_to_bands_hdu(axes, hdu_bands="BANDS") -> fits.BinTableHDU:
    """Bands table: ``CHANNEL`` and, per axis, centre / min / max columns over all axis bins."""
    axes = list(axes)
    table = Table()
    shape = [ax.nbin for ax in axes]
    table["CHANNEL"] = np.arange(int(np.prod(shape)))

    def grid(attr):
        # CHANNEL runs over the flattened axis bins of the data, first axis fastest (as gammapy)
        mesh = np.meshgrid(*[getattr(ax, attr) for ax in reversed(axes)], indexing="ij")
        return mesh[::-1]

    grids = [grid(attr) for attr in ("center", "edges_min", "edges_max")]
    for idx, ax in enumerate(axes):
        name = ax.name.upper()
        colnames = (
            ["ENERGY", "E_MIN", "E_MAX"]
            if name == "ENERGY"
            else [name, f"{name}_MIN", f"{name}_MAX"]
        )
        for colname, grid in zip(colnames, grids, strict=True):
            table[colname] = np.ravel(grid[idx])
    return fits.BinTableHDU(table, name=hdu_bands, header=axes_to_header(axes))


def geom_to_header(geom: WcsGeom) -> fits.Header:
    """Image header of a geometry: WCS keywords, ``AXCOLSi``/``INTERPi`` and ``WCSSHAPE``."""
    header = geom.wcs.to_header()
    header.update(axes_to_header(geom.axes))
    header["WCSSHAPE"] = geom.to_header()["WCSSHAPE"]
    return header


# reading --------------------------------------------------------------------------------
def _first_hdu_with_data(hdulist):
    for hdu in hdulist:
        if hdu.header.get("NAXIS", 0) > 0:
            return hdu
    raise DataFormatError(f"{_describe(hdulist)}: no HDU with data; HDUs: {_hdu_names(hdulist)}")


def _unit_from_header(header, where) -> u.UnitBase:
    """``BUNIT`` as gammapy reads it: invalid -> dimensionless (with a warning); photons and counts dropped."""
    value = header.get("BUNIT", "")
    try:
        unit = u.Unit(value)
    except ValueError:
        log.warning("%s: invalid BUNIT=%r, using an empty unit", where, value)
        return u.dimensionless_unscaled
    bases, powers = [], []
    for base, power in zip(unit.bases, unit.powers, strict=True):
        if str(base) not in {"ph", "ct"}:
            bases.append(base)
            powers.append(power)
    return u.CompositeUnit(scale=unit.scale, bases=bases, powers=powers)


def _native(data):
    """Array in native byte order (FITS data are big-endian)."""
    data = np.asarray(data)
    if data.dtype.byteorder not in ("=", "|"):
        data = data.astype(data.dtype.newbyteorder("="))
    return data


def read_map_hdu(hdulist, hdu=None, hdu_bands=None) -> WcsNDMap:
    """Read one WCS map from an open HDU list (gammapy's ``WcsNDMap.from_hdulist``).

    Parameters
    ----------
    hdulist : `~astropy.io.fits.HDUList`
    hdu : str or int, optional
        HDU with the image (or sparse ``PIX/VALUE`` table); default the first HDU with data.
    hdu_bands : str or int, optional
        HDU with the axes; default from ``BANDSHDU`` (or ``EBOUNDS`` / ``ENERGIES`` for 3D images).

    Raises
    ------
    DataFormatError
        Missing HDU (the message lists the available HDUs), missing or inconsistent bands table,
        or a map type this package does not read.
    """
    source = _describe(hdulist)
    hdu_map = _first_hdu_with_data(hdulist) if hdu is None else _get_hdu(hdulist, hdu)
    where = f"{source}, HDU {hdu_map.name!r}"
    header = hdu_map.header

    if header.get("PIXTYPE") == "HEALPIX":
        raise DataFormatError(f"{where}: HEALPix maps are not supported; reproject to a WCS map")
    if "CTYPE1" not in header:
        raise DataFormatError(
            f"{where}: no celestial WCS (CTYPE1 missing), so it is not a WCS sky map "
            f"(a region map, an IRF table or a Fermi gtpsf PSF cube?); HDUs: {_hdu_names(hdulist)}"
        )

    if hdu_bands is None:
        hdu_bands = find_bands_hdu(hdulist, hdu_map)
    bands = None if hdu_bands is None else _get_hdu(hdulist, hdu_bands, role="bands")
    if bands is not None and not isinstance(bands, fits.BinTableHDU):
        raise DataFormatError(f"{where}: bands HDU {bands.name!r} is not a binary table")
    format = _bands_format(bands)
    axes = axes_from_bands_hdu(bands, format=format)

    try:
        geom = WcsGeom.from_header(header, axes=axes)
    except GeometryMismatchError as exc:
        raise DataFormatError(f"{where}: invalid geometry: {exc}") from exc
    if "WCSSHAPE" in header:
        shape = _parse_wcsshape(header["WCSSHAPE"])
        expected = (*geom.npix, *(ax.nbin for ax in axes))
        if shape != expected:
            raise DataFormatError(
                f"{where}: WCSSHAPE {shape} does not match the axes of bands HDU "
                f"{getattr(bands, 'name', None)!r} ({expected})"
            )

    if isinstance(hdu_map, fits.BinTableHDU):
        data = _read_sparse(hdu_map, geom, where)
    else:
        data = _native(hdu_map.data)
        if data.shape != geom.data_shape:
            bands_name = None if bands is None else bands.name
            raise DataFormatError(
                f"{where}: data shape {data.shape} does not match the geometry from the header and "
                f"bands HDU {bands_name!r} {geom.data_shape} (axes {[a.name for a in reversed(axes)]}, ny, nx); "
                "is the BANDS HDU missing or the wrong one?"
            )
        data = data.copy()

    if any(tag in hdu_map.name.lower() for tag in _BOOL_HDU_TAGS):
        data = data.astype(bool)

    unit = _unit_from_header(header, where)
    if unit == u.dimensionless_unscaled and format == "fgst-template":
        # Fermi template / exposure cubes carry no BUNIT; gammapy infers it
        unit = u.Unit("cm2 s") if "GTI" in hdulist else u.Unit("cm-2 s-1 MeV-1 sr-1")

    meta = {}
    if "META" in header:
        try:
            meta = json.loads(header["META"])
        except json.JSONDecodeError:
            log.warning("%s: META keyword is not valid JSON; ignored", where)
    return WcsNDMap(geom, data=data, unit=unit, meta=meta)


def _read_sparse(hdu, geom, where):
    """Data of a sparse map table (``PIX``, optional ``CHANNEL``, ``VALUE``)."""
    names = hdu.columns.names
    if "PIX" not in names or "VALUE" not in names:
        raise DataFormatError(f"{where}: binary-table map needs PIX and VALUE columns, has {names}")
    data = np.zeros(geom.data_shape, dtype=float)
    ny, nx = geom.data_shape[-2:]
    pix = np.unravel_index(np.asarray(hdu.data["PIX"], dtype=int), (ny, nx))
    axes_shape = geom.data_shape[:-2]
    if "CHANNEL" in names and axes_shape:
        chan = np.unravel_index(np.asarray(hdu.data["CHANNEL"], dtype=int), axes_shape)
        idx = chan + pix
    elif axes_shape:
        raise DataFormatError(f"{where}: sparse map with axes needs a CHANNEL column")
    else:
        idx = pix
    data[idx] = np.asarray(hdu.data["VALUE"], dtype=float)
    return data


def read_map(filename, hdu=None, hdu_bands=None) -> WcsNDMap:
    """Read a WCS map from a FITS file (see `read_map_hdu`)."""
    with read_fits(filename, "map file") as hdulist:
        return read_map_hdu(hdulist, hdu=hdu, hdu_bands=hdu_bands)


# writing --------------------------------------------------------------------------------
def map_to_hdulist(m: WcsNDMap, hdu=None, hdu_bands=None) -> fits.HDUList:
    """HDU list as gammapy's ``WcsNDMap.to_hdulist`` (format "gadf", not sparse).

    ``hdu`` defaults to PRIMARY (the image in the primary HDU); any other name gives an empty
    primary HDU followed by an image extension. ``hdu_bands`` defaults to ``<HDU>_BANDS``; no
    bands table is written for a map without non-spatial axes.
    """
    hdu = "PRIMARY" if hdu is None else str(hdu).upper()
    if hdu_bands is None:
        hdu_bands = f"{hdu}_BANDS"
    header = geom_to_header(m.geom)
    bands = None
    if m.geom.axes:
        bands = axes_to_bands_hdu(m.geom.axes, hdu_bands=str(hdu_bands).upper())
        header["BANDSHDU"] = bands.name
    data = m.data.astype(int) if m.is_mask else m.data
    if hdu == "PRIMARY":
        hdu_out = fits.PrimaryHDU(data, header=header)
    else:
        hdu_out = fits.ImageHDU(data, header=header, name=hdu)
    hdu_out.header["META"] = json.dumps(m.meta, default=str)
    hdu_out.header["BUNIT"] = m.unit.to_string("fits")
    hdus = [hdu_out] if hdu == "PRIMARY" else [fits.PrimaryHDU(), hdu_out]
    if bands is not None:
        hdus.append(bands)
    return fits.HDUList(hdus)


def write_map(m: WcsNDMap, filename, hdu=None, hdu_bands=None, overwrite=False) -> None:
    """Write a map to a FITS file atomically; refuses to replace a file unless ``overwrite=True``."""
    hdulist = map_to_hdulist(m, hdu=hdu, hdu_bands=hdu_bands)
    with atomic_path(filename, overwrite=overwrite) as tmp:
        hdulist.writeto(tmp)
