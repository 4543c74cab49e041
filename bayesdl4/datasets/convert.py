"""Map datasets -> spectrum datasets in an ON region (gammapy 2.1's ``to_spectrum_dataset`` and
``to_region_map_dataset``).

Counts, background and OFF counts are summed over the pixels whose centres lie in the region,
within the safe mask; the exposure (and the ON/OFF acceptance) is averaged over those pixels;
the energy dispersion is the kernel at the region centre; with ``containment_correction`` the
exposure is multiplied by the PSF containment of a circular region at its centre.
"""

from __future__ import annotations

import numpy as np
from astropy import units as u

from ..errors import GeometryMismatchError
from ..irf import EDispKernel, EDispKernelMap, EDispMap
from ..irf.edisp_map import get_overlap_fraction
from ..maps import RegionGeom, RegionNDMap
from .spectrum import SpectrumDataset, SpectrumDatasetOnOff

__all__ = ["to_region_map_dataset", "to_spectrum_dataset"]


def _region_pixels(dataset, region) -> np.ndarray:
    """Boolean (ny, nx) image of the counts pixels whose centres lie in ``region``."""
    image = dataset._geom.to_image()
    mask = np.asarray(image.region_mask(region).data, dtype=bool).reshape(image.data_shape[-2:])
    if not mask.any():
        raise GeometryMismatchError(
            f"to_spectrum_dataset: dataset {dataset.name!r}: no pixel centre lies in the region "
            f"{region}; use a larger region or a finer map"
        )
    edge = mask[0, :].any() | mask[-1, :].any() | mask[:, 0].any() | mask[:, -1].any()
    if edge:
        raise GeometryMismatchError(
            f"to_spectrum_dataset: dataset {dataset.name!r}: the region {region} is not fully "
            "contained in the counts map (it touches the border); cut out a larger map or use a "
            "smaller region"
        )
    return mask


def _check_uniform_mask(dataset, pixels):
    mask = dataset.mask
    if mask is None:
        return
    values = mask[:, pixels]
    uniform = np.all(values, axis=1) | ~np.any(values, axis=1)
    if not np.all(uniform):
        bins = np.flatnonzero(~uniform).tolist()
        raise GeometryMismatchError(
            f"to_spectrum_dataset: dataset {dataset.name!r}: the mask is not uniform within the "
            f"region in energy bins {bins}; a spectrum needs one mask value per energy bin"
        )


def _region_map(m, geom, pixels, reduce, weights=None):
    """A `RegionNDMap` on ``geom`` of ``reduce`` over the region pixels of each plane of ``m``."""
    data = m.data[..., pixels]
    if weights is not None:
        if weights.dtype == bool:
            # planes without a safe pixel in the region give 0 (gammapy: NaN for a mean)
            out = np.array(
                [
                    reduce(d[w]) if np.any(w) else 0.0
                    for d, w in zip(data, weights[..., pixels], strict=True)
                ]
            )
            return RegionNDMap(geom, out.reshape(geom.data_shape), unit=m.unit)
        data = data * weights[..., pixels]
    out = reduce(data, axis=-1)
    return RegionNDMap(geom, out.reshape(geom.data_shape), unit=m.unit)


def _kernel_at(dataset, position) -> EDispKernel:
    edisp = dataset.edisp
    energy_axis, energy_axis_true = dataset.energy_axis, dataset.energy_axis_true
    if isinstance(edisp, EDispKernelMap):
        return edisp.get_edisp_kernel(position=position, energy_axis=energy_axis)
    if isinstance(edisp, EDispMap):
        return edisp.get_edisp_kernel(energy_axis, position=position)
    # no energy dispersion: the diagonal response gammapy applies
    return EDispKernel(
        (energy_axis_true.copy(), energy_axis.copy()),
        get_overlap_fraction(energy_axis, energy_axis_true),
    )


def to_spectrum_dataset(dataset, on_region, containment_correction=False, name=None):
    """`SpectrumDataset` (`SpectrumDatasetOnOff` for ON/OFF maps) of ``dataset`` in ``on_region``.

    Parameters
    ----------
    dataset : `MapDataset` or `MapDatasetOnOff`
    on_region : `regions.SkyRegion`
        The ON region (pixels whose centres lie inside count); it must lie inside the map and
        the mask must be uniform within it in each energy bin.
    containment_correction : bool
        Multiply the exposure by the PSF containment within a `CircleSkyRegion` at its centre.
    name : str, optional
        Default: the dataset's name.
    """
    from regions import CircleSkyRegion

    pixels = _region_pixels(dataset, on_region)
    _check_uniform_mask(dataset, pixels)
    center = on_region.center
    geom = RegionGeom(on_region, [dataset.energy_axis.copy()], wcs=dataset._geom.wcs)
    safe = None if dataset.mask_safe is None else dataset.mask_safe.data.astype(bool)
    kwargs = {
        "name": dataset.name if name is None else str(name),
        "gti": None if dataset.gti is None else dataset.gti.copy(),
        "meta_table": None if dataset.meta_table is None else dataset.meta_table.copy(),
        "meta": dict(dataset.meta),
        "livetime": dataset.livetime,
    }
    for attribute in ("mask_safe", "mask_fit"):
        m = getattr(dataset, attribute)
        kwargs[attribute] = None if m is None else _region_map(m, geom, pixels, np.any)
    if dataset.counts is not None:
        kwargs["counts"] = _region_map(dataset.counts, geom, pixels, np.sum, weights=safe)
    if not dataset.is_onoff and dataset.background is not None:
        background = (
            dataset.npred_background() if _has_background_model(dataset) else dataset.background
        )
        kwargs["background"] = _region_map(background, geom, pixels, np.sum, weights=safe)
    if dataset.exposure is not None:
        geom_true = RegionGeom(on_region, [dataset.energy_axis_true.copy()], wcs=dataset._geom.wcs)
        exposure = _region_map(dataset.exposure, geom_true, pixels, np.mean)
        if containment_correction:
            if not isinstance(on_region, CircleSkyRegion):
                raise GeometryMismatchError(
                    "to_spectrum_dataset: containment correction needs a CircleSkyRegion, got "
                    f"{type(on_region).__name__}"
                )
            if dataset.psf is None:
                raise GeometryMismatchError(
                    f"to_spectrum_dataset: dataset {dataset.name!r} has no PSF for the "
                    "containment correction"
                )
            containment = dataset.psf.containment(
                on_region.radius, dataset.energy_axis_true.center, position=center
            )
            exposure = RegionNDMap(
                geom_true,
                exposure.data * u.Quantity(containment).to_value("").reshape(geom_true.data_shape),
                unit=exposure.unit,
            )
        kwargs["exposure"] = exposure
        kwargs["edisp"] = _kernel_at(dataset, center)
    if not dataset.is_onoff:
        return SpectrumDataset(**kwargs)

    if dataset.counts_off is not None:
        kwargs["counts_off"] = _region_map(dataset.counts_off, geom, pixels, np.sum, weights=safe)
    if dataset.acceptance is not None:
        acceptance = _region_map(dataset.acceptance, geom, pixels, np.mean, weights=safe)
        kwargs["acceptance"] = acceptance
        if dataset.counts_off is not None:
            norm = _region_map(dataset.background, geom, pixels, np.sum, weights=safe)
            with np.errstate(divide="ignore", invalid="ignore"):
                data = acceptance.data * kwargs["counts_off"].data / norm.data
            kwargs["acceptance_off"] = RegionNDMap(geom, np.nan_to_num(data))
    return SpectrumDatasetOnOff(**kwargs)


def to_region_map_dataset(dataset, region, name=None):
    """``dataset`` integrated in ``region`` (gammapy 2.1's ``to_region_map_dataset``).

    Counts, background and OFF counts are summed within the safe mask, exposure and acceptance
    averaged, the energy dispersion taken at the region centre, as gammapy does. gammapy returns
    a `MapDataset` on a ``RegionGeom``; bayesdl4's dataset on a region geometry is the spectrum
    dataset, so this returns a `SpectrumDataset` (`SpectrumDatasetOnOff` for ON/OFF maps) with the
    same arrays. It carries no PSF: the exposure is not corrected for containment (use
    `to_spectrum_dataset` with ``containment_correction=True`` for that).
    """
    return to_spectrum_dataset(dataset, region, containment_correction=False, name=name)


def _has_background_model(dataset) -> bool:
    return any(getattr(m, "tag", ("",))[0] == "FoVBackgroundModel" for m in dataset.models or ())
