"""Reductions of datasets, as gammapy 2.1 does them: slicing, resampling, downsampling, padding,
cutouts, images, and ON/OFF -> Cash conversion.

Functions over any dataset type: they walk the declared map attributes of `Dataset`
(``counts_maps``, ``exposure_maps``, ``irf_attributes``) and build the result with
``type(dataset)(...)``, so they never import the dataset classes. The methods of the same names
delegate here. What each keeps:

- ``slice_by_idx`` / ``slice_by_energy``: the bins selected, unchanged;
- ``resample_energy_axis`` / ``to_image`` / ``downsample``: counts (and OFF counts, background)
  summed within the safe mask, so the masked totals are conserved; masks OR-ed; ON/OFF
  ``acceptance_off`` rescaled so that alpha x counts_off is conserved;
- ``pad`` / ``cutout``: the pixels inside, unchanged.
"""

from __future__ import annotations

import numpy as np
from astropy import units as u

from ..errors import GeometryMismatchError, UnsupportedError
from ..irf import EDispKernel, EDispKernelMap, PSFMap
from ..maps import WcsGeom, WcsNDMap

__all__ = [
    "slice_by_idx",
    "slice_by_energy",
    "resample_energy_axis",
    "to_image",
    "downsample",
    "pad",
    "cutout",
    "to_cash_dataset",
    "mask_safe_on_irf_grid",
    "energy_group_indices",
]


# ---------------------------------------------------------------------------------------- maps
def _new_map(m, geom, data):
    """A map of ``m``'s class, unit and meta on ``geom`` holding ``data``."""
    if isinstance(m, WcsNDMap):
        return WcsNDMap(geom, data, unit=m.unit, meta=dict(m.meta))
    return type(m)(geom, data, unit=m.unit)


def _data_axis(m, name) -> int:
    """Index of the data dimension of axis ``name`` (data_shape lists the axes reversed)."""
    names = [ax.name for ax in m.geom.axes]
    return len(names) - 1 - names.index(name)


def _axis_names(m) -> set:
    return {ax.name for ax in m.geom.axes}


def slice_map(m, slices: dict):
    """``m`` restricted to the bins ``slices`` selects on the axes it has (others are ignored)."""
    slices = {k: v for k, v in slices.items() if k in _axis_names(m)}
    if not slices:
        return m.copy()
    if isinstance(m, WcsNDMap):
        return m.slice_by_idx(slices)
    index = [slice(None)] * m.data.ndim
    for name, sel in slices.items():
        index[_data_axis(m, name)] = sel
    geom = m.geom
    for name, sel in slices.items():
        geom = geom.replace_axis(geom.axis(name).slice(sel))
    return _new_map(m, geom, m.data[tuple(index)].copy())


def energy_group_indices(axis, edges) -> np.ndarray:
    """Indices (0..nbin) of the edges of ``axis`` nearest to ``edges`` (gammapy's ``group_table``).

    Each requested edge is placed on the axis in pixel units (linear in the axis' interp scale,
    clipped to the axis) and rounded to the nearest bin edge; duplicates are dropped.
    """
    pix = np.clip(axis.coord_to_pix(u.Quantity(edges, axis.unit)), -0.5, axis.nbin - 0.5)
    idx = np.unique(np.round(pix + 0.5) - 0.5)
    return (idx + 0.5).astype(int)


def resample_map(m, axis_name, indices, weights=None, reduce=np.add):
    """``m`` with the bins of ``axis_name`` grouped at old-edge ``indices`` and reduced by ``reduce``.

    ``indices`` are increasing old-edge indices (0..nbin): group ``g`` holds the old bins
    ``indices[g] .. indices[g+1] - 1``; bins outside are dropped. ``weights`` (an array
    broadcastable to ``m.data``) multiply the data first (gammapy's ``resample_axis``).
    """
    axis = m.geom.axis(axis_name)
    new_axis = type(axis)(axis.edges[indices], name=axis.name, interp=axis.interp)
    dim = _data_axis(m, axis_name)
    data = m.data if weights is None else m.data * weights
    parts = [
        reduce.reduce(np.take(data, np.arange(a, b), axis=dim), axis=dim, keepdims=True)
        for a, b in zip(indices[:-1], indices[1:], strict=True)
    ]
    data = np.concatenate(parts, axis=dim)
    if m.data.dtype == bool:
        data = data.astype(bool)
    return _new_map(m, m.geom.replace_axis(new_axis), data)


# ---------------------------------------------------------------------------------------- IRFs
def _irf_apply(irf, transform, exposure=None):
    """A copy of an IRF map with ``transform`` applied to its map (and ``exposure`` to its exposure)."""
    exposure = transform if exposure is None else exposure
    irf_map = irf.psf_map if isinstance(irf, PSFMap) else irf.edisp_map
    exposure_map = None if irf.exposure_map is None else exposure(irf.exposure_map)
    return type(irf)(transform(irf_map), exposure_map=exposure_map, source=irf.source)


def _kernel_slice(edisp: EDispKernel, slices: dict) -> EDispKernel:
    true, reco = edisp.energy_axis_true, edisp.energy_axis
    rows = slices.get("energy_true", slice(None))
    cols = slices.get("energy", slice(None))
    return EDispKernel((true.slice(rows), reco.slice(cols)), edisp.pdf_matrix[rows, cols].copy())


def mask_safe_on_irf_grid(dataset, geom_irf) -> np.ndarray:
    """Safe mask at the IRF pixel centres, shape (1, n_reco, ny_irf, nx_irf) (gammapy's
    ``mask_safe_edisp``: linear interpolation of the mask > 0)."""
    skycoord = geom_irf.to_image().get_coord().skycoord
    energy = dataset.energy_axis.center
    mask = dataset.mask_safe
    values = mask.copy(data=mask.data.astype(float)).interp_by_coord(
        {"skycoord": skycoord, "energy": energy[:, None, None]}
    )
    return (values > 0)[None]


def _edisp_weights(dataset):
    """Safe-mask weights of the energy dispersion over (true, reco[, y, x]) (None: no mask)."""
    if dataset.mask_safe is None:
        return None
    if isinstance(dataset.edisp, EDispKernel):
        return dataset.mask_safe.data.reshape(1, -1).astype(float)
    return mask_safe_on_irf_grid(dataset, dataset.edisp.edisp_map.geom)


def _resample_edisp(dataset, indices):
    edisp = dataset.edisp
    weights = _edisp_weights(dataset)
    if isinstance(edisp, EDispKernel):
        pdf = edisp.pdf_matrix if weights is None else edisp.pdf_matrix * weights
        cols = [pdf[:, a:b].sum(axis=1) for a, b in zip(indices[:-1], indices[1:], strict=True)]
        reco = edisp.energy_axis
        axis = type(reco)(reco.edges[indices], name="energy", interp=reco.interp)
        return EDispKernel((edisp.energy_axis_true.copy(), axis), np.stack(cols, axis=1))
    if isinstance(edisp, EDispKernelMap):
        kernel = resample_map(edisp.edisp_map, "energy", indices, weights=weights)
        exposure = None if edisp.exposure_map is None else edisp.exposure_map.copy()
        return EDispKernelMap(kernel, exposure_map=exposure, source=edisp.source)
    return edisp  # None or a migration map (independent of the reco binning)


# ---------------------------------------------------------------------------------------- datasets
def _common_kwargs(dataset, name) -> dict:
    """Constructor arguments that are not maps: tables, meta, name (and a spectrum's livetime)."""
    kwargs = {"name": dataset.name if name is None else str(name)}
    for attribute in dataset.table_attributes:
        value = getattr(dataset, attribute, None)
        kwargs[attribute] = value.copy() if hasattr(value, "copy") else value
    return kwargs


def _stored_maps(dataset):
    """(attribute, map) of the stored (not derived) map attributes that are set."""
    for attribute in dataset.map_attributes():
        m = getattr(dataset, attribute, None)
        if m is not None:
            yield attribute, m


def slice_by_idx(dataset, slices: dict, name=None):
    """Sub-dataset of the bins ``slices`` selects, e.g. ``{"energy": slice(2, 5)}``.

    Each map is sliced along the axes it has: an ``energy`` slice also slices the edisp
    kernel's reco axis and a reco-energy PSF, an ``energy_true`` slice the exposure and the
    IRFs. IRF exposure maps are sliced along ``energy_true`` only. Integer indices (which
    would drop an axis) are refused.
    """
    for key, value in slices.items():
        if not isinstance(value, slice):
            raise GeometryMismatchError(
                f"slice_by_idx: axis {key!r}: give a slice (integer indices would drop the axis)"
            )
        if key not in ("energy", "energy_true"):
            raise GeometryMismatchError(
                f"slice_by_idx: dataset {dataset.name!r} has no axis {key!r}; slice 'energy' "
                "or 'energy_true'"
            )
    kwargs = _common_kwargs(dataset, name)
    for attribute, m in _stored_maps(dataset):
        kwargs[attribute] = slice_map(m, slices)

    def sub_exposure(m):
        if "energy_true" in slices and "energy_true" in _axis_names(m):
            return m.slice_by_idx({"energy_true": slices["energy_true"]})
        return m.copy()

    for attribute in dataset.irf_attributes:
        irf = getattr(dataset, attribute)
        if irf is None:
            continue
        if isinstance(irf, EDispKernel):
            kwargs[attribute] = _kernel_slice(irf, slices)
        else:
            kwargs[attribute] = _irf_apply(irf, lambda m: slice_map(m, slices), sub_exposure)
    return type(dataset)(**kwargs)


def slice_by_energy(dataset, energy_min=None, energy_max=None, name=None):
    """Reco-energy bins between the axis edges nearest to ``energy_min`` and ``energy_max``.

    As gammapy's ``slice_by_energy``: each bound snaps to the nearest bin edge (in the axis'
    interp scale); None means the axis end.
    """
    axis = dataset.energy_axis
    energy_min = axis.edges[0] if energy_min is None else u.Quantity(energy_min)
    energy_max = axis.edges[-1] if energy_max is None else u.Quantity(energy_max)
    idx = energy_group_indices(axis, u.Quantity([energy_min, energy_max]))
    if idx.size < 2:
        raise GeometryMismatchError(
            f"slice_by_energy: dataset {dataset.name!r}: [{energy_min}, {energy_max}] selects no "
            f"bin of the energy axis [{axis.edges[0]:.4g}, {axis.edges[-1]:.4g}]"
        )
    return slice_by_idx(dataset, {"energy": slice(int(idx[0]), int(idx[-1]))}, name=name)


def _off_rescaled(dataset, kwargs, transform_sum, transform_mean):
    """OFF maps of a reduced ON/OFF dataset: counts_off summed in the safe mask, acceptance
    averaged, acceptance_off set so that the summed alpha x counts_off is conserved (gammapy)."""
    if dataset.counts_off is None:
        return
    kwargs["counts_off"] = transform_sum(dataset.counts_off)
    if dataset.acceptance is None:
        return
    acceptance = transform_mean(dataset.acceptance)
    norm = transform_sum(dataset.background)
    with np.errstate(divide="ignore", invalid="ignore"):
        data = acceptance.data * kwargs["counts_off"].data / norm.data
    kwargs["acceptance"] = acceptance
    kwargs["acceptance_off"] = _new_map(acceptance, acceptance.geom, np.nan_to_num(data))


def resample_energy_axis(dataset, energy_axis, name=None):
    """Reco-energy bins merged onto the edges of ``energy_axis`` (snapped to existing edges).

    Counts, background and OFF counts are summed within the safe mask, masks OR-ed, the ON/OFF
    acceptance summed within the mask and ``acceptance_off`` rescaled so that alpha x counts_off
    is conserved; a kernel energy dispersion is summed over merged reco bins with the safe-mask
    weights (gammapy's ``resample_energy_axis``). Exposure and PSF are unchanged.
    """
    if energy_axis.name != "energy":
        raise GeometryMismatchError(
            f"resample_energy_axis: dataset {dataset.name!r}: the new axis must be named 'energy', "
            f"got {energy_axis.name!r}"
        )
    if not u.Unit(energy_axis.unit).is_equivalent(dataset.energy_axis.unit):
        raise GeometryMismatchError(
            f"resample_energy_axis: dataset {dataset.name!r}: axis unit {energy_axis.unit} is not "
            f"an energy like {dataset.energy_axis.unit}"
        )
    indices = energy_group_indices(dataset.energy_axis, energy_axis.edges)
    if indices.size < 2:
        raise GeometryMismatchError(
            f"resample_energy_axis: dataset {dataset.name!r}: the new axis "
            f"[{energy_axis.edges[0]:.4g}, {energy_axis.edges[-1]:.4g}] does not overlap the "
            f"energy axis [{dataset.energy_axis.edges[0]:.4g}, {dataset.energy_axis.edges[-1]:.4g}]"
        )
    return _resample_energy(dataset, indices, name, acceptance_mean=False)


def _resample_energy(dataset, indices, name, acceptance_mean):
    """`resample_energy_axis` on old-edge ``indices``; ``acceptance_mean``: gammapy's
    ``downsample``, which averages the ON/OFF acceptance instead of summing it within the safe
    mask, and merges the masks of spectra with AND (a merged bin is safe where all its bins are;
    gammapy's ``RegionNDMap.downsample``) but those of maps with OR."""
    weights = None if dataset.mask_safe is None else dataset.mask_safe.data

    def summed(m):
        return resample_map(m, "energy", indices, weights=weights)

    spectrum_downsample = acceptance_mean and not isinstance(dataset._geom, WcsGeom)
    mask_reduce = np.logical_and if spectrum_downsample else np.logical_or

    def ored(m):
        return resample_map(m, "energy", indices, reduce=mask_reduce)

    kwargs = _common_kwargs(dataset, name)
    for attribute in dataset.exposure_maps:
        # shared, not copied (as gammapy): maps are replaced, never modified in place
        kwargs[attribute] = getattr(dataset, attribute)
    for attribute in ("mask_safe", "mask_fit"):
        m = getattr(dataset, attribute)
        kwargs[attribute] = None if m is None else ored(m)
    if dataset.counts is not None:
        kwargs["counts"] = summed(dataset.counts)
    if "background" in dataset.counts_maps and dataset.background is not None:
        kwargs["background"] = summed(dataset.background)
    if dataset.is_onoff:

        def mean(m):
            total = resample_map(m, "energy", indices)
            width = np.diff(indices).reshape((-1,) + (1,) * (m.data.ndim - 1))
            return _new_map(m, total.geom, total.data / width)

        # gammapy sums the acceptance within the mask when resampling, averages it when downsampling
        _off_rescaled(dataset, kwargs, summed, mean if acceptance_mean else summed)
    if "edisp" in dataset.irf_attributes:
        kwargs["edisp"] = _resample_edisp(dataset, indices)
    if "psf" in dataset.irf_attributes:
        # unchanged and shared, as gammapy (also a PSF in reconstructed energy)
        kwargs["psf"] = dataset.psf
    return type(dataset)(**kwargs)


def to_image(dataset, name=None):
    """One reco-energy bin spanning the axis (gammapy's ``to_image``: `resample_energy_axis` onto
    the squashed axis). Counts and background are summed within the safe mask."""
    return resample_energy_axis(dataset, dataset.energy_axis.squash(), name=name)


def _block_sum(data, factor, dims):
    """Sum over blocks of ``factor`` along the data dimensions ``dims`` (sizes divisible)."""
    shape = []
    for dim, n in enumerate(data.shape):
        shape += [n // factor, factor] if dim in dims else [n]
    summed_axes = tuple(i + 1 + sum(1 for d in dims if d < i) for i in dims)
    return data.reshape(shape).sum(axis=summed_axes)


def downsample(dataset, factor: int, axis_name=None, name=None):
    """Bins merged by ``factor`` along the sky axes (``axis_name`` None) or along ``"energy"``.

    As gammapy's ``downsample``: counts, background and OFF counts are summed within the safe
    mask; the exposure, masks and acceptances are averaged (masks: True where any merged bin
    is); a kernel energy dispersion is merged with safe-mask weights when the energy axis is
    downsampled; PSF (and the energy dispersion for a sky downsampling) are unchanged.
    """
    factor = int(factor)
    if factor < 1:
        raise GeometryMismatchError(f"downsample: factor must be a positive integer, got {factor}")
    if factor == 1:
        return dataset.copy(name=name)
    if axis_name not in (None, "energy"):
        raise GeometryMismatchError(
            f"downsample: dataset {dataset.name!r}: axis_name must be None (sky pixels) or "
            f"'energy', got {axis_name!r}"
        )
    if axis_name == "energy":
        axis = dataset.energy_axis
        if axis.nbin % factor:
            raise GeometryMismatchError(
                f"downsample: dataset {dataset.name!r}: {axis.nbin} energy bins are not divisible "
                f"by {factor}"
            )
        return _resample_energy(dataset, np.arange(0, axis.nbin + 1, factor), name, True)
    return _downsample_sky(dataset, factor, name)


def _downsample_sky(dataset, factor, name):
    geom = dataset._geom
    if not isinstance(geom, WcsGeom):
        raise GeometryMismatchError(
            f"downsample: dataset {dataset.name!r} is a {dataset.tag}, which has no sky pixels; "
            "downsample axis_name='energy'"
        )
    nx, ny = geom.npix
    if nx % factor or ny % factor:
        raise GeometryMismatchError(
            f"downsample: dataset {dataset.name!r}: sky shape {(nx, ny)} is not divisible by "
            f"{factor}; pad the dataset first"
        )
    wcs = geom.wcs.deepcopy()
    wcs.wcs.cdelt = wcs.wcs.cdelt * factor
    wcs.wcs.crpix = (wcs.wcs.crpix - 0.5) / factor + 0.5
    npix = (nx // factor, ny // factor)
    weights = None if dataset.mask_safe is None else dataset.mask_safe.data

    def resampled(m, w, preserve_counts):
        ndim = m.data.ndim
        dims = (ndim - 2, ndim - 1)
        ww = np.ones(m.data.shape) if w is None else np.broadcast_to(w, m.data.shape)
        data = _block_sum(m.data * ww, factor, dims)
        if not preserve_counts:
            norm = _block_sum(ww.astype(float), factor, dims)
            data = np.divide(data, norm, out=np.zeros_like(data, dtype=float), where=norm != 0)
        new_geom = m.geom._init_copy(wcs=wcs, npix=npix)
        return _new_map(m, new_geom, data.astype(m.data.dtype))

    kwargs = _common_kwargs(dataset, name)
    for attribute, m in _stored_maps(dataset):
        if attribute in ("counts", "background", "counts_off"):
            kwargs[attribute] = resampled(m, weights, True)
        else:
            kwargs[attribute] = resampled(m, None, False)
    if dataset.is_onoff and dataset.counts_off is not None and dataset.acceptance is not None:
        norm = resampled(dataset.background, weights, True)
        with np.errstate(divide="ignore", invalid="ignore"):
            data = kwargs["acceptance"].data * kwargs["counts_off"].data / norm.data
        kwargs["acceptance_off"] = _new_map(norm, norm.geom, np.nan_to_num(data))
    for attribute in dataset.irf_attributes:
        irf = getattr(dataset, attribute)
        kwargs[attribute] = None if irf is None else irf.copy()
    return type(dataset)(**kwargs)


def pad(dataset, pad_width, mode="constant", name=None):
    """Sky axes padded by ``pad_width`` pixels (int or (x, y)) on both sides (gammapy's ``pad``).

    Counts, background, masks and exposure are padded with ``numpy.pad``'s ``mode`` (zeros for
    "constant", the border values for "edge"); IRF maps are unchanged.
    """
    if not isinstance(dataset._geom, WcsGeom):
        raise GeometryMismatchError(
            f"pad: dataset {dataset.name!r} is a {dataset.tag}, which has no sky pixels"
        )
    if dataset.is_onoff:
        raise UnsupportedError(
            f"pad: dataset {dataset.name!r}: padding ON/OFF datasets is not defined (as in "
            "gammapy); convert with to_map_dataset() first"
        )
    px, py = (int(pad_width), int(pad_width)) if np.isscalar(pad_width) else map(int, pad_width)
    geom = dataset._geom
    wcs = geom.wcs.deepcopy()
    wcs.wcs.crpix = wcs.wcs.crpix + np.array([px, py])
    npix = (geom.npix[0] + 2 * px, geom.npix[1] + 2 * py)

    def padded(m):
        widths = [(0, 0)] * (m.data.ndim - 2) + [(py, py), (px, px)]
        data = np.pad(m.data, widths, mode=mode)
        return _new_map(m, m.geom._init_copy(wcs=wcs, npix=npix), data)

    kwargs = _common_kwargs(dataset, name)
    for attribute, m in _stored_maps(dataset):
        kwargs[attribute] = padded(m)
    for attribute in dataset.irf_attributes:
        irf = getattr(dataset, attribute)
        kwargs[attribute] = None if irf is None else irf.copy()
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
    if not isinstance(dataset._geom, WcsGeom):
        raise GeometryMismatchError(
            f"cutout: dataset {dataset.name!r} is a {dataset.tag}, which has no sky pixels"
        )
    cut = {"position": position, "width": width, "mode": mode}
    kwargs = _common_kwargs(dataset, name)
    for attribute, m in _stored_maps(dataset):
        kwargs[attribute] = m.cutout(**cut)
    for attribute in dataset.irf_attributes:
        irf = getattr(dataset, attribute)
        if irf is not None:
            kwargs[attribute] = _irf_apply(irf, lambda m: m.cutout(**cut, min_npix=3))
    return type(dataset)(**kwargs)


def to_cash_dataset(dataset, cash_class, name=None):
    """The Cash-statistic twin of an ON/OFF dataset: background = alpha x counts_off
    (gammapy's ``to_map_dataset`` / ``to_spectrum_dataset``); OFF maps are dropped."""
    kwargs = _common_kwargs(dataset, name)
    for attribute in cash_class.map_attributes():
        m = getattr(dataset, attribute, None)
        kwargs[attribute] = None if m is None else m.copy()
    for attribute in cash_class.irf_attributes:
        irf = getattr(dataset, attribute, None)
        kwargs[attribute] = None if irf is None else irf.copy()
    return cash_class(**kwargs)
