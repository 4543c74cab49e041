"""PSF kernels: one normalised image per energy plane on an odd-sized pixel grid, and the kernel
grids of gammapy 2.1's ``PSFMap.get_psf_kernel`` (``WcsGeom.to_odd_npix`` and ``upsample``).
The kernels themselves are computed by `bayesdl4.irf.psf_map.PSFMap.get_psf_kernel`."""

from __future__ import annotations

import numpy as np
from astropy import units as u

from ..errors import GeometryMismatchError
from ..maps import MapAxis, WcsGeom, WcsNDMap

__all__ = ["PSFKernel"]


def _odd_npix(geom: WcsGeom, max_radius) -> int:
    """Pixels a side of gammapy's ``WcsGeom.to_odd_npix(max_radius)`` grid."""
    width_npix = (2 * u.Quantity(max_radius) / geom.pixel_scales.max()).to_value("")
    return int(np.ceil(width_npix) // 2 * 2 + 1)


def _odd_npix_geom(geom: WcsGeom, max_radius, axes=()) -> WcsGeom:
    """gammapy's ``WcsGeom.to_odd_npix(max_radius)``: an odd-sized grid centred on ``geom``'s centre."""
    return WcsGeom.create(
        skydir=geom.center_skydir,
        binsz=geom.pixel_scales.max().deg,
        npix=_odd_npix(geom, max_radius),
        proj=geom.projection,
        frame=geom.frame,
        axes=axes,
    )


def _upsample_geom(geom: WcsGeom, factor: int) -> WcsGeom:
    """gammapy's ``WcsGeom.upsample(factor)`` for an image geometry."""
    wcs = geom.wcs.deepcopy()
    scale = 1.0 / factor
    wcs.wcs.cdelt *= scale
    wcs.wcs.crpix = (wcs.wcs.crpix - 0.5) / scale + 0.5
    return WcsGeom(wcs, (geom.npix[0] * factor, geom.npix[1] * factor))


class _FineGrids:
    """Sub-pixel offsets from the kernel centre for each plane's cut (gammapy's
    ``to_odd_npix(radius).upsample(factor)`` grids). All cuts share the centre and pixel size, so
    the grid of a smaller cut is the central block of the largest one with the same factor: one
    separation per factor instead of one per plane (WCS set-up and coordinates dominated the
    kernel's cost)."""

    def __init__(self, image_geom, center, radii, factors):
        self.image_geom, self.center, self._grids = image_geom, center, {}
        self._largest = {}
        for radius, factor in zip(radii, factors, strict=True):
            self._largest[factor] = max(self._largest.get(factor, radius), radius)

    def separation(self, radius, factor):
        """(offsets (ny*f, nx*f) Angle, ny, nx, sub-pixel solid angle in sr) of the cut at ``radius``."""
        if factor not in self._grids:
            cut = _odd_npix_geom(self.image_geom, self._largest[factor])
            fine = _upsample_geom(cut, factor)
            self._grids[factor] = (cut.npix[0], cut.npix[1], fine.separation(self.center),
                                   np.prod(np.deg2rad(fine.pixel_scales.deg)))
        nx_big, ny_big, rad, pixel_sr = self._grids[factor]
        n = _odd_npix(self.image_geom, radius)
        ny, nx = min(n, ny_big), min(n, nx_big)
        oy, ox = (ny_big - ny) // 2 * factor, (nx_big - nx) // 2 * factor
        return rad[oy : oy + ny * factor, ox : ox + nx * factor], ny, nx, pixel_sr



class PSFKernel:
    """A PSF kernel: one normalised image per energy plane on an odd-sized pixel grid.

    Parameters
    ----------
    psf_kernel_map : `~bayesdl4.maps.WcsNDMap`
        Kernel cube, data shape ``(n_energy, ny, nx)`` (``ny``, ``nx`` odd, centred on the
        central pixel).
    normalize : bool
        Divide each plane by its sum (empty planes stay zero).
    source : str, optional
        Where the PSF came from, for error messages.
    """

    def __init__(self, psf_kernel_map: WcsNDMap, normalize=True, source=None):
        if not isinstance(psf_kernel_map, WcsNDMap):
            raise GeometryMismatchError(
                f"PSFKernel needs a WcsNDMap, got {type(psf_kernel_map).__name__}"
            )
        self._psf_kernel_map = psf_kernel_map
        self.source = source
        if normalize:
            self.normalize()

    def normalize(self):
        """Normalise each energy plane to unit sum, as gammapy (0/0 and NaN become 0)."""
        data = self._psf_kernel_map.data
        axis = (0, 1) if self._psf_kernel_map.geom.is_image else (1, 2)
        with np.errstate(divide="ignore", invalid="ignore"):
            self._psf_kernel_map.data = np.nan_to_num(data / data.sum(axis=axis, keepdims=True))

    @property
    def psf_kernel_map(self) -> WcsNDMap:
        return self._psf_kernel_map

    @property
    def data(self) -> np.ndarray:
        """Kernel values, shape ``(n_energy, ny, nx)``."""
        return self._psf_kernel_map.data

    @property
    def energy_axis(self) -> MapAxis:
        return self._psf_kernel_map.geom.axes[0]

    @property
    def valid_planes(self) -> np.ndarray:
        """True for energy planes that sum to one (False: an empty plane, see `PSFMap.get_psf_kernel`)."""
        data = self.data if self.data.ndim == 3 else self.data[None]
        sums = data.sum(axis=(1, 2))
        return np.isfinite(sums) & (np.abs(sums - 1) < 1e-6)

    def __repr__(self):
        return (
            f"PSFKernel(shape={self.data.shape}, energy={self.energy_axis.name!r}, "
            f"valid_planes={int(self.valid_planes.sum())}/{self.valid_planes.size})"
        )
