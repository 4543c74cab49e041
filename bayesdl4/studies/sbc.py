"""Simulation-based calibration (SBC) of the inference on a dataset template.

``result = simulation_based_calibration(simulator, n_repetitions=200)``: for each repetition
``i`` (seeds derived from ``(random_seed, i)`` alone, so any order or worker gives the same
numbers)

1. the truth is drawn from the priors and counts from the template at the truth
   (`~bayesdl4.studies.Simulator`);
2. the fresh datasets are fitted (MAP, the start of the chains) and sampled with NUTS
   (`bayesdl4.inference.fit`, `~bayesdl4.inference.sample`): compiled once per process, since
   every repetition has the same model structure;
3. the rank of the truth among ``n_ranks`` thinned posterior draws (Talts et al. 2018) and
   whether the central 68 / 95 % intervals cover it are recorded, with the MAP value and error
   and sampler diagnostics.

The result (`SBCResult`) tests the ranks for uniformity and the coverage against its nominal
level, plots (`bayesdl4.plotting.sbc`) and is written to netCDF (`SBCResult.write`, atomic).
A deliberately mis-specified fit (``background_scale_fit``) is the negative control.
"""

import json
import logging
import time
from dataclasses import asdict, dataclass, field

import numpy as np
import xarray as xr

from ..compiled import stats as compile_stats
from ..errors import BayesDL4Error, InferenceError
from .calibration import (
    central_interval_covers,
    coverage_test,
    rank_of_truth,
    rank_uniformity_test,
    thin_indices,
)
from .parallel import map_tasks, process_memory_mib, task_context
from .simulator import Simulator, models_yaml

__all__ = ["simulation_based_calibration", "SBCSettings", "SBCResult", "repetition_seeds",
           "misspecify_background"]

log = logging.getLogger(__name__)


@dataclass
class SBCSettings:
    """What each repetition does (see `simulation_based_calibration`)."""

    draws: int = 100
    tune: int = 200
    chains: int = 2
    n_ranks: int = 99
    levels: tuple = (0.68, 0.95)
    fit_first: bool = True
    background_scale_fit: float = 1.0
    random_seed: int = 0
    sampler_kwargs: dict = field(default_factory=dict)


def repetition_seeds(random_seed: int, index: int) -> tuple[int, int, int]:
    """``(truth, data, sampler)`` seeds of repetition ``index``: functions of both alone."""
    state = np.random.SeedSequence(int(random_seed), spawn_key=(int(index),)).generate_state(3)
    return tuple(int(s) for s in state)


def misspecify_background(datasets, scale: float):
    """Scale the background the likelihood sees by ``scale`` (in place; a negative control).

    Cash datasets: ``background x scale``; ON/OFF datasets: ``alpha x scale`` (the OFF
    estimate of the ON background grows by ``scale``); the counts are left as drawn.
    """
    if scale == 1.0:
        return datasets
    for dataset in datasets:
        if dataset.is_onoff:
            dataset.acceptance_off = dataset._as_map(dataset.acceptance_off.data / scale)
        elif dataset.background is not None:
            dataset.background = dataset._as_map(dataset.background.data * scale)
    return datasets


def _start_inside(datasets, simulator, start):
    """Put each free parameter at ``start`` (or keep its MAP value) strictly inside its prior."""
    from ..graph import ParameterTable

    table = ParameterTable(datasets.models)
    for name, par in zip(table.free_names, table.free, strict=True):
        value = start.get(name, par.value)
        lo, hi = simulator.priors[name].support
        if not np.isfinite(value):
            value = simulator.start_values()[name]
        if np.isfinite(lo) and np.isfinite(hi):
            margin = 1e-6 * (hi - lo)
            value = float(np.clip(value, lo + margin, hi - margin))
        elif np.isfinite(lo) and value <= lo:
            value = lo + 1e-6 * max(1.0, abs(lo))
        elif np.isfinite(hi) and value >= hi:
            value = hi - 1e-6 * max(1.0, abs(hi))
        par.value = value


def _repetition(study, index):
    """One SBC repetition (a Dask task): a dict of numbers, see `SBCResult`."""
    from ..inference import fit, sample

    simulator, settings = study
    t0 = time.perf_counter()
    before = compile_stats()
    worker, task = task_context()
    names = simulator.names
    truth_seed, data_seed, sampler_seed = repetition_seeds(settings.random_seed, index)
    truth = simulator.draw_parameters(truth_seed)
    out = {"index": index, "truth": np.array([truth[n] for n in names]), "message": ""}
    try:
        datasets = misspecify_background(simulator.simulate(truth, data_seed), settings.background_scale_fit)
        map_value = map_error = np.full(len(names), np.nan)
        fit_success = False
        if settings.fit_first:
            result = fit(datasets)
            fit_success = bool(result.success)
            map_value = np.array([result[n].value for n in names])
            map_error = np.array([result[n].error for n in names])
            if not fit_success:
                _start_inside(datasets, simulator, simulator.start_values())
        _start_inside(datasets, simulator, {})
        tree = sample(datasets, draws=settings.draws, tune=settings.tune, chains=settings.chains,
                      random_seed=sampler_seed, progressbar=False, posterior_predictive=False,
                      **settings.sampler_kwargs)
    except BayesDL4Error as error:  # a repetition that cannot be fitted is recorded, not fatal
        log.warning("SBC repetition %d failed: %s", index, error)
        out.update(_failed(len(names), len(settings.levels), str(error)))
        out.update(worker=worker, task=task, seconds=time.perf_counter() - t0,
                   compilations=_compilations(before), rss_mib=process_memory_mib())
        return out
    posterior = tree["posterior"]
    draws = np.stack([np.asarray(posterior[n].values, dtype=float).reshape(-1) for n in names])
    keep = thin_indices(draws.shape[1], settings.n_ranks)
    stats_ = tree["sample_stats"] if "sample_stats" in tree.children else None
    diverging = 0 if stats_ is None or "diverging" not in stats_ else int(np.sum(stats_["diverging"].values))
    ess, rhat = _diagnostics(posterior.to_dataset()[names])
    out.update(
        rank=rank_of_truth(draws[:, keep], out["truth"]).astype(np.int64),
        covered=np.stack([central_interval_covers(draws, out["truth"], level) for level in settings.levels],
                         axis=1),
        posterior_mean=draws.mean(axis=1), posterior_sd=draws.std(axis=1, ddof=1),
        map_value=map_value, map_error=map_error, fit_success=fit_success, n_divergent=diverging,
        ess_bulk=ess, r_hat=rhat, failed=False,
        worker=worker, task=task, seconds=time.perf_counter() - t0, compilations=_compilations(before),
        rss_mib=process_memory_mib(),
    )
    return out


def _compilations(before):
    after = compile_stats()
    return (after["compiled"] - before["compiled"]) + (after["disk_hits"] - before["disk_hits"])


def _diagnostics(posterior):
    import arviz as az

    names = list(posterior.data_vars)
    ess = az.ess(posterior, method="bulk")
    rhat = az.rhat(posterior)
    return (np.array([float(ess[n]) for n in names]), np.array([float(rhat[n]) for n in names]))


def _failed(n_par, n_levels, message):
    nan = np.full(n_par, np.nan)
    return dict(rank=np.full(n_par, -1, dtype=np.int64), covered=np.zeros((n_par, n_levels), dtype=bool),
                posterior_mean=nan, posterior_sd=nan, map_value=nan, map_error=nan, fit_success=False,
                n_divergent=0, ess_bulk=nan, r_hat=nan, failed=True, message=message)


def simulation_based_calibration(simulator, n_repetitions: int, *, draws: int = 100, tune: int = 200,
                                 chains: int = 2, n_ranks: int = 99, levels: tuple = (0.68, 0.95),
                                 fit_first: bool = True, background_scale_fit: float = 1.0, random_seed: int = 0,
                                 client=None, progressbar: bool = True, **sampler_kwargs) -> "SBCResult":
    """Run an SBC study (module docstring) and return its `SBCResult`.

    Parameters
    ----------
    simulator : `~bayesdl4.studies.Simulator` or datasets with models
        The template and the priors the truth is drawn from.
    n_repetitions : int
    draws, tune, chains : int
        NUTS settings of each repetition (`bayesdl4.inference.sample`).
    n_ranks : int
        Posterior draws each rank is taken among, evenly thinned from ``chains x draws``
        (``n_ranks + 1`` rank values: 99 gives 100, ten bins of ten).
    levels : tuple of float
        Central-interval levels whose coverage is recorded.
    fit_first : bool
        Start the chains at the MAP fit (also recorded: ``map_value``, ``map_error``).
    background_scale_fit : float
        Scale of the background in the fit only (`misspecify_background`): 1 for a correct
        study, e.g. 1.2 for the negative control.
    random_seed : int
        Same seed, same study (serially or on any number of Dask workers).
    client : `distributed.Client`, str, bool or None
        Run the repetitions on Dask (`bayesdl4.studies.parallel`).
    progressbar : bool
    **sampler_kwargs
        Passed on to `~bayesdl4.inference.sample` (e.g. ``cores=1``).
    """
    if not isinstance(simulator, Simulator):
        simulator = Simulator(simulator)
    if int(n_repetitions) < 1:
        raise InferenceError(f"n_repetitions must be >= 1, got {n_repetitions}")
    thin_indices(int(draws) * int(chains), int(n_ranks))  # checks n_ranks <= chains x draws now
    settings = SBCSettings(draws=int(draws), tune=int(tune), chains=int(chains), n_ranks=int(n_ranks),
                           levels=tuple(float(v) for v in levels), fit_first=bool(fit_first),
                           background_scale_fit=float(background_scale_fit), random_seed=int(random_seed),
                           sampler_kwargs=dict(sampler_kwargs))
    t0 = time.perf_counter()
    records = map_tasks(_repetition, range(int(n_repetitions)), shared=(simulator, settings), client=client,
                        progressbar=progressbar, desc="SBC")
    result = SBCResult.from_records(records, simulator, settings)
    result.run.attrs["wall_time_s"] = time.perf_counter() - t0
    failed = int(result.data["failed"].sum())
    if failed:
        log.warning("SBC: %d of %d repetitions failed (see result.data['message'])", failed, n_repetitions)
    return result


class SBCResult:
    """Outcome of `simulation_based_calibration`.

    Attributes
    ----------
    data : `xarray.Dataset`
        Per ``repetition`` and ``parameter``: ``truth``, ``rank``, ``covered`` (per ``level``),
        ``posterior_mean``, ``posterior_sd``, ``map_value``, ``map_error``, ``ess_bulk``,
        ``r_hat``; per repetition ``fit_success``, ``n_divergent``, ``failed``, ``message``. The
        settings and the priors are in its attrs. Identical for the same seed wherever it ran.
    run : `xarray.Dataset`
        How it ran: per repetition ``worker`` (process id), ``task`` (its number in that
        process), ``compilations`` (functions compiled or loaded from disk during it),
        ``seconds``, ``rss_mib`` (resident memory of the process after it); ``wall_time_s`` of the
        study in attrs.
    """

    def __init__(self, data, run):
        self.data, self.run = data, run

    @classmethod
    def from_records(cls, records, simulator, settings):
        names = simulator.names
        records = sorted(records, key=lambda r: r["index"])
        stack = lambda key: np.stack([np.asarray(r[key]) for r in records])  # noqa: E731
        per_parameter = ("truth", "rank", "posterior_mean", "posterior_sd", "map_value", "map_error", "ess_bulk",
                         "r_hat")
        data = xr.Dataset(
            {key: (("repetition", "parameter"), stack(key)) for key in per_parameter},
            coords={"repetition": [r["index"] for r in records], "parameter": names,
                    "level": list(settings.levels)},
        )
        data["covered"] = (("repetition", "parameter", "level"), stack("covered"))
        for key in ("fit_success", "n_divergent", "failed"):
            data[key] = ("repetition", stack(key))
        data["message"] = ("repetition", np.array([r["message"] for r in records], dtype=str))
        settings_dict = asdict(settings)
        settings_dict["levels"] = list(settings.levels)
        data.attrs.update(
            settings=json.dumps(settings_dict, default=str),
            priors=json.dumps({n: repr(p) for n, p in simulator.priors.items()}),
            models_yaml=models_yaml(simulator.models),
            n_ranks=settings.n_ranks,
        )
        run = xr.Dataset({key: ("repetition", stack(key)) for key in ("worker", "task", "compilations", "seconds", "rss_mib")},
                         coords={"repetition": data["repetition"].values})
        return cls(data, run)

    # ------------------------------------------------------------------ statistics
    @property
    def n_ranks(self):
        return int(self.data.attrs["n_ranks"])

    @property
    def parameters(self):
        return [str(p) for p in self.data["parameter"].values]

    def _ok(self):
        return self.data.isel(repetition=~self.data["failed"].values.astype(bool))

    def rank_test(self, n_bins: int = 10) -> dict:
        """``{parameter: (chi2, p_value)}``: `rank_uniformity_test` of each parameter's ranks."""
        data = self._ok()
        return {name: rank_uniformity_test(data["rank"].sel(parameter=name).values, self.n_ranks, n_bins)[:2]
                for name in self.parameters}

    def coverage(self) -> dict:
        """``{(parameter, level): (fraction, sigma, p_value)}`` (`coverage_test`)."""
        data = self._ok()
        out = {}
        for name in self.parameters:
            for level in data["level"].values:
                covered = data["covered"].sel(parameter=name, level=level).values
                out[(name, float(level))] = coverage_test(covered, float(level))
        return out

    def passed(self, alpha: float = 0.01, n_bins: int = 10) -> bool:
        """Whether every parameter's rank test and coverage test give ``p > alpha``."""
        return (all(p > alpha for _, p in self.rank_test(n_bins).values())
                and all(p > alpha for _, _, p in self.coverage().values()))

    def summary(self, n_bins: int = 10) -> str:
        """A plain-text table of the tests."""
        lines = [f"SBC: {self.data.sizes['repetition']} repetitions ({int(self.data['failed'].sum())} failed), "
                 f"ranks among {self.n_ranks} draws"]
        ranks, coverage = self.rank_test(n_bins), self.coverage()
        for name in self.parameters:
            chi2, p = ranks[name]
            cover = ", ".join(f"{100 * lv:.0f}%: {f:.3f} +- {s:.3f} (p {pc:.3f})"
                              for (n, lv), (f, s, pc) in coverage.items() if n == name)
            lines.append(f"  {name}: rank chi2 {chi2:.1f} ({n_bins - 1} dof), p = {p:.3g}; coverage {cover}")
        return "\n".join(lines)

    # ------------------------------------------------------------------ files
    def to_datatree(self):
        return xr.DataTree.from_dict({"sbc": self.data, "run": self.run})

    @classmethod
    def from_datatree(cls, tree):
        data = tree["sbc"].to_dataset()
        data["message"] = data["message"].astype(str)
        return cls(data, tree["run"].to_dataset())

    def write(self, path, overwrite=False):
        """Write to netCDF (atomic, `bayesdl4.inference.write`)."""
        from ..inference import write

        return write(self.to_datatree(), path, overwrite=overwrite)

    @classmethod
    def read(cls, path):
        from ..inference import read

        return cls.from_datatree(read(path))

    def __repr__(self):
        return self.summary()

