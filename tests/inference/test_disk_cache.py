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

from bayesdl4.inference import disk_cache, fit
from bayesdl4.inference.compiled import clear_cache
from bayesdl4.inference.model import JointModel
from bayesdl4.models import Models, PowerLawSpectralModel, SkyModel
from tests.helpers import simulated_onoff


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


def _digest_in_subprocess(seed):
    code = textwrap.dedent("""
        from bayesdl4.inference import disk_cache
        from bayesdl4.inference.model import JointModel
        from tests.helpers import simulated_onoff
        from tests.inference.test_disk_cache import _models
        datasets = simulated_onoff(n=2, seed=11)
        datasets.models = _models()
        print(disk_cache.stable_digest(("logp", "NUMBA", JointModel(datasets).structure_key(scales=False))))
    """)
    env = dict(os.environ, PYTHONHASHSEED=str(seed))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True,
                         cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
    return out.stdout.strip().splitlines()[-1]


def test_the_key_is_the_same_in_every_process():
    digests = {_digest_in_subprocess(seed) for seed in (1, 2)}
    datasets = simulated_onoff(n=2, seed=11)
    datasets.models = _models()
    digests.add(disk_cache.stable_digest(("logp", "NUMBA", JointModel(datasets).structure_key(scales=False))))
    assert len(digests) == 1
    (digest,) = digests
    assert len(digest) == 40


def test_keys_with_identities_are_not_stable():
    assert disk_cache.stable_digest(("a", ("callable", 1234))) is None
    assert disk_cache.stable_digest(("a", ("object", "m", "T", "", 99))) is None
    assert disk_cache.stable_digest(("a", ("array", "<f8", (2,), "ff"))) is not None


def test_a_fit_in_a_new_session_loads_the_same_function(folder):
    datasets = simulated_onoff(n=2, seed=3)
    datasets.models = _models()
    first = fit(datasets)
    (entry,) = folder.glob("*.pkl")
    assert not list(folder.glob(".tmp-*"))
    clear_cache()  # as a new process: only the disk entry is left
    datasets.models = _models(index=2.6)  # fresh models, other starting values
    second = fit(datasets)
    assert list(folder.glob("*.pkl")) == [entry]
    np.testing.assert_allclose(second.total_stat, first.total_stat, rtol=0, atol=1e-6)
    for name in first.names:
        np.testing.assert_allclose(second[name].value, first[name].value, rtol=1e-5)
    # the loaded function is the one written: same outputs at the same point
    loaded = disk_cache.load(entry.stem)
    joint = JointModel(datasets)
    x = joint.values / joint.scales
    for a, b in zip(loaded(x, joint.scales), joint.log_density_function()(x), strict=True):
        np.testing.assert_array_equal(a, b)


def test_an_unreadable_entry_is_dropped_and_compiled_again(folder):
    datasets = simulated_onoff(n=2, seed=4)
    datasets.models = _models()
    reference = fit(datasets).total_stat
    (entry,) = folder.glob("*.pkl")
    entry.write_bytes(entry.read_bytes()[:100])  # truncated, as by a crash of another writer
    clear_cache()
    datasets.models = _models()
    assert fit(datasets).total_stat == pytest.approx(reference, abs=1e-6)
    (rewritten,) = folder.glob("*.pkl")
    assert rewritten.stat().st_size > 1000
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
