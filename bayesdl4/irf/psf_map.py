"""PSF maps (a radial PSF profile per energy on a coarse sky grid) and their PSF kernels
(`bayesdl4.irf.psf_kernel.PSFKernel`).

Reproduces gammapy 2.1's ``PSFMap`` / ``RecoPSFMap`` and ``PSFKernel`` numerically:

- the PSF at a sky position is interpolated *linearly* on the coarse grid (bilinear in pixel
  coordinates, log-linear in energy, linear in ``rad``), extrapolated beyond the outer pixel
  centres and clipped at zero, as ``WcsNDMap.interp_by_coord``;
- containment radii come from the cumulative profile, interpolated over (energy, rad, lat pixel,
  lon pixel) and searched on the ``rad`` axis upsampled 20 times (``PSF.containment_radius``);
- a kernel cuts each energy plane at its own 99.9 % containment radius, sizes the kernel from
  the largest radius over all planes, evaluates the PSF on sub-pixels (factor 1..4 from the 68 %
  radius), sums them back per pixel and normalises per plane (``PSFMap.get_psf_kernel``).

`PSFMap` derives from `bayesdl4.irf.core.IRFMap` (validation, the nearest valid position and
the I/O conveniences), the base shared with the energy-dispersion maps.
"""

from __future__ import annotations

import logging

import numpy as np
from astropy import units as u

from ..errors import DataFormatError, GeometryMismatchError
from ..maps import MapAxis, WcsGeom, WcsNDMap
from .core import IRFMap, irf_geom
from .psf_kernel import PSFKernel, _FineGrids, _odd_npix_geom

__all__ = ["IRFMap", "PSFMap", "PSFKernel", "RAD_AXIS_DEFAULT", "MIN_KERNEL_INTEGRAL"]

# a kernel plane whose PSF integrates over the kernel area to less than this fraction of the
# largest plane's integral is treated as empty (normalised PSFs give ~0.999 in every plane)
MIN_KERNEL_INTEGRAL = 1e-2

log = logging.getLogger(__name__)

PSF_MAX_OVERSAMPLING = 4  # gammapy's cap on the sub-pixel factor of a kernel plane
CONTAINMENT_RAD_UPSAMPLING = 20  # gammapy's upsampling of the rad axis for containment radii
RAD_AXIS_DEFAULT = MapAxis(np.linspace(0, 0.66, 67) * u.deg, name="rad", interp="lin")


# --------------------------------------------------------------------------------------
# interpolation helpers (reproducing scipy's RegularGridInterpolator with extrapolation)
# --------------------------------------------------------------------------------------
def _linear_weights(pix, n):
    """Lower index and weight of the upper neighbour for linear interpolation on pixels 0..n-1.

    Outside the grid the outer interval is extrapolated (scipy's ``fill_value=None``); a
    dimension of length one is ignored (index 0, weight 0), as gammapy's interpolator does.
    """
    pix = np.asarray(pix, dtype=float)
    if n == 1:
        return np.zeros(pix.shape, dtype=int), np.zeros(pix.shape)
    i0 = np.clip(np.floor(pix), 0, n - 2).astype(int)
    return i0, pix - i0


def _outside(coord, edges):
    """gammapy's ``MapAxis.coord_to_idx(clip=False) == -1``: below the first edge, above the last,
    or not finite (a value equal to the last edge counts as inside)."""
    with np.errstate(invalid="ignore"):
        return (coord < edges[0]) | (coord > edges[-1]) | ~np.isfinite(coord)


def _interp1d_extrapolate(x, y, xnew):
    """scipy's ``interp1d(kind="linear", fill_value="extrapolate")``, as gammapy's axis transforms."""
    from scipy.interpolate import interp1d

    return interp1d(x, y, kind=1, fill_value="extrapolate")(xnew)


def _upsampled_centers(axis: MapAxis, factor: int) -> np.ndarray:
    """Centres of gammapy's ``MapAxis.upsample(factor)`` (values in the axis unit, lin axes)."""
    scale, inverse = (np.log, np.exp) if axis.interp == "log" else (np.asarray, np.asarray)
    if axis.node_type == "edges":
        edges = axis.edges.value
        pix = _interp1d_extrapolate(scale(edges), np.arange(edges.size, dtype=float), scale(edges))
        pix = pix - 0.5
        pix_new = np.linspace(pix.min(), pix.max(), int(axis.nbin * factor) + 1)
        edges_new = inverse(
            _interp1d_extrapolate(np.arange(edges.size, dtype=float), scale(edges), pix_new + 0.5)
        )
        nodes_pix = np.arange(edges_new.size - 1, dtype=float) + 0.5
        return inverse(
            _interp1d_extrapolate(
                np.arange(edges_new.size, dtype=float), scale(edges_new), nodes_pix
            )
        )
    nodes = axis.center.value
    pix = _interp1d_extrapolate(scale(nodes), np.arange(nodes.size, dtype=float), scale(nodes))
    pix_new = np.linspace(pix.min(), pix.max(), int((axis.nbin - 1) * factor) + 1)
    return inverse(_interp1d_extrapolate(np.arange(nodes.size, dtype=float), scale(nodes), pix_new))


# --------------------------------------------------------------------------------------
# PSF map
# --------------------------------------------------------------------------------------
class PSFMap(IRFMap):
    """PSF on a coarse sky grid: density per solid angle vs ``rad`` and energy at each pixel.

    Parameters
    ----------
    psf_map : `~bayesdl4.maps.WcsNDMap`
        Axes ``(rad, energy_true)`` (the usual case) or ``(rad, energy)`` (a PSF in reconstructed
        energy, as HAWC's files, gammapy's ``RecoPSFMap``); data shape
        ``(n_energy, n_rad, ny, nx)``, unit ``sr-1`` (or ``deg-2``).
    exposure_map : `~bayesdl4.maps.WcsNDMap`, optional
        PSF exposure with the rad axis squashed, data shape ``(n_energy, 1, ny, nx)``.
    source : str, optional
        File and HDU, for error messages.

    Examples
    --------
    >>> psf = PSFMap.read("nHit-5.fits.gz")                       # doctest: +SKIP
    >>> kernel = psf.get_psf_kernel(counts_geom, position=crab)   # doctest: +SKIP
    >>> kernel.data.shape                                          # doctest: +SKIP
    (10, 117, 117)
    """

    required_axes = (("rad", "energy_true"), ("rad", "energy"))
    hdu_name = "PSF"
    kind = "PSF map"

    def __init__(self, psf_map: WcsNDMap, exposure_map: WcsNDMap | None = None, source=None):
        super().__init__(psf_map, exposure_map=exposure_map, source=source)
        try:
            (psf_map.unit * psf_map.geom.axes[0].unit ** 2).to("")
        except u.UnitConversionError as exc:
            raise DataFormatError(
                f"{self._where()}: PSF unit {psf_map.unit} is not a density per solid angle "
                "(sr-1 or deg-2)"
            ) from exc

    # properties -----------------------------------------------------------------------
    @property
    def psf_map(self) -> WcsNDMap:
        return self._irf_map

    @property
    def energy_name(self) -> str:
        """``"energy_true"``, or ``"energy"`` for a PSF in reconstructed energy."""
        return self.geom.axes[1].name

    @property
    def is_reco(self) -> bool:
        """True for a PSF in reconstructed energy (applied after energy dispersion)."""
        return self.energy_name == "energy"

    @property
    def energy_axis(self) -> MapAxis:
        return self.geom.axes[1]

    @property
    def rad_axis(self) -> MapAxis:
        return self.geom.axes[0]

    # construction ---------------------------------------------------------------------
    @classmethod
    def from_gauss(cls, energy_axis_true, rad_axis=None, sigma=0.1 * u.deg, geom=None):
        """Position-independent Gaussian PSF (gammapy's ``PSFMap.from_gauss``), for tests and examples.

        Parameters
        ----------
        energy_axis_true : `MapAxis`
            Energy axis (``energy_true``, or ``energy`` for a reco-energy PSF).
        rad_axis : `MapAxis`, optional
            Default 0..0.66 deg in 66 bins (gammapy's ``RAD_AXIS_DEFAULT``).
        sigma : angle or array of angles (one per energy)
        geom : `WcsGeom`, optional
            Image grid; default an all-sky 2 x 1 CAR grid.
        """
        rad_axis = RAD_AXIS_DEFAULT.copy() if rad_axis is None else rad_axis
        geom = irf_geom([rad_axis, energy_axis_true], geom)
        sigma = u.Quantity(sigma, "deg").to_value("rad").reshape((-1, 1, 1, 1))
        rad = rad_axis.center.to_value("rad").reshape((1, -1, 1, 1))
        data = np.exp(-0.5 * rad**2 / sigma**2) / (2 * np.pi * sigma**2) * np.ones(geom.data_shape)
        exposure = WcsNDMap(geom.squash("rad"), np.ones(geom.squash("rad").data_shape), unit="m2 s")
        return cls(WcsNDMap(geom, data, unit="sr-1"), exposure_map=exposure)

    # PSF values -----------------------------------------------------------------------
    def _spatial_weights(self, position):
        x, y = self.geom.to_image().coord_to_pix(position)
        ny, nx = self.geom.data_shape[-2:]
        (ix, tx), (iy, ty) = _linear_weights(x, nx), _linear_weights(y, ny)
        return [
            (int(iy) + dy, int(ix) + dx, (ty if dy else 1 - ty) * (tx if dx else 1 - tx))
            for dy in (0, 1)
            for dx in (0, 1)
            if (dy == 0 or ny > 1) and (dx == 0 or nx > 1)
        ]

    def psf_profile(self, energy, position=None) -> np.ndarray:
        """PSF at the ``rad`` axis nodes for each energy at ``position``, shape ``(n_energy, n_rad)``.

        Bilinear in the coarse sky pixels and linear in the energy axis' pixel coordinate (log
        energy), extrapolated and *not* clipped: `psf_value` interpolates this profile linearly
        in the ``rad`` pixel coordinate and clips at zero, which is gammapy's 4D interpolation.
        """
        position = self._position(position)
        energy = np.atleast_1d(u.Quantity(energy, self.energy_axis.unit))
        data = self.psf_map.data
        image = sum(w * data[:, :, iy, ix] for iy, ix, w in self._spatial_weights(position))
        e0, te = _linear_weights(self.energy_axis.coord_to_pix(energy), self.energy_axis.nbin)
        if self.energy_axis.nbin == 1:
            return image[e0]
        return image[e0] * (1 - te)[:, None] + image[e0 + 1] * te[:, None]

    def psf_value(self, rad, energy, position=None) -> u.Quantity:
        """PSF density at offsets ``rad`` for ``energy`` at the sky ``position`` (default: map centre).

        Interpolated on the coarse grid exactly as gammapy evaluates kernels (see `psf_profile`),
        clipped at zero. ``rad`` and ``energy`` broadcast; ``position`` is one sky position (the
        coarse grid is evaluated there, not at each offset).

        Returns
        -------
        value : `~astropy.units.Quantity`, unit of the PSF map
        """
        rad = u.Quantity(rad, self.rad_axis.unit)
        energy = u.Quantity(energy, self.energy_axis.unit)
        rad, energy = np.broadcast_arrays(rad, energy, subok=True)
        unique, inverse = np.unique(energy.value, return_inverse=True)
        profile = self.psf_profile(unique * energy.unit, position)  # (n_unique, n_rad)
        r0, tr = _linear_weights(self.rad_axis.coord_to_pix(rad), self.rad_axis.nbin)
        inverse = inverse.reshape(rad.shape)
        if self.rad_axis.nbin == 1:
            value = profile[inverse, r0]
        else:
            value = profile[inverse, r0] * (1 - tr) + profile[inverse, r0 + 1] * tr
        return u.Quantity(np.clip(value, 0, None), self.psf_map.unit)

    # containment ------------------------------------------------------------------------
    def _cumulative_interpolator(self):
        """gammapy's ``IRFLikePSF`` cumulative profile (nodes at the upper rad edges) and its
        scipy interpolator over (log energy, rad, lat pixel, lon pixel)."""
        from scipy.interpolate import RegularGridInterpolator

        rad, energy = self.rad_axis, self.energy_axis
        data = self.psf_map.data.astype(float)
        ny, nx = data.shape[-2:]
        shape = (1, -1, 1, 1)
        values = data * rad.bin_width.value.reshape(shape)
        values = 2 * np.pi * rad.center.value.reshape(shape) * values
        cumulative = values.cumsum(axis=1)
        nodes = rad.edges.value[1:]
        points = [
            np.log(energy.center.value),
            nodes,
            np.arange(ny, dtype=float),
            np.arange(nx, dtype=float),
        ]
        include = [p.size > 1 for p in points]
        interpolator = RegularGridInterpolator(
            [p for p, keep in zip(points, include, strict=True) if keep],
            np.squeeze(cumulative),
            bounds_error=False,
            fill_value=None,
        )
        node_edges = MapAxis.from_nodes(nodes, name="rad", interp=rad.interp).edges.value
        factor = (self.psf_map.unit * rad.unit**2).to("")
        return interpolator, include, node_edges, factor

    def _containment_at_radii(self, rad, energy, position):
        """Cumulative containment as gammapy's ``IRFLikePSF.containment`` (values, no unit)."""
        interpolator, include, rad_edges, factor = self._cumulative_interpolator()
        energy = u.Quantity(energy, self.energy_axis.unit).value
        x, y = self.geom.to_image().coord_to_pix(position)
        coords = np.broadcast_arrays(np.log(np.clip(energy, np.finfo(float).tiny, None)), rad, y, x)
        points = np.stack([c.ravel() for c, keep in zip(coords, include, strict=True) if keep]).T
        values = np.clip(interpolator(points).reshape(coords[0].shape), 0, None)
        ny, nx = self.geom.data_shape[-2:]
        outside = (
            _outside(np.broadcast_to(energy, coords[0].shape), self.energy_axis.edges.value)
            | _outside(coords[1], rad_edges)
            | _outside(coords[2], np.arange(ny + 1) - 0.5)
            | _outside(coords[3], np.arange(nx + 1) - 0.5)
        )
        values = np.where(outside | ~np.isfinite(values), 0.0, values)
        return values * factor

    def containment_radius(self, fraction, energy, position=None) -> u.Quantity:
        """Radius containing ``fraction`` of the PSF at ``energy`` and ``position`` (as gammapy).

        The cumulative profile is interpolated (linear in log energy between the energy nodes,
        in rad between the upper bin edges, bilinear in the coarse pixels) and the radius is the
        point of the 20 times upsampled ``rad`` axis closest to ``fraction``.

        Parameters
        ----------
        fraction : float or array
            Containment fraction in (0, 1).
        energy : `~astropy.units.Quantity`
            Energies (true or reconstructed, as the map), any shape broadcasting with ``fraction``.
        position : `~astropy.coordinates.SkyCoord`, optional
            Default: the map centre. Positions may be an array broadcasting with ``energy``.

        Returns
        -------
        radius : `~astropy.units.Quantity`, unit of the rad axis, the broadcast shape.
        """
        position = self.geom.center_skydir if position is None else position
        energy = u.Quantity(energy, self.energy_axis.unit)
        x, _ = self.geom.to_image().coord_to_pix(position)
        shape = np.broadcast_shapes(np.shape(energy), np.shape(x), np.shape(fraction))
        rad = _upsampled_centers(self.rad_axis, CONTAINMENT_RAD_UPSAMPLING)
        rad_column = rad.reshape((-1,) + (1,) * len(shape))
        containment = self._containment_at_radii(rad_column, energy, position)
        idx = np.argmin(np.abs(containment - np.asarray(fraction)), axis=0)
        return u.Quantity(rad[idx].reshape(shape), self.rad_axis.unit)

    def containment(self, rad, energy, position=None) -> u.Quantity:
        """Fraction of the PSF within ``rad`` at ``energy`` and ``position`` (gammapy's ``containment``).

        The cumulative sum over the rad bins (zero at the first edge) is interpolated linearly
        in pixel coordinates, held constant beyond the axis; dimensionless Quantity.
        """
        position = self._position(position)
        rad_axis = self.rad_axis
        rad = u.Quantity(rad, rad_axis.unit)
        energy = u.Quantity(energy, self.energy_axis.unit)
        rad, energy = np.broadcast_arrays(rad, energy, subok=True)
        data = self.psf_map.data.astype(float)
        shape = (1, -1, 1, 1)
        values = (
            2
            * np.pi
            * rad_axis.center.value.reshape(shape)
            * (data * rad_axis.bin_width.value.reshape(shape))
        )
        cumulative = np.insert(values.cumsum(axis=1), 0, 0, axis=1)
        cumulative = np.pad(cumulative, [(0, 0), (1, 1), (0, 0), (0, 0)], mode="edge")
        nodes_axis = MapAxis.from_nodes(rad_axis.edges, name="rad", interp=rad_axis.interp)
        padded = nodes_axis.pix_to_coord(np.arange(-1, nodes_axis.nbin + 1, dtype=float))
        padded_axis = MapAxis.from_nodes(padded, name="rad", interp=rad_axis.interp)

        image = sum(w * cumulative[:, :, iy, ix] for iy, ix, w in self._spatial_weights(position))
        e0, te = _linear_weights(self.energy_axis.coord_to_pix(energy), self.energy_axis.nbin)
        r0, tr = _linear_weights(padded_axis.coord_to_pix(rad), padded_axis.nbin)

        def at(ie):
            return image[ie, r0] * (1 - tr) + image[ie, r0 + 1] * tr

        value = at(e0) if self.energy_axis.nbin == 1 else at(e0) * (1 - te) + at(e0 + 1) * te
        return u.Quantity(value, self.psf_map.unit * rad_axis.unit**2).to("")

    # kernels ----------------------------------------------------------------------------
    def _upsampling_factors(self, geom, position, precision_factor):
        """Sub-pixel factor per plane: ceil(precision_factor / (2 r68 / pixel size)), at most 4."""
        energy = geom.axis(self.energy_name).center
        r68 = self.containment_radius(0.68, energy, position)
        binsz = geom.pixel_scales.max()
        factors = []
        for radius in np.atleast_1d(r68):
            base = (2 * radius / binsz).to_value("")
            with np.errstate(divide="ignore"):
                factor = np.ceil(precision_factor / base) if base > 0 else np.inf
            factors.append(int(min(factor, PSF_MAX_OVERSAMPLING)))
        return factors

    def get_psf_kernel(
        self,
        geom: WcsGeom,
        position=None,
        max_radius=None,
        containment=0.999,
        precision_factor=12,
        required_planes=None,
    ) -> PSFKernel:
        """PSF kernel for the pixel grid of ``geom`` at a sky position, as gammapy 2.1.

        Parameters
        ----------
        geom : `WcsGeom`
            Target geometry with the PSF's energy axis (``energy_true``: the exposure geometry;
            ``energy``: the counts geometry). Its pixel size, projection and centre define the
            kernel grid.
        position : `~astropy.coordinates.SkyCoord`, optional
            Where the PSF is taken (default: the PSF map centre); moved to the nearest pixel
            where the PSF is defined if it falls outside.
        max_radius : angle, optional
            Kernel half-width; default the largest ``containment`` radius over the PSF's energy
            planes. Plane radii above it are cut to it.
        containment : float
            Containment fraction that sets each plane's cut radius.
        precision_factor : int
            Sub-pixel sampling: ``factor = min(ceil(precision_factor / (2 r68 / binsz)), 4)``.
        required_planes : bool array (n_energy,), optional
            Planes that must give a normalisable kernel (e.g. the energy planes kept by the
            dataset's safe mask, see `required_planes`). Required planes that are empty, NaN
            or hold less than `MIN_KERNEL_INTEGRAL` of the largest plane's PSF integral raise
            `DataFormatError`.

        Returns
        -------
        kernel : `PSFKernel`, data shape ``(n_energy, n, n)`` with ``n`` odd.

        Notes
        -----
        gammapy pairs kernel plane ``i`` (energy ``i`` of ``geom``) with the cut radius of
        the PSF's own energy node ``i``; planes beyond the PSF's number of energies stay empty.
        This is reproduced (a warning says so) so that npred matches gammapy; it matters only
        when ``geom``'s energy axis differs from the PSF's. Planes where the PSF has no data
        (HAWC files leave the energies outside the safe range empty) give empty kernel planes
        (`PSFKernel.valid_planes`); if no plane can be normalised a `DataFormatError` is raised.
        """
        if not isinstance(geom, WcsGeom):
            raise GeometryMismatchError(
                f"get_psf_kernel needs a WcsGeom target geometry, got {type(geom).__name__}"
            )
        energy_axis = geom.axis(self.energy_name)
        if len(geom.axes) != 1:
            raise GeometryMismatchError(
                f"get_psf_kernel: the target geometry must have only the {self.energy_name!r} "
                f"axis, got {[a.name for a in geom.axes]}"
            )
        position = self._get_nearest_valid_position(self._position(position))

        radii = self.containment_radius(containment, self.energy_axis.center, position)
        if max_radius is None:
            max_radius = np.max(radii)
        else:
            max_radius = u.Quantity(max_radius)
            radii = np.where(radii > max_radius, max_radius, radii)

        factors = self._upsampling_factors(geom, position, precision_factor)
        kernel_geom = _odd_npix_geom(geom, max_radius, axes=[energy_axis.copy()])
        image_geom = kernel_geom.to_image()
        center = image_geom.center_skydir
        data = np.zeros(kernel_geom.data_shape)
        n_planes = min(radii.size, energy_axis.nbin)
        if energy_axis.nbin != radii.size:
            # harmless when the geometry has fewer planes (only the cut radii differ); planes
            # beyond the PSF's energies are left empty, which changes npred: say so
            log.log(
                logging.WARNING if energy_axis.nbin > radii.size else logging.DEBUG,
                "%s: the kernel geometry has %d %s bins but the PSF has %d; as gammapy, plane i "
                "is cut at the PSF's radius for its energy node i%s",
                self._where(),
                energy_axis.nbin,
                self.energy_name,
                radii.size,
                " and the planes beyond stay empty" if energy_axis.nbin > radii.size else "",
            )
        ny, nx = data.shape[-2:]
        # integral of the PSF over each plane's kernel area (in units of the PSF map x sr)
        integrals = np.zeros(energy_axis.nbin)
        fine_grids = _FineGrids(image_geom, center, radii[:n_planes], factors[:n_planes])
        for idx in range(n_planes):
            factor = factors[idx]
            rad, cy, cx, pixel_sr = fine_grids.separation(radii[idx], factor)
            values = self.psf_value(rad, energy_axis.center[idx], position).value
            # kernels are small: flat-sky pixel area is plenty for a threshold test
            integrals[idx] = np.sum(values) * pixel_sr
            block = values.reshape(cy, factor, cx, factor).sum(axis=(1, 3))
            oy, ox = (ny - cy) // 2, (nx - cx) // 2
            data[idx, oy : oy + cy, ox : ox + cx] += block

        kernel = PSFKernel(WcsNDMap(kernel_geom, data), normalize=True, source=self.source)
        self._check_kernel(kernel, required_planes, integrals)
        return kernel

    def _check_kernel(self, kernel, required_planes, integrals=None):
        valid = kernel.valid_planes
        if integrals is not None and np.nanmax(integrals, initial=0) > 0:
            # a plane interpolated next to an empty PSF node holds ~1e-4 of the others' integral
            # and would be normalised into a kernel from the neighbouring energy: as good as empty
            valid = valid & (integrals > MIN_KERNEL_INTEGRAL * np.nanmax(integrals))
        axis = kernel.energy_axis
        if required_planes is not None:
            required = np.asarray(required_planes, dtype=bool).ravel()
            if required.size != valid.size:
                raise GeometryMismatchError(
                    f"required_planes has {required.size} entries, the kernel {valid.size} planes"
                )
        else:
            required = (
                np.zeros(valid.size, dtype=bool) if valid.any() else np.ones(valid.size, bool)
            )
        bad = np.flatnonzero(required & ~valid)
        if bad.size:
            energies = ", ".join(f"{axis.center[i]:.4g}" for i in bad[:5])
            raise DataFormatError(
                f"{self._where()}: the PSF kernel does not normalise (empty, NaN or integral "
                f"below {MIN_KERNEL_INTEGRAL:g} of the largest plane's) in {self.energy_name} "
                f"plane(s) {bad.tolist()} "
                f"({energies}); the PSF has no data there: mask these energies (safe mask) or "
                "fix the PSF"
            )
        if not valid.all():
            log.debug(
                "%s: empty PSF kernel planes %s", self._where(), np.flatnonzero(~valid).tolist()
            )

    def required_planes(self, mask=None, edisp=None, exposure=None) -> np.ndarray:
        """Kernel planes a dataset's likelihood needs: pass to `get_psf_kernel(required_planes=)`.

        An empty (non-normalisable) kernel plane there would silently drop the source's flux.

        Parameters
        ----------
        mask : bool array (n_energy, ny, nx), optional
            The dataset's ``mask_safe & mask_fit``; None means every bin.
        edisp : array (n_energy_true, n_energy), optional
            Energy-dispersion matrix at the source (true-energy PSF only); None is diagonal.
        exposure : array (n_energy_true, ny, nx), optional
            Exposure (true-energy PSF only): planes without exposure predict nothing.

        Returns
        -------
        required : bool array over the kernel's energy planes: the dataset's reco planes for a
            reco-energy PSF, its true-energy planes (those of ``edisp`` / ``exposure``) otherwise
        """
        reco = None if mask is None else np.any(np.asarray(mask, dtype=bool), axis=(-2, -1))
        if self.is_reco:
            return np.ones(self.energy_axis.nbin, dtype=bool) if reco is None else reco
        if edisp is not None:
            edisp = np.asarray(edisp)
            required = (edisp if reco is None else edisp[:, reco]).sum(axis=1) > 0
        elif reco is not None:
            required = reco.copy()  # no edisp: a diagonal response, true planes = reco planes
        else:
            n = self.energy_axis.nbin if exposure is None else np.shape(exposure)[0]
            required = np.ones(n, dtype=bool)
        if exposure is not None:
            required &= np.any(np.asarray(exposure) > 0, axis=(-2, -1))
        return required
