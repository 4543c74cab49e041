"""Axes, geometries and maps."""

from .axes import MapAxis
from .region import RegionGeom, RegionNDMap

__all__ = ["MapAxis", "RegionGeom", "RegionNDMap"]
