"""``FluxPoints``: an SED (or a light curve of SEDs) held as norms of a reference spectrum.

As in gammapy 2.1 (``gammapy.estimators.FluxPoints``), every value is stored as a *norm*, its
ratio to a reference spectral model, and converted on request to the SED types

=========  ===================================  ===============================
SED type   quantity                             reference value per point
=========  ===================================  ===============================
dnde       dN/dE at ``energy_ref``              ``model(energy_ref)``
e2dnde     E^2 dN/dE at ``energy_ref``          ``energy_ref**2 model(energy_ref)``
flux       integral flux in the bin             ``model.integral(e_min, e_max)``
eflux      energy flux in the bin               ``model.energy_flux(e_min, e_max)``
norm       ratio to the reference model         1
=========  ===================================  ===============================

with the suffixes ``_err``, ``_errn``, ``_errp``, ``_ul`` and ``_sensitivity`` (e.g.
``fp.e2dnde_errp``, ``fp.flux_ul``). gammapy calls the norm SED type ``"likelihood"`` (that is the
``SED_TYPE`` of its files); both names are accepted here.

Facts of gammapy 2.1 kept here:

- With bin edges, the reference energy is the bin's log centre ``sqrt(e_min e_max)`` (an
  ``e_ref`` column is then not used); without edges it is ``e_ref``.
- dnde / e2dnde / flux / eflux points are converted with the reference model given, by default a
  power law of index 2 (amplitude 1e-12 cm-2 s-1 TeV-1 at 1 TeV); norm points read from a file
  take as reference the template ``(e_ref, ref_dnde)`` interpolated in log-log.
- ``is_ul``: the ``is_ul`` column, else ``sqrt_ts < 2`` (with TS and upper limits), else finite
  upper limits, else NaN norms. ``sqrt_ts`` without a column is ``sign(norm) sqrt(max(ts, 0))``.
- Where ``success`` is False, ``norm`` and ``norm_err`` read as NaN.

File formats (gammapy's ``gadf-sed`` and ``lightcurve`` tables, FITS and ECSV) live in
`bayesdl4.io.flux_points`.
"""

import copy
import logging

import numpy as np
from astropy import units as u

from ..errors import DataFormatError

__all__ = ["FluxPoints", "SED_TYPES", "DEFAULT_UNIT"]

log = logging.getLogger(__name__)

#: SED types, gammapy's names ("likelihood" holds norms; "norm" is accepted for it)
SED_TYPES = ("dnde", "e2dnde", "flux", "eflux", "likelihood")
DEFAULT_UNIT = {
    "dnde": u.Unit("cm-2 s-1 TeV-1"),
    "e2dnde": u.Unit("erg cm-2 s-1"),
    "flux": u.Unit("cm-2 s-1"),
    "eflux": u.Unit("erg cm-2 s-1"),
    "norm": u.dimensionless_unscaled,
}
SUFFIXES = ("", "_err", "_errn", "_errp", "_ul", "_sensitivity")
ERROR_SUFFIXES = ("_err", "_errn", "_errp")
#: quantities that do not depend on the SED type (gammapy's OPTIONAL_QUANTITIES_COMMON + scans)
COMMON_QUANTITIES = (
    "ts", "sqrt_ts", "npred", "npred_excess", "stat", "stat_null", "stat_scan",
    "dnde_scan_values", "niter", "is_ul", "counts", "success", "n_dof",
)  # fmt: skip


def canonical_sed_type(sed_type, source="flux points", column="SED_TYPE"):
    """gammapy's SED type name for ``sed_type`` ("norm" -> "likelihood"); DataFormatError if unknown."""
    if sed_type == "norm":
        return "likelihood"
    if sed_type not in SED_TYPES:
        raise DataFormatError(
            f"{source}: unknown SED type {sed_type!r} ({column}); use one of "
            f"{['norm', *SED_TYPES[:4]]} ('likelihood' is gammapy's name for 'norm')"
        )
    return sed_type


def sed_quantities(sed_type):
    """Names of the SED quantities of ``sed_type`` in gammapy's column order (norm for likelihood)."""
    prefix = "norm" if canonical_sed_type(sed_type) == "likelihood" else sed_type
    return [prefix + s for s in SUFFIXES]


def default_reference_model():
    """gammapy's default reference: a power law of index 2 (1e-12 cm-2 s-1 TeV-1 at 1 TeV)."""
    from ..models import PowerLawSpectralModel

    return PowerLawSpectralModel(index=2.0, amplitude="1e-12 cm-2 s-1 TeV-1", reference="1 TeV")


class FluxPoints:
    """Flux points: norms of a reference spectrum per energy bin (and per time bin).

    Use `from_sed` (values of any SED type) or `FluxPoints.read`; the constructor takes the
    norm-space arrays directly.

    Parameters
    ----------
    data : dict of str -> array
        ``norm`` (required), ``norm_err``, ``norm_errn``, ``norm_errp``, ``norm_ul``,
        ``norm_sensitivity`` (dimensionless, shape `shape`) and common quantities (``ts``,
        ``sqrt_ts``, ``is_ul``, ``success``, ``stat``, ``stat_null``, ``npred``, ``counts``, ...,
        shape `shape` plus an optional trailing axis; ``stat_scan``: shape ``shape + (n_scan,)``).
    energy_ref : `~astropy.units.Quantity`, shape ``(n_energy,)``
        Reference energies (replaced by ``sqrt(energy_min energy_max)`` when edges are given).
    energy_min, energy_max : `~astropy.units.Quantity`, optional
        Bin edges, shape ``(n_energy,)``; needed for the ``flux`` / ``eflux`` SED types.
    reference_model : `~bayesdl4.models.SpectralModel` or `~bayesdl4.models.SkyModel`, optional
        The spectrum the norms refer to; gammapy's default power law of index 2 if None.
    norm_scan : array, optional
        Norm values of ``stat_scan``, shape ``(n_scan,)`` or that of ``stat_scan``.
    meta : dict, optional
        ``sed_type_init`` (the SED type read or given), ``n_sigma_ul``, ``n_sigma``,
        ``sqrt_ts_threshold_ul``, and the file's header keywords.
    gti : `~astropy.table.Table`, optional
        Good time intervals (``START``, ``STOP`` with their ``MJDREF*`` keywords).
    time_min, time_max : `~astropy.time.Time`, optional
        Time bins of a light curve, shape ``(n_time,)``; arrays then have shape
        ``(n_time, n_energy)``.
    units : dict, optional
        Units of common quantities that carry one.
    source : str
        What the points came from (file name), for messages.
    """

    def __init__(self, data, energy_ref=None, energy_min=None, energy_max=None,
                 reference_model=None, norm_scan=None, meta=None, gti=None, time_min=None,
                 time_max=None, units=None, filter_success_nan=True, source="flux points"):
        self.source = str(source)
        self._set_energies(energy_ref, energy_min, energy_max)
        self.time_min, self.time_max = time_min, time_max
        n_time = () if time_min is None else (len(time_min),)
        self.shape = n_time + (self.energy_ref.size,)
        if reference_model is None:
            reference_model = default_reference_model()
        self.reference_model = getattr(reference_model, "spectral_model", reference_model)
        self.meta = dict(meta or {})
        self.meta.setdefault("sed_type_init", "likelihood")
        self.gti = gti
        self.units = dict(units or {})
        self.filter_success_nan = filter_success_nan
        if "norm" not in data:
            raise DataFormatError(f"{self.source}: flux points need norm values (column 'norm')")
        self._data = {}
        for name, values in data.items():
            self._data[name] = self._check_array(name, values)
        self.norm_scan = self._scan_axis(norm_scan) if "stat_scan" in self._data else norm_scan
        self._reference = None

    # ------------------------------------------------------------------ validation
    def _set_energies(self, energy_ref, energy_min, energy_max):
        if (energy_min is None) != (energy_max is None):
            raise DataFormatError(f"{self.source}: give both e_min and e_max, or neither")
        if energy_min is not None:
            lo, hi = u.Quantity(energy_min).ravel(), u.Quantity(energy_max).ravel()
            self._check_energy("e_min", lo)
            self._check_energy("e_max", hi.to(lo.unit))
            if lo.shape != hi.shape or np.any(hi.to_value(lo.unit) <= lo.value):
                raise DataFormatError(
                    f"{self.source}: columns e_min / e_max: every bin needs e_max > e_min"
                )
            centre = np.sqrt(lo.value * hi.to_value(lo.unit)) * lo.unit
            if energy_ref is not None:
                given = u.Quantity(energy_ref).ravel()
                if given.shape != centre.shape or not np.allclose(
                    given.to_value(lo.unit), centre.value, rtol=1e-6
                ):
                    log.warning(
                        "%s: column e_ref differs from the bins' log centres sqrt(e_min e_max); "
                        "the centres are used, as gammapy does", self.source,
                    )
            self.energy_min, self.energy_max, self.energy_ref = lo, hi.to(lo.unit), centre
        else:
            if energy_ref is None:
                raise DataFormatError(f"{self.source}: flux points need e_ref, or e_min and e_max")
            self.energy_ref = u.Quantity(energy_ref).ravel()
            self._check_energy("e_ref", self.energy_ref)
            self.energy_min = self.energy_max = None

    def _scan_axis(self, norm_scan):
        """``norm_scan`` broadcast to the shape of ``stat_scan`` (one scan per point)."""
        if norm_scan is None:
            raise DataFormatError(f"{self.source}: column 'stat_scan' needs 'norm_scan'")
        norm_scan = np.asarray(norm_scan, dtype=float)
        try:
            return np.broadcast_to(norm_scan, self._data["stat_scan"].shape).copy()
        except ValueError as exc:
            raise DataFormatError(
                f"{self.source}: column 'norm_scan' of shape {norm_scan.shape} does not match "
                f"'stat_scan' {self._data['stat_scan'].shape}"
            ) from exc

    def _check_energy(self, column, energy):
        if not energy.unit.is_equivalent(u.TeV):
            raise DataFormatError(
                f"{self.source}: column {column!r} has unit {energy.unit!r}, not an energy"
            )
        values = energy.value
        if values.size == 0 or not np.all(np.isfinite(values)) or np.any(values <= 0):
            raise DataFormatError(
                f"{self.source}: column {column!r} must hold positive finite energies"
            )
        if np.any(np.diff(values) <= 0):
            bad = np.flatnonzero(np.diff(values) <= 0) + 1
            raise DataFormatError(
                f"{self.source}: column {column!r} is not strictly increasing (at points "
                f"{bad[:10].tolist()}); sort the points by energy"
            )

    def _check_array(self, name, values):
        array = np.asarray(values)
        if array.shape[: len(self.shape)] != self.shape:
            raise DataFormatError(
                f"{self.source}: column {name!r} has shape {array.shape}, expected {self.shape} "
                "(points first)"
            )
        if name.endswith(ERROR_SUFFIXES) and np.any(array < 0):
            bad = np.flatnonzero(np.ravel(array) < 0)
            raise DataFormatError(
                f"{self.source}: column {name!r} has negative errors at points "
                f"{bad[:10].tolist()}; errors must be >= 0 (NaN marks a missing one)"
            )
        return array

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_sed(cls, sed_type, values, energy_ref=None, energy_min=None, energy_max=None,
                 reference_model=None, **kwargs):
        """Flux points from SED values of one type.

        Parameters
        ----------
        sed_type : {"dnde", "e2dnde", "flux", "eflux", "norm"}
        values : dict of str -> Quantity or array
            ``<sed_type>`` and any of ``<sed_type>_err``, ``_errn``, ``_errp``, ``_ul``,
            ``_sensitivity``, plus common quantities (``ts``, ``is_ul``, ``stat_scan``, ...).
        energy_ref, energy_min, energy_max : `~astropy.units.Quantity`
        reference_model : SpectralModel, optional
            Required for ``norm``; for the others the model the norms refer to (default: power
            law of index 2, as gammapy).
        **kwargs
            Passed to the constructor (``norm_scan``, ``meta``, ``gti``, ``time_min``, ...).
        """
        source = kwargs.pop("source", "flux points")
        sed_type = canonical_sed_type(sed_type, source, column="sed_type")
        names = sed_quantities(sed_type)
        if names[0] not in values:
            raise DataFormatError(f"{source}: SED type {sed_type!r} needs column {names[0]!r}")
        if sed_type == "likelihood" and reference_model is None:
            raise DataFormatError(
                f"{source}: norm flux points need a reference model: pass reference_model= "
                "(or, in a file, the columns 'ref_dnde' with 'e_ref')"
            )
        meta = dict(kwargs.pop("meta", None) or {})
        meta.setdefault("sed_type_init", sed_type)
        units = dict(kwargs.pop("units", None) or {})
        data = {}
        for name, value in values.items():
            if name in COMMON_QUANTITIES:
                if isinstance(value, u.Quantity) and value.unit != u.dimensionless_unscaled:
                    units[name] = value.unit
                data[name] = np.asarray(getattr(value, "value", value))
            elif name not in names:
                raise DataFormatError(
                    f"{source}: column {name!r} does not belong to SED type {sed_type!r} "
                    f"(expected {names} or {list(COMMON_QUANTITIES)})"
                )
        # the reference values need the energies: build with placeholder norms, then fill them in
        energies = energy_min if energy_min is not None else energy_ref
        n_energy = 0 if energies is None else u.Quantity(energies).size
        time_min = kwargs.get("time_min")
        shape = (() if time_min is None else (len(time_min),)) + (n_energy,)
        fp = cls({"norm": np.zeros(shape)}, energy_ref, energy_min, energy_max, reference_model,
                 meta=meta, units=units, source=source, **kwargs)
        for name in names:
            if name in values:
                norm = fp._to_norm(sed_type, values[name], name)
                data["norm" + name[len(names[0]):]] = fp._check_array(name, norm)
        fp._data = {}
        for name, value in data.items():
            fp._data[name] = fp._check_array(name, value)
        if "stat_scan" in data:
            fp.norm_scan = fp._scan_axis(kwargs.get("norm_scan"))
        return fp

    def _to_norm(self, sed_type, value, column):
        if sed_type == "likelihood":
            return np.asarray(u.Quantity(value).to_value(""), dtype=float)
        unit = DEFAULT_UNIT[sed_type]
        value = u.Quantity(value, unit) if not isinstance(value, u.Quantity) else value
        if not value.unit.is_equivalent(unit):
            raise DataFormatError(
                f"{self.source}: column {column!r} has unit {value.unit!r}, expected one "
                f"convertible to {unit}"
            )
        with np.errstate(invalid="ignore", divide="ignore"):
            return (value / self.reference_value(sed_type)).to_value("")

    # ------------------------------------------------------------------ reference values
    @property
    def is_convertible_to_flux_sed_type(self):
        """Whether ``flux`` / ``eflux`` are defined: they need the bin edges."""
        return self.energy_min is not None

    def reference_value(self, sed_type):
        """Reference SED value per energy bin (the value of norm 1), shape ``(n_energy,)``."""
        sed_type = "norm" if sed_type == "likelihood" else sed_type
        if sed_type == "norm":
            return u.Quantity(np.ones(self.energy_ref.size))
        if self._reference is None:
            self._reference = {}
        if sed_type not in self._reference:
            model = self.reference_model
            if sed_type == "dnde":
                value = model(self.energy_ref)
            elif sed_type == "e2dnde":
                value = model(self.energy_ref) * self.energy_ref**2
            elif sed_type in ("flux", "eflux"):
                if not self.is_convertible_to_flux_sed_type:
                    raise DataFormatError(
                        f"{self.source}: SED type {sed_type!r} needs the bin edges (columns "
                        "e_min, e_max), these points have only e_ref"
                    )
                method = model.integral if sed_type == "flux" else model.energy_flux
                value = method(self.energy_min, self.energy_max)
            else:
                canonical_sed_type(sed_type, self.source, column="sed_type")
            self._reference[sed_type] = value.to(DEFAULT_UNIT[sed_type])
        return self._reference[sed_type]

    # ------------------------------------------------------------------ quantities
    @property
    def available_quantities(self):
        return list(self._data)

    @property
    def sed_type_init(self):
        return self.meta.get("sed_type_init")

    @property
    def n_sigma_ul(self):
        return self.meta.get("n_sigma_ul")

    @property
    def sqrt_ts_threshold_ul(self):
        return self.meta.get("sqrt_ts_threshold_ul", 2)

    @property
    def has_ul(self):
        return "norm_ul" in self._data

    @property
    def has_any_ts(self):
        return "ts" in self._data or "sqrt_ts" in self._data

    @property
    def has_stat_profiles(self):
        return "stat_scan" in self._data

    @property
    def is_ul(self):
        """Boolean per point: the value is an upper limit (gammapy's rule, module docstring)."""
        return self._is_ul()

    def _is_ul(self):
        if "is_ul" in self._data:
            return self._data["is_ul"].astype(bool)
        if self.has_any_ts and self.has_ul:
            return self.sqrt_ts < self.sqrt_ts_threshold_ul
        if self.has_ul:
            return np.isfinite(self._data["norm_ul"])
        return np.isnan(self._data["norm"])

    @property
    def sqrt_ts(self):
        """sqrt(TS): the column, else ``sign(norm) sqrt(max(ts, 0))`` (as gammapy)."""
        return self._sqrt_ts()

    def _sqrt_ts(self):
        if "sqrt_ts" in self._data:
            return self._data["sqrt_ts"]
        ts = self._quantity("ts")
        with np.errstate(invalid="ignore"):
            root = np.sqrt(np.clip(ts, 0, None))
        return np.where(self._data["norm"] > 0, root, -root)

    def _quantity(self, name):
        if name not in self._data:
            raise AttributeError(f"{self.source}: quantity {name!r} is not defined on these points")
        value = self._data[name]
        if name in ("norm", "norm_err") and self.filter_success_nan and "success" in self._data:
            value = np.where(self._data["success"].astype(bool), value, np.nan)
        if name in self.units:
            return u.Quantity(value, self.units[name])
        return value

    def get(self, name):
        """Quantity ``name``: ``<sed type><suffix>`` (e.g. ``e2dnde_errn``, ``flux_ul``,
        ``dnde_ref``) as a Quantity in gammapy's default unit, or a common one (``ts``, ...)."""
        if name == "is_ul":
            return self._is_ul()
        if name == "sqrt_ts":
            return self._sqrt_ts()
        for prefix in ("norm", "dnde", "e2dnde", "flux", "eflux"):
            if name.startswith(prefix):
                suffix = name[len(prefix):]
                if suffix == "_ref":
                    return self.reference_value(prefix)
                if suffix in SUFFIXES:
                    norm = self._quantity("norm" + suffix)
                    if prefix == "norm":
                        return norm
                    return norm * self.reference_value(prefix)
        return self._quantity(name)

    def __getattr__(self, name):
        if name.startswith("_") or "_data" not in self.__dict__:
            raise AttributeError(name)
        return self.get(name)

    # ------------------------------------------------------------------ conveniences
    def copy(self):
        return copy.deepcopy(self)

    def to_table(self, sed_type=None, format=None):
        """gammapy's table of these points (see `bayesdl4.io.flux_points.flux_points_to_table`)."""
        from ..io.flux_points import flux_points_to_table

        return flux_points_to_table(self, sed_type=sed_type, format=format)

    @classmethod
    def from_table(cls, table, sed_type=None, format=None, reference_model=None, source="table"):
        """Flux points from a gammapy SED / light-curve table (`bayesdl4.io.flux_points`)."""
        from ..io.flux_points import flux_points_from_table

        return flux_points_from_table(table, sed_type=sed_type, format=format,
                                      reference_model=reference_model, source=source)

    @classmethod
    def read(cls, filename, sed_type=None, format=None, reference_model=None):
        """Read flux points from FITS or ECSV as gammapy 2.1 writes them."""
        from ..io.flux_points import read_flux_points

        return read_flux_points(filename, sed_type=sed_type, format=format,
                                reference_model=reference_model)

    def write(self, filename, sed_type=None, format=None, overwrite=False):
        """Write as gammapy 2.1 does: FITS (``FLUXPOINTS`` + ``GTI`` HDUs) or ECSV by suffix."""
        from ..io.flux_points import write_flux_points

        return write_flux_points(self, filename, sed_type=sed_type, format=format,
                                 overwrite=overwrite)

    def __repr__(self):
        times = "" if self.time_min is None else f", {len(self.time_min)} time bins"
        return (
            f"FluxPoints({self.energy_ref.size} points{times}, sed_type_init="
            f"{self.sed_type_init!r}, quantities={self.available_quantities})"
        )
