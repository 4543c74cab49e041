"""Map dataset files in gammapy 2.1's GADF layout (``MapDataset.write`` / ``MapDataset.read``).

One FITS file, HDUs in gammapy's order (each map is an image HDU plus ``<NAME>_BANDS``, see
`bayesdl4.io.gadf_maps`; IRF maps see `bayesdl4.io.gadf_irf`):

- ``PRIMARY``: no data; ``NAME`` (the dataset name), ``CREATOR``, ``CREATED``;
- ``COUNTS``, ``EXPOSURE`` (axis ``energy_true``; an ``energy`` axis is renamed on reading, as
  gammapy does), ``BACKGROUND`` (not for ON/OFF datasets);
- ``EDISP`` (+ ``EDISP_EXPOSURE``): a kernel map (axes ``energy, energy_true``) or a migration
  map (``migra, energy_true``); ``PSF`` (+ ``PSF_EXPOSURE``): axes ``rad`` and ``energy_true``
  (or ``energy`` for HAWC's reco-energy PSF);
- ``MASK_SAFE``, ``MASK_FIT``: integer images read back as booleans;
- ``GTI`` (``START``, ``STOP`` [s] with ``MJDREF*``) and ``META_TABLE`` tables, kept as
  `astropy.table.Table` and written back unchanged;
- ON/OFF datasets add ``COUNTS_OFF``, ``ACCEPTANCE``, ``ACCEPTANCE_OFF``.

Every HDU is optional, as in gammapy, but at least one of ``COUNTS``, ``BACKGROUND``,
``MASK_SAFE``, ``MASK_FIT`` must define the counts geometry. Errors (`DataFormatError`,
`GeometryMismatchError`) name the file and HDU; a missing HDU lists the HDUs present.

`read_map_dataset_from_cubes` assembles a dataset from separate counts / exposure / background /
PSF files, such as ``$GAMMAPY_DATA/fermi-3fhl-gc`` (Fermi science-tools cubes and a ``gtpsf`` PSF).
"""

from __future__ import annotations

import datetime
import logging
import os
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.table import Table

from .. import __version__
from ..errors import DataFileNotFoundError, DataFormatError, GeometryMismatchError
from ..utils.fileio import atomic_path, check_overwrite
from ._fits import check_header_text, read_fits, with_gti_reference
from .gadf_irf import irf_map_from_hdulist, irf_map_to_hdulist, read_edisp_map, read_psf_map
from .gadf_maps import map_to_hdulist, read_map, read_map_hdu
from .provenance import record_read

__all__ = [
    "map_dataset_to_hdulist",
    "map_dataset_from_hdulist",
    "read_map_dataset",
    "write_map_dataset",
    "read_map_dataset_from_cubes",
    "expand_path",
]

log = logging.getLogger(__name__)

# dataset attribute -> HDU holding it (error messages name the HDU)
HDU_OF = {
    "counts": "COUNTS",
    "exposure": "EXPOSURE",
    "background": "BACKGROUND",
    "edisp": "EDISP",
    "psf": "PSF",
    "mask_safe": "MASK_SAFE",
    "mask_fit": "MASK_FIT",
    "counts_off": "COUNTS_OFF",
    "acceptance": "ACCEPTANCE",
    "acceptance_off": "ACCEPTANCE_OFF",
}
_CUBE_HDUS = ("COUNTS", "BACKGROUND", "MASK_SAFE", "MASK_FIT", "COUNTS_OFF")
# primary-header keywords that are structure or rewritten on every write, not dataset metadata
_STRUCTURAL = {
    "SIMPLE",
    "BITPIX",
    "NAXIS",
    "EXTEND",
    "NAME",
    "CREATOR",
    "CREATED",
    "CHECKSUM",
    "DATASUM",
    "COMMENT",
    "HISTORY",
    "",
}


def expand_path(filename) -> Path:
    """``Path`` with environment variables (``$GAMMAPY_DATA``) and ``~`` expanded."""
    return Path(os.path.expandvars(str(filename))).expanduser()


def _open(path, role, load=False):
    """Open a FITS file checked to be complete (`bayesdl4.io._fits.read_fits`); ``load`` reads
    every HDU's data in file order."""
    hdulist = read_fits(path, role)
    if load:
        try:
            for hdu in hdulist:
                hdu.data  # noqa: B018 - loads and caches the data
        except Exception as exc:  # astropy: ValueError, TypeError, OSError on corrupt data
            hdulist.close()
            raise DataFormatError(f"{path}: HDU {hdu.name!r} has unreadable data ({exc})") from exc
    return hdulist


def _source(hdulist) -> str:
    name = hdulist.filename() if hasattr(hdulist, "filename") else None
    return str(name) if name else "<in-memory HDU list>"


def _classes():
    from ..datasets.map import MapDataset, MapDatasetOnOff

    return MapDataset, MapDatasetOnOff


# ---------------------------------------------------------------------------------------- writing
def map_dataset_to_hdulist(dataset) -> fits.HDUList:
    """HDU list of a `MapDataset` / `MapDatasetOnOff` as gammapy 2.1's ``to_hdulist``."""
    _, MapDatasetOnOff = _classes()
    is_onoff = isinstance(dataset, MapDatasetOnOff)
    check_header_text(
        dataset.name,
        "dataset name",
        "it is written as the NAME keyword: rename the dataset (dataset.name = ...) before writing",
    )
    primary = fits.PrimaryHDU()
    header = primary.header
    header["NAME"] = dataset.name
    for key, value in (dataset.meta or {}).items():
        keyword = str(key).upper()
        if keyword in _STRUCTURAL or len(keyword) > 8 or not keyword.isascii():
            continue
        if isinstance(value, str) and not all(32 <= ord(c) < 127 for c in value):
            log.warning("dataset %r: meta[%r] is not printable ASCII; not written", dataset.name, key)
            continue
        if isinstance(value, str | bool | int | float | np.integer | np.floating):
            header[keyword] = value
    creation = {
        "CREATOR": f"bayesdl4 {__version__}",
        "CREATED": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3],
    }
    hdulist = fits.HDUList([primary])

    def add_map(m, hdu):
        if m is not None:
            hdulist.extend(map_to_hdulist(m, hdu=hdu)[1:])

    add_map(dataset.counts, "COUNTS")
    add_map(dataset.exposure, "EXPOSURE")
    if not is_onoff:
        add_map(dataset.background, "BACKGROUND")
    for irf in (dataset.edisp, dataset.psf):
        if irf is not None:
            hdulist.extend(irf_map_to_hdulist(irf)[1:])
    add_map(dataset.mask_safe, "MASK_SAFE")
    add_map(dataset.mask_fit, "MASK_FIT")
    if dataset.gti is not None:
        hdulist.append(_table_hdu(dataset.gti, "GTI"))
    if dataset.meta_table is not None:
        hdulist.append(_table_hdu(dataset.meta_table, "META_TABLE"))
    if is_onoff:
        add_map(dataset.counts_off, "COUNTS_OFF")
        add_map(dataset.acceptance, "ACCEPTANCE")
        add_map(dataset.acceptance_off, "ACCEPTANCE_OFF")
    for hdu in hdulist:
        hdu.header.update(creation)
    return hdulist


def _table_hdu(table, name) -> fits.BinTableHDU:
    table = with_gti_reference(table) if name == "GTI" else Table(table)
    table.meta.pop("EXTNAME", None)
    hdu = fits.table_to_hdu(table)
    hdu.name = name
    return hdu


def write_map_dataset(dataset, filename, overwrite=False) -> Path:
    """Write a map dataset in gammapy 2.1's layout, atomically.

    Raises
    ------
    FileExistsError
        ``filename`` exists and ``overwrite`` is False (nothing is written).
    """
    path = expand_path(filename)
    check_overwrite(path, overwrite)  # before the (slow) HDU building
    hdulist = map_dataset_to_hdulist(dataset)
    with atomic_path(path, overwrite=overwrite) as tmp:
        hdulist.writeto(tmp)
    return path


# ---------------------------------------------------------------------------------------- reading
def _pick_class(dataset_class, hdulist, source):
    MapDataset, MapDatasetOnOff = _classes()
    has_off = "COUNTS_OFF" in hdulist
    if dataset_class is not None and issubclass(dataset_class, MapDatasetOnOff) and not has_off:
        raise DataFormatError(
            f"{source}: a MapDatasetOnOff file needs a COUNTS_OFF HDU; HDUs present: "
            f"{[h.name for h in hdulist]} (read it with MapDataset.read)"
        )
    if has_off:
        return MapDatasetOnOff
    if dataset_class is None or issubclass(MapDataset, dataset_class):
        return MapDataset
    return dataset_class


def _looks_like_spectrum(hdulist) -> bool:
    hdu = hdulist["COUNTS"] if "COUNTS" in hdulist else None
    return (
        isinstance(hdu, fits.BinTableHDU)
        and "CHANNEL" in hdu.columns.names
        and "PIX" not in hdu.columns.names
    )


def map_dataset_from_hdulist(hdulist, name=None, dataset_class=None):
    """`MapDataset` (or `MapDatasetOnOff` when the file has ``COUNTS_OFF``) from an open HDU list.

    Parameters
    ----------
    hdulist : `~astropy.io.fits.HDUList`
    name : str, optional
        Default: the primary ``NAME`` keyword, else the file name without suffixes.
    dataset_class : type, optional
        The class ``read`` was called on; asking `MapDatasetOnOff` for a file without OFF counts
        raises `DataFormatError`.
    """
    source = _source(hdulist)
    names = [hdu.name for hdu in hdulist]
    if "SPECTRUM" in hdulist or _looks_like_spectrum(hdulist):
        raise DataFormatError(
            f"{source}: this is a spectrum dataset (region geometry or OGIP), not a map dataset; "
            "read it with SpectrumDataset.read / SpectrumDatasetOnOff.read"
        )
    if not any(hdu in hdulist for hdu in _CUBE_HDUS):
        raise DataFormatError(
            f"{source}: not a map dataset file: none of the HDUs {list(_CUBE_HDUS[:4])} that define "
            f"the counts geometry is present; HDUs present: {names}"
        )
    cls = _pick_class(dataset_class, hdulist, source)
    header = hdulist[0].header
    if name is None:
        name = header.get("NAME") or _stem(source)
    meta = {
        key.lower(): header[key]
        for key in header
        if key not in _STRUCTURAL and not key.startswith("NAXIS")
    }

    kwargs = {"name": str(name), "meta": meta}
    maps = ["counts", "exposure", "mask_safe", "mask_fit"]
    if cls.tag == "MapDatasetOnOff":
        maps += ["counts_off", "acceptance", "acceptance_off"]
    else:
        maps += ["background"]
    for attribute in maps:
        hdu = HDU_OF[attribute]
        if hdu in hdulist:
            kwargs[attribute] = read_map_hdu(hdulist, hdu=hdu)
    exposure = kwargs.get("exposure")
    if exposure is not None and [ax.name for ax in exposure.geom.axes] == ["energy"]:
        # gammapy renames a reco-energy exposure axis (older files) to energy_true
        axis = exposure.geom.axes[0].copy(name="energy_true")
        kwargs["exposure"] = exposure.copy(geom=exposure.geom.to_image().to_cube([axis]))

    from ..irf import EDispMap, PSFMap

    if "EDISP" in hdulist:
        kwargs["edisp"] = irf_map_from_hdulist(hdulist, cls=EDispMap, hdu="EDISP")
    if "PSF" in hdulist:
        kwargs["psf"] = irf_map_from_hdulist(hdulist, cls=PSFMap, hdu="PSF")
    for table in ("GTI", "META_TABLE"):
        if table in hdulist:
            try:
                kwargs[table.lower()] = Table.read(hdulist[table])
            except (ValueError, TypeError) as exc:
                raise DataFormatError(
                    f"{source}, HDU {table!r}: not a readable table ({exc})"
                ) from exc

    try:
        return cls(**kwargs)
    except (DataFormatError, GeometryMismatchError) as exc:
        hdu = HDU_OF.get(getattr(exc, "attribute", None))
        where = f"{source}, HDU {hdu!r}" if hdu else source
        raise type(exc)(f"{where}: {exc}") from exc


def _stem(source) -> str:
    name = Path(source).name
    for suffix in (".gz", ".fits", ".fit", ".fts"):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
    return name or "dataset"


def read_map_dataset(filename, name=None, dataset_class=None):
    """Read a map dataset file written by gammapy 2.1 (or by `write_map_dataset`).

    See `map_dataset_from_hdulist`; ``filename`` may contain environment variables.
    """
    path = expand_path(filename)
    with _open(path, "map dataset file", load=True) as hdulist:
        dataset = map_dataset_from_hdulist(hdulist, name=name, dataset_class=dataset_class)
    return record_read(dataset, [path])


# ---------------------------------------------------------------------------------------- assembling
def _read_cube(filename, role):
    path = expand_path(filename)
    if not path.exists():
        raise DataFileNotFoundError(f"{path}: {role} file not found")
    return read_map(path)


def _is_gtpsf(path) -> bool:
    with _open(path, "PSF file") as hdulist:
        return (
            "THETA" in hdulist
            and "PSF" in hdulist
            and isinstance(hdulist["PSF"], fits.BinTableHDU)
            and "Psf" in hdulist["PSF"].columns.names
        )


def read_map_dataset_from_cubes(
    counts, exposure, background=None, psf=None, edisp=None, name=None, gti=True
):
    """A `MapDataset` assembled from separate files, e.g. ``$GAMMAPY_DATA/fermi-3fhl-gc``.

    Parameters
    ----------
    counts : str or Path
        Counts cube (GADF map, or a Fermi ``gtbin`` cube with ``EBOUNDS``).
    exposure : str or Path
        Exposure cube (GADF, or a Fermi ``gtexpcube2`` cube with ``ENERGIES`` nodes; an axis
        named ``energy`` becomes ``energy_true``).
    background : str or Path, optional
        Background counts cube on the counts geometry.
    psf : str, Path or `PSFMap`, optional
        A GADF PSF map file or a Fermi ``gtpsf`` file (told apart by its ``THETA`` table).
    edisp : str, Path, `EDispKernelMap` or `EDispMap`, optional
        None (gammapy then applies a diagonal response between the exposure true-energy and
        counts energy axes).
    name : str, optional
        Default: the counts file name without suffixes.
    gti : bool
        Take the ``GTI`` table of the counts file when it has one.

    Examples
    --------
    >>> gc = "$GAMMAPY_DATA/fermi-3fhl-gc/fermi-3fhl-gc-"            # doctest: +SKIP
    >>> dataset = read_map_dataset_from_cubes(                       # doctest: +SKIP
    ...     gc + "counts-cube.fits.gz", gc + "exposure-cube.fits.gz",
    ...     background=gc + "background-cube.fits.gz", psf=gc + "psf-cube.fits.gz",
    ...     name="fermi-3fhl-gc")
    """
    MapDataset, _ = _classes()
    counts_path = expand_path(counts)
    counts_map = _read_cube(counts_path, "counts")
    exposure_map = _read_cube(exposure, "exposure")
    if [ax.name for ax in exposure_map.geom.axes] == ["energy"]:
        axis = exposure_map.geom.axes[0].copy(name="energy_true")
        exposure_map = exposure_map.copy(geom=exposure_map.geom.to_image().to_cube([axis]))
    background_map = None if background is None else _read_cube(background, "background")
    psf_path = edisp_path = None
    if psf is not None and not hasattr(psf, "psf_map"):
        psf_path = expand_path(psf)
        if not psf_path.exists():
            raise DataFileNotFoundError(f"{psf_path}: PSF file not found")
        psf = read_psf_map(psf_path, format="gtpsf" if _is_gtpsf(psf_path) else "gadf")
    if edisp is not None and not hasattr(edisp, "edisp_map"):
        edisp_path = expand_path(edisp)
        edisp = read_edisp_map(edisp_path)
    gti_table = None
    if gti:
        with _open(counts_path, "counts file") as hdulist:
            if "GTI" in hdulist:
                gti_table = Table.read(hdulist["GTI"])
    kwargs = dict(
        counts=counts_map,
        exposure=exposure_map,
        background=background_map,
        psf=psf,
        edisp=edisp,
        gti=gti_table,
        name=name or _stem(counts_path),
    )
    files = [counts_path, exposure, background, psf_path, edisp_path]
    try:
        return record_read(MapDataset(**kwargs), [expand_path(f) for f in files if f is not None])
    except (DataFormatError, GeometryMismatchError) as exc:
        attribute = getattr(exc, "attribute", None)
        files = {"counts": counts_path, "exposure": exposure, "background": background}
        where = files.get(attribute)
        if where is None:
            raise
        raise type(exc)(f"{expand_path(where)}: {exc}") from exc
