"""Map datasets -> compact PyTensor graphs of predicted counts and the Cash statistic.

Each point source is evaluated on a cutout around its starting position (PSF kernel size plus a
margin of ``POINT_MARGIN`` pixels for the source to move), then added into the cube at fixed
slices, so no integer index depends on a sampled parameter.

* ``placement="gammapy"``: the source is deposited on the 4 nearest pixels with bilinear (tent)
  weights and convolved with the PSF kernel, as a weighted sum of kernels shifted by constant
  integers (no parameter-dependent index). As gammapy: with a reco-energy PSF (HAWC) each deposit
  pixel carries its own exposure and the PSF acts after energy dispersion; with a true-energy PSF
  (Fermi-LAT) the deposit is convolved first and exposure applies per output pixel.
* ``placement="exact"``: the PSF profile is evaluated at each cutout pixel's exact angular offset
  from the source and normalised per plane: smooth in position.

Masked bins that no source reaches contribute through per-plane sufficient statistics
``2 (f_e B_e - N_e ln f_e - sum n ln b)`` with the background norm ``f_e``; all other masked bins
are evaluated one by one with gammapy's Cash statistic.
"""

from dataclasses import dataclass, field

import numpy as np
import pytensor.tensor as pt
from astropy import units as u

from ..errors import ModelError
from ..models import FoVBackgroundModel, SkyModel
from ..stats import cash

__all__ = ["MapGraphData", "prepare_map", "map_stat_tensor", "POINT_MARGIN"]

POINT_MARGIN = 3  # pixels a point source may move from where its cutout was chosen
EXPOSURE_UNIT = u.Unit("cm2 s")


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
    base: tuple = (0, 0)  # (x, y) integer pixel the deposit shifts are counted from
    deposit_exposure: np.ndarray | None = None  # (n_true, a, b) exposure at base + shifts, cm2 s
    kernel_rad: np.ndarray | None = None  # for placement "exact": (n_planes, n_rad) profile
    pixel_lonlat: tuple | None = None  # cutout pixel centres (deg, model frame)


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

    @property
    def bins(self):
        return np.flatnonzero(self.explicit)

    pointwise = False


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
        kernel = dataset.psf.get_psf_kernel(kernel_geom, position=position).data
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
        raise ModelError(f"model {model.name!r}: position {position} lies outside dataset {dataset.name!r}")
    plan = PointSourcePlan(model=model, ys=ys, xs=xs, edges_true=edges_true,
                           exposure=exposure_full[:, ys, xs], kernel=kernel, kernel_is_reco=is_reco,
                           edisp=edisp, planes=planes, origin=(lo_x, lo_y),
                           base=(int(np.floor(x0)), int(np.floor(y0))))
    shifts = np.arange(-POINT_MARGIN, POINT_MARGIN + 2)
    px, py = plan.base[0] + shifts, plan.base[1] + shifts
    inside_x, inside_y = (px >= 0) & (px < nx), (py >= 0) & (py < ny)
    deposit_exposure = exposure_full[:, np.clip(py, 0, ny - 1)][:, :, np.clip(px, 0, nx - 1)]
    plan.deposit_exposure = deposit_exposure * (inside_y[:, None] & inside_x[None, :])
    if spatial.placement == "exact":
        if dataset.psf is None:
            raise ModelError(f"model {model.name!r}: placement='exact' needs a PSF in dataset {dataset.name!r}")
        lon, lat = geom.to_image().get_coord()
        from astropy.coordinates import SkyCoord

        sky = SkyCoord(lon * u.deg, lat * u.deg, frame=geom.frame).transform_to(spatial.frame)
        lon_m = sky.spherical.lon.deg if spatial.frame == "icrs" else sky.l.deg
        lat_m = sky.spherical.lat.deg if spatial.frame == "icrs" else sky.b.deg
        plan.pixel_lonlat = (lon_m[ys, xs], lat_m[ys, xs])
        energy = energy_axis.center[planes] if is_reco else dataset.exposure.geom.axis("energy_true").center
        plan.kernel_rad = (dataset.psf.rad_axis.center.to_value("deg"),
                           dataset.psf.psf_profile(energy, position))
    return plan


def _crop_kernel(kernel):
    """Drop the all-zero border of a kernel stack (gammapy sizes kernels by the largest radius over
    all planes, masked ones included); the kernel stays odd-sized and centred."""
    c = kernel.shape[-1] // 2
    nonzero = np.argwhere(np.any(kernel != 0, axis=0))
    if nonzero.size == 0:
        return kernel[:, c : c + 1, c : c + 1]
    r = int(np.max(np.abs(nonzero - c)))
    return kernel[:, c - r : c + r + 1, c - r : c + r + 1]


def prepare_map(dataset, all_planes=False):
    """Constants of a map dataset: masks, source plans, background-only sufficient statistics.

    ``all_planes`` evaluates sources in every energy plane (npred maps), not only masked ones.
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
            if model.spatial_model is None or model.spatial_model.tag[0] != "PointSpatialModel":
                raise ModelError(
                    f"model {model.name!r}: map datasets support point sources only so far "
                    f"(got {None if model.spatial_model is None else model.spatial_model.tag[0]})"
                )
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
    flux = spectral.integral_tensor(plan.edges_true[:-1], plan.edges_true[1:], pvals)
    ix = np.arange(plan.xs.start, plan.xs.stop, dtype=float)
    iy = np.arange(plan.ys.start, plan.ys.stop, dtype=float)
    if spatial.placement == "exact":
        sep = spatial.separation_tensor(plan.pixel_lonlat[0], plan.pixel_lonlat[1], pvals)
        rad, profile = plan.kernel_rad
        image = _interp_profile(sep, rad, profile)  # (n_planes, ny_c, nx_c)
        image = image / pt.maximum(image.sum(axis=(1, 2), keepdims=True), 1e-300)
        if not plan.kernel_is_reco:  # true-energy PSF: exposure per output pixel, as gammapy
            per_true = flux[:, None, None] * plan.exposure * image
            return pt.tensordot(pt.as_tensor(plan.edisp), per_true, axes=[[0], [0]])
        x0, y0 = spatial.pixel_position_tensor(data.geom, pvals)
        wx, wy = _tent(ix - x0), _tent(iy - y0)
        exposure = pt.tensordot(pt.tensordot(plan.exposure, wx, axes=[[2], [0]]), wy, axes=[[1], [0]])
        signal_true = flux * exposure
        return _apply_irf(signal_true, image, plan)
    x0, y0 = spatial.pixel_position_tensor(data.geom, pvals)
    if plan.kernel is None:
        wx, wy = _tent(ix - x0), _tent(iy - y0)
        exposure = pt.tensordot(pt.tensordot(plan.exposure, wx, axes=[[2], [0]]), wy, axes=[[1], [0]])
        signal_true = flux * exposure  # (n_true,) counts
        image = (wy[:, None] * wx[None, :])[None]
        return _apply_irf(signal_true, image, plan)
    return _deposit_convolved(plan, flux, x0, y0)


def _deposit_convolved(plan, flux, x0, y0):
    """PSF kernel convolved with the bilinear deposit at (x0, y0), each of the 4 deposit pixels
    weighted by its own exposure (as gammapy), on the cutout; shape (n_e, ny_c, nx_c).

    The deposit pixel is ``base + (a, b)`` for ``a, b`` in ``-POINT_MARGIN .. POINT_MARGIN + 1``
    with tent weights, so the result is a weighted sum of kernels shifted by constant integers:
    a contraction with precomputed x-shifted copies, then constant y slices.
    """
    kernel = plan.kernel
    n_planes, n = kernel.shape[0], kernel.shape[-1]
    m = POINT_MARGIN
    shifts = np.arange(-m, m + 2)
    width = n + 2 * m + 1
    shifted = np.zeros((shifts.size, n_planes, n, width))
    for k, b in enumerate(shifts):
        shifted[k, :, :, b + m : b + m + n] = kernel
    tx = _tent(plan.base[0] + shifts - x0)
    ty = _tent(plan.base[1] + shifts - y0)
    # counts per true-energy bin deposited at each candidate pixel: (n_true, a, b)
    deposit = flux[:, None, None] * plan.deposit_exposure * ty[None, :, None] * tx[None, None, :]
    edisp = pt.as_tensor(plan.edisp)
    if plan.kernel_is_reco:
        weights = pt.tensordot(edisp, deposit, axes=[[0], [0]])  # (P = n_e, a, b)
    else:
        # true-energy PSF: gammapy convolves the spatial deposit first and applies exposure per
        # output pixel afterwards (MapEvaluator.compute_flux_spatial)
        weights = pt.tile((ty[:, None] * tx[None, :])[None], (n_planes, 1, 1))
    # per plane p: along_x[p, a] = sum_b weights[p, a, b] * shifted[b, p]  (one batched matmul)
    stacked = np.ascontiguousarray(shifted.transpose(1, 0, 2, 3).reshape(n_planes, shifts.size, n * width))
    along_x = pt.matmul(weights, stacked).reshape((n_planes, shifts.size, n, width))
    image = pt.zeros((n_planes, width, width))
    for k, a in enumerate(shifts):
        image = pt.inc_subtensor(image[:, a + m : a + m + n, :], along_x[:, k])
    ox, oy = plan.xs.start - plan.origin[0], plan.ys.start - plan.origin[1]
    image = image[:, oy : oy + plan.ys.stop - plan.ys.start, ox : ox + plan.xs.stop - plan.xs.start]
    if plan.kernel_is_reco:
        return image
    per_true = flux[:, None, None] * plan.exposure * image
    return pt.tensordot(edisp, per_true, axes=[[0], [0]])


def _apply_irf(signal_true, image, plan):
    """Energy dispersion and PSF in gammapy's order (reco-energy PSF after edisp)."""
    edisp = pt.as_tensor(plan.edisp)
    if plan.kernel_is_reco or image.type.shape[0] == 1:
        signal_reco = pt.dot(signal_true, edisp)  # (n_e,)
        return signal_reco[:, None, None] * image
    per_true = signal_true[:, None, None] * image  # (n_true, ny, nx)
    return pt.tensordot(edisp, per_true, axes=[[0], [0]])


def _interp_profile(sep, rad, profile):
    """Linear interpolation of per-plane PSF profiles (n_planes, n_rad) at separations (deg)."""
    rad = np.asarray(rad, dtype=float)
    idx = pt.clip(pt.extra_ops.searchsorted(rad, sep) - 1, 0, rad.size - 2)
    r0, r1 = pt.as_tensor(rad)[idx], pt.as_tensor(rad)[idx + 1]
    t = pt.clip((sep - r0) / (r1 - r0), 0.0, 1.0)
    prof = pt.as_tensor(np.asarray(profile, dtype=float))
    p0 = prof[:, idx]
    p1 = prof[:, idx + 1]
    out = p0 + (p1 - p0) * t[None]
    return pt.where(sep[None] > rad[-1], 0.0, pt.maximum(out, 0.0))


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
        signal = pt.inc_subtensor(signal[plan.planes, plan.ys, plan.xs], _point_npred(plan, data, pvals))
    return signal, background


def map_stat_tensor(data, pvals):
    """Cash terms: the box bins (0 where masked out), bins outside it without background, then one
    term per energy plane for all other (background-only) masked bins. Returns (terms, box signal)."""
    norm = background_norm_tensor(data, pvals)
    terms = []
    signal = None
    if data.box is not None:
        planes, ys, xs = data.box
        block = np.ix_(planes, np.arange(data.shape[1])[ys], np.arange(data.shape[2])[xs])
        signal = pt.zeros((planes.size, ys.stop - ys.start, xs.stop - xs.start))
        for plan in data.sources:
            sub = np.searchsorted(planes, plan.planes)
            y0, x0 = plan.ys.start - ys.start, plan.xs.start - xs.start
            region = signal[sub, y0 : y0 + plan.ys.stop - plan.ys.start, x0 : x0 + plan.xs.stop - plan.xs.start]
            signal = pt.inc_subtensor(region, _point_npred(plan, data, pvals))
        mu = signal + norm[planes][:, None, None] * data.background[block]
        weight = data.mask[block].astype(float)
        terms.append((cash(pt.as_tensor(data.counts[block]), mu) * weight).reshape((-1,)))
    explicit = np.nonzero(data.explicit)
    if explicit[0].size:
        mu = norm[explicit[0]] * data.background[explicit]
        terms.append(cash(pt.as_tensor(data.counts[explicit]), mu))
    terms.append(2.0 * (norm * data.plane_background - data.plane_counts * pt.log(norm) - data.plane_nlnb))
    return pt.concatenate(terms), signal
