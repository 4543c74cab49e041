"""Spatial models: gammapy 2.1's values and pixel integrals, normalisation, sub-pixel sources,
point deposits on every implemented projection, templates, YAML."""

import logging

import numpy as np
import pytest
from astropy import units as u
from astropy.coordinates import SkyCoord

import bayesdl4.models.spatial as bs
from bayesdl4.errors import ModelError
from bayesdl4.maps import MapAxis, WcsGeom
from bayesdl4.maps.wcsmap import WcsNDMap
from bayesdl4.models.core import _COMPILED
from bayesdl4.models.spatial_base import subpixel_coords
from tests.conftest import gammapy_data

CRAB = SkyCoord(83.63, 22.014, unit="deg")
GAL = CRAB.galactic

# gammapy class name -> list of (id, constructor keywords); positions near the Crab
EXTENDED_CASES = {
    "gauss": (
        "GaussianSpatialModel",
        dict(lon_0="83.62 deg", lat_0="22.03 deg", sigma="0.3 deg"),
    ),
    "gauss-elongated": (
        "GaussianSpatialModel",
        dict(lon_0="83.62 deg", lat_0="22.03 deg", sigma="0.3 deg", e=0.6, phi="30 deg"),
    ),
    "gauss-galactic": (
        "GaussianSpatialModel",
        dict(lon_0=f"{GAL.l.deg} deg", lat_0=f"{GAL.b.deg} deg", sigma="0.2 deg", frame="galactic"),
    ),
    "gauss-general": (
        "GeneralizedGaussianSpatialModel",
        dict(lon_0="83.62 deg", lat_0="22.03 deg", r_0="0.2 deg", eta=0.7, e=0.5, phi="-40 deg"),
    ),
    "gauss-general-sym": (
        "GeneralizedGaussianSpatialModel",
        dict(lon_0="83.62 deg", lat_0="22.03 deg", r_0="0.25 deg", eta=0.3),
    ),
    "disk": (
        "DiskSpatialModel",
        dict(lon_0="83.62 deg", lat_0="22.03 deg", r_0="0.4 deg", edge_width=0.05),
    ),
    "disk-elongated": (
        "DiskSpatialModel",
        dict(lon_0="83.62 deg", lat_0="22.03 deg", r_0="0.4 deg", e=0.8, phi="100 deg"),
    ),
    "shell": (
        "ShellSpatialModel",
        dict(lon_0="83.62 deg", lat_0="22.03 deg", radius="0.3 deg", width="0.1 deg"),
    ),
    "shell2": (
        "Shell2SpatialModel",
        dict(lon_0="83.62 deg", lat_0="22.03 deg", r_0="0.4 deg", eta=0.3),
    ),
    "const": ("ConstantSpatialModel", dict(value="2 sr-1")),
}


def make(case, module):
    name, kwargs = EXTENDED_CASES[case]
    return getattr(module, name)(**kwargs)


@pytest.fixture(scope="module")
def gp():
    return pytest.importorskip("gammapy.modeling.models")


@pytest.fixture(scope="module")
def gmaps():
    return pytest.importorskip("gammapy.maps")


def _rel(a, b, floor):
    """Largest relative difference where |b| > floor * max|b|; elsewhere the absolute difference
    must stay below floor * max|b|."""
    a, b = np.broadcast_arrays(np.asarray(a, float), np.asarray(b, float))
    scale = np.max(np.abs(b))
    big = np.abs(b) > floor * scale
    assert np.all(np.abs(a - b)[~big] <= floor * scale)
    return np.max(np.abs(a[big] / b[big] - 1))


def _sample_points(model, n=3000, seed=1):
    rng = np.random.default_rng(seed)
    if model.position is None:
        lon0, lat0 = 83.6, 22.0
    else:
        lon0, lat0 = model.lon_0.value, model.lat_0.value
    lon = lon0 + rng.uniform(-1.2, 1.2, n)
    lat = lat0 + rng.uniform(-1.2, 1.2, n)
    lon[:2], lat[:2] = lon0, lat0  # the centre itself
    return lon, lat


# ---------------------------------------------------------------------------------------------
# surface brightness
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", sorted(EXTENDED_CASES))
def test_evaluate_matches_gammapy(case, gp):
    ours, theirs = make(case, bs), make(case, gp)
    lon, lat = _sample_points(ours)
    a = ours(lon * u.deg, lat * u.deg)
    assert a.unit == u.Unit("sr-1")
    b = theirs(lon * u.deg, lat * u.deg).to_value("sr-1")
    assert _rel(a.value, b, 1e-6) < 1e-6
    # evaluate_tensor is the same graph
    tensor = ours.evaluate_tensor(lon[:50], lat[:50]).eval(mode="FAST_COMPILE")
    np.testing.assert_allclose(tensor, a.value[:50], rtol=1e-12, atol=1e-12 * a.value.max())


def test_evaluate_geom_matches_gammapy(gp, gmaps):
    kw = dict(skydir=GAL, binsz=0.05, width=(2.0, 1.5), frame="galactic", proj="TAN")
    ours_geom, their_geom = WcsGeom.create(**kw), gmaps.WcsGeom.create(**kw)
    for case in ("gauss-elongated", "disk"):  # icrs models on a galactic grid
        a = make(case, bs).evaluate_geom(ours_geom).to_value("sr-1")
        b = make(case, gp).evaluate_geom(their_geom).to_value("sr-1")
        assert a.shape == (30, 40)
        assert _rel(a, b, 1e-6) < 1e-6


def test_symmetric_models_are_normalised_on_the_sphere():
    """Analytic checks that do not depend on gammapy: peak values and radial profiles."""
    sigma = 0.5
    gauss = bs.GaussianSpatialModel(sigma=f"{sigma} deg")
    a = 1 - np.cos(np.radians(sigma))
    peak = 1 / (4 * np.pi * a * (1 - np.exp(-1 / a)))
    assert gauss(0, 0).value == pytest.approx(peak, rel=1e-12)
    sep = 0.7
    expected = peak * np.exp(-0.5 * (1 - np.cos(np.radians(sep))) / a)
    assert gauss(0, sep).value == pytest.approx(expected, rel=1e-10)
    disk = bs.DiskSpatialModel(r_0="1 deg")
    cap = 2 * np.pi * (1 - np.cos(np.radians(1.0)))
    assert disk(0, 0).value == pytest.approx(1 / cap, rel=1e-10)
    # elongated disk normalisation = gammapy's scipy.quad integral
    from scipy.integrate import quad

    r0, e = np.radians(0.6), 0.9
    b = r0 * np.sqrt(1 - e**2)

    def integrand(x):
        aa, bb = 1 / np.sin(r0) ** 2, 1 / np.sin(b) ** 2
        return 1 - np.sqrt(1 - 1 / (bb + (aa - bb) * np.cos(x) ** 2))

    norm = 1 / (2 * quad(integrand, 0, np.pi, epsabs=0, epsrel=1e-13)[0])
    elongated = bs.DiskSpatialModel(r_0="0.6 deg", e=e, phi="20 deg")
    assert elongated(0, 0).value == pytest.approx(norm, rel=1e-10)
    # shell: projected thin-shell profile at the centre
    shell = bs.ShellSpatialModel(radius="0.5 deg", width="0.25 deg")
    r_in, r_out = np.radians(0.5), np.radians(0.75)
    assert shell(0, 0).value == pytest.approx(
        3 / (2 * np.pi * (r_out**3 - r_in**3)) * (r_out - r_in), rel=1e-12
    )
    assert shell(0, 0.8).value == 0.0


# ---------------------------------------------------------------------------------------------
# pixel integration
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("proj,frame", [("CAR", "icrs"), ("TAN", "galactic")])
def test_integrate_geom_matches_gammapy(proj, frame, gp, gmaps):
    kw = dict(skydir=CRAB.transform_to(frame), binsz=0.1, width=2.4, frame=frame, proj=proj)
    ours_geom, their_geom = WcsGeom.create(**kw), gmaps.WcsGeom.create(**kw)
    for case in sorted(EXTENDED_CASES):
        ours, theirs = make(case, bs), make(case, gp)
        a = ours.integrate_geom(ours_geom)
        b = theirs.integrate_geom(their_geom).quantity.to_value("")  # gammapy's shells: deg-2 sr
        assert a.data.shape == (24, 24) and a.unit == u.dimensionless_unscaled
        assert _rel(a.data, b, 1e-3) < 1e-3, case
        assert ours.oversampling_factor(ours_geom) >= 1
        if case.startswith("gauss"):
            # smooth and well inside the map: the pixel integrals sum to one (at sharp disk
            # and shell edges gammapy's factor leaves up to ~2e-2; finer sampling below)
            assert a.data.sum() == pytest.approx(1.0, abs=1e-3), case


def test_normalisation_with_finer_sampling():
    """The whole-grid tensor integral (no cutout: gammapy's cutout of width 2 r_out clips up to
    ~3e-3 of a shell's flux) sums to one with a few more sub-pixels than gammapy's factor."""
    geom = WcsGeom.create(skydir=CRAB, binsz=0.1, width=3.4)
    cases = ["gauss", "gauss-elongated", "gauss-general", "disk-elongated", "shell", "shell2"]
    for case in cases:
        model = make(case, bs)
        factor = max(3 * model.oversampling_factor(geom), 10)
        # the compiled integrate_pixels graph on the whole grid (= integrate_geom_tensor)
        values = model._integrate_numpy(geom, factor)
        assert values.sum() == pytest.approx(1.0, abs=1e-3), case


def test_subpixel_gaussian_integrates_to_one():
    """sigma = 0.02 deg on 0.1 deg pixels: gammapy's factor (15) resolves it."""
    geom = WcsGeom.create(skydir=CRAB, binsz=0.1, width=1.0, proj="TAN")
    for kwargs in (dict(), dict(e=0.7, phi="60 deg")):
        model = bs.GaussianSpatialModel(
            lon_0="83.6437 deg", lat_0="22.0288 deg", sigma="0.02 deg", **kwargs
        )
        assert model.oversampling_factor(geom) == 15
        values = model.integrate_geom(geom).data
        assert values.sum() == pytest.approx(1.0, abs=1e-3)
        assert np.count_nonzero(values > 1e-3) >= 4  # the source straddles pixel edges
        # gammapy's midpoint sub-pixel rule converges as 1 / f^2 per pixel
        reference = model.integrate_geom(geom, oversampling_factor=120).data
        error_15 = np.max(np.abs(values - reference))
        error_30 = np.max(
            np.abs(model.integrate_geom(geom, oversampling_factor=30).data - reference)
        )
        assert error_15 < 5e-3 * reference.max()
        assert 3.0 < error_15 / error_30 < 5.0
        # the tensor integral on the whole grid (no cutout) sums to one without tail loss
        whole = model.integrate_geom_tensor(geom).eval(mode="FAST_COMPILE")
        assert whole.sum() == pytest.approx(1.0, abs=1e-5)
        assert np.max(np.abs(whole - values)) < 1e-3 * values.max()


def test_subpixel_coords_are_gammapys_upsampled_grid(gmaps):
    geom = WcsGeom.create(skydir=CRAB, binsz=0.1, width=(0.3, 0.2), proj="TAN")
    lon, lat = subpixel_coords(geom, 4)
    assert lon.shape == (2, 3, 16)
    up = gmaps.WcsGeom.create(skydir=CRAB, binsz=0.1, width=(0.3, 0.2), proj="TAN").upsample(4)
    coord = up.get_coord()
    ref_lon = coord.lon.to_value("deg").reshape(2, 4, 3, 4).transpose(0, 2, 1, 3).reshape(2, 3, 16)
    np.testing.assert_allclose(lon, ref_lon, rtol=0, atol=1e-6)
    # sub-pixel mean of a linear function of pixel index is the pixel centre
    gal_lon, _ = subpixel_coords(geom, 3, frame="galactic")
    centre = geom.get_coord()
    sky = SkyCoord(centre.lon, centre.lat, unit="deg").galactic
    np.testing.assert_allclose(gal_lon.mean(axis=-1), sky.l.deg, atol=1e-5)


# ---------------------------------------------------------------------------------------------
# point source
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("proj", ["CAR", "TAN", "SIN", "ARC", "ZEA", "STG", "AIT"])
def test_point_deposit_matches_gammapy(proj, gp, gmaps):
    # grids centred off the equator (oblique CAR as HAWC's) and in both frames
    positions = [
        dict(lon_0="83.6712 deg", lat_0="21.9687 deg"),
        dict(lon_0=f"{GAL.l.deg + 0.137} deg", lat_0=f"{GAL.b.deg - 0.0711} deg", frame="galactic"),
    ]
    for frame in ("icrs", "galactic"):
        kw = dict(skydir=CRAB.transform_to(frame), binsz=0.05, width=1.0, frame=frame, proj=proj)
        ours_geom, their_geom = WcsGeom.create(**kw), gmaps.WcsGeom.create(**kw)
        for pos in positions:
            a = bs.PointSpatialModel(**pos).integrate_geom(ours_geom).data
            b = gp.PointSpatialModel(**pos).integrate_geom(their_geom).data
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-9)
            assert a.sum() == pytest.approx(1.0, abs=1e-12)
            assert np.count_nonzero(a) == 4


def test_point_pixel_position_and_centroid():
    geom = WcsGeom.create(skydir=CRAB, binsz=0.02, width=0.5, proj="CAR")  # oblique CAR
    model = bs.PointSpatialModel(lon_0="83.6712 deg", lat_0="22.0687 deg")
    x0, y0 = (t.eval(mode="FAST_COMPILE") for t in model.pixel_position_tensor(geom))
    xr, yr = geom.coord_to_pix(model.position)
    assert x0 == pytest.approx(float(xr), abs=1e-9)
    assert y0 == pytest.approx(float(yr), abs=1e-9)
    weights = model.integrate_geom(geom).data
    yy, xx = np.mgrid[0:25, 0:25]
    assert (weights * xx).sum() == pytest.approx(float(xr), abs=1e-9)  # centroid preserved
    assert (weights * yy).sum() == pytest.approx(float(yr), abs=1e-9)
    # evaluate_geom = deposit / solid angle, as gammapy
    sb = model.evaluate_geom(geom)
    np.testing.assert_allclose(sb.value * geom.solid_angle().to_value("sr"), weights, rtol=1e-12)
    # the exact placement: separation from the source, smooth and exact
    lon, lat = geom.get_coord()
    sep = model.separation_tensor(lon, lat).eval(mode="FAST_COMPILE")
    ref = SkyCoord(lon, lat, unit="deg").separation(model.position).deg
    np.testing.assert_allclose(sep, ref, rtol=1e-10, atol=1e-12)


def test_point_has_no_surface_brightness():
    model = bs.PointSpatialModel(placement="exact")
    assert model.copy().placement == "exact"
    with pytest.raises(ModelError, match="no surface brightness"):
        model(0, 0)
    with pytest.raises(ModelError, match="placement"):
        bs.PointSpatialModel(placement="nearest")
    # YAML: placement is written (gammapy ignores it); a gammapy YAML has none: the default, "exact"
    assert bs.PointSpatialModel().placement == "exact"
    for placement in ("exact", "gammapy"):
        data = bs.PointSpatialModel(lon_0="1 deg", lat_0="2 deg", placement=placement).to_dict()
        assert data["placement"] == placement
        back = bs.PointSpatialModel.from_dict(data)
        assert back.placement == placement and back.lon_0.value == 1.0
    data.pop("placement")
    assert bs.PointSpatialModel.from_dict(data).placement == "exact"


# ---------------------------------------------------------------------------------------------
# templates
# ---------------------------------------------------------------------------------------------


def _template_maps(gmaps, with_energy=False):
    kw = dict(skydir=GAL, binsz=0.1, width=(2.0, 1.6), frame="galactic")
    axes = []
    g_axes = []
    if with_energy:
        axes = [MapAxis.from_energy_bounds(0.1, 10, 3, unit="TeV", name="energy_true")]
        g_axes = [gmaps.MapAxis.from_energy_bounds(0.1, 10, 3, unit="TeV", name="energy_true")]
    geom = WcsGeom.create(axes=axes, **kw)
    g_geom = gmaps.WcsGeom.create(axes=g_axes, **kw)
    lon, lat = geom.get_coord()
    sky = SkyCoord(lon, lat, unit="deg", frame="galactic")
    r2 = sky.separation(GAL).deg ** 2
    data = np.exp(-r2 / (2 * 0.3**2)) + 0.01
    data[:3, :5] = 0.0  # zeros: the log interpolation must give 0 next to them as gammapy
    if with_energy:
        data = data[None] * np.array([1.0, 0.5, 0.2])[:, None, None]
    ours = WcsNDMap(geom, data=data.copy(), unit="")
    theirs = gmaps.Map.from_geom(g_geom, data=data.copy(), unit="")
    return ours, theirs


@pytest.mark.parametrize("with_energy", [False, True])
def test_template_matches_gammapy(with_energy, gp, gmaps, caplog):
    ours_map, their_map = _template_maps(gmaps, with_energy)
    ours = bs.TemplateSpatialModel(ours_map, filename="template.fits")
    theirs = gp.TemplateSpatialModel(their_map, filename="template.fits")
    assert ours.frame == "galactic"
    assert ours.lon_0.value == pytest.approx(theirs.lon_0.value, abs=1e-10)
    assert ours.lon_0.frozen and ours.lat_0.frozen
    rng = np.random.default_rng(3)
    lon = GAL.l.deg + rng.uniform(-1.2, 1.2, 500)  # some outside the map: 0
    lat = GAL.b.deg + rng.uniform(-1.0, 1.0, 500)
    if with_energy:
        energy = rng.uniform(0.15, 8, 500) * u.TeV
        a, b = ours(lon, lat, energy), theirs(lon * u.deg, lat * u.deg, energy=energy)
    else:
        a, b = ours(lon, lat), theirs(lon * u.deg, lat * u.deg)
    assert a.unit == u.Unit("sr-1")
    assert np.count_nonzero(b.value == 0) > 20
    assert _rel(a.value, b.to_value("sr-1"), 1e-9) < 1e-9
    # pixel integral on another grid (finer, shifted, other projection)
    axes = (
        [MapAxis.from_energy_bounds(0.2, 5, 2, unit="TeV", name="energy_true")]
        if with_energy
        else []
    )
    g_axes = (
        [gmaps.MapAxis.from_energy_bounds(0.2, 5, 2, unit="TeV", name="energy_true")]
        if with_energy
        else []
    )
    kw = dict(skydir=CRAB, binsz=0.04, width=1.2, proj="TAN")
    a = ours.integrate_geom(WcsGeom.create(axes=axes, frame="galactic", **{**kw, "skydir": GAL}))
    b = theirs.integrate_geom(
        gmaps.WcsGeom.create(axes=g_axes, frame="galactic", **{**kw, "skydir": GAL})
    )
    assert a.data.shape == b.data.shape
    assert _rel(a.data, b.quantity.to_value(""), 1e-6) < 1e-6
    # normalised: each energy plane integrates to one on the template's own grid
    own = ours.integrate_geom(ours_map.geom).data
    np.testing.assert_allclose(own.sum(axis=(-2, -1)), 1.0, rtol=1e-12)


def test_template_is_a_constant_in_the_graph(gmaps):
    import pytensor.tensor as pt

    ours_map, _ = _template_maps(gmaps)
    model = bs.TemplateSpatialModel(ours_map)
    geom = WcsGeom.create(skydir=GAL, binsz=0.05, width=0.5, frame="galactic")
    tensor = model.integrate_geom_tensor(geom)
    np.testing.assert_allclose(
        tensor.eval(mode="FAST_COMPILE"), model.integrate_geom(geom).data, rtol=1e-14
    )
    with pytest.raises(ModelError, match="known when the graph is built"):
        model.evaluate_tensor(pt.dvector("lon"), pt.dvector("lat"))
    with pytest.raises(ModelError, match="frozen"):
        model.evaluate_tensor([0.0], [0.0], pvals={model.lon_0: pt.dscalar()})
    copy = model.copy()
    assert copy.map is model.map and copy.lon_0 is not model.lon_0


# ---------------------------------------------------------------------------------------------
# compiled once, copies, errors
# ---------------------------------------------------------------------------------------------


def test_numpy_conveniences_compile_once_per_structure():
    geom = WcsGeom.create(skydir=CRAB, binsz=0.1, width=1.0)
    first = bs.ShellSpatialModel(radius="0.2 deg", width="0.05 deg")
    first.integrate_geom(geom)
    first(0, 0)
    n_compiled = len(_COMPILED)
    other = bs.ShellSpatialModel(
        lon_0="83 deg", radius="0.3 deg", width="0.1 deg", frame="galactic"
    )
    other.integrate_geom(geom)
    other(1, 1)
    assert len(_COMPILED) == n_compiled


def test_copy_frame_position_and_errors():
    model = bs.DiskSpatialModel.from_position(GAL, r_0="0.3 deg", e=0.2)
    assert model.frame == "galactic"
    copy = model.copy()
    assert copy.frame == "galactic" and copy.r_0 is not model.r_0
    assert copy.r_0.value == 0.3 and copy.e.value == 0.2
    assert model.position.separation(CRAB).deg < 1e-8
    model.position = SkyCoord(10, 20, unit="deg")
    assert model.position.icrs.separation(SkyCoord(10, 20, unit="deg")).deg < 1e-8
    assert bs.ConstantSpatialModel().position is None
    with pytest.raises(ModelError, match="frame"):
        bs.GaussianSpatialModel(frame="fk4")
    with pytest.raises(ModelError, match="unknown parameter"):
        bs.GaussianSpatialModel(radius="1 deg")
    with pytest.raises(ModelError, match="known types"):
        bs.spatial_model_from_dict({"type": "NoSuchSpatialModel", "parameters": []})


# ---------------------------------------------------------------------------------------------
# YAML
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", sorted(EXTENDED_CASES) + ["point"])
def test_yaml_round_trip_and_gammapy_reads_it(case, gp):
    if case == "point":
        ours = bs.PointSpatialModel(lon_0="10 deg", lat_0="-3 deg", frame="galactic")
        ours.lat_0.frozen = True
    else:
        ours = make(case, bs)
    ours.parameters[0].error = 0.01
    data = ours.to_dict()
    assert data["type"] == ours.tag[0]
    back = bs.spatial_model_from_dict(data)
    assert type(back) is type(ours)
    assert back.frame == ours.frame
    if case == "const":
        # gammapy writes the constant without parameters (the value is not saved)
        assert data == {"type": "ConstantSpatialModel", "parameters": []}
        assert back.value.value == 1.0
        return
    for p, q in zip(ours.parameters, back.parameters, strict=True):
        assert (p.name, p.value, p.unit, p.frozen, p.error) == (
            q.name,
            q.value,
            q.unit,
            q.frozen,
            q.error,
        )
    # gammapy reads what we write (its tag registry; same values)
    cls = getattr(gp, ours.tag[0])
    theirs = cls.from_dict({"spatial": data})
    assert theirs.frame == ours.frame
    for p in ours.parameters:
        assert theirs.parameters[p.name].value == pytest.approx(p.value)
        assert theirs.parameters[p.name].frozen == p.frozen
    # and we read what gammapy writes (its short tag too)
    their_dict = theirs.to_dict()["spatial"]
    their_dict["type"] = cls.tag[1]
    again = bs.spatial_model_from_dict(their_dict)
    assert [p.value for p in again.parameters] == pytest.approx([p.value for p in ours.parameters])


def test_template_yaml_round_trip(tmp_path, gmaps, caplog):
    ours_map, _ = _template_maps(gmaps)
    path = tmp_path / "template.fits"
    ours_map.write(path)
    model = bs.TemplateSpatialModel.read(path)
    data = model.to_dict()
    assert data["filename"] == str(path) and data["normalize"] is True
    assert u.Unit(data["unit"]) == u.Unit("sr-1")
    back = bs.spatial_model_from_dict(data)
    np.testing.assert_allclose(back.map.data, model.map.data)
    assert back.lon_0.value == pytest.approx(model.lon_0.value)
    with pytest.raises(ModelError, match="not found"):
        bs.spatial_model_from_dict({**data, "filename": str(tmp_path / "missing.fits")})


def test_read_spatial_parts_of_gammapy_files(gp, caplog):
    root = gammapy_data()
    from bayesdl4.io.models_yaml import models_to_dict, read_models

    caplog.set_level(logging.WARNING)
    fermi = read_models(root / "fermi-3fhl-crab" / "Fermi-LAT-3FHL_models.yaml")
    crab = fermi["Crab Nebula"]
    assert isinstance(crab.spatial_model, bs.PointSpatialModel)
    assert crab.spatial_model.frame == "icrs"
    assert crab.spatial_model.lon_0.value == pytest.approx(83.63310241699219)
    assert crab.spatial_model.lat_0.value == pytest.approx(22.019899368286133)
    assert crab.spatial_model.lon_0.frozen and crab.spatial_model.lat_0.frozen
    sim = read_models(root / "datasets" / "simulations" / "simulated_map_dataset_model.yaml")
    spatial = sim["source"].spatial_model
    assert isinstance(spatial, bs.GaussianSpatialModel)
    assert spatial.frame == "galactic"
    assert (spatial.sigma.value, spatial.sigma.unit) == (0.4, u.deg)
    assert spatial.e.frozen and spatial.phi.frozen  # class defaults, not in the file
    assert "not supported yet" not in caplog.text
    # written back: gammapy reads the same model
    written = models_to_dict(sim)["components"][1]["spatial"]
    theirs = gp.GaussianSpatialModel.from_dict({"spatial": written})
    lon, lat = np.array([0.1, 0.3]), np.array([-0.2, 0.4])
    np.testing.assert_allclose(
        spatial(lon, lat).value, theirs(lon * u.deg, lat * u.deg).to_value("sr-1"), rtol=1e-9
    )
