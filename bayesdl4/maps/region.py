"""Region geometry (an ON region and non-spatial axes) and maps on it, as gammapy's."""

import numpy as np
from astropy import units as u

from ..errors import GeometryMismatchError

__all__ = ["RegionGeom", "RegionNDMap"]


class RegionGeom:
    """An ON region (a `regions` sky region, or None) with non-spatial axes.

    Parameters
    ----------
    region : `regions.SkyRegion` or None
        The ON region; None for a point-like or unknown region.
    axes : list of `MapAxis`
        Non-spatial axes, usually one energy axis.
    wcs : `astropy.wcs.WCS`, optional
        Reference WCS the region was defined with (kept for file round trips).
    """

    def __init__(self, region=None, axes=(), wcs=None):
        self.region = region
        self.axes = list(axes)
        self.wcs = wcs
        names = [ax.name for ax in self.axes]
        if len(set(names)) != len(names):
            raise GeometryMismatchError(f"RegionGeom: axis names must be unique, got {names}")

    @property
    def data_shape(self):
        """Shape of data on this geometry: reversed axes then (1, 1) spatial, as gammapy."""
        return tuple(ax.nbin for ax in reversed(self.axes)) + (1, 1)

    def axis(self, name):
        for ax in self.axes:
            if ax.name == name:
                return ax
        raise GeometryMismatchError(f"RegionGeom has no axis {name!r}; axes: {[a.name for a in self.axes]}")

    @property
    def center_skydir(self):
        return getattr(self.region, "center", None)

    def to_image(self):
        return RegionGeom(self.region, (), self.wcs)

    def replace_axis(self, axis):
        return RegionGeom(self.region, [axis if ax.name == axis.name else ax for ax in self.axes], self.wcs)

    def energy_mask(self, energy_min=None, energy_max=None):
        """Boolean `RegionNDMap`: reco bins that lie fully inside [energy_min, energy_max].

        As gammapy: a bin is kept if ``e_lo >= energy_min`` and ``e_hi <= energy_max``, so
        ``dataset.mask_fit = dataset.counts.geom.energy_mask(0.1 * u.TeV, 30 * u.TeV)`` works.
        """
        axis = self.axis("energy")
        lo, hi = axis.edges_min, axis.edges_max
        keep = np.ones(axis.nbin, dtype=bool)
        if energy_min is not None:
            keep &= lo >= u.Quantity(energy_min)
        if energy_max is not None:
            keep &= hi <= u.Quantity(energy_max)
        return RegionNDMap(self, keep.reshape(self.data_shape))

    def is_allclose(self, other):
        return (
            isinstance(other, RegionGeom)
            and len(self.axes) == len(other.axes)
            and all(a.is_allclose(b) for a, b in zip(self.axes, other.axes, strict=True))
        )

    def __repr__(self):
        return f"RegionGeom(region={self.region!r}, axes={[a.name for a in self.axes]}, shape={self.data_shape})"


class RegionNDMap:
    """Data on a `RegionGeom`: ``data`` of shape ``geom.data_shape`` and a unit.

    Parameters
    ----------
    geom : `RegionGeom`
    data : array, optional
        Defaults to zeros of ``dtype``.
    unit : str or Unit
    """

    def __init__(self, geom, data=None, unit="", dtype=float):
        self.geom = geom
        if data is None:
            data = np.zeros(geom.data_shape, dtype=dtype)
        data = np.asarray(data.data if isinstance(data, RegionNDMap) else data)
        if data.shape != geom.data_shape:
            if data.size == int(np.prod(geom.data_shape)):
                data = data.reshape(geom.data_shape)
            else:
                raise GeometryMismatchError(
                    f"RegionNDMap: data shape {data.shape} does not match geometry shape {geom.data_shape}"
                )
        self.data = data
        self.unit = u.Unit(unit)

    def __array__(self, dtype=None, copy=None):
        return np.asarray(self.data, dtype=dtype)

    @classmethod
    def from_geom(cls, geom, unit="", dtype=float, data=None):
        return cls(geom, data=data, unit=unit, dtype=dtype)

    @property
    def quantity(self):
        return u.Quantity(self.data, self.unit, copy=False)

    @quantity.setter
    def quantity(self, value):
        value = u.Quantity(value)
        self.data = np.asarray(value.value).reshape(self.geom.data_shape)
        self.unit = value.unit

    def copy(self, data=None, unit=None):
        return RegionNDMap(self.geom, self.data.copy() if data is None else data,
                           self.unit if unit is None else unit)

    def to_xarray(self):
        """`xarray.DataArray` with one named dimension per axis (bin centres as coordinates)."""
        import xarray as xr

        axes = list(reversed(self.geom.axes))
        coords = {ax.name: ax.center.value for ax in axes}
        data = self.data.reshape(self.data.shape[: len(axes)])
        return xr.DataArray(data, dims=[ax.name for ax in axes], coords=coords, attrs={"unit": str(self.unit)})

    def __repr__(self):
        return f"RegionNDMap(shape={self.data.shape}, unit={self.unit}, dtype={self.data.dtype})"
