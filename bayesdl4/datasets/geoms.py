"""Geometries of empty map datasets and the zero IRF maps on them, as gammapy 2.1 builds them.

Used by ``MapDataset.create`` / ``from_geoms`` (and so by ``to_masked`` and stacking).
"""

from __future__ import annotations

import numpy as np
from astropy import units as u

from ..errors import GeometryMismatchError
from ..irf import EDispKernelMap, EDispMap, PSFMap
from ..maps import MapAxis, WcsGeom, WcsNDMap
from ..maps.differences import wcs_difference

__all__ = [
    "BINSZ_IRF_DEFAULT",
    "RAD_AXIS_DEFAULT",
    "create_map_dataset_geoms",
    "psf_from_geom",
    "edisp_from_geom",
    "describe_geom_mismatch",
]

BINSZ_IRF_DEFAULT = 0.2  # deg: pixel size of the IRF maps of `MapDataset.create` (gammapy's)
# gammapy's default PSF rad axis: 0..0.66 deg in 66 bins
RAD_AXIS_DEFAULT = MapAxis(np.linspace(0, 0.66, 67) * u.deg, name="rad", interp="lin")


def create_map_dataset_geoms(
    geom,
    energy_axis_true=None,
    migra_axis=None,
    rad_axis=None,
    binsz_irf=BINSZ_IRF_DEFAULT,
    reco_psf=False,
) -> dict:
    """``geom``, ``geom_exposure``, ``geom_psf`` and ``geom_edisp`` of gammapy's ``MapDataset.create``.

    Parameters
    ----------
    geom : `WcsGeom`
        Counts geometry with one ``energy`` axis.
    energy_axis_true : `MapAxis`, optional
        Default: the counts energy axis renamed ``energy_true``.
    migra_axis : `MapAxis`, optional
        Gives a migration-map geometry (``migra``, ``energy_true``) for the energy dispersion.
    rad_axis : `MapAxis`, optional
        Default 0..0.66 deg in 66 bins.
    binsz_irf : float
        Pixel size of the IRF maps in deg (same centre, width and projection as ``geom``).
    reco_psf : bool
        PSF in reconstructed energy.
    """
    if not isinstance(geom, WcsGeom):
        raise GeometryMismatchError(f"create: geom must be a WcsGeom, got {type(geom).__name__}")
    energy_axis = geom.axis("energy")
    if energy_axis_true is None:
        energy_axis_true = energy_axis.copy(name="energy_true")
    elif energy_axis_true.name != "energy_true":
        raise GeometryMismatchError(
            f"create: energy_axis_true must be named 'energy_true', got {energy_axis_true.name!r}"
        )
    rad_axis = RAD_AXIS_DEFAULT.copy() if rad_axis is None else rad_axis
    image = geom.to_image()
    # gammapy's WcsGeom.to_binsz: same centre, width and projection, coarser pixels
    geom_irf = WcsGeom.create(
        skydir=image.center_skydir,
        binsz=float(u.Quantity(binsz_irf, "deg").value),
        width=tuple(image.width.to_value("deg")),
        proj=image.projection,
        frame=image.frame,
    )
    psf_energy = energy_axis if reco_psf else energy_axis_true
    first = energy_axis if migra_axis is None else migra_axis
    return {
        "geom": geom,
        "geom_exposure": image.to_cube([energy_axis_true.copy()]),
        "geom_psf": geom_irf.to_cube([rad_axis.copy(), psf_energy.copy()]),
        "geom_edisp": geom_irf.to_cube([first.copy(), energy_axis_true.copy()]),
    }


def psf_from_geom(geom_psf: WcsGeom) -> PSFMap:
    """Zero PSF map [sr-1] with a zero exposure map [m2 s] (gammapy's ``PSFMap.from_geom``)."""
    return PSFMap(
        WcsNDMap(geom_psf, unit="sr-1"),
        exposure_map=WcsNDMap(geom_psf.squash("rad"), unit="m2 s"),
    )


def edisp_from_geom(geom_edisp: WcsGeom):
    """Diagonal energy dispersion with a zero exposure map (gammapy's ``from_geom``): a kernel map
    of bin overlaps for axes (energy, energy_true), a migration map for (migra, energy_true)."""
    first, energy_axis_true = geom_edisp.axes
    image = geom_edisp.to_image()
    if first.name == "energy":
        return EDispKernelMap.from_diagonal_response(
            first.copy(), energy_axis_true.copy(), geom=image
        )
    if first.name == "migra":
        return EDispMap.from_diagonal_response(
            energy_axis_true.copy(), migra_axis=first.copy(), geom=image
        )
    raise GeometryMismatchError(
        f"geom_edisp axes must be (energy, energy_true) or (migra, energy_true), got "
        f"{[ax.name for ax in geom_edisp.axes]}"
    )


def describe_geom_mismatch(geom, other) -> str:
    """Short human-readable difference between two `WcsGeom` (first difference found)."""
    names, other_names = [a.name for a in geom.axes], [a.name for a in other.axes]
    if names != other_names:
        return f"axes {names} vs {other_names}"
    for ax, ox in zip(geom.axes, other.axes, strict=True):
        if not ax.is_allclose(ox, rtol=1e-5):
            return (
                f"{ax.name} axis: {ax.nbin} bins [{ax.edges[0]:.6g}, {ax.edges[-1]:.6g}] vs "
                f"{ox.nbin} bins [{ox.edges[0]:.6g}, {ox.edges[-1]:.6g}]"
            )
    if geom.npix != other.npix:
        return f"npix (nx, ny) {geom.npix} vs {other.npix}"
    return f"WCS differs: {wcs_difference(geom, other) or 'within tolerance'}"
