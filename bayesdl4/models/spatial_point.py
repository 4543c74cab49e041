"""Point source: deposit weights on a pixel grid, and the sky -> pixel projection as a tensor.

A point source has no surface brightness; what a map dataset needs is where its flux lands.

``placement="exact"`` (default): the graph layer (`bayesdl4.graph`) keeps the source at its exact
position and evaluates the PSF profile, averaged over a pixel, at the angular offset of each pixel
centre from it (`PointSpatialModel.separation_tensor`): smooth in position, and without the
bilinear deposit's extra smearing by about a pixel, which matters for PSFs a few pixels wide.

``placement="gammapy"`` is gammapy 2.1's behaviour, for bin-by-bin comparisons with gammapy: the
flux is shared between the four pixels nearest the source's (sub-pixel) position ``(x0, y0)``
with bilinear weights ``max(1 - |x - x0|, 0) max(1 - |y - y0|, 0)`` (`point_deposit_weights`),
then convolved with the PSF kernel. The deposit is continuous in position and conserves the
centroid; its gradient jumps where the source crosses a pixel *centre* (not a pixel edge).

``(x0, y0)`` come from the model's ``lon_0``, ``lat_0`` through `sky_to_pix_tensor`, the exact WCS
projection (astropy/wcslib's spherical rotation and projection formulas) written with
``pytensor.tensor``, so position gradients are exact. `PointSpatialModel.integrate_geom_tensor`
is the bilinear deposit for both placements (plots and numpy conveniences without a PSF).

YAML: ``placement`` is written in the ``spatial:`` entry (gammapy 2.1 ignores the key). gammapy's
own files have no such key: reading them gives the default ``"exact"``; set
``placement="gammapy"`` to reproduce gammapy's npred bin by bin.
"""

import numpy as np
import pytensor.tensor as pt
from astropy import units as u
from astropy.coordinates import Angle, CartesianRepresentation, SkyCoord

from ..errors import ModelError
from .core import compile_numpy
from .spatial_base import (
    DEG,
    SpatialModel,
    _lat_0,
    _lon_0,
    _tensor,
    angular_separation_tensor,
)

__all__ = [
    "PointSpatialModel",
    "point_deposit_weights",
    "sky_to_pix_tensor",
    "wcs_projection_constants",
    "PROJECTIONS",
]

PLACEMENTS = ("exact", "gammapy")
DEFAULT_PLACEMENT = "exact"
#: projections `sky_to_pix_tensor` implements (wcslib's formulas, default PV values)
PROJECTIONS = ("CAR", "TAN", "SIN", "ARC", "ZEA", "STG", "AIT")
R0 = 180.0 / np.pi


def point_deposit_weights(x, y, x0, y0):
    """gammapy's bilinear deposit of a point at pixel coordinates ``(x0, y0)``.

    Parameters
    ----------
    x, y : array or tensor
        Pixel coordinates (0-based, pixel centres at integers) of the grid, broadcastable.
    x0, y0 : tensor
        Pixel coordinates of the source.

    Returns
    -------
    tensor : ``max(1 - |x - x0|, 0) * max(1 - |y - y0|, 0)``; sums to 1 over the grid when the
    source lies at least one pixel inside it.
    """
    wx = pt.maximum(1.0 - pt.abs(_tensor(x) - x0), 0.0)
    wy = pt.maximum(1.0 - pt.abs(_tensor(y) - y0), 0.0)
    return wx * wy


def _frame_rotation(from_frame, to_frame):
    """3x3 rotation taking unit vectors of ``from_frame`` to ``to_frame`` (both fixed frames)."""
    basis = SkyCoord(CartesianRepresentation(np.eye(3)), frame=from_frame)
    cart = basis.transform_to(to_frame).cartesian
    # columns: images of the basis vectors
    matrix = np.stack([cart.x.value, cart.y.value, cart.z.value])
    return matrix


def wcs_projection_constants(geom, frame):
    """Numbers `sky_to_pix_tensor` needs for ``geom`` (numpy), for coordinates in ``frame``.

    Returns a dict: ``code`` (projection), ``euler`` (wcslib's 5 Euler terms), ``prj_offset``
    (wcslib's x0, y0), ``matrix`` (``inv(diag(cdelt) @ pc)``, deg -> pixels), ``crpix``
    (0-based) and ``rotation`` (3x3 from ``frame`` to the geometry's frame).
    """
    wcs = geom.wcs
    if wcs.has_distortion:
        raise ModelError(f"sky_to_pix_tensor: WCS distortions are not supported ({geom})")
    wcs.wcs.set()
    code = wcs.wcs.ctype[0][5:8].strip()
    if code not in PROJECTIONS:
        raise ModelError(
            f"sky_to_pix_tensor: projection {code!r} is not implemented; known: {list(PROJECTIONS)}"
        )
    cel = wcs.wcs.cel
    scale = np.diag(wcs.wcs.get_cdelt()) @ wcs.wcs.get_pc()
    return {
        "code": code,
        "euler": np.asarray(cel.euler, dtype=float),
        "prj_offset": np.array([cel.prj.x0, cel.prj.y0], dtype=float),
        "matrix": np.linalg.inv(scale),
        "crpix": np.asarray(wcs.wcs.crpix, dtype=float) - 1.0,
        "rotation": _frame_rotation(frame, geom.frame) if frame != geom.frame else np.eye(3),
    }


def _rotate(lon, lat, rotation):
    """(lon, lat) deg rotated by a 3x3 matrix (tensor or numpy matrix)."""
    lon, lat = lon * DEG, lat * DEG
    v = [pt.cos(lat) * pt.cos(lon), pt.cos(lat) * pt.sin(lon), pt.sin(lat)]
    w = [rotation[i, 0] * v[0] + rotation[i, 1] * v[1] + rotation[i, 2] * v[2] for i in range(3)]
    return pt.arctan2(w[1], w[0]) / DEG, pt.arctan2(w[2], pt.sqrt(w[0] ** 2 + w[1] ** 2)) / DEG


def sky_to_pix_tensor(lon, lat, constants):
    """0-based pixel coordinates ``(x, y)`` of sky positions, as astropy's ``wcs_world2pix``.

    Parameters
    ----------
    lon, lat : tensor
        Positions in deg, in the frame ``constants`` were made for.
    constants : dict
        From `wcs_projection_constants` (numpy values, or tensors with the same keys).

    wcslib's steps: celestial -> native spherical rotation (``sphs2x`` with the Euler angles),
    the projection (CAR, TAN, SIN, ARC, ZEA, STG, AIT with default PV values), then the
    linear transformation to pixels. Exact for oblique grids (e.g. CAR centred off the equator).
    Zenithal projections are written with ``cos(theta) (cos phi, sin phi)`` rather than ``phi``,
    so that value and gradient are smooth at the reference point (the native pole).
    """
    code = constants["code"]
    rotation = constants["rotation"]
    if not (isinstance(rotation, np.ndarray) and np.array_equal(rotation, np.eye(3))):
        lon, lat = _rotate(lon, lat, rotation)
    eul = constants["euler"]
    dlng = (lon - eul[0]) * DEG
    sin_lat, cos_lat = pt.sin(lat * DEG), pt.cos(lat * DEG)
    cos_e1, sin_e1 = eul[3], eul[4]
    # native direction: rho (cos dphi, sin dphi) with rho = cos(theta), and z = sin(theta)
    x = sin_lat * sin_e1 - cos_lat * cos_e1 * pt.cos(dlng)
    y = -cos_lat * pt.sin(dlng)
    z = sin_lat * cos_e1 + cos_lat * sin_e1 * pt.cos(dlng)
    if code in ("CAR", "AIT"):
        phi = eul[2] + pt.arctan2(y, x) / DEG
        phi = pt.mod(phi + 180.0, 360.0) - 180.0
        theta = pt.arctan2(z, pt.sqrt(x**2 + y**2)) / DEG
        if code == "CAR":
            px, py = phi, theta
        else:
            phi_r, theta_r = phi * DEG, theta * DEG
            gamma = R0 * pt.sqrt(2.0 / (1.0 + pt.cos(theta_r) * pt.cos(phi_r / 2)))
            px = 2.0 * gamma * pt.cos(theta_r) * pt.sin(phi_r / 2)
            py = gamma * pt.sin(theta_r)
    else:
        cos_p, sin_p = np.cos(eul[2] * DEG), np.sin(eul[2] * DEG)
        if not isinstance(eul, np.ndarray):
            cos_p, sin_p = pt.cos(eul[2] * DEG), pt.sin(eul[2] * DEG)
        rho_cos_phi = cos_p * x - sin_p * y
        rho_sin_phi = sin_p * x + cos_p * y
        # g = r(theta) / cos(theta), smooth at theta = 90 deg
        if code == "TAN":
            g = R0 / z
        elif code == "SIN":
            g = R0 * pt.ones_like(z)
        elif code == "ZEA":
            g = R0 / pt.sqrt((1.0 + z) / 2.0)
        elif code == "STG":
            g = 2.0 * R0 / (1.0 + z)
        else:  # ARC: r = colat, g = colat / sin(colat)
            rho2 = x**2 + y**2
            small = rho2 < 1e-8
            rho = pt.sqrt(pt.switch(small, 1.0, rho2))
            series = 1.0 + rho2 / 6.0 + 3.0 * rho2**2 / 40.0
            g = R0 * pt.switch(small, series, pt.arctan2(rho, z) / rho)
        px, py = g * rho_sin_phi, -g * rho_cos_phi
    offset = constants["prj_offset"]
    px, py = px - offset[0], py - offset[1]
    m, crpix = constants["matrix"], constants["crpix"]
    return (
        m[0, 0] * px + m[0, 1] * py + crpix[0],
        m[1, 0] * px + m[1, 1] * py + crpix[1],
    )


class PointSpatialModel(SpatialModel):
    """Point source at (``lon_0``, ``lat_0``) deg.

    Parameters
    ----------
    lon_0, lat_0 : angle
    frame : {"icrs", "galactic"}
    placement : {"exact", "gammapy"}
        How a map dataset places the source (see the module docstring): ``"exact"`` (default)
        evaluates the PSF at each pixel's exact offset (`separation_tensor`), smooth in position;
        ``"gammapy"`` deposits the flux on the 4 nearest pixels with bilinear weights and
        convolves with the PSF kernel (gammapy's numbers; gradient jumps at pixel centres).
        Written to YAML as ``placement``; a YAML without it (gammapy's) gives ``"exact"``.
    """

    tag = ("PointSpatialModel", "point")
    default_parameters = (_lon_0(), _lat_0())

    def __init__(self, frame="icrs", placement=DEFAULT_PLACEMENT, **kwargs):
        if placement not in PLACEMENTS:
            raise ModelError(
                f"PointSpatialModel: placement must be one of {PLACEMENTS}, got {placement!r}"
            )
        self.placement = placement
        super().__init__(frame=frame, **kwargs)

    def _from_parameters(self, kwargs):
        return type(self)(frame=self.frame, placement=self.placement, **kwargs)

    def to_dict(self):
        """gammapy's YAML dict plus ``placement`` (which gammapy 2.1 ignores)."""
        return {**super().to_dict(), "placement": self.placement}

    @classmethod
    def from_dict(cls, data, links=None):
        """Model from a YAML ``spatial:`` entry; without ``placement`` (gammapy's files) the
        default ``"exact"``."""
        kwargs = cls._parameters_from_dict(data, links)
        return cls(frame=data.get("frame", "icrs"), placement=data.get("placement", DEFAULT_PLACEMENT), **kwargs)

    @property
    def evaluation_radius(self):
        return Angle(0.0, "deg")

    @property
    def evaluation_bin_size_min(self):
        return Angle(0.0, "deg")

    def evaluate(self, lon, lat, **params):
        raise ModelError(
            "PointSpatialModel has no surface brightness: use integrate_geom / "
            "integrate_geom_tensor (flux per pixel) or separation_tensor (PSF offsets)"
        )

    def integrate_pixels(self, lon, lat, solid_angle, pvals=None):
        raise ModelError(
            "PointSpatialModel cannot be integrated on sub-pixel samples: use "
            "integrate_geom_tensor (bilinear deposit) or separation_tensor"
        )

    def separation_tensor(self, lon, lat, pvals=None):
        """Angular distance (deg) of ``lon``, ``lat`` (deg, model frame) from the source.

        What the graph layer evaluates the PSF at for ``placement="exact"``; smooth in position
        (gradient 0 at zero separation).
        """
        pars = self.param_tensors(pvals)
        lon, lat = _tensor(lon), _tensor(lat)
        return angular_separation_tensor(lon, lat, pars["lon_0"], pars["lat_0"]) / DEG

    def pixel_position_tensor(self, geom, pvals=None):
        """Source position in 0-based pixel coordinates ``(x0, y0)`` of ``geom`` (tensors)."""
        pars = self.param_tensors(pvals)
        constants = wcs_projection_constants(geom.to_image(), self.frame)
        return sky_to_pix_tensor(pars["lon_0"], pars["lat_0"], constants)

    def integrate_geom_tensor(self, geom, pvals=None, oversampling_factor=None):
        """Bilinear deposit weights on the pixels of ``geom``, shape (ny, nx)."""
        x0, y0 = self.pixel_position_tensor(geom, pvals)
        nx, ny = geom.npix
        return point_deposit_weights(np.arange(nx)[None, :], np.arange(ny)[:, None], x0, y0)

    def _compiled_deposit(self, code, rotated):
        names = ["euler", "prj_offset", "matrix", "crpix"] + (["rotation"] if rotated else [])

        def build():
            lon_0, lat_0 = pt.dscalar("lon_0"), pt.dscalar("lat_0")
            x, y = pt.dvector("x"), pt.dvector("y")
            constants = {
                "code": code,
                "euler": pt.dvector("euler"),
                "prj_offset": pt.dvector("prj_offset"),
                "matrix": pt.dmatrix("matrix"),
                "crpix": pt.dvector("crpix"),
                "rotation": pt.dmatrix("rotation") if rotated else np.eye(3),
            }
            x0, y0 = sky_to_pix_tensor(lon_0, lat_0, constants)
            weights = point_deposit_weights(x[None, :], y[:, None], x0, y0)
            return [lon_0, lat_0, x, y] + [constants[n] for n in names], [weights, x0, y0]

        return compile_numpy(("deposit", code, rotated), build), names

    def _deposit_numpy(self, geom):
        image = geom.to_image()
        constants = wcs_projection_constants(image, self.frame)
        rotated = self.frame != image.frame
        fn, names = self._compiled_deposit(constants["code"], rotated)
        nx, ny = image.npix
        lon_0 = self.lon_0.quantity.to_value("deg")
        lat_0 = self.lat_0.quantity.to_value("deg")
        args = [constants[n] for n in names]
        return fn(lon_0, lat_0, np.arange(nx, dtype=float), np.arange(ny, dtype=float), *args)

    def integrate_geom(self, geom, oversampling_factor=None):
        """Bilinear deposit (gammapy's ``PointSpatialModel.integrate_geom``) as a `WcsNDMap` image."""
        from ..maps.wcsmap import WcsNDMap

        weights = self._deposit_numpy(geom)[0]
        return WcsNDMap(geom.to_image(), data=np.asarray(weights), unit="")

    def evaluate_geom(self, geom):
        """Deposit divided by the pixel solid angle (gammapy's ``evaluate_geom``), in sr^-1."""
        image = geom.to_image()
        solid_angle = image.solid_angle().to_value("sr").reshape(image.data_shape)
        return u.Quantity(self.integrate_geom(image).data / solid_angle, "sr-1")

    def __call__(self, lon, lat):
        return self.evaluate(lon, lat)

    def __repr__(self):
        return (
            f"PointSpatialModel(lon_0={self.lon_0.value:.6g}, lat_0={self.lat_0.value:.6g}, "
            f"frame={self.frame!r}, placement={self.placement!r})"
        )
