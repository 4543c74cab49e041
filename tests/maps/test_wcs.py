"""WcsGeom and WcsNDMap: analytic checks, and gammapy 2.1 as the oracle where it is installed."""

import os
from pathlib import Path

import numpy as np
import pytest
from astropy import units as u
from astropy.coordinates import SkyCoord

from bayesdl4.errors import GeometryMismatchError
from bayesdl4.io.gadf_maps import geom_to_header
from bayesdl4.maps import MapAxis, WcsGeom, WcsNDMap

CRAB = SkyCoord(83.63, 22.01, unit="deg")

# (kwargs of WcsGeom.create) covering CAR / TAN in icrs and galactic, width and npix, odd and even sizes
CREATE_CASES = [
    dict(skydir=CRAB, width=(6, 4), binsz=0.05, frame="icrs", proj="CAR"),
    dict(skydir=CRAB, width=5, binsz=0.1, frame="galactic", proj="TAN"),
    dict(skydir=(0, 0), width=(10, 7.3), binsz=0.2, frame="galactic", proj="CAR"),
    dict(skydir=(266.4, -28.9), npix=(51, 33), binsz=0.02, frame="icrs", proj="TAN"),
    dict(
        skydir=SkyCoord(0, 89, unit="deg", frame="galactic"),
        width=3,
        binsz="0.1 deg",
        frame="icrs",
        proj="CAR",
    ),
    dict(skydir=(184.55, -5.78), width=(5, 4), binsz=(0.1, 0.08), frame="galactic", proj="TAN"),
]


def energy_axis(nbin=3):
    return MapAxis.from_energy_bounds(1 * u.TeV, 100 * u.TeV, nbin)


def gammapy_axis(axis):
    from gammapy.maps import MapAxis as GammapyMapAxis

    if axis.node_type == "center":
        return GammapyMapAxis.from_nodes(axis.center, name=axis.name, interp=axis.interp)
    return GammapyMapAxis.from_edges(axis.edges, name=axis.name, interp=axis.interp)


# analytic -----------------------------------------------------------------------------
def test_create_center_shape_and_scales():
    axis = energy_axis(4)
    geom = WcsGeom.create(skydir=CRAB, width=(3, 2), binsz=0.1, axes=[axis])
    assert geom.npix == (30, 20)
    assert geom.data_shape == (4, 20, 30)
    assert geom.data_shape_image == (1, 20, 30)
    assert geom.center_skydir.separation(CRAB).deg < 1e-10
    np.testing.assert_allclose(geom.width.to_value("deg"), [3, 2])
    np.testing.assert_allclose(geom.pixel_scales.deg, [0.1, 0.1])
    # reference pixel at the map centre (FITS 1-based), lon increasing to the left
    np.testing.assert_allclose(geom.wcs.wcs.crpix, [15.5, 10.5])
    np.testing.assert_allclose(geom.wcs.wcs.cdelt, [-0.1, 0.1])
    assert geom.frame == "icrs" and geom.projection == "CAR"
    assert geom.to_image().data_shape == (20, 30)


def test_pix_coord_round_trip_and_axis_pixels():
    axis = energy_axis(5)
    geom = WcsGeom.create(skydir=CRAB, width=4, binsz=0.05, proj="TAN", axes=[axis])
    x = np.array([0.0, 10.3, 79.0])
    y = np.array([5.5, 40.0, 0.0])
    epix = np.array([0.0, 2.25, 4.0])
    lon, lat, energy = geom.pix_to_coord((x, y, epix))
    np.testing.assert_allclose(energy.to_value("TeV"), axis.pix_to_coord(epix).to_value("TeV"))
    # bin centres sit at integer pixels (geometric mean for a log axis)
    np.testing.assert_allclose(
        geom.axes[0].pix_to_coord([0, 4]).value, axis.center.value[[0, 4]], rtol=1e-12
    )
    back = geom.coord_to_pix((lon, lat, energy))
    for a, b in zip(back, (x, y, epix), strict=True):
        np.testing.assert_allclose(a, b, atol=1e-8)
    # dict and SkyCoord input, galactic position converted into the icrs frame of the map
    sky = SkyCoord(lon, lat, unit="deg").galactic
    back = geom.coord_to_pix({"skycoord": sky, "energy": energy})
    np.testing.assert_allclose(back[0], x, atol=1e-8)
    np.testing.assert_allclose(back[2], epix, atol=1e-10)


def test_solid_angle_sums_to_full_sky():
    geom = WcsGeom.create(binsz=1.0, frame="galactic", proj="CAR")  # all-sky plate carree
    assert geom.npix == (360, 180)
    total = geom.solid_angle().to_value("sr").sum()
    assert abs(total - 4 * np.pi) / (4 * np.pi) < 1e-4
    # a small pixel at latitude b has solid angle ~ cdelt^2 cos(b)
    sa = geom.solid_angle().to_value("sr")
    lat = geom.get_coord().lat
    np.testing.assert_allclose(
        sa[60:120, 10], np.deg2rad(1) ** 2 * np.cos(np.deg2rad(lat[60:120, 10])), rtol=1e-4
    )


def test_separation_matches_skycoord():
    geom = WcsGeom.create(skydir=CRAB, width=2, binsz=0.1)
    sep = geom.separation(CRAB)
    coord = geom.get_coord().skycoord
    np.testing.assert_allclose(sep.deg, coord.separation(CRAB).deg, atol=1e-12)


def test_aligned_cutout_relation():
    geom = WcsGeom.create(skydir=CRAB, width=(6, 4), binsz=0.05, proj="CAR", axes=[energy_axis()])
    pos = SkyCoord(84.4, 21.5, unit="deg")
    cut = geom.cutout(pos, 1.0 * u.deg)
    assert cut.npix == (20, 20)
    assert cut.is_aligned_cutout_of(geom)
    assert geom.is_aligned_cutout_of(geom)
    assert not geom.is_aligned_cutout_of(cut)  # larger, not inside
    ix0, iy0 = cut.cutout_offset(geom)
    # the cutout's pixel (0, 0) is the parent's pixel (ix0, iy0)
    lon_c, lat_c = cut.pix_to_coord((0, 0))
    lon_p, lat_p = geom.pix_to_coord((ix0, iy0))
    assert abs(lon_c - lon_p) < 1e-10 and abs(lat_c - lat_p) < 1e-10
    # half-pixel shift, other pixel size, other axes: not aligned
    shifted = WcsGeom.create(
        skydir=CRAB, width=(6, 4), binsz=0.05, refpix=(60.0, 40.5), axes=[energy_axis()]
    )
    assert not shifted.is_aligned_cutout_of(geom)
    coarser = WcsGeom.create(skydir=CRAB, width=(6, 4), binsz=0.1, axes=[energy_axis()])
    assert not coarser.is_aligned_cutout_of(geom)
    assert not cut.to_image().is_aligned_cutout_of(geom)
    assert geom.is_allclose(
        WcsGeom.create(skydir=CRAB, width=(6, 4), binsz=0.05, axes=[energy_axis()])
    )
    assert not geom.is_allclose(shifted)


def test_cutout_outside_raises():
    geom = WcsGeom.create(skydir=CRAB, width=2, binsz=0.1)
    with pytest.raises(GeometryMismatchError, match="does not overlap"):
        geom.cutout(SkyCoord(120, -40, unit="deg"), 1 * u.deg)


def test_map_shape_checked_and_copy():
    geom = WcsGeom.create(skydir=CRAB, width=1, binsz=0.1, axes=[energy_axis(2)])
    with pytest.raises(GeometryMismatchError, match="does not match geometry shape"):
        WcsNDMap(geom, np.zeros((10, 10)))
    m = WcsNDMap(geom, np.ones(geom.data_shape), unit="cm2 s")
    c = m.copy()
    c.data[0, 0, 0] = 5
    assert m.data[0, 0, 0] == 1
    assert m.quantity.unit == u.Unit("cm2 s")


def test_sum_over_axes_and_slice():
    axes = [
        energy_axis(3),
        MapAxis.from_energy_bounds(0.5 * u.TeV, 200 * u.TeV, 4, name="energy_true"),
    ]
    geom = WcsGeom.create(skydir=CRAB, width=(0.5, 0.3), binsz=0.1, axes=axes)
    data = np.random.default_rng(1).poisson(3.0, geom.data_shape).astype(float)
    m = WcsNDMap(geom, data)
    total = m.sum_over_axes()
    assert total.data.shape == (1, 1, 3, 5)
    np.testing.assert_allclose(total.data[0, 0], data.sum(axis=(0, 1)))
    assert total.geom.axis("energy").nbin == 1
    assert total.geom.axis("energy").edges[0] == axes[0].edges[0]
    image = m.sum_over_axes(keepdims=False)
    assert image.geom.is_image and image.data.shape == (3, 5)
    only_e = m.sum_over_axes(["energy"], keepdims=False)
    assert [a.name for a in only_e.geom.axes] == ["energy_true"]
    np.testing.assert_allclose(only_e.data, data.sum(axis=1))
    sliced = m.slice_by_idx({"energy": slice(1, 3)})
    assert sliced.data.shape == (4, 2, 3, 5)
    np.testing.assert_array_equal(sliced.data, data[:, 1:3])
    np.testing.assert_allclose(sliced.geom.axis("energy").edges.value, axes[0].edges.value[1:])


def test_interp_by_coord_linear_and_fill():
    geom = WcsGeom.create(
        skydir=(0, 0), npix=(5, 4), binsz=1.0, frame="galactic", axes=[energy_axis(3)]
    )
    iy, ix = np.mgrid[0:4, 0:5]
    ie = np.arange(3)[:, None, None]
    m = WcsNDMap(geom, 2.0 * ix + 3.0 * iy + 7.0 * ie)  # linear in pixel coordinates
    x, y, e = np.array([1.25, 3.5]), np.array([0.5, 2.75]), np.array([0.5, 1.0])
    lon, lat, energy = geom.pix_to_coord((x, y, e))
    vals = m.interp_by_coord((lon, lat, energy))
    np.testing.assert_allclose(vals, 2 * x + 3 * y + 7 * e, rtol=1e-9)
    outside = m.interp_by_coord((np.array([20.0]), np.array([0.0]), energy[:1]), fill_value=np.nan)
    assert np.isnan(outside[0])


def test_region_mask_circle():
    from regions import CircleSkyRegion

    geom = WcsGeom.create(skydir=CRAB, width=2, binsz=0.05, axes=[energy_axis(2)])
    region = CircleSkyRegion(CRAB, 0.3 * u.deg)
    mask = geom.region_mask([region])
    assert mask.data.dtype == bool and mask.data.shape == geom.data_shape
    inside = geom.separation(CRAB).deg < 0.3
    # away from the boundary the pixel-centre test agrees with the separation test
    sep = geom.separation(CRAB).deg
    clear = np.abs(sep - 0.3) > 0.01
    np.testing.assert_array_equal(mask.data[0][clear], inside[clear])
    assert (~geom.region_mask(region, inside=False).data[1] == mask.data[1]).all()


def test_to_xarray_dims_and_coords():
    geom = WcsGeom.create(skydir=CRAB, width=(0.5, 0.3), binsz=0.1, axes=[energy_axis(3)])
    m = WcsNDMap(
        geom, np.arange(np.prod(geom.data_shape), dtype=float).reshape(geom.data_shape), unit="cm-2"
    )
    da = m.to_xarray()
    assert da.dims == ("energy", "y", "x")
    np.testing.assert_allclose(da["energy"].values, geom.axes[0].center.value)
    np.testing.assert_allclose(da["lon"].values, geom.get_coord().lon)
    assert da.attrs["unit"] == "1 / cm2"
    assert float(da.sel(energy=da["energy"][1]).isel(y=2, x=4)) == m.data[1, 2, 4]


def test_node_axis_edges_and_pixels():
    nodes = np.array([1.0, 10.0, 100.0]) * u.GeV
    axis = MapAxis.from_nodes(nodes, name="energy_true", interp="log")
    assert axis.node_type == "center" and axis.nbin == 3
    np.testing.assert_allclose(axis.center.value, nodes.value)
    np.testing.assert_allclose(axis.edges.value, [10**-0.5, 10**0.5, 10**1.5, 10**2.5])
    np.testing.assert_allclose(axis.coord_to_pix([1.0, np.sqrt(10.0), 100.0] * u.GeV), [0, 0.5, 2])
    assert not axis.is_allclose(MapAxis(axis.edges, name="energy_true"))
    rad = MapAxis.from_nodes(np.linspace(0, 1, 5) * u.deg, name="rad", interp="lin")
    np.testing.assert_allclose(rad.edges.value, np.linspace(-0.125, 1.125, 6))
    assert rad.slice(slice(1, 3)).center[0] == 0.25 * u.deg


# gammapy oracle -----------------------------------------------------------------------
@pytest.mark.oracle
@pytest.mark.parametrize("kwargs", CREATE_CASES, ids=lambda kw: f"{kw['proj']}-{kw['frame']}")
def test_create_matches_gammapy(kwargs):
    gammapy_maps = pytest.importorskip("gammapy.maps")
    axis = energy_axis(3)
    ours = WcsGeom.create(axes=[axis], **kwargs)
    theirs = gammapy_maps.WcsGeom.create(axes=[gammapy_axis(axis)], **kwargs)

    assert dict(geom_to_header(ours)) == dict(theirs.to_header())
    assert ours.data_shape == theirs.data_shape
    assert ours.frame == theirs.frame and ours.projection == theirs.projection
    np.testing.assert_allclose(
        ours.width.to_value("deg"), theirs.width.to_value("deg").ravel(), rtol=1e-12
    )
    np.testing.assert_allclose(ours.pixel_scales.deg, theirs.pixel_scales.deg, rtol=1e-12)
    assert ours.center_skydir.separation(theirs.center_skydir).deg < 1e-10

    coord, coord_g = ours.get_coord(), theirs.to_image().get_coord()
    np.testing.assert_array_equal(coord.lon, coord_g.lon.to_value("deg"))
    np.testing.assert_array_equal(coord.lat, coord_g.lat.to_value("deg"))
    np.testing.assert_allclose(
        ours.solid_angle().to_value("sr"), theirs.solid_angle().to_value("sr"), rtol=1e-10, atol=0
    )
    # pixel coordinates of arbitrary sky positions and energies
    sky = ours.center_skydir.directional_offset_by([0, 40, 200] * u.deg, [0.1, 0.7, 1.2] * u.deg)
    energy = [2.0, 9.0, 50.0] * u.TeV
    pix = ours.coord_to_pix({"skycoord": sky, "energy": energy})
    pix_g = theirs.coord_to_pix({"skycoord": sky, "energy": energy})
    for a, b in zip(pix, pix_g, strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-9)


@pytest.mark.oracle
@pytest.mark.parametrize(
    "kwargs", CREATE_CASES[:3] + CREATE_CASES[4:], ids=lambda kw: f"{kw['proj']}-{kw['frame']}"
)
@pytest.mark.parametrize(
    "offset, width, mode, odd",
    [
        (0.0, 1.0, "trim", False),
        (0.3, (1.3, 0.7), "trim", True),
        (2.4, 1.5, "trim", False),  # clipped at the map border
        (2.4, 1.5, "partial", False),  # extends beyond the border
    ],
)
def test_cutout_matches_gammapy(kwargs, offset, width, mode, odd):
    gammapy_maps = pytest.importorskip("gammapy.maps")
    ours = WcsGeom.create(**kwargs)
    theirs = gammapy_maps.WcsGeom.create(**kwargs)
    position = ours.center_skydir.directional_offset_by(30 * u.deg, offset * u.deg)
    width = tuple(w * u.deg for w in width) if isinstance(width, tuple) else width * u.deg
    cut = ours.cutout(position, width, mode=mode, odd_npix=odd)
    cut_g = theirs.cutout(position, width, mode=mode, odd_npix=odd)
    assert dict(cut.wcs.to_header()) == dict(cut_g.wcs.to_header())
    assert cut.data_shape == cut_g.data_shape
    assert cut.cutout_slices(ours, mode) == cut_g.cutout_slices(theirs, mode)
    # aligned cutout "of" the parent only where it lies fully inside (always for mode="trim")
    small = cut.cutout_slices(ours, mode)["cutout-slices"]
    inside = all(
        sl.start == 0 and sl.stop == n for sl, n in zip(small, cut.data_shape[-2:], strict=True)
    )
    assert inside or mode == "partial"
    assert cut.is_aligned_cutout_of(ours) == inside

    # map cutouts carry the same data
    rng = np.random.default_rng(3)
    data = rng.normal(size=ours.data_shape)
    m_cut = WcsNDMap(ours, data).cutout(position, width, mode=mode, odd_npix=odd)
    m_cut_g = gammapy_maps.Map.from_geom(theirs, data=data).cutout(
        position, width, mode=mode, odd_npix=odd
    )
    np.testing.assert_array_equal(m_cut.data, m_cut_g.data)


@pytest.mark.oracle
def test_region_mask_matches_gammapy():
    gammapy_maps = pytest.importorskip("gammapy.maps")
    from regions import CircleSkyRegion, PointSkyRegion, RectangleSkyRegion

    kwargs = dict(skydir=CRAB, width=(3, 2), binsz=0.05, frame="galactic", proj="TAN")
    axis = energy_axis(2)
    ours = WcsGeom.create(axes=[axis], **kwargs)
    theirs = gammapy_maps.WcsGeom.create(axes=[gammapy_axis(axis)], **kwargs)
    regions = [
        CircleSkyRegion(CRAB, 0.4 * u.deg),
        RectangleSkyRegion(
            SkyCoord(84.5, 21.8, unit="deg"), 0.5 * u.deg, 0.2 * u.deg, angle=30 * u.deg
        ),
        PointSkyRegion(SkyCoord(83.0, 22.6, unit="deg")),
    ]
    np.testing.assert_array_equal(ours.region_mask(regions).data, theirs.region_mask(regions).data)
    ds9 = "icrs; circle(83.63, 22.01, 0.25)"
    np.testing.assert_array_equal(ours.region_mask(ds9).data, theirs.region_mask(ds9).data)


@pytest.mark.oracle
def test_map_operations_match_gammapy():
    gammapy_maps = pytest.importorskip("gammapy.maps")
    axes = [
        energy_axis(4),
        MapAxis.from_nodes(np.linspace(0, 0.5, 6) * u.deg, name="rad", interp="lin"),
    ]
    kwargs = dict(skydir=CRAB, width=(2, 1.5), binsz=0.1, frame="icrs", proj="CAR")
    ours = WcsGeom.create(axes=axes, **kwargs)
    theirs = gammapy_maps.WcsGeom.create(axes=[gammapy_axis(a) for a in axes], **kwargs)
    data = np.random.default_rng(7).uniform(1, 2, ours.data_shape)
    m, m_g = (
        WcsNDMap(ours, data, unit="cm2 s"),
        gammapy_maps.Map.from_geom(theirs, data=data, unit="cm2 s"),
    )

    total, total_g = m.sum_over_axes(), m_g.sum_over_axes()
    np.testing.assert_allclose(total.data, total_g.data, rtol=1e-14)
    assert dict(geom_to_header(total.geom)) == dict(total_g.geom.to_header())

    position = SkyCoord(83.9, 21.7, unit="deg")
    energy = np.array([1.5, 7.0, 60.0])[:, None] * u.TeV
    rad = np.array([0.0, 0.13, 0.31, 0.5])[None, :] * u.deg
    coords = {"skycoord": position, "energy": energy, "rad": rad}
    np.testing.assert_allclose(m.interp_by_coord(coords), m_g.interp_by_coord(coords), rtol=1e-12)
    far = {"skycoord": SkyCoord(95, 22, unit="deg"), "energy": energy, "rad": rad}
    np.testing.assert_allclose(
        m.interp_by_coord(far, fill_value=-1.0),
        m_g.interp_by_coord(far, fill_value=-1.0),
        rtol=1e-12,
    )
    assert np.all(m.interp_by_coord(far, fill_value=-1.0) == -1.0)


# real data ----------------------------------------------------------------------------
def _gammapy_data():
    path = os.environ.get("GAMMAPY_DATA")
    if not path:
        pytest.skip("GAMMAPY_DATA is not set: the real-data tests need the gammapy-data directory")
    return Path(path)


@pytest.mark.realdata
@pytest.mark.oracle
def test_hawc_oblique_car_exposure_at_position():
    """HAWC maps are CAR centred on the Crab (oblique): coordinates must go through the full WCS."""
    gammapy_maps = pytest.importorskip("gammapy.maps")
    filename = _gammapy_data() / "hawc/DL4/nHit-5.fits.gz"
    exposure = WcsNDMap.read(filename, hdu="EXPOSURE")
    exposure_g = gammapy_maps.Map.read(filename, hdu="EXPOSURE")
    lat = exposure.geom.wcs.wcs.crval[1]
    assert exposure.geom.projection == "CAR" and lat > 20  # oblique plate carree

    coord, coord_g = exposure.geom.get_coord(), exposure_g.geom.to_image().get_coord()
    np.testing.assert_array_equal(coord.lon, coord_g.lon.to_value("deg"))
    np.testing.assert_array_equal(coord.lat, coord_g.lat.to_value("deg"))
    np.testing.assert_allclose(
        exposure.geom.solid_angle().value, exposure_g.geom.solid_angle().value, rtol=1e-10, atol=0
    )
    # a flat offset in (ra, dec) is not a pixel offset here: the corner pixel is far from the naive value
    naive_lon = 83.63 + 0.05 * (exposure.geom.npix[0] - 1) / 2
    assert abs(coord.lon[0, 0] - naive_lon) > 0.1

    position = SkyCoord(84.1, 21.6, unit="deg")
    energy_true = exposure.geom.axis("energy_true").center[::7]
    coords = {"skycoord": position, "energy_true": energy_true}
    np.testing.assert_allclose(
        exposure.interp_by_coord(coords), exposure_g.interp_by_coord(coords), rtol=1e-12
    )
    cut = exposure.cutout(position, 1.0 * u.deg)
    cut_g = exposure_g.cutout(position, 1.0 * u.deg)
    assert dict(cut.geom.wcs.to_header()) == dict(cut_g.geom.wcs.to_header())
    np.testing.assert_array_equal(cut.data, cut_g.data)
    assert cut.geom.is_aligned_cutout_of(exposure.geom)


@pytest.mark.oracle
@pytest.mark.parametrize("proj", ["AIT", "MOL", "SIN", "ZEA", "ARC", "STG", "MER", "SFL"])
def test_other_projections_both_ways_with_gammapy(proj, tmp_path):
    """Projections gammapy 2.1 creates and writes besides CAR / TAN (all-sky AIT / MOL have
    pixels off the sky: NaN coordinates and solid angles in both)."""
    gammapy_maps = pytest.importorskip("gammapy.maps")
    allsky = proj in ("AIT", "MOL")
    kwargs = dict(
        skydir=(10.0, 20.0),
        width=(360, 180) if allsky else (40, 30),
        binsz=2.0 if allsky else 0.5,
        frame="galactic",
        proj=proj,
    )
    axis = energy_axis(2)
    theirs = gammapy_maps.WcsGeom.create(axes=[gammapy_axis(axis)], **kwargs)
    data = np.random.default_rng(11).uniform(size=theirs.data_shape)
    gammapy_maps.Map.from_geom(theirs, data=data, unit="cm-2").write(tmp_path / "gp.fits")
    ours = WcsNDMap.read(tmp_path / "gp.fits")
    geom = ours.geom
    assert geom.projection == proj
    assert dict(geom_to_header(geom)) == dict(theirs.to_header())
    np.testing.assert_array_equal(ours.data, data)
    assert geom.is_allclose(WcsGeom.create(axes=[axis], **kwargs))

    coord, coord_g = geom.get_coord(), theirs.to_image().get_coord()
    np.testing.assert_array_equal(coord.lon, coord_g.lon.to_value("deg"))
    np.testing.assert_array_equal(coord.lat, coord_g.lat.to_value("deg"))
    off_sky = np.isnan(coord.lon)
    assert off_sky.any() == allsky
    sa, sa_g = geom.solid_angle().to_value("sr"), theirs.solid_angle().to_value("sr")
    np.testing.assert_allclose(sa, sa_g, rtol=1e-10, atol=0)
    if allsky:  # pixels fully on the sky cover it but for the ring cut by the projection's edge
        assert 0.95 * 4 * np.pi < np.nansum(sa) < 4 * np.pi
    # sky -> pixel -> sky, as gammapy
    lon = coord.lon[~off_sky][::97] + 0.3
    lat = np.clip(coord.lat[~off_sky][::97] - 0.2, -89, 89)
    sky = SkyCoord(lon, lat, unit="deg", frame="galactic")
    pix = geom.coord_to_pix({"skycoord": sky, "energy": np.full(lon.size, 5.0) * u.TeV})
    pix_g = theirs.coord_to_pix({"skycoord": sky, "energy": np.full(lon.size, 5.0) * u.TeV})
    for a, b in zip(pix, pix_g, strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-8)
    back = geom.pix_to_coord(pix)
    assert SkyCoord(back[0], back[1], unit="deg", frame="galactic").separation(sky).deg.max() < 1e-8

    # written here, read by gammapy
    ours.write(tmp_path / "ours.fits")
    again = gammapy_maps.Map.read(tmp_path / "ours.fits")
    assert dict(again.geom.to_header()) == dict(theirs.to_header())
    np.testing.assert_array_equal(again.data, data)
