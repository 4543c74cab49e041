"""Spatial-model base class and the spherical geometry it is written with (``pytensor.tensor``).

Conventions (what ``evaluate`` receives and returns): ``lon``, ``lat`` are tensors in deg in the
model's frame; parameters arrive in their canonical units (the units of ``default_parameters``:
deg for angles); the result is a surface brightness in sr^-1. ``evaluate_tensor(lon, lat, pvals)``
builds that graph from a ``pvals`` dict ``Parameter -> tensor`` (see `bayesdl4.models.core`).

Pixel integration follows gammapy 2.1's ``SpatialModel.integrate_geom``: each pixel is split into
``f x f`` sub-pixels (``f`` from the model's smallest scale, `SpatialModel.oversampling_factor`),
the model is evaluated at their centres and the mean times the pixel's solid angle is the
pixel's flux fraction. `subpixel_coords` gives the sub-pixel centres of a `WcsGeom` (numpy, known
when the graph is built); `SpatialModel.integrate_pixels` is the tensor integral on them.

Angles are computed with exact spherical formulas (haversine separation, astropy's position
angle). Where a formula has a removable singularity (separation and position angle at the model
centre, ``z ** (1 / eta)`` at ``z = 0``) the graph takes a finite branch chosen with
``pt.switch`` so that gradients stay finite at every pixel.
"""

import logging

import numpy as np
import pytensor.tensor as pt
from astropy import units as u
from astropy.coordinates import Angle, SkyCoord
from pytensor.graph.basic import Variable

from ..errors import GeometryMismatchError, ModelError
from .core import ModelBase
from .parameter import Parameter, parameters_from_dict

log = logging.getLogger(__name__)

__all__ = [
    "SpatialModel",
    "subpixel_coords",
    "angular_separation_tensor",
    "haversine_tensor",
    "position_angle_components",
    "inverse_sigma_eff_squared",
    "MAX_OVERSAMPLING",
    "FRAMES",
]

#: gammapy's upper limit on the sub-pixel factor per axis
MAX_OVERSAMPLING = 200
#: frames a spatial model can be defined in (gammapy's names)
FRAMES = ("icrs", "galactic")

# compiled numpy conveniences, keyed by (kind, model structure, links)

DEG = np.pi / 180.0


# --------------------------------------------------------------------------------------------
# tensor helpers (angles in deg in, plain numbers out)
# --------------------------------------------------------------------------------------------


def _tensor(x):
    return x if isinstance(x, Variable) else pt.as_tensor_variable(np.asarray(x, dtype="float64"))


def _deg(value):
    """Angle (Quantity, Angle, array in deg or tensor in deg) as numpy deg or tensor."""
    if isinstance(value, Variable):
        return value
    if isinstance(value, u.Quantity):
        try:
            return np.asarray(value.to_value(u.deg), dtype="float64")
        except u.UnitConversionError as exc:
            raise ModelError(f"coordinate {value} is not an angle") from exc
    return np.asarray(value, dtype="float64")


def haversine_tensor(lon, lat, lon_0, lat_0):
    """``(1 - cos sep) / 2`` between (lon, lat) and (lon_0, lat_0) (deg), smooth everywhere."""
    lat, lat_0 = lat * DEG, lat_0 * DEG
    dlon = (lon - lon_0) * DEG
    return pt.sin((lat - lat_0) / 2) ** 2 + pt.cos(lat) * pt.cos(lat_0) * pt.sin(dlon / 2) ** 2


def angular_separation_tensor(lon, lat, lon_0, lat_0):
    """Great-circle distance in rad, exact for all separations.

    ``2 atan2(sqrt(h), sqrt(1 - h))`` with the haversine ``h``; at zero separation the value is
    0 and the gradient is taken as 0 (the cone's apex), so gradients are finite at the centre.
    """
    hav = haversine_tensor(lon, lat, lon_0, lat_0)
    positive = hav > 0
    hav_safe = pt.switch(positive, hav, 0.5)
    sep = 2.0 * pt.arctan2(pt.sqrt(hav_safe), pt.sqrt(pt.maximum(1.0 - hav_safe, 0.0)))
    return pt.switch(positive, sep, 0.0)


def position_angle_components(lon_0, lat_0, lon, lat):
    """``(r cos pa, r sin pa, r^2)`` of astropy's position angle of (lon, lat) seen from
    (lon_0, lat_0) (deg), east of north; ``r = sin(separation)``.

    At zero separation the components are taken as ``(1, 0, 1)`` (position angle 0, as numpy's
    ``arctan2(0, 0)`` gives in gammapy), with zero gradient.
    """
    lat, lat_0 = lat * DEG, lat_0 * DEG
    dlon = (lon - lon_0) * DEG
    cos_lat = pt.cos(lat)
    x = pt.sin(lat) * pt.cos(lat_0) - cos_lat * pt.sin(lat_0) * pt.cos(dlon)
    y = pt.sin(dlon) * cos_lat
    r2 = x**2 + y**2
    defined = r2 > 0
    return pt.switch(defined, x, 1.0), pt.switch(defined, y, 0.0), pt.switch(defined, r2, 1.0)


def inverse_sigma_eff_squared(lon, lat, lon_0, lat_0, major, e, phi):
    """``1 / sigma_eff^2`` of gammapy's ``compute_sigma_eff`` (elongated models).

    ``sigma_eff`` is the radius of the planar ellipse (semi-major ``major``, eccentricity ``e``,
    major axis at position angle ``phi`` deg) in the direction of (lon, lat):
    ``1 / sigma_eff^2 = sin^2(dphi) / minor^2 + cos^2(dphi) / major^2`` with
    ``dphi = phi - pa``, ``minor = major sqrt(1 - e^2)``; ``major`` in any angle unit, the result
    in its inverse square. Written with sin/cos products (no arctan2), so it is smooth in every
    argument and independent of gammapy's wrapping of ``phi`` (the ellipse has period 180 deg).
    """
    c, s, r2 = position_angle_components(lon_0, lat_0, lon, lat)
    sin_phi, cos_phi = pt.sin(phi * DEG), pt.cos(phi * DEG)
    sin_d = sin_phi * c - cos_phi * s  # r sin(phi - pa)
    cos_d = cos_phi * c + sin_phi * s  # r cos(phi - pa)
    major2 = major**2
    minor2 = major2 * (1.0 - e**2)
    return (sin_d**2 / minor2 + cos_d**2 / major2) / r2


# --------------------------------------------------------------------------------------------
# sub-pixel grids
# --------------------------------------------------------------------------------------------


def subpixel_coords(geom, oversampling=1, frame=None):
    """Sky coordinates of the ``f x f`` sub-pixel centres of every pixel of ``geom``.

    The sub-pixels are those of gammapy's ``geom.upsample(f)``: pixel ``i`` covers
    ``[i - 0.5, i + 0.5]`` and its sub-pixel centres sit at ``i - 0.5 + (k + 0.5) / f``.

    Parameters
    ----------
    geom : `~bayesdl4.maps.WcsGeom`
        Only the spatial part is used.
    oversampling : int
        Sub-pixels per pixel along each axis.
    frame : {"icrs", "galactic"}, optional
        Frame of the returned coordinates (default the geometry's).

    Returns
    -------
    lon, lat : `~numpy.ndarray`
        In deg, shape ``(ny, nx, f * f)``.
    """
    f = int(oversampling)
    if f < 1:
        raise ModelError(f"oversampling must be a positive integer, got {oversampling!r}")
    nx, ny = geom.npix
    offsets = (np.arange(f) + 0.5) / f - 0.5
    x = np.arange(nx)[None, :, None, None] + offsets[None, None, None, :]
    y = np.arange(ny)[:, None, None, None] + offsets[None, None, :, None]
    x, y = np.broadcast_arrays(x, y)
    lon, lat = geom.wcs.wcs_pix2world(x.reshape(-1), y.reshape(-1), 0)
    frame = geom.frame if frame is None else frame
    if frame != geom.frame:
        sky = SkyCoord(lon, lat, unit="deg", frame=geom.frame).transform_to(frame)
        lon, lat = sky.spherical.lon.deg, sky.spherical.lat.deg
    shape = (ny, nx, f * f)
    return np.reshape(lon, shape), np.reshape(lat, shape)


def _pixel_solid_angle(geom):
    """Solid angle of each pixel of ``geom`` in sr, shape (ny, nx)."""
    return np.asarray(geom.solid_angle().to_value("sr")).reshape(geom.npix[1], geom.npix[0])


def _validate_frame(frame):
    frame = getattr(frame, "name", frame)
    if frame not in FRAMES:
        raise ModelError(f"spatial model frame must be one of {list(FRAMES)}, got {frame!r}")
    return frame


# --------------------------------------------------------------------------------------------
# base class
# --------------------------------------------------------------------------------------------


def _lon_0():
    return Parameter("lon_0", 0.0, "deg")


def _lat_0():
    return Parameter("lat_0", 0.0, "deg", min=-90, max=90)


class SpatialModel(ModelBase):
    """Base of spatial models (gammapy 2.1's names, parameters, defaults and YAML tags).

    Subclasses write ``evaluate(lon, lat, **params)`` on tensors (deg, canonical units, returns
    sr^-1) and give ``evaluation_radius`` / ``evaluation_bin_size_min`` as gammapy does.

    Parameters
    ----------
    frame : {"icrs", "galactic"}
        Frame of ``lon_0``, ``lat_0`` and of the coordinates ``evaluate`` receives.
    **kwargs
        Parameter values (floats in the default unit, Quantities, strings or `Parameter`).
    """

    #: unit of ``evaluate``'s result
    unit = u.Unit("sr-1")

    def __init__(self, frame="icrs", **kwargs):
        self.frame = _validate_frame(frame)
        super().__init__(**kwargs)

    @classmethod
    def from_position(cls, position, **kwargs):
        """Model centred on ``position`` (a SkyCoord), in the position's frame."""
        frame = _validate_frame(position.frame.name)
        sph = position.spherical
        return cls(lon_0=sph.lon.to("deg"), lat_0=sph.lat.to("deg"), frame=frame, **kwargs)

    # ---- position -------------------------------------------------------------------------
    @property
    def position(self):
        """Model centre as a `~astropy.coordinates.SkyCoord` in the model's frame."""
        return SkyCoord(self.lon_0.quantity, self.lat_0.quantity, frame=self.frame)

    @position.setter
    def position(self, skycoord):
        sph = skycoord.transform_to(self.frame).spherical
        self.lon_0.quantity = sph.lon.to("deg")
        self.lat_0.quantity = sph.lat.to("deg")

    @property
    def evaluation_radius(self):
        """Radius beyond which the model is negligible (`~astropy.coordinates.Angle`), or None."""
        return None

    @property
    def evaluation_bin_size_min(self):
        """Smallest scale the pixel integration must resolve (`Angle`), or None (no oversampling)."""
        return None

    def oversampling_factor(self, geom):
        """gammapy's sub-pixel factor for ``geom``: ``ceil(pixel size / evaluation_bin_size_min)``
        capped at `MAX_OVERSAMPLING` (1 when the model has no smallest scale)."""
        bin_size = self.evaluation_bin_size_min
        if bin_size is None:
            return 1
        res_scale = float(Angle(bin_size).deg)
        if not res_scale > 0:
            return MAX_OVERSAMPLING
        pix_scale = float(np.max(geom.pixel_scales.deg))
        return int(min(int(np.ceil(pix_scale / res_scale)), MAX_OVERSAMPLING))

    # ---- graphs ---------------------------------------------------------------------------
    def evaluate(self, lon, lat, **params):
        raise NotImplementedError(f"{type(self).__name__}.evaluate")

    def evaluate_tensor(self, lon, lat, pvals=None):
        """Surface brightness (sr^-1) at ``lon``, ``lat`` (deg in the model frame; numpy or tensors)."""
        return self.evaluate(_tensor(_deg(lon)), _tensor(_deg(lat)), **self.param_tensors(pvals))

    def integrate_pixels(self, lon, lat, solid_angle, pvals=None):
        """Flux fraction per pixel: mean of the model over sub-pixel centres times solid angle.

        Parameters
        ----------
        lon, lat : array or tensor
            Sub-pixel centres in deg in the model frame, shape ``(..., n_sub)`` (see
            `subpixel_coords`).
        solid_angle : array or tensor
            Pixel solid angle in sr, shape ``(...)``.
        pvals : dict, optional
            ``Parameter -> tensor`` (parameters not in it are constants).

        Returns
        -------
        tensor of shape ``(...)`` (dimensionless).
        """
        values = self.evaluate_tensor(lon, lat, pvals)
        return values.mean(axis=-1) * _tensor(solid_angle)

    def integrate_geom_tensor(self, geom, pvals=None, oversampling_factor=None):
        """Flux fraction in each pixel of ``geom`` (whole grid, no cutout), shape (ny, nx).

        ``oversampling_factor`` defaults to `oversampling_factor` at the current parameter
        values; it is fixed in the graph (choose it for the smallest scale the sampler may
        reach when the size parameters are free).
        """
        factor = (
            self.oversampling_factor(geom) if oversampling_factor is None else oversampling_factor
        )
        lon, lat = subpixel_coords(geom, factor, self.frame)
        return self.integrate_pixels(lon, lat, _pixel_solid_angle(geom), pvals)

    # ---- numpy conveniences (the same graphs, compiled once per model structure) -------
    def _structure_key(self):
        own = tuple((slot, str(p.unit)) for slot, p in self._slots())
        return (type(self).__name__, own, self._extra_key())

    def _extra_key(self):
        return ()

    def _compiled_kind(self, kind):
        def build(pvals):
            if kind == "evaluate":
                lon, lat = pt.dvector("lon"), pt.dvector("lat")
                return [lon, lat], self.evaluate_tensor(lon, lat, pvals)
            lon, lat = pt.dmatrix("lon"), pt.dmatrix("lat")
            solid_angle = pt.dvector("solid_angle")
            return [lon, lat, solid_angle], self.integrate_pixels(lon, lat, solid_angle, pvals)

        return self._compiled(kind, build)

    def __call__(self, lon, lat):
        """Surface brightness at ``lon``, ``lat`` (angles, or deg, in the model frame) as a
        Quantity in sr^-1 (broadcast shape)."""
        lon, lat = np.broadcast_arrays(_deg(lon), _deg(lat))
        fn, values = self._compiled_kind("evaluate")
        out = fn(np.ravel(lon), np.ravel(lat), values)
        return u.Quantity(np.reshape(out, lon.shape), self.unit)

    def evaluate_geom(self, geom):
        """Surface brightness at the pixel centres of ``geom`` (Quantity, shape (ny, nx))."""
        coord = geom.to_image().get_coord()
        lon, lat = coord.lon, coord.lat
        if geom.frame != self.frame:
            sky = SkyCoord(lon, lat, unit="deg", frame=geom.frame).transform_to(self.frame)
            lon, lat = sky.spherical.lon.deg, sky.spherical.lat.deg
        return self(lon, lat)

    def _integrate_numpy(self, geom, factor):
        """Compiled `integrate_pixels` on all pixels of ``geom`` (image), shape (ny, nx)."""
        lon, lat = subpixel_coords(geom, factor, self.frame)
        n_sub = lon.shape[-1]
        fn, values = self._compiled_kind("integrate")
        solid_angle = _pixel_solid_angle(geom)
        out = fn(lon.reshape(-1, n_sub), lat.reshape(-1, n_sub), solid_angle.ravel(), values)
        return np.reshape(out, solid_angle.shape)

    def integrate_geom(self, geom, oversampling_factor=None):
        """Flux fraction per pixel of ``geom`` as a `WcsNDMap` image, as gammapy 2.1 computes it.

        With oversampling (``f > 1``), gammapy evaluates only a cutout of width
        ``2 max(evaluation_radius, pixel size)`` around the model position (zero elsewhere);
        without, the whole grid. This convenience does the same, with the graph of
        `integrate_pixels`.
        """
        from ..maps.wcsmap import WcsNDMap

        image = geom.to_image()
        target, factor = image, oversampling_factor
        radius = self.evaluation_radius
        if radius is not None:
            pix_scale = float(np.max(image.pixel_scales.deg))
            width = 2 * max(float(Angle(radius).deg), pix_scale)
            try:
                target = image.cutout(self.position, width)
            except (GeometryMismatchError, ValueError):
                factor = 1
        if factor is None:
            factor = self.oversampling_factor(image)
        data = np.zeros(image.data_shape)
        if factor > 1 and target is not image:
            slices = target.cutout_slices(image, mode="trim")
            part = self._integrate_numpy(target, factor)
            data[slices["parent-slices"]] = part[slices["cutout-slices"]]
        else:
            data = self._integrate_numpy(image, factor)
        return WcsNDMap(image, data=data, unit="")

    # ---- copies and YAML ------------------------------------------------------------------
    def _from_parameters(self, kwargs):
        return type(self)(frame=self.frame, **kwargs)

    def to_dict(self):
        """gammapy's YAML dict ``{type, frame, parameters}``."""
        data = super().to_dict()
        return {"type": data["type"], "frame": self.frame, "parameters": data["parameters"]}

    @classmethod
    def _parameters_from_dict(cls, data, links=None):
        return parameters_from_dict(data, cls.default_parameters, cls.__name__, links)

    @classmethod
    def from_dict(cls, data, links=None):
        """Model from gammapy's YAML dict (the ``spatial:`` entry)."""
        kwargs = cls._parameters_from_dict(data, links)
        return cls(frame=data.get("frame", "icrs"), **kwargs)

    def __repr__(self):
        pars = ", ".join(f"{slot}={p.value:.6g}" for slot, p in self._slots())
        return f"{type(self).__name__}({pars}, frame={self.frame!r})"
