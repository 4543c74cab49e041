"""Data on a `WcsGeom`: counts, background, exposure cubes and masks, as gammapy's `WcsNDMap`."""

from __future__ import annotations

import numpy as np
from astropy import units as u

from ..errors import GeometryMismatchError
from ..io import registry
from .wcs import WcsGeom

__all__ = ["WcsNDMap"]


class WcsNDMap:
    """An array of shape ``geom.data_shape`` on a `WcsGeom`, with a unit.

    Parameters
    ----------
    geom : `WcsGeom`
    data : array, optional
        Shape ``geom.data_shape`` = ``(n_axis_k, ..., n_axis_0, ny, nx)``; zeros of ``dtype`` if None.
    unit : str or Unit
    dtype : numpy dtype
        Used only when ``data`` is None.
    meta : dict, optional
        Free metadata (written to the ``META`` header keyword as JSON).
    """

    def __init__(self, geom: WcsGeom, data=None, unit="", dtype=float, meta=None):
        if not isinstance(geom, WcsGeom):
            raise GeometryMismatchError(f"WcsNDMap needs a WcsGeom, got {type(geom).__name__}")
        self.geom = geom
        if data is None:
            data = np.zeros(geom.data_shape, dtype=dtype)
        data = np.asarray(data)
        if data.shape != geom.data_shape:
            raise GeometryMismatchError(
                f"WcsNDMap: data shape {data.shape} does not match geometry shape {geom.data_shape} "
                f"(axes {[a.name for a in reversed(geom.axes)]} then (ny, nx))"
            )
        self.data = data
        self.unit = u.Unit(unit)
        self.meta = dict(meta or {})

    @classmethod
    def from_geom(cls, geom, data=None, unit="", dtype=float, meta=None) -> WcsNDMap:
        return cls(geom, data=data, unit=unit, dtype=dtype, meta=meta)

    # I/O (format registry; the format lives in bayesdl4.io.gadf_maps) ----------------
    @classmethod
    def read(cls, filename, hdu=None, hdu_bands=None) -> WcsNDMap:
        """Read a sky map from a FITS file (GADF, or Fermi ``EBOUNDS`` / ``ENERGIES`` cubes).

        Parameters
        ----------
        filename : str or Path
        hdu : str or int, optional
            HDU with the image; default the first HDU with data.
        hdu_bands : str or int, optional
            HDU with the axes table; default from the ``BANDSHDU`` keyword (or ``EBOUNDS``/``ENERGIES``).
        """
        return registry.lookup(cls, "gadf", "read")(filename, hdu=hdu, hdu_bands=hdu_bands)

    def write(self, filename, hdu=None, hdu_bands=None, overwrite=False) -> None:
        """Write as gammapy 2.1 does (image HDU ``hdu``, default PRIMARY, plus ``<HDU>_BANDS``).

        The file is written atomically; an existing file is replaced only with ``overwrite=True``.
        """
        registry.lookup(type(self), "gadf", "write")(
            self, filename, hdu=hdu, hdu_bands=hdu_bands, overwrite=overwrite
        )

    def to_hdulist(self, hdu=None, hdu_bands=None):
        return registry.lookup(type(self), "gadf", "to_hdulist")(self, hdu=hdu, hdu_bands=hdu_bands)

    # values -------------------------------------------------------------------------
    @property
    def quantity(self) -> u.Quantity:
        return u.Quantity(self.data, self.unit, copy=False)

    @quantity.setter
    def quantity(self, value):
        value = u.Quantity(value)
        data = np.asarray(value.value)
        if data.shape != self.geom.data_shape:
            raise GeometryMismatchError(
                f"quantity shape {data.shape} != geometry shape {self.geom.data_shape}"
            )
        self.data = data
        self.unit = value.unit

    @property
    def is_mask(self) -> bool:
        return self.data.dtype == bool

    def copy(self, geom=None, data=None, unit=None, meta=None) -> WcsNDMap:
        """Copy, optionally replacing geometry, data, unit or meta."""
        return WcsNDMap(
            self.geom if geom is None else geom,
            self.data.copy() if data is None else data,
            unit=self.unit if unit is None else unit,
            meta=dict(self.meta) if meta is None else meta,
        )

    def sum_over_axes(self, axes_names=None, keepdims=True) -> WcsNDMap:
        """Sum over non-spatial axes (all by default).

        With ``keepdims=True`` (gammapy's default) each summed axis stays as one bin spanning
        its full range; otherwise it is dropped.
        """
        names = [ax.name for ax in self.geom.axes] if axes_names is None else list(axes_names)
        geom, data = self.geom, self.data
        for name in names:
            axis_idx = [ax.name for ax in geom.axes].index(geom.axis(name).name)
            data_axis = len(geom.axes) - 1 - axis_idx
            data = np.sum(data, axis=data_axis, keepdims=keepdims)
            if keepdims:
                geom = geom.squash(name)
            else:
                geom = geom._init_copy(axes=[ax.copy() for ax in geom.axes if ax.name != name])
        return WcsNDMap(geom, data, unit=self.unit, meta=dict(self.meta))

    def slice_by_idx(self, slices: dict) -> WcsNDMap:
        """Sub-map selecting bins of non-spatial axes, e.g. ``{"energy": slice(2, 5)}``.

        An integer index drops the axis.
        """
        index = [slice(None)] * self.data.ndim
        axes = []
        n_axes = len(self.geom.axes)
        for idx, ax in enumerate(self.geom.axes):
            sel = slices.get(ax.name, slice(None))
            index[n_axes - 1 - idx] = sel
            if isinstance(sel, slice):
                axes.append(ax.slice(sel))
        unknown = set(slices) - {ax.name for ax in self.geom.axes}
        if unknown:
            raise GeometryMismatchError(
                f"slice_by_idx: unknown axes {sorted(unknown)}; axes: {self.geom.axes_names}"
            )
        geom = self.geom._init_copy(axes=axes)
        return WcsNDMap(geom, self.data[tuple(index)].copy(), unit=self.unit, meta=dict(self.meta))

    def cutout(self, position, width, mode="trim", odd_npix=False, min_npix=1) -> WcsNDMap:
        """Map on ``geom.cutout(...)``; pixels outside the parent (modes "partial") are zero."""
        geom = self.geom.cutout(
            position=position, width=width, mode=mode, odd_npix=odd_npix, min_npix=min_npix
        )
        info = geom.cutout_slices(self.geom, mode=mode)
        parent = (Ellipsis, *info["parent-slices"])
        cut = (Ellipsis, *info["cutout-slices"])
        data = np.zeros(geom.data_shape, dtype=self.data.dtype)
        data[cut] = self.data[parent]
        return WcsNDMap(geom, data, unit=self.unit, meta=dict(self.meta))

    def interp_by_coord(self, coords, method="linear", fill_value=None, values_scale="lin"):
        """Interpolate the data at coordinates, as gammapy's ``WcsNDMap.interp_by_coord``.

        Multilinear in pixel coordinates (spatial pixels from the WCS, axis pixels linear in the
        axis' interp scale); axes of length one are ignored; non-finite data count as zero;
        points outside are extrapolated unless ``fill_value`` is given.

        Parameters
        ----------
        coords : SkyCoord, tuple ``(lon, lat, *axis_values)`` or dict
            E.g. ``{"skycoord": position, "energy_true": energy[:, None]}``; arrays broadcast.
        method : {"linear", "nearest"}
        fill_value : float, optional
        values_scale : {"lin", "log"}
            Interpolate the values linearly or their logarithm.

        Returns
        -------
        values : ndarray, the broadcast shape of the coordinates (without unit).
        """
        from scipy.interpolate import RegularGridInterpolator

        pix = self.geom.coord_to_pix(coords)
        if len(pix) != self.data.ndim:
            raise GeometryMismatchError(
                f"interp_by_coord: need coordinates for all axes {self.geom.axes_names}, got {len(pix)}"
            )
        pix = np.broadcast_arrays(*[np.asarray(p, dtype=float) for p in pix])
        values = self.data.T  # (x, y, axis_0, ...)
        if np.any(np.isfinite(values)):
            values = np.where(np.isfinite(values), values, 0.0)
        values = values.astype(float)
        if values_scale == "log":
            tiny = np.finfo(values.dtype).tiny
            values = np.log(np.clip(values, tiny, None))
        elif values_scale != "lin":
            raise GeometryMismatchError(
                f"interp_by_coord: values_scale must be 'lin' or 'log', got {values_scale!r}"
            )

        keep = [n > 1 for n in values.shape]
        if not any(keep):
            result = np.full(pix[0].shape, values.ravel()[0])
        else:
            grid = [np.arange(n, dtype=float) for n, k in zip(values.shape, keep, strict=True) if k]
            interp = RegularGridInterpolator(
                grid,
                values.reshape([n for n in values.shape if n > 1]),
                method=method,
                bounds_error=False,
                fill_value=None,
            )
            points = np.stack([p.ravel() for p, k in zip(pix, keep, strict=True) if k], axis=-1)
            result = interp(points).reshape(pix[0].shape)
        if values_scale == "log":
            result = np.exp(result)

        if fill_value is not None:
            outside = np.zeros(pix[0].shape, dtype=bool)
            for p, n in zip(pix, values.shape, strict=True):
                idx = np.floor(p + 0.5)
                outside |= (idx < 0) | (idx >= n) | ~np.isfinite(p)
            result = np.where(outside | ~np.isfinite(result), fill_value, result)
        return result

    # views --------------------------------------------------------------------------
    def to_xarray(self):
        """`xarray.DataArray` with dims ``(*reversed axis names, "y", "x")``.

        Coordinates: axis bin centres (1D, unit in their ``attrs``) and ``lon`` / ``lat`` of the
        pixel centres in deg (2D on ``("y", "x")``, in the geometry's frame).
        """
        import xarray as xr

        axes = list(reversed(self.geom.axes))
        coords = {
            ax.name: xr.Variable(
                ax.name, ax.center.value, attrs={"unit": str(ax.unit), "interp": ax.interp}
            )
            for ax in axes
        }
        sky = self.geom.get_coord()
        coords["lon"] = xr.Variable(
            ("y", "x"), sky.lon, attrs={"unit": "deg", "frame": self.geom.frame}
        )
        coords["lat"] = xr.Variable(
            ("y", "x"), sky.lat, attrs={"unit": "deg", "frame": self.geom.frame}
        )
        dims = [ax.name for ax in axes] + ["y", "x"]
        attrs = {
            "unit": str(self.unit),
            "frame": self.geom.frame,
            "projection": self.geom.projection,
        }
        return xr.DataArray(self.data, dims=dims, coords=coords, attrs=attrs)

    def __repr__(self):
        return (
            f"WcsNDMap(shape={self.data.shape}, axes={self.geom.axes_names}, unit={self.unit}, "
            f"dtype={self.data.dtype})"
        )
