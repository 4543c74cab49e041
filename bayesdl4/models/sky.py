"""``SkyModel`` (spectral x spatial component of one source) and the ``Models`` container."""

from ..errors import ModelError
from ..io import registry
from .parameter import Parameters

__all__ = ["SkyModel", "Models"]


class SkyModel:
    """One source: a spectral model, an optional spatial model, a name and the datasets it applies to.

    Spectrum datasets use the spectral part only (the source is taken as contained in the ON region).
    """

    tag = ("SkyModel",)

    def __init__(self, spectral_model, spatial_model=None, name="model", datasets_names=None):
        if spectral_model is None:
            raise ModelError(f"SkyModel {name!r}: a spectral model is required")
        self.spectral_model = spectral_model
        self.spatial_model = spatial_model
        self.name = str(name)
        if isinstance(datasets_names, str):  # one name (as gammapy), not its characters
            datasets_names = [datasets_names]
        self.datasets_names = None if datasets_names is None else list(datasets_names)

    @property
    def parameters(self):
        pars = self.spectral_model.parameters
        if self.spatial_model is not None:
            pars = pars + self.spatial_model.parameters
        return pars

    def copy(self, name=None):
        spatial = None if self.spatial_model is None else self.spatial_model.copy()
        new = SkyModel(self.spectral_model.copy(), spatial, name or self.name, self.datasets_names)
        for raw in ("spatial_dict", "temporal_dict"):  # components kept as YAML dicts (unsupported types)
            if hasattr(self, raw):
                setattr(new, raw, dict(getattr(self, raw)))
        return new

    def to_dict(self):
        data = {"name": self.name, "type": "SkyModel", "spectral": self.spectral_model.to_dict()}
        if self.spatial_model is not None:
            data["spatial"] = self.spatial_model.to_dict()
        if self.datasets_names is not None:
            data["datasets_names"] = list(self.datasets_names)
        return data

    def __repr__(self):
        return f"SkyModel(name={self.name!r}, spectral={self.spectral_model!r})"


class Models:
    """An ordered list of models with unique names, indexed by name or position."""

    def __init__(self, models=()):
        if isinstance(models, Models):
            models = list(models)
        elif not isinstance(models, (list, tuple)):
            models = [models]
        names = [m.name for m in models]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ModelError(f"Models: names {dupes} are used more than once; model names must be unique")
        self._models = list(models)

    def __len__(self):
        return len(self._models)

    def __iter__(self):
        return iter(self._models)

    def __getitem__(self, key):
        if isinstance(key, int):
            return self._models[key]
        for model in self._models:
            if model.name == key:
                return model
        raise KeyError(f"no model named {key!r}; have {self.names}")

    @property
    def names(self):
        return [m.name for m in self._models]

    @property
    def parameters(self):
        """All parameters, linked parameters (the same object) listed once."""
        pars = Parameters()
        for model in self._models:
            pars = pars + model.parameters
        return pars.unique()

    def select(self, dataset_name):
        """Models that apply to the dataset called ``dataset_name``."""
        return Models([m for m in self._models
                       if m.datasets_names is None or dataset_name in m.datasets_names])

    def copy(self):
        return Models([m.copy() for m in self._models])

    def to_dict(self):
        return {"components": [m.to_dict() for m in self._models]}

    @classmethod
    def read(cls, filename):
        """Read gammapy's models YAML."""
        return registry.lookup(cls, "yaml", "read")(filename)

    def write(self, filename, overwrite=False):
        """Write gammapy's models YAML (atomic)."""
        registry.lookup(type(self), "yaml", "write")(self, filename, overwrite=overwrite)

    def to_yaml(self):
        return registry.lookup(type(self), "yaml", "to_string")(self)

    def __repr__(self):
        return "Models(\n" + "\n".join(f"  {m!r}" for m in self._models) + "\n)"
