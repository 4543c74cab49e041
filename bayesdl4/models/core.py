"""Model base class: parameters declared once, formulas written once with ``pytensor.tensor``.

A model's formula receives tensors in *canonical units* (the unit of each default parameter;
energies in TeV). ``param_tensors(pvals)`` gives those tensors: the entry of ``pvals``
(a dict ``Parameter -> tensor`` in the parameter's own unit, built by `bayesdl4.inference`) when
there is one, else a constant of the current value; a unit conversion factor is applied if the
user gave another unit.
"""

import numpy as np
import pytensor.tensor as pt
from astropy import units as u

from ..compiled import compile_function
from ..errors import ModelError
from .parameter import Parameter, Parameters, parameter_to_dict

__all__ = ["ModelBase", "compile_numpy"]


class ModelBase:
    """Base of spectral / spatial / background models.

    Subclasses set ``tag`` (gammapy's type names, the first is written to YAML) and
    ``default_parameters`` (a list of `Parameter`; their units are the canonical units).
    """

    tag = ()
    default_parameters = ()

    def __init__(self, **kwargs):
        params = []
        for default in self.default_parameters:
            par = default.copy()
            if default.name in kwargs:
                value = kwargs.pop(default.name)
                if isinstance(value, str):
                    value = u.Quantity(value)
                if isinstance(value, Parameter):
                    par = value
                elif isinstance(value, u.Quantity):
                    par.unit = value.unit if value.unit.physical_type == default.unit.physical_type else par.unit
                    par.value = float(value.to_value(par.unit))
                    par.autoscale()
                else:
                    par.value = float(value)
                    par.autoscale()
            params.append(par)
        if kwargs:
            raise ModelError(
                f"{type(self).__name__}: unknown parameter(s) {sorted(kwargs)}; "
                f"known: {[p.name for p in self.default_parameters]}"
            )
        self._parameters = params
        for default, par in zip(self.default_parameters, params, strict=True):
            canonical = default.unit
            try:
                par.unit.to(canonical)
            except u.UnitConversionError as exc:
                raise ModelError(
                    f"{type(self).__name__}.{default.name}: unit {par.unit} is not convertible to {canonical}"
                ) from exc

    @classmethod
    def _default(cls, name):
        for par in cls.default_parameters:
            if par.name == name:
                return par
        raise KeyError(name)

    def __getattr__(self, name):
        # only called when normal lookup fails: expose parameters as attributes
        if name.startswith("_"):
            raise AttributeError(name)
        params = self.__dict__.get("_parameters", ())
        for slot, par in zip((p.name for p in self.default_parameters), params, strict=False):
            if slot == name:
                return par
        raise AttributeError(f"{type(self).__name__} has no attribute or parameter {name!r}")

    def __setattr__(self, name, value):
        params = self.__dict__.get("_parameters")
        if params is not None and isinstance(value, Parameter):
            for i, default in enumerate(self.default_parameters):
                if default.name == name:
                    params[i] = value  # linking: the slot keeps its name, the object may carry another
                    return
        super().__setattr__(name, value)

    @property
    def parameters(self):
        """All parameters of this model (own and of sub-models)."""
        return Parameters(self._parameters)

    @property
    def type(self):
        return self.tag[0]

    def param_tensors(self, pvals=None):
        """Dict ``name -> tensor`` in canonical units for this model's own parameters."""
        pvals = pvals or {}
        out = {}
        for slot, par in self._slots():
            factor = par.unit.to(self._default(slot).unit)
            value = pvals.get(par)
            if value is None:
                value = pt.constant(par.value, dtype="float64")
            out[slot] = value * factor if factor != 1 else value
        return out

    def _slots(self):
        """(slot name, Parameter) pairs; a linked Parameter may carry another name than its slot."""
        return zip((p.name for p in self.default_parameters), self._parameters, strict=True)

    def copy(self):
        """Deep copy with new Parameter objects."""
        memo = {}
        kwargs = {}
        for slot, par in self._slots():
            kwargs[slot] = memo.setdefault(id(par), par.copy())  # shared stays shared
        return self._from_parameters(kwargs)

    def _from_parameters(self, kwargs):
        return type(self)(**kwargs)

    def to_dict(self):
        """gammapy's YAML dict ``{type, parameters}``."""
        parameters = []
        for slot, par in self._slots():
            entry = parameter_to_dict(par, self._default(slot))
            entry["name"] = slot
            parameters.append(entry)
        return {"type": self.tag[0], "parameters": parameters}

    def __repr__(self):
        pars = ", ".join(f"{p.name}={p.value:.4g}" for p in self._parameters)
        return f"{type(self).__name__}({pars})"

    def _structure_key(self):
        """What the graphs of this model depend on besides parameter values (subclasses)."""
        return (type(self).__name__,)

    def _compiled(self, kind, build):
        """A numpy convenience compiled once per model structure and ``kind``: ``build(pvals)``
        returns ``(inputs, output)``; the vector of the unique parameters' values is appended as
        the last input. Returns (function, that vector at the current values)."""
        params = list(self.parameters)
        unique = list(self.parameters.unique())
        links = tuple(next(i for i, q in enumerate(unique) if q is p) for p in params)

        def make():
            pv = pt.dvector("parameters")
            inputs, output = build({p: pv[i] for i, p in enumerate(unique)})
            return [*inputs, pv], output

        fn = compile_numpy((kind, self._structure_key(), links), make)
        return fn, np.array([p.value for p in unique], dtype="float64")


_COMPILED = {}


def compile_numpy(key, build):
    """Compile (once per hashable ``key``) a PyTensor function; ``build()`` returns ``(inputs, output)``.

    Used by the numpy conveniences of models (plots, simulation), so that the numbers a user
    sees come from the same graph the likelihood uses.
    """
    if key not in _COMPILED:
        _COMPILED[key] = _make(build)
    return _COMPILED[key]


def _make(build):
    inputs, output = build()
    if isinstance(output, list | tuple):
        return compile_function(inputs, list(output), mode="FAST_COMPILE", disk_cache=False, trust_input=False)
    function = compile_function(inputs, [output], mode="FAST_COMPILE", disk_cache=False, trust_input=False)
    return lambda *args: function(*args)[0]

