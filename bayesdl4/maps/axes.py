"""Binned axes (energy, true energy, ...) with edges, centres and interpolation."""

import numpy as np
from astropy import units as u

from ..errors import GeometryMismatchError

__all__ = ["MapAxis"]


class MapAxis:
    """A binned axis: ``nbin + 1`` edges with a unit, a name and an interpolation scheme.

    Parameters
    ----------
    edges : `~astropy.units.Quantity` or array, shape (nbin + 1,)
        Bin edges, strictly increasing.
    name : str
        ``"energy"`` (reconstructed), ``"energy_true"``, ``"rad"``, ``"migra"``, ...
    interp : {"log", "lin"}
        How centres are placed and values are interpolated along the axis.
    unit : str, optional
        Unit when ``edges`` has none.
    """

    def __init__(self, edges, name="energy", interp="log", unit=""):
        # ``unit=""`` means "no unit given": keep the unit of Quantity edges instead of
        # trying to convert them to dimensionless.
        quantity = u.Quantity(edges, unit if unit not in ("", None) else None)
        values = np.asarray(quantity.value, dtype=float)
        if values.ndim != 1 or values.size < 2:
            raise GeometryMismatchError(f"axis {name!r}: need at least two edges, got shape {values.shape}")
        if not np.all(np.isfinite(values)) or not np.all(np.diff(values) > 0):
            raise GeometryMismatchError(f"axis {name!r}: edges must be finite and strictly increasing")
        if interp not in ("log", "lin"):
            raise GeometryMismatchError(f"axis {name!r}: interp must be 'log' or 'lin', got {interp!r}")
        if interp == "log" and values[0] <= 0:
            raise GeometryMismatchError(f"axis {name!r}: log axis needs positive edges")
        self._edges = values
        self.unit = quantity.unit
        self.name = name
        self.interp = interp
        # "edges": the bins are defined by their edges; "center": by their centres (nodes),
        # with edges half-way between nodes in the interp scale (gammapy's node_type).
        self.node_type = "edges"
        self._nodes = None

    # construction -----------------------------------------------------------------
    @classmethod
    def from_edges(cls, edges, name="energy", interp="log", unit=""):
        """Axis from explicit edges."""
        return cls(edges, name=name, interp=interp, unit=unit)

    @classmethod
    def from_energy_bounds(cls, energy_min, energy_max, nbin, unit=None, per_decade=False, name="energy"):
        """Log-spaced energy axis as gammapy's ``MapAxis.from_energy_bounds``."""
        unit = u.Unit(unit) if unit is not None else u.Quantity(energy_min).unit
        if unit == u.dimensionless_unscaled:
            raise GeometryMismatchError("from_energy_bounds: give energies with a unit or pass unit=")
        emin = u.Quantity(energy_min, unit).to_value(unit)
        emax = u.Quantity(energy_max, unit).to_value(unit)
        if per_decade:
            nbin = int(np.ceil(np.log10(emax / emin) * nbin))
        edges = np.geomspace(emin, emax, int(nbin) + 1)
        return cls(edges * unit, name=name, interp="log")

    @classmethod
    def from_nodes(cls, nodes, name="energy", interp="log", unit=""):
        """Axis defined by bin centres (gammapy's ``node_type="center"``), e.g. ``rad`` or a
        true-energy axis on which a quantity is sampled rather than integrated.

        Edges lie half-way between neighbouring nodes in the ``interp`` scale and are
        extrapolated by half a step at both ends, as gammapy computes them.
        """
        quantity = u.Quantity(nodes, unit if unit not in ("", None) else None)
        values = np.atleast_1d(np.asarray(quantity.value, dtype=float))
        if values.ndim != 1 or values.size < 1:
            raise GeometryMismatchError(f"axis {name!r}: need at least one node, got shape {values.shape}")
        if not np.all(np.isfinite(values)) or not np.all(np.diff(values) > 0):
            raise GeometryMismatchError(f"axis {name!r}: nodes must be finite and strictly increasing")
        if interp == "log" and values[0] <= 0:
            raise GeometryMismatchError(f"axis {name!r}: log axis needs positive nodes")
        if values.size == 1:
            # gammapy uses nearest-neighbour "interpolation" for a single node: both edges at the node
            raise GeometryMismatchError(f"axis {name!r}: a node axis needs at least two nodes")
        scaled = np.log(values) if interp == "log" else values
        inner = 0.5 * (scaled[1:] + scaled[:-1])
        first = scaled[0] - 0.5 * (scaled[1] - scaled[0])
        last = scaled[-1] + 0.5 * (scaled[-1] - scaled[-2])
        edges = np.concatenate([[first], inner, [last]])
        if interp == "log":
            edges = np.exp(edges)
        axis = cls(edges * quantity.unit, name=name, interp=interp)
        axis.node_type = "center"
        axis._nodes = values
        return axis

    # properties ---------------------------------------------------------------------
    @property
    def nbin(self):
        return self._edges.size - 1

    @property
    def edges(self):
        """Bin edges as a Quantity, shape (nbin + 1,)."""
        return self._edges * self.unit

    @property
    def edges_min(self):
        return self._edges[:-1] * self.unit

    @property
    def edges_max(self):
        return self._edges[1:] * self.unit

    @property
    def center(self):
        """Bin centres (geometric mean for log axes; the nodes of a node axis), shape (nbin,)."""
        if self._nodes is not None:
            return self._nodes * self.unit
        lo, hi = self._edges[:-1], self._edges[1:]
        centre = np.sqrt(lo * hi) if self.interp == "log" else 0.5 * (lo + hi)
        return centre * self.unit

    @property
    def bin_width(self):
        return np.diff(self._edges) * self.unit

    @property
    def bounds(self):
        return self.edges[[0, -1]]

    def __len__(self):
        return self.nbin

    # relations ----------------------------------------------------------------------
    def is_allclose(self, other, rtol=1e-6):
        """Same name, node type, number of bins and edges equal to ``rtol``."""
        return (
            isinstance(other, MapAxis)
            and self.name == other.name
            and self.node_type == other.node_type
            and self.nbin == other.nbin
            and np.allclose(self._edges, other.edges.to_value(self.unit), rtol=rtol, atol=0)
        )

    def __eq__(self, other):
        return self.is_allclose(other)

    __hash__ = None

    def copy(self, name=None):
        if self._nodes is not None:
            return MapAxis.from_nodes(self.center, name=name or self.name, interp=self.interp)
        return MapAxis(self.edges, name=name or self.name, interp=self.interp)

    def squash(self):
        """One-bin axis spanning the full range (gammapy's ``MapAxis.squash``)."""
        return MapAxis(self.edges[[0, -1]], name=self.name, interp=self.interp)

    def _pix_grid(self):
        """(pixel, scaled coordinate) nodes of the piecewise-linear pixel <-> coordinate map."""
        if self._nodes is not None:
            values, pix = self._nodes, np.arange(self.nbin, dtype=float)
        else:
            values, pix = self._edges, np.arange(self.nbin + 1, dtype=float) - 0.5
        return pix, (np.log(values) if self.interp == "log" else values)

    def coord_to_pix(self, coord):
        """Fractional pixel coordinate of axis values (bin ``i`` centre at ``i``), as gammapy.

        Linear in the ``interp`` scale between edges (or nodes), extrapolated outside.
        """
        value = np.asarray(u.Quantity(coord, self.unit).to_value(self.unit), dtype=float)
        pix, scaled = self._pix_grid()
        x = np.log(value) if self.interp == "log" else value
        return _interp_extrapolate(x, scaled, pix)

    def pix_to_coord(self, pix):
        """Axis values (Quantity) at fractional pixel coordinates; inverse of `coord_to_pix`."""
        grid_pix, scaled = self._pix_grid()
        x = _interp_extrapolate(np.asarray(pix, dtype=float), grid_pix, scaled)
        return (np.exp(x) if self.interp == "log" else x) * self.unit

    def interp_values(self, x, xp, fp):
        """Interpolate ``fp`` given at ``xp`` to ``x`` with this axis' scheme (log in x for log axes)."""
        if self.interp == "log":
            return np.interp(np.log(x), np.log(xp), fp)
        return np.interp(x, xp, fp)

    def coord_to_idx(self, coord):
        """Bin index of each coordinate (-1 outside)."""
        value = u.Quantity(coord, self.unit).to_value(self.unit)
        idx = np.searchsorted(self._edges, value, side="right") - 1
        idx = np.where((value < self._edges[0]) | (value >= self._edges[-1]), -1, idx)
        return idx

    def slice(self, index):
        """Sub-axis of the bins selected by a slice object."""
        start, stop, step = index.indices(self.nbin)
        if step != 1:
            raise GeometryMismatchError("MapAxis.slice supports unit steps only")
        if self._nodes is not None:
            return MapAxis.from_nodes(self.center[start:stop], name=self.name, interp=self.interp)
        return MapAxis(self._edges[start : stop + 1] * self.unit, name=self.name, interp=self.interp)

    def __repr__(self):
        lo, hi = self._edges[0], self._edges[-1]
        node = "" if self.node_type == "edges" else ", node_type='center'"
        return f"MapAxis(name={self.name!r}, nbin={self.nbin}, bounds=[{lo:.4g}, {hi:.4g}] {self.unit}, interp={self.interp!r}{node})"


def _interp_extrapolate(x, xp, fp):
    """Piecewise-linear interpolation of ``fp(xp)`` at ``x`` with linear extrapolation at both ends."""
    x = np.asarray(x, dtype=float)
    out = np.interp(x, xp, fp)
    lo, hi = x < xp[0], x > xp[-1]
    out = np.where(lo, fp[0] + (x - xp[0]) * (fp[1] - fp[0]) / (xp[1] - xp[0]), out)
    out = np.where(hi, fp[-1] + (x - xp[-1]) * (fp[-1] - fp[-2]) / (xp[-1] - xp[-2]), out)
    return out
