"""``FluxPointsDataset``: flux points with the models that predict them (gammapy's, 2.1).

The likelihood compares each point's ``dnde`` with the sum of the sources' spectra at its
reference energy; ``stat_type`` chooses gammapy's statistic (``chi2``, ``distrib`` or
``profile``, see `bayesdl4.graph.flux_points`). Which points enter:

- ``mask_valid`` (from the stat type, as gammapy): ``chi2``: points that are not upper limits
  and have a finite ``dnde``; ``distrib``: upper limits with a finite limit and points with a
  finite ``dnde``; ``profile``: points whose ``stat_scan`` and ``stat`` are finite;
- ``mask_safe`` = the given safe mask (default: all points) ``& mask_valid``;
- ``mask`` = ``mask_safe & mask_fit``: the points ``stat_sum`` adds up.

Evaluation (``stat_array``, ``stat_sum``) uses the formulas of the graph builder on numpy.
It derives from the datasets' base `~bayesdl4.datasets.base.Dataset` (name, models, YAML entry,
copies); what needs counts (``npred``, stacking, slicing, ``fake``, count plots) raises
`ModelError`.
"""

import numpy as np
from astropy import units as u

from ..errors import DataFormatError, ModelError
from ..stats.flux_points import ProfileSpline, interpolate_profile
from .base import Dataset
from .flux_points import FluxPoints

__all__ = ["FluxPointsDataset"]

STAT_TYPES = ("chi2", "distrib", "profile")
DNDE_UNIT = u.Unit("cm-2 s-1 TeV-1")


def _count_only(name):
    def method(self, *args, **kwargs):
        raise ModelError(f"dataset {self.name!r}: {name}() needs counts; a FluxPointsDataset holds "
                         "flux points (use flux_pred, stat_array, residuals)")

    method.__name__ = name
    method.__doc__ = "Not defined for flux points (count datasets only): raises `ModelError`."
    return method


class FluxPointsDataset(Dataset):
    """Flux points and the models fitted to them.

    Parameters
    ----------
    models : `~bayesdl4.models.Models`, `~bayesdl4.models.SkyModel` or list, optional
        Only the spectral part of each source is used.
    data : `~bayesdl4.datasets.flux_points.FluxPoints`
        Flux points with one energy axis (no time bins).
    mask_fit, mask_safe : array of bool, shape ``(n_points,)``, optional
    name : str, optional
    meta_table : `~astropy.table.Table`, optional
    meta : dict, optional
        ``filenames``: the files the points were read from (for provenance records).
    stat_type : {"chi2", "distrib", "profile"}
        gammapy's statistics (module docstring); ``profile`` needs likelihood profiles.
    stat_kwargs : dict, optional
        ``interp_scale`` of the profiles: ``"sqrt"`` (default, gammapy's quadratic spline, C1)
        or ``"lin"``; ``extrapolate`` must be True (gammapy's default for ``profile``).
    """

    tag = "FluxPointsDataset"
    counts_maps = exposure_maps = irf_attributes = derived_attributes = ()
    for _name in ("npred", "npred_signal", "npred_background", "stack", "to_masked", "slice_by_idx",
                  "slice_by_energy", "resample_energy_axis", "to_image", "downsample", "fake",
                  "info_dict", "plot_residuals", "plot_masks", "peek"):
        locals()[_name] = _count_only(_name)
    del _name

    def __init__(self, models=None, data=None, mask_fit=None, mask_safe=None, name=None,
                 meta_table=None, stat_type="chi2", stat_kwargs=None, meta=None):
        if not isinstance(data, FluxPoints):
            raise DataFormatError(
                f"FluxPointsDataset: data must be FluxPoints, got {type(data).__name__}"
            )
        if data.time_min is not None:
            raise DataFormatError(
                f"{data.source}: a FluxPointsDataset needs SED points (one energy axis); these have "
                "time bins (a light curve): select one time bin"
            )
        self.name = str(name) if name is not None else "flux_points"
        self.data = data
        self.meta_table = meta_table
        self.meta = dict(meta or {})
        n = data.energy_ref.size
        self.mask_fit = self._check_mask("mask_fit", mask_fit, n)
        safe = self._check_mask("mask_safe", mask_safe, n)
        self._mask_safe = np.ones(n, dtype=bool) if safe is None else safe
        self.stat_kwargs = dict(stat_kwargs or {})
        self.stat_type = stat_type
        self.models = models

    def _check_mask(self, name, mask, n):
        if mask is None:
            return None
        mask = np.asarray(getattr(mask, "data", mask))
        if mask.shape != (n,) or mask.dtype.kind not in "biu":
            raise DataFormatError(
                f"dataset {self.name!r}: {name} must be a boolean array of shape ({n},), got "
                f"{mask.dtype} {mask.shape}"
            )
        return mask.astype(bool)

    # ------------------------------------------------------------------ statistic and masks
    @property
    def stat_type(self):
        return self._stat_type

    @stat_type.setter
    def stat_type(self, stat_type):
        if stat_type not in STAT_TYPES:
            raise ModelError(f"dataset {self.name!r}: stat_type must be one of {STAT_TYPES}, "
                             f"got {stat_type!r}")
        fp = self.data
        self._profile = None
        if stat_type == "chi2":
            valid = ~fp.is_ul & np.isfinite(fp.dnde.value)
            zero = np.zeros_like(valid)
        elif stat_type == "distrib":
            ul = _values(fp, "dnde_ul")
            valid = (fp.is_ul & np.isfinite(ul)) | np.isfinite(fp.dnde.value)
            zero = fp.is_ul & ~np.isfinite(ul)  # gammapy: NaN terms count 0
        else:
            self.stat_kwargs.setdefault("interp_scale", "sqrt")
            self.stat_kwargs.setdefault("extrapolate", True)
            if not self.stat_kwargs["extrapolate"]:
                raise ModelError(f"dataset {self.name!r}: stat_kwargs extrapolate=False gives NaN "
                                 "outside the scans; only extrapolate=True is supported")
            missing = [c for c in ("stat_scan", "stat") if c not in fp.available_quantities]
            if missing:
                raise DataFormatError(f"{fp.source}: stat_type 'profile' needs likelihood profiles; "
                                      f"the points have no column {missing[0]!r}")
            self._profile = _profile_spline(fp, self.stat_kwargs["interp_scale"])
            valid, zero = self._profile[1], np.zeros(fp.energy_ref.size, dtype=bool)
        self._stat_type = stat_type
        self._mask_valid, self._mask_zero = valid, zero

    @property
    def mask_valid(self):
        """Points the stat type can use (module docstring)."""
        return self._mask_valid

    @property
    def mask_zero(self):
        """Valid points whose term is 0 whatever the model (gammapy's NaN -> 0)."""
        return self._mask_zero

    @property
    def profile_spline(self):
        """`~bayesdl4.stats.ProfileSpline` of every point (stat_type ``profile``)."""
        if self._profile is None:
            raise ModelError(f"dataset {self.name!r}: profiles are interpolated for stat_type 'profile'")
        return self._profile[0]

    @property
    def mask_safe(self):
        return self._mask_safe & self.mask_valid

    @mask_safe.setter
    def mask_safe(self, mask):
        mask = self._check_mask("mask_safe", mask, self.data.energy_ref.size)
        self._mask_safe = np.ones(self.data.energy_ref.size, dtype=bool) if mask is None else mask

    @property
    def mask(self):
        """Points in the likelihood: ``mask_safe & mask_fit``."""
        return self.mask_safe if self.mask_fit is None else self.mask_safe & self.mask_fit

    # ------------------------------------------------------------------ evaluation
    @property
    def data_shape(self):
        return self.data.energy_ref.shape

    @property
    def gti(self):
        return self.data.gti

    def flux_pred(self):
        """Sum of the sources' dnde at the points' reference energies (Quantity, cm-2 s-1 TeV-1)."""
        from ..graph.flux_points import sources

        total = np.zeros(self.data.energy_ref.size)
        for model in sources(self):
            total = total + model.spectral_model(self.data.energy_ref).to_value(DNDE_UNIT)
        return u.Quantity(total, DNDE_UNIT)

    def stat_array(self):
        """Per-point ``-2 ln L`` (gammapy's convention); NaN where ``mask_valid`` is False."""
        from ..graph.flux_points import point_arrays, point_stat

        index, arrays = point_arrays(self, all_points=True)
        out = np.full(self.data.energy_ref.size, np.nan)
        out[self.mask_zero] = 0.0
        model = self.flux_pred().to_value(DNDE_UNIT)[index]
        out[index] = point_stat(self.stat_type, arrays, model)
        return out

    def stat_sum(self):
        """``stat_array`` summed over ``mask`` (gammapy's ``stat_sum``)."""
        return float(np.sum(self.stat_array()[self.mask]))

    def residuals(self, method="diff"):
        """dnde - model (``"diff"``) or (dnde - model) / model (``"diff/model"``), in cm-2 s-1 TeV-1
        (dimensionless); NaN at upper limits."""
        model = self.flux_pred().to_value(DNDE_UNIT)
        data = self.data.dnde.to_value(DNDE_UNIT)
        if method == "diff":
            out = data - model
        elif method == "diff/model":
            with np.errstate(divide="ignore", invalid="ignore"):
                out = (data - model) / model
        else:
            raise ValueError(f"unknown residual method {method!r}; use 'diff' or 'diff/model'")
        out[self.data.is_ul] = np.nan
        return out

    # ------------------------------------------------------------------ I/O
    @classmethod
    def read(cls, filename, name=None, stat_type="chi2"):
        """Read a file written by ``FluxPointsDataset.write`` (gammapy's), or any flux points file."""
        from ..io.flux_points import read_flux_points_dataset

        return read_flux_points_dataset(filename, name=name, dataset_class=cls, stat_type=stat_type)

    def write(self, filename, overwrite=False):
        """Write as gammapy 2.1: flux points table + ``mask_fit`` / ``mask_safe`` columns."""
        from ..io.flux_points import write_flux_points_dataset

        return write_flux_points_dataset(self, filename, overwrite=overwrite)

    # ------------------------------------------------------------------ plots
    def plot_fit(self, posterior=None, **kwargs):
        """SED with the posterior band and MAP curve, residuals below (`bayesdl4.plotting.sed`)."""
        from ..plotting.sed import plot_sed

        return plot_sed(self, posterior=posterior, **kwargs)

    def __repr__(self):
        n = int(self.mask.sum())
        return (f"FluxPointsDataset(name={self.name!r}, stat_type={self.stat_type!r}, "
                f"points={self.data.energy_ref.size}, fitted={n})")


def _values(fp, name):
    try:
        return fp.get(name).value
    except AttributeError:
        return np.full(fp.energy_ref.size, np.nan)


def _profile_spline(fp, interp_scale):
    """(`ProfileSpline` of every point, valid mask): gammapy's ``|stat_scan - stat|``."""
    with np.errstate(invalid="ignore"):
        scan = np.abs(np.asarray(fp.stat_scan, float) - np.asarray(fp.stat, float)[:, None])
    valid = np.all(np.isfinite(scan), axis=-1) & np.all(np.isfinite(fp.norm_scan), axis=-1)
    spline = interpolate_profile(fp.norm_scan[valid], scan[valid], interp_scale=interp_scale)
    full = np.zeros((6, scan.shape[0], spline.origin.shape[1]))
    full[:, valid] = np.asarray(spline.arrays)
    return ProfileSpline(*full), valid
