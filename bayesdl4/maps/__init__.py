"""Axes, geometries and maps."""

from .axes import MapAxis
from .region import RegionGeom, RegionNDMap
from .wcs import ImageCoord, WcsGeom
from .wcsmap import WcsNDMap

__all__ = ["MapAxis", "RegionGeom", "RegionNDMap", "ImageCoord", "WcsGeom", "WcsNDMap"]
