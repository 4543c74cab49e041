"""Reduced instrument response functions."""

from .edisp import EDispKernel

__all__ = ["EDispKernel"]
