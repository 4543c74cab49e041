"""Shared pieces of the benchmarks: the joint-crab setup on both sides, timers, subprocess runs, tables.

Both sides read the same ten OGIP spectra, apply the same fit ranges and start from the same
parameter values with the same priors, so every ratio compares the same computation.
"""

import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

BENCHMARKS_DIR = Path(__file__).resolve().parent

#: Fit ranges in TeV per instrument (joint-crab paper, Nigro et al. 2019).
JOINT_CRAB_RANGES = {
    "fermi": (0.03, 2.0),
    "magic": (0.08, 30.0),
    "veritas": (0.15, 30.0),
    "fact": (0.4, 30.0),
    "hess": (0.66, 30.0),
}

#: Start values of the log-parabola (reference 1 TeV). beta = 0 is a power law, where both sides'
#: integrals are exact, so the statistic check at the start is exact as well.
START = {"amplitude": 3e-11, "alpha": 2.3, "beta": 0.0}
AMPLITUDE_UNIT = "cm-2 s-1 TeV-1"

#: Priors, identical on both sides: (kind, min, max) in the parameter's unit.
PRIORS = {
    "amplitude": ("LogUniformPrior", 1e-13, 1e-9),
    "alpha": ("UniformPrior", 1.0, 5.0),
    "beta": ("UniformPrior", -1.0, 1.0),
}

#: gammapy 2.1's joint WStat total at its maximum-likelihood fit (no priors); CONVENTIONS.md.
REFERENCE_TOTAL_STAT = 460.2945

#: gammapy 2.1's maximum-likelihood fit (Minuit from `START`, no priors; stat 460.29453 there),
#: for the statistic check when gammapy is not installed.
GAMMAPY_ML_BEST_FIT = {
    "amplitude": 3.8489170195808876e-11,
    "alpha": 2.5053375519083194,
    "beta": 0.10256585135846584,
}

#: Names of the free parameters as bayesdl4 reports them (model name "crab").
PARAMETER_NAMES = tuple(f"crab.{name}" for name in START)


# ---------------------------------------------------------------------------------------- data
def gammapy_data():
    """``$GAMMAPY_DATA`` as a Path; exits with a clear message when it is unset."""
    path = os.environ.get("GAMMAPY_DATA")
    if not path or not Path(path).is_dir():
        sys.exit(
            "GAMMAPY_DATA is not set (or not a folder): point it at gammapy's data folder, e.g. "
            "export GAMMAPY_DATA=/path/to/gammapy-data"
        )
    return Path(path)


def joint_crab_paths(root=None):
    """``[(instrument, path), ...]`` of the ten joint-crab PHA files (fixed order)."""
    folder = Path(root or gammapy_data()) / "joint-crab" / "spectra"
    paths = []
    for instrument in JOINT_CRAB_RANGES:
        found = sorted((folder / instrument).glob("pha_*.fits"))
        if not found:
            sys.exit(f"no pha_*.fits in {folder / instrument}: is $GAMMAPY_DATA complete?")
        paths += [(instrument, path) for path in found]
    return paths


def has_gammapy():
    try:
        import gammapy  # noqa: F401
    except ImportError:
        return False
    return True


def read_ours(paths):
    """bayesdl4 `Datasets` with the fit ranges set (no models)."""
    from astropy import units as u

    from bayesdl4.datasets import Datasets, SpectrumDatasetOnOff

    datasets = []
    for instrument, path in paths:
        dataset = SpectrumDatasetOnOff.read(path)
        emin, emax = JOINT_CRAB_RANGES[instrument]
        geom = dataset.counts.geom
        dataset.mask_fit = geom.energy_mask(emin * u.TeV, emax * u.TeV)
        datasets.append(dataset)
    return Datasets(datasets)


def models_ours(values=None, priors=True):
    """Fresh bayesdl4 `Models` with the crab log-parabola at ``values`` (default `START`)."""
    from bayesdl4 import models as m

    values = {**START, **(values or {})}
    model = m.LogParabolaSpectralModel(
        amplitude=f"{values['amplitude']} {AMPLITUDE_UNIT}",
        reference="1 TeV",
        alpha=values["alpha"],
        beta=values["beta"],
    )
    if priors:
        for name, (kind, lo, hi) in PRIORS.items():
            getattr(model, name).prior = getattr(m, kind)(lo, hi)
    return m.Models([m.SkyModel(model, name="crab")])


def read_gammapy(paths):
    """gammapy `Datasets` with the same fit ranges (no models)."""
    from astropy import units as u
    from gammapy.datasets import Datasets, SpectrumDatasetOnOff

    datasets = []
    for instrument, path in paths:
        dataset = SpectrumDatasetOnOff.read(path)
        emin, emax = JOINT_CRAB_RANGES[instrument]
        dataset.mask_fit = dataset.counts.geom.energy_mask(emin * u.TeV, emax * u.TeV)
        datasets.append(dataset)
    return Datasets(datasets)


def models_gammapy(values=None, priors=True):
    """Fresh gammapy `Models`, same model, start values and priors as `models_ours`."""
    from gammapy.modeling import models as m

    values = {**START, **(values or {})}
    model = m.LogParabolaSpectralModel(
        amplitude=f"{values['amplitude']} {AMPLITUDE_UNIT}",
        reference="1 TeV",
        alpha=values["alpha"],
        beta=values["beta"],
    )
    if priors:
        for name, (kind, lo, hi) in PRIORS.items():
            getattr(model, name).prior = getattr(m, kind)(min=lo, max=hi)
    return m.Models([m.SkyModel(model, name="crab")])


def set_gammapy_values(datasets, theta):
    """Set the free parameters (amplitude, alpha, beta, in `START`'s order) of gammapy's crab model."""
    spectral = datasets.models["crab"].spectral_model
    for name, value in zip(START, theta, strict=True):
        getattr(spectral, name).value = value


def parameter_points(n=64, seed=0):
    """``n`` parameter vectors (amplitude, alpha, beta) scattered around the optimum, for per-call timing."""
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n, 3))
    return np.column_stack(
        [3.85e-11 * (1 + 0.05 * z[:, 0]), 2.5 + 0.05 * z[:, 1], 0.10 + 0.02 * z[:, 2]]
    )


# -------------------------------------------------------------------------------------- timing
@dataclass
class Timing:
    """Repeated measurements of one quantity (seconds)."""

    samples: list

    @property
    def best(self):
        return min(self.samples)

    @property
    def median(self):
        return statistics.median(self.samples)

    def __str__(self):
        return f"median {format_seconds(self.median)}, best {format_seconds(self.best)} (n={len(self.samples)})"


def time_per_call(fn, args, repeat=5, min_time=0.5, warmup=3):
    """Per-call time of ``fn(arg)`` cycling through ``args`` (parameters change between calls).

    Each of ``repeat`` rounds loops over ``args`` until it has run for ``min_time`` seconds; the
    round's per-call time is its wall time divided by its calls. Returns a `Timing` of rounds.
    """
    args = list(args)
    for arg in args[:warmup]:
        fn(arg)
    rounds = []
    for _ in range(repeat):
        calls = 0
        t0 = time.perf_counter()
        while True:
            for arg in args:
                fn(arg)
            calls += len(args)
            elapsed = time.perf_counter() - t0
            if elapsed >= min_time:
                break
        rounds.append(elapsed / calls)
    return Timing(rounds)


def time_runs(fn, repeat=3):
    """Wall time of ``repeat`` calls of ``fn()`` (each call sets up its own fresh state)."""
    samples, result = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        samples.append(time.perf_counter() - t0)
    return Timing(samples), result


def fresh_cache_env(folder):
    """Environment for a subprocess with empty PyTensor, Numba and bayesdl4 (compiled functions)
    caches under ``folder``."""
    folder = Path(folder)
    env = dict(os.environ)
    flags = [
        f for f in env.get("PYTENSOR_FLAGS", "").split(",")
        if f and not f.startswith(("compiledir", "base_compiledir"))
    ]
    # base_compiledir, not compiledir: PyTensor keeps its Numba cache in base_compiledir/numba
    env["PYTENSOR_FLAGS"] = ",".join(flags + [f"base_compiledir={folder / 'pytensor'}"])
    env["NUMBA_CACHE_DIR"] = str(folder / "numba")
    env["BAYESDL4_CACHE_DIR"] = str(folder / "bayesdl4")
    return env


@contextlib.contextmanager
def no_disk_cache():
    """Within the block bayesdl4 neither reads nor writes compiled functions on disk (the graph is
    rewritten and linked again: what a cache miss costs)."""
    old = os.environ.get("BAYESDL4_CACHE_DIR")
    os.environ["BAYESDL4_CACHE_DIR"] = "off"
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("BAYESDL4_CACHE_DIR")
        else:
            os.environ["BAYESDL4_CACHE_DIR"] = old


def run_json_subprocess(code, env=None, timeout=1800):
    """Run Python ``code`` in a fresh interpreter; its last stdout line must be JSON. Returns (dict, wall s)."""
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as handle:
        handle.write(f"import sys\nsys.path.insert(0, {str(BENCHMARKS_DIR)!r})\n" + code)
        script = handle.name
    try:
        t0 = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, script], env=env, capture_output=True, text=True, timeout=timeout
        )
        wall = time.perf_counter() - t0
    finally:
        os.unlink(script)
    if proc.returncode != 0:
        raise RuntimeError(f"subprocess failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    return json.loads(lines[-1]), wall


# -------------------------------------------------------------------------------------- output
def format_seconds(seconds):
    if seconds is None or not np.isfinite(seconds):
        return "-"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.1f} us"
    if seconds < 1:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds:.2f} s"


def format_ratio(theirs, ours, target=None):
    """``gammapy / ours`` with the target verdict, or why there is no ratio."""
    if theirs is None:
        return "n/a"
    ratio = theirs / ours
    if target is None:
        return f"{ratio:.1f}x"
    return f"{ratio:.1f}x ({'meets' if ratio >= target else 'below'} target {target:g}x)"


def print_table(rows, headers):
    """Plain-text table (also valid Markdown)."""
    rows = [[str(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    line = "| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)) + " |"
    print(line)
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in rows:
        print("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |")


def quiet_gammapy():
    """Silence gammapy/astropy warnings and UltraNest's progress output in benchmark tables."""
    import logging
    import warnings

    import astropy  # noqa: F401  (astropy installs its own logger class on import: import it first)

    warnings.filterwarnings("ignore")
    for name in ("gammapy", "ultranest", "astropy"):
        logging.getLogger(name).setLevel(logging.ERROR)
