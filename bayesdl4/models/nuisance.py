"""Instrument systematics as nuisance parameters: models that act on the datasets they name.

Given like gammapy's `FoVBackgroundModel`: a model in ``datasets.models`` whose
``datasets_names`` lists the datasets it acts on (one run, or every run of an instrument). Each
parameter takes a prior like any other (``model.z.prior = GaussianPrior(0, 0.1)``).

* `EnergyScaleModel`: the source spectra seen by those datasets are
  ``dnde_z(E) = dnde(E / (1 + z)) / (1 + z)`` (the convention of the joint-crab paper, Nigro et
  al. 2019: a true energy scale; the integrated flux in a true-energy bin ``[E1, E2]`` is the
  flux of the unshifted spectrum in ``[E1 / (1 + z), E2 / (1 + z)]``).
* `EffectiveAreaScaleModel`: the predicted source counts of those datasets are multiplied by
  ``norm`` (effective area, or exposure, mis-calibration).
"""

from ..errors import ModelError
from .core import ModelBase
from .parameter import Parameter, parameters_from_dict

__all__ = ["NuisanceModel", "EnergyScaleModel", "EffectiveAreaScaleModel"]


class NuisanceModel(ModelBase):
    """Base: a model with parameters acting on the datasets in ``datasets_names``."""

    def __init__(self, datasets_names, name=None, **kwargs):
        if isinstance(datasets_names, str):
            datasets_names = [datasets_names]
        if not datasets_names:
            raise ModelError(f"{type(self).__name__}: datasets_names must name at least one dataset")
        super().__init__(**kwargs)
        object.__setattr__(self, "datasets_names", [str(n) for n in datasets_names])
        default = f"{self.datasets_names[0]}-{self._suffix}" if len(self.datasets_names) == 1 else None
        if name is None and default is None:
            raise ModelError(f"{type(self).__name__} acting on several datasets needs a name")
        object.__setattr__(self, "name", str(name or default))

    @property
    def spectral_model(self):
        return None

    @property
    def spatial_model(self):
        return None

    def copy(self, name=None):
        kwargs = {slot: par.copy() for slot, par in self._slots()}
        return type(self)(list(self.datasets_names), name=name or self.name, **kwargs)

    def to_dict(self):
        data = super().to_dict()
        return {"name": self.name, "type": data["type"], "datasets_names": list(self.datasets_names),
                "parameters": data["parameters"]}

    @classmethod
    def from_dict(cls, data, links=None):
        """From the YAML form of `to_dict`; ``links`` as in `~bayesdl4.models.parameter.parameter_from_dict`."""
        label = f"{cls.__name__} {data.get('name')!r}"
        entries = data.get("parameters") or []
        names = [e.get("name") for e in entries if isinstance(e, dict)] if isinstance(entries, list) else []
        unknown = sorted(set(names) - {p.name for p in cls.default_parameters}, key=str)
        if unknown:
            raise ModelError(f"{label}: unknown parameter(s) {unknown}; known: "
                             f"{[p.name for p in cls.default_parameters]}")
        kwargs = parameters_from_dict(data, cls.default_parameters, label, links)
        return cls(data.get("datasets_names") or [], name=data.get("name"), **kwargs)

    def __repr__(self):
        pars = ", ".join(f"{p.name}={p.value:.4g}" for p in self._parameters)
        return f"{type(self).__name__}(name={self.name!r}, {pars}, datasets_names={self.datasets_names})"


class EnergyScaleModel(NuisanceModel):
    """True-energy scale ``1 + z`` of the source spectra seen by ``datasets_names``.

    Parameters
    ----------
    z : float
        Relative energy-scale offset (dimensionless; 0 = no shift). Bounded to ``z > -1``.
    datasets_names : list of str
    name : str, optional (default ``"<dataset>-energy-scale"`` for one dataset)
    """

    tag = ("EnergyScaleModel",)
    _suffix = "energy-scale"
    default_parameters = (Parameter("z", 0.0, "", scale=0.1, min=-0.99),)

    def __init__(self, datasets_names, z=0.0, name=None):
        super().__init__(datasets_names, name=name, z=z)


class EffectiveAreaScaleModel(NuisanceModel):
    """Factor ``norm`` on the predicted source counts of ``datasets_names``.

    Parameters
    ----------
    norm : float
        Dimensionless scale of the exposure (1 = nominal), positive.
    datasets_names : list of str
    name : str, optional (default ``"<dataset>-area-scale"`` for one dataset)
    """

    tag = ("EffectiveAreaScaleModel",)
    _suffix = "area-scale"
    default_parameters = (Parameter("norm", 1.0, "", scale=0.1, min=0.0),)

    def __init__(self, datasets_names, norm=1.0, name=None):
        super().__init__(datasets_names, name=name, norm=norm)
