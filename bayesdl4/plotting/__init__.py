"""Plots (matplotlib; imported lazily by users, never by computation modules)."""

from .residuals import plot_ppc_statistic, plot_residuals, plot_spectrum_residuals, ppc_residuals
from .spectrum import plot_counts_ppc

__all__ = ["plot_counts_ppc", "plot_residuals", "plot_spectrum_residuals", "plot_ppc_statistic", "ppc_residuals"]
