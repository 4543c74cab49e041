"""Compiled log densities on disk: stable keys across processes, atomic writes, unreadable entries
dropped, a size limit, and a switch to turn it off."""

import os
import pickle
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from astropy import units as u

from bayesdl4.compiled import clear_cache, disk
from bayesdl4.inference import fit
from bayesdl4.models import Models, PowerLawSpectralModel, SkyModel
from tests.helpers import simulated_onoff

disk_cache = disk


def _models(index=2.0):
    spectral = PowerLawSpectralModel(index=index, amplitude=1e-11 * u.Unit("cm-2 s-1 TeV-1"))
    return Models([SkyModel(spectral, name="src")])


@pytest.fixture
def folder(tmp_path, monkeypatch):
    path = tmp_path / "compiled"
    monkeypatch.setenv("BAYESDL4_CACHE_DIR", str(path))
    clear_cache()
    yield path
    clear_cache()


def _fit_in_subprocess(folder, seed, hash_seed):
    """Counts of compiled / loaded functions of a fit in a new process (other data, other hash seed)."""
    code = textwrap.dedent(f"""
        import json
        from bayesdl4.compiled import stats
        from bayesdl4.inference import fit
        from tests.helpers import simulated_onoff
        from tests.compiled.test_disk import _models
        datasets = simulated_onoff(n=2, seed={seed})
        datasets.models = _models()
        result = fit(datasets)
        print(json.dumps([stats(), result.total_stat]))
    """)
    env = dict(os.environ, PYTHONHASHSEED=str(hash_seed), BAYESDL4_CACHE_DIR=str(folder))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True,
                         cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
    import json

    return json.loads(out.stdout.strip().splitlines()[-1])


def test_a_new_process_with_other_data_loads_every_function_from_disk(folder):
    """Keys come from the graph (data are inputs), the same in every process: a second process
    with other simulated data and another hash seed compiles nothing."""
    first, stat1 = _fit_in_subprocess(folder, seed=3, hash_seed=1)
    assert first["compiled"] >= 2
    entries = sorted(folder.glob("*.pkl"))
    functions = [e for e in entries if not e.name.startswith("structure-")]
    # one entry per compiled function, and per model function an index from the model's structure
    # to it (a new process with a model of the same structure builds no graph)
    assert len(functions) == first["compiled"] and not list(folder.glob(".tmp-*"))
    assert 1 <= len(entries) - len(functions) <= len(functions)
    second, stat2 = _fit_in_subprocess(folder, seed=4, hash_seed=2)
    assert second["compiled"] == 0
    assert second["disk_hits"] == first["compiled"]
    assert sorted(folder.glob("*.pkl")) == entries
    assert stat1 != stat2  # other data, other statistic


def test_an_unreadable_entry_is_dropped_and_compiled_again(folder):
    from bayesdl4.compiled import stats
    from bayesdl4.inference import density

    datasets = simulated_onoff(n=2, seed=4)
    datasets.models = _models()
    before = stats()["compiled"]
    reference = fit(datasets).total_stat
    n_fit = stats()["compiled"] - before  # the functions a fit needs
    for entry in folder.glob("*.pkl"):
        entry.write_bytes(entry.read_bytes()[:100])  # truncated, as by a crash of another writer
    clear_cache()
    density._BY_STRUCTURE.clear()
    datasets.models = _models()
    before = stats()
    assert fit(datasets).total_stat == pytest.approx(reference, abs=1e-6)
    assert stats()["compiled"] - before["compiled"] == n_fit and stats()["disk_hits"] == before["disk_hits"]
    readable = [entry for entry in folder.glob("*.pkl") if disk_cache.load(entry.stem) is not None
                and not entry.name.startswith("structure-")]
    assert len(readable) == n_fit
    assert disk_cache.load("0" * 40) is None  # absent


def test_off_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("BAYESDL4_CACHE_DIR", "off")
    assert disk_cache.cache_dir() is None
    assert disk_cache.save("a" * 40, 1) is None
    assert disk_cache.load("a" * 40) is None
    monkeypatch.delenv("BAYESDL4_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert disk_cache.cache_dir() == tmp_path / "bayesdl4" / "compiled"


def test_a_failed_write_leaves_no_file(folder):
    assert disk_cache.save("b" * 40, lambda: None) is None  # a lambda does not pickle
    assert not folder.exists() or not list(folder.iterdir())


def test_the_folder_keeps_the_most_recently_used_entries(folder, monkeypatch):
    monkeypatch.setattr(disk_cache, "MAX_FILES", 3)
    for i in range(5):
        disk_cache.save(f"{i:040d}", np.arange(10) + i)
        os.utime(folder / f"{i:040d}.pkl", (1000 + i, 1000 + i))
    disk_cache.load(f"{2:040d}")  # used now: kept
    disk_cache.save("9" * 40, 9)
    kept = sorted(p.stem for p in folder.glob("*.pkl"))
    assert kept == sorted([f"{2:040d}", f"{4:040d}", "9" * 40])
    with open(folder / f"{4:040d}.pkl", "rb") as stream:
        np.testing.assert_array_equal(pickle.load(stream), np.arange(10) + 4)
    monkeypatch.setattr(disk_cache, "MAX_BYTES", 1)  # only the newest entry fits
    disk_cache.save("8" * 40, 8)
    assert [p.stem for p in folder.glob("*.pkl")] == ["8" * 40]
