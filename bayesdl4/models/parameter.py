"""Model parameters: value with unit, sampling scale, bounds, frozen flag and prior."""

import logging

import numpy as np
from astropy import units as u

from ..errors import ModelError
from .population import PopulationPrior
from .prior_yaml import prior_from_dict
from .priors import FlatPrior, Prior, Restricted

__all__ = [
    "Parameter",
    "Parameters",
    "parameter_to_dict",
    "parameter_from_dict",
    "parameters_from_dict",
]

log = logging.getLogger(__name__)


def _autoscale(value):
    """Power of ten near |value|, so that value / scale is of order one (1 for 0)."""
    if value == 0 or not np.isfinite(value):
        return 1.0
    return float(10 ** np.floor(np.log10(abs(value))))


class Parameter:
    """One model parameter.

    Parameters
    ----------
    name : str
        Name within its model (``"amplitude"``, ``"index"``, ...).
    value : float or `~astropy.units.Quantity`
        Physical value; a Quantity is converted to ``unit``.
    unit : str or `~astropy.units.Unit`
        Unit of ``value``, ``min``, ``max`` and ``error``.
    scale : float, optional
        Samplers and optimisers see ``value / scale``; default: the power of ten nearest ``value``.
    min, max : float
        Hard bounds in ``unit`` (NaN = unbounded).
    frozen : bool
        Frozen parameters are constants in every graph.
    prior : `~bayesdl4.models.priors.Prior`, `~bayesdl4.models.PopulationPrior`, its YAML dict, a
        PyMC distribution (``pm.Normal.dist(...)``), a callable ``name -> random variable`` or None
        (no prior: flat within min / max, see `~bayesdl4.models.priors.restrict`).
    error : float
        1-sigma error in ``unit`` (set by fits).

    Parameters are compared and hashed by identity: the same Parameter object shared by two models
    is one parameter of the joint model (gammapy's way of linking parameters).
    """

    def __init__(self, name, value, unit="", scale=None, min=np.nan, max=np.nan, frozen=False,
                 prior=None, error=0.0, is_norm=False):
        self.name = name
        self.unit = u.Unit(unit)
        if isinstance(value, u.Quantity):
            try:
                value = value.to_value(self.unit)
            except u.UnitConversionError as exc:
                raise ModelError(f"parameter {name!r}: value {value} cannot be expressed in {self.unit}") from exc
        self.value = float(value)
        self.scale = float(scale) if scale is not None else _autoscale(self.value)
        self.min = float(u.Quantity(min, self.unit).value) if min is not None else np.nan
        self.max = float(u.Quantity(max, self.unit).value) if max is not None else np.nan
        self.frozen = bool(frozen)
        if isinstance(prior, dict):  # YAML: its values in this parameter's unit
            prior = prior_from_dict(prior, unit=self.unit, where=f"parameter {name!r}: prior")
        self.prior = prior
        self.error = float(error)
        self.is_norm = is_norm
        if np.isfinite(self.min) and np.isfinite(self.max) and self.min >= self.max:
            raise ModelError(f"parameter {name!r}: min ({self.min}) must be below max ({self.max})")

    @property
    def quantity(self):
        return self.value * self.unit

    @quantity.setter
    def quantity(self, value):
        self.value = float(u.Quantity(value, self.unit).to_value(self.unit))

    @property
    def factor(self):
        """The value in sampling space: ``value / scale``."""
        return self.value / self.scale

    def autoscale(self):
        """Reset ``scale`` to the power of ten nearest the current value."""
        self.scale = _autoscale(self.value)

    def copy(self):
        prior = self.prior.copy() if isinstance(self.prior, Prior) else self.prior
        new = Parameter(self.name, self.value, self.unit, self.scale, self.min, self.max,
                        self.frozen, prior, self.error, self.is_norm)
        return new

    def __repr__(self):
        flag = ", frozen" if self.frozen else ""
        return f"Parameter({self.name}={self.value:.6g} {self.unit}{flag})"


class Parameters:
    """An ordered list of parameters with lookup by name (the first one of that name)."""

    def __init__(self, parameters=()):
        self._parameters = list(parameters)

    def __iter__(self):
        return iter(self._parameters)

    def __len__(self):
        return len(self._parameters)

    def __getitem__(self, key):
        if isinstance(key, (int, np.integer, slice)):
            return self._parameters[key]
        for par in self._parameters:
            if par.name == key:
                return par
        names = [p.name for p in self._parameters]
        raise KeyError(f"no parameter named {key!r}; have {names}")

    def __contains__(self, item):
        return any(p is item for p in self._parameters)

    @property
    def names(self):
        return [p.name for p in self._parameters]

    @property
    def free_parameters(self):
        return Parameters([p for p in self._parameters if not p.frozen])

    @property
    def value(self):
        return np.array([p.value for p in self._parameters])

    def unique(self):
        """The same parameters with repeated objects (linked parameters) dropped."""
        seen, out = set(), []
        for par in self._parameters:
            if id(par) not in seen:
                seen.add(id(par))
                out.append(par)
        return Parameters(out)

    def __add__(self, other):
        return Parameters(list(self) + list(other))

    def __repr__(self):
        return "Parameters(\n" + "\n".join(f"  {p!r}" for p in self._parameters) + "\n)"


def _unit_string(unit):
    if unit == u.dimensionless_unscaled:
        return ""
    try:
        return unit.to_string("fits")
    except (ValueError, u.UnitsError):
        return unit.to_string()


def parameter_to_dict(par, default):
    """gammapy's compact YAML form: entries equal to the class default are left out."""
    data = {"name": par.name, "value": float(par.value)}
    if par.unit != u.dimensionless_unscaled or default.unit != u.dimensionless_unscaled:
        data["unit"] = _unit_string(par.unit)
    if par.error:
        data["error"] = float(par.error)
    prior, (lower, upper) = _prior_and_bounds(par)
    for key, value in (("min", lower), ("max", upper)):
        if np.isfinite(value):
            data[key] = float(value)
    if par.frozen != default.frozen:
        data["frozen"] = bool(par.frozen)
    if isinstance(prior, PopulationPrior):
        data["prior"] = prior.to_dict()
    elif isinstance(prior, Prior):
        entry = prior.to_dict()
        for item in entry["parameters"]:
            item.setdefault("unit", "")
        entry.setdefault("weight", 1)
        data["prior"] = entry
    elif prior is not None:
        log.warning(
            "parameter %r: its prior %r has no YAML form and is not written", par.name, prior
        )
    return data


def _prior_and_bounds(par):
    """(prior to write, (min, max) to write): a `FlatPrior` is no prior and a `Restricted` one its
    prior; the bounds either carries narrow ``min`` / ``max``, so that reading gives the same
    effective prior (`~bayesdl4.models.priors.restrict`)."""
    prior, lower, upper = par.prior, par.min, par.max
    narrowing = []
    if isinstance(prior, Restricted):
        prior, narrowing = prior.prior, [(prior.lower, prior.upper)]
    if isinstance(prior, FlatPrior):
        prior, narrowing = None, [*narrowing, prior.support]
    for bound_lower, bound_upper in narrowing:
        lower = bound_lower if np.isnan(lower) else max(lower, bound_lower)
        upper = bound_upper if np.isnan(upper) else min(upper, bound_upper)
    return prior, (lower, upper)


def parameters_from_dict(data, defaults, model_name, links=None):
    """The parameters of a model from its YAML dict (the ``parameters`` list), by name.

    Parameters
    ----------
    data : dict
        The model's YAML dict (``{type, parameters: [{name, value, ...}, ...]}``).
    defaults : list of `Parameter`
        The class defaults; a parameter left out takes its default (with a warning), an unknown
        one is ignored (with a warning).
    model_name : str
        Names the model in messages (e.g. ``"PowerLawSpectralModel"``).
    links : dict, optional
        ``label -> Parameter``, see `parameter_from_dict`.

    Returns
    -------
    dict
        ``{name: Parameter}`` in the order of ``defaults``.

    Raises
    ------
    ModelError
        ``parameters`` is not a list of mappings with a ``name``, a parameter is listed twice,
        or an entry is invalid (see `parameter_from_dict`).
    """
    entries = data.get("parameters") or []
    if not isinstance(entries, list):
        raise ModelError(
            f"{model_name}: 'parameters' must be a list of entries such as "
            f"{{name: index, value: 2.3}}, got {type(entries).__name__} {entries!r}"
        )
    by_name = {}
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise ModelError(
                f"{model_name}: parameters entry {index} must be a mapping with a 'name', got {entry!r}"
            )
        if entry["name"] in by_name:
            raise ModelError(
                f"{model_name}: parameter {entry['name']!r} is listed twice; keep one entry"
            )
        by_name[entry["name"]] = entry
    known = [p.name for p in defaults]
    unknown = sorted(set(by_name) - set(known))
    if unknown:
        log.warning("%s: ignoring unknown parameter(s) %s (known: %s)", model_name, unknown, known)
    kwargs = {}
    for default in defaults:
        if default.name in by_name:
            try:
                kwargs[default.name] = parameter_from_dict(by_name[default.name], default, links)
            except ModelError as exc:
                raise ModelError(f"{model_name}: {exc}") from exc
        else:
            log.warning(
                "%s: parameter %r not given, using default %s %s",
                model_name,
                default.name,
                default.value,
                default.unit,
            )
            kwargs[default.name] = default.copy()
    return kwargs


def _frozen_from_yaml(value, name):
    """``frozen`` must be a YAML boolean: ``bool("false")`` is True, so strings are refused."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    hint = ""
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        hint = f"; write frozen: {value.strip().lower()} without quotes"
    raise ModelError(
        f"parameter {name!r}: frozen must be true or false (a YAML boolean), got {value!r} "
        f"({type(value).__name__}){hint}"
    )


def parameter_from_dict(data, default, links=None):
    """Parameter from gammapy's YAML form; missing entries take the class default.

    ``links`` (``label -> Parameter``) makes entries with the same ``link`` label one object.
    ``frozen`` must be a YAML boolean (a string such as ``"false"`` raises `ModelError`).
    """
    label = data.get("link")
    if links is not None and label is not None and label in links:
        return links[label]
    unit = data.get("unit")
    unit = default.unit if unit is None else unit
    frozen = _frozen_from_yaml(data.get("frozen", default.frozen), default.name)
    try:
        par = Parameter(
            default.name,
            data.get("value", default.value),
            unit,
            min=_float_or_nan(data.get("min", default.min)),
            max=_float_or_nan(data.get("max", default.max)),
            frozen=frozen,
            prior=data.get("prior"),
            error=np.nan_to_num(_float_or_nan(data.get("error", 0.0))),
            is_norm=default.is_norm,
        )
    except (ValueError, TypeError) as exc:
        if isinstance(exc, ModelError):
            raise
        raise ModelError(f"parameter {default.name!r}: invalid entry {data} ({exc})") from exc
    if not par.unit.is_equivalent(default.unit):
        raise ModelError(
            f"parameter {default.name!r}: unit {par.unit} is not convertible to {default.unit}"
        )
    if links is not None and label is not None:
        links[label] = par
    return par


def _float_or_nan(value):
    if value is None:
        return np.nan
    return float(value)
