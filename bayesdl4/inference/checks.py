"""Posterior-predictive checks: p-values of each dataset's total statistic.

For each posterior draw ``s`` with parameters ``theta_s`` the ``posterior_predictive`` group of a
result of `sample` holds Poisson replicas ``y_rep_s`` of the counts (and OFF counts) drawn at
``theta_s``. The discrepancy is the dataset's total statistic (Cash, or WStat with its profiled
background: ``-2 ln L`` in gammapy's convention), evaluated on the replica and on the observed
data at the same ``theta_s``:

    p = P(T(y_rep, theta) >= T(y, theta))  over the posterior draws,

one p-value per dataset and one for their sum. Small p (e.g. < 0.01) flags a model that does not
reproduce the data; p near 1 flags over-fitting or over-estimated errors.

The statistic of a replica is the model's own per-point log-likelihood graph with the observed
arrays replaced by inputs: compiled once per model structure, evaluated once per draw.
"""

import numpy as np
import pytensor
import pytensor.tensor as pt
import xarray as xr
from pytensor.compile.sharedvalue import SharedVariable
from pytensor.graph.replace import clone_replace
from pytensor.graph.traversal import graph_inputs

from ..compiled import compile_function, single_blas_thread
from ..errors import InferenceError
from .model import as_model

__all__ = ["ppc_pvalues", "replicated_statistic"]


def _inputs(info, model):
    """Input variables replacing the model's free parameters, latent rates and observed arrays."""
    n_free = info.table.n_free
    theta_free = pt.dvector("theta_free")
    replace = {info.theta: pt.concatenate([theta_free, info.shared["theta_frozen"]])}
    latent_inputs = []
    for name in info.latent:
        var = pt.dvector(name)
        replace[model[name]] = var
        latent_inputs.append((name, var))
    observed_inputs = []
    for plan in info.plans:
        for key, values in plan.points.observed.items():
            shared = info.shared.get(f"{plan.name}.{key}")
            array = plan.arrays.get(key)
            if shared is None or array is None or np.shape(array) != np.shape(values) or \
                    not np.array_equal(array, values):
                granularity = plan.points.dim_suffix
                raise InferenceError(
                    f"datasets {plan.dataset_names}: their posterior-predictive replicas are per {granularity!r} "
                    "(sums of bins), the statistic needs one replica per bin: sample with granularity='bin'")
            var = pt.vector(f"{plan.name}.{key}", dtype=shared.type.dtype)
            replace[shared] = var
            observed_inputs.append((plan, key, var))
    return n_free, theta_free, latent_inputs, observed_inputs, replace


def _compile(info, model):
    """``f(theta_free, *latent, *observed, *data) -> [per-point log-likelihood of each group]``."""
    n_free, theta_free, latent_inputs, observed_inputs, replace = _inputs(info, model)
    outputs = clone_replace([graph.loglike_points for graph in info.graphs], replace)
    shared = sorted({v for v in graph_inputs(outputs) if isinstance(v, SharedVariable)}, key=lambda v: v.name)
    data_inputs = [v.type(name=v.name) for v in shared]
    outputs = clone_replace(outputs, dict(zip(shared, data_inputs, strict=True)))
    inputs = [theta_free, *(v for _, v in latent_inputs), *(v for _, _, v in observed_inputs), *data_inputs]
    with pytensor.config.change_flags(traceback__limit=0):
        function = compile_function(inputs, outputs, mode="NUMBA")
    data = [np.ascontiguousarray(v.get_value(borrow=True)) for v in shared]
    return function, data, latent_inputs, observed_inputs


def _draws(group, name, what):
    try:
        values = group[name]
    except KeyError as exc:
        raise InferenceError(f"the result has no {what} {name!r}: pass the datasets or model it was sampled on, "
                             "and a result of sample(..., posterior_predictive=True)") from exc
    return np.asarray(values.values, dtype=float)


def _per_plan(tree, plan, key, group, what):
    """(chain, draw, n_points) of ``group``'s variables of the plan's datasets, in point order
    (variables ``<dataset>`` for counts, ``<dataset>.<key>`` otherwise)."""
    points = plan.points
    out = None
    for j, dataset in enumerate(plan.dataset_names):
        name = dataset if key == "counts" else f"{dataset}.{key}"
        values = _draws(tree[group], name, what)
        if out is None:
            out = np.empty(values.shape[:-1] + (points.dataset.size,))
        mine = points.dataset == j
        if values.shape[-1] != mine.sum():
            raise InferenceError(f"dataset {dataset!r}: the result has {values.shape[-1]} points of {key!r}, the "
                                 f"model {mine.sum()}: pass the datasets or model the result was sampled on")
        out[..., mine] = values
    return out


def replicated_statistic(tree, datasets_or_model, progressbar=True):
    """Per draw and dataset: the total statistic of the observed data and of the replica.

    Returns
    -------
    (observed, replicated, names)
        Arrays of shape (chain, draw, n_datasets) and the dataset names.
    """
    model, info = as_model(datasets_or_model)
    for name in ("posterior", "posterior_predictive", "observed_data"):
        if name not in tree.children:
            raise InferenceError(f"the result has no {name!r} group: use a result of "
                                 "sample(..., posterior_predictive=True)")
    for plan in info.plans:
        for key, values in plan.points.observed.items():
            recorded = _per_plan(tree, plan, key, "observed_data", "observed data")
            if not np.array_equal(recorded, values):
                raise InferenceError(f"datasets {plan.dataset_names}: the result's observed {key} differ from the "
                                     "model's data: pass the datasets or model the result was sampled on")
    function, data, latent_inputs, observed_inputs = _compile(info, model)
    posterior = tree["posterior"]
    theta = np.stack([_draws(posterior, name, "posterior variable") for name in info.table.free_names], axis=-1)
    n_chain, n_draw = theta.shape[:2]
    latent = []
    for name, _ in latent_inputs:
        plan = info.latent[name][0]
        latent.append(_per_plan(tree, plan, "mu_off", "posterior", "posterior variable"))
    # the compiled function trusts its inputs: arrays in the inputs' own dtypes
    replicas = [_per_plan(tree, plan, key, "posterior_predictive", "posterior-predictive variable").astype(var.dtype)
                for plan, key, var in observed_inputs]
    observed = [np.asarray(plan.points.observed[key], dtype=var.dtype) for plan, key, var in observed_inputs]
    names = list(info.names)
    stat_obs = np.empty((n_chain, n_draw, len(names)))
    stat_rep = np.empty_like(stat_obs)
    draws = [(c, d) for c in range(n_chain) for d in range(n_draw)]
    if progressbar and len(draws) > 2000:
        from tqdm.auto import tqdm

        draws = tqdm(draws, desc="replicated statistics", leave=False)
    with single_blas_thread():
        for c, d in draws:
            args = [theta[c, d], *(v[c, d] for v in latent)]
            points_obs = function(*args, *observed, *data)
            points_rep = function(*args, *(r[c, d] for r in replicas), *data)
            stat_obs[c, d] = _sum_per_dataset(info, points_obs)
            stat_rep[c, d] = _sum_per_dataset(info, points_rep)
    return stat_obs, stat_rep, names


def _sum_per_dataset(info, loglike_points):
    out = []
    for plan, values in zip(info.plans, loglike_points, strict=True):
        sums = np.bincount(plan.points.dataset, weights=np.asarray(values), minlength=len(plan.dataset_names))
        out.append(-2.0 * sums)
    return np.concatenate(out)


def ppc_pvalues(tree, datasets_or_model, progressbar=True):
    """Posterior-predictive p-values of each dataset's total statistic (module docstring).

    Parameters
    ----------
    tree : `xarray.DataTree`
        A result of `sample` with ``posterior_predictive`` (Poisson replicas per draw).
    datasets_or_model : datasets or `pymc.Model`
        What the result was sampled on (its observed data are checked against them).
    progressbar : bool
        A progress bar over the draws (shown above 2000 draws).

    Returns
    -------
    `xarray.Dataset`
        ``p_value`` (dataset), ``p_value_total``, ``stat_observed`` and ``stat_replicated``
        (chain, draw, dataset): the statistic (``-2 ln L``) of the data and of the replica.
    """
    stat_obs, stat_rep, names = replicated_statistic(tree, datasets_or_model, progressbar=progressbar)
    p = np.mean(stat_rep >= stat_obs, axis=(0, 1))
    p_total = float(np.mean(stat_rep.sum(axis=-1) >= stat_obs.sum(axis=-1)))
    dims = ("chain", "draw", "dataset")
    coords = {"chain": np.arange(stat_obs.shape[0]), "draw": np.arange(stat_obs.shape[1]), "dataset": names}
    n = stat_obs.shape[0] * stat_obs.shape[1]
    return xr.Dataset(
        {
            "p_value": ("dataset", p, {"mc_error": "sqrt(p (1 - p) / n_draws)"}),
            "p_value_total": ((), p_total),
            "stat_observed": (dims, stat_obs, {"long_name": "-2 ln L of the observed data"}),
            "stat_replicated": (dims, stat_rep, {"long_name": "-2 ln L of the posterior-predictive replica"}),
        },
        coords=coords,
        attrs={"n_draws": n, "discrepancy": "total statistic (-2 ln L, gammapy's convention) per dataset"},
    )
