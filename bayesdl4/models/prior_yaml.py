"""Priors in the models YAML: gammapy 2.1's ``prior:`` entries read into `bayesdl4.models.priors`
classes (unit conversion, named errors). Writing is each prior's own ``to_dict``."""

import math

from ..errors import ModelError
from .priors import (
    GaussianPrior,
    GeneralizedGaussianPrior,
    HalfNormalPrior,
    LogNormalPrior,
    LogUniformPrior,
    TruncatedNormalPrior,
    UniformPrior,
)

__all__ = ["PRIOR_REGISTRY", "prior_from_dict"]

PRIOR_REGISTRY = {cls.tag: cls for cls in (UniformPrior, LogUniformPrior, GaussianPrior, GeneralizedGaussianPrior,
                                          HalfNormalPrior, LogNormalPrior, TruncatedNormalPrior)}
#: parameters converted to the parameter's unit when the YAML gives another (not shape parameters)
_DIMENSIONAL = {"min", "max", "mu", "sigma"}


def prior_from_dict(data, unit=None, where="prior"):
    """Prior from gammapy's YAML form ``{type, parameters: [{name, value, unit}], weight}``.

    Parameters
    ----------
    data : dict
        A parameter's ``prior:`` entry (a `PopulationPrior` entry too).
    unit : str or `~astropy.units.Unit`, optional
        The parameter's unit. Prior parameters given in another unit are converted to it; an
        empty unit means the parameter's own (what gammapy writes). `LogNormalPrior` lives in
        log space: its ``mu`` given in unit ``U`` becomes ``mu + ln(U / unit)``.
    where : str
        Names the file, model and parameter in error messages.

    Raises
    ------
    ModelError
        An unknown type, entries that are not numbers, parameters the prior does not take or
        values it refuses (``sigma <= 0``, ``min >= max``, ...), units that do not convert.
    """
    if not isinstance(data, dict):
        raise ModelError(f"{where}: a prior must be a mapping such as {{type: GaussianPrior, parameters: "
                         f"[{{name: mu, value: 0}}, {{name: sigma, value: 1}}]}}, got {data!r}")
    if set(data) == {"prior"} and isinstance(data["prior"], dict):  # gammapy's Prior.to_dict() form
        data = data["prior"]
    kind = data.get("type")
    if kind == "PopulationPrior":
        from .population import PopulationPrior

        return PopulationPrior.from_dict(data, unit=unit, where=where)
    if kind not in PRIOR_REGISTRY:
        raise ModelError(f"{where}: unknown prior type {kind!r}; known: {sorted(PRIOR_REGISTRY) + ['PopulationPrior']}")
    entries = data.get("parameters") or []
    if not isinstance(entries, list):
        raise ModelError(f"{where}: {kind} 'parameters' must be a list of {{name, value, unit}} entries, "
                         f"got {entries!r}")
    values = {}
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str) or "value" not in entry:
            raise ModelError(f"{where}: {kind} parameter entries need a 'name' and a 'value', got {entry!r}")
        if entry["name"] in values:
            raise ModelError(f"{where}: {kind} parameter {entry['name']!r} is listed twice; keep one entry")
        values[entry["name"]] = _prior_value(kind, entry, unit, f"{where}: {kind}.{entry['name']}")
    if "weight" in data:
        values["weight"] = data["weight"]
    cls = PRIOR_REGISTRY[kind]
    try:
        return cls(**values)
    except TypeError as exc:
        raise ModelError(f"{where}: {kind} takes the parameters {list(cls._names)} (and a weight), "
                         f"got {sorted(values)}") from exc
    except ModelError as exc:
        raise ModelError(f"{where}: {exc}") from exc


def _prior_value(kind, entry, unit, where):
    """One prior parameter's value in the parameter's ``unit`` (see `prior_from_dict`)."""
    from astropy import units as u

    name, value = entry["name"], entry["value"]
    if isinstance(value, bool):
        raise ModelError(f"{where} must be a number, got {value!r}")
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ModelError(f"{where} must be a number, got {value!r}") from None
    entry_unit = entry.get("unit") or ""
    if not entry_unit:
        return value
    try:
        entry_unit = u.Unit(entry_unit)
    except (ValueError, TypeError) as exc:
        raise ModelError(f"{where}: {entry_unit!r} is not a unit") from exc
    lognormal_mu = kind == "LogNormalPrior" and name == "mu"
    if name in _DIMENSIONAL and (kind != "LogNormalPrior" or lognormal_mu):
        if unit is None:  # nothing to convert to: the value is taken in its own unit
            return value
        try:
            factor = entry_unit.to(unit)
        except u.UnitsError as exc:
            raise ModelError(f"{where} in {entry_unit} cannot be expressed in the parameter's unit "
                             f"{u.Unit(unit)}") from exc
        return value + math.log(factor) if lognormal_mu else value * factor
    try:  # shape parameters and LogNormalPrior's sigma are pure numbers
        return value * entry_unit.to(u.dimensionless_unscaled)
    except u.UnitsError as exc:
        raise ModelError(f"{where} is a pure number; its unit {entry_unit} is not dimensionless") from exc
