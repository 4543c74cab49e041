"""Model base class: parameters declared once, formulas written once with ``pytensor.tensor``.

A model's formula receives tensors in *canonical units* (the unit of each default parameter;
energies in TeV). ``param_tensors(pvals)`` gives those tensors: the entry of ``pvals``
(a dict ``Parameter -> tensor`` in the parameter's own unit, built by `bayesdl4.inference`) when
there is one, else a constant of the current value; a unit conversion factor is applied if the
user gave another unit.
"""

import functools

import numpy as np
import pytensor
import pytensor.tensor as pt
from astropy import units as u

from ..errors import ModelError
from .parameter import Parameter, Parameters

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
        for par in params:
            canonical = self._default(par.name).unit
            try:
                par.unit.to(canonical)
            except u.UnitConversionError as exc:
                raise ModelError(
                    f"{type(self).__name__}.{par.name}: unit {par.unit} is not convertible to {canonical}"
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
        for par in self.__dict__.get("_parameters", ()):
            if par.name == name:
                return par
        raise AttributeError(f"{type(self).__name__} has no attribute or parameter {name!r}")

    def __setattr__(self, name, value):
        params = self.__dict__.get("_parameters")
        if params is not None and isinstance(value, Parameter):
            for i, par in enumerate(params):
                if par.name == name:
                    params[i] = value
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
        for par in self._parameters:
            factor = par.unit.to(self._default(par.name).unit)
            value = pvals.get(par)
            if value is None:
                value = pt.constant(par.value, dtype="float64")
            out[par.name] = value * factor if factor != 1 else value
        return out

    def copy(self):
        """Deep copy with new Parameter objects."""
        kwargs = {p.name: p.copy() for p in self._parameters}
        return self._from_parameters(kwargs)

    def _from_parameters(self, kwargs):
        return type(self)(**kwargs)

    def to_dict(self):
        return {"type": self.tag[0], "parameters": [p.to_dict() for p in self.parameters]}

    def __repr__(self):
        pars = ", ".join(f"{p.name}={p.value:.4g}" for p in self._parameters)
        return f"{type(self).__name__}({pars})"


@functools.lru_cache(maxsize=256)
def _compiled(key, builder):
    return builder()


def compile_numpy(key, build):
    """Compile (once per ``key``) a PyTensor function; ``build()`` returns ``(inputs, output)``.

    Used by the numpy conveniences of models (plots, simulation), so that the numbers a user
    sees come from the same graph the likelihood uses.
    """
    return _compiled(key, lambda: _make(build))


def _make(build):
    inputs, output = build()
    return pytensor.function(inputs, output, mode="FAST_COMPILE", on_unused_input="ignore")


def as_tensor(x):
    """Constant float64 tensor from numpy, or the tensor itself."""
    if isinstance(x, pt.variable.TensorVariable):
        return x
    return pt.as_tensor_variable(np.asarray(x, dtype="float64"))
