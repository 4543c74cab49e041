"""Repetitions of a dataset template: parameters drawn from the priors, Poisson counts, fresh models.

A `Simulator` holds a template (datasets with their IRFs, livetimes, masks and, for ON/OFF data,
the true background) and models whose free parameters carry proper priors. Each repetition

* draws the free parameters from their priors (``prior.ppf`` of uniforms; the prior a parameter's
  ``min`` / ``max`` restrict, exactly as `bayesdl4.inference.build_model` uses it);
* predicts the counts of every dataset at those values with one function compiled once per
  template (the datasets' graphs from `bayesdl4.graph`, all bins, responses bound as data), so a
  repetition costs a function call and the Poisson draws, not a graph per dataset;
* returns new datasets that share the template's IRFs and carry the drawn counts (and OFF
  counts), with a fresh copy of the models at their start values, ready for `fit` / `sample`.

Cash datasets: ``counts ~ Poisson(npred_signal + background)`` with the template's background
(scaled by a `FoVBackgroundModel` where there is one). ON/OFF datasets: ``counts ~ Poisson(
npred_signal + b)`` and ``counts_off ~ Poisson(b / alpha)`` with ``b`` the true background in the
ON region, ``alpha x counts_off`` of the template unless given. The compiled function is not
pickled: a copy sent to a Dask worker compiles (or loads from the caches) on first use there.
"""

import copy
import logging

import numpy as np
import pytensor
import pytensor.tensor as pt

from ..compiled import compile_function
from ..datasets import Datasets
from ..datasets.fake import as_rng
from ..errors import DataFormatError, ModelError
from ..graph import ParameterTable, graph_inputs, plan_groups
from ..models import Models
from ..models.priors import Prior, restrict

__all__ = ["Simulator", "effective_priors", "models_yaml", "SIMULATION_MODE"]

log = logging.getLogger(__name__)

#: mode of the prediction function: called once per repetition, so numpy perform methods (no
#: Numba compilation: a cold worker starts in a fraction of a second) are fast enough
SIMULATION_MODE = "FAST_COMPILE"


def effective_priors(models) -> dict:
    """``{name: prior}`` of the free parameters of ``models`` (``"<model>.<parameter>"``, the names
    of `bayesdl4.inference` results), as the inference uses them (restricted to min / max).

    Raises
    ------
    ModelError
        A free parameter without a proper, normalised bayesdl4 prior (improper flat priors,
        weights other than 1, population priors and PyMC distributions cannot be drawn from).
    """
    table = ParameterTable(models)
    out = {}
    for name, par in zip(table.free_names, table.free, strict=True):
        prior = par.prior
        if prior is not None and not isinstance(prior, Prior):
            raise ModelError(f"parameter {name!r}: its prior {prior!r} is not a bayesdl4 prior with an inverse "
                             "CDF; simulation studies draw the truth from the prior: use UniformPrior, "
                             "LogUniformPrior, GaussianPrior, ... (population priors are not supported here)")
        prior = restrict(prior, par.min, par.max, name=f"parameter {name!r}")
        if not prior.normalised:
            reason = "improper (no prior and no finite min / max)" if not prior.proper else \
                f"weighted (weight {prior.weight:g})"
            raise ModelError(f"parameter {name!r}: its prior {prior!r} is {reason}; simulation studies draw "
                             "the truth from the prior, so give it a proper prior of weight 1, or freeze it")
        out[name] = prior
    return out


def models_yaml(models) -> str:
    """The models as YAML without the writer's metadata (no date: the same models give the same
    text, so results of one seed are identical wherever and whenever they ran)."""
    import yaml

    return yaml.safe_dump(models.to_dict(), sort_keys=False)


def _as_counts_shape(dataset, values, what):
    if values is None:
        return None
    values = np.asarray(getattr(values, "data", values), dtype=float)
    try:
        return np.broadcast_to(values, dataset.data_shape).copy()
    except ValueError:
        raise DataFormatError(f"dataset {dataset.name!r}: the {what} has shape {values.shape}, the counts "
                              f"{dataset.data_shape}; give one value per counts bin") from None


class Simulator:
    """Simulated repetitions of ``datasets`` with parameters drawn from the models' priors.

    Parameters
    ----------
    datasets : `~bayesdl4.datasets.Datasets` or list of spectrum / map datasets
        The template: IRFs, livetimes, masks; counts are replaced in each repetition.
    models : `~bayesdl4.models.Models`, optional
        Models with priors on their free parameters (default: the datasets' models). Their
        current values are the start values of each repetition's fit.
    background : list of arrays, optional
        ON/OFF datasets: the true background counts in the ON region per dataset (counts shape);
        default ``alpha x counts_off`` of the template. Ignored for Cash datasets.

    Attributes
    ----------
    names : list of str
        Free parameters (``"<model>.<parameter>"``), the order of `draw_parameters`.
    priors : dict
        ``{name: prior}`` the truth is drawn from (`effective_priors`).
    """

    def __init__(self, datasets, models=None, background: list | None = None):
        datasets = Datasets(datasets)
        if not len(datasets):
            raise DataFormatError("Simulator: the template has no datasets")
        models = Models(models if models is not None else datasets.models)
        if not len(models):
            raise ModelError("Simulator: no models: pass models= or set datasets.models first")
        for dataset in datasets:
            if getattr(dataset, "counts", None) is None or not hasattr(dataset, "is_onoff"):
                raise DataFormatError(f"Simulator: dataset {dataset.name!r} ({type(dataset).__name__}) has no "
                                      "counts to simulate; use spectrum or map datasets")
        self.models = copy.deepcopy(models)
        self.priors = effective_priors(self.models)
        self.names = list(self.priors)
        self.template = [copy.copy(d) for d in datasets]
        for dataset in self.template:
            dataset._models = None
        if background is not None and len(background) != len(self.template):
            raise DataFormatError(f"Simulator: background has {len(background)} entries for "
                                  f"{len(self.template)} datasets; give one per dataset (None for Cash ones)")
        self.background = []
        for k, dataset in enumerate(self.template):
            if not dataset.is_onoff:
                self.background.append(None)
                continue
            given = None if background is None else background[k]
            values = _as_counts_shape(dataset, given if given is not None else dataset.background, "background")
            if np.any(~np.isfinite(values)) or np.any(values < 0):
                raise DataFormatError(f"Simulator: dataset {dataset.name!r}: the true background must be finite "
                                      "and >= 0")
            self.background.append(values)
        self._prediction = None

    # ------------------------------------------------------------------ pickling (Dask)
    def __getstate__(self):
        state = dict(self.__dict__)
        state["_prediction"] = None  # compiled again (or found in the caches) where it is used
        return state

    # ------------------------------------------------------------------ parameters
    def draw_parameters(self, random_seed=None) -> dict[str, float]:
        """``{name: value}`` drawn from the priors (physical units); same seed, same values."""
        rng = as_rng(random_seed)
        q = rng.uniform(size=len(self.names))
        return {name: float(self.priors[name].ppf(qk)) for name, qk in zip(self.names, q, strict=True)}

    def start_values(self) -> dict[str, float]:
        """``{name: value}``: the models' current values (where each repetition's fit starts)."""
        table = ParameterTable(self.models)
        return {name: float(p.value) for name, p in zip(table.free_names, table.free, strict=True)}

    def _theta(self, table, values):
        theta = table.values()
        missing = [name for name in table.free_names if name not in values]
        if missing:
            raise ModelError(f"Simulator: no value for the free parameters {missing}; give every one of "
                             f"{table.free_names}")
        theta[: table.n_free] = [float(values[name]) for name in table.free_names]
        return theta

    # ------------------------------------------------------------------ prediction
    def _build(self):
        """The plans and the compiled ``theta -> [npred_signal, npred_background] per group``."""
        models = copy.deepcopy(self.models)
        table = ParameterTable(models)
        datasets = []
        for dataset in self.template:
            dataset = copy.copy(dataset)
            dataset.models = models
            datasets.append(dataset)
        with pytensor.config.change_flags(traceback__limit=0):
            plans = plan_groups(Datasets(datasets), table, all_bins=True)
            theta = pt.dvector("theta")
            inputs, arrays, outputs = [], [], []
            for plan in plans:
                variables = graph_inputs(plan.arrays, plan.static_shape)
                graph = plan.builder.build(plan, variables, theta, latent={})
                if graph.npred_signal is None:
                    raise DataFormatError(f"Simulator: datasets {plan.dataset_names} give no predicted counts; "
                                          "use spectrum or map datasets")
                background = graph.npred_background if graph.npred_background is not None else \
                    pt.zeros_like(graph.npred_signal)
                outputs += [graph.npred_signal, background]
                for name in sorted(variables):
                    inputs.append(variables[name])
                    array = np.asarray(plan.arrays[name])
                    arrays.append(np.ascontiguousarray(array, dtype=np.float64 if array.dtype.kind in "fb"
                                                       else np.int64))
            function = compile_function([theta, *inputs], outputs, mode=SIMULATION_MODE)
        return table, plans, function, arrays

    def predict(self, values: dict) -> list[tuple[np.ndarray, np.ndarray]]:
        """Expected counts at ``values`` (``{name: value}``): ``[(signal, background)]`` per dataset,
        arrays of counts shape; the background is the true one of ON/OFF datasets."""
        if self._prediction is None:
            self._prediction = self._build()
        table, plans, function, arrays = self._prediction
        outputs = function(self._theta(table, values), *arrays)
        position = {d.name: k for k, d in enumerate(self.template)}
        out = [None] * len(self.template)
        for g, plan in enumerate(plans):
            signal, background = (np.asarray(v, dtype=float) for v in outputs[2 * g : 2 * g + 2])
            for j, name in enumerate(plan.dataset_names):
                k = position[name]
                dataset = self.template[k]
                s = _per_dataset(plan, signal, j, dataset)
                b = self.background[k] if dataset.is_onoff else _per_dataset(plan, background, j, dataset)
                out[k] = (s, b)
        return out

    # ------------------------------------------------------------------ repetitions
    def simulate(self, values: dict, random_seed=None) -> Datasets:
        """New `Datasets` with Poisson counts at ``values`` and fresh models at their start values.

        The datasets share the template's IRFs and masks (do not modify those in place).
        """
        rng = as_rng(random_seed)
        out = []
        for dataset, (signal, background) in zip(self.template, self.predict(values), strict=True):
            new = copy.copy(dataset)
            mean = np.clip(np.nan_to_num(signal + background), 0.0, None)
            new.counts = new._as_map(rng.poisson(mean).astype(float))
            if dataset.is_onoff:
                alpha = dataset.alpha.data
                with np.errstate(divide="ignore", invalid="ignore"):
                    mean_off = np.where(alpha > 0, background / alpha, 0.0)
                new.counts_off = new._as_map(rng.poisson(mean_off).astype(float))
            out.append(new)
        datasets = Datasets(out)
        datasets.models = copy.deepcopy(self.models)
        return datasets


def _per_dataset(plan, values, j, dataset):
    """The values of dataset ``j`` of a plan on its full counts shape."""
    shape = dataset.data_shape
    size = int(np.prod(shape))
    points = plan.points
    if len(plan.datasets) == 1 and values.size == size:
        return values.reshape(shape)
    if points is None or values.size != points.dataset.size:
        raise DataFormatError(f"Simulator: cannot place the predicted counts of dataset {dataset.name!r} "
                              f"({values.size} values, {size} bins)")
    full = np.zeros(size)
    mine = points.dataset == j
    full[np.asarray(points.coord)[mine]] = values[mine]
    return full.reshape(shape)
