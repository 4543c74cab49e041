"""Stacking datasets, by the table of the specification (gammapy 2.1's ``stack`` / ``stack_reduce``).

With k a reconstructed-energy bin, l a true-energy bin, j a dataset and epsilon its safe mask:

=============== ===========================================================================
livetime        sum of the livetimes of datasets with any safe bin
mask_safe       epsilon_k = OR_j epsilon_jk
counts          sum_j counts_jk epsilon_jk
background      sum_j bkg_jk epsilon_jk (Cash datasets; the background prediction, with any
                FoV background model of the dataset applied)
exposure        sum_j exposure_jl [OR_k epsilon_jk] (per sky pixel for maps)
psf             sum_j psf_jl e_jl w_j / sum_j e_jl w_j (e: the PSF's exposure map, w: the safe
                sky mask at the IRF pixels)
edisp           sum_j edisp_jkl epsilon_jk e_jl / sum_j e_jl [OR_k epsilon_jk] (spectra: e is the
                exposure; maps: the kernel's exposure map, epsilon at the IRF pixels)
gti             union of the intervals
meta_table      concatenated (gammapy's one-row ``hstack_columns``)
=============== ===========================================================================

ON/OFF datasets, as gammapy 2.1: counts_off summed within the safe mask; acceptance = the
target's + the other's within its safe mask; acceptance_off set so that the stacked
alpha = sum_j(alpha_j n_off_j) / sum_j(n_off_j), bins without OFF counts taking the average
alpha (so that the alpha-weighted background is conserved).

Only datasets of one type whose geometries are equal, or the other's a cutout of the target's
(same pixel grid, integer offset), stack; energy axes must be equal. The in-place `stack_into`
computes the whole result first and leaves its target unchanged when it fails. `stack` and
`to_masked` are pure; `stack` takes any iterable, so datasets read one at a time from files are
never all in memory.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import numpy as np
from astropy import units as u

from ..errors import DataFormatError, GeometryMismatchError
from ..irf import EDispKernel, EDispKernelMap, EDispMap, PSFMap
from ..maps import RegionGeom
from .geoms import describe_geom_mismatch
from .reduce import mask_safe_on_irf_grid
from .tables import hstack_columns, stack_gti

__all__ = ["stack", "stack_into", "to_masked", "check_stackable"]

log = logging.getLogger(__name__)


# ---------------------------------------------------------------------------------------- checks
def _footprint(target_geom, other_geom, what, names):
    """Index of ``other_geom``'s pixels inside ``target_geom`` (equal grids: ``Ellipsis``).

    Raises `GeometryMismatchError` unless the geometries are equal or the other is an aligned
    cutout of the target.
    """
    target_name, other_name = names
    if isinstance(target_geom, RegionGeom) or isinstance(other_geom, RegionGeom):
        if type(target_geom) is not type(other_geom) or not target_geom.is_allclose(other_geom):
            raise GeometryMismatchError(
                f"stack: {what} of dataset {other_name!r} does not match the stack "
                f"{target_name!r}: axes {[str(a) for a in other_geom.axes]} vs "
                f"{[str(a) for a in target_geom.axes]}"
            )
        return Ellipsis
    if target_geom.is_allclose(other_geom, rtol_axes=1e-6):
        return Ellipsis
    offset = other_geom.cutout_offset(target_geom)
    if offset is None:
        raise GeometryMismatchError(
            f"stack: {what} of dataset {other_name!r} is neither equal to nor a cutout of the "
            f"stack {target_name!r} ({describe_geom_mismatch(other_geom, target_geom)}); only "
            "equal geometries or aligned cutouts of one map stack: cut the datasets to a common "
            "geometry first (dataset.cutout)"
        )
    ix0, iy0 = offset
    nx, ny = other_geom.npix
    return (Ellipsis, slice(iy0, iy0 + ny), slice(ix0, ix0 + nx))


def _check_unit(target_map, other_map, attribute, names):
    if target_map is None or other_map is None:
        return
    if not u.Unit(other_map.unit).is_equivalent(target_map.unit):
        raise GeometryMismatchError(
            f"stack: {attribute} of dataset {names[1]!r} is in {other_map.unit}, which does not "
            f"convert to {target_map.unit} of the stack {names[0]!r}"
        )


def check_stackable(target, other) -> dict:
    """Check that ``other`` can be stacked onto ``target``; returns the footprints by geometry.

    Raises
    ------
    GeometryMismatchError
        Different dataset types, non-equivalent geometries, energy axes or units, IRFs present
        in one dataset only, or IRF maps that cannot be weighted (no exposure map, reco PSF).
    """
    names = (target.name, other.name)
    if type(target) is not type(other):
        raise GeometryMismatchError(
            f"stack: dataset {other.name!r} is a {other.tag}, the stack {target.name!r} a "
            f"{target.tag}; only datasets of one type stack (convert ON/OFF datasets with "
            "to_map_dataset / to_spectrum_dataset first)"
        )
    footprints = {"geom": _footprint(target._geom, other._geom, "counts geometry", names)}
    if (target.exposure is None) != (other.exposure is None):
        has, lacks = names if target.exposure is not None else names[::-1]
        raise GeometryMismatchError(
            f"stack: dataset {has!r} has an exposure, {lacks!r} has none; give both one or neither"
        )
    if target.exposure is not None:
        footprints["exposure"] = _footprint(
            target.exposure.geom, other.exposure.geom, "exposure geometry", names
        )
    for attribute in target.map_attributes():
        _check_unit(getattr(target, attribute), getattr(other, attribute), attribute, names)
    for attribute in target.irf_attributes:
        t_irf, o_irf = getattr(target, attribute), getattr(other, attribute)
        if (t_irf is None) != (o_irf is None):
            has = names[0] if t_irf is not None else names[1]
            lacks = names[1] if t_irf is not None else names[0]
            raise GeometryMismatchError(
                f"stack: dataset {has!r} has a {attribute}, {lacks!r} has none; give both one or "
                f"set {attribute} = None on both"
            )
        if t_irf is None:
            continue
        if isinstance(t_irf, EDispKernel):
            if not (
                t_irf.energy_axis.is_allclose(o_irf.energy_axis)
                and t_irf.energy_axis_true.is_allclose(o_irf.energy_axis_true)
            ):
                raise GeometryMismatchError(
                    f"stack: the edisp axes of dataset {names[1]!r} do not match the stack's"
                )
            continue
        if type(t_irf) is not type(o_irf):
            raise GeometryMismatchError(
                f"stack: dataset {names[1]!r} has a {type(o_irf).__name__} as {attribute}, the "
                f"stack a {type(t_irf).__name__}"
            )
        if isinstance(t_irf, PSFMap) and (t_irf.is_reco or o_irf.is_reco):
            raise GeometryMismatchError(
                f"stack: the PSF of dataset {names[int(o_irf.is_reco)]!r} is in reconstructed "
                "energy, which cannot be exposure-weighted (gammapy 2.1 refuses too); set "
                "psf = None on the datasets to stack the rest"
            )
        for which, irf in zip(names, (t_irf, o_irf), strict=True):
            if irf.exposure_map is None:
                raise DataFormatError(
                    f"stack: the {attribute} of dataset {which!r} has no exposure map, which "
                    f"weights it in a stack; give it one ({type(irf).__name__}(..., "
                    f"exposure_map=...)) or set {attribute} = None on the datasets"
                )
        footprints[attribute] = _footprint(t_irf.geom, o_irf.geom, f"{attribute} map", names)
        _check_unit(t_irf._irf_map, o_irf._irf_map, attribute, names)
    return footprints


# ---------------------------------------------------------------------------------------- arrays
def _finite(data, nan_to_num):
    """``data`` with non-finite values replaced by 0 (copied only when there are any)."""
    if nan_to_num:
        bad = ~np.isfinite(data)
        if np.any(bad):
            data = np.where(bad, 0.0, data)
    return data


def _added(target_map, other_data, index, inplace):
    """``target_map.data`` (as float) with ``other_data`` added at ``index``: in place when
    ``inplace`` (a private stack being accumulated), else in a new array."""
    data = target_map.data
    if not (inplace and data.dtype.kind == "f"):
        data = np.array(data, dtype=np.result_type(data.dtype, float))
    data[index] += other_data
    return data


def _converted(other_map, target_map):
    """``other_map``'s data in ``target_map``'s unit (no copy when the units are equal)."""
    if u.Unit(other_map.unit) == u.Unit(target_map.unit):
        return other_map.data
    return u.Quantity(other_map.data, other_map.unit).to_value(target_map.unit)


def _safe(dataset) -> np.ndarray:
    """Safe mask as a boolean array of counts shape (all True without one)."""
    if dataset.mask_safe is None:
        return np.ones(dataset.data_shape, dtype=bool)
    return dataset.mask_safe.data.astype(bool)


def _mask_image_at(dataset, geom_irf) -> np.ndarray:
    """Safe sky mask at the IRF pixel centres: the counts pixel holding each centre (False
    outside the counts map), gammapy's ``mask_safe_image.interp_to_geom`` for masks."""
    image = np.any(_safe(dataset), axis=0)
    x, y = dataset._geom.to_image().coord_to_pix(geom_irf.to_image().get_coord().skycoord)
    ix, iy = np.floor(np.asarray(x) + 0.5).astype(int), np.floor(np.asarray(y) + 0.5).astype(int)
    ny, nx = image.shape
    inside = (ix >= 0) & (ix < nx) & (iy >= 0) & (iy < ny)
    out = np.zeros(ix.shape, dtype=bool)
    out[inside] = image[iy[inside], ix[inside]]
    return out


def _mask_at_irf_energies(dataset, geom_irf) -> np.ndarray:
    """Safe mask per reco bin at the IRF pixel centres, shape (1, n_reco, ny, nx) (gammapy's
    ``mask_safe_edisp``: linear interpolation > 0)."""
    if dataset.mask_safe is None:
        return np.ones((1, dataset.energy_axis.nbin) + geom_irf.data_shape[-2:], dtype=bool)
    return mask_safe_on_irf_grid(dataset, geom_irf)


def _stack_irf_map(t_irf, o_irf, weights, index, nan_to_num, inplace):
    """Exposure-weighted average of two IRF maps (gammapy's ``IRFMap.stack``).

    ``weights`` broadcast to the other map's data; the exposure is stacked with the weights
    OR-ed over the first (energy) axis.
    """
    t_map, o_map = t_irf._irf_map, o_irf._irf_map
    t_exp, o_exp = t_irf.exposure_map, o_irf.exposure_map
    o_exposure = _finite(_converted(o_exp, t_exp), nan_to_num)
    weights = np.broadcast_to(weights, o_map.data.shape)
    weighted = (
        t_map.data * t_exp.data
        if not inplace
        else np.multiply(t_map.data, t_exp.data, out=_float(t_map))
    )
    weighted[index] += _finite(_converted(o_map, t_map), nan_to_num) * o_exposure * weights
    exposure = _added(t_exp, o_exposure * np.any(weights, axis=1, keepdims=True), index, inplace)
    with np.errstate(invalid="ignore", divide="ignore"):
        np.divide(weighted, exposure, out=weighted)
    np.nan_to_num(weighted, copy=False)
    return type(t_irf)(
        t_map.copy(data=weighted), exposure_map=t_exp.copy(data=exposure), source=t_irf.source
    )


def _float(m):
    """``m.data`` itself when it is a float array (to be overwritten), else a float copy."""
    return m.data if m.data.dtype.kind == "f" else m.data.astype(float)


def _stack_kernel(target, other, nan_to_num):
    """Spectrum kernels weighted by the exposure and the other's safe reco bins."""
    t_exp = target.exposure.data.reshape(-1)
    o_exp = _finite(_converted(other.exposure, target.exposure).reshape(-1), nan_to_num)
    eps = _safe(other).reshape(-1)
    weighted = target.edisp.pdf_matrix * t_exp[:, None] + (
        other.edisp.pdf_matrix * o_exp[:, None] * eps[None, :]
    )
    exposure = t_exp + o_exp * bool(eps.any())
    with np.errstate(invalid="ignore", divide="ignore"):
        pdf = np.nan_to_num(weighted / exposure[:, None])
    return EDispKernel(target.edisp.axes, pdf)


def _background_prediction(dataset):
    """Background counts a Cash dataset predicts: its background map, scaled by a FoV background
    model when it has one (gammapy stacks ``npred_background()``); None without either."""
    has_model = any(
        getattr(m, "tag", ("",))[0] == "FoVBackgroundModel" for m in dataset.models or ()
    )
    if has_model and dataset.background is not None:
        return dataset.npred_background()
    return dataset.background


def _livetime_sum(target, other):
    if not np.any(_safe(other)):
        return target.livetime
    if other.livetime is None:
        return target.livetime
    if target.livetime is None:
        return other.livetime.copy()
    return target.livetime + other.livetime


def _stacked_kwargs(target, other, nan_to_num, footprints, inplace=False) -> dict:
    """Constructor arguments of ``target`` with ``other`` stacked onto it; ``target``'s arrays
    are modified only with ``inplace`` (a private stack whose failure nobody sees)."""
    index = footprints["geom"]
    eps = _safe(other)
    kwargs = {"name": target.name}
    for attribute in target.table_attributes:
        value = getattr(target, attribute, None)
        kwargs[attribute] = value.copy() if hasattr(value, "copy") else value

    # counts-like maps: summed within the other's safe mask
    if target.counts is not None and other.counts is not None:
        data = _finite(_converted(other.counts, target.counts), nan_to_num) * eps
        kwargs["counts"] = target.counts.copy(data=_added(target.counts, data, index, inplace))
    else:
        kwargs["counts"] = target.counts
    if "background" in target.counts_maps:
        t_bkg, o_bkg = _background_prediction(target), _background_prediction(other)
        if t_bkg is None and o_bkg is not None:
            t_bkg = target._as_map(np.zeros(target.data_shape))
        if o_bkg is not None:
            data = _finite(_converted(o_bkg, t_bkg), nan_to_num) * eps
            t_bkg = t_bkg.copy(data=_added(t_bkg, data, index, inplace))
        kwargs["background"] = t_bkg

    # IRFs: exposure-weighted averages (first: a spectrum kernel is weighted by the exposures
    # before they are summed)
    if "psf" in target.irf_attributes and target.psf is not None:
        weights = _mask_image_at(other, other.psf.geom)[None, None]
        kwargs["psf"] = _stack_irf_map(
            target.psf, other.psf, weights, footprints["psf"], nan_to_num, inplace
        )
    if "edisp" in target.irf_attributes and target.edisp is not None:
        if isinstance(target.edisp, EDispKernel):
            kwargs["edisp"] = _stack_kernel(target, other, nan_to_num)
        else:
            if isinstance(other.edisp, EDispKernelMap):
                weights = _mask_at_irf_energies(other, other.edisp.geom)
            elif isinstance(other.edisp, EDispMap):
                weights = _mask_image_at(other, other.edisp.geom)[None, None]
            kwargs["edisp"] = _stack_irf_map(
                target.edisp, other.edisp, weights, footprints["edisp"], nan_to_num, inplace
            )

    # exposure: where the other has any safe bin (per sky pixel for maps)
    if target.exposure is not None:
        eps_image = np.any(eps, axis=0)
        data = _finite(_converted(other.exposure, target.exposure), nan_to_num) * eps_image
        kwargs["exposure"] = target.exposure.copy(
            data=_added(target.exposure, data, footprints["exposure"], inplace)
        )

    # masks
    if target.mask_safe is not None:
        mask = target.mask_safe.data
        mask = mask if inplace and mask.dtype == bool else mask.astype(bool)
        mask[index] |= eps
        kwargs["mask_safe"] = target.mask_safe.copy(data=mask)
    else:
        kwargs["mask_safe"] = None
    if other.mask_fit is not None:
        base = (
            np.zeros(target.data_shape, dtype=bool)
            if target.mask_fit is None
            else target.mask_fit.data.astype(bool).copy()
        )
        base[index] |= other.mask_fit.data.astype(bool)
        kwargs["mask_fit"] = target._as_map(base)
    else:
        kwargs["mask_fit"] = target.mask_fit

    # tables and livetime
    kwargs["gti"] = stack_gti(target.gti, other.gti)
    if target.meta_table is not None and other.meta_table is not None:
        kwargs["meta_table"] = hstack_columns(target.meta_table, other.meta_table)
    elif other.meta_table is not None:
        kwargs["meta_table"] = other.meta_table.copy()
    if "livetime" in target.table_attributes:
        kwargs["livetime"] = _livetime_sum(target, other)
    elif target.exposure is not None:
        # maps keep the livetime in the exposure's meta, as gammapy
        livetime = _livetime_sum(target, other)
        meta = dict(kwargs["exposure"].meta)
        meta.pop("livetime", None)
        if livetime is not None:
            meta["livetime"] = f"{float(livetime.to_value('s'))!r} s"
        kwargs["exposure"] = kwargs["exposure"].copy(meta=meta)

    if target.is_onoff:
        _stack_off(target, other, kwargs, index, eps, nan_to_num)
    return kwargs


def _stack_off(target, other, kwargs, index, eps, nan_to_num):
    """OFF counts, acceptance and acceptance_off of two ON/OFF datasets (gammapy 2.1)."""
    for which in (target, other):
        incomplete = (
            which.counts_off is None or which.acceptance is None or which.acceptance_off is None
        )
        if incomplete and np.any(_safe(which)):
            raise DataFormatError(
                f"stack: ON/OFF dataset {which.name!r} lacks counts_off, acceptance or "
                "acceptance_off but has safe bins; it cannot be stacked"
            )
    shape = target.data_shape
    acceptance = np.array(target.acceptance.data, dtype=float)
    acceptance[index] += _finite(other.acceptance.data, nan_to_num) * eps
    total_off, total_alpha = np.zeros(shape), np.zeros(shape)
    if target.counts_off is not None:
        total_off += _finite(target.counts_off.data, nan_to_num)
        total_alpha += _finite(target.alpha.data * target.counts_off.data, nan_to_num)
    if other.counts_off is not None:
        total_off[index] += _finite(other.counts_off.data, nan_to_num) * eps
        total_alpha[index] += _finite(other.alpha.data * other.counts_off.data, nan_to_num) * eps
    with np.errstate(divide="ignore", invalid="ignore"):
        acceptance_off = acceptance * total_off / total_alpha
        average_alpha = total_alpha.sum() / total_off.sum()
        is_zero = total_off == 0
        acceptance_off[is_zero] = acceptance[is_zero] / average_alpha
    # alpha = 0 (no OFF exposure) is kept as acceptance_off = 0 (our alpha maps 1/0 to 0, as
    # gammapy's inf gives 0): the maps stay finite
    acceptance_off = np.where(np.isfinite(acceptance_off), acceptance_off, 0.0)
    kwargs["counts_off"] = target._as_map(total_off)
    kwargs["acceptance"] = target.acceptance.copy(data=acceptance)
    kwargs["acceptance_off"] = target._as_map(acceptance_off)


# ---------------------------------------------------------------------------------------- API
def stack_into(target, other, nan_to_num=True) -> None:
    """Stack ``other`` onto ``target`` in place, by the table of this module.

    Safe masks apply to ``other`` only (``target`` is taken as it is: use `to_masked` first,
    as `stack` does). ``target`` keeps its name and models and is left unchanged when this
    raises: the result is computed in new arrays and validated before it replaces ``target``'s.

    Raises
    ------
    GeometryMismatchError
        See `check_stackable`.
    """
    _stack_into(target, other, nan_to_num, inplace=False)


def _stack_into(target, other, nan_to_num, inplace):
    """`stack_into`; ``inplace`` adds into ``target``'s own arrays (no copy of the stack: for
    the private stacks of `stack` and `to_masked`, whose failure leaves nothing to keep)."""
    footprints = check_stackable(target, other)
    kwargs = _stacked_kwargs(target, other, nan_to_num, footprints, inplace=inplace)
    models = target.models
    new = type(target)(**kwargs)  # validates the result before anything changes
    state = dict(vars(new))
    state["_models"] = models
    vars(target).update(state)


def to_masked(dataset, name=None, nan_to_num=True):
    """Copy of ``dataset`` with everything outside its safe mask set to zero (gammapy's
    ``to_masked``: an empty dataset on the same geometries with ``dataset`` stacked onto it)."""
    empty = type(dataset).from_geoms(**dataset.geoms, name=dataset.name if name is None else name)
    _stack_into(empty, dataset, nan_to_num, inplace=True)
    return empty


def stack(datasets: Iterable, name=None, nan_to_num=True):
    """Stack datasets into a new one (gammapy's ``Datasets.stack_reduce``).

    Parameters
    ----------
    datasets : iterable of datasets of one type
        A `Datasets`, a list, or a generator (e.g. reading files one at a time: only the stack
        and the current dataset are in memory; the stack is accumulated in its own arrays).
    name : str, optional
        Name of the stack (default: the first dataset's name).
    nan_to_num : bool
        Non-finite values of the stacked datasets count as zero.

    Returns
    -------
    dataset
        The first dataset masked by its safe mask, with every other one stacked onto it.
    """
    iterator = iter(datasets)
    try:
        first = next(iterator)
    except StopIteration:
        raise GeometryMismatchError("stack: no datasets to stack") from None
    stacked = to_masked(first, name=name, nan_to_num=nan_to_num)
    # drop each dataset before the next is read: with a generator of file reads only the stack
    # and one dataset are alive
    del first
    count = 1
    for dataset in iterator:
        _stack_into(stacked, dataset, nan_to_num, inplace=True)
        del dataset
        count += 1
    log.debug("stacked %d datasets into %r", count, stacked.name)
    return stacked
