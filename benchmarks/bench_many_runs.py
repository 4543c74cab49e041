"""Many runs: compile time and fit time against the number of On/Off spectra, bayesdl4 vs gammapy 2.1.

Issue 8's targets: the compile time of the joint log density of 1,000 simulated On/Off spectra is
within 3x that of 10, and `fit` of 200 such spectra is >= 30x faster than gammapy 2.1's `Fit`, end to
end. Issue 9 asks how a joint fit's time grows with the number of datasets (10, 100, 1000).

Setup: `simulate_spectrum_runs` (a shared power law, 30 reco bins per run (0.1-100 TeV, 10 per
decade), livetimes 0.25-2 h, offsets 0.3-2 deg with offset-dependent effective area and safe
thresholds, alpha 0.2); gammapy reads the same runs from OGIP files bayesdl4 wrote. Both fit a power
law from the same start (index 2.3, amplitude 2e-11), no priors (bayesdl4: uniform index in [1, 5],
amplitude in [1e-13, 1e-9], which does not move the optimum).

    .venv/bin/python benchmarks/bench_many_runs.py                 # 10, 100, 200, 1000 runs
    .venv/bin/python benchmarks/bench_many_runs.py --sizes 10,200 --ours-only
"""

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

COMPILE_CODE = """
import json, time
import numpy as np
t0 = time.perf_counter()
from bench_many_runs import simulate, fresh_models
datasets = simulate({n})
datasets.models = fresh_models()
t1 = time.perf_counter()
from bayesdl4.inference import logp_function
logp = logp_function(datasets)
logp(logp.x0)
t2 = time.perf_counter()
print(json.dumps({{"simulate": t1 - t0, "compile": t2 - t1}}))
"""


def simulate(n, seed=0):
    """``n`` On/Off runs of a power law (index 2.5, amplitude 3e-11 cm-2 s-1 TeV-1 at 1 TeV)."""
    from bayesdl4.datasets.simulate import simulate_spectrum_runs
    from bayesdl4.models import Models, PowerLawSpectralModel, SkyModel

    truth = PowerLawSpectralModel(index=2.5, amplitude="3e-11 cm-2 s-1 TeV-1")
    return simulate_spectrum_runs(Models([SkyModel(truth, name="src")]), n, random_seed=seed, onoff=True)


def fresh_models():
    from bayesdl4.models import Models, PowerLawSpectralModel, SkyModel, UniformPrior

    model = PowerLawSpectralModel(index=2.3, amplitude="2e-11 cm-2 s-1 TeV-1")
    model.index.prior = UniformPrior(1, 5)
    model.amplitude.prior = UniformPrior(1e-13, 1e-9)
    return Models([SkyModel(model, name="src")])


def gammapy_datasets(datasets, folder):
    """The same runs in gammapy, read from OGIP files bayesdl4 wrote."""
    from gammapy.datasets import Datasets, SpectrumDatasetOnOff
    from gammapy.modeling.models import PowerLawSpectralModel, SkyModel

    out = []
    for dataset in datasets:
        path = Path(folder) / f"{dataset.name}.fits"
        if not path.exists():
            dataset.write(path, format="ogip", overwrite=True)
        out.append(SpectrumDatasetOnOff.read(path))
    out = Datasets(out)
    out.models = [SkyModel(PowerLawSpectralModel(index=2.3, amplitude="2e-11 cm-2 s-1 TeV-1"), name="src")]
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10,100,200,1000")
    parser.add_argument("--gammapy-max", type=int, default=200, help="largest size fitted with gammapy")
    parser.add_argument("--ours-only", action="store_true")
    parser.add_argument("--json", default=None)
    parser.add_argument("--skip-compile", action="store_true", help="skip the compile-time subprocesses")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    with_gammapy = common.has_gammapy() and not args.ours_only
    if with_gammapy:
        common.quiet_gammapy()
    from bayesdl4.inference import fit

    results = {"compile": {}, "fit": {}}
    # (1) compile time of the joint log density in new processes: cold (empty caches) and warm
    for n in () if args.skip_compile else (min(sizes), max(sizes)):
        with tempfile.TemporaryDirectory() as folder:
            env = common.fresh_cache_env(folder)
            cold, _ = common.run_json_subprocess(COMPILE_CODE.format(n=n), env=env)
            warm, _ = common.run_json_subprocess(COMPILE_CODE.format(n=n), env=env)
        results["compile"][n] = {"cold": cold["compile"], "warm": warm["compile"]}
        print(f"compile, {n} runs: cold {cold['compile']:.2f} s, warm (new process) {warm['compile']:.2f} s")
    if results["compile"]:
        small, large = results["compile"][min(sizes)], results["compile"][max(sizes)]
        print(f"compile time {max(sizes)} vs {min(sizes)} runs: cold {large['cold'] / small['cold']:.2f}x, "
              f"warm {large['warm'] / small['warm']:.2f}x (target <= 3x)\n")

    # (2) fit end to end (fresh models, compiled functions warm from another fit of the same structure)
    warm = simulate(5, seed=99)
    warm.models = fresh_models()
    fit(warm)  # warm-up: compiles the functions once (the same structure, other data and sizes)
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for n in sizes:
            datasets = simulate(n, seed=n)
            datasets.models = fresh_models()
            t0 = time.perf_counter()
            result = fit(datasets)
            ours = time.perf_counter() - t0
            theirs = gp_values = None
            if with_gammapy and n <= args.gammapy_max:
                from gammapy.modeling import Fit

                gp = gammapy_datasets(datasets, folder)
                t0 = time.perf_counter()
                gp_result = Fit().run(gp)
                theirs = time.perf_counter() - t0
                gp_values = {p.name: p.value for p in gp.models.parameters.free_parameters}
                assert gp_result.success
                for name in ("index", "amplitude"):
                    ours_par = result[f"src.{name}"]
                    assert abs(ours_par.value - gp_values[name]) < 0.05 * ours_par.error, (name, ours_par, gp_values)
            results["fit"][n] = {"ours": ours, "gammapy": theirs, "success": result.success,
                                 "per_run_ms": 1e3 * ours / n}
            rows.append([n, common.format_seconds(ours), f"{1e3 * ours / n:.2f} ms",
                         common.format_seconds(theirs), common.format_ratio(theirs, ours, 30 if n == 200 else None)])
            print(f"fit {n} runs: {common.format_seconds(ours)}"
                  + (f" (gammapy {common.format_seconds(theirs)})" if theirs else ""))
    print()
    common.print_table(rows, ["runs", "bayesdl4 fit", "per run", "gammapy Fit", "ratio"])
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2, default=float))
    return results


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
