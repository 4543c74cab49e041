"""Independent tasks of a study, serially or on Dask, with the same results either way.

`map_tasks(function, items, shared, client=...)` calls ``function(shared, item)`` for every item
and returns the results in the items' order. Each task must be a pure function of ``(shared,
item)`` (its seeds derived from the item, never from the order of execution), so the serial run
and a Dask run on any number of workers return the same values.

Dask is used when asked:

* ``client=`` a `distributed.Client` (a `LocalCluster`, dask-jobqueue, Kubernetes, ...), or the
  address of a scheduler (``"tcp://host:8786"``);
* ``client=True`` (or ``"local"``): a `LocalCluster` started for the call and closed after it
  (``n_workers`` from Dask's configuration key ``bayesdl4.n-workers``, else one per core; one
  thread per worker);
* ``client=None`` (default): Dask's configuration decides: its ``scheduler-address`` (e.g.
  ``DASK_SCHEDULER_ADDRESS``) connects to that scheduler, ``bayesdl4.dask: true`` starts a
  `LocalCluster`; otherwise the tasks run here, one after the other;
* ``client=False``: always here.

``shared`` (the study: template datasets, models, settings) is sent to each worker once
(`Client.scatter` with ``broadcast=True``) and deserialised once there, so what it compiles on
first use (and the compiled functions in the worker's caches, `bayesdl4.compiled`) serve every
later task of that worker: each worker compiles once.
"""

import itertools
import logging
import os
from collections.abc import Callable, Iterable

from ..errors import InferenceError

__all__ = ["map_tasks", "resolve_client", "task_context", "process_memory_mib"]

log = logging.getLogger(__name__)

_TASKS_IN_PROCESS = itertools.count(1)


def task_context() -> tuple[int, int]:
    """``(process id, number of this task in the process)``: recorded by tasks so that a study can
    show which worker ran what and that later tasks of a worker compiled nothing."""
    return os.getpid(), next(_TASKS_IN_PROCESS)


def process_memory_mib() -> float:
    """Resident memory of this process in MiB (NaN where psutil is missing)."""
    try:
        import psutil
    except ImportError:
        return float("nan")
    return psutil.Process().memory_info().rss / 2**20


def _local_cluster():
    import dask
    from distributed import Client, LocalCluster

    n_workers = dask.config.get("bayesdl4.n-workers", None) or os.cpu_count() or 1
    cluster = LocalCluster(n_workers=int(n_workers), threads_per_worker=1, processes=True,
                           dashboard_address=None)
    return Client(cluster)


def resolve_client(client=None):
    """``(client or None, owned)``: the Dask client to use (see the module docstring) and whether
    this call started it (and must close it)."""
    if client is False:
        return None, False
    try:
        import dask
    except ImportError:
        if client is None:
            return None, False
        raise InferenceError("Dask was asked for (client=...) but is not installed: pip install dask distributed") \
            from None
    if client is None:
        address = dask.config.get("scheduler-address", None)
        if address:
            client = address
        elif dask.config.get("bayesdl4.dask", False):
            client = True
        else:
            return None, False
    from distributed import Client

    if client is True or client == "local":
        return _local_cluster(), True
    if isinstance(client, str):
        return Client(client), True
    if isinstance(client, Client):
        return client, False
    raise InferenceError(f"client must be a distributed.Client, a scheduler address, True (a LocalCluster), "
                         f"False or None, got {type(client).__name__}")


def _progress(total, desc, progressbar):
    if not progressbar:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc)


def map_tasks(function: Callable, items: Iterable, shared=None, client=None, progressbar: bool = True,
              desc: str = "tasks") -> list:
    """``[function(shared, item) for item in items]``, here or on Dask (module docstring).

    Parameters
    ----------
    function : callable
        A module-level function (it is pickled by reference to the workers).
    items : sequence
        One task each (small: indices, seeds, file names).
    shared : object
        Sent once to each worker; must pickle.
    client : `distributed.Client`, str, bool or None
        Where to run (module docstring).
    progressbar : bool
        A tqdm bar over finished tasks.
    desc : str
        The bar's label.

    Returns
    -------
    list
        Results in the order of ``items``.
    """
    items = list(items)
    client, owned = resolve_client(client)
    bar = _progress(len(items), desc, progressbar)
    try:
        if client is None:
            results = []
            for item in items:
                results.append(function(shared, item))
                if bar is not None:
                    bar.update()
            return results
        return _map_dask(client, function, items, shared, bar)
    finally:
        if bar is not None:
            bar.close()
        if owned:
            cluster = getattr(client, "cluster", None)
            client.close()
            if cluster is not None:
                cluster.close()


def _map_dask(client, function, items, shared, bar):
    from distributed import as_completed

    log.info("running %d tasks on Dask (%s)", len(items), client)
    [remote] = client.scatter([shared], broadcast=True, hash=False)
    futures = client.map(function, [remote] * len(items), items, pure=False)
    position = {future.key: k for k, future in enumerate(futures)}
    results = [None] * len(items)
    try:
        for future, result in as_completed(futures, with_results=True):
            results[position[future.key]] = result
            if bar is not None:
                bar.update()
    finally:
        client.cancel(futures)
        client.cancel([remote])
    return results
