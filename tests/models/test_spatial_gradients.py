"""Gradients of the pixel-integral graphs against central finite differences, for every parameter
of every spatial model (frozen ones included), with the source centre at a pixel centre (zero
separation at a sub-pixel sample), on a pixel edge and in between."""

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from astropy.coordinates import SkyCoord
from pytensor.compile.mode import Mode

import bayesdl4.models.spatial as bs
from bayesdl4.maps import WcsGeom
from bayesdl4.models.spatial_point import sky_to_pix_tensor, wcs_projection_constants

# compile in milliseconds (no graph rewrites): the graphs themselves must be gradient-safe;
# one test repeats the checks with FAST_COMPILE rewrites
NO_REWRITES = Mode(linker="py", optimizer=None)
CRAB = SkyCoord(83.63, 22.014, unit="deg")
# an oblique CAR grid (reference off the equator), 16 x 14 pixels of 0.1 deg
GEOM = WcsGeom.create(skydir=CRAB, binsz=0.1, width=(1.6, 1.4), proj="CAR")
# pixel weights: a plain sum of the integrals is ~1 whatever the parameters, a weighted sum is not
WEIGHTS = np.random.default_rng(7).uniform(0.2, 2.0, (14, 16))

CASES = {
    "gauss": ("GaussianSpatialModel", dict(sigma="0.25 deg")),
    "gauss-elongated": ("GaussianSpatialModel", dict(sigma="0.25 deg", e=0.5, phi="30 deg")),
    "gauss-general": (
        "GeneralizedGaussianSpatialModel",
        dict(r_0="0.2 deg", eta=0.7, e=0.4, phi="-50 deg"),
    ),
    "gauss-general-laplace": ("GeneralizedGaussianSpatialModel", dict(r_0="0.15 deg", eta=1.0)),
    "disk": ("DiskSpatialModel", dict(r_0="0.35 deg", edge_width=0.1)),
    "disk-elongated": (
        "DiskSpatialModel",
        dict(r_0="0.35 deg", e=0.6, phi="70 deg", edge_width=0.05),
    ),
    # radii off the sub-pixel lattice (spacing 1/30 deg): a sample exactly on a square-root
    # edge has an unbounded derivative
    "shell": ("ShellSpatialModel", dict(radius="0.23 deg", width="0.115 deg")),
    "shell2": ("Shell2SpatialModel", dict(r_0="0.37 deg", eta=0.3)),
}
# shells: square-root edges near samples need small steps for central differences to converge
RELATIVE_STEP = {"shell": 1e-7, "shell2": 1e-7}


def _position(kind):
    """(lon, lat) deg: a pixel centre, a pixel corner (edges in x and y), or in between."""
    x, y = {"centre": (8.0, 7.0), "edge": (7.5, 6.5), "between": (8.23, 6.71)}[kind]
    lon, lat = GEOM.wcs.wcs_pix2world(x, y, 0)
    return float(lon), float(lat)


def _objective(model, mode=NO_REWRITES, oversampling=3):
    params = list(model.parameters.unique())
    x = pt.dvector("x")
    pvals = {p: x[i] for i, p in enumerate(params)}
    integral = model.integrate_geom_tensor(GEOM, pvals, oversampling_factor=oversampling)
    value = (integral * WEIGHTS).sum()
    fn = pytensor.function([x], [value, pt.grad(value, x)], mode=mode)
    return params, fn


def _step(par, value, relative=1e-5):
    if par.name in ("lon_0", "lat_0", "phi"):
        return relative
    return relative * max(abs(value), 1e-2)


def _check(fn, params, x0, rtol=2e-5, relative_step=1e-5):
    value, grad = fn(x0)
    assert np.isfinite(value)
    assert np.all(np.isfinite(grad)), dict(zip([p.name for p in params], grad, strict=True))
    for i, par in enumerate(params):
        step = _step(par, x0[i], relative_step)
        up, down = x0.copy(), x0.copy()
        up[i] += step
        down[i] -= step
        numeric = (fn(up)[0] - fn(down)[0]) / (2 * step)
        scale = max(abs(numeric), abs(grad[i]), 1e-4)
        assert abs(grad[i] - numeric) <= rtol * scale, (par.name, grad[i], numeric)
    return grad


@pytest.mark.parametrize("case", sorted(CASES))
def test_gradients_every_parameter(case):
    name, kwargs = CASES[case]
    model = getattr(bs, name)(**kwargs)
    params, fn = _objective(model)
    assert {p.name for p in params} == {p.name for p in model.default_parameters}
    for where in ("centre", "edge", "between"):
        lon, lat = _position(where)
        x0 = np.array([p.value for p in params])
        x0[[params.index(model.lon_0), params.index(model.lat_0)]] = lon, lat
        grad = _check(fn, params, x0, relative_step=RELATIVE_STEP.get(case, 1e-5))
        if where != "centre":
            # an off-centre source: moving it changes the weighted sum
            assert abs(grad[params.index(model.lon_0)]) > 1e-3


def test_position_gradient_is_smooth_across_a_pixel_edge():
    """Extended models are evaluated on a fixed sub-pixel grid: the weighted sum is smooth in
    position, so the gradient just either side of a pixel edge is the same."""
    model = bs.DiskSpatialModel(r_0="0.35 deg", edge_width=0.2)
    params, fn = _objective(model)
    x0 = np.array([p.value for p in params])
    lon, lat = _position("edge")
    i = params.index(model.lon_0)
    x0[i + 1] = lat
    grads = []
    for offset in (-1e-6, 1e-6):
        x0[i] = lon + offset
        grads.append(fn(x0)[1][i])
    assert grads[0] == pytest.approx(grads[1], rel=1e-3)


def test_constant_value_gradient():
    model = bs.ConstantSpatialModel(value="3 sr-1")
    params, fn = _objective(model)
    grad = _check(fn, params, np.array([3.0]))
    solid_angle = GEOM.solid_angle().to_value("sr").reshape(14, 16)
    assert grad[0] == pytest.approx((WEIGHTS * solid_angle).sum(), rel=1e-12)


@pytest.mark.parametrize("proj", ["CAR", "TAN"])
def test_point_gradients_across_pixel_edges(proj):
    """gammapy's bilinear deposit: piecewise linear in pixel coordinates, smooth across pixel
    edges; kinks only where the source crosses a pixel centre."""
    geom = WcsGeom.create(skydir=CRAB, binsz=0.1, width=(1.6, 1.4), proj=proj)
    model = bs.PointSpatialModel()
    params = list(model.parameters)
    x = pt.dvector("x")
    deposit = model.integrate_geom_tensor(geom, {params[0]: x[0], params[1]: x[1]})
    value = (deposit * WEIGHTS).sum()
    fn = pytensor.function([x], [value, pt.grad(value, x)], mode=NO_REWRITES)
    for px, py in ((7.5, 6.5), (7.5 + 1e-3, 6.5 - 1e-3), (8.3, 6.7), (3.71, 9.26)):
        lon, lat = geom.wcs.wcs_pix2world(px, py, 0)
        _check(fn, params, np.array([float(lon), float(lat)]), rtol=1e-6)
    # documented: the gradient jumps where the source crosses a pixel centre (gammapy's deposit)
    lon, lat = geom.wcs.wcs_pix2world(np.array([8.0 - 1e-4, 8.0 + 1e-4]), 6.3, 0)
    left = fn(np.array([lon[0], lat[0]]))[1][0]
    right = fn(np.array([lon[1], lat[1]]))[1][0]
    assert abs(left - right) > 0.1 * max(abs(left), abs(right))


@pytest.mark.parametrize("proj", ["CAR", "TAN", "SIN", "ARC", "ZEA", "STG", "AIT"])
def test_projection_jacobian_matches_astropy(proj):
    """d(pixel)/d(lon, lat) of the tensor projection = finite differences of astropy's
    wcs_world2pix, also at the reference point (the native pole of zenithal projections) and
    for galactic coordinates on an icrs grid."""
    geom = WcsGeom.create(skydir=CRAB, binsz=0.05, width=2.0, proj=proj)
    lon, lat = pt.dscalar("lon"), pt.dscalar("lat")
    frames = {
        "icrs": [(CRAB.ra.deg, CRAB.dec.deg), (83.9, 21.6)],
        "galactic": [(CRAB.galactic.l.deg, CRAB.galactic.b.deg)],
    }
    for frame, points in frames.items():
        if frame == "galactic" and proj not in ("CAR", "TAN"):
            continue  # the frame rotation is the same code for every projection
        constants = wcs_projection_constants(geom, frame)
        px, py = sky_to_pix_tensor(lon, lat, constants)
        fn = pytensor.function(
            [lon, lat],
            [px, py, *pt.grad(px, [lon, lat]), *pt.grad(py, [lon, lat])],
            mode=NO_REWRITES,
        )
        for lon0, lat0 in points:
            out = fn(lon0, lat0)
            assert np.all(np.isfinite(out))

            def world2pix(lo, la, frame=frame):
                sky = SkyCoord(lo, la, unit="deg", frame=frame).transform_to("icrs")
                return np.array(geom.wcs.wcs_world2pix(sky.ra.deg, sky.dec.deg, 0), dtype=float)

            np.testing.assert_allclose(out[:2], world2pix(lon0, lat0), atol=1e-9)
            h = 1e-6
            d_lon = (world2pix(lon0 + h, lat0) - world2pix(lon0 - h, lat0)) / (2 * h)
            d_lat = (world2pix(lon0, lat0 + h) - world2pix(lon0, lat0 - h)) / (2 * h)
            np.testing.assert_allclose([out[2], out[4]], d_lon, rtol=1e-6, atol=1e-6)
            np.testing.assert_allclose([out[3], out[5]], d_lat, rtol=1e-6, atol=1e-6)


def test_gradients_survive_graph_rewrites():
    """FAST_COMPILE rewrites (switch / sqrt fusions) must not reintroduce NaN at the centre
    (separation, position angle and ``z ** (1 / eta)`` all have guarded branches there)."""
    for case in ("gauss-general-laplace",):
        name, kwargs = CASES[case]
        model = getattr(bs, name)(**kwargs)
        params, fn = _objective(model, mode="FAST_COMPILE")
        x0 = np.array([p.value for p in params])
        x0[[params.index(model.lon_0), params.index(model.lat_0)]] = _position("centre")
        _check(fn, params, x0, relative_step=RELATIVE_STEP.get(case, 1e-5))


def test_hard_edge_disk_has_finite_gradients():
    """``edge_width = 0`` (gammapy's hard edge): a step in value, finite gradients; in ``r_0``
    only through the normalisation (central differences agree while no sample crosses the edge)."""
    model = bs.DiskSpatialModel(r_0="0.31 deg", edge_width=0.0)
    params, fn = _objective(model)
    x0 = np.array([p.value for p in params])
    x0[[params.index(model.lon_0), params.index(model.lat_0)]] = _position("between")
    grad = _check(fn, params, x0)
    assert grad[params.index(model.r_0)] < 0  # a wider disk of unit flux is fainter inside
