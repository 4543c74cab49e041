"""npred of a large MapDataset with 10 Gaussian sources, after their spatial parameters change.

The setup of gammapy-benchmarks' ``npred.py``: a 500 x 500 pixel (0.01 deg) map, 15 reco and
15 true energy bins (0.1-100 TeV, 5 per decade), exposure 1 m2 s, ``PSFMap.from_gauss`` (0.1 deg),
``EDispKernelMap.from_gauss`` (10 %), 10 Gaussians of sigma 0.5 deg with power-law spectra. One
change: positions are drawn in +-2 deg (gammapy-benchmarks draws +-4 deg on a +-2.5 deg map,
which puts most sources outside). The dataset is made by gammapy, written to FITS and read by
both sides. Each call moves every source by up to 0.02 deg and changes its sigma by up to 2 %,
then computes the npred cube (``dataset.npred()`` on both sides).

Each side runs in its own subprocess (peak RSS from ``resource``, and ``tracemalloc`` peak of
the timed loop). The safe mask is set everywhere: ``MapDataset.create`` leaves it all False, and
gammapy then evaluates no source at all (gammapy-benchmarks' npred case measures nothing but
bookkeeping). bayesdl4 runs twice: with empty PyTensor/Numba caches (cold compile) and on the
filled caches (warm compile, a new session); it also times the compiled log density + gradient
(what NUTS calls) with all spatial parameters free.

    python benchmarks/bench_npred_maps.py            # ~5 min on 2 cores
    python benchmarks/bench_npred_maps.py --quick    # fewer timing rounds
"""

import argparse
import json
import tempfile
from pathlib import Path

import common
from common import format_ratio, format_seconds, print_table

N_SRC = 10
SEED = 0

MAKE = """
import numpy as np, astropy.units as u
from gammapy.datasets import MapDataset
from gammapy.irf import PSFMap, EDispKernelMap
from gammapy.maps import MapAxis, WcsGeom
energy = MapAxis.from_energy_bounds(0.1, 100, 5, per_decade=True, unit="TeV")
energy_true = MapAxis.from_energy_bounds(0.1, 100, 5, unit="TeV", per_decade=True, name="energy_true")
geom = WcsGeom.create(npix=500, binsz=0.01, axes=[energy])
dataset = MapDataset.create(geom, energy_axis_true=energy_true, name="npred")
dataset.exposure += "1 m2 s"
dataset.psf = PSFMap.from_gauss(energy_true)
dataset.edisp = EDispKernelMap.from_gauss(energy, energy_true, 0.1, 0.)
# MapDataset.create leaves mask_safe all False, where gammapy skips every source (npred = 0)
dataset.mask_safe.data[...] = True
dataset.counts.data = np.random.default_rng(1).poisson(0.1, dataset.counts.data.shape).astype(float)
dataset.write({path!r}, overwrite=True)
print("{{}}")
"""

SOURCES = """
import numpy as np
rng = np.random.default_rng({seed})
POSITIONS = rng.uniform(-2.0, 2.0, ({n_src}, 2))
STEPS = [(rng.uniform(-0.02, 0.02, ({n_src}, 2)), rng.uniform(0.98, 1.02, {n_src})) for _ in range(8)]
"""

# the timed loop both subprocesses run on their own dataset and model objects
TIMED_LOOP = """def step(k):
    shift, scale = STEPS[k % len(STEPS)]
    for i, (m, (dx, dy), f) in enumerate(zip(models, shift, scale)):
        m.spatial_model.lon_0.value = POSITIONS[i][0] + dx
        m.spatial_model.lat_0.value = POSITIONS[i][1] + dy
        m.spatial_model.sigma.value = 0.5 * f
    return dataset.npred().data
t0 = time.perf_counter(); step(0); first = time.perf_counter() - t0
tracemalloc.start()
times = []
for k in range({n_calls}):
    t0 = time.perf_counter(); npred = step(k + 1); times.append(time.perf_counter() - t0)
peak = tracemalloc.get_traced_memory()[1]
tracemalloc.stop()
a, b = step(3), step(4)
assert np.abs(a - b).max() > 1e-3 * a.max()  # npred did change with the spatial parameters
np.save({out!r}, step(3))
"""

GAMMAPY = SOURCES + """
import json, resource, time, tracemalloc, warnings
warnings.filterwarnings("ignore")
import logging; logging.getLogger("gammapy").setLevel(logging.ERROR)
import astropy.units as u
from gammapy.datasets import MapDataset
from gammapy.modeling.models import GaussianSpatialModel, Models, PowerLawSpectralModel, SkyModel
dataset = MapDataset.read({path!r}, name="npred")
models = Models([SkyModel(spectral_model=PowerLawSpectralModel(),
                          spatial_model=GaussianSpatialModel(lon_0=p[0] * u.deg, lat_0=p[1] * u.deg, sigma="0.5 deg"),
                          name=f"src{{i}}") for i, p in enumerate(POSITIONS)])
dataset.models = models
models = list(dataset.models)  # the dataset's own model objects
""" + TIMED_LOOP + """print(json.dumps({{"first": first, "per_call": sorted(times)[len(times) // 2], "tracemalloc_peak": peak,
                  "maxrss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}}))
"""

OURS = SOURCES + """
import json, resource, sys, time, tracemalloc, warnings
warnings.filterwarnings("ignore")
import logging; logging.getLogger("bayesdl4").setLevel(logging.ERROR)
t_import = time.perf_counter()
import astropy.units as u
from bayesdl4.datasets import Datasets
from bayesdl4.datasets.map import MapDataset
from bayesdl4.inference import logp_function
from bayesdl4.models import GaussianSpatialModel, Models, PowerLawSpectralModel, SkyModel
dataset = MapDataset.read({path!r}, name="npred")
models = [SkyModel(PowerLawSpectralModel(),
                   GaussianSpatialModel(lon_0=p[0] * u.deg, lat_0=p[1] * u.deg, sigma="0.5 deg"),
                   name=f"src{{i}}") for i, p in enumerate(POSITIONS)]
dataset.models = Models(models)
models = [m for m in dataset.models if m.name.startswith("src")]  # the dataset's own objects
""" + TIMED_LOOP + """result = {{"first": first, "per_call": sorted(times)[len(times) // 2], "tracemalloc_peak": peak}}
print(json.dumps(result), file=sys.stderr, flush=True)
# log density + gradient with every spatial parameter free (what NUTS calls)
for m in models:
    m.spatial_model.sigma.frozen = False
t0 = time.perf_counter()
logp = logp_function(Datasets([dataset]))
x0 = logp.x0.copy()
logp(x0)
result["logp_first"] = time.perf_counter() - t0
rng2 = np.random.default_rng(5)
xs = [x0 + 1e-3 * rng2.standard_normal(x0.size) for _ in range(4)]
times = []
for k in range({n_calls}):
    t0 = time.perf_counter(); logp(xs[k % 4]); times.append(time.perf_counter() - t0)
result["logp_per_call"] = sorted(times)[len(times) // 2]
result["n_free"] = int(x0.size)
result["maxrss"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps(result))
"""


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer timed calls")
    args = parser.parse_args()
    n_calls = 5 if args.quick else 15
    common.quiet_gammapy()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        path = str(tmp / "npred.fits")
        common.run_json_subprocess(MAKE.format(path=path))
        fmt = dict(path=path, seed=SEED, n_src=N_SRC, n_calls=n_calls)
        theirs, _ = common.run_json_subprocess(GAMMAPY.format(out=str(tmp / "theirs.npy"), **fmt))
        print("gammapy", json.dumps(theirs), flush=True)
        env = common.fresh_cache_env(tmp / "cache")
        cold, _ = common.run_json_subprocess(OURS.format(out=str(tmp / "ours.npy"), **fmt), env=env)
        print("bayesdl4 cold caches", json.dumps(cold), flush=True)
        warm, _ = common.run_json_subprocess(OURS.format(out=str(tmp / "ours.npy"), **fmt), env=env)
        print("bayesdl4 warm caches", json.dumps(warm), flush=True)
        import numpy as np

        a, b = np.load(tmp / "ours.npy"), np.load(tmp / "theirs.npy")
        sel = b > 1e-3 * b.max()
        agreement = float(np.max(np.abs(a[sel] - b[sel]) / b[sel]))
    mib = 2.0**20
    rows = [
        ["npred after a spatial change (per call)", format_seconds(theirs["per_call"]),
         format_seconds(warm["per_call"]), format_ratio(theirs["per_call"], warm["per_call"], 3)],
        ["first npred (compile), cold caches", format_seconds(theirs["first"]), format_seconds(cold["first"]), ""],
        ["first npred (compile), warm caches", "", format_seconds(warm["first"]), ""],
        [f"log density + gradient ({warm['n_free']} free), per call", "",
         format_seconds(warm["logp_per_call"]), ""],
        ["log density + gradient compile, cold / warm caches", "",
         f"{format_seconds(cold['logp_first'])} / {format_seconds(warm['logp_first'])}", ""],
        ["peak RSS of the process", f"{theirs['maxrss'] / mib:.0f} MiB", f"{warm['maxrss'] / mib:.0f} MiB", ""],
        ["tracemalloc peak of the timed npred loop", f"{theirs['tracemalloc_peak'] / mib:.0f} MiB",
         f"{warm['tracemalloc_peak'] / mib:.0f} MiB", ""],
    ]
    print_table(rows, ["", "gammapy 2.1", "bayesdl4", "gammapy / bayesdl4"])
    print(f"\nnpred agreement: max relative difference {agreement:.2e} on bins above 1e-3 of the maximum")
    print(json.dumps({"gammapy": theirs, "cold": cold, "warm": warm, "agreement": agreement}))


if __name__ == "__main__":
    main()
