"""Energy-dispersion maps: exact checks, gammapy 2.1 as the oracle on real files, I/O, errors."""

import os
from pathlib import Path

import numpy as np
import pytest
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.io import fits

from bayesdl4.errors import DataFormatError, GeometryMismatchError
from bayesdl4.io.gadf_irf import read_edisp_map
from bayesdl4.irf import EDispKernel, EDispKernelMap, EDispMap
from bayesdl4.maps import MapAxis, WcsGeom, WcsNDMap

CRAB = SkyCoord(83.63, 22.01, unit="deg")
FERMI_CRAB = "fermi-3fhl-crab/Fermi-LAT-3FHL_data_Fermi-LAT.fits"
HAWC = "hawc/DL4/nHit-{}.fits.gz"
POSITIONS = [
    CRAB,
    SkyCoord(84.4, 22.9, unit="deg"),
    SkyCoord(86.5, 24.6, unit="deg"),  # outside the Fermi grid's valid pixels: moved
    SkyCoord(95.0, 22.0, unit="deg"),  # outside both grids
    SkyCoord(184.3, -5.9, unit="deg", frame="galactic"),
    None,
]


@pytest.fixture(scope="module")
def data_dir():
    path = os.environ.get("GAMMAPY_DATA")
    if not path or not Path(path).is_dir():
        pytest.skip("GAMMAPY_DATA is not set (or not a folder): real-data edisp tests skipped")
    return Path(path)


@pytest.fixture(scope="module")
def gp():
    pytest.importorskip("gammapy")
    import gammapy.irf
    import gammapy.maps

    return {"irf": gammapy.irf, "maps": gammapy.maps}


def energy_axes():
    energy_true = MapAxis.from_energy_bounds(0.1 * u.TeV, 100 * u.TeV, 12, name="energy_true")
    energy = MapAxis.from_energy_bounds(0.2 * u.TeV, 50 * u.TeV, 8, name="energy")
    return energy_true, energy


def step_density_map(seed=0, npix=(4, 3)):
    """Migra densities constant within each migra bin, different per pixel and true energy."""
    energy_true, _ = energy_axes()
    migra = MapAxis(np.linspace(0.2, 5, 49), name="migra", interp="lin")
    geom = WcsGeom.create(skydir=CRAB, npix=npix, binsz=1.0, axes=[migra, energy_true])
    rng = np.random.default_rng(seed)
    centre = migra.center.value[None, :, None, None]
    width = rng.uniform(0.1, 0.4, (energy_true.nbin, 1) + geom.data_shape[-2:])
    density = np.exp(-0.5 * ((centre - 1) / width) ** 2) * rng.uniform(0.5, 1.5, geom.data_shape)
    density /= (density * 0.1).sum(axis=1, keepdims=True)
    return EDispMap(WcsNDMap(geom, density)), density


def overlap_kernel(density, migra_edges, energy_true, energy, threshold=1e-8):
    """Exact integral of a step density over each reco bin, (n_true, n_reco)."""
    out = np.zeros((energy_true.nbin, energy.nbin))
    lo, hi = migra_edges[:-1], migra_edges[1:]
    for i, e_true in enumerate(energy_true.center.to_value("TeV")):
        m = energy.edges.to_value("TeV") / e_true
        for j in range(energy.nbin):
            overlap = np.clip(np.minimum(hi, m[j + 1]) - np.maximum(lo, m[j]), 0, None)
            out[i, j] = (density[i] * overlap).sum()
    out[out < threshold] = 0
    return out


# exact checks -----------------------------------------------------------------------------
def test_step_density_gives_the_exact_bin_integrals():
    edisp, density = step_density_map()
    energy_true, energy = energy_axes()
    geom = edisp.geom.to_image()
    kernel_map = edisp.to_edisp_kernel_map(energy)
    migra_edges = edisp.migra_axis.edges.value
    for iy, ix in [(0, 0), (2, 3), (1, 2)]:
        expected = overlap_kernel(density[:, :, iy, ix], migra_edges, energy_true, energy)
        np.testing.assert_allclose(kernel_map.edisp_map.data[:, :, iy, ix], expected, atol=1e-13)
        lon, lat = geom.pix_to_coord((ix + 0.3, iy - 0.4))  # nearest pixel: (ix, iy)
        kernel = edisp.get_edisp_kernel(energy, position=SkyCoord(lon, lat, unit="deg"))
        np.testing.assert_allclose(kernel.pdf_matrix, expected, atol=1e-13)
    # a true energy whose whole migra range falls in the reco range keeps all its probability,
    # less the entries below the 1e-8 threshold
    inside = (energy.edges[0] / energy_true.center < 0.2) & (
        energy.edges[-1] / energy_true.center > 5
    )
    assert inside.any()
    np.testing.assert_allclose(kernel.pdf_matrix[inside].sum(axis=1), 1, atol=energy.nbin * 1e-8)


def test_kernel_map_takes_the_nearest_valid_pixel():
    energy_true, energy = energy_axes()
    geom = WcsGeom.create(skydir=CRAB, npix=(3, 3), binsz=1.0, axes=[energy, energy_true])
    base = EDispKernel.from_gauss(energy_true, energy, sigma=0.2).pdf_matrix
    scale = 1 + np.arange(9).reshape(3, 3)
    data = base[:, :, None, None] * scale[None, None] / 9
    data[:, :, 2, 2] = 0  # an empty pixel (no IRF there)
    edisp = EDispKernelMap(WcsNDMap(geom, data))
    image = geom.to_image()
    lon, lat = image.pix_to_coord((0.45, 1.4))  # pixel x=0, y=1
    kernel = edisp.get_edisp_kernel(SkyCoord(lon, lat, unit="deg"), energy_axis=energy)
    np.testing.assert_array_equal(kernel.pdf_matrix, data[:, :, 1, 0])
    lon, lat = image.pix_to_coord((2.1, 1.9))  # in the empty pixel: moved to a valid neighbour
    kernel = edisp.get_edisp_kernel(SkyCoord(lon, lat, unit="deg"))
    assert any(np.array_equal(kernel.pdf_matrix, data[:, :, y, x]) for y, x in [(1, 2), (2, 1)])
    assert not np.array_equal(kernel.pdf_matrix, 0 * base)


def test_diagonal_and_from_kernel():
    energy_true, _ = energy_axes()
    energy = energy_true.copy(name="energy")
    diagonal = EDispKernelMap.from_diagonal_response(energy, energy_true)
    np.testing.assert_allclose(diagonal.get_edisp_kernel(CRAB).pdf_matrix, np.eye(12), atol=1e-12)
    _, coarse = energy_axes()
    kernel = EDispKernel.from_gauss(energy_true, coarse, sigma=0.15, bias=0.02)
    edisp = EDispKernelMap.from_edisp_kernel(kernel)
    for position in (CRAB, SkyCoord(250, -60, unit="deg")):
        np.testing.assert_array_equal(
            edisp.get_edisp_kernel(position).pdf_matrix, kernel.pdf_matrix
        )
    migra = EDispMap.from_diagonal_response(energy_true).get_edisp_kernel(energy, CRAB)
    np.testing.assert_allclose(migra.pdf_matrix, np.eye(12), atol=1e-9)


# gammapy as the oracle -----------------------------------------------------------------------
@pytest.mark.parametrize("filename", [HAWC.format(5), HAWC.format(9), FERMI_CRAB])
def test_real_kernel_maps_match_gammapy(data_dir, gp, filename):
    ours = EDispKernelMap.read(data_dir / filename)
    theirs = gp["irf"].EDispKernelMap.read(data_dir / filename)
    assert (ours.exposure_map is None) == (theirs.exposure_map is None)
    for position in POSITIONS:
        kernel = ours.get_edisp_kernel(position=position, energy_axis=ours.energy_axis)
        expected = theirs.get_edisp_kernel(position=position)
        np.testing.assert_array_equal(kernel.pdf_matrix, expected.pdf_matrix)
        np.testing.assert_allclose(
            kernel.energy_axis_true.edges.value,
            expected.axes["energy_true"].edges.to_value(kernel.energy_axis_true.unit),
            rtol=1e-12,
        )


@pytest.fixture(scope="module")
def gammapy_migra_file(gp, tmp_path_factory):
    """A gammapy-written migra map whose resolution varies over a 4 x 4 grid and with energy."""
    g = gp["maps"]
    energy_true = g.MapAxis.from_energy_bounds("0.1 TeV", "100 TeV", 12, name="energy_true")
    migra = g.MapAxis.from_bounds(0.2, 5, 48, name="migra")
    geom = g.WcsGeom.create(skydir=(83.63, 22.01), width=4, binsz=1.0, axes=[migra, energy_true])
    coord = geom.get_coord()
    sigma = 0.1 + 0.02 * np.log10(coord["energy_true"].to_value("TeV") + 1)
    sigma = sigma + 0.01 * np.abs(coord.lon.value - 83.63)
    mu = 1 + 0.05 * (coord.lat.value - 22.01)
    density = np.exp(-0.5 * ((coord["migra"].value - mu) / sigma) ** 2) / (
        np.sqrt(2 * np.pi) * sigma
    )
    exposure_geom = geom.squash("migra")
    exposure = g.Map.from_geom(exposure_geom, data=np.ones(exposure_geom.data_shape), unit="m2 s")
    edisp = gp["irf"].EDispMap(g.Map.from_geom(geom, data=density), exposure)
    path = tmp_path_factory.mktemp("migra") / "migra.fits"
    edisp.write(path)
    return path, edisp


def test_gammapy_migra_map_reads_here_and_converts_the_same(gp, gammapy_migra_file):
    path, theirs = gammapy_migra_file
    ours = EDispMap.read(path)
    assert isinstance(ours, EDispMap) and ours.exposure_map is not None
    energy = gp["maps"].MapAxis.from_energy_bounds("0.2 TeV", "50 TeV", 8, name="energy")
    energy_ours = MapAxis(energy.edges, name="energy")
    for position in (CRAB, SkyCoord(85.1, 23.4, unit="deg"), SkyCoord(90, 30, unit="deg"), None):
        kernel = ours.get_edisp_kernel(energy_axis=energy_ours, position=position)
        expected = theirs.get_edisp_kernel(energy, position=position)
        np.testing.assert_allclose(kernel.pdf_matrix, expected.pdf_matrix, rtol=1e-12, atol=1e-14)
    kernel_map = ours.to_edisp_kernel_map(energy_ours)
    expected = theirs.to_edisp_kernel_map(energy)
    np.testing.assert_allclose(
        kernel_map.edisp_map.data, expected.edisp_map.data, rtol=1e-12, atol=1e-14
    )
    np.testing.assert_array_equal(kernel_map.exposure_map.data, expected.exposure_map.data)
    assert kernel_map.exposure_map.geom.axes_names == ["lon", "lat", "energy", "energy_true"]


def test_migra_map_written_here_reads_in_gammapy(gp, tmp_path):
    ours, _ = step_density_map(seed=3)
    ours.write(tmp_path / "migra.fits")
    theirs = gp["irf"].EDispMap.read(tmp_path / "migra.fits")
    np.testing.assert_array_equal(theirs.edisp_map.data, ours.edisp_map.data)
    energy = gp["maps"].MapAxis.from_energy_bounds("0.2 TeV", "50 TeV", 8, name="energy")
    _, energy_ours = energy_axes()
    for position in (CRAB, SkyCoord(84.9, 21.3, unit="deg")):
        np.testing.assert_allclose(
            ours.get_edisp_kernel(energy_ours, position).pdf_matrix,
            theirs.get_edisp_kernel(energy, position).pdf_matrix,
            rtol=1e-12,
            atol=1e-14,
        )


def test_fermi_kernel_map_with_exposure_round_trips(data_dir, gp, tmp_path):
    ours = EDispKernelMap.read(data_dir / FERMI_CRAB)
    ours.write(tmp_path / "edisp.fits")
    with fits.open(tmp_path / "edisp.fits") as hdulist:
        names = [hdu.name for hdu in hdulist]
    assert names == ["PRIMARY", "EDISP", "EDISP_BANDS", "EDISP_EXPOSURE", "EDISP_EXPOSURE_BANDS"]
    theirs = gp["irf"].EDispKernelMap.read(tmp_path / "edisp.fits")
    np.testing.assert_array_equal(theirs.edisp_map.data, ours.edisp_map.data)
    np.testing.assert_array_equal(theirs.exposure_map.data, ours.exposure_map.data)
    assert theirs.exposure_map.unit == ours.exposure_map.unit == u.Unit("m2 s")
    for position in POSITIONS:
        np.testing.assert_array_equal(
            ours.get_edisp_kernel(position).pdf_matrix,
            theirs.get_edisp_kernel(position).pdf_matrix,
        )
    gammapy_written = tmp_path / "gammapy.fits"
    theirs.write(gammapy_written)
    back = read_edisp_map(gammapy_written)
    assert isinstance(back, EDispKernelMap)  # EDispMap.read of a kernel HDU gives a kernel map
    np.testing.assert_array_equal(back.edisp_map.data, ours.edisp_map.data)


# errors ----------------------------------------------------------------------------------------
def test_errors_name_the_file_and_say_what_to_do(gammapy_migra_file, tmp_path):
    path, _ = gammapy_migra_file
    with pytest.raises(DataFormatError, match="migration map.*EDispMap.read"):
        EDispKernelMap.read(path)
    with fits.open(path) as hdulist:
        hdulist["EDISP"].data[3, 5, 1, 1] = np.nan
        hdulist.writeto(tmp_path / "nan.fits")
    with pytest.raises(
        DataFormatError, match=r"nan\.fits, HDU 'EDISP'.*energy_true plane\(s\) \[3\]"
    ):
        EDispMap.read(tmp_path / "nan.fits")
    edisp = EDispKernelMap.from_diagonal_response(*reversed(energy_axes()))
    _, energy = energy_axes()
    other = MapAxis.from_energy_bounds(0.2 * u.TeV, 50 * u.TeV, 9, name="energy")
    assert edisp.get_edisp_kernel(CRAB, energy_axis=energy).pdf_matrix.shape == (12, 8)
    with pytest.raises(GeometryMismatchError, match="reco energy axis"):
        edisp.get_edisp_kernel(CRAB, energy_axis=other)
    migra, _ = step_density_map()
    with pytest.raises(GeometryMismatchError, match="energy_axis"):
        migra.get_edisp_kernel(None, CRAB)
    geom = WcsGeom.create(skydir=CRAB, npix=(2, 2), binsz=1.0, axes=list(energy_axes()))
    with pytest.raises(DataFormatError, match=r"axes \['energy_true', 'energy'\]"):
        EDispKernelMap(WcsNDMap(geom, np.ones(geom.data_shape)))
    with pytest.raises(DataFormatError, match="available HDUs"):
        EDispMap.read(tmp_path / "nan.fits", hdu="EDISP_MISSING")
