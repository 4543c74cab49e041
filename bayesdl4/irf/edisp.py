"""Energy dispersion kernel: probability of a reconstructed-energy bin given a true-energy bin."""

import numpy as np

from ..errors import DataFormatError, GeometryMismatchError
from ..maps import MapAxis

__all__ = ["EDispKernel"]


class EDispKernel:
    """Dense redistribution matrix ``pdf_matrix[i_true, j_reco]`` (an OGIP RMF).

    Predicted counts per reco bin are ``(integrated_flux * exposure) @ pdf_matrix``.
    """

    def __init__(self, axes, data):
        energy_true, energy = axes
        if energy_true.name != "energy_true" or energy.name != "energy":
            raise GeometryMismatchError(
                f"EDispKernel axes must be named ('energy_true', 'energy'), got ({energy_true.name!r}, {energy.name!r})"
            )
        data = np.asarray(data, dtype=float)
        if data.shape != (energy_true.nbin, energy.nbin):
            raise GeometryMismatchError(
                f"EDispKernel: matrix shape {data.shape} does not match axes ({energy_true.nbin}, {energy.nbin})"
            )
        if not np.all(np.isfinite(data)) or np.any(data < 0):
            raise DataFormatError("EDispKernel: matrix must be finite and non-negative")
        self.axes = (energy_true, energy)
        self.pdf_matrix = data

    @property
    def energy_axis_true(self) -> MapAxis:
        return self.axes[0]

    @property
    def energy_axis(self) -> MapAxis:
        return self.axes[1]

    @classmethod
    def from_diagonal_response(cls, energy_axis_true, energy_axis=None):
        """Perfect resolution: each true bin goes to the reco bin holding its centre (equal axes: identity)."""
        energy_axis = energy_axis or energy_axis_true.copy(name="energy")
        centres = energy_axis_true.center
        idx = energy_axis.coord_to_idx(centres)
        data = np.zeros((energy_axis_true.nbin, energy_axis.nbin))
        ok = idx >= 0
        data[np.arange(energy_axis_true.nbin)[ok], idx[ok]] = 1.0
        return cls((energy_axis_true, energy_axis), data)

    @classmethod
    def from_gauss(cls, energy_axis_true, energy_axis, sigma, bias=0.0):
        """Gaussian resolution in ln(E) with relative width ``sigma`` and relative ``bias``."""
        from scipy.special import ndtr

        centres = energy_axis_true.center.to_value(energy_axis.unit)
        edges = energy_axis.edges.value
        mu = np.log(centres * (1 + bias))
        cdf = ndtr((np.log(edges)[None, :] - mu[:, None]) / sigma)
        return cls((energy_axis_true, energy_axis), np.diff(cdf, axis=1))

    def copy(self):
        return EDispKernel(self.axes, self.pdf_matrix.copy())

    def __repr__(self):
        return f"EDispKernel(shape={self.pdf_matrix.shape})"
