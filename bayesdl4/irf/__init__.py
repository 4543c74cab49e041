"""Reduced instrument response functions."""

from .edisp import EDispKernel
from .edisp_map import EDispKernelMap, EDispMap
from .psf_map import PSFKernel, PSFMap

__all__ = ["EDispKernel", "EDispKernelMap", "EDispMap", "PSFKernel", "PSFMap"]
