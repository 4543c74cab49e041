"""What the reduced IRF maps share: the `IRFMap` base (validation, positions, I/O conveniences).

`bayesdl4.irf.psf_map.PSFMap` and the energy-dispersion maps of `bayesdl4.irf.edisp_map` derive
from `IRFMap`.
"""

from __future__ import annotations

import logging

import numpy as np
from astropy.coordinates import SkyCoord

from ..errors import DataFormatError, GeometryMismatchError
from ..io import registry
from ..maps import MapAxis, WcsGeom, WcsNDMap

__all__ = ["IRFMap", "irf_geom"]

log = logging.getLogger(__name__)


def irf_geom(axes: list[MapAxis], geom: WcsGeom | None = None) -> WcsGeom:
    """The image grid of ``geom`` with the non-spatial ``axes`` (gammapy's order).

    Without ``geom`` the grid is gammapy's default for IRF maps: all-sky, 2 x 1 CAR pixels.
    """
    if geom is None:
        geom = WcsGeom.create(npix=(2, 1), proj="CAR", binsz=180)
    return geom.to_image().to_cube(axes)


class IRFMap:
    """Base of the reduced IRF maps: an IRF cube on a coarse sky grid plus its exposure.

    Subclasses set ``required_axes`` (names of the non-spatial axes in gammapy's order) and
    ``hdu_name`` (the GADF HDU the map is stored in).

    Parameters
    ----------
    irf_map : `~bayesdl4.maps.WcsNDMap`
        The IRF cube, data shape ``(n_axis_1, n_axis_0, ny, nx)``.
    exposure_map : `~bayesdl4.maps.WcsNDMap`, optional
        Exposure with the first axis squashed to one bin, data shape ``(n_axis_1, 1, ny, nx)``.
    source : str, optional
        Where the map came from (file and HDU), used in error messages.
    """

    required_axes: tuple[tuple[str, ...], ...] = ()
    hdu_name = ""
    kind = "IRF map"

    def __init__(self, irf_map: WcsNDMap, exposure_map: WcsNDMap | None = None, source=None):
        self.source = str(source) if source is not None else "<in-memory map>"
        if not isinstance(irf_map, WcsNDMap):
            raise GeometryMismatchError(
                f"{type(self).__name__} needs a WcsNDMap, got {type(irf_map).__name__}"
            )
        names = tuple(ax.name for ax in irf_map.geom.axes)
        if names not in self.required_axes:
            allowed = " or ".join(str(list(n)) for n in self.required_axes)
            raise DataFormatError(
                f"{self._where()}: axes {list(names)} are not those of a {self.kind} ({allowed}, "
                "in this order)"
            )
        self._irf_map = irf_map
        self._check_values(irf_map.data, "")
        if exposure_map is not None:
            self._check_exposure(exposure_map)
        self.exposure_map = exposure_map

    # validation -----------------------------------------------------------------------
    def _where(self, suffix=""):
        return f"{self.kind} ({self.source}{suffix})"

    def _check_values(self, data, suffix):
        """Non-finite or negative IRF values make a file unusable: name the last-axis planes."""
        axis = self._irf_map.geom.axes[-1]
        for test, what in ((~np.isfinite(data), "non-finite"), (data < 0, "negative")):
            if np.any(test):
                planes = np.flatnonzero(np.any(test, axis=tuple(range(1, data.ndim))))
                values = ", ".join(f"{axis.center[i]:.4g}" for i in planes[:5])
                raise DataFormatError(
                    f"{self._where(suffix)}: {int(test.sum())} {what} values in {axis.name} "
                    f"plane(s) {planes.tolist()} ({values}); an IRF must be finite and >= 0: "
                    "repair the file or drop these planes"
                )

    def _check_exposure(self, exposure_map):
        if not isinstance(exposure_map, WcsNDMap):
            raise GeometryMismatchError(
                f"{self._where()}: exposure must be a WcsNDMap, got {type(exposure_map).__name__}"
            )
        geom, egeom = self._irf_map.geom, exposure_map.geom
        expected = geom.data_shape[:1] + (1,) + geom.data_shape[2:]
        if egeom.data_shape != expected or egeom.axes[-1].name != geom.axes[-1].name:
            raise GeometryMismatchError(
                f"{self._where()}: exposure shape {egeom.data_shape} (axes {egeom.axes_names}) does "
                f"not match the IRF: expected {expected} with the {geom.axes[0].name!r} axis squashed"
            )

    # properties -----------------------------------------------------------------------
    @property
    def geom(self) -> WcsGeom:
        return self._irf_map.geom

    @property
    def has_single_spatial_bin(self) -> bool:
        """True when the IRF does not depend on position (one spatial pixel)."""
        return self._irf_map.geom.npix == (1, 1)

    @property
    def mask_safe_image(self) -> np.ndarray:
        """Pixels where the IRF is defined (any value > 0 over the non-spatial axes), shape (ny, nx)."""
        data = self._irf_map.data
        return np.any(data > 0, axis=tuple(range(data.ndim - 2)))

    # positions ------------------------------------------------------------------------
    def _position(self, position) -> SkyCoord:
        if position is None:
            return self.geom.center_skydir
        if not isinstance(position, SkyCoord) or not position.isscalar:
            raise GeometryMismatchError(
                f"{self._where()}: position must be a scalar SkyCoord, got {position!r}"
            )
        return position

    def _get_nearest_valid_position(self, position: SkyCoord) -> SkyCoord:
        """``position``, or the nearest pixel centre where the IRF is defined (as gammapy).

        The pixel holding ``position`` (nearest centre) is tested; outside the map or in an
        empty pixel the closest valid pixel centre is returned instead.
        """
        mask = self.mask_safe_image
        geom = self.geom.to_image()
        x, y = geom.coord_to_pix(position)
        ix, iy = int(np.floor(x + 0.5)), int(np.floor(y + 0.5))
        ny, nx = mask.shape
        inside = np.isfinite(x) and np.isfinite(y) and 0 <= ix < nx and 0 <= iy < ny
        if (inside and mask[iy, ix]) or not mask.any():
            return position
        log.warning(
            "Position %s is outside the valid range of %s; using the nearest pixel where it is defined",
            position,
            self._where(),
        )
        coords = geom.get_coord().skycoord
        separation = coords.separation(position).deg
        separation[~mask] = np.inf
        return coords.flatten()[int(np.argmin(separation))]

    # I/O conveniences (format registry; the formats live in bayesdl4.io.gadf_irf) ------
    @classmethod
    def read(cls, filename, format="gadf", hdu=None):
        """Read from a FITS file (``format="gadf"``; PSF maps also ``"gtpsf"``).

        As gammapy, `EDispMap.read` returns an `EDispKernelMap` when the HDU holds a kernel.
        """
        return registry.lookup(cls, format, "read", what="IRF map")(
            filename, cls=cls, format=format, hdu=hdu
        )

    @classmethod
    def from_hdulist(cls, hdulist, hdu=None, exposure_hdu=None, format="gadf"):
        return registry.lookup(cls, format, "from_hdulist", what="IRF map")(
            hdulist, cls=cls, hdu=hdu, exposure_hdu=exposure_hdu, format=format
        )

    def to_hdulist(self, format="gadf"):
        """HDU list as gammapy writes it: ``<HDU>``, ``<HDU>_BANDS``, ``<HDU>_EXPOSURE(_BANDS)``."""
        return registry.lookup(type(self), format, "to_hdulist", what="IRF map")(self, format=format)

    def write(self, filename, overwrite=False, format="gadf"):
        """Write to a FITS file atomically (refuses to replace a file unless ``overwrite``)."""
        registry.lookup(type(self), format, "write", what="IRF map")(
            self, filename, overwrite=overwrite, format=format
        )

    def copy(self):
        exposure = None if self.exposure_map is None else self.exposure_map.copy()
        out = type(self).__new__(type(self))
        out.__dict__.update(self.__dict__)
        out._irf_map = self._irf_map.copy()
        out.exposure_map = exposure
        return out

    def __repr__(self):
        return (
            f"{type(self).__name__}(shape={self._irf_map.data.shape}, axes={self.geom.axes_names}, "
            f"unit={self._irf_map.unit}, exposure={self.exposure_map is not None}, source={self.source!r})"
        )
