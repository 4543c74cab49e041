"""Gammapy's GADF layout for region-based (1D spectrum) datasets.

A spectrum dataset is one FITS file of region maps, as gammapy 2.1 ``SpectrumDatasetOnOff.write(format="gadf")``
writes it. Each map ``NAME`` is three HDUs:

- ``NAME``: a table with ``CHANNEL`` and ``DATA`` (one row per bin of the last axis, shape ``data_shape[1:]``
  per row), header ``AXCOLS<i>`` / ``INTERP<i>`` naming the axis columns;
- ``NAME_BANDS``: one row per bin of all axes (meshgrid, first axis fastest) with the axis centres and edges;
- ``NAME_REGION`` (optional): the ON region as a `regions` FITS table in pixel coordinates of a WCS whose
  header (plus ``WCSSHAPE``) is in the table header.

Maps: ``COUNTS``, ``EXPOSURE`` (``energy_true``), ``BACKGROUND`` (plain datasets), ``EDISP`` (axes
``energy``, ``energy_true``) with ``EDISP_EXPOSURE``, ``MASK_SAFE``, ``MASK_FIT``, ``COUNTS_OFF``,
``ACCEPTANCE``, ``ACCEPTANCE_OFF``; tables ``GTI`` and ``META_TABLE``; the primary header holds ``NAME``.
We add ``LIVETIME`` [s] and ``OBS_ID`` to the primary header (gammapy ignores them). gammapy keeps
``MASK_FIT`` in this format, so both masks round-trip without extra HDUs.
"""

import logging
import operator
from pathlib import Path

import numpy as np
from astropy import units as u
from astropy.io import fits
from astropy.table import QTable, Table
from astropy.wcs import WCS

from ..errors import DataFormatError, GeometryMismatchError
from ..irf import EDispKernel
from ..maps import MapAxis, RegionGeom, RegionNDMap
from ._fits import (
    bad_bins,
    check_header_text,
    check_response_sums,
    column_unit,
    get_column,
    get_hdu,
    hdu_names,
    make_axis,
    open_fits,
    set_header,
    table_hdu,
    write_hdulists,
)
from .provenance import record_read

__all__ = [
    "open_fits",
    "get_hdu",
    "get_column",
    "region_to_table_hdu",
    "region_from_table_hdu",
    "write_hdulists",
    "region_map_to_hdus",
    "region_map_from_hdulist",
    "spectrum_dataset_to_gadf_hdulist",
    "spectrum_dataset_from_gadf_hdulist",
    "read_gadf_spectrum",
    "write_gadf_spectrum",
]

log = logging.getLogger(__name__)

BINSZ_WCS_DEG = (
    0.1  # pixel size of the reference WCS made for a region without one (gammapy's default)
)


# ---------------------------------------------------------------------------------------------- regions
def _flatten_region(region):
    from regions import CompoundSkyRegion

    if isinstance(region, CompoundSkyRegion):
        if region.operator is not operator.or_:
            raise DataFormatError(
                f"region {region!r}: only unions of regions can be written to FITS (operator {region.operator})"
            )
        return _flatten_region(region.region1) + _flatten_region(region.region2)
    return [region]


def _region_center(regions):
    """Centre of one region, or the normalised mean direction of several (in the first one's frame)."""
    from astropy.coordinates import CartesianRepresentation, SkyCoord

    centres = [r.center for r in regions if hasattr(r, "center")]
    if not centres:
        raise DataFormatError(f"region {regions!r}: cannot find a centre to build a reference WCS")
    if len(centres) == 1:
        return centres[0]
    frame = centres[0].frame.name
    xyz = np.sum([c.transform_to(frame).cartesian.xyz.value for c in centres], axis=0)
    return SkyCoord(CartesianRepresentation(*xyz), frame=frame)


def _default_wcs(regions):
    """A TAN WCS centred on the regions with 0.1 deg pixels, large enough to hold them (as gammapy makes)."""
    centre = _region_center(regions)
    galactic = centre.frame.name == "galactic"
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["GLON-TAN", "GLAT-TAN"] if galactic else ["RA---TAN", "DEC--TAN"]
    lon, lat = (
        (centre.l.deg, centre.b.deg) if galactic else (centre.icrs.ra.deg, centre.icrs.dec.deg)
    )
    wcs.wcs.crval = [lon, lat]
    wcs.wcs.cdelt = [-BINSZ_WCS_DEG, BINSZ_WCS_DEG]
    wcs.wcs.cunit = ["deg", "deg"]
    if not galactic:
        wcs.wcs.radesys = "ICRS"
    half = 1
    for region in regions:
        wcs.wcs.crpix = [1.0, 1.0]
        try:
            bbox = region.to_pixel(wcs).bounding_box
            extent = max(abs(bbox.ixmin), abs(bbox.ixmax), abs(bbox.iymin), abs(bbox.iymax))
        except (AttributeError, ValueError):
            extent = 1
        half = max(half, int(extent) + 1)
    npix = 2 * half
    wcs.wcs.crpix = [npix / 2 + 0.5, npix / 2 + 0.5]
    wcs.pixel_shape = (npix, npix)
    return wcs


def region_to_table_hdu(region, wcs, extname):
    """The region as a `regions` FITS table in pixel coordinates of ``wcs`` (made if None), as gammapy writes."""
    from regions import Regions

    regions = _flatten_region(region)
    if wcs is None:
        wcs = _default_wcs(regions)
    table = Regions([r.to_pixel(wcs) for r in regions]).serialize(format="fits")
    header = wcs.to_header()
    shape = wcs.pixel_shape or (1, 1)
    header["WCSSHAPE"] = f"({shape[0]},{shape[1]})"
    for key, value in header.items():
        table.meta[key] = value
    return fits.BinTableHDU(table, name=extname)


def region_from_table_hdu(hdu, path):
    """(region, wcs) from a `regions` FITS table HDU with a WCS in its header (gammapy's REGION HDUs)."""
    from regions import Regions

    try:
        table = Table.read(hdu)
        header = fits.Header()
        for key, value in table.meta.items():
            if isinstance(value, (str, int, float, bool)) and len(key) <= 8:
                header[key] = value
        wcs = WCS(header, naxis=2)
        if "WCSSHAPE" in table.meta:
            shape = [int(v) for v in str(table.meta["WCSSHAPE"]).strip("()").split(",")[:2]]
            wcs.pixel_shape = tuple(shape)
        try:  # as gammapy: units (e.g. ROTANG in deg) are needed by some shapes, kept by a QTable
            pix_regions = Regions.parse(QTable.read(hdu), format="fits")
        except (TypeError, ValueError):
            pix_regions = Regions.parse(table, format="fits")
        regions = []
        for reg in pix_regions:
            reg.meta["include"] = True  # as gammapy: the FITS serialisation may lose it
            regions.append(reg.to_sky(wcs))
    except DataFormatError:
        raise
    except Exception as exc:
        raise DataFormatError(
            f"{path}: HDU {hdu.name!r} is not a readable region table ({exc})"
        ) from exc
    if not regions:
        return None, wcs
    region = regions[0]
    for reg in regions[1:]:
        region = region.union(reg)
    return region, wcs


# ---------------------------------------------------------------------------------------------- region maps
def _axis_colnames(axis):
    name = axis.name.upper()
    if name == "ENERGY":
        return "ENERGY", "E_MIN", "E_MAX"
    return name, f"{name}_MIN", f"{name}_MAX"


def _axes_header(axes):
    header = {}
    for idx, axis in enumerate(axes, start=1):
        _, lo, hi = _axis_colnames(axis)
        header[f"AXCOLS{idx}"] = f"{lo},{hi}"
        header[f"INTERP{idx}"] = axis.interp
    return header


def _unit_str(unit):
    return "" if unit == u.dimensionless_unscaled else unit.to_string()


def _bands_hdu(axes, extname):
    n = int(np.prod([ax.nbin for ax in axes]))
    cols = [fits.Column(name="CHANNEL", format="K", array=np.arange(n, dtype=np.int64))]
    grids = [
        np.meshgrid(*[getattr(ax, attr).value for ax in axes])
        for attr in ("center", "edges_min", "edges_max")
    ]
    for idx, axis in enumerate(axes):
        for colname, grid in zip(_axis_colnames(axis), grids, strict=True):
            cols.append(
                fits.Column(
                    name=colname, format="D", array=np.ravel(grid[idx]), unit=_unit_str(axis.unit)
                )
            )
    return set_header(fits.BinTableHDU.from_columns(cols, name=extname), _axes_header(axes))


def region_map_to_hdus(region_map, extname, cache=None):
    """``[NAME, NAME_BANDS, NAME_REGION?]`` HDUs of a `RegionNDMap` in gammapy's GADF layout.

    Parameters
    ----------
    region_map : `RegionNDMap`
    extname : str
        HDU name, e.g. ``"COUNTS"``.
    cache : dict, optional
        Reuses BANDS and REGION tables between maps of one file (building FITS tables is the slow part).
    """
    cache = {} if cache is None else cache
    extname = extname.upper()
    geom = region_map.geom
    data = np.asarray(region_map.data).reshape(geom.data_shape)
    per_row = data.shape[1:]
    n_per_row = int(np.prod(per_row))
    dim = "(" + ",".join(str(d) for d in reversed(per_row)) + ")"
    if data.dtype == bool:
        column = fits.Column(name="DATA", format=f"{n_per_row}L", dim=dim, array=data)
    else:
        data = np.nan_to_num(data.astype(np.float64))
        column = fits.Column(
            name="DATA",
            format=f"{n_per_row}D",
            dim=dim,
            array=data,
            unit=_unit_str(region_map.unit),
        )
    channel = fits.Column(name="CHANNEL", format="I", array=np.arange(len(data), dtype=np.int16))
    hdu = fits.BinTableHDU.from_columns([channel, column], name=extname)
    hdus = [set_header(hdu, _axes_header(geom.axes))]

    key = (
        "bands",
        tuple((ax.name, ax.interp, str(ax.unit), tuple(ax.edges.value)) for ax in geom.axes),
    )
    if key not in cache:
        cache[key] = _bands_hdu(geom.axes, "BANDS")
    bands = cache[key].copy()
    bands.name = f"{extname}_BANDS"
    hdus.append(bands)
    if geom.region is not None:
        key = ("region", id(geom.region), id(geom.wcs))
        if key not in cache:
            cache[key] = (geom.region, region_to_table_hdu(geom.region, geom.wcs, "REGION"))
        region_hdu = cache[key][1].copy()
        region_hdu.name = f"{extname}_REGION"
        hdus.append(region_hdu)
    return hdus


def _axes_from_bands(hdu, path):
    header = hdu.header
    axes = []
    idx = 1
    while f"AXCOLS{idx}" in header:
        colnames = [c.strip() for c in str(header[f"AXCOLS{idx}"]).split(",")]
        interp = str(header.get(f"INTERP{idx}", "lin")).strip()
        if len(colnames) != 2:
            raise DataFormatError(
                f"{path}: HDU {hdu.name!r} axis {idx} is given by nodes ({colnames}); only binned (edge) "
                "axes are supported for spectrum datasets"
            )
        lo_name, hi_name = colnames
        name = "energy" if lo_name == "E_MIN" else lo_name.replace("_MIN", "").lower()
        lo = np.unique(get_column(hdu, lo_name, path).astype(float))
        hi = np.unique(get_column(hdu, hi_name, path).astype(float))
        if lo.size != hi.size or not np.allclose(lo[1:], hi[:-1], rtol=1e-6, atol=0):
            raise DataFormatError(
                f"{path}: HDU {hdu.name!r} axis {name!r}: bins are not contiguous"
            )
        edges = np.append(lo, hi[-1])
        unit = column_unit(hdu, lo_name)
        axes.append(
            make_axis(
                edges,
                unit,
                name,
                path,
                hdu.name,
                interp=interp if interp in ("log", "lin") else "lin",
            )
        )
        idx += 1
    if not axes:
        raise DataFormatError(
            f"{path}: HDU {hdu.name!r} has no AXCOLS1 keyword; it is not a GADF BANDS table"
        )
    return axes


def region_map_from_hdulist(hdulist, extname, path, dtype=float, cache=None):
    """A `RegionNDMap` from the ``NAME`` / ``NAME_BANDS`` / ``NAME_REGION`` HDUs of gammapy's layout.

    ``cache`` (a dict) shares identical region tables between the maps of one file.
    """
    cache = {} if cache is None else cache
    extname = extname.upper()
    hdu = get_hdu(hdulist, extname, path)
    bands = get_hdu(
        hdulist, f"{extname}_BANDS", path, hint=f"it must accompany the {extname!r} HDU"
    )
    axes = _axes_from_bands(bands, path)
    region, wcs = None, None
    if f"{extname}_REGION" in hdulist:
        region_hdu = hdulist[f"{extname}_REGION"]
        header = tuple(
            (k, v) for k, v in region_hdu.header.items() if k not in ("EXTNAME", "CREATED")
        )
        key = (np.asarray(region_hdu.data).tobytes(), header)
        if key not in cache:
            cache[key] = region_from_table_hdu(region_hdu, path)
        region, wcs = cache[key]
    geom = RegionGeom(region, axes, wcs)
    data = get_column(hdu, "DATA", path)
    if data.size != int(np.prod(geom.data_shape)):
        raise GeometryMismatchError(
            f"{path}: HDU {extname!r} holds {data.size} values but its axes "
            f"{[(a.name, a.nbin) for a in axes]} need {int(np.prod(geom.data_shape))}"
        )
    data = np.asarray(data).reshape(geom.data_shape)
    data = data.astype(bool) if dtype is bool else data.astype(dtype)
    unit = column_unit(hdu, "DATA") if dtype is not bool else ""
    return RegionNDMap(geom, data, unit=unit)


# ---------------------------------------------------------------------------------------------- datasets
def _check_finite_nonneg(m, what, path, allow_negative=False):
    idx = bad_bins(m.data, allow_negative)
    if idx:
        kind = "non-finite" if allow_negative else "negative or non-finite"
        raise DataFormatError(f"{path}: HDU {what!r} has {kind} values in bins {idx}; fix the file")


def _edisp_to_hdus(edisp, exposure, energy_axis, cache=None):
    """``EDISP`` (axes energy, energy_true) and ``EDISP_EXPOSURE`` HDUs, as gammapy's EDispKernelMap writes."""
    hdus = []
    geom = RegionGeom(None, [energy_axis, edisp.energy_axis_true])
    edisp_map = RegionNDMap(geom, edisp.pdf_matrix.reshape(geom.data_shape))
    hdus += region_map_to_hdus(edisp_map, "EDISP", cache)
    if exposure is not None:
        squashed = MapAxis(energy_axis.bounds, name="energy", interp=energy_axis.interp)
        geom_exp = RegionGeom(None, [squashed, edisp.energy_axis_true])
        data = exposure.data.reshape(geom_exp.data_shape)
        hdus += region_map_to_hdus(
            RegionNDMap(geom_exp, data, unit=exposure.unit), "EDISP_EXPOSURE", cache
        )
    return hdus


def spectrum_dataset_to_gadf_hdulist(dataset):
    """`~astropy.io.fits.HDUList` of a spectrum dataset in gammapy's GADF region layout."""
    from ..datasets.spectrum import SpectrumDatasetOnOff

    if dataset.counts is None:
        raise DataFormatError(
            f"dataset {dataset.name!r}: cannot write a spectrum dataset without counts"
        )
    check_header_text(
        dataset.name,
        "dataset name",
        "it is written as the NAME keyword: rename the dataset (dataset.name = ...) before writing",
    )
    primary = fits.PrimaryHDU()
    primary.header["NAME"] = dataset.name
    if dataset.livetime is not None:
        primary.header["LIVETIME"] = (
            float(dataset.livetime.to_value("s")),
            "[s] bayesdl4: livetime",
        )
    obs_id = (dataset.meta or {}).get("obs_id")
    if isinstance(obs_id, (str, int, np.integer)):
        primary.header["OBS_ID"] = obs_id if isinstance(obs_id, str) else int(obs_id)
    primary.header["CREATOR"] = "bayesdl4"
    hdulist = fits.HDUList([primary])
    cache = {}

    def add(region_map, extname):
        hdulist.extend(region_map_to_hdus(region_map, extname, cache))

    add(dataset.counts, "COUNTS")
    if dataset.exposure is not None:
        add(dataset.exposure, "EXPOSURE")
    is_onoff = isinstance(dataset, SpectrumDatasetOnOff)
    if not is_onoff and dataset.background is not None:
        add(dataset.background, "BACKGROUND")
    if dataset.edisp is not None:
        hdulist += _edisp_to_hdus(
            dataset.edisp, dataset.exposure, dataset.counts.geom.axis("energy"), cache
        )
    if dataset.mask_safe is not None:
        add(_as_bool(dataset.mask_safe), "MASK_SAFE")
    if dataset.mask_fit is not None:
        add(_as_bool(dataset.mask_fit), "MASK_FIT")
    if dataset.gti is not None:
        hdulist.append(table_hdu(dataset.gti, "GTI"))
    if dataset.meta_table is not None:
        hdulist.append(table_hdu(dataset.meta_table, "META_TABLE"))
    if is_onoff:
        if dataset.counts_off is not None:
            add(dataset.counts_off, "COUNTS_OFF")
        add(dataset.acceptance, "ACCEPTANCE")
        add(dataset.acceptance_off, "ACCEPTANCE_OFF")
    return hdulist


def _as_bool(m):
    return RegionNDMap(m.geom, np.asarray(m.data).astype(bool))


def spectrum_dataset_from_gadf_hdulist(hdulist, path, name=None, dataset_class=None):
    """Spectrum dataset from an HDU list in gammapy's GADF region layout (see module docstring)."""

    header = hdulist[0].header
    if name is None:
        name = header.get("NAME") or Path(path).name.split(".")[0]
    name = str(name)
    is_onoff = "COUNTS_OFF" in hdulist
    cls = _pick_class(dataset_class, is_onoff, path, "no COUNTS_OFF HDU")

    cache = {}

    def read_checked(key):
        """A region map whose values must be finite and >= 0."""
        region_map = region_map_from_hdulist(hdulist, key, path, cache=cache)
        _check_finite_nonneg(region_map, key, path)
        return region_map

    counts = read_checked("COUNTS")
    kwargs = {"counts": counts, "name": name}
    energy_axis = counts.geom.axis("energy")

    exposure = None
    if "EXPOSURE" in hdulist:
        exposure = read_checked("EXPOSURE")
        if exposure.geom.axes[0].name == "energy":  # as gammapy: exposure is on true energy
            exposure.geom.axes[0] = exposure.geom.axes[0].copy(name="energy_true")
        kwargs["exposure"] = exposure

    if "EDISP" in hdulist:
        edisp_map = region_map_from_hdulist(hdulist, "EDISP", path, cache=cache)
        names = [ax.name for ax in edisp_map.geom.axes]
        if names != ["energy", "energy_true"]:
            raise DataFormatError(
                f"{path}: HDU 'EDISP' has axes {names}; a spectrum dataset needs an edisp kernel map with axes "
                "['energy', 'energy_true'] (an EDispMap with migra is not supported here)"
            )
        reco, true = edisp_map.geom.axes
        if not reco.is_allclose(energy_axis, rtol=1e-5):
            raise GeometryMismatchError(
                f"{path}: HDU 'EDISP' reco energy axis ({reco.nbin} bins) does not match 'COUNTS' ({energy_axis.nbin})"
            )
        if exposure is not None:
            exp_true = exposure.geom.axis("energy_true")
            if not true.is_allclose(exp_true, rtol=1e-5):
                raise GeometryMismatchError(
                    f"{path}: HDU 'EDISP' true energy axis ({true.nbin} bins, {true.bounds}) does not match "
                    f"'EXPOSURE' ({exp_true.nbin} bins, {exp_true.bounds})"
                )
            true = (
                exp_true  # one true-energy axis per dataset (float64 edges, as the ARF's in OGIP)
            )
        matrix = edisp_map.data.reshape(true.nbin, reco.nbin).astype(float)
        check_response_sums(
            matrix.sum(axis=1),
            path,
            "EDISP",
            lambda i: f"true-energy bin {i[0]} ({true.edges[i[0]]:.4g} to {true.edges[i[0] + 1]:.4g})",
        )
        try:
            kwargs["edisp"] = EDispKernel((true, energy_axis), matrix)
        except (DataFormatError, GeometryMismatchError) as exc:
            raise DataFormatError(f"{path}: HDU 'EDISP': {exc}") from exc

    if "BACKGROUND" in hdulist and not is_onoff:
        kwargs["background"] = read_checked("BACKGROUND")
    for key in ("MASK_SAFE", "MASK_FIT"):
        if key in hdulist:
            kwargs[key.lower()] = region_map_from_hdulist(
                hdulist, key, path, dtype=bool, cache=cache
            )
    if "GTI" in hdulist:
        kwargs["gti"] = Table.read(hdulist["GTI"])
    if "META_TABLE" in hdulist:
        kwargs["meta_table"] = Table.read(hdulist["META_TABLE"])
    if "LIVETIME" in header:
        kwargs["livetime"] = float(header["LIVETIME"]) * u.s
    meta = {"filenames": [str(path)]}
    if "OBS_ID" in header:
        meta["obs_id"] = header["OBS_ID"]
    kwargs["meta"] = meta

    if is_onoff:
        kwargs["counts_off"] = read_checked("COUNTS_OFF")
        for key in ("ACCEPTANCE", "ACCEPTANCE_OFF"):
            if key in hdulist:
                kwargs[key.lower()] = RegionNDMap(counts.geom, read_checked(key).data)
                _check_no_zero_in_safe_bins(kwargs[key.lower()], kwargs.get("mask_safe"), key, path)
    return _build_dataset(cls, kwargs, path)


def _check_no_zero_in_safe_bins(acceptance, mask_safe, key, path):
    """A zero acceptance makes alpha 0 or undefined: the bin would drop out of WStat silently."""
    safe = np.ones(acceptance.data.shape, bool) if mask_safe is None else mask_safe.data
    zero = np.flatnonzero((np.asarray(acceptance.data) == 0) & np.asarray(safe, bool))
    if zero.size:
        raise DataFormatError(
            f"{path}: HDU {key!r} is 0 in bins {zero[:10].tolist()}, which MASK_SAFE marks as "
            "safe; alpha = ACCEPTANCE / ACCEPTANCE_OFF would be 0 or undefined and these bins "
            "would drop out of the statistic. Fix the acceptance or mask those bins"
        )


def _pick_class(dataset_class, is_onoff, path, why):
    """The dataset class to build: OnOff when the file has OFF counts, plain otherwise."""
    from ..datasets.spectrum import SpectrumDataset, SpectrumDatasetOnOff

    if dataset_class is None:
        dataset_class = SpectrumDataset
    wants_onoff = issubclass(dataset_class, SpectrumDatasetOnOff)
    if wants_onoff and not is_onoff:
        raise DataFormatError(
            f"{path}: has no OFF counts ({why}), so it cannot be read as {dataset_class.__name__}; "
            "read it with SpectrumDataset.read (or bayesdl4.io.read_spectrum_dataset)"
        )
    if is_onoff:
        return dataset_class if wants_onoff else SpectrumDatasetOnOff
    return dataset_class


def _build_dataset(cls, kwargs, path):
    """``cls(**kwargs)``, naming the file in the errors the dataset raises."""
    try:
        return cls(**kwargs)
    except (DataFormatError, GeometryMismatchError) as exc:
        raise type(exc)(f"{path}: {exc}") from exc


def read_gadf_spectrum(filename, name=None, dataset_class=None, checksum=False):
    """Read a spectrum dataset written in gammapy's GADF region layout (one FITS file).

    ``checksum``: verify the ``CHECKSUM`` / ``DATASUM`` keywords of every HDU that has them.
    """
    path = Path(filename)
    with open_fits(path, "spectrum dataset file", checksum=checksum) as hdulist:
        if "COUNTS" not in hdulist:
            raise DataFormatError(
                f"{path}: no 'COUNTS' HDU (HDUs present: {hdu_names(hdulist)}); not a GADF spectrum dataset"
            )
        dataset = spectrum_dataset_from_gadf_hdulist(
            hdulist, path, name=name, dataset_class=dataset_class
        )
    return record_read(dataset, [path])


def write_gadf_spectrum(dataset, filename, overwrite=False):
    """Write a spectrum dataset to one FITS file in gammapy's GADF region layout (atomic)."""
    path = Path(filename)
    hdulist = spectrum_dataset_to_gadf_hdulist(dataset)
    return write_hdulists({path: hdulist}, overwrite=overwrite)
