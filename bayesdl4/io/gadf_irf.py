"""Reduced IRF maps in FITS: PSF and energy-dispersion maps with their exposure, as gammapy 2.1.

GADF layout (what gammapy's ``PSFMap`` / ``EDispKernelMap`` / ``EDispMap`` read and write, and
what ``MapDataset`` files hold):

- ``PSF`` + ``PSF_BANDS``: axes ``(rad, energy_true)``, or ``(rad, energy)`` for a PSF in
  reconstructed energy (HAWC); older files call the rad axis ``THETA``;
- ``PSF_EXPOSURE`` + ``PSF_EXPOSURE_BANDS``: the rad axis squashed to one bin (optional);
- ``EDISP`` + ``EDISP_BANDS``: axes ``(energy, energy_true)`` for a kernel map or
  ``(migra, energy_true)`` for a migration map, told apart by the first axis;
- ``EDISP_EXPOSURE`` + ``EDISP_EXPOSURE_BANDS``: the first axis squashed (optional).

Fermi-LAT ``gtpsf`` files (a ``PSF`` table with ``Energy`` [MeV], ``Exposure`` [cm2 s] and
``Psf`` [sr-1] columns plus a ``THETA`` table in deg) are read as gammapy's ``format="gtpsf"``:
a position-independent PSF, held here on a one-pixel all-sky grid (gammapy uses a region
geometry; the kernels are the same). They are written back with ``format="gtpsf"``.
"""

from __future__ import annotations

import numpy as np
from astropy import units as u
from astropy.io import fits
from astropy.table import Table

from ..errors import DataFormatError, GeometryMismatchError
from ..maps import MapAxis, WcsGeom, WcsNDMap
from ..utils.fileio import atomic_path
from ._fits import check_response_sums, read_fits
from .gadf_maps import _describe, _get_hdu, _hdu_names, map_to_hdulist, read_map_hdu

__all__ = [
    "read_irf_map",
    "read_psf_map",
    "read_edisp_map",
    "irf_map_from_hdulist",
    "psf_map_from_gtpsf_hdulist",
    "irf_map_to_hdulist",
    "write_irf_map",
]


def _classes():
    from ..irf.edisp_map import EDispKernelMap, EDispMap
    from ..irf.psf_map import PSFMap

    return PSFMap, EDispKernelMap, EDispMap


def _open(filename):
    return read_fits(filename, "IRF map file")


# reading -----------------------------------------------------------------------------------
def irf_map_from_hdulist(hdulist, cls=None, hdu=None, exposure_hdu=None, format="gadf"):
    """PSF or energy-dispersion map from an open HDU list.

    Parameters
    ----------
    hdulist : `~astropy.io.fits.HDUList`
    cls : {PSFMap, EDispKernelMap, EDispMap}, optional
        What to read; default from ``hdu`` (``"PSF"`` or ``"EDISP"``).
    hdu : str, optional
        IRF HDU; default ``cls.hdu_name``.
    exposure_hdu : str, optional
        Default ``<hdu>_EXPOSURE``, read when present.
    format : {"gadf", "gtpsf"}

    Returns
    -------
    `PSFMap`, `EDispKernelMap` or `EDispMap`: as gammapy, an EDISP HDU whose first axis is
    ``energy`` is an `EDispKernelMap` even when `EDispMap` was asked for.
    """
    PSFMap, EDispKernelMap, EDispMap = _classes()
    source = _describe(hdulist)
    if format == "gtpsf":
        if cls not in (None, PSFMap):
            raise DataFormatError(f"{source}: format 'gtpsf' holds a PSF, not a {cls.__name__}")
        return psf_map_from_gtpsf_hdulist(hdulist)
    if format != "gadf":
        raise DataFormatError(f"{source}: unknown IRF map format {format!r}; use 'gadf' or 'gtpsf'")

    if hdu is None:
        if cls is None:
            raise DataFormatError(f"{source}: give the IRF class or the HDU to read")
        hdu = cls.hdu_name
    hdu_map = _get_hdu(hdulist, hdu, role="IRF map")
    name = hdu_map.name
    if cls is None:
        if name.startswith("PSF"):
            cls = PSFMap
        elif name.startswith("EDISP"):
            cls = EDispMap
        else:
            raise DataFormatError(
                f"{source}: cannot tell which IRF HDU {name!r} holds; pass cls=PSFMap/EDispMap"
            )
    if isinstance(hdu_map, fits.BinTableHDU) and "Psf" in hdu_map.columns.names:
        raise DataFormatError(
            f"{source}, HDU {name!r}: this is a Fermi gtpsf PSF table; read it with format='gtpsf'"
        )

    irf_map = read_map_hdu(hdulist, hdu=hdu)
    if exposure_hdu is None:
        exposure_hdu = f"{name}_EXPOSURE"
    exposure_map = None
    if exposure_hdu in hdulist:
        exposure_map = read_map_hdu(hdulist, hdu=exposure_hdu)

    output = cls
    first = irf_map.geom.axes[0].name if irf_map.geom.axes else None
    if cls in (EDispMap, EDispKernelMap):
        output = EDispKernelMap if first == "energy" else EDispMap
        if cls is EDispKernelMap and output is EDispMap:
            raise DataFormatError(
                f"{source}, HDU {name!r}: axes {irf_map.geom.axes_names[2:]} are a migration "
                "map, not a kernel map: read it with EDispMap.read (then to_edisp_kernel_map)"
            )
    where = f"{source}, HDU {name!r}"
    if output in (EDispKernelMap, EDispMap):
        _check_edisp_sums(irf_map, source, name)
    try:
        return output(irf_map, exposure_map=exposure_map, source=where)
    except GeometryMismatchError as exc:
        raise DataFormatError(f"{where}: {exc}") from exc


def _check_edisp_sums(edisp_map, source, hdu_name):
    """Each true-energy row of an EDISP map (kernel: sum over reco bins; migra: integral of the
    density) must sum to at most 1 (`check_response_sums`), in every sky pixel."""
    first, energy_true = edisp_map.geom.axes[0], edisp_map.geom.axes[1]
    data = np.asarray(edisp_map.data, dtype=float)  # (n_true, n_first, ny, nx)
    if first.name == "migra":
        width = first.bin_width.to_value("").reshape((1, -1) + (1,) * (data.ndim - 2))
        sums = np.sum(data * width, axis=1)
    else:
        sums = np.sum(data, axis=1)
    edges = energy_true.edges

    def describe(i):
        pixel = f" at pixel (x={i[-1]}, y={i[-2]})" if len(i) > 2 else ""
        kind = "migra integral" if first.name == "migra" else "row"
        return f"the {kind} of true-energy bin {i[0]} ({edges[i[0]]:.4g} to {edges[i[0] + 1]:.4g}){pixel}"

    check_response_sums(sums, source, hdu_name, describe)


def psf_map_from_gtpsf_hdulist(hdulist):
    """Position-independent `PSFMap` from a Fermi ``gtpsf`` file (gammapy's ``format="gtpsf"``)."""
    from ..irf.psf_map import PSFMap

    source = _describe(hdulist)
    for key in ("THETA", "PSF"):
        if key not in hdulist:
            raise DataFormatError(
                f"{source}: a gtpsf file needs THETA and PSF tables; HDUs: {_hdu_names(hdulist)}"
            )
    theta, psf = Table.read(hdulist["THETA"]), Table.read(hdulist["PSF"])
    for table, column in ((theta, "Theta"), (psf, "Energy"), (psf, "Exposure"), (psf, "Psf")):
        if column not in table.colnames:
            raise DataFormatError(
                f"{source}: gtpsf column {column!r} missing; columns: {table.colnames}"
            )
    try:
        rad_axis = MapAxis.from_nodes(
            np.asarray(theta["Theta"], float) * u.deg, name="rad", interp="lin"
        )
        energy_axis = MapAxis.from_nodes(
            np.asarray(psf["Energy"], float) * u.MeV, name="energy_true", interp="log"
        )
    except GeometryMismatchError as exc:
        raise DataFormatError(f"{source}: invalid gtpsf axes: {exc}") from exc
    # one all-sky pixel: every position maps inside it, so the PSF does not depend on position
    image = WcsGeom.create(npix=(1, 1), binsz=(360.0, 180.0), proj="CAR", frame="icrs")
    geom = image.to_cube([rad_axis, energy_axis])
    data = np.asarray(psf["Psf"], dtype=float)
    if data.shape != (energy_axis.nbin, rad_axis.nbin):
        raise DataFormatError(
            f"{source}: gtpsf Psf column has shape {data.shape}, expected "
            f"({energy_axis.nbin}, {rad_axis.nbin}) from the Energy and Theta columns"
        )
    psf_map = WcsNDMap(geom, data.reshape(geom.data_shape), unit="sr-1")
    egeom = geom.squash("rad")
    exposure = np.asarray(psf["Exposure"], dtype=float).reshape(egeom.data_shape)
    exposure_map = WcsNDMap(egeom, exposure, unit="cm2 s")
    return PSFMap(psf_map, exposure_map=exposure_map, source=f"{source}, HDU 'PSF' (gtpsf)")


def read_irf_map(filename, cls=None, format="gadf", hdu=None):
    """Read a PSF or energy-dispersion map from a FITS file (see `irf_map_from_hdulist`)."""
    with _open(filename) as hdulist:
        return irf_map_from_hdulist(hdulist, cls=cls, hdu=hdu, format=format)


def read_psf_map(filename, hdu="PSF", format="gadf"):
    """Read the `PSFMap` of a file (a MapDataset file, a PSF map file or a gtpsf file)."""
    PSFMap = _classes()[0]
    return read_irf_map(filename, cls=PSFMap, format=format, hdu=None if format == "gtpsf" else hdu)


def read_edisp_map(filename, hdu="EDISP"):
    """Read the energy dispersion of a file: an `EDispKernelMap` or an `EDispMap` (by its axes)."""
    EDispMap = _classes()[2]
    return read_irf_map(filename, cls=EDispMap, hdu=hdu)


# writing -----------------------------------------------------------------------------------
def irf_map_to_hdulist(irf_map, format="gadf") -> fits.HDUList:
    """HDU list as gammapy's ``IRFMap.to_hdulist``.

    ``"gadf"``: PRIMARY, ``<HDU>``, ``<HDU>_BANDS`` and, with an exposure,
    ``<HDU>_EXPOSURE``, ``<HDU>_EXPOSURE_BANDS``. ``"gtpsf"`` (position-independent PSFs in
    true energy only): PRIMARY, ``THETA``, ``PSF``.
    """
    if format == "gtpsf":
        return _gtpsf_hdulist(irf_map)
    if format != "gadf":
        raise DataFormatError(f"unknown IRF map format {format!r}; use 'gadf' or 'gtpsf'")
    hdu = irf_map.hdu_name
    hdulist = map_to_hdulist(irf_map._irf_map, hdu=hdu)
    if irf_map.exposure_map is not None:
        hdulist.extend(map_to_hdulist(irf_map.exposure_map, hdu=f"{hdu}_EXPOSURE")[1:])
    return hdulist


def _gtpsf_hdulist(psf_map) -> fits.HDUList:
    PSFMap = _classes()[0]
    if not isinstance(psf_map, PSFMap) or psf_map.energy_name != "energy_true":
        raise DataFormatError("format 'gtpsf' holds a PSF in true energy only")
    if not psf_map.has_single_spatial_bin:
        raise DataFormatError(
            f"format 'gtpsf' holds a position-independent PSF; this one has {psf_map.geom.npix} "
            "pixels: write it with format='gadf'"
        )
    if psf_map.exposure_map is None:
        raise DataFormatError("format 'gtpsf' needs the PSF exposure (Exposure column)")
    theta = Table({"Theta": psf_map.rad_axis.center.to("deg")})
    table = Table()
    table["Energy"] = psf_map.energy_axis.center.to("MeV")
    table["Exposure"] = psf_map.exposure_map.quantity[:, 0, 0, 0].to("cm2 s")
    table["Psf"] = psf_map.psf_map.quantity[:, :, 0, 0].to("sr-1")
    return fits.HDUList(
        [
            fits.PrimaryHDU(),
            fits.BinTableHDU(theta, name="THETA"),
            fits.BinTableHDU(table, name="PSF"),
        ]
    )


def write_irf_map(irf_map, filename, overwrite=False, format="gadf") -> None:
    """Write an IRF map atomically; refuses to replace a file unless ``overwrite=True``."""
    hdulist = irf_map_to_hdulist(irf_map, format=format)
    with atomic_path(filename, overwrite=overwrite) as tmp:
        hdulist.writeto(tmp)
