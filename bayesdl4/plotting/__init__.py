"""Plots (matplotlib; imported lazily by users, never by computation modules)."""

from .spectrum import plot_counts_ppc

__all__ = ["plot_counts_ppc"]
