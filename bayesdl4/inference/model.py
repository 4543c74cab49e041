"""The one density: datasets and their models as one PyMC model.

``model = build_model(datasets)`` holds

* one random variable per free parameter with its prior (`bayesdl4.models.priors`), sampled as
  ``value / scale`` through the prior's transform; ``model["crab.alpha"]`` is the physical value
  (a deterministic);
* for each `PopulationPrior`: ``<name>.mu``, ``<name>.sigma`` and the members (non-centred:
  ``<name>.z``), with the members' physical values in ``<name>.members``;
* per-bin parameters a likelihood asks for (the explicit ON/OFF background: ``mu_off_<group>``);
* one likelihood term per dataset: the potential ``log_likelihood`` with dims ``dataset``
  (gammapy's convention ``-0.5 * stat``); the datasets' arrays are shared variables, so they are
  data of the compiled functions, not constants.

Users add structure with ``with model:`` (a hyperprior, a `pm.Potential`, a deterministic):
`fit`, `sample`, `logp_function` and the pointwise log-likelihood are all compiled from this one
model. ``model_info(model)`` returns what bayesdl4 recorded about it (`ModelInfo`).

Every variable's initial value is the parameter's current value (where NUTS chains and the
optimiser start). PyMC's own ``pm.sample_smc`` starts its particles there too instead of drawing
them from the prior, so its marginal likelihood is wrong on these models: use
`bayesdl4.inference.evidence`, which draws the first population from the priors.
"""

import logging
from dataclasses import dataclass, field

import numpy as np
import pytensor
import pytensor.tensor as pt

from ..datasets import Datasets
from ..errors import InferenceError, ModelError
from ..graph import ParameterTable, plan_groups
from ..models.population import PopulationPrior
from ..models.priors import Prior, restrict
from ..utils.gcpause import paused_gc

__all__ = ["build_model", "model_info", "ModelInfo", "as_model"]

log = logging.getLogger(__name__)

_INFO_ATTRIBUTE = "_bayesdl4_info"


@dataclass
class ModelInfo:
    """What `build_model` recorded: datasets, models, the parameter table, groups and graphs.

    ``variables``: physical value per free model parameter name (tensors of the model);
    ``priors``: the effective prior per free parameter name (restricted to min / max);
    ``populations``: ``[(PopulationPrior, [member names])]``; ``latent``: ``{name: (plan, spec)}``;
    ``loglike``: the per-dataset log-likelihood vector; ``names``: dataset names in its order.
    """

    datasets: Datasets
    models: object
    table: ParameterTable
    plans: list
    graphs: list
    theta: object
    variables: dict
    priors: dict
    units: dict
    populations: list
    latent: dict
    loglike: object
    names: list
    scales: dict = field(default_factory=dict)
    built_names: set = field(default_factory=set)
    shared: dict = field(default_factory=dict)
    structure: tuple | None = None

    def structure_key(self, model):
        """Key of the model's graph when nothing was added to it (None otherwise, or when a part
        has no cheap key): equal keys mean equal compiled functions up to their data inputs."""
        if self.structure is None or set(model.named_vars) != self.built_names:
            return None
        return self.structure


def model_info(model):
    """The `ModelInfo` of a model made by `build_model` (`InferenceError` for other models)."""
    info = getattr(model, _INFO_ATTRIBUTE, None)
    if info is None:
        raise InferenceError("this PyMC model was not made by bayesdl4.inference.build_model: start from "
                             "model = build_model(datasets) and add structure with `with model:`")
    return info


@paused_gc()
def as_model(datasets_or_model, granularity=None):
    """``(model, info)`` from datasets (a new model) or a model made by `build_model`."""
    import pymc as pm

    if isinstance(datasets_or_model, pm.Model):
        return datasets_or_model, model_info(datasets_or_model)
    model = build_model(datasets_or_model, granularity=granularity)
    return model, model_info(model)


def _free_order(table_models):
    """Free parameters: plain ones first, then each population's members together."""
    plain, populations = [], {}
    seen = set()
    for model in table_models:
        for par in model.parameters:
            if par.frozen or id(par) in seen:
                continue
            seen.add(id(par))
            if isinstance(par.prior, PopulationPrior):
                populations.setdefault(id(par.prior), (par.prior, []))[1].append(par)
            else:
                plain.append(par)
    return plain, list(populations.values())


def _check_inside(name, value, support):
    lo, hi = support
    if not np.isfinite(value):
        raise ModelError(f"parameter {name!r}: its value {value} is not finite; set a finite starting value")
    if not lo <= value <= hi:
        raise ModelError(f"parameter {name!r}: value {value:.6g} lies outside its prior support "
                         f"[{lo:.6g}, {hi:.6g}]; set a starting value inside it")
    if value in (lo, hi) and np.isfinite(value):
        raise ModelError(f"parameter {name!r}: value {value:.6g} is at the edge of its prior support "
                         f"[{lo:.6g}, {hi:.6g}], where the sampler's transform is infinite; start inside it")


def _parameter_variable(name, par):
    """The PyMC variable of one parameter; returns (physical tensor, effective prior)."""
    import pymc as pm

    prior = par.prior
    if prior is None or isinstance(prior, Prior):
        prior = restrict(prior, par.min, par.max, name=f"parameter {name!r}")
        _check_inside(name, par.value, prior.support)
        return prior.variable(name, par.scale, initval=par.value), prior
    if isinstance(prior, pt.TensorVariable):  # a PyMC distribution, in physical units
        model = pm.modelcontext(None)
        rv = prior.owner.clone().default_output()  # a fresh node: the same dist may serve several parameters
        return model.register_rv(rv, name, initval=par.value), prior
    if callable(prior):
        return prior(name), prior
    raise ModelError(f"parameter {name!r}: unsupported prior {prior!r}; use a bayesdl4 prior, a PopulationPrior, "
                     "a PyMC distribution (pm.Normal.dist(...)) or a callable name -> random variable")


def _inside(value, lo, hi, unit):
    """``value`` moved inside ``(lo, hi)`` by a margin relative to the interval (or to ``unit``)."""
    width = hi - lo if np.isfinite(hi - lo) else unit
    margin = 1e-6 * width
    return float(np.clip(value, lo + margin if np.isfinite(lo) else -np.inf, hi - margin if np.isfinite(hi) else np.inf))


def _population_variables(population, members, names):
    """Hyperparameters and members of one population; returns the members' physical values."""
    import pymc as pm

    units = {str(p.unit) for p in members}
    if len(units) > 1:
        raise ModelError(f"PopulationPrior {population.name!r} is shared by parameters of different units "
                         f"{sorted(units)} ({names}); members of a population must share one unit")
    values = np.array([p.value for p in members], dtype=float)
    lognormal = population.distribution == "lognormal"
    for name, par in zip(names, members, strict=True):
        bounded = np.isfinite(par.max) or (np.isfinite(par.min) and not (lognormal and par.min <= 0))
        if bounded:
            raise ModelError(
                f"parameter {name!r}: its min / max would truncate the population {population.name!r} "
                f"({population.distribution}); remove the bounds (a log-normal population is positive)")
        if lognormal and not par.value > 0:
            raise ModelError(f"parameter {name!r}: a log-normal population needs a positive start value")
    latent0 = np.log(values) if lognormal else values
    mu0 = float(np.mean(latent0))
    sd0 = float(np.std(latent0)) if len(values) > 1 else 0.0
    member_scale = 1.0 if lognormal else float(np.median([p.scale for p in members]))
    mu_prior = restrict(population.mu, np.nan, np.nan, name=f"{population.name}.mu")
    sigma_prior = restrict(population.sigma, np.nan, np.nan, name=f"{population.name}.sigma")
    mu0 = _inside(mu0, *mu_prior.support, member_scale)
    sd0 = _inside(max(sd0, 0.1 * member_scale if not lognormal else 0.1), max(sigma_prior.support[0], 0.0),
                  sigma_prior.support[1], member_scale)
    mu = mu_prior.variable(f"{population.name}.mu", member_scale, initval=mu0)
    sigma = sigma_prior.variable(f"{population.name}.sigma", member_scale, initval=sd0)
    z0 = (latent0 - mu0) / sd0
    if population.centered:  # sampled in units of the members' scale, as every other parameter
        scaled = pm.Normal(f"{population.name}.latent__scaled", mu / member_scale, sigma / member_scale,
                           shape=len(members), initval=latent0 / member_scale)
        latent = scaled * member_scale
    else:
        z = pm.Normal(f"{population.name}.z", 0.0, 1.0, shape=len(members), initval=z0)
        latent = mu + sigma * z
    physical = pt.exp(latent) if lognormal else latent
    return pm.Deterministic(f"{population.name}.members", physical), (mu_prior, sigma_prior), member_scale


def _shared(name, array, registry, static_shape=False):
    array = np.asarray(array)
    dtype = np.float64 if array.dtype.kind in "fb" else np.int64
    shape = array.shape if static_shape else None
    registry[name] = pytensor.shared(np.ascontiguousarray(array, dtype=dtype), name=name, borrow=True, shape=shape)
    return registry[name]


def _prior_key(prior, scale):
    key = getattr(prior, "structure_key", None)
    return None if key is None else (key(), scale)


def _structure(plans, priors, scales, table, populations, shared):
    """Everything the model's graph depends on besides the data (None when a part has no key)."""
    parts = []
    for plan in plans:
        static = plan.builder.static_key(plan)
        if static is None:
            return None
        parts.append((type(plan.builder).__name__, static, tuple(sorted(plan.latent))))
    prior_keys = tuple((name, _prior_key(prior, scales.get(name))) for name, prior in priors.items())
    if any(key is None for _, key in prior_keys):
        return None
    arrays = tuple(sorted((name, var.type.dtype, var.type.shape) for name, var in shared.items()))
    pops = tuple((p.structure_key(), len(members)) for p, members in populations)
    return (tuple(parts), prior_keys, arrays, pops, table.n_free, len(table))


def build_model(datasets, granularity=None):
    """The PyMC model of ``datasets`` and their models (see the module docstring).

    Parameters
    ----------
    datasets : `~bayesdl4.datasets.Datasets` or list of datasets
        Datasets with models assigned (``datasets.models = [...]``).
    granularity : {"auto", "bin", "pixel", "plane"}, optional
        What one pointwise log-likelihood term of a map dataset is (`bayesdl4.graph.map_builder`).

    Returns
    -------
    `pymc.Model`
    """
    import pymc as pm

    datasets = Datasets(datasets)
    if not len(datasets):
        raise InferenceError("no datasets given")
    models = datasets.models
    if not len(models):
        raise InferenceError("the datasets have no models: set datasets.models = [...] first")
    plain, populations = _free_order(models)
    if not plain and not populations:
        raise InferenceError("all parameters are frozen: nothing to fit")
    order = plain + [p for _, members in populations for p in members]
    table = ParameterTable(models, free_order=order)
    names = dict(zip(map(id, table.free), table.free_names, strict=True))
    with pytensor.config.change_flags(traceback__limit=0):
        plans = plan_groups(datasets, table, granularity=granularity)
    if sum(int(p.points.dataset.size) for p in plans) == 0:
        raise InferenceError("no fitted bins: every bin of every dataset is masked (check mask_safe and "
                             "mask_fit, e.g. energy ranges outside the data)")
    variables, priors, units, scales, pop_info, latent_info = {}, {}, {}, {}, [], {}
    with pm.Model() as model, pytensor.config.change_flags(traceback__limit=0):
        pieces = []
        for par in plain:
            name = names[id(par)]
            value, prior = _parameter_variable(name, par)
            variables[name], priors[name], units[name], scales[name] = value, prior, str(par.unit), par.scale
            pieces.append(pt.as_tensor(value).reshape((1,)))
        for population, members in populations:
            member_names = [names[id(p)] for p in members]
            values, hyper, hyper_scale = _population_variables(population, members, member_names)
            scales[f"{population.name}.mu"] = scales[f"{population.name}.sigma"] = hyper_scale
            scales[f"{population.name}.latent"] = hyper_scale
            pieces.append(values)
            for k, (name, par) in enumerate(zip(member_names, members, strict=True)):
                variables[name], priors[name], units[name] = values[k], population, str(par.unit)
            priors[f"{population.name}.mu"], priors[f"{population.name}.sigma"] = hyper
            pop_info.append((population, member_names))
        registry = {}
        frozen = _shared("theta_frozen", table.frozen_values(), registry)
        theta = pt.concatenate([*pieces, frozen])
        graphs, loglike, dataset_names = [], [], []
        for plan in plans:
            inputs = {key: _shared(f"{plan.name}.{key}", array, registry, key in plan.static_shape)
                      for key, array in plan.arrays.items()}
            latent = {}
            for key, spec in plan.latent.items():
                name = f"mu_off_{plan.name}" if key == "background" else f"{key}_{plan.name}"
                raw = pm.HalfFlat(f"{name}__raw", shape=spec.initval.shape, initval=spec.initval / spec.scale)
                latent[key] = pm.Deterministic(name, raw * _shared(f"{name}.scale", spec.scale, registry))
                latent_info[name] = (plan, spec)
            graph = plan.builder.build(plan, inputs, theta, latent)
            graphs.append(graph)
            loglike.append(graph.loglike_datasets)
            dataset_names += plan.dataset_names
        model.add_coord("dataset", dataset_names)
        loglike = pt.concatenate(loglike)
        pm.Potential("log_likelihood", loglike, dims="dataset")
    info = ModelInfo(datasets=datasets, models=models, table=table, plans=plans, graphs=graphs, theta=theta,
                     variables=variables, priors=priors, units=units, populations=pop_info, latent=latent_info,
                     loglike=loglike, names=dataset_names, scales=scales, built_names=set(model.named_vars),
                     shared=registry, structure=_structure(plans, priors, scales, table, pop_info, registry))
    setattr(model, _INFO_ATTRIBUTE, info)
    return model
