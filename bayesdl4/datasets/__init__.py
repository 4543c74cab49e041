"""Dataset containers (numpy only; no PyMC, no file formats)."""

from .core import Datasets
from .spectrum import SpectrumDataset, SpectrumDatasetOnOff

__all__ = ["Datasets", "SpectrumDataset", "SpectrumDatasetOnOff"]
