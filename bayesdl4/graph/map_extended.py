"""Extended sources (every spatial model except the point source) in the map npred graph.

Per source, in gammapy 2.1's order (``MapEvaluator``):

1. the spatial model integrated over the pixels of a *flux region* around its starting position
   (``evaluation_radius`` plus `EXTENDED_MARGIN` for the source to move or grow), on gammapy's
   ``f x f`` sub-pixel grid (`SpatialModel.oversampling_factor` at the starting values);
2. true-energy PSF (Fermi-LAT, simulated IACT data): the image is convolved with the kernel of
   each true-energy plane, then multiplied by exposure (per output pixel) and the integrated flux,
   then energy dispersion;
   reco-energy PSF (HAWC): flux x exposure x image, energy dispersion, then each reco plane is
   convolved with its kernel;
3. the result (flux region grown by the kernel half-width, clipped to the map) is added into the
   cube at its cutout's place: no integer index depends on a sampled parameter.

Everything that depends on the starting position (sub-pixel coordinates, solid angles, exposure,
edisp, the kernels' spectra, the cutout's place: `EXTENDED_MOVABLE`) enters the graph as inputs
when the map builder binds them (`extended_input_arrays`, `bind_extended_inputs`), so a source
started elsewhere reuses the compiled functions as long as its cutout keeps its shape.

IRF kernels (PSF, edisp) are taken at the model position when the graph is built, as gammapy
does when it first evaluates a model.

Convolution is a linear "full" convolution by FFT (`pytensor.tensor.fft`, zero-padded to an even
5-smooth length). With a true-energy PSF the kernels of all planes are written in an SVD basis
(``K_t = sum_j c_tj B_j``, singular values below 1e-10 of the largest dropped), so one forward
FFT of the image and one inverse FFT per basis kernel are needed: one in all for an energy
independent PSF. Measured (value + gradient, 85 x 85 image, 15 kernels of 31 x 31): PyTensor's
``Convolve2d`` (scipy in object mode) 20 ms but ~20 s of uncacheable compile in every process; a
separable SVD with dense banded matrices 220 ms; FFT 30 ms with the cacheable numba kernels of
`bayesdl4.graph.numba_fft` (benchmarks/README.md). Large arrays enter as shared variables
(`_data`), so that Numba can cache the compiled function.
"""

import logging
import weakref
from dataclasses import dataclass, replace

import numpy as np
import pytensor
import pytensor.tensor as pt
import scipy.fft
from astropy import units as u
from astropy.coordinates import Angle, SkyCoord
from pytensor.tensor import fft as pfft

from ..errors import ModelError
from ..models import SkyModel
from ..models.spatial_base import _pixel_solid_angle
from . import numba_fft  # noqa: F401  (registers cacheable numba FFT kernels)
from .flux import source_flux

log = logging.getLogger(__name__)

__all__ = ["ExtendedSourcePlan", "extended_plan", "recent_extended_plan", "forget_recent_plans", "extended_npred",
           "extended_input_arrays", "bind_extended_inputs", "EXTENDED_MARGIN", "EXTENDED_MOVABLE"]

#: how far (deg) an extended source may move or grow beyond its starting evaluation radius
#: (gammapy re-cuts its evaluator after 0.1 deg, ``CUTOUT_MARGIN``)
EXTENDED_MARGIN = 0.1
#: and at least this many pixels
EXTENDED_MARGIN_PIX = 2
EXPOSURE_UNIT = u.Unit("cm2 s")
_SVD_RTOL = 1e-10
#: arrays above this size enter graphs as shared variables: PyTensor's Numba backend embeds
#: constants up to 1 MB statically, a larger one makes the compiled function uncacheable
_CONSTANT_BYTES = 500_000


def _data(array):
    """A numpy array as a graph input: a constant if small, else a shared variable (static shape);
    a tensor (an input bound by the builder) as it is."""
    if isinstance(array, pytensor.graph.basic.Variable):
        return array
    array = np.ascontiguousarray(array, dtype=float)
    if array.nbytes <= _CONSTANT_BYTES:
        return pt.as_tensor(array)
    return pytensor.shared(array, shape=array.shape, borrow=True)


@dataclass
class ExtendedSourcePlan:
    """Constants for one extended source (pixel slices are in the dataset's map)."""

    model: SkyModel
    ys: slice  # output cutout rows (flux region grown by the kernel, clipped to the map)
    xs: slice
    planes: np.ndarray  # reco planes computed
    edges_true: np.ndarray  # TeV
    edisp: np.ndarray  # (n_true, n_planes)
    lon: np.ndarray  # (ny_f, nx_f, f*f) sub-pixel centres, deg, model frame
    lat: np.ndarray
    solid_angle: np.ndarray  # (ny_f, nx_f) sr
    exposure: np.ndarray  # cm2 s: (n_true, ny, nx) on the output cutout (true PSF or no PSF)
    #                       or (n_true, ny_f, nx_f) on the flux region (reco PSF)
    kernel_is_reco: bool = False
    fft_shape: tuple | None = None  # (N0, N1) padded FFT size; None: no PSF
    kernel_fft: tuple | None = None  # (real, imag), each (n_kernels, N0, N1 // 2 + 1)
    kernel_coeff: np.ndarray | None = None  # true PSF: (n_true, n_basis) SVD coefficients
    crop: tuple = (0, 0)  # (row, column) of the output cutout in the full convolution
    exposure_factors: tuple | None = None  # (a (n_true, Q), b (Q, ny, nx)): exposure = a @ b
    start: np.ndarray | None = None  # (y, x) first row/column of the output cutout in the map (int64)


#: fields of an `ExtendedSourcePlan` that depend on the source's starting position: graph inputs
#: when bound (`bind_extended_inputs`; templates keep their coordinates, they do not move)
EXTENDED_MOVABLE = ("ys", "xs", "edisp", "lon", "lat", "solid_angle", "exposure", "kernel_fft", "kernel_coeff",
                    "exposure_factors", "start")


def extended_input_arrays(plan) -> dict:
    """The position-dependent arrays of an extended source's plan, ``{name: array}`` (names as
    the fields; ``kernel_fft`` as ``kernel_re`` / ``kernel_im``, ``exposure_factors`` as
    ``exposure_a`` / ``exposure_b``)."""
    values = {"edisp": plan.edisp, "solid_angle": plan.solid_angle, "start": plan.start,
              "kernel_coeff": plan.kernel_coeff}
    if plan.model.spatial_model.tag[0] != "TemplateSpatialModel":
        values["lon"], values["lat"] = plan.lon, plan.lat
    if plan.exposure_factors is None:
        values["exposure"] = plan.exposure
    else:
        values["exposure_a"], values["exposure_b"] = plan.exposure_factors
    if plan.kernel_fft is not None:
        values["kernel_re"], values["kernel_im"] = plan.kernel_fft
    return {name: np.asarray(v) for name, v in values.items() if v is not None}


def bind_extended_inputs(plan, tensors):
    """A copy of ``plan`` reading its `extended_input_arrays` from ``tensors`` (``{name: tensor}``
    with static shapes); its output cutout is placed in the map at ``start``."""
    get = tensors.get
    changes = {name: get(name) for name in ("edisp", "solid_angle", "start", "kernel_coeff", "lon", "lat",
                                             "exposure") if name in tensors}
    if "exposure_a" in tensors:
        changes["exposure_factors"] = (get("exposure_a"), get("exposure_b"))
    if "kernel_re" in tensors:
        changes["kernel_fft"] = (get("kernel_re"), get("kernel_im"))
    return replace(plan, **changes)


def _shape(x) -> tuple:
    """Static shape of an array or of a tensor with a static shape."""
    return tuple(x.type.shape) if isinstance(x, pytensor.graph.basic.Variable) else tuple(np.shape(x))


def _even_fast_len(n):
    """Smallest even 5-smooth length >= n (cheap FFTs; even for a plain ``irfft``)."""
    m = scipy.fft.next_fast_len(int(n), real=True)
    while m % 2:
        m = scipy.fft.next_fast_len(m + 1, real=True)
    return m


def _crop_kernel(kernel):
    """Drop the all-zero border of a kernel stack (gammapy sizes kernels by the largest radius over
    all planes, masked ones included); the kernel stays odd-sized and centred."""
    c = kernel.shape[-1] // 2
    nonzero = np.argwhere(np.any(kernel != 0, axis=0))
    if nonzero.size == 0:
        return kernel[:, c : c + 1, c : c + 1]
    r = int(np.max(np.abs(nonzero - c)))
    return kernel[:, c - r : c + r + 1, c - r : c + r + 1]


def _subpixels(image_geom, ys, xs, factor, frame):
    """Sub-pixel centres (deg, ``frame``) of the pixels ``ys, xs``, shape (ny, nx, f*f); the
    sub-pixels of gammapy's ``geom.upsample(f)`` (as `subpixel_coords`)."""
    f = int(factor)
    offsets = (np.arange(f) + 0.5) / f - 0.5
    x = np.arange(xs.start, xs.stop)[None, :, None, None] + offsets[None, None, None, :]
    y = np.arange(ys.start, ys.stop)[:, None, None, None] + offsets[None, None, :, None]
    x, y = np.broadcast_arrays(x, y)
    lon, lat = image_geom.wcs.wcs_pix2world(x.reshape(-1), y.reshape(-1), 0)
    if frame != image_geom.frame:
        sky = SkyCoord(lon, lat, unit="deg", frame=image_geom.frame).transform_to(frame)
        lon, lat = sky.spherical.lon.deg, sky.spherical.lat.deg
    shape = (ys.stop - ys.start, xs.stop - xs.start, f * f)
    return np.reshape(lon, shape), np.reshape(lat, shape)


def _flux_region(dataset, model, geom):
    """Pixel slices (ys, xs) of the flux region and whether the model's extent was clipped."""
    spatial = model.spatial_model
    nx, ny = (int(np.ravel(n)[0]) for n in geom.npix)
    radius = spatial.evaluation_radius
    if radius is None or spatial.position is None:
        return slice(0, ny), slice(0, nx), False
    pix = float(np.min(geom.pixel_scales.deg))
    r_pix = max((float(Angle(radius).deg) + EXTENDED_MARGIN) / pix, 0.0) + EXTENDED_MARGIN_PIX
    x0, y0 = (float(v) for v in np.ravel(geom.coord_to_pix(spatial.position))[:2])
    lo_x, hi_x = int(np.floor(x0 - r_pix)), int(np.ceil(x0 + r_pix)) + 1
    lo_y, hi_y = int(np.floor(y0 - r_pix)), int(np.ceil(y0 + r_pix)) + 1
    xs = slice(max(lo_x, 0), min(hi_x, nx))
    ys = slice(max(lo_y, 0), min(hi_y, ny))
    if xs.start >= xs.stop or ys.start >= ys.stop:
        raise ModelError(
            f"model {model.name!r}: its extent ({Angle(radius).deg:.3g} deg around "
            f"{spatial.position}) lies outside dataset {dataset.name!r}; remove the model from this "
            "dataset or enlarge the map"
        )
    clipped = lo_x < 0 or lo_y < 0 or hi_x > nx or hi_y > ny
    return ys, xs, clipped


def extended_plan(dataset, model, all_planes=False):
    """Constants of one extended source in ``dataset`` (see the module docstring).

    ``all_planes`` computes every reco-energy plane (npred maps), not only masked ones. Logs a
    warning when the model's extent (evaluation radius + margin) leaves the map: the flux beyond
    the edge is dropped, as in gammapy.
    """
    spatial = model.spatial_model
    if getattr(spatial, "is_energy_dependent", False):
        raise ModelError(
            f"model {model.name!r}: energy-dependent spatial models are not supported in map "
            "likelihood graphs yet"
        )
    geom = dataset.counts.geom
    image = geom.to_image()
    energy_axis = geom.axis("energy")
    position = spatial.position if spatial.position is not None else image.center_skydir
    edges_true = dataset.exposure.geom.axis("energy_true").edges.to_value("TeV")
    n_true = len(edges_true) - 1
    planes = np.arange(energy_axis.nbin)
    mask = dataset.mask
    if mask is not None and not all_planes:
        planes = np.flatnonzero(np.any(mask, axis=(1, 2)))
    edisp = np.eye(n_true)
    if dataset.edisp is not None:
        edisp = dataset.edisp.get_edisp_kernel(position=position, energy_axis=energy_axis).pdf_matrix
    edisp_full = np.asarray(edisp, dtype=float)
    edisp = edisp_full[:, planes]

    fys, fxs, clipped = _flux_region(dataset, model, geom)
    if clipped:
        log.warning(
            "model %r: its evaluation region (%s + %.2g deg margin) leaves dataset %r's map; flux "
            "beyond the edge is dropped (as gammapy)", model.name, spatial.evaluation_radius,
            EXTENDED_MARGIN, dataset.name,
        )
    factor = 1 if spatial.tag[0] == "TemplateSpatialModel" else spatial.oversampling_factor(image)
    lon, lat = _subpixels(image, fys, fxs, factor, spatial.frame)
    solid_angle = _pixel_solid_angle(image)[fys, fxs]
    exposure_full = dataset.exposure.quantity.to_value(EXPOSURE_UNIT)

    kernel, is_reco = None, False
    if dataset.psf is not None:
        is_reco = dataset.psf.is_reco
        required = dataset.psf.required_planes(dataset.mask, edisp_full, exposure_full)
        kernel = dataset.psf.get_psf_kernel(geom if is_reco else dataset.exposure.geom,
                                            position=position, required_planes=required).data
        kernel = _crop_kernel(kernel[planes] if is_reco else kernel)
    half = 0 if kernel is None else kernel.shape[-1] // 2
    nx, ny = (int(np.ravel(n)[0]) for n in geom.npix)
    ys = slice(max(fys.start - half, 0), min(fys.stop + half, ny))
    xs = slice(max(fxs.start - half, 0), min(fxs.stop + half, nx))
    plan = ExtendedSourcePlan(
        model=model, ys=ys, xs=xs, planes=planes, edges_true=edges_true, edisp=edisp, lon=lon,
        lat=lat, solid_angle=solid_angle, exposure=exposure_full[:, ys, xs], kernel_is_reco=is_reco,
        start=np.array([ys.start, xs.start], dtype=np.int64),
    )
    if kernel is None or is_reco:
        plan.exposure = exposure_full[:, fys, fxs]
    plan.exposure_factors = _factor_exposure(plan.exposure)
    if kernel is None:
        return plan
    n = kernel.shape[-1]
    fft_shape = (_even_fast_len(fys.stop - fys.start + n - 1), _even_fast_len(fxs.stop - fxs.start + n - 1))
    if is_reco:
        basis = kernel
    else:
        # SVD basis of the true-energy kernels: one inverse FFT per basis kernel
        u_, s, vt = np.linalg.svd(kernel.reshape(kernel.shape[0], -1), full_matrices=False)
        keep = s > _SVD_RTOL * s[0]
        basis = vt[keep].reshape(-1, n, n)
        plan.kernel_coeff = u_[:, keep] * s[keep]
    kf = scipy.fft.rfft2(basis, s=fft_shape)
    plan.fft_shape = fft_shape
    plan.kernel_fft = (np.ascontiguousarray(kf.real), np.ascontiguousarray(kf.imag))
    # full-convolution index i is map pixel (flux start - half + i)
    plan.crop = (ys.start - (fys.start - half), xs.start - (fxs.start - half))
    return plan


#: per dataset, the last plan of each of its extended sources (`recent_extended_plan`)
_RECENT_PLANS = weakref.WeakKeyDictionary()


def recent_extended_plan(dataset, model, all_planes=False):
    """`extended_plan`, or the plan made for ``model`` on ``dataset`` last time if the source's
    evaluation region still lies inside that plan's flux region (moved and grown by at most
    `EXTENDED_MARGIN` in all) and the dataset holds the same IRF and mask objects.

    gammapy's evaluator likewise keeps a source's cutout and IRFs until it moves by more than its
    margin. The npred conveniences use this, so that ``dataset.npred()`` after a small change of
    the source reuses the plan's shapes and so the compiled function; likelihoods always plan at
    the model's values (`extended_plan`).
    """
    spatial = model.spatial_model
    position, radius = spatial.position, spatial.evaluation_radius
    if position is None or radius is None:
        return extended_plan(dataset, model, all_planes)
    plans = _RECENT_PLANS.setdefault(dataset, {})
    current = {id(m) for m in dataset.models or ()}
    for stale in [k for k in plans if k not in current]:  # models no longer on the dataset
        del plans[stale]
    key = (bool(all_planes), spatial._structure_key(),
           *(id(getattr(dataset, name, None)) for name in ("exposure", "psf", "edisp", "mask_safe", "mask_fit")))
    radius = float(Angle(radius).deg)
    entry = plans.get(id(model))
    if entry is not None and entry[0] == key:
        _, plan, position_0, radius_0 = entry
        if float(position.separation(position_0).deg) + max(radius - radius_0, 0.0) <= EXTENDED_MARGIN:
            return plan
    plan = extended_plan(dataset, model, all_planes)
    plans[id(model)] = (key, plan, position, radius)
    return plan


def forget_recent_plans(dataset):
    """Drop the plans `recent_extended_plan` keeps for ``dataset`` (its maps or IRFs changed)."""
    _RECENT_PLANS.pop(dataset, None)


def _factor_exposure(exposure):
    """``exposure (n_true, ny, nx) = a @ b`` with ``a (n_true, Q)``, ``b (Q, ny, nx)`` when the
    rank Q (singular values above 1e-10 of the largest) is below n_true, else None. A flat or
    separable exposure (simulations) has Q = 1: energy dispersion then acts on vectors, not maps."""
    n_true = exposure.shape[0]
    u_, s, vt = np.linalg.svd(exposure.reshape(n_true, -1), full_matrices=False)
    if s.size == 0 or s[0] == 0:
        return None
    keep = s > _SVD_RTOL * s[0]
    if keep.sum() >= n_true:
        return None
    return u_[:, keep] * s[keep], vt[keep].reshape((-1,) + exposure.shape[1:])


def _fft_convolve(images, plan):
    """Linear convolution of ``images`` (B, ny_f, nx_f) with the plan's kernels (K planes; B = 1
    or K), cropped to the output cutout: (max(B, K), ny, nx)."""
    n0, n1 = plan.fft_shape
    kr, ki = (_data(k) for k in plan.kernel_fft)
    b = images.type.shape[0]
    m = n1 // 2 + 1
    padded = pt.zeros((b, n0, n1))
    padded = pt.set_subtensor(padded[:, : images.shape[1], : images.shape[2]], images)
    spectrum = pt.specify_shape(pfft.rfft(padded), (b, n0, m, 2))
    re, im = spectrum[..., 0], spectrum[..., 1]
    product = pt.stack([re * kr - im * ki, re * ki + im * kr], axis=-1)
    out = pt.specify_shape(pfft.irfft(product), (max(b, _shape(plan.kernel_fft[0])[0]), n0, n1))
    r0, c0 = plan.crop
    return out[:, r0 : r0 + plan.ys.stop - plan.ys.start, c0 : c0 + plan.xs.stop - plan.xs.start]


def extended_npred(plan, data, pvals):
    """Predicted counts of one extended source on its cutout, (n_planes, ny, nx) tensor."""
    spatial, spectral = plan.model.spatial_model, plan.model.spectral_model
    flux = source_flux(spectral, plan.edges_true, pvals, data.energy_scale, data.area_scale)  # cm-2 s-1
    if spatial.tag[0] == "TemplateSpatialModel":
        # a template is a constant: its (frozen) position stays out of the graph
        fixed = (spatial.lon_0, spatial.lat_0)
        if any(not p.frozen for p in fixed):
            raise ModelError(f"model {plan.model.name!r}: a template's lon_0 and lat_0 must be frozen")
        pvals = {p: v for p, v in pvals.items() if not any(p is q for q in fixed)}
    lon, lat = plan.lon, plan.lat
    if spatial.tag[0] != "TemplateSpatialModel":  # a template needs numeric coordinates
        lon, lat = _data(lon), _data(lat)
    image = spatial.integrate_pixels(lon, lat, _data(plan.solid_angle), pvals)  # (ny_f, nx_f)
    image = pt.specify_shape(pt.as_tensor(image), _shape(plan.solid_angle))
    edisp = pt.as_tensor(plan.edisp)
    factors = plan.exposure_factors
    if plan.fft_shape is not None and not plan.kernel_is_reco:
        basis = _fft_convolve(image[None], plan)  # (n_basis, ny, nx)
        coeff = pt.as_tensor(plan.kernel_coeff)
        if factors is None:
            convolved = pt.tensordot(coeff, basis, axes=[[1], [0]])
            per_true = flux[:, None, None] * _data(plan.exposure) * convolved
            return pt.tensordot(edisp, per_true, axes=[[0], [0]])
        # sum_t E[t, r] flux[t] a[t, q] c[t, j] (b_q G_j): edisp on vectors, not maps
        a, b = pt.as_tensor(factors[0]), factors[1]
        weights = (flux[:, None] * a)[:, :, None] * coeff[:, None, :]  # (n_true, Q, J)
        n_maps = _shape(factors[0])[1] * _shape(plan.kernel_coeff)[1]
        weights = pt.tensordot(edisp, weights, axes=[[0], [0]]).reshape((plan.planes.size, n_maps))
        maps = (_data(b)[:, None] * basis[None]).reshape((n_maps,) + _shape(b)[1:])
        return pt.tensordot(weights, maps, axes=[[1], [0]])
    if factors is None:
        per_true = flux[:, None, None] * _data(plan.exposure) * image[None]
        reco = pt.tensordot(edisp, per_true, axes=[[0], [0]])  # (n_planes, ny_f, nx_f)
    else:
        a, b = pt.as_tensor(factors[0]), factors[1]
        weights = pt.tensordot(edisp, flux[:, None] * a, axes=[[0], [0]])  # (n_planes, Q)
        reco = pt.tensordot(weights, _data(b) * image[None], axes=[[1], [0]])
    if plan.fft_shape is None:
        return reco
    return _fft_convolve(pt.specify_shape(reco, (plan.planes.size,) + _shape(plan.solid_angle)), plan)
