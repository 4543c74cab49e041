"""MAP fits of many simulated repetitions of one template: bias, pulls, coverage of the errors.

``study = fit_repetitions(simulator, 100, truth={...})`` draws Poisson datasets at the truth
(fixed, or drawn from the priors per repetition with ``truth=None``), fits each from the models'
start values and collects best-fit values and errors. The likelihood is compiled once per process
(every repetition has the same model structure), and the repetitions run on Dask when asked
(`bayesdl4.studies.parallel`), with the serial run's results.
"""

import logging
import time

import numpy as np
import xarray as xr

from ..compiled import stats as compile_stats
from ..errors import BayesDL4Error, InferenceError, ModelError
from .parallel import map_tasks, process_memory_mib, task_context
from .sbc import misspecify_background, repetition_seeds
from .simulator import Simulator

__all__ = ["fit_repetitions", "FitRepetitions"]

log = logging.getLogger(__name__)


def _fit_task(study, index):
    """One repetition: simulate, fit; a dict of numbers (a Dask task)."""
    from ..inference import fit

    simulator, truth, random_seed, background_scale_fit = study
    t0 = time.perf_counter()
    before = compile_stats()
    worker, task = task_context()
    truth_seed, data_seed, _ = repetition_seeds(random_seed, index)
    values = simulator.draw_parameters(truth_seed) if truth is None else truth
    names = simulator.names
    out = {"index": index, "truth": np.array([values[n] for n in names]), "message": ""}
    try:
        datasets = misspecify_background(simulator.simulate(values, data_seed), background_scale_fit)
        result = fit(datasets)
        out.update(value=np.array([result[n].value for n in names]), error=np.array([result[n].error for n in names]),
                   success=bool(result.success), total_stat=float(result.total_stat), nfev=int(result.nfev))
    except BayesDL4Error as error:
        log.warning("repetition %d failed: %s", index, error)
        nan = np.full(len(names), np.nan)
        out.update(value=nan, error=nan, success=False, total_stat=np.nan, nfev=0, message=str(error))
    after = compile_stats()
    out.update(worker=worker, task=task, seconds=time.perf_counter() - t0,
               compilations=(after["compiled"] - before["compiled"]) + (after["disk_hits"] - before["disk_hits"]),
               rss_mib=process_memory_mib())
    return out


def fit_repetitions(simulator, n_repetitions: int, truth: dict | None = None, random_seed: int = 0,
                    background_scale_fit: float = 1.0, client=None, progressbar: bool = True) -> "FitRepetitions":
    """Fit ``n_repetitions`` simulated repetitions of a template (module docstring).

    Parameters
    ----------
    simulator : `~bayesdl4.studies.Simulator` or datasets with models
    n_repetitions : int
    truth : dict, optional
        ``{name: value}`` of every free parameter (physical units); default: drawn from the priors
        per repetition.
    random_seed : int
        Same seed, same datasets and fits (serially or on Dask).
    background_scale_fit : float
        Background scale in the fit only (`~bayesdl4.studies.misspecify_background`).
    client : `distributed.Client`, str, bool or None
        Where to run (`bayesdl4.studies.parallel`).
    progressbar : bool

    Returns
    -------
    `FitRepetitions`
    """
    if not isinstance(simulator, Simulator):
        simulator = Simulator(simulator)
    if int(n_repetitions) < 1:
        raise InferenceError(f"n_repetitions must be >= 1, got {n_repetitions}")
    if truth is not None:
        missing = sorted(set(simulator.names) - set(truth))
        if missing:
            raise ModelError(f"fit_repetitions: truth has no value for {missing}; give all of {simulator.names}")
        truth = {n: float(truth[n]) for n in simulator.names}
    t0 = time.perf_counter()
    records = map_tasks(_fit_task, range(int(n_repetitions)), shared=(simulator, truth, int(random_seed),
                                                                       float(background_scale_fit)),
                        client=client, progressbar=progressbar, desc="fits")
    result = FitRepetitions.from_records(records, simulator.names)
    result.run.attrs["wall_time_s"] = time.perf_counter() - t0
    return result


class FitRepetitions:
    """Fits of simulated repetitions.

    ``data``: per ``repetition`` and ``parameter`` ``truth``, ``value``, ``error``; per repetition
    ``success``, ``total_stat``, ``nfev``, ``message`` (identical for one seed wherever it ran).
    ``run``: ``worker``, ``task``, ``compilations``, ``seconds``, ``rss_mib`` per repetition.
    """

    def __init__(self, data, run):
        self.data, self.run = data, run

    @classmethod
    def from_records(cls, records, names):
        records = sorted(records, key=lambda r: r["index"])
        stack = lambda key: np.stack([np.asarray(r[key]) for r in records])  # noqa: E731
        coords = {"repetition": [r["index"] for r in records], "parameter": list(names)}
        data = xr.Dataset({k: (("repetition", "parameter"), stack(k)) for k in ("truth", "value", "error")},
                          coords=coords)
        for key in ("success", "total_stat", "nfev"):
            data[key] = ("repetition", stack(key))
        data["message"] = ("repetition", np.array([r["message"] for r in records], dtype=str))
        run = xr.Dataset({k: ("repetition", stack(k)) for k in ("worker", "task", "compilations", "seconds", "rss_mib")},
                         coords={"repetition": coords["repetition"]})
        return cls(data, run)

    @property
    def pulls(self):
        """``(value - truth) / error`` per repetition and parameter (successful fits)."""
        ok = self.data.isel(repetition=self.data["success"].values.astype(bool))
        return (ok["value"] - ok["truth"]) / ok["error"]

    def summary(self) -> str:
        """Mean and standard deviation of the pulls per parameter (0 and 1 when errors are right)."""
        pulls = self.pulls
        lines = [f"{self.data.sizes['repetition']} fits, {int(self.data['success'].sum())} successful"]
        for name in pulls["parameter"].values:
            p = pulls.sel(parameter=name).values
            lines.append(f"  {name}: pull mean {p.mean():+.3f} +- {p.std() / np.sqrt(p.size):.3f}, sd {p.std():.3f}")
        return "\n".join(lines)

    def to_datatree(self):
        return xr.DataTree.from_dict({"fits": self.data, "run": self.run})

    def write(self, path, overwrite=False):
        """Write to netCDF (atomic, `bayesdl4.inference.write`)."""
        from ..inference import write

        return write(self.to_datatree(), path, overwrite=overwrite)

    @classmethod
    def read(cls, path):
        from ..inference import read

        tree = read(path)
        data = tree["fits"].to_dataset()
        data["message"] = data["message"].astype(str)
        return cls(data, tree["run"].to_dataset())

    def __repr__(self):
        return self.summary()
