"""Geometry mismatches say what differs: pixel size (CDELT), frame, projection (issue 12, item 9)."""

import numpy as np
import pytest
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.io import fits

from bayesdl4.datasets import MapDataset
from bayesdl4.errors import GeometryMismatchError
from bayesdl4.maps import MapAxis, WcsGeom, WcsNDMap
from bayesdl4.maps.differences import wcs_difference

CRAB = SkyCoord(83.63, 22.01, unit="deg")
ENERGY = MapAxis.from_energy_bounds(1 * u.TeV, 10 * u.TeV, 3, name="energy")


def _geom(**kwargs):
    args = dict(skydir=CRAB, npix=(8, 6), binsz=0.1, frame="icrs", proj="CAR", axes=[ENERGY])
    args.update(kwargs)
    if args["frame"] == "galactic":
        args["skydir"] = CRAB.galactic
    return WcsGeom.create(**args)


def test_same_grid_has_no_difference():
    assert wcs_difference(_geom(), _geom()) == ""


def test_cdelt():
    message = wcs_difference(_geom(), _geom(binsz=0.2))
    assert message == "pixel size (CDELT) [-0.1, 0.1] vs [-0.2, 0.2] deg"


def test_frame():
    message = wcs_difference(_geom(), _geom(frame="galactic"))
    assert message.startswith("frame 'icrs' (RA---CAR, DEC--CAR) vs 'galactic' (GLON-CAR, GLAT-CAR)")


def test_projection_and_reference_pixel():
    assert wcs_difference(_geom(), _geom(proj="TAN")) == "projection 'CAR' vs 'TAN'"
    shifted = _geom(skydir=SkyCoord(83.73, 22.01, unit="deg"))
    assert "reference value (CRVAL) [83.63, 22.01] vs [83.73, 22.01]" in wcs_difference(_geom(), shifted)


@pytest.mark.parametrize(
    ("other", "expected"),
    [
        (dict(binsz=0.2), "pixel size (CDELT) [-0.2, 0.2] vs [-0.1, 0.1] deg"),
        (dict(frame="galactic"), "frame 'galactic' (GLON-CAR, GLAT-CAR) vs 'icrs' (RA---CAR, DEC--CAR)"),
    ],
)
def test_dataset_message_says_what_differs(other, expected):
    """Before: 'WCS differs (crval ... crpix ... projection 'CAR' vs 'CAR')' without CDELT or frame."""
    geom = _geom()
    counts = WcsNDMap(geom, np.ones(geom.data_shape))
    background = WcsNDMap(_geom(**other), np.ones(geom.data_shape))
    with pytest.raises(GeometryMismatchError, match="background geometry does not match counts") as info:
        MapDataset(counts=counts, background=background)
    assert expected in str(info.value)


def test_file_with_a_different_cdelt_names_file_hdu_and_cdelt(tmp_path):
    geom = _geom()
    dataset = MapDataset(
        counts=WcsNDMap(geom, np.ones(geom.data_shape)),
        background=WcsNDMap(geom, np.ones(geom.data_shape)),
        name="d",
    )
    dataset.write(tmp_path / "d.fits")
    with fits.open(tmp_path / "d.fits", mode="update") as hdulist:
        hdulist["BACKGROUND"].header["CDELT1"] = -0.2
        hdulist["BACKGROUND"].header["CDELT2"] = 0.2
    with pytest.raises(GeometryMismatchError) as info:
        MapDataset.read(tmp_path / "d.fits")
    message = str(info.value)
    assert "d.fits" in message and "'BACKGROUND'" in message
    assert "pixel size (CDELT) [-0.2, 0.2] vs [-0.1, 0.1] deg" in message
