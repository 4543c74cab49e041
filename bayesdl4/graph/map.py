"""Map datasets -> compact PyTensor graphs of predicted counts and the Cash statistic.

Each point source is evaluated on a cutout around its starting position (PSF kernel size plus a
margin of ``POINT_MARGIN`` pixels for the source to move), then added into the cube at fixed
slices. Integers computed from the parameters (``floor`` of the pixel position) only choose which
pixels carry non-zero weights; they have zero gradient, and the weights carry the position
gradient, so the likelihood and its gradient are those of a fixed-slice sum.

* ``placement="exact"`` (default): the PSF profile, averaged over a pixel (precomputed as a
  radial function), is evaluated at the exact angular offset of each cutout pixel from the source
  and normalised per plane: smooth in position. Exposure is taken as gammapy does (bilinear at the
  4 pixels around the source with a reco-energy PSF, per output pixel with a true-energy PSF).
* ``placement="gammapy"``: the source is deposited on the 4 nearest pixels with bilinear (tent)
  weights and convolved with the PSF kernel: 4 kernel copies at constant offsets in an
  ``(n + 1)``-wide window, placed at the integer offset ``floor(x0), floor(y0)``. As gammapy: with
  a reco-energy PSF (HAWC) each deposit pixel carries its own exposure and the PSF acts after
  energy dispersion; with a true-energy PSF (Fermi-LAT) the deposit is convolved first and
  exposure applies per output pixel.
* Without a PSF both placements use the bilinear deposit.

Built by `bayesdl4.graph.map_builder.MapBuilder`, the counts, the background and every array that
depends on a point source's position (`POINT_INPUTS`: its cutout's place in the map, exposure, PSF
kernel, edisp) are graph inputs (`map_stat_arrays`, `point_input_arrays`, `bind_point_inputs`): a
source at another position reuses the compiled functions.

No constant in these graphs exceeds Numba's 1 MB limit for static globals (a larger one makes the
compiled function uncacheable: Numba compiles it again in every process).

Masked bins that no source reaches contribute through per-plane sufficient statistics
``2 (f_e B_e - N_e ln f_e - sum n ln b)`` with the background norm ``f_e``; all other masked bins
are evaluated one by one with gammapy's Cash statistic.

Extended sources (every other spatial model) have their own plans: `bayesdl4.graph.map_extended`.
"""

from dataclasses import dataclass, field, replace

import numpy as np
import pytensor.tensor as pt
from astropy import units as u
from pytensor.graph.basic import Variable

from ..errors import ModelError
from ..models import FoVBackgroundModel, SkyModel
from ..stats import cash
from .flux import source_flux
from .map_extended import (
    EXPOSURE_UNIT,
    ExtendedSourcePlan,
    _crop_kernel,
    _data,
    bind_extended_inputs,
    extended_input_arrays,
    extended_npred,
    extended_plan,
    recent_extended_plan,
)

__all__ = [
    "MapGraphData",
    "prepare_map",
    "map_stat_tensor",
    "map_stat_arrays",
    "point_input_arrays",
    "bind_point_inputs",
    "STAT_ARRAYS",
    "STAT_FIELDS",
    "POINT_INPUTS",
    "POINT_MARGIN",
]

POINT_MARGIN = 3  # pixels a point source may move from where its cutout was chosen
EXACT_RAD_REFINE = 4  # placement "exact": radial nodes of the pixel-averaged PSF per PSF rad node


@dataclass
class PointSourcePlan:
    """Constants for one point source: its cutout, kernel, edisp and exposure."""

    model: SkyModel
    ys: slice
    xs: slice
    edges_true: np.ndarray  # TeV
    exposure: np.ndarray  # (n_true, ny_c, nx_c) cm2 s
    kernel: np.ndarray | None  # (n_planes, n, n)
    kernel_is_reco: bool
    edisp: np.ndarray  # (n_true, n_reco)
    planes: np.ndarray | None = None  # reco planes computed (those with masked bins)
    origin: tuple = (0, 0)  # (x, y) pixel of the unclipped cutout's first column/row
    base: np.ndarray | None = None  # (x, y) integer pixel the deposit shifts are counted from (int64)
    deposit_exposure: np.ndarray | None = None  # (n_true, a, b) exposure at base + shifts, cm2 s
    kernel_rad: np.ndarray | None = None  # placement "exact": rad nodes (deg) of ``kernel_table``
    kernel_table: np.ndarray | None = None  # exact: pixel-averaged profiles (`_profile_table`)
    pixel_lonlat: tuple | None = None  # exact: unclipped cutout pixel centres (deg, model frame)
    cutout_shape: tuple = (0, 0)  # (ny_c, nx_c) of the cutout
    clip: tuple = (0, 0)  # (x, y) offset of the clipped cutout in the unclipped one
    start: np.ndarray | None = None  # (y, x) first row/column of the cutout in the map (int64)


#: fields of a `PointSourcePlan` that depend on the source's position: graph inputs when bound
#: (`bind_point_inputs`), so that a source at another position reuses the compiled functions
POINT_INPUTS = ("exposure", "deposit_exposure", "kernel", "edisp", "kernel_table", "pixel_lon", "pixel_lat",
                "start", "base")


@dataclass
class MapGraphData:
    """Numpy constants of one map dataset."""

    name: str
    stat_type: str
    geom: object
    shape: tuple
    mask: np.ndarray  # (n_e, ny, nx) bool
    counts: np.ndarray
    background: np.ndarray
    energy_center: np.ndarray  # reco energy centres, TeV
    sources: list = field(default_factory=list)
    background_model: object = None
    explicit: np.ndarray | None = None  # bool (n_e, ny, nx): masked bins outside the box, one by one
    box: tuple | None = None  # (planes, ys, xs) dense block holding every source cutout
    plane_counts: np.ndarray | None = None  # background-only sums per plane
    plane_background: np.ndarray | None = None
    plane_nlnb: np.ndarray | None = None
    energy_scale: object = None  # 1 + z of an `EnergyScaleModel` (tensor), set when the graph is built
    area_scale: object = None  # norm of an `EffectiveAreaScaleModel` (tensor)


def _point_plan(dataset, model, all_planes=False):
    spatial = model.spatial_model
    geom = dataset.counts.geom
    position = spatial.position
    exposure_full = dataset.exposure.quantity.to_value(EXPOSURE_UNIT)
    edges_true = dataset.exposure.geom.axis("energy_true").edges.to_value("TeV")
    energy_axis = geom.axis("energy")
    edisp = np.eye(len(edges_true) - 1)
    if dataset.edisp is not None:
        edisp = dataset.edisp.get_edisp_kernel(position=position, energy_axis=energy_axis).pdf_matrix
    kernel, is_reco = None, False
    if dataset.psf is not None:
        is_reco = dataset.psf.is_reco
        kernel_geom = geom if is_reco else dataset.exposure.geom
        # an empty kernel plane where the likelihood needs it would drop flux: DataFormatError
        required = dataset.psf.required_planes(dataset.mask, edisp, exposure_full)
        kernel = dataset.psf.get_psf_kernel(kernel_geom, position=position, required_planes=required).data
    mask = dataset.mask
    planes = np.arange(energy_axis.nbin)
    if mask is not None and not all_planes:
        planes = np.flatnonzero(np.any(mask, axis=(1, 2)))
    edisp = edisp[:, planes]
    if kernel is not None:
        if is_reco:
            kernel = kernel[planes]
        kernel = _crop_kernel(kernel)
    half = 0 if kernel is None else kernel.shape[-1] // 2
    x0, y0 = (float(v) for v in np.ravel(geom.coord_to_pix(position))[:2])
    nx, ny = geom.npix
    nx, ny = int(np.ravel(nx)[0]), int(np.ravel(ny)[0])
    lo_x = int(np.floor(x0)) - half - POINT_MARGIN
    lo_y = int(np.floor(y0)) - half - POINT_MARGIN
    hi_x = int(np.floor(x0)) + 1 + half + POINT_MARGIN + 1
    hi_y = int(np.floor(y0)) + 1 + half + POINT_MARGIN + 1
    xs = slice(max(lo_x, 0), min(hi_x, nx))
    ys = slice(max(lo_y, 0), min(hi_y, ny))
    if xs.start >= xs.stop or ys.start >= ys.stop:
        raise ModelError(
            f"model {model.name!r}: position ({spatial.lon_0.value:.4f}, {spatial.lat_0.value:.4f}) deg "
            f"({spatial.frame}) lies outside dataset {dataset.name!r}; move it into the map or leave the "
            "dataset out of the model's datasets_names")
    plan = PointSourcePlan(model=model, ys=ys, xs=xs, edges_true=edges_true,
                           exposure=exposure_full[:, ys, xs], kernel=kernel, kernel_is_reco=is_reco,
                           edisp=edisp, planes=planes, origin=(lo_x, lo_y),
                           base=np.array([int(np.floor(x0)), int(np.floor(y0))], dtype=np.int64),
                           cutout_shape=(ys.stop - ys.start, xs.stop - xs.start),
                           clip=(xs.start - lo_x, ys.start - lo_y),
                           start=np.array([ys.start, xs.start], dtype=np.int64))
    shifts = np.arange(-POINT_MARGIN, POINT_MARGIN + 2)
    px, py = plan.base[0] + shifts, plan.base[1] + shifts
    inside_x, inside_y = (px >= 0) & (px < nx), (py >= 0) & (py < ny)
    deposit_exposure = exposure_full[:, np.clip(py, 0, ny - 1)][:, :, np.clip(px, 0, nx - 1)]
    plan.deposit_exposure = deposit_exposure * (inside_y[:, None] & inside_x[None, :])
    if spatial.placement == "exact" and dataset.psf is not None:  # without a PSF: the bilinear deposit
        _exact_constants(plan, dataset, kernel_geom, half)
    return plan


def _exact_constants(plan, dataset, kernel_geom, half):
    """For ``placement="exact"``: sky coordinates (model frame) of the pixel centres of the
    unclipped cutout, and per plane the PSF profile averaged over a pixel (`_pixel_averaged_profile`)
    on the PSF's ``rad`` nodes."""
    from astropy.coordinates import SkyCoord

    psf, spatial = dataset.psf, plan.model.spatial_model
    position = spatial.position
    energy = kernel_geom.axis(psf.energy_name).center
    if plan.kernel_is_reco:
        energy = energy[plan.planes]
    width = 2 * half + 2 * POINT_MARGIN + 2
    xx, yy = np.meshgrid(plan.origin[0] + np.arange(width, dtype=float), plan.origin[1] + np.arange(width, dtype=float))
    image_geom = dataset.counts.geom.to_image()
    lon, lat = image_geom.pix_to_coord((xx, yy))[:2]
    sky = SkyCoord(lon * u.deg, lat * u.deg, frame=image_geom.frame).transform_to(spatial.frame)
    plan.pixel_lonlat = (sky.spherical.lon.deg, sky.spherical.lat.deg)
    rad = psf.rad_axis.center.to_value("deg")
    binsz = np.abs(image_geom.pixel_scales.to_value("deg"))
    # the averaged profile is smooth: tabulated on EXACT_RAD_REFINE times finer uniform nodes, the
    # slope steps of its linear interpolation (kinks of the gradient in position) shrink as much
    fine = np.linspace(rad[0], rad[-1], EXACT_RAD_REFINE * (rad.size - 1) + 1)
    plan.kernel_rad = fine
    plan.kernel_table = _profile_table(_pixel_averaged_profile(fine, psf.psf_profile(energy, position), binsz, rad=rad))


def _pixel_averaged_profile(nodes, profile, binsz, rad=None, n_sub=8, n_angle=16):
    """PSF profiles (n_planes, n_rad) on ``rad`` (deg; default ``nodes``), averaged over a pixel of
    size ``binsz`` (deg, (lon, lat)) whose centre lies at each of ``nodes``, over all orientations:
    a radial function whose value at a pixel's separation from the source is the pixel's mean PSF
    (gammapy's oversampled kernel pixel) up to the pixel's small anisotropy. Point-sampling this
    smooth profile replaces sub-pixel samples. Returns (n_planes, n_nodes).

    The profile is interpolated as `_interp_profile` does: linear between the ``rad`` nodes,
    constant inside the first, clipped at 0, and 0 beyond the last.
    """
    rad = nodes if rad is None else rad
    sub = (np.arange(n_sub) + 0.5) / n_sub - 0.5
    du, dv = np.meshgrid(sub * binsz[0], sub * binsz[1])
    angle = 2 * np.pi * (np.arange(n_angle) + 0.5) / n_angle
    x = nodes[:, None, None] * np.cos(angle)[None, :, None] + du.ravel()[None, None, :]
    y = nodes[:, None, None] * np.sin(angle)[None, :, None] + dv.ravel()[None, None, :]
    r = np.hypot(x, y)
    out = np.empty((len(profile), nodes.size))
    for k, values in enumerate(np.asarray(profile, dtype=float)):
        sampled = np.maximum(np.interp(r, rad, values, left=values[0], right=0.0), 0.0)
        out[k] = sampled.mean(axis=(1, 2))
    return out


def prepare_map(dataset, all_planes=False):
    """Constants of a map dataset: masks, source plans, background-only sufficient statistics.

    ``all_planes`` evaluates sources in every energy plane (npred maps for the numpy conveniences
    and simulations), not only masked ones; it also reuses an extended source's last plan while
    the source stays within its margin (`recent_extended_plan`, as gammapy's evaluator).
    """
    counts = dataset.counts.data.astype(float)
    shape = counts.shape
    mask = dataset.mask
    mask = np.ones(shape, dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
    background = (np.zeros(shape) if dataset.background is None else dataset.background.data.astype(float))
    geom = dataset.counts.geom
    sources, background_model = [], None
    for model in dataset.models or ():
        if isinstance(model, FoVBackgroundModel):
            background_model = model
        elif isinstance(model, SkyModel):
            if model.spatial_model is None:
                raise ModelError(f"model {model.name!r}: map datasets need a spatial model")
            if model.spatial_model.tag[0] != "PointSpatialModel":
                make = recent_extended_plan if all_planes else extended_plan
                sources.append(make(dataset, model, all_planes))
                continue
            sources.append(_point_plan(dataset, model, all_planes))
    # the box: bounding planes x rows x columns of all source cutouts, evaluated as a dense block
    box = None
    in_box = np.zeros(shape, dtype=bool)
    if sources:
        planes = np.unique(np.concatenate([plan.planes for plan in sources]))
        ys = slice(min(p.ys.start for p in sources), max(p.ys.stop for p in sources))
        xs = slice(min(p.xs.start for p in sources), max(p.xs.stop for p in sources))
        box = (planes, ys, xs)
        in_box[np.ix_(planes, np.arange(shape[1])[ys], np.arange(shape[2])[xs])] = True
    # outside the box, bins without background cannot use ln b: evaluated one by one
    explicit = mask & ~in_box & (background <= 0)
    rest = mask & ~in_box & ~explicit
    with np.errstate(divide="ignore", invalid="ignore"):
        nlnb = np.where(rest & (counts > 0), counts * np.log(np.where(rest, background, 1.0)), 0.0)
    return MapGraphData(
        name=dataset.name, stat_type="cash", geom=geom, shape=shape, mask=mask, counts=counts,
        background=background, energy_center=geom.axis("energy").center.to_value("TeV"),
        sources=sources, background_model=background_model, explicit=explicit, box=box,
        plane_counts=np.where(rest, counts, 0).sum(axis=(1, 2)),
        plane_background=np.where(rest, background, 0).sum(axis=(1, 2)),
        plane_nlnb=nlnb.sum(axis=(1, 2)),
    )


def _tent(d):
    return pt.maximum(0.0, 1.0 - pt.abs(d))


def _point_npred(plan, data, pvals):
    """Predicted counts of one point source on its cutout, (n_e, ny_c, nx_c)."""
    spatial, spectral = plan.model.spatial_model, plan.model.spectral_model
    flux = source_flux(spectral, plan.edges_true, pvals, data.energy_scale, data.area_scale)
    if plan.kernel_rad is not None:  # placement "exact"
        image = _exact_image(plan, pvals)
        if not plan.kernel_is_reco:  # true-energy PSF: exposure per output pixel, as gammapy
            per_true = flux[:, None, None] * _data(plan.exposure) * image
            return pt.tensordot(pt.as_tensor(plan.edisp), per_true, axes=[[0], [0]])
        # reco-energy PSF: exposure at the 4 pixels around the source, bilinear (as gammapy)
        x0, y0 = spatial.pixel_position_tensor(data.geom, pvals)
        bx, by, tents = _nearest_pixels(plan, x0, y0)
        exposure = pt.dot(_deposit_exposure(plan, bx, by), tents)
        return _apply_irf(flux * exposure, image, plan)
    x0, y0 = spatial.pixel_position_tensor(data.geom, pvals)
    if plan.kernel is None:
        ny, nx = plan.cutout_shape
        wx, wy = _tent(plan.start[1] + np.arange(nx, dtype=float) - x0), _tent(plan.start[0] + np.arange(ny, dtype=float) - y0)
        exposure = pt.tensordot(pt.tensordot(_data(plan.exposure), wx, axes=[[2], [0]]), wy, axes=[[1], [0]])
        signal_true = flux * exposure  # (n_true,) counts
        image = (wy[:, None] * wx[None, :])[None]
        return _apply_irf(signal_true, image, plan)
    return _deposit_convolved(plan, flux, x0, y0)


def _exact_image(plan, pvals):
    """Pixel-averaged PSF of each plane at the source's exact position, normalised to 1 on the
    unclipped cutout, then cropped to the cutout: (n_planes, ny_c, nx_c)."""
    spatial = plan.model.spatial_model
    sep = spatial.separation_tensor(plan.pixel_lonlat[0], plan.pixel_lonlat[1], pvals)
    table = _data(plan.kernel_table)
    image = _interp_table(sep, plan.kernel_rad, table, _shape(table)[1] // 2)  # (n_planes, ny_w, nx_w)
    image = image / pt.maximum(image.sum(axis=(1, 2), keepdims=True), 1e-300)
    return _crop(image, plan)


def _crop(image, plan):
    """The cutout's part of an image on the unclipped cutout (last two axes)."""
    (ox, oy), (ny, nx) = plan.clip, plan.cutout_shape
    return image[:, oy : oy + ny, ox : ox + nx]


def _shape(array):
    """Shape of a numpy array or the static shape of a tensor (bound inputs have one)."""
    return array.type.shape if isinstance(array, Variable) else array.shape


def _deposit_convolved(plan, flux, x0, y0):
    """PSF kernel convolved with the bilinear deposit at (x0, y0), each of the 4 deposit pixels
    weighted by its own exposure (as gammapy), on the cutout; shape (n_e, ny_c, nx_c).

    Only the 4 pixels around ``(x0, y0)`` have non-zero tent weights: their convolution with the
    kernel is 4 kernel copies at constant offsets in an ``(n + 1)``-wide window, placed into the
    cutout at the integer offset ``floor(x0), floor(y0)`` (clipped to the margin). That offset is
    an integer from the parameters with zero gradient; the tent weights carry the position
    gradient, with the values and derivatives of the dense sum over all candidate pixels (whose
    other weights are exactly 0).
    """
    kernel = plan.kernel
    n_planes, n = _shape(kernel)[0], _shape(kernel)[-1]
    m = POINT_MARGIN
    width = n + 2 * m + 1
    bx, by, tents = _nearest_pixels(plan, x0, y0)
    edisp = pt.as_tensor(plan.edisp)
    if plan.kernel_is_reco:
        exposure = _deposit_exposure(plan, bx, by)  # (n_true, 4)
        weights = pt.dot(edisp.T, flux[:, None] * exposure * tents)  # (n_e, 4)
    else:
        # true-energy PSF: gammapy convolves the spatial deposit first and applies exposure per
        # output pixel afterwards (MapEvaluator.compute_flux_spatial)
        weights = tents[None, :]  # the same for every plane
    kernel = _data(kernel)
    local = pt.zeros((n_planes, n + 1, n + 1))
    for k, (i, j) in enumerate(((0, 0), (0, 1), (1, 0), (1, 1))):
        local = pt.inc_subtensor(local[:, i : i + n, j : j + n], weights[:, k, None, None] * kernel)
    image = pt.set_subtensor(pt.zeros((n_planes, width, width))[:, by + m : by + m + n + 1, bx + m : bx + m + n + 1],
                             local)
    image = _crop(image, plan)
    if plan.kernel_is_reco:
        return image
    per_true = flux[:, None, None] * _data(plan.exposure) * image
    return pt.tensordot(edisp, per_true, axes=[[0], [0]])


def _nearest_pixels(plan, x0, y0):
    """The 4 pixels around ``(x0, y0)``: integer offsets ``(bx, by)`` of the lower-left one from
    ``plan.base`` (clipped to ``+-POINT_MARGIN``) and the bilinear (tent) weights of the pixels
    ``base + (bx + j, by + i)``, flattened in the order (i, j) = (0, 0), (0, 1), (1, 0), (1, 1)."""
    m = POINT_MARGIN
    bx = pt.clip(pt.floor(x0) - plan.base[0], -m, m).astype("int64")
    by = pt.clip(pt.floor(y0) - plan.base[1], -m, m).astype("int64")
    two = np.arange(2.0)
    tx = _tent(plan.base[0] + bx + two - x0)
    ty = _tent(plan.base[1] + by + two - y0)
    return bx, by, (ty[:, None] * tx[None, :]).reshape((4,))


def _deposit_exposure(plan, bx, by):
    """Exposure (n_true, 4) at the 4 pixels of `_nearest_pixels`, cm2 s."""
    m = POINT_MARGIN
    exposure = _data(plan.deposit_exposure)[:, by + m : by + m + 2, bx + m : bx + m + 2]
    return exposure.reshape((exposure.shape[0], 4))


def _apply_irf(signal_true, image, plan):
    """Energy dispersion and PSF in gammapy's order (reco-energy PSF after edisp)."""
    edisp = pt.as_tensor(plan.edisp)
    if plan.kernel_is_reco or image.type.shape[0] == 1:
        signal_reco = pt.dot(signal_true, edisp)  # (n_e,)
        return signal_reco[:, None, None] * image
    per_true = signal_true[:, None, None] * image  # (n_true, ny, nx)
    return pt.tensordot(edisp, per_true, axes=[[0], [0]])


def _interp_profile(sep, rad, profile):
    """Linear interpolation of per-plane PSF profiles (n_planes, n_rad) at separations (deg),
    constant inside the first node, clipped at 0 (as gammapy) and 0 beyond the last node.

    On a uniform ``rad`` grid (HAWC, gammapy's PSF maps) the node index is ``floor`` of the scaled
    separation, otherwise a ``searchsorted``; either way it is an integer without gradient, and
    the gradient flows through the interpolation weight.
    """
    profile = np.asarray(profile, dtype=float)
    return _interp_table(sep, rad, pt.as_tensor(_profile_table(profile)), profile.shape[0])


def _profile_table(profile):
    """Rows of (values, slopes) of all planes' profiles (n_planes, n_rad): (n_rad - 1, 2 n_planes)."""
    profile = np.asarray(profile, dtype=float)
    return np.ascontiguousarray(np.concatenate([profile[:, :-1], np.diff(profile, axis=1)]).T)


def _interp_table(sep, rad, table, n_planes):
    """`_interp_profile` with the profiles as a `_profile_table` tensor (a graph input)."""
    rad = np.asarray(rad, dtype=float)
    step = np.diff(rad)
    uniform = rad.size > 1 and np.allclose(step, step[0], rtol=1e-9, atol=0.0)
    if uniform:
        u = (sep - rad[0]) / step[0]
        idx = pt.clip(pt.floor(u), 0, rad.size - 2).astype("int64")
        t = pt.clip(u - idx, 0.0, 1.0)
    else:
        idx = pt.clip(pt.extra_ops.searchsorted(rad, sep) - 1, 0, rad.size - 2)
        r0, r1 = pt.as_tensor(rad)[idx], pt.as_tensor(rad)[idx + 1]
        t = pt.clip((sep - r0) / (r1 - r0), 0.0, 1.0)
    # one row gather of (values, slopes) of all planes: table (n_rad - 1, 2 n_planes)
    shape = sep.type.shape if None not in sep.type.shape else tuple(sep.shape)
    rows = _data(table)[idx.reshape((-1,))]  # (n_sep, 2 n_planes)
    flat_t = t.reshape((-1, 1))
    out = pt.maximum(rows[:, :n_planes] + rows[:, n_planes:] * flat_t, 0.0)
    out = pt.where(sep.reshape((-1, 1)) > rad[-1], 0.0, out)
    return out.T.reshape((n_planes, *shape))


def _source_npred(plan, data, pvals):
    """Predicted counts of one source on its cutout: point or extended plan."""
    if isinstance(plan, ExtendedSourcePlan):
        return extended_npred(plan, data, pvals)
    return _point_npred(plan, data, pvals)


def background_norm_tensor(data, pvals):
    """Per-plane background norm f_e (ones without a background model)."""
    if data.background_model is None:
        return pt.ones(data.shape[0])
    return data.background_model.spectral_model.dnde_tensor(data.energy_center, pvals)


def map_npred_tensors(data, pvals):
    """(npred signal cube, background cube) tensors of a map dataset."""
    norm = background_norm_tensor(data, pvals)
    background = norm[:, None, None] * data.background
    signal = pt.zeros(data.shape)
    for plan in data.sources:
        npred = _source_npred(plan, data, pvals)
        if isinstance(plan.start, Variable):  # bound: moves
            ny, nx = plan.cutout_shape if isinstance(plan, PointSourcePlan) else \
                (plan.ys.stop - plan.ys.start, plan.xs.stop - plan.xs.start)
            y0, x0 = plan.start[0], plan.start[1]
            if plan.planes.size != data.shape[0]:
                npred = pt.set_subtensor(pt.zeros((data.shape[0], ny, nx))[plan.planes], npred)
            signal = pt.inc_subtensor(signal[:, y0 : y0 + ny, x0 : x0 + nx], npred)
        else:
            signal = pt.inc_subtensor(signal[plan.planes, plan.ys, plan.xs], npred)
    return signal, background


#: names of `map_stat_arrays`
STAT_ARRAYS = ("box_counts", "box_background", "box_mask", "explicit_counts", "explicit_plane",
               "explicit_background", "plane_counts", "plane_nlnb", "plane_background")


def map_stat_arrays(data):
    """The arrays of `map_stat_tensor` that change with the counts, the background or the sources'
    positions (graph inputs, named as `STAT_ARRAYS`): the box's counts, background and mask, the
    explicit bins' counts, planes and background, per-plane sums of all other fitted bins."""
    explicit = np.nonzero(data.explicit)
    out = {"box_counts": np.zeros((0, 0, 0)), "box_background": np.zeros((0, 0, 0)), "box_mask": np.zeros((0, 0, 0))}
    if data.box is not None:
        planes, ys, xs = data.box
        block = np.ix_(planes, np.arange(data.shape[1])[ys], np.arange(data.shape[2])[xs])
        out = {"box_counts": data.counts[block], "box_background": data.background[block],
               "box_mask": data.mask[block].astype(float)}
    out.update(explicit_counts=data.counts[explicit], explicit_plane=explicit[0].astype(np.int64),
               explicit_background=data.background[explicit], plane_counts=data.plane_counts,
               plane_nlnb=data.plane_nlnb, plane_background=data.plane_background)
    return out


#: fields of `MapGraphData` that `map_stat_tensor` and `map_npred_tensors` do not read when the
#: stat arrays, the background cube and the point sources are inputs (`bind_point_inputs`)
STAT_FIELDS = ("counts", "background", "explicit", "plane_counts", "plane_nlnb", "plane_background")


def point_input_arrays(data):
    """The position-dependent arrays of the sources, ``{"src<i>.<name>": array}``: `POINT_INPUTS`
    of point sources, `extended_input_arrays` of extended ones."""
    out = {}
    for i, plan in enumerate(data.sources):
        if isinstance(plan, ExtendedSourcePlan):
            out.update({f"src{i}.{name}": v for name, v in extended_input_arrays(plan).items()})
            continue
        values = {"exposure": plan.exposure, "deposit_exposure": plan.deposit_exposure, "kernel": plan.kernel,
                  "edisp": plan.edisp, "kernel_table": plan.kernel_table, "start": plan.start, "base": plan.base}
        if plan.pixel_lonlat is not None:
            values["pixel_lon"], values["pixel_lat"] = plan.pixel_lonlat
        out.update({f"src{i}.{name}": np.asarray(v) for name, v in values.items() if v is not None})
    return out


def bind_point_inputs(data, inputs):
    """A copy of ``data`` whose point sources read their `POINT_INPUTS` from ``inputs`` (tensors
    named as `point_input_arrays`, with the static shapes of ``data``'s arrays: given them when they
    have none, as a `GroupPlan.static_shape` input has)."""
    arrays = point_input_arrays(data)
    tensors = {name: inputs[name] if inputs[name].type.shape == arrays[name].shape
               else pt.specify_shape(inputs[name], arrays[name].shape) for name in arrays}
    sources = []
    for i, plan in enumerate(data.sources):
        if isinstance(plan, ExtendedSourcePlan):
            prefix = f"src{i}."
            plan = bind_extended_inputs(plan, {n[len(prefix):]: t for n, t in tensors.items() if n.startswith(prefix)})
        elif isinstance(plan, PointSourcePlan):
            get = {name: tensors.get(f"src{i}.{name}") for name in POINT_INPUTS}
            plan = replace(plan, exposure=get["exposure"], deposit_exposure=get["deposit_exposure"],
                           kernel=get["kernel"], edisp=get["edisp"], kernel_table=get["kernel_table"],
                           start=get["start"], base=get["base"],
                           pixel_lonlat=None if plan.pixel_lonlat is None else (get["pixel_lon"], get["pixel_lat"]))
        sources.append(plan)
    return replace(data, sources=sources)


def map_stat_tensor(data, pvals, arrays=None):
    """Cash terms: the box bins (0 where masked out), bins outside it without background, then one
    term per energy plane for all other (background-only) masked bins. Returns (terms, box signal).

    ``arrays``: tensors of `map_stat_arrays` (graph inputs, so that new counts, background or
    source positions reuse the compiled function); None: they are constants of the graph.
    """
    arrays = arrays or {name: pt.as_tensor(array) for name, array in map_stat_arrays(data).items()}
    norm = background_norm_tensor(data, pvals)
    terms = []
    signal = None
    if data.box is not None:
        planes, ys, xs = data.box
        signal = pt.zeros((planes.size, ys.stop - ys.start, xs.stop - xs.start))
        for plan in data.sources:
            sub = np.searchsorted(planes, plan.planes)
            y0, x0 = plan.ys.start - ys.start, plan.xs.start - xs.start
            region = signal[sub, y0 : y0 + plan.ys.stop - plan.ys.start, x0 : x0 + plan.xs.stop - plan.xs.start]
            signal = pt.inc_subtensor(region, _source_npred(plan, data, pvals))
        mu = signal + norm[planes][:, None, None] * arrays["box_background"]
        terms.append((cash(arrays["box_counts"], mu) * arrays["box_mask"]).reshape((-1,)))
    if data.explicit.any():
        mu = norm[arrays["explicit_plane"]] * arrays["explicit_background"]
        terms.append(cash(arrays["explicit_counts"], mu))
    terms.append(2.0 * (norm * arrays["plane_background"] - arrays["plane_counts"] * pt.log(norm) - arrays["plane_nlnb"]))
    return pt.concatenate(terms), signal
