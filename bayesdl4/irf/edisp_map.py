"""Energy-dispersion maps on a coarse sky grid: kernel maps and migration maps, as gammapy 2.1.

- `EDispKernelMap` holds ``P(reco bin | true bin)`` per sky pixel (axes ``energy``,
  ``energy_true``). gammapy takes the kernel of the *nearest* pixel (no spatial interpolation),
  after moving a position outside the valid IRF range to the nearest valid pixel.
- `EDispMap` holds the migration density ``dP/dmigra`` with ``migra = E_reco / E_true`` (axes
  ``migra``, ``energy_true``). A kernel for a reconstructed-energy axis integrates the
  density between the reco edges: the cumulative sum over migra bins (zero at the first edge),
  interpolated linearly in migra and held constant outside the axis, differenced over the reco
  edges, clipped at zero and with values below 1e-8 set to zero.
"""

from __future__ import annotations

import numpy as np
from astropy import units as u

from ..errors import GeometryMismatchError
from ..maps import MapAxis, WcsNDMap
from .core import IRFMap, irf_geom
from .edisp import EDispKernel

__all__ = ["EDispKernelMap", "EDispMap", "get_overlap_fraction"]


def get_overlap_fraction(energy_axis: MapAxis, energy_axis_true: MapAxis) -> np.ndarray:
    """Fraction of each true bin inside each reco bin, shape ``(n_true, n_reco)`` (gammapy's)."""
    a_min, a_max = energy_axis.edges[:-1], energy_axis.edges[1:]
    b_min = energy_axis_true.edges[:-1][:, np.newaxis]
    b_max = energy_axis_true.edges[1:][:, np.newaxis]
    xmin, xmax = np.fmin(a_max, b_max), np.fmax(a_min, b_min)
    return (np.clip(xmin - xmax, 0, np.inf) / (b_max - b_min)).to_value("")


class _EDispMapBase(IRFMap):
    """What both energy-dispersion maps share: the ``EDISP`` HDU and the ``energy_true`` axis last."""

    hdu_name = "EDISP"

    @property
    def edisp_map(self) -> WcsNDMap:
        return self._irf_map

    @property
    def energy_axis_true(self) -> MapAxis:
        return self.geom.axes[1]

    def _nearest_pixel_data(self, position) -> np.ndarray:
        """The map's values in the pixel nearest to ``position``, shape ``(n_true, n_first_axis)``."""
        first, energy_true = self.geom.axes
        coords = {
            "skycoord": position,
            first.name: first.center[np.newaxis, :],
            "energy_true": energy_true.center[:, np.newaxis],
        }
        return self.edisp_map.interp_by_coord(coords, method="nearest")


class EDispKernelMap(_EDispMapBase):
    """Energy-dispersion kernels per sky pixel.

    Parameters
    ----------
    edisp_kernel_map : `~bayesdl4.maps.WcsNDMap`
        Axes ``(energy, energy_true)``; data shape ``(n_true, n_reco, ny, nx)``: row ``i`` of a
        pixel is ``P(reco bin j | true bin i)``.
    exposure_map : `~bayesdl4.maps.WcsNDMap`, optional
        Axes ``(energy squashed, energy_true)``, data shape ``(n_true, 1, ny, nx)``.
    source : str, optional
        File and HDU, for error messages.
    """

    required_axes = (("energy", "energy_true"),)
    kind = "energy-dispersion kernel map"

    def __init__(
        self, edisp_kernel_map: WcsNDMap, exposure_map: WcsNDMap | None = None, source=None
    ):
        super().__init__(edisp_kernel_map, exposure_map=exposure_map, source=source)

    @property
    def energy_axis(self) -> MapAxis:
        return self.geom.axes[0]

    @classmethod
    def from_diagonal_response(cls, energy_axis, energy_axis_true, geom=None):
        """Kernel map of bin overlap fractions (perfect resolution), as gammapy.

        ``geom`` is the image grid (default an all-sky 2 x 1 CAR grid); the exposure is zero.
        """
        geom = irf_geom([energy_axis, energy_axis_true], geom)
        data = get_overlap_fraction(energy_axis, energy_axis_true)[:, :, None, None]
        exposure = WcsNDMap(geom.squash("energy"), unit="m2 s")
        return cls(WcsNDMap(geom, data * np.ones(geom.data_shape)), exposure_map=exposure)

    @classmethod
    def from_edisp_kernel(cls, edisp: EDispKernel, geom=None):
        """The same kernel in every pixel of ``geom`` (default all-sky 2 x 1), as gammapy."""
        out = cls.from_diagonal_response(edisp.energy_axis, edisp.energy_axis_true, geom=geom)
        out.edisp_map.data[...] = edisp.pdf_matrix[:, :, None, None]
        return out

    def get_edisp_kernel(self, position=None, energy_axis=None) -> EDispKernel:
        """Kernel of the pixel nearest to ``position`` (default: the map centre), as gammapy.

        Parameters
        ----------
        position : `~astropy.coordinates.SkyCoord`, optional
            Moved to the nearest pixel where the kernel is defined if it falls outside.
        energy_axis : `MapAxis`, optional
            Reconstructed-energy axis of the dataset; only checked against the map's.

        Returns
        -------
        `EDispKernel` with ``pdf_matrix[i_true, j_reco]``.
        """
        if energy_axis is not None and not energy_axis.is_allclose(self.energy_axis):
            raise GeometryMismatchError(
                f"{self._where()}: reco energy axis {energy_axis} differs from the kernel map's "
                f"{self.energy_axis}"
            )
        position = self._get_nearest_valid_position(self._position(position))
        data = self._nearest_pixel_data(position)
        return EDispKernel((self.energy_axis_true.copy(), self.energy_axis.copy()), data)


class EDispMap(_EDispMapBase):
    """Migration density ``dP/dmigra`` per sky pixel, ``migra = E_reco / E_true``.

    Parameters
    ----------
    edisp_map : `~bayesdl4.maps.WcsNDMap`
        Axes ``(migra, energy_true)``; data shape ``(n_true, n_migra, ny, nx)``.
    exposure_map : `~bayesdl4.maps.WcsNDMap`, optional
        Axes ``(migra squashed, energy_true)``.
    source : str, optional
        File and HDU, for error messages.
    """

    required_axes = (("migra", "energy_true"),)
    kind = "energy-dispersion (migra) map"

    def __init__(self, edisp_map: WcsNDMap, exposure_map: WcsNDMap | None = None, source=None):
        super().__init__(edisp_map, exposure_map=exposure_map, source=source)

    @property
    def migra_axis(self) -> MapAxis:
        return self.geom.axes[0]

    def _kernel_data(self, data, energy_axis, threshold):
        """Migra density ``(n_true, n_migra, ...)`` -> kernel ``(n_true, n_reco, ...)``."""
        migra, energy_true = self.migra_axis, self.energy_axis_true
        extra = (1,) * (data.ndim - 2)
        width = migra.bin_width.to_value("").reshape((1, -1) + extra)
        cumulative = np.insert(np.cumsum(data * width, axis=1), 0, 0, axis=1)
        scale = np.log if migra.interp == "log" else np.asarray
        nodes = scale(migra.edges.to_value(""))
        reco_edges = energy_axis.edges.to_value(energy_true.unit)
        x = scale(reco_edges[np.newaxis, :] / energy_true.center.value[:, np.newaxis])
        # linear between the cumulative nodes, constant beyond them (gammapy pads the axis with
        # the edge values and extrapolates the flat last interval)
        k = np.clip(np.searchsorted(nodes, x, side="right") - 1, 0, nodes.size - 2)
        t = np.clip((x - nodes[k]) / (nodes[k + 1] - nodes[k]), 0.0, 1.0)
        rows = np.arange(energy_true.nbin)[:, np.newaxis]
        t = t.reshape(t.shape + extra)
        values = cumulative[rows, k] * (1 - t) + cumulative[rows, k + 1] * t
        kernel = np.clip(np.diff(values, axis=1), 0, np.inf)
        kernel[kernel < threshold] = 0
        return kernel

    def to_edisp_kernel_map(self, energy_axis: MapAxis, threshold=1e-8) -> EDispKernelMap:
        """Kernel map for the reco-energy ``energy_axis`` in every pixel (gammapy's conversion)."""
        if energy_axis.name != "energy":
            raise GeometryMismatchError(
                f"to_edisp_kernel_map needs an axis named 'energy', got {energy_axis.name!r}"
            )
        data = self._kernel_data(self.edisp_map.data.astype(float), energy_axis, threshold)
        geom = self.geom.to_image().to_cube([energy_axis.copy(), self.energy_axis_true.copy()])
        exposure = None
        if self.exposure_map is not None:
            exposure = self.exposure_map.copy(geom=geom.squash("energy"))
        return EDispKernelMap(WcsNDMap(geom, data), exposure_map=exposure, source=self.source)

    def get_edisp_kernel(self, energy_axis: MapAxis, position=None) -> EDispKernel:
        """Kernel for ``energy_axis`` from the pixel nearest to ``position`` (default: the centre).

        As gammapy, the migra density is taken at the nearest pixel (no move to a valid pixel)
        and converted as `to_edisp_kernel_map`. Keywords work for both map types:
        ``get_edisp_kernel(position=..., energy_axis=...)``.
        """
        if energy_axis is None:
            raise GeometryMismatchError("EDispMap.get_edisp_kernel needs the reco energy_axis")
        data = self._nearest_pixel_data(self._position(position))
        kernel = self._kernel_data(data, energy_axis, threshold=1e-8)
        return EDispKernel((self.energy_axis_true.copy(), energy_axis.copy()), kernel)

    @classmethod
    def from_diagonal_response(cls, energy_axis_true, migra_axis=None, geom=None):
        """Near-perfect resolution (density spread over the two migra bins around 1), as gammapy."""
        if migra_axis is None:
            migra_axis = MapAxis(np.linspace(1 - 1e-5, 1 + 1e-5, 4), name="migra", interp="lin")
        geom = irf_geom([migra_axis, energy_axis_true], geom)
        pix = np.arange(migra_axis.nbin) - migra_axis.coord_to_pix(1 * u.Unit(""))
        weights = np.where(np.abs(pix) < 1, 1 - np.abs(pix), 0)
        density = weights / migra_axis.bin_width.to_value("")
        data = density[np.newaxis, :, np.newaxis, np.newaxis] * np.ones(geom.data_shape)
        exposure = WcsNDMap(geom.squash("migra"), unit="m2 s")
        return cls(WcsNDMap(geom, data), exposure_map=exposure)
