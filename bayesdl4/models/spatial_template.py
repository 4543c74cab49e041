"""Map template spatial model (gammapy 2.1's ``TemplateSpatialModel``).

The template is a `WcsNDMap` image (or a cube with an ``energy_true`` axis), normalised by
default so that each energy plane integrates to one: ``data / sum(data) / solid_angle``.
Values between pixel centres come from gammapy's interpolation: multilinear in pixel coordinates,
of the *logarithm* of the values by default (``interp_kwargs={"values_scale": "log"}``), zero
outside the map and clipped at zero.

The template has no free parameters (its position is frozen at the map centre), so in a graph
it is a constant: `TemplateSpatialModel.evaluate_tensor` needs coordinates known when the graph
is built (numpy arrays or constants) and raises `ModelError` for symbolic ones or for a free
position.
"""

import logging
import os
from pathlib import Path

import numpy as np
import pytensor.tensor as pt
from astropy import units as u
from astropy.coordinates import Angle
from pytensor.graph.basic import Constant, Variable

from ..errors import ModelError
from .parameter import Parameter
from .spatial_base import SpatialModel, _deg, _pixel_solid_angle, subpixel_coords

log = logging.getLogger(__name__)

__all__ = ["TemplateSpatialModel"]


def _numeric(x, what):
    """Numpy value of an array, Quantity (deg) or constant tensor."""
    if isinstance(x, Constant):
        return np.asarray(x.data, dtype=float)
    if isinstance(x, Variable):
        raise ModelError(
            f"TemplateSpatialModel: {what} must be known when the graph is built (numpy or a "
            "constant); a template is a constant in the graph"
        )
    return np.asarray(_deg(x), dtype=float)


class TemplateSpatialModel(SpatialModel):
    """Spatial template from a `~bayesdl4.maps.WcsNDMap`.

    Parameters
    ----------
    map : `~bayesdl4.maps.WcsNDMap`
        Image ``(ny, nx)`` or cube ``(n_energy_true, ny, nx)`` with an ``energy_true`` axis.
    meta : dict, optional
    normalize : bool
        Divide each energy plane by its sum and by the pixel solid angle (unit sr^-1).
    interp_kwargs : dict, optional
        ``method`` ("linear" or "nearest"), ``values_scale`` ("log", default, or "lin"),
        ``fill_value`` (default 0, outside the map).
    filename : str, optional
        File the map was read from; written to YAML (gammapy needs it to read the model back).
    copy_data : bool
        Copy the map data (default) or share it.
    lon_0, lat_0 : optional
        Model position; default the map centre. Must stay frozen: moving the template would
        shift coordinates as gammapy does (planar offsets in lon, lat), which is not in the graph.
    """

    tag = ("TemplateSpatialModel", "template")
    default_parameters = (
        Parameter("lon_0", np.nan, "deg", frozen=True),
        Parameter("lat_0", np.nan, "deg", min=-90, max=90, frozen=True),
    )

    def __init__(
        self,
        map,
        meta=None,
        normalize=True,
        interp_kwargs=None,
        filename=None,
        copy_data=True,
        **kwargs,
    ):
        self._validate(map)
        self.filename = None if filename is None else str(filename)
        self.normalize = bool(normalize)
        self.meta = {} if meta is None else dict(meta)
        self._map = self._process(map, self.normalize, copy_data)
        interp_kwargs = dict(interp_kwargs or {})
        interp_kwargs.setdefault("method", "linear")
        interp_kwargs.setdefault("fill_value", 0)
        interp_kwargs.setdefault("values_scale", "log")
        self._interp_kwargs = interp_kwargs
        kwargs.pop("frame", None)
        center = self.map_center.spherical
        for name, value in (("lon_0", center.lon.deg), ("lat_0", center.lat.deg)):
            given = kwargs.get(name)
            if given is None or (isinstance(given, Parameter) and np.isnan(given.value)):
                kwargs[name] = Parameter(
                    name,
                    value,
                    "deg",
                    frozen=True,
                    **({"min": -90, "max": 90} if name == "lat_0" else {}),
                )
        super().__init__(frame=self._map.geom.frame, **kwargs)

    @staticmethod
    def _validate(map_):
        from ..maps.wcsmap import WcsNDMap

        if not isinstance(map_, WcsNDMap):
            raise ModelError(f"TemplateSpatialModel needs a WcsNDMap, got {type(map_).__name__}")
        names = [ax.name for ax in map_.geom.axes]
        if names not in ([], ["energy_true"]):
            raise ModelError(
                f"TemplateSpatialModel: the map may have only an 'energy_true' axis, got {names}"
            )
        data = map_.data
        if np.any(data < 0):
            log.warning(
                "TemplateSpatialModel: map has negative values (clipped to 0 when evaluated)"
            )
        if np.all(data == 0):
            log.warning("TemplateSpatialModel: map values are all zero")
        if np.any(np.isnan(data)):
            log.warning("TemplateSpatialModel: map has NaN values (treated as 0)")

    @staticmethod
    def _process(map_, normalize, copy_data):
        if normalize:
            data = map_.data.astype(float)
            total = data.sum(axis=(-2, -1), keepdims=True)
            data = np.divide(data, total, out=np.zeros_like(data), where=total != 0)
            data = data / map_.geom.solid_angle().to_value("sr")
            return map_.copy(data=data, unit="sr-1")
        processed = map_.copy() if copy_data else map_.copy(data=map_.data)
        if processed.unit.is_equivalent(""):
            log.warning("TemplateSpatialModel: missing template unit, assuming sr-1")
            processed = processed.copy(data=processed.data, unit="sr-1")
        return processed

    # ---- properties -------------------------------------------------------------------------
    @property
    def map(self):
        return self._map

    @property
    def unit(self):
        """Unit of the template values (sr^-1 when normalised)."""
        return self._map.unit

    @property
    def is_energy_dependent(self):
        return bool(self._map.geom.axes)

    @property
    def map_center(self):
        return self._map.geom.center_skydir

    @property
    def evaluation_radius(self):
        """Half the largest map width (gammapy's choice)."""
        return Angle(np.max(self._map.geom.width.to_value("deg")) / 2.0, "deg")

    # ---- evaluation -------------------------------------------------------------------------
    def _evaluate_numpy(self, lon, lat, energy=None):
        """Template values (numpy, in `unit`) at lon, lat (deg, model frame) [and energy_true]."""
        center = self.map_center.spherical
        lon = np.asarray(lon, dtype=float) - (self.lon_0.quantity.to_value("deg") - center.lon.deg)
        lat = np.asarray(lat, dtype=float) - (self.lat_0.quantity.to_value("deg") - center.lat.deg)
        coords = {"lon": lon, "lat": lat}
        if self.is_energy_dependent:
            if energy is None:
                raise ModelError(
                    "TemplateSpatialModel: the template has an energy_true axis; give energy"
                )
            coords["energy_true"] = u.Quantity(energy, "TeV")
        values = self._map.interp_by_coord(coords, **self._interp_kwargs)
        return np.clip(values, 0, None)

    def evaluate(self, lon, lat, **params):
        return self.evaluate_tensor(lon, lat)

    def _check_frozen(self, pvals):
        for par in (self.lon_0, self.lat_0):
            if pvals and par in pvals:
                raise ModelError(
                    f"TemplateSpatialModel: {par.name} must be frozen (a template cannot move in "
                    "the graph)"
                )

    def evaluate_tensor(self, lon, lat, pvals=None, energy=None):
        """Template values as a constant tensor (``energy`` in TeV broadcasting with lon, lat for
        an energy-dependent template, e.g. shape ``(n_energy, 1, 1)``)."""
        self._check_frozen(pvals)
        lon, lat = _numeric(lon, "lon"), _numeric(lat, "lat")
        if energy is not None:
            energy = _numeric(energy, "energy")
            lon, lat, energy = np.broadcast_arrays(lon, lat, energy)
        return pt.constant(self._evaluate_numpy(lon, lat, energy))

    def integrate_pixels(self, lon, lat, solid_angle, pvals=None, energy=None):
        values = self.evaluate_tensor(lon, lat, pvals, energy)
        return values.mean(axis=-1) * solid_angle

    def integrate_geom_tensor(self, geom, pvals=None, oversampling_factor=None):
        """Flux fraction per pixel of ``geom`` (constant tensor).

        Shape (ny, nx) for an image template; ``(n_energy_true, ny, nx)`` for a cube, evaluated
        at the centres of ``geom``'s ``energy_true`` axis.
        """
        return pt.constant(self._integrate_geom_numpy(geom, oversampling_factor))

    def _integrate_geom_numpy(self, geom, oversampling_factor=None):
        factor = 1 if oversampling_factor is None else int(oversampling_factor)
        lon, lat = subpixel_coords(geom, factor, self.frame)
        solid_angle = _pixel_solid_angle(geom)
        if self.is_energy_dependent:
            energy = geom.axis("energy_true").center.to_value("TeV")[:, None, None, None]
            values = self._evaluate_numpy(lon[None], lat[None], energy)
        else:
            values = self._evaluate_numpy(lon, lat)
        return values.mean(axis=-1) * solid_angle

    def __call__(self, lon, lat, energy=None):
        """Template values at ``lon``, ``lat`` (angles or deg, model frame) as a Quantity."""
        lon, lat = _deg(lon), _deg(lat)
        if energy is not None:
            energy = u.Quantity(energy, "TeV").to_value("TeV")
            lon, lat, energy = np.broadcast_arrays(lon, lat, energy)
        else:
            lon, lat = np.broadcast_arrays(lon, lat)
        return u.Quantity(self._evaluate_numpy(lon, lat, energy), self.unit)

    def evaluate_geom(self, geom):
        """Values at the pixel centres of ``geom`` (and its energy_true centres for a cube)."""
        coord = geom.to_image().get_coord()
        if self.is_energy_dependent:
            energy = geom.axis("energy_true").center[:, None, None]
            return self(coord.lon, coord.lat, energy)
        return self(coord.lon, coord.lat)

    def integrate_geom(self, geom, oversampling_factor=None):
        """Flux fraction per pixel as a `WcsNDMap` (gammapy: no oversampling by default)."""
        from ..maps.wcsmap import WcsNDMap

        target = geom if self.is_energy_dependent else geom.to_image()
        data = self._integrate_geom_numpy(geom, oversampling_factor)
        return WcsNDMap(target, data=np.reshape(data, target.data_shape), unit=self.unit * u.sr)

    # ---- copies and YAML --------------------------------------------------------------------
    def copy(self, copy_data=False):
        """Copy (sharing the map data unless ``copy_data``); new Parameter objects."""
        new = TemplateSpatialModel.__new__(TemplateSpatialModel)
        new.filename = self.filename
        new.normalize = self.normalize
        new.meta = dict(self.meta)
        new._map = self._map.copy() if copy_data else self._map
        new._interp_kwargs = dict(self._interp_kwargs)
        new.frame = self.frame
        new._parameters = [p.copy() for p in self._parameters]  # lon_0, lat_0: never shared
        return new

    def _from_parameters(self, kwargs):
        new = self.copy()
        new._parameters = [kwargs[p.name] for p in self.default_parameters]
        return new

    def _extra_key(self):
        return (id(self._map),)

    def to_dict(self):
        data = super().to_dict()
        if self.filename is None:
            log.warning(
                "TemplateSpatialModel: no filename; the YAML entry cannot be read back "
                "(set model.filename and write the map there)"
            )
        data["filename"] = self.filename
        data["normalize"] = self.normalize
        data["unit"] = str(self.unit)
        return data

    @classmethod
    def read(cls, filename, normalize=True, **kwargs):
        """Template from a FITS map file (``kwargs`` go to `WcsNDMap.read`)."""
        from ..maps.wcsmap import WcsNDMap

        path = Path(os.path.expandvars(str(filename))).expanduser()
        return cls(WcsNDMap.read(path, **kwargs), normalize=normalize, filename=str(filename))

    @classmethod
    def from_dict(cls, data, links=None):
        filename = data.get("filename")
        if not filename:
            raise ModelError("TemplateSpatialModel: the YAML entry has no 'filename'")
        from ..maps.wcsmap import WcsNDMap

        path = Path(os.path.expandvars(str(filename))).expanduser()
        if not path.exists():
            raise ModelError(f"TemplateSpatialModel: template file {filename} not found")
        kwargs = {}
        if data.get("parameters"):
            kwargs = cls._parameters_from_dict(data, links)
        return cls(
            WcsNDMap.read(path),
            normalize=data.get("normalize", True),
            filename=str(filename),
            **kwargs,
        )

    def __repr__(self):
        return (
            f"TemplateSpatialModel(map={self._map.data.shape}, unit={self.unit}, "
            f"frame={self.frame!r}, normalize={self.normalize}, filename={self.filename!r})"
        )
