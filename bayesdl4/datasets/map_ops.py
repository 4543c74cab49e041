"""Transformations of map datasets, as gammapy 2.1 does them: create, cutout, slice, to_image.

Functions over `MapDataset` / `MapDatasetOnOff`; the methods of the same names delegate here.
"""

from __future__ import annotations

import numpy as np
from astropy import units as u
from astropy.table import Table

from ..errors import GeometryMismatchError
from ..irf import EDispKernelMap, EDispMap, PSFMap
from ..maps import MapAxis, WcsGeom, WcsNDMap
from .map import BINSZ_IRF_DEFAULT, MapDataset

__all__ = ["create_map_dataset", "cutout", "slice_by_idx", "to_image", "RAD_AXIS_DEFAULT"]

# gammapy's default PSF rad axis: 0..0.66 deg in 66 bins
RAD_AXIS_DEFAULT = MapAxis(np.linspace(0, 0.66, 67) * u.deg, name="rad", interp="lin")


def create_map_dataset(
    geom,
    energy_axis_true=None,
    migra_axis=None,
    rad_axis=None,
    binsz_irf=BINSZ_IRF_DEFAULT,
    reference_time="2000-01-01",
    name="dataset",
    meta_table=None,
    reco_psf=False,
    dataset_class=MapDataset,
):
    """Empty dataset on ``geom``, as gammapy's ``MapDataset.create``.

    Counts and background are zero on ``geom``; the exposure is zero [m2 s] on the same sky
    grid with ``energy_axis_true``; PSF (zero, ``rad_axis``) and energy dispersion (diagonal:
    bin-overlap kernel, or with ``migra_axis`` a migration map) lie on a coarse grid of
    ``binsz_irf`` deg with the same centre and width; ``mask_safe`` is all False and the GTI
    table is empty.

    Parameters
    ----------
    geom : `WcsGeom`
        Counts geometry with one ``energy`` axis.
    energy_axis_true : `MapAxis`, optional
        Default: the counts energy axis renamed ``energy_true``.
    migra_axis : `MapAxis`, optional
        Gives an `EDispMap` instead of an `EDispKernelMap`.
    rad_axis : `MapAxis`, optional
        Default 0..0.66 deg in 66 bins.
    binsz_irf : float
        Pixel size of the IRF maps in deg.
    reference_time : str
        GTI reference time (UTC for a string, as gammapy; written as ``MJDREF`` in TT).
    reco_psf : bool
        PSF in reconstructed energy.
    """
    if not isinstance(geom, WcsGeom):
        raise GeometryMismatchError(f"create: geom must be a WcsGeom, got {type(geom).__name__}")
    energy_axis = geom.axis("energy")
    if energy_axis_true is None:
        energy_axis_true = energy_axis.copy(name="energy_true")
    elif energy_axis_true.name != "energy_true":
        raise GeometryMismatchError(
            f"create: energy_axis_true must be named 'energy_true', got {energy_axis_true.name!r}"
        )
    rad_axis = RAD_AXIS_DEFAULT.copy() if rad_axis is None else rad_axis
    image = geom.to_image()
    # gammapy's WcsGeom.to_binsz: same centre, width and projection, coarser pixels
    geom_irf = WcsGeom.create(
        skydir=image.center_skydir,
        binsz=float(u.Quantity(binsz_irf, "deg").value),
        width=tuple(image.width.to_value("deg")),
        proj=image.projection,
        frame=image.frame,
    )
    geom_psf = geom_irf.to_cube(
        [rad_axis.copy(), (energy_axis if reco_psf else energy_axis_true).copy()]
    )
    psf = PSFMap(
        WcsNDMap(geom_psf, unit="sr-1"),
        exposure_map=WcsNDMap(geom_psf.squash("rad"), unit="m2 s"),
    )
    if migra_axis is None:
        edisp = EDispKernelMap.from_diagonal_response(
            energy_axis.copy(), energy_axis_true.copy(), geom=geom_irf
        )
    else:
        edisp = EDispMap.from_diagonal_response(
            energy_axis_true.copy(), migra_axis=migra_axis.copy(), geom=geom_irf
        )
    return dataset_class(
        counts=WcsNDMap(geom),
        background=WcsNDMap(geom),
        exposure=WcsNDMap(image.to_cube([energy_axis_true.copy()]), unit="m2 s"),
        psf=psf,
        edisp=edisp,
        mask_safe=WcsNDMap(geom, dtype=bool),
        gti=_empty_gti(reference_time),
        meta_table=meta_table,
        name=name,
    )


def _empty_gti(reference_time) -> Table:
    """Empty GTI table (``START``/``STOP`` in s) referenced to ``reference_time``."""
    from astropy.time import Time

    # as gammapy's GTI.create: a string is UTC; the header reference (MJDREF) is in TT
    mjd = Time(reference_time).tt.mjd
    table = Table({"START": np.zeros(0), "STOP": np.zeros(0)})
    table["START"].unit = table["STOP"].unit = "s"
    table.meta.update(
        {
            "MJDREFI": int(np.floor(mjd)),
            "MJDREFF": float(mjd - np.floor(mjd)),
            "TIMESYS": "tt",
            "TIMEUNIT": "s",
            "TIMEREF": "local",
        }
    )
    return table


# ---------------------------------------------------------------------------------------- derived
def _kwargs(dataset, name=None):
    return {
        "gti": None if dataset.gti is None else dataset.gti.copy(),
        "meta_table": None if dataset.meta_table is None else dataset.meta_table.copy(),
        "name": dataset.name if name is None else name,
        "meta": dict(dataset.meta),
    }


def _irf_apply(irf, transform, exposure=None):
    """A copy of an IRF map with ``transform`` applied to its map (and exposure map)."""
    exposure = transform if exposure is None else exposure
    irf_map = irf.psf_map if isinstance(irf, PSFMap) else irf.edisp_map
    exposure_map = None if irf.exposure_map is None else exposure(irf.exposure_map)
    return type(irf)(transform(irf_map), exposure_map=exposure_map, source=irf.source)


def _transformed(dataset, name, transform, irf_transform, irf_exposure=None):
    kwargs = _kwargs(dataset, name)
    for attribute in ("counts", "exposure", "background", "mask_safe", "mask_fit"):
        m = getattr(dataset, attribute)
        # an ON/OFF dataset's background is derived from its OFF counts
        if m is None or (attribute == "background" and dataset.stat_type != "cash"):
            continue
        kwargs[attribute] = transform(m)
    for attribute in ("psf", "edisp"):
        irf = getattr(dataset, attribute)
        if irf is not None:
            kwargs[attribute] = _irf_apply(irf, irf_transform, exposure=irf_exposure)
    kwargs.update(dataset._onoff_kwargs(transform))
    return type(dataset)(**kwargs)


def cutout(dataset, position, width, mode="trim", name=None):
    """Dataset cut out around ``position``, as gammapy's ``MapDataset.cutout``.

    Parameters
    ----------
    position : `~astropy.coordinates.SkyCoord`
    width : angle or (lon, lat) pair of angles
    mode : {"trim", "partial", "strict"}
        As `astropy.nddata.Cutout2D`; "partial" pads with zeros outside the map.
    name : str, optional
        Default: the dataset's name.

    The IRF maps are cut with the same position and width but keep at least 3 x 3 pixels (so
    that interpolation still works when the IRF pixels are larger than the cutout).
    """
    cut = {"position": position, "width": width, "mode": mode}
    return _transformed(
        dataset,
        name,
        lambda m: m.cutout(**cut),
        lambda m: m.cutout(**cut, min_npix=3),
    )


def slice_by_idx(dataset, slices: dict, name=None):
    """Sub-dataset selecting bins of non-spatial axes, e.g. ``{"energy": slice(2, 5)}``.

    Each map is sliced along the axes it has: an ``energy`` slice also slices the edisp
    kernel's reco axis and a reco-energy PSF, an ``energy_true`` slice the exposure and the
    IRFs. IRF exposure maps are sliced along ``energy_true`` only (gammapy 2.1 also applies an
    ``energy`` slice to the one-bin squashed axis of an edisp exposure and fails).
    Integer indices (which would drop an axis) are refused.
    """
    for key, value in slices.items():
        if not isinstance(value, slice):
            raise GeometryMismatchError(
                f"slice_by_idx: axis {key!r}: give a slice (integer indices would drop the axis)"
            )

    def sub(m):
        names = {ax.name for ax in m.geom.axes}
        return m.slice_by_idx({k: v for k, v in slices.items() if k in names})

    def sub_exposure(m):
        if "energy_true" in slices and "energy_true" in {ax.name for ax in m.geom.axes}:
            return m.slice_by_idx({"energy_true": slices["energy_true"]})
        return m

    return _transformed(dataset, name, sub, sub, irf_exposure=sub_exposure)


def to_image(dataset, name=None):
    """Two-dimensional dataset: one reco-energy bin spanning the axis, as gammapy's ``to_image``.

    Counts and background are summed over the bins in ``mask_safe``; the masks are OR-ed over
    energy; exposure and PSF are unchanged; an `EDispKernelMap` is summed over reco energy
    weighted by the safe mask at the IRF pixel centres (linear interpolation > 0, as gammapy's
    ``mask_safe_edisp``); an `EDispMap` is unchanged.
    """
    if type(dataset) is not MapDataset:
        raise NotImplementedError(
            f"to_image is implemented for MapDataset, not {type(dataset).__name__}"
        )
    axis = dataset.energy_axis.squash()
    weights = None if dataset.mask_safe is None else dataset.mask_safe.data
    kwargs = _kwargs(dataset, name)
    kwargs["exposure"], kwargs["psf"] = dataset.exposure, dataset.psf

    def summed(m, w=None, reduce=np.sum):
        data = m.data if w is None else m.data * w
        out = reduce(data, axis=0, keepdims=True)
        return WcsNDMap(m.geom.replace_axis(axis), out, unit=m.unit, meta=dict(m.meta))

    for attribute in ("counts", "background"):
        m = getattr(dataset, attribute)
        if m is not None:
            kwargs[attribute] = summed(m, weights)
    for attribute in ("mask_safe", "mask_fit"):
        m = getattr(dataset, attribute)
        if m is not None:
            kwargs[attribute] = summed(m, reduce=np.any)
    edisp = dataset.edisp
    if isinstance(edisp, EDispKernelMap):
        kernel = edisp.edisp_map
        w = 1.0 if dataset.mask_safe is None else _mask_safe_on_grid(dataset, kernel.geom)
        data = np.sum(kernel.data * w, axis=1, keepdims=True)
        edisp = EDispKernelMap(
            WcsNDMap(kernel.geom.replace_axis(axis), data, unit=kernel.unit),
            exposure_map=None if edisp.exposure_map is None else edisp.exposure_map.copy(),
            source=edisp.source,
        )
    kwargs["edisp"] = edisp
    return MapDataset(**kwargs)


def _mask_safe_on_grid(dataset, geom_irf) -> np.ndarray:
    """Safe mask at the IRF pixel centres, shape (1, n_reco, ny_irf, nx_irf)."""
    skycoord = geom_irf.to_image().get_coord().skycoord
    energy = dataset.energy_axis.center
    mask = dataset.mask_safe
    values = mask.copy(data=mask.data.astype(float)).interp_by_coord(
        {"skycoord": skycoord, "energy": energy[:, None, None]}
    )
    return (values > 0)[None]
