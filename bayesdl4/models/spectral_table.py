"""Tabulated spectral models: template spectra, piecewise norms and EBL absorption.

Tables are graph constants; the interpolation (piecewise linear, in the scales gammapy uses) is
written with ``pytensor.tensor`` so that gradients flow to the model parameters (the norms of
`PiecewiseNormSpectralModel`, ``redshift`` and ``alpha_norm`` of the EBL model).
"""

import logging
import os
from pathlib import Path

import numpy as np
import pytensor.tensor as pt
from astropy import units as u
from astropy.io import fits

from ..errors import DataFormatError, ModelError
from .parameter import Parameter
from .spectral import DNDE_UNIT, SpectralModel, _table_key

log = logging.getLogger(__name__)

__all__ = [
    "TemplateSpectralModel",
    "PiecewiseNormSpectralModel",
    "EBLAbsorptionNormSpectralModel",
    "EBL_DATA_BUILTIN",
    "interp_linear",
]

EBL_DATA_BUILTIN = {
    "franceschini": "$GAMMAPY_DATA/ebl/ebl_franceschini.fits.gz",
    "dominguez": "$GAMMAPY_DATA/ebl/ebl_dominguez11.fits.gz",
    "finke": "$GAMMAPY_DATA/ebl/frd_abs.fits.gz",
    "franceschini17": "$GAMMAPY_DATA/ebl/ebl_franceschini_2017.fits.gz",
    "saldana-lopez21": "$GAMMAPY_DATA/ebl/ebl_saldana-lopez_2021.fits.gz",
}


def interp_linear(x, xp, fp, extrapolate=True):
    """Piecewise-linear interpolation at tensor ``x`` of ``fp`` tabulated at sorted ``xp``.

    ``xp`` is a numpy array (n >= 2); ``fp`` (numpy or tensor) has ``n`` entries along its first
    axis. Outside ``xp`` the end segments are extended linearly (``extrapolate=True``, as
    scipy's ``RegularGridInterpolator(fill_value=None)``) or held constant (``False``, as
    ``np.interp``). The weights are smooth in ``x`` and linear in ``fp``; the segment index
    is an integer of ``x`` only.
    """
    xp = np.asarray(xp, dtype="float64")
    n = xp.size
    xp_t = pt.as_tensor_variable(xp)
    idx = pt.clip(pt.searchsorted(xp_t, x) - 1, 0, n - 2)
    x0, x1 = xp_t[idx], xp_t[idx + 1]
    weight = (x - x0) / (x1 - x0)
    if not extrapolate:
        weight = pt.clip(weight, 0.0, 1.0)
    fp = fp if not isinstance(fp, np.ndarray) else pt.as_tensor_variable(fp)
    return fp[idx] * (1.0 - weight) + fp[idx + 1] * weight


def _log_scale(values):
    """gammapy's LogScale: clip at the dtype's tiny, log in the input's precision, then float64."""
    values = np.asarray(values)
    dtype = values.dtype if np.issubdtype(values.dtype, np.floating) else np.float32
    tiny = np.finfo(dtype).tiny
    return np.log(np.clip(values, tiny, np.inf)).astype("float64")


def _resolve(filename):
    path = Path(os.path.expandvars(str(filename))).expanduser()
    if "$" in str(path):
        raise FileNotFoundError(
            f"{filename}: environment variable not set (e.g. GAMMAPY_DATA); set it or give a full path"
        )
    if not path.exists():
        raise FileNotFoundError(f"{filename}: file not found ({path})")
    return path


class TemplateSpectralModel(SpectralModel):
    """Spectrum tabulated at ``energy``; interpolated linearly in log(E) and log(values) (gammapy's
    default), extrapolated linearly in log-log. Has no parameters: multiply it by a norm model
    (``template * PowerLawNormSpectralModel()``) to fit its normalisation.

    Parameters
    ----------
    energy : `~astropy.units.Quantity`, shape ``(n,)``
        Node energies (increasing).
    values : `~astropy.units.Quantity` or array, shape ``(n,)``
        dnde (any unit convertible to cm-2 s-1 TeV-1) or dimensionless values at ``energy``.
    interp_kwargs : dict, optional
        ``values_scale`` ("log" or "lin") and ``extrapolate`` (default True).
    meta : dict, optional
    """

    tag = ("TemplateSpectralModel", "template")
    default_parameters = ()

    def __init__(self, energy, values, interp_kwargs=None, meta=None):
        self.energy = u.Quantity(energy, "TeV") if not isinstance(energy, u.Quantity) else energy
        self.values = u.Quantity(values)
        self.meta = {} if meta is None else dict(meta)
        self.interp_kwargs = dict(interp_kwargs or {})
        self._values_scale = self.interp_kwargs.get("values_scale", "log")
        self._extrapolate = self.interp_kwargs.get("extrapolate", True)
        if self._values_scale not in ("log", "lin"):
            raise ModelError(
                f"TemplateSpectralModel: values_scale must be 'log' or 'lin', got {self._values_scale!r}"
            )
        energy_tev = np.atleast_1d(self.energy.to_value(u.TeV)).astype("float64")
        if self.values.shape != self.energy.shape or energy_tev.ndim != 1:
            raise ModelError(
                f"TemplateSpectralModel: energy {self.energy.shape} and values {self.values.shape} "
                "must be 1D arrays of the same length"
            )
        if np.any(np.diff(energy_tev) <= 0):
            raise ModelError("TemplateSpectralModel: energies must be strictly increasing")
        if self.values.unit.is_equivalent(DNDE_UNIT):
            self.dnde_unit = DNDE_UNIT
        else:
            self.dnde_unit = self.values.unit
        values = self.values.to_value(self.dnde_unit)
        self._log_energy = np.log(energy_tev)
        self._table = (
            _log_scale(values) if self._values_scale == "log" else values.astype("float64")
        )
        super().__init__()
        self._key = _table_key(self._log_energy, self._table)

    def evaluate(self, energy):
        if self._log_energy.size == 1:
            value = np.exp(self._table[0]) if self._values_scale == "log" else self._table[0]
            return pt.ones_like(energy) * value
        x = pt.log(energy)
        y = interp_linear(x, self._log_energy, self._table, extrapolate=True)
        out = pt.exp(y) if self._values_scale == "log" else pt.maximum(y, 0.0)
        if not self._extrapolate:
            outside = (x < self._log_energy[0]) | (x > self._log_energy[-1])
            out = pt.switch(outside, np.nan, out)
        return out

    def _extra_key(self):
        return (self._key, self._values_scale, self._extrapolate, str(self.dnde_unit))

    def _breakpoints(self):
        return np.exp(self._log_energy)

    def _from_parameters(self, kwargs):
        return type(self)(self.energy, self.values, self.interp_kwargs, self.meta)

    def to_dict(self):
        data = super().to_dict()
        data["energy"] = {
            "data": np.asarray(self.energy.value, dtype=float).tolist(),
            "unit": str(self.energy.unit),
        }
        data["values"] = {
            "data": np.asarray(self.values.value, dtype=float).tolist(),
            "unit": str(self.values.unit),
        }
        return data

    @classmethod
    def from_dict(cls, data, links=None):
        try:
            energy = u.Quantity(data["energy"]["data"], data["energy"]["unit"])
            values = u.Quantity(data["values"]["data"], data["values"].get("unit", ""))
        except (KeyError, TypeError) as exc:
            raise ModelError(
                "TemplateSpectralModel: needs 'energy' and 'values' entries with 'data' and 'unit'"
            ) from exc
        return cls(energy=energy, values=values)


class PiecewiseNormSpectralModel(SpectralModel):
    """Norm interpolated between free ``norm_k`` at fixed ``energy`` nodes (held constant outside).

    ``interp="log"`` (default) interpolates log(norm) linearly in log(E), so norms must be > 0;
    ``"lin"`` interpolates linearly.
    """

    tag = ("PiecewiseNormSpectralModel", "piecewise-norm")
    dnde_unit = u.dimensionless_unscaled
    default_parameters = ()

    def __init__(self, energy, norms=None, interp="log"):
        energy = u.Quantity(energy, "TeV") if not isinstance(energy, u.Quantity) else energy
        if norms is None:
            norms = np.ones(len(energy))
        if len(norms) != len(energy):
            raise ModelError(
                f"PiecewiseNormSpectralModel: {len(norms)} norms for {len(energy)} energies"
            )
        if len(energy) < 2:
            raise ModelError("PiecewiseNormSpectralModel: needs at least 2 energy nodes")
        if interp not in ("log", "lin"):
            raise ModelError(
                f"PiecewiseNormSpectralModel: interp must be 'log' or 'lin', got {interp!r}"
            )
        self._energy = energy
        self._interp = interp
        self.default_parameters = tuple(
            Parameter(f"norm_{k}", 1.0, is_norm=True) for k in range(len(energy))
        )
        super().__init__(**{f"norm_{k}": norm for k, norm in enumerate(norms)})
        nodes = energy.to_value(u.TeV).astype("float64")
        self._nodes = np.log(nodes) if interp == "log" else nodes

    def _default(self, name):
        for par in self.default_parameters:
            if par.name == name:
                return par
        raise KeyError(name)

    @property
    def energy(self):
        return self._energy

    @property
    def norms(self):
        return np.array([p.value for p in self._parameters])

    def evaluate(self, energy, **norms):
        values = pt.stack([norms[f"norm_{k}"] for k in range(len(self._nodes))])
        if self._interp == "log":
            return pt.exp(
                interp_linear(pt.log(energy), self._nodes, pt.log(values), extrapolate=False)
            )
        return interp_linear(energy, self._nodes, values, extrapolate=False)

    def _extra_key(self):
        return (_table_key(self._nodes), self._interp)

    def _breakpoints(self):
        return np.exp(self._nodes) if self._interp == "log" else self._nodes

    def _from_parameters(self, kwargs):
        norms = [kwargs[f"norm_{k}"] for k in range(len(self._nodes))]
        return type(self)(self._energy, norms, self._interp)

    def to_dict(self):
        data = super().to_dict()
        data["energy"] = {
            "data": np.asarray(self._energy.value, dtype=float).tolist(),
            "unit": str(self._energy.unit),
        }
        data["interp"] = self._interp
        return data

    @classmethod
    def from_dict(cls, data, links=None):
        try:
            energy = u.Quantity(data["energy"]["data"], data["energy"]["unit"])
        except (KeyError, TypeError) as exc:
            raise ModelError(
                "PiecewiseNormSpectralModel: needs an 'energy' entry with 'data' and 'unit'"
            ) from exc
        defaults = [Parameter(f"norm_{k}", 1.0, is_norm=True) for k in range(len(energy))]
        kwargs = cls._parameters_from_dict(data, links, defaults=defaults)
        return cls(energy, [kwargs[p.name] for p in defaults], data.get("interp", "log"))


class EBLAbsorptionNormSpectralModel(SpectralModel):
    """EBL absorption ``exp(-alpha_norm tau(E, z))`` from a tabulated ``exp(-tau)``.

    As gammapy: log(absorption) is interpolated bilinearly in (redshift, log E) and
    extrapolated linearly outside the table; absorption is capped at 1. The interpolation is
    piecewise linear in ``redshift`` (gradients finite everywhere, kinks at the table nodes).

    Parameters
    ----------
    energy : `~astropy.units.Quantity`, shape ``(n_energy,)``
    param : array, shape ``(n_redshift,)``
        Redshift nodes (increasing).
    data : array, shape ``(n_redshift, n_energy)``
        Absorption ``exp(-tau)``.
    redshift, alpha_norm : float, Quantity or `Parameter`
        Both frozen by default (gammapy's defaults 0.1 and 1).
    """

    tag = ("EBLAbsorptionNormSpectralModel", "ebl-norm")
    dnde_unit = u.dimensionless_unscaled
    default_parameters = (
        Parameter("redshift", 0.1, frozen=True),
        Parameter("alpha_norm", 1.0, frozen=True),
    )

    def __init__(self, energy, param, data, redshift=0.1, alpha_norm=1.0, interp_kwargs=None):
        self.filename = None
        self.energy = u.Quantity(energy, "TeV") if not isinstance(energy, u.Quantity) else energy
        self.param = param
        self.data = np.asarray(u.Quantity(data).to_value(u.one))
        self.interp_kwargs = dict(interp_kwargs or {})
        param_values = np.asarray(u.Quantity(param).value).astype("float64")
        if self.data.shape != (param_values.size, self.energy.size):
            raise ModelError(
                f"EBLAbsorptionNormSpectralModel: data shape {self.data.shape} does not match "
                f"(n_param, n_energy) = ({param_values.size}, {self.energy.size})"
            )
        if param_values.size < 2 or self.energy.size < 2:
            raise ModelError(
                "EBLAbsorptionNormSpectralModel: needs at least 2 redshifts and 2 energies"
            )
        super().__init__(redshift=redshift, alpha_norm=alpha_norm)
        self._param = param_values
        # log of the energies in their own precision and unit (as gammapy), shifted to ln(TeV)
        energy_values = np.asarray(self.energy.value)
        self._log_energy = np.log(energy_values).astype("float64") + np.log(
            self.energy.unit.to(u.TeV)
        )
        self._log_values = _log_scale(self.data)
        self._key = _table_key(self._param, self._log_energy, self._log_values)

    def evaluate(self, energy, redshift, alpha_norm):
        row = interp_linear(redshift, self._param, self._log_values)
        log_absorption = interp_linear(pt.log(energy), self._log_energy, row)
        return pt.exp(alpha_norm * pt.minimum(log_absorption, 0.0))

    def _extra_key(self):
        return (self._key,)

    def _breakpoints(self):
        return np.exp(self._log_energy)

    def _from_parameters(self, kwargs):
        model = type(self)(
            self.energy, self.param, self.data, interp_kwargs=self.interp_kwargs, **kwargs
        )
        model.filename = self.filename
        return model

    @classmethod
    def read(cls, filename, redshift=0.1, alpha_norm=1.0, interp_kwargs=None):
        """Read an XSPEC-format table model (HDUs PARAMETERS, ENERGIES [keV], SPECTRA).

        ``filename`` may start with ``$GAMMAPY_DATA``; it is kept unexpanded for YAML output.
        """
        path = _resolve(filename)
        try:
            with fits.open(path) as hdul:
                param, idx = np.unique(
                    np.asarray(hdul["PARAMETERS"].data[0]["VALUE"]), return_index=True
                )
                energies = hdul["ENERGIES"].data
                energy_lo = np.asarray(energies["ENERG_LO"])
                energy_hi = np.asarray(energies["ENERG_HI"])
                data = np.asarray(hdul["SPECTRA"].data["INTPSPEC"])[idx, :]
        except (KeyError, IndexError) as exc:
            raise DataFormatError(
                f"{path}: not an XSPEC table model (needs HDUs PARAMETERS, ENERGIES, SPECTRA): {exc}"
            ) from exc
        energy = u.Quantity(np.sqrt(energy_lo * energy_hi), "keV")  # log centres, unit not stored
        model = cls(
            energy,
            param,
            data,
            redshift=redshift,
            alpha_norm=alpha_norm,
            interp_kwargs=interp_kwargs,
        )
        model.filename = str(filename)
        return model

    @classmethod
    def read_builtin(cls, reference="dominguez", redshift=0.1, alpha_norm=1.0, interp_kwargs=None):
        """Read one of gammapy's tables in ``$GAMMAPY_DATA/ebl`` (see `EBL_DATA_BUILTIN`)."""
        if reference not in EBL_DATA_BUILTIN:
            raise ModelError(f"unknown EBL model {reference!r}; known: {sorted(EBL_DATA_BUILTIN)}")
        return cls.read(EBL_DATA_BUILTIN[reference], redshift, alpha_norm, interp_kwargs)

    def to_dict(self):
        data = super().to_dict()
        if self.filename is not None:
            data["filename"] = str(self.filename)
        else:
            param = u.Quantity(self.param)
            data["energy"] = {
                "data": np.asarray(self.energy.value, dtype=float).tolist(),
                "unit": str(self.energy.unit),
            }
            data["param"] = {
                "data": np.asarray(param.value, dtype=float).tolist(),
                "unit": str(param.unit),
            }
            data["values"] = {"data": np.asarray(self.data, dtype=float).tolist(), "unit": ""}
        return data

    @classmethod
    def from_dict(cls, data, links=None):
        kwargs = cls._parameters_from_dict(data, links)
        filename = data.get("filename")
        if filename is not None:
            try:
                return cls.read(filename, **kwargs)
            except FileNotFoundError:
                for reference, builtin in EBL_DATA_BUILTIN.items():
                    if Path(builtin).name.split(".")[0] in str(filename):
                        log.info(
                            "EBL table %s not found, using the built-in %r", filename, reference
                        )
                        return cls.read_builtin(reference, **kwargs)
                raise
        try:
            energy = u.Quantity(data["energy"]["data"], data["energy"]["unit"])
            param = u.Quantity(data["param"]["data"], data["param"].get("unit", ""))
            values = u.Quantity(data["values"]["data"], data["values"].get("unit", ""))
        except (KeyError, TypeError) as exc:
            raise ModelError(
                "EBLAbsorptionNormSpectralModel: needs 'filename' or 'energy', 'param' and 'values'"
            ) from exc
        return cls(energy, param, values, **kwargs)
