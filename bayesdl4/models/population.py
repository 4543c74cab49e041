"""Hierarchies: parameters drawn from a population with hyperpriors, and per-dataset copies.

Every parameter whose ``.prior`` is the same `PopulationPrior` object is an exchangeable draw
from that population; ``<name>.mu`` and ``<name>.sigma`` become parameters of the joint model
(with the priors given) and appear in the posterior. `per_dataset` makes the per-run copies.

>>> population = PopulationPrior("bkg", mu=GaussianPrior(1, 0.2), sigma=HalfNormalPrior(0.2))  # doctest: +SKIP
>>> for dataset in datasets:                                                                   # doctest: +SKIP
...     dataset.background_model.spectral_model.norm.prior = population
"""

import numpy as np

from ..errors import ModelError
from .prior_yaml import prior_from_dict
from .priors import FlatPrior, Prior

__all__ = ["PopulationPrior", "per_dataset", "DISTRIBUTIONS"]

DISTRIBUTIONS = ("normal", "lognormal")
#: the flat hyperpriors written as ``null``
_FLAT_SUPPORT = {"mu": (-np.inf, np.inf), "sigma": (0.0, np.inf)}


class PopulationPrior:
    """Population of exchangeable parameters.

    Parameters
    ----------
    name : str
        Name of the population; its hyperparameters are ``<name>.mu`` and ``<name>.sigma``.
    mu, sigma : `Prior`
        Hyperpriors. ``"normal"``: members ~ Normal(mu, sigma) in the members' unit.
        ``"lognormal"``: ln(member / unit) ~ Normal(mu, sigma) (mu and sigma in log space; the
        population median is ``exp(mu)``). ``sigma``'s prior must live on positive values.
    distribution : {"normal", "lognormal"}
    centered : bool
        False (default): members are ``mu + sigma * z`` with ``z ~ Normal(0, 1)`` (the
        non-centred form, which NUTS samples without funnels when the data constrain the members
        weakly); True: members are sampled directly.
    """

    tag = "PopulationPrior"
    proper = True

    def __init__(self, name, mu, sigma, distribution="normal", centered=False):
        self.name = str(name)
        for label, prior in (("mu", mu), ("sigma", sigma)):
            if not isinstance(prior, Prior):
                raise ModelError(f"PopulationPrior {self.name!r}: {label} must be a prior "
                                 f"(e.g. GaussianPrior, HalfNormalPrior), got {prior!r}")
        if distribution not in DISTRIBUTIONS:
            raise ModelError(f"PopulationPrior {self.name!r}: distribution must be one of {DISTRIBUTIONS}, "
                             f"got {distribution!r}")
        if sigma.support[0] < 0:
            raise ModelError(f"PopulationPrior {self.name!r}: the prior of sigma must live on positive values "
                             f"(e.g. HalfNormalPrior, LogNormalPrior), got {sigma!r}")
        self.mu, self.sigma = mu, sigma
        self.distribution = distribution
        self.centered = bool(centered)
        self.weight = 1.0

    @property
    def normalised(self):
        return self.mu.normalised and self.sigma.normalised

    @property
    def support(self):
        return (0.0, np.inf) if self.distribution == "lognormal" else (-np.inf, np.inf)

    def structure_key(self):
        return (self.tag, self.name, self.mu.structure_key(), self.sigma.structure_key(), self.distribution,
                self.centered)

    def to_dict(self):
        """YAML form; a flat hyperprior (``FlatPrior()`` on mu, ``FlatPrior(0)`` on sigma) is ``null``."""
        return {"type": self.tag, "name": self.name, "distribution": self.distribution,
                "centered": self.centered, "mu": self._hyper_to_dict("mu"), "sigma": self._hyper_to_dict("sigma")}

    def _hyper_to_dict(self, label):
        prior = getattr(self, label)
        if not isinstance(prior, FlatPrior):
            return prior.to_dict()
        if prior.support != _FLAT_SUPPORT[label]:
            raise ModelError(f"PopulationPrior {self.name!r}: its {label} prior {prior!r} has no YAML form "
                             f"(only {_FLAT_SUPPORT[label]} is written, as null); give it a UniformPrior")
        return None

    @classmethod
    def from_dict(cls, data, populations=None, unit=None, where="prior"):
        """From YAML (the form of `to_dict`).

        Parameters
        ----------
        data : dict
        populations : dict, optional
            ``name -> PopulationPrior``: an entry whose name is there is that object (an entry of
            the same name with other hyperpriors raises `ModelError`); a new one is added.
        unit : str or `~astropy.units.Unit`, optional
            The members' unit: a ``"normal"`` population's hyperprior parameters are converted to
            it; a ``"lognormal"`` one's are pure numbers (log space).
        where : str
            Names the file / model / parameter in error messages.
        """
        from astropy import units as u

        if not isinstance(data, dict):
            raise ModelError(f"{where}: a PopulationPrior entry must be a mapping, got {data!r}")
        name = data.get("name")
        if not isinstance(name, str) or not name:
            raise ModelError(f"{where}: a PopulationPrior entry needs a 'name' (a string), got {name!r}")
        label = f"{where}: PopulationPrior {name!r}"
        missing = [key for key in ("mu", "sigma") if key not in data]
        if missing:
            raise ModelError(f"{label}: entry {missing} missing; give the hyperpriors as mu: {{type: "
                             "GaussianPrior, ...}} and sigma: {type: HalfNormalPrior, ...}")
        distribution = data.get("distribution", "normal")
        centered = data.get("centered", False)
        if not isinstance(centered, (bool, np.bool_)):
            raise ModelError(f"{label}: centered must be true or false (a YAML boolean), got {centered!r}")
        hyper_unit = u.dimensionless_unscaled if distribution == "lognormal" else unit
        mu, sigma = (FlatPrior(*_FLAT_SUPPORT[key]) if data[key] is None
                     else prior_from_dict(data[key], unit=hyper_unit, where=f"{label} {key}")
                     for key in ("mu", "sigma"))
        try:
            new = cls(name, mu, sigma, distribution=distribution, centered=bool(centered))
        except ModelError as exc:
            raise ModelError(f"{where}: {exc}") from exc
        if populations is None:
            return new
        old = populations.setdefault(name, new)
        if old.structure_key() != new.structure_key():
            raise ModelError(f"{label} is defined twice with different hyperpriors ({old!r} and {new!r}); "
                             "one population has one definition")
        return old

    def copy(self):
        return self  # members of one population share the object

    def __repr__(self):
        return (f"PopulationPrior({self.name!r}, mu={self.mu!r}, sigma={self.sigma!r}, "
                f"distribution={self.distribution!r}, centered={self.centered})")


def per_dataset(models, datasets, parameters, by=None):
    """Models in which ``parameters`` get one copy per dataset (or per group of datasets).

    Parameters
    ----------
    models : `Models` or list
        Models to expand; each listed parameter's model is copied once per dataset (group), the
        copy named ``"<model>-<dataset or group>"`` and restricted to those datasets with
        ``datasets_names``. All other parameters stay linked (the same objects).
    datasets : `Datasets`
    parameters : list of str
        ``"<model>.<parameter>"`` names, or parameter names applying to every model that has one.
    by : str, optional
        A key of ``dataset.meta`` (e.g. ``"instrument"``): one copy per distinct value.

    Returns
    -------
    `Models`
    """
    from .sky import Models

    models = Models(models)
    wanted = {}
    for entry in parameters:
        model_name, _, par_name = entry.rpartition(".")
        targets = [m for m in models if not model_name or m.name == model_name]
        found = [m for m in targets if par_name in [p.name for p in m.parameters]]
        if not found:
            raise ModelError(f"per_dataset: no model has a parameter {entry!r} (models: {models.names})")
        for model in found:
            wanted.setdefault(model.name, set()).add(par_name)
    groups = {}
    for dataset in datasets:
        if by is None:
            key = dataset.name
        else:
            if by not in dataset.meta:
                raise ModelError(f"per_dataset: dataset {dataset.name!r} has no meta entry {by!r} "
                                 f"(its meta keys: {sorted(dataset.meta)})")
            key = str(dataset.meta[by])
        groups.setdefault(key, []).append(dataset.name)
    out = []
    for model in models:
        if model.name not in wanted:
            out.append(model)
            continue
        for key, names in groups.items():
            members = [n for n in names if model.datasets_names is None or n in model.datasets_names]
            if not members:
                continue
            copy = model.copy(name=f"{model.name}-{key}")
            copy.datasets_names = members
            _link_except(copy, model, wanted[model.name])
            out.append(copy)
    return Models(out)


def _link_except(copy, original, names):
    """Make every parameter of ``copy`` but ``names`` the original's object (linked)."""
    parts = [part for part in ("spectral_model", "spatial_model") if getattr(copy, part, None) is not None]
    # a model without parts (a nuisance model) holds its parameters itself
    pairs = [(getattr(copy, part), getattr(original, part)) for part in parts] or [(copy, original)]
    for new, old in pairs:
        for slot, (np_, op) in enumerate(zip(new.parameters, old.parameters, strict=True)):
            if np_.name not in names:
                _replace_parameter(new, slot, op)


def _replace_parameter(model, index, parameter):
    """Replace the ``index``-th parameter of ``model`` (compound models included) by ``parameter``."""
    if hasattr(model, "model1"):
        n1 = len(model.model1.parameters)
        if index < n1:
            _replace_parameter(model.model1, index, parameter)
        else:
            _replace_parameter(model.model2, index - n1, parameter)
        return
    model._parameters[index] = parameter
