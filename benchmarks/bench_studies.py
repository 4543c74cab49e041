"""Studies: 100 fits of fresh simulated data vs gammapy 2.1, SBC on 1 and 2 Dask workers, cold start.

Sections (issue 11):

``fits``   100 fits of fresh simulated joint-crab-sized data (10 On/Off spectra of a log-parabola,
           `simulate_spectrum_runs`: 30 reco bins each, livetimes 0.25-2 h, offsets 0.3-2 deg) end to
           end: truth fixed, counts redrawn per repetition (`bayesdl4.studies.fit_repetitions`), each
           fit from the same start on fresh models, priors as benchmarks/common.py. bayesdl4 runs in
           a new process, once with the on-disk caches warm (a re-run) and once with all caches
           empty (the first run ever): the wall time includes the one compile. gammapy 2.1 fits the
           same counts (copied into datasets read from OGIP files bayesdl4 wrote) with `Fit().run`
           on fresh models with the same priors; its best fits are compared with ours.
``sbc``    the SBC study of examples/sbc_study.py (Cash spectrum, log-parabola, 2 x 100 draws) run
           here (serial), then on a `LocalCluster` of 1 and of 2 worker processes; the per-repetition
           cost of the steady state gives an estimate for 10,000 repetitions on a cluster.
``cold``   a first ``sample()`` of the 10 joint-crab spectra (4 x 1000 draws, 1000 tune) in a new
           process with empty PyTensor, Numba and bayesdl4 caches: wall and CPU time, and its phases.

    .venv/bin/python benchmarks/bench_studies.py                       # everything (~15 min on 2 cores)
    .venv/bin/python benchmarks/bench_studies.py --sections fits --gammapy-repetitions 20
    .venv/bin/python benchmarks/bench_studies.py --quick               # smoke run
"""

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
import common  # noqa: E402

#: truth of the repeated fits: gammapy 2.1's joint-crab maximum-likelihood fit
TRUTH = {f"crab.{name}": value for name, value in common.GAMMAPY_ML_BEST_FIT.items()}

FITS_CODE = """
import json, time
t0 = time.perf_counter()
from bench_studies import simulator
from bayesdl4.studies import fit_repetitions
from bayesdl4 import compiled
sim = simulator()
t1 = time.perf_counter()
study = fit_repetitions(sim, {n}, truth={truth!r}, random_seed={seed}, client=False, progressbar=False)
t2 = time.perf_counter()
run = study.run
print(json.dumps({{"setup_s": t1 - t0, "fits_s": t2 - t1, "first_s": float(run["seconds"][0]),
                  "median_s": float(run["seconds"][1:].median()), "compilations": int(run["compilations"].sum()),
                  "later_compilations": int(run["compilations"][1:].sum()), "stats": compiled.stats(),
                  "success": int(study.data["success"].sum()), "values": study.data["value"].values.tolist(),
                  "rss_first_mib": float(run["rss_mib"][:10].median()),
                  "rss_last_mib": float(run["rss_mib"][-10:].median())}}))
"""

COLD_CODE = """
import json, time
t0 = time.perf_counter()
import common
from bayesdl4.inference import sample
datasets = common.read_ours(common.joint_crab_paths())
datasets.models = common.models_ours()
t1 = time.perf_counter()
c1 = time.process_time()
tree = sample(datasets, draws={draws}, tune={tune}, chains={chains}, random_seed=0, progressbar=False)
t2 = time.perf_counter()
a = tree.attrs
print(json.dumps({{"import_read_s": t1 - t0, "sample_s": t2 - t1, "cpu_s": time.process_time() - c1,
                  "setup_s": a["compile_time_s"], "sampling_s": a["wall_time_s"] - a["compile_time_s"],
                  "post_s": a["postprocess_time_s"]}}))
"""


def simulator(n_runs=10):
    """The joint-crab-sized template: 10 On/Off runs, crab log-parabola with the benchmark priors."""
    from bayesdl4.datasets.simulate import simulate_spectrum_runs
    from bayesdl4.studies import Simulator

    models = common.models_ours()
    return Simulator(simulate_spectrum_runs(models, n_runs, random_seed=1), models)


# ------------------------------------------------------------------------------------ sections
def bench_fits(args, report):
    print("== 1. fits of fresh simulated data (10 On/Off spectra, log-parabola) ==")
    out = {}
    with tempfile.TemporaryDirectory(prefix="bayesdl4-studies-") as folder:
        env = common.fresh_cache_env(folder)
        code = FITS_CODE.format(n=args.repetitions, truth=TRUTH, seed=args.seed)
        cold, wall_cold = common.run_json_subprocess(code, env=env)
        warm, wall_warm = common.run_json_subprocess(code, env=env)
    for label, res, wall in (("cold caches", cold, wall_cold), ("warm disk caches", warm, wall_warm)):
        print(f"bayesdl4, {label}: {args.repetitions} fits in {res['fits_s']:.2f} s (first {res['first_s']:.2f} s, "
              f"then median {1e3 * res['median_s']:.0f} ms per fit), {res['compilations']} functions compiled or "
              f"loaded, {res['later_compilations']} after the first fit; {res['success']} successful; RSS "
              f"{res['rss_first_mib']:.0f} -> {res['rss_last_mib']:.0f} MiB; process {wall:.1f} s")
        out[label] = {**{k: v for k, v in res.items() if k != "values"}, "process_s": wall}
    report["fits"] = out
    if common.has_gammapy() and not args.ours_only:
        theirs, agreement = gammapy_fits(args, np.array(warm["values"]))
        per_fit = theirs / args.gammapy_repetitions
        total = per_fit * args.repetitions
        report["fits"]["gammapy"] = {"repetitions": args.gammapy_repetitions, "seconds": theirs,
                                     "per_fit_s": per_fit, "max_difference_sigma": agreement}
        for label in ("warm disk caches", "cold caches"):
            ours = out[label]["fits_s"]
            print(f"ratio gammapy / bayesdl4 ({label}): {common.format_ratio(total, ours, 30)}")
        print(f"gammapy: {args.gammapy_repetitions} Fit runs in {theirs:.1f} s ({per_fit:.2f} s per fit; "
              f"x {args.repetitions} = {total:.0f} s); best fits agree within {agreement:.3f} sigma")


def gammapy_fits(args, our_values):
    """gammapy `Fit` on the same counts as the first ``gammapy_repetitions`` of ours."""
    from gammapy.datasets import Datasets, SpectrumDatasetOnOff
    from gammapy.modeling import Fit

    from bayesdl4.studies.sbc import repetition_seeds

    common.quiet_gammapy()
    sim = simulator()
    with tempfile.TemporaryDirectory(prefix="bayesdl4-studies-gp-") as folder:
        gp = []
        for dataset in sim.template:
            path = Path(folder) / f"{dataset.name}.fits"
            dataset.write(path, format="ogip", overwrite=True)
            gp.append(SpectrumDatasetOnOff.read(path))
        gp = Datasets(gp)
    seconds, worst = 0.0, 0.0
    for i in range(args.gammapy_repetitions):
        ours = sim.simulate(TRUTH, repetition_seeds(args.seed, i)[1])
        for theirs, mine in zip(gp, ours, strict=True):
            theirs.counts.data[...] = mine.counts.data
            theirs.counts_off.data[...] = mine.counts_off.data
        t0 = time.perf_counter()
        gp.models = common.models_gammapy()
        result = Fit().run(gp)
        seconds += time.perf_counter() - t0
        spectral = gp.models["crab"].spectral_model
        for k, name in enumerate(("amplitude", "alpha", "beta")):
            par = getattr(spectral, name)
            worst = max(worst, abs(par.value - our_values[i, k]) / par.error)
        assert result.success, result
    return seconds, worst


def bench_sbc(args, report):
    print("\n== 2. SBC wall time: serial, 1 and 2 Dask workers ==")
    from distributed import Client, LocalCluster
    from sbc_study import make_simulator

    from bayesdl4.studies import simulation_based_calibration

    n = args.sbc_repetitions
    settings = dict(draws=100, tune=200, chains=2, random_seed=args.seed, progressbar=False, cores=1)
    out = {}
    t0 = time.perf_counter()
    serial = simulation_based_calibration(make_simulator(), n, client=False, **settings)
    out["serial"] = _sbc_figures(serial, time.perf_counter() - t0, 0.0)
    for workers in (1, 2):
        t0 = time.perf_counter()
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, dashboard_address=None)
        client = Client(cluster)
        start = time.perf_counter() - t0
        try:
            result = simulation_based_calibration(make_simulator(), n, client=client, **settings)
        finally:
            client.close()
            cluster.close()
        assert result.data.identical(serial.data), "the Dask run differs from the serial run"
        out[f"{workers} workers"] = _sbc_figures(result, time.perf_counter() - t0, start)
    for label, fig in out.items():
        print(f"{label:10s}: {n} repetitions in {fig['wall_s']:.1f} s (cluster start {fig['start_s']:.1f} s), "
              f"first repetition per worker {fig['first_s']:.1f} s, steady state {fig['steady_s']:.2f} s per "
              f"repetition per worker")
    speedup = (out["1 workers"]["wall_s"] - out["1 workers"]["start_s"]) / \
              (out["2 workers"]["wall_s"] - out["2 workers"]["start_s"])
    steady = out["serial"]["steady_s"]
    first = max(fig["first_s"] for fig in out.values())
    print(f"1 -> 2 workers: {speedup:.2f}x (results identical to the serial run)")
    print(f"estimate, 10,000 repetitions on W workers: ~{first:.0f} s start + 10,000 x {steady:.2f} s / W "
          f"= {(first + 1e4 * steady / 100) / 60:.0f} min on 100 workers, {(first + 1e4 * steady / 1000) / 60:.1f} "
          "min on 1,000")
    report["sbc"] = {**out, "speedup_1_to_2": speedup, "repetitions": n}


def _sbc_figures(result, wall, start):
    """Wall time, each worker's first repetition (imports, compiled functions from the caches) and
    the median of the others (the steady state)."""
    run = result.run
    workers, tasks, seconds = run["worker"].values, run["task"].values, run["seconds"].values
    first = np.zeros(seconds.size, dtype=bool)
    for worker in set(workers):
        mine = workers == worker
        first |= mine & (tasks == tasks[mine].min())
    return {"wall_s": wall, "start_s": start, "first_s": float(seconds[first].max()),
            "steady_s": float(np.median(seconds[~first])), "passed": bool(result.passed())}


def bench_cold(args, report):
    print("\n== 3. cold start: first sample() of the 10 joint-crab spectra, all caches empty ==")
    figures = []
    for _ in range(args.cold_repeat):
        with tempfile.TemporaryDirectory(prefix="bayesdl4-cold-") as folder:
            code = COLD_CODE.format(draws=args.draws, tune=args.tune, chains=args.chains)
            out, wall = common.run_json_subprocess(code, env=common.fresh_cache_env(folder))
        out["process_s"], out["load_average"] = wall, os.getloadavg()[0]
        figures.append(out)
        print(f"sample() {out['sample_s']:.1f} s wall ({out['cpu_s']:.1f} s CPU, all threads) = {out['setup_s']:.1f} s "
              f"build + compile, {out['sampling_s']:.1f} s sampling, {out['post_s']:.1f} s pointwise groups; "
              f"process {wall:.1f} s; load average {out['load_average']:.1f} (target < 30 s)")
    report["cold"] = figures


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sections", default="fits,sbc,cold")
    parser.add_argument("--repetitions", type=int, default=100, help="fits of fresh simulated data")
    parser.add_argument("--gammapy-repetitions", type=int, default=100, help="gammapy Fit runs timed")
    parser.add_argument("--sbc-repetitions", type=int, default=100)
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--tune", type=int, default=1000)
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--cold-repeat", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--ours-only", action="store_true")
    parser.add_argument("--quick", action="store_true", help="10 fits, 3 gammapy fits, 8 SBC repetitions")
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    if args.quick:
        args.repetitions, args.gammapy_repetitions, args.sbc_repetitions = 10, 3, 8
    args.gammapy_repetitions = min(args.gammapy_repetitions, args.repetitions)
    sections = args.sections.split(",")
    report = {"date": time.strftime("%Y-%m-%d %H:%M"), "load_average": os.getloadavg()[0]}
    if "fits" in sections:
        bench_fits(args, report)
    if "sbc" in sections:
        bench_sbc(args, report)
    if "cold" in sections:
        common.gammapy_data()
        bench_cold(args, report)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2, default=float))
    return report


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
