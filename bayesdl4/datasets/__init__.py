"""Dataset containers (numpy only; no PyMC, no file formats)."""

from .core import Datasets
from .map import MapDataset, MapDatasetOnOff
from .spectrum import SpectrumDataset, SpectrumDatasetOnOff

__all__ = ["Datasets", "MapDataset", "MapDatasetOnOff", "SpectrumDataset", "SpectrumDatasetOnOff"]
