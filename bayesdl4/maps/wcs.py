"""WCS sky geometry (a celestial pixel grid plus non-spatial axes), as gammapy's `WcsGeom`.

Pixel conventions follow gammapy (and astropy with ``origin=0``): pixel ``(0, 0)`` is the centre of
the first pixel, data arrays are indexed ``[..., iy, ix]`` with the non-spatial axes reversed in
front, i.e. ``data_shape = (n_axis_k, ..., n_axis_0, ny, nx)``. Sky coordinates go through astropy's
WCS (exact spherical projections, so oblique CAR grids such as HAWC's are handled exactly).
"""

from __future__ import annotations

import copy
import logging
import warnings
from dataclasses import dataclass

import numpy as np
from astropy import units as u
from astropy.coordinates import Angle, SkyCoord, angular_separation, position_angle
from astropy.nddata import Cutout2D
from astropy.nddata.utils import NoOverlapError, overlap_slices
from astropy.wcs import WCS, FITSFixedWarning
from astropy.wcs.utils import (
    celestial_frame_to_wcs,
    proj_plane_pixel_scales,
    wcs_to_celestial_frame,
)

from ..errors import GeometryMismatchError
from ..io import registry
from .axes import MapAxis

__all__ = ["WcsGeom", "ImageCoord"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ImageCoord:
    """Sky coordinates of an image grid: ``lon`` / ``lat`` in deg, shape (ny, nx), in ``frame``."""

    lon: np.ndarray
    lat: np.ndarray
    frame: str

    @property
    def skycoord(self) -> SkyCoord:
        return SkyCoord(self.lon, self.lat, unit="deg", frame=self.frame)

    def __iter__(self):
        return iter((self.lon, self.lat))


def _angle_pair(value, what):
    """(lon, lat) in deg from a scalar / pair of floats (deg), Quantities, Angles or strings."""
    if isinstance(value, tuple | list):
        if len(value) != 2:
            raise GeometryMismatchError(
                f"WcsGeom: {what} must be a scalar or a (lon, lat) pair, got {value!r}"
            )
        return float(Angle(value[0], "deg").deg), float(Angle(value[1], "deg").deg)
    angle = Angle(value, "deg").deg
    if np.ndim(angle) == 0:
        return float(angle), float(angle)
    if np.size(angle) == 2:
        return float(angle[0]), float(angle[1])
    raise GeometryMismatchError(
        f"WcsGeom: {what} must be a scalar or a (lon, lat) pair, got {value!r}"
    )


class WcsGeom:
    """A celestial WCS pixel grid of ``npix = (nx, ny)`` pixels with optional non-spatial axes.

    Parameters
    ----------
    wcs : `~astropy.wcs.WCS`
        Two-dimensional celestial WCS (copied).
    npix : tuple of int
        Number of pixels ``(nx, ny)`` along longitude and latitude.
    axes : list of `MapAxis`
        Non-spatial axes (energy, energy_true, rad, migra, ...), in gammapy order: the first
        axis is the fastest-varying after the spatial ones (``data_shape`` lists them reversed).
    """

    def __init__(self, wcs: WCS, npix, axes=()):
        if wcs.naxis != 2 or not wcs.has_celestial:
            raise GeometryMismatchError(
                f"WcsGeom needs a two-dimensional celestial WCS, got naxis={wcs.naxis}, ctype={list(wcs.wcs.ctype)}"
            )
        nx, ny = (int(n) for n in npix)
        if nx < 1 or ny < 1:
            raise GeometryMismatchError(f"WcsGeom: npix must be positive, got {(nx, ny)}")
        self._wcs = wcs.deepcopy()
        self._wcs.array_shape = (ny, nx)
        self._npix = (nx, ny)
        self.axes = list(axes)
        names = [ax.name for ax in self.axes]
        if len(set(names)) != len(names) or {"lon", "lat"} & set(names):
            raise GeometryMismatchError(
                f"WcsGeom: axis names must be unique and not lon/lat, got {names}"
            )
        self._frame = wcs_to_celestial_frame(self._wcs).name
        self._solid_angle_cache = None

    # construction -------------------------------------------------------------------
    @classmethod
    def create(
        cls,
        npix=None,
        binsz=0.5,
        proj="CAR",
        frame="icrs",
        refpix=None,
        axes=None,
        skydir=None,
        width=None,
    ) -> WcsGeom:
        """Geometry centred on ``skydir``, as gammapy's ``WcsGeom.create`` (same WCS for the same arguments).

        Parameters
        ----------
        npix : int or (int, int), optional
            Number of pixels (lon, lat); takes precedence over ``width``.
        binsz : float, str, Angle or pair
            Pixel size in deg.
        proj : str
            WCS projection code ("CAR", "TAN", "AIT", ...).
        frame : {"icrs", "galactic"}
        refpix : (float, float), optional
            FITS (1-based) reference pixel; default the map centre ``((nx + 1) / 2, (ny + 1) / 2)``.
        axes : list of `MapAxis`, optional
        skydir : `~astropy.coordinates.SkyCoord` or (lon, lat) in deg of ``frame``, optional
            Reference position (CRVAL); default (0, 0).
        width : float, str, Angle or pair, optional
            Map width in deg; ``npix = rint(width / binsz)``. All-sky when neither npix nor width is given.
        """
        if skydir is None:
            crval = (0.0, 0.0)
        elif isinstance(skydir, SkyCoord):
            sky = skydir.transform_to(frame)
            crval = (float(sky.spherical.lon.deg), float(sky.spherical.lat.deg))
            frame = sky.frame.name
        elif isinstance(skydir, tuple | list) and len(skydir) == 2:
            crval = (
                float(u.Quantity(skydir[0], "deg").value),
                float(u.Quantity(skydir[1], "deg").value),
            )
        else:
            raise GeometryMismatchError(
                f"WcsGeom.create: invalid skydir {skydir!r}; give a SkyCoord or (lon, lat)"
            )

        binsz = _angle_pair(binsz, "binsz")
        if npix is None:
            width = (360.0, 180.0) if width is None else _angle_pair(width, "width")
            npix = (int(np.rint(width[0] / binsz[0])), int(np.rint(width[1] / binsz[1])))
        elif np.ndim(npix) == 0:
            npix = (int(npix), int(npix))
        else:
            npix = (int(npix[0]), int(npix[1]))

        if refpix is None:
            refpix = ((npix[0] + 1) / 2.0, (npix[1] + 1) / 2.0)

        celestial_frame = SkyCoord(np.nan, np.nan, frame=frame, unit="deg").frame
        wcs = celestial_frame_to_wcs(celestial_frame, projection=proj)
        wcs.wcs.crpix = refpix
        wcs.wcs.crval = crval
        wcs.wcs.cdelt = (-binsz[0], binsz[1])
        wcs.array_shape = (npix[1], npix[0])
        wcs.wcs.datfix()
        return cls(wcs, npix, axes=axes or ())

    @classmethod
    def from_header(cls, header, hdu_bands=None, axes=None) -> WcsGeom:
        """Geometry from a FITS image header (and the non-spatial axes).

        ``npix`` comes from ``WCSSHAPE`` when present (gammapy's convention), else ``NAXIS1/2``.
        The axes are given directly (``axes``) or read from a BANDS table HDU (``hdu_bands``,
        see `bayesdl4.io.gadf_maps.axes_from_bands_hdu`).
        """
        if hdu_bands is not None:
            if axes is not None:
                raise GeometryMismatchError("WcsGeom.from_header: give hdu_bands or axes, not both")
            axes = registry.lookup(cls, "gadf", "read_axes")(hdu_bands)
        with warnings.catch_warnings():
            # datfix notes such as "Set MJD-OBS from DATE-OBS" concern ancillary keys only
            warnings.simplefilter("ignore", FITSFixedWarning)
            wcs = WCS(header, naxis=2).sub(2)
        if "WCSSHAPE" in header:
            shape = _parse_wcsshape(header["WCSSHAPE"])
            npix = shape[:2]
        else:
            npix = (header["NAXIS1"], header["NAXIS2"])
        return cls(wcs, npix, axes=axes or ())

    def to_header(self):
        """FITS header: the WCS keywords plus ``WCSSHAPE`` (axis keywords are added by `bayesdl4.io`)."""
        header = self._wcs.to_header()
        shape = ",".join(str(n) for n in (*self._npix, *(ax.nbin for ax in self.axes)))
        header["WCSSHAPE"] = f"({shape})"
        return header

    def _init_copy(self, wcs=None, npix=None, axes=None):
        return WcsGeom(
            self._wcs if wcs is None else wcs,
            self._npix if npix is None else npix,
            axes=[ax.copy() for ax in self.axes] if axes is None else axes,
        )

    # properties ---------------------------------------------------------------------
    @property
    def wcs(self) -> WCS:
        """The celestial WCS (do not modify in place)."""
        return self._wcs

    @property
    def npix(self) -> tuple[int, int]:
        """Number of pixels ``(nx, ny)``."""
        return self._npix

    @property
    def frame(self) -> str:
        """Frame name (astropy): "icrs" or "galactic"."""
        return self._frame

    @property
    def projection(self) -> str:
        return self._wcs.wcs.ctype[0][5:]

    @property
    def axes_names(self) -> list[str]:
        return ["lon", "lat"] + [ax.name for ax in self.axes]

    @property
    def data_shape(self) -> tuple[int, ...]:
        """Shape of data on this geometry: reversed non-spatial axes, then ``(ny, nx)``."""
        return tuple(ax.nbin for ax in reversed(self.axes)) + (self._npix[1], self._npix[0])

    @property
    def data_shape_image(self) -> tuple[int, ...]:
        """``(1, ..., 1, ny, nx)``: broadcasts a spatial image against ``data_shape``."""
        return (1,) * len(self.axes) + (self._npix[1], self._npix[0])

    @property
    def data_shape_axes(self) -> tuple[int, ...]:
        """``(n_axis_k, ..., n_axis_0, 1, 1)``: broadcasts axis values against ``data_shape``."""
        return tuple(ax.nbin for ax in reversed(self.axes)) + (1, 1)

    @property
    def ndim(self) -> int:
        return len(self.data_shape)

    @property
    def is_image(self) -> bool:
        return not self.axes

    @property
    def pixel_scales(self) -> Angle:
        """Pixel size (lon, lat) at the reference pixel, as an Angle of shape (2,)."""
        return Angle(proj_plane_pixel_scales(self._wcs), "deg")

    @property
    def width(self) -> u.Quantity:
        """Image width (lon, lat) in deg: pixel scale times number of pixels."""
        return self.pixel_scales.to("deg") * np.array(self._npix)

    @property
    def is_allsky(self) -> bool:
        width = self.width.to_value("deg")
        return bool(np.isclose(width[0], 360.0) and np.isclose(width[1], 180.0))

    @property
    def center_pix(self) -> tuple[float, float]:
        """Pixel coordinate (x, y) of the image centre."""
        return ((self._npix[0] - 1.0) / 2.0, (self._npix[1] - 1.0) / 2.0)

    @property
    def center_skydir(self) -> SkyCoord:
        """Sky position of the image centre."""
        x, y = self.center_pix
        return SkyCoord.from_pixel(x, y, self._wcs)

    def axis(self, name) -> MapAxis:
        for ax in self.axes:
            if ax.name == name:
                return ax
        raise GeometryMismatchError(
            f"WcsGeom has no axis {name!r}; axes: {[a.name for a in self.axes]}"
        )

    # coordinates --------------------------------------------------------------------
    def get_coord(self, mode="center") -> ImageCoord:
        """Sky coordinates of pixel centres (shape (ny, nx)) or corners (``mode="edges"``, (ny+1, nx+1)).

        Pixels outside the projection's domain (all-sky maps) are NaN.
        """
        if mode == "center":
            x, y = np.arange(self._npix[0], dtype=float), np.arange(self._npix[1], dtype=float)
        elif mode == "edges":
            x, y = (
                np.arange(-0.5, self._npix[0], dtype=float),
                np.arange(-0.5, self._npix[1], dtype=float),
            )
        else:
            raise GeometryMismatchError(
                f"get_coord: mode must be 'center' or 'edges', got {mode!r}"
            )
        xx, yy = np.meshgrid(x, y)
        lon, lat = self._wcs.wcs_pix2world(xx, yy, 0)
        return ImageCoord(lon, lat, self._frame)

    def pix_to_coord(self, pix):
        """Coordinates of pixel positions ``(x, y, *axis_pix)``: lon, lat in deg, axis values as Quantities."""
        pix = tuple(pix)
        x, y = np.broadcast_arrays(np.asarray(pix[0], dtype=float), np.asarray(pix[1], dtype=float))
        lon, lat = self._wcs.wcs_pix2world(x, y, 0)
        out = (lon, lat)
        for ax, p in zip(self.axes, pix[2:], strict=False):
            out += (ax.pix_to_coord(p),)
        return out

    def _parse_coords(self, coords):
        """(lon, lat in deg of this frame, [axis coords]) from a SkyCoord, tuple or dict."""
        axis_values = []
        if isinstance(coords, SkyCoord):
            sky, rest = coords, {}
        elif isinstance(coords, dict):
            rest = dict(coords)
            sky = rest.pop("skycoord", None)
            if sky is None:
                sky = (rest.pop("lon"), rest.pop("lat"))
        else:
            coords = tuple(coords)
            sky, rest = (
                coords[:2],
                {ax.name: c for ax, c in zip(self.axes, coords[2:], strict=False)},
            )
        if isinstance(sky, SkyCoord):
            sky = sky.transform_to(self._frame)
            lon, lat = sky.spherical.lon.deg, sky.spherical.lat.deg
        else:
            lon = u.Quantity(sky[0], "deg").value
            lat = u.Quantity(sky[1], "deg").value
        for ax in self.axes:
            if ax.name in rest:
                axis_values.append(rest.pop(ax.name))
        if rest:
            raise GeometryMismatchError(
                f"coordinates for unknown axes {list(rest)}; geometry axes: {self.axes_names}"
            )
        return lon, lat, axis_values

    def coord_to_pix(self, coords):
        """Pixel positions ``(x, y, *axis_pix)`` of coordinates.

        ``coords`` is a `SkyCoord`, a tuple ``(lon, lat, *axis_values)`` (deg in this geometry's
        frame) or a dict with ``"skycoord"`` (or ``"lon"``/``"lat"``) and axis names. Axis
        coordinates may be omitted (only the spatial pixels are then returned).
        """
        lon, lat, axis_values = self._parse_coords(coords)
        lon, lat = np.broadcast_arrays(np.asarray(lon, dtype=float), np.asarray(lat, dtype=float))
        x, y = self._wcs.wcs_world2pix(lon, lat, 0)
        out = (x, y)
        for ax, value in zip(self.axes, axis_values, strict=False):
            out += (ax.coord_to_pix(value),)
        return out

    def separation(self, center) -> Angle:
        """Angular distance of each pixel centre to ``center`` (SkyCoord), shape (ny, nx)."""
        coord = self.get_coord()
        center = center.transform_to(self._frame)
        sep = angular_separation(
            np.deg2rad(coord.lon),
            np.deg2rad(coord.lat),
            center.spherical.lon.rad,
            center.spherical.lat.rad,
        )
        return Angle(sep, "rad").to("deg")

    def solid_angle(self) -> u.Quantity:
        """Solid angle of each pixel in sr, shape ``data_shape_image``.

        Computed as gammapy does (two planar triangles from the four pixel corners, with
        great-circle side lengths and position angles), so values agree to rounding.
        """
        if self._solid_angle_cache is None:
            corners = self.get_coord(mode="edges")
            lon, lat = np.deg2rad(corners.lon), np.deg2rad(corners.lat)

            def corner(sl_y, sl_x):
                return lon[sl_y, sl_x], lat[sl_y, sl_x]

            first, rest = slice(None, -1), slice(1, None)
            low_left = corner(first, first)
            low_right = corner(rest, first)
            up_left = corner(first, rest)
            up_right = corner(rest, rest)

            low = angular_separation(*low_left, *low_right)
            left = angular_separation(*low_left, *up_left)
            up = angular_separation(*up_left, *up_right)
            right = angular_separation(*low_right, *up_right)

            def pa(a, b):
                return position_angle(*a, *b).to_value(u.rad)

            angle_low_right = pa(low_right, up_right) - pa(low_right, low_left)
            angle_up_left = pa(up_left, up_right) - pa(low_left, up_left)
            # planar triangles with sides in rad: the area is in sr
            area = 0.5 * low * right * np.sin(angle_low_right) + 0.5 * up * left * np.sin(
                angle_up_left
            )
            self._solid_angle_cache = np.abs(area).reshape(self.data_shape_image)
        return u.Quantity(self._solid_angle_cache, "sr")

    def bin_volume(self) -> u.Quantity:
        """Solid angle times the bin widths of all non-spatial axes, shape ``data_shape``."""
        value = self.solid_angle()
        for idx, ax in enumerate(reversed(self.axes)):
            shape = [1] * self.ndim
            shape[idx] = ax.nbin
            value = value * ax.bin_width.reshape(shape)
        return value * np.ones(self.data_shape)

    # derived geometries -------------------------------------------------------------
    def to_image(self) -> WcsGeom:
        """The same spatial grid without non-spatial axes."""
        return self._init_copy(axes=[])

    def to_cube(self, axes) -> WcsGeom:
        """This grid with ``axes`` appended to the existing non-spatial axes."""
        return self._init_copy(axes=[ax.copy() for ax in self.axes] + list(axes))

    def replace_axis(self, axis) -> WcsGeom:
        """Copy with the axis of the same name replaced by ``axis``."""
        self.axis(axis.name)
        return self._init_copy(
            axes=[axis if ax.name == axis.name else ax.copy() for ax in self.axes]
        )

    def squash(self, axis_name) -> WcsGeom:
        """Copy with axis ``axis_name`` reduced to a single bin spanning its range."""
        self.axis(axis_name)
        return self._init_copy(
            axes=[ax.squash() if ax.name == axis_name else ax.copy() for ax in self.axes]
        )

    def cutout(self, position, width, mode="trim", odd_npix=False, min_npix=1) -> WcsGeom:
        """Sub-grid around ``position``, aligned with this one (integer pixel offset), as gammapy.

        Parameters
        ----------
        position : `~astropy.coordinates.SkyCoord`
        width : angle or (lon, lat) pair of angles
            Size of the cutout; rounded to whole pixels.
        mode : {"trim", "partial", "strict"}
            Passed to `astropy.nddata.Cutout2D`: "trim" clips the cutout at the map border.
        odd_npix : bool
            Round the number of pixels up to an odd number.
        min_npix : int
            Minimum number of pixels per side.
        """
        width = np.array(_angle_pair(width, "width"))
        width_npix = np.clip(width / self.pixel_scales.deg, min_npix, None)
        if odd_npix:
            width_npix = (np.ceil(width_npix) // 2 * 2 + 1).astype(int)
        try:
            c2d = Cutout2D(
                data=np.empty((self._npix[1], self._npix[0]), dtype=bool),
                wcs=self._wcs,
                position=position,
                size=width_npix[::-1],  # Cutout2D wants (ny, nx)
                mode=mode,
            )
        except NoOverlapError as exc:
            raise GeometryMismatchError(
                f"cutout at {position} with width {tuple(width)} deg does not overlap the map"
            ) from exc
        return self._init_copy(wcs=c2d.wcs, npix=c2d.shape[::-1])

    def cutout_slices(self, parent: WcsGeom, mode="partial") -> dict:
        """Index slices (y, x) of this cutout in ``parent`` ("parent-slices") and of the overlapping
        part within this cutout ("cutout-slices"), as gammapy's ``WcsGeom.cutout_slices``."""
        x, y = parent.to_image().coord_to_pix(self.center_skydir)
        slices = overlap_slices(
            large_array_shape=parent.data_shape[-2:],
            small_array_shape=self.data_shape[-2:],
            position=(float(y), float(x)),
            mode=mode,
        )
        return {"parent-slices": slices[0], "cutout-slices": slices[1]}

    # masks --------------------------------------------------------------------------
    def region_mask(self, regions, inside=True):
        """Boolean `WcsNDMap` (shape ``data_shape``): True for pixels whose centre is in any region.

        Accepts a sky or pixel region, a list of them, a DS9 string, or a SkyCoord (a point).
        As gammapy, a point region marks the up to four pixels whose centres lie within one
        pixel of the point in both x and y.
        """
        from regions import PixCoord, PixelRegion, PointSkyRegion, Regions, SkyRegion

        from .wcsmap import WcsNDMap

        if isinstance(regions, str):
            regions = list(Regions.parse(regions, format="ds9"))
        elif isinstance(regions, SkyCoord):
            regions = [PointSkyRegion(center=regions)]
        elif isinstance(regions, SkyRegion | PixelRegion):
            regions = [regions]
        regions = list(regions or [])

        ny, nx = self._npix[1], self._npix[0]
        yy, xx = np.mgrid[0:ny, 0:nx].astype(float)
        mask = np.zeros((ny, nx), dtype=bool)
        for region in regions:
            if isinstance(region, PointSkyRegion):
                x0, y0 = self.coord_to_pix(region.center)
                mask |= (np.abs(xx - x0) < 1) & (np.abs(yy - y0) < 1)
                continue
            pix_region = region.to_pixel(self._wcs) if isinstance(region, SkyRegion) else region
            mask |= pix_region.contains(PixCoord(xx, yy))
        if not inside:
            mask = ~mask
        data = np.broadcast_to(mask, self.data_shape).copy()
        return WcsNDMap(self, data=data)

    # relations ----------------------------------------------------------------------
    def is_allclose(self, other, rtol_axes=1e-6, rtol_wcs=1e-6) -> bool:
        """Same shape, axes equal to ``rtol_axes`` and WCS equal to ``rtol_wcs`` (ancillary keys ignored)."""
        if not isinstance(other, WcsGeom) or self.data_shape != other.data_shape:
            return False
        if not all(
            a.is_allclose(b, rtol=rtol_axes) for a, b in zip(self.axes, other.axes, strict=True)
        ):
            return False
        return bool(self._wcs.wcs.compare(other.wcs.wcs, cmp=1, tolerance=rtol_wcs))

    def __eq__(self, other):
        return self.is_allclose(other)

    def __hash__(self):
        return id(self)

    def cutout_offset(self, other: WcsGeom, tolerance=1e-6):
        """Integer pixel offset ``(ix0, iy0)`` of this grid inside ``other``, or None.

        Not None when both share the same projection, reference value, pixel size and rotation,
        their reference pixels differ by whole pixels, this grid lies inside ``other``, and the
        non-spatial axes are equal.
        """
        if not isinstance(other, WcsGeom) or len(self.axes) != len(other.axes):
            return None
        if not all(a.is_allclose(b) for a, b in zip(self.axes, other.axes, strict=True)):
            return None
        shift = np.asarray(other.wcs.wcs.crpix) - np.asarray(self._wcs.wcs.crpix)
        offset = np.round(shift)
        if not np.allclose(shift, offset, rtol=0, atol=tolerance):
            return None
        shifted = self._wcs.deepcopy()
        shifted.wcs.crpix = np.asarray(other.wcs.wcs.crpix, dtype=float)
        if not shifted.wcs.compare(other.wcs.wcs, cmp=1, tolerance=tolerance):
            return None
        ix0, iy0 = int(offset[0]), int(offset[1])
        if (
            ix0 < 0
            or iy0 < 0
            or ix0 + self._npix[0] > other.npix[0]
            or iy0 + self._npix[1] > other.npix[1]
        ):
            return None
        return ix0, iy0

    def is_aligned_cutout_of(self, other: WcsGeom, tolerance=1e-6) -> bool:
        """True if this geometry equals ``other`` or is a cutout of it (same pixel grid, integer offset, inside)."""
        return self.cutout_offset(other, tolerance=tolerance) is not None

    def __repr__(self):
        lon, lat = self._wcs.wcs.crval
        return (
            f"WcsGeom(npix={self._npix}, frame={self._frame!r}, proj={self.projection!r}, "
            f"binsz={tuple(round(float(b), 6) for b in self.pixel_scales.deg)}, crval=({lon:.4f}, {lat:.4f}), "
            f"axes={[a.name for a in self.axes]}, data_shape={self.data_shape})"
        )

    def __copy__(self):
        return self._init_copy()

    def copy(self) -> WcsGeom:
        return copy.copy(self)


def _parse_wcsshape(value):
    """``"(nx,ny,n1,...)"`` -> tuple of ints (without eval)."""
    try:
        return tuple(int(v) for v in str(value).strip().strip("()").split(",") if v.strip())
    except ValueError as exc:
        raise GeometryMismatchError(f"invalid WCSSHAPE header value {value!r}") from exc
