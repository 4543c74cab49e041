"""Studies on Dask: the same results as the serial run, each worker compiling once."""

import numpy as np
import pytest
import xarray as xr

from bayesdl4.errors import InferenceError
from bayesdl4.studies import (
    fit_repetitions,
    map_tasks,
    resolve_client,
    simulation_based_calibration,
)
from tests.studies.conftest import TRUTH


def _square_plus(shared, item):
    return shared + item**2


def test_serial_map_keeps_the_order_and_passes_the_shared_object():
    assert map_tasks(_square_plus, [3, 1, 2], shared=10, client=False, progressbar=False) == [19, 11, 14]


def test_no_client_and_no_configuration_runs_here():
    import dask

    with dask.config.set({"scheduler-address": None, "bayesdl4.dask": False}):
        assert resolve_client(None) == (None, False)
    assert resolve_client(False) == (None, False)
    with pytest.raises(InferenceError, match="client must be a distributed.Client"):
        resolve_client(42)


@pytest.fixture(scope="module")
def client():
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
    client = distributed.Client(cluster)
    yield client
    client.close()
    cluster.close()


@pytest.mark.slow
def test_dask_runs_give_the_serial_results_and_compile_once_per_worker(client, onoff_sim, sbc_sim):
    """Done when: the Dask run of a study returns exactly the serial run's results."""
    serial = fit_repetitions(onoff_sim, 8, truth=TRUTH, random_seed=3, client=False, progressbar=False)
    on_dask = fit_repetitions(onoff_sim, 8, truth=TRUTH, random_seed=3, client=client, progressbar=False)
    xr.testing.assert_identical(on_dask.data, serial.data)
    _compiled_once_per_worker(on_dask.run, n_workers=2)

    sbc_serial = simulation_based_calibration(sbc_sim, 6, draws=50, tune=100, n_ranks=49, random_seed=4,
                                              client=False, progressbar=False)
    sbc_dask = simulation_based_calibration(sbc_sim, 6, draws=50, tune=100, n_ranks=49, random_seed=4,
                                            client=client, progressbar=False)
    xr.testing.assert_identical(sbc_dask.data, sbc_serial.data)  # ranks, draws' moments, MAP fits: bit for bit
    _compiled_once_per_worker(sbc_dask.run, n_workers=2)
    assert np.any(sbc_dask.data["rank"].values != sbc_dask.data["rank"].values[0])


def _compiled_once_per_worker(run, n_workers):
    workers, tasks = run["worker"].values, run["task"].values
    compilations = run["compilations"].values
    assert len(set(workers)) == n_workers  # every worker took tasks
    for worker in set(workers):  # only a worker's first task of the study compiles (or loads) anything
        mine = workers == worker
        assert compilations[mine & (tasks > tasks[mine].min())].sum() == 0
