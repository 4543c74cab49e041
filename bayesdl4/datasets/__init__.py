"""Dataset containers (numpy only; no PyMC, no file formats)."""

from .core import Datasets
from .flux_points import FluxPoints
from .flux_points_dataset import FluxPointsDataset
from .map import MapDataset, MapDatasetOnOff
from .spectrum import SpectrumDataset, SpectrumDatasetOnOff

__all__ = [
    "Datasets",
    "FluxPoints",
    "FluxPointsDataset",
    "MapDataset",
    "MapDatasetOnOff",
    "SpectrumDataset",
    "SpectrumDatasetOnOff",
]
