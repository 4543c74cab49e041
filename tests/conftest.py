"""Shared helpers: real-data paths, gammapy oracle, simulated datasets."""

import os
import shutil
import tempfile
from pathlib import Path

import pytest

_CACHE_DIR = None


def pytest_configure(config):
    """Compiled functions go to a folder of this test session, never to the user's cache (made
    here, not at import: processes that import test modules must not leave folders behind).
    pytest-xdist's workers share the folder of the process that started them (its writes are
    atomic), which removes it when the session ends."""
    global _CACHE_DIR
    shared = os.environ.get("BAYESDL4_TESTS_CACHE_DIR")
    if os.environ.get("PYTEST_XDIST_WORKER") and shared and Path(shared).is_dir():
        os.environ["BAYESDL4_CACHE_DIR"] = shared
        return
    _CACHE_DIR = tempfile.mkdtemp(prefix="bayesdl4-tests-compiled-")
    os.environ["BAYESDL4_CACHE_DIR"] = os.environ["BAYESDL4_TESTS_CACHE_DIR"] = _CACHE_DIR


def pytest_sessionfinish(session, exitstatus):
    if _CACHE_DIR is not None:
        shutil.rmtree(_CACHE_DIR, ignore_errors=True)


def gammapy_data():
    """Path of $GAMMAPY_DATA, or skip the test with a clear reason."""
    path = os.environ.get("GAMMAPY_DATA")
    if not path or not Path(path).is_dir():
        pytest.skip("GAMMAPY_DATA is not set (or not a folder): real-data test skipped")
    return Path(path)


JOINT_CRAB_RANGES = {  # fit ranges in TeV of the joint-crab paper (Nigro et al. 2019)
    "fermi": (0.03, 2.0),
    "magic": (0.08, 30.0),
    "veritas": (0.15, 30.0),
    "fact": (0.4, 30.0),
    "hess": (0.66, 30.0),
}
