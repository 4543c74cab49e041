"""HAWC 5-dataset joint benchmark: bayesdl4 against gammapy 2.1 on the nHit-5..9 map datasets, same run.

A point source at the Crab (log-parabola, reference 7 TeV) and one FoVBackgroundModel norm per
dataset: 10 free parameters. Sections 0-4 use ``placement="gammapy"`` (gammapy's numbers bin by
bin). Prints (0) the statistic check at the same parameters, (1) per-call log density + gradient
time (parameters change between calls) against gammapy's ``Datasets.stat_sum()``, (2) the MAP fit
end to end with compilation, in a new process with warm on-disk caches, against gammapy's ``Fit``,
and the best-fit agreement, (3) compile time of the joint model: cold (fresh PyTensor compiledir,
Numba and bayesdl4 caches, new process), warm (new process), and without bayesdl4's compiled-function
cache (PyTensor rewrites again), per backend, (4) where the time goes (per dataset), (5) the default placement
(``"exact"``): per call, fit, and its best fit against gammapy's in sigma, and a table of ratios
``gammapy time / bayesdl4 time``.

    python benchmarks/bench_hawc.py              # full run (~10 min on 2 cores)
    python benchmarks/bench_hawc.py --quick      # smoke run (few repetitions, no cold subprocess)
    python benchmarks/bench_hawc.py --modes NUMBA,CVM   # also the C backend (its first compile: minutes)

Without gammapy installed (or with ``--ours-only``) only bayesdl4's numbers are printed.
See benchmarks/README.md ("HAWC 5-dataset joint").
"""

import argparse
import json
import os
import sys
import tempfile
import time

import common
import numpy as np
from common import format_ratio, format_seconds, print_table

TARGETS = {"logp": 100, "fit": 10, "warm_compile_s": 5}
NAMES = [f"nHit-{n}" for n in range(5, 10)]
START = {"lon_0": 83.63, "lat_0": 22.02, "amplitude": 3.5e-13, "alpha": 2.8, "beta": 0.12}
AMPLITUDE_UNIT = "cm-2 s-1 TeV-1"
REFERENCE_TEV = 7.0

#: gammapy 2.1 ``Fit().run`` from `START` (Minuit, success, 295 calls): value, error; total stat 62956.3283.
GAMMAPY_BEST_FIT = {
    "crab.amplitude": (2.315219288092595e-13, 2.0754035487116875e-14),
    "crab.alpha": (2.6924375873516615, 0.12031706694850722),
    "crab.beta": (0.08594343986621522, 0.10447665113704499),
    "crab.lon_0": (83.62412672153462, 0.009736578129663456),
    "crab.lat_0": (22.004950907999152, 0.009365154568260035),
    "nHit-5-bkg.norm": (1.0083539174153544, 0.012069912999284105),
    "nHit-6-bkg.norm": (1.011813098434465, 0.0243327079107649),
    "nHit-7-bkg.norm": (0.9817944337157003, 0.0393396979475782),
    "nHit-8-bkg.norm": (1.0633066770454023, 0.07201020621866831),
    "nHit-9-bkg.norm": (1.0443277924396828, 0.08163625332827587),
}
GAMMAPY_TOTAL_STAT = 62956.32826710464
PARAMETER_NAMES = tuple(GAMMAPY_BEST_FIT)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few repetitions, no cold subprocess")
    parser.add_argument("--ours-only", action="store_true", help="skip gammapy even where it is installed")
    parser.add_argument("--skip-cold", action="store_true", help="skip the fresh-cache subprocess")
    parser.add_argument("--modes", default="NUMBA", help="backends, comma-separated: NUMBA (default), CVM")
    parser.add_argument("--no-exact", action="store_true", help="skip section 5 (the default placement, exact)")
    parser.add_argument("--blas-threads", type=int, default=None,
                        help="limit BLAS threads for the whole run (threadpoolctl); section 1 always also "
                             "times both sides with 1 BLAS thread")
    parser.add_argument("--json", default=None, help="also write all figures to this JSON file")
    args = parser.parse_args(argv)
    args.modes = [m.strip().upper() for m in args.modes.split(",") if m.strip()]
    args.skip_cold = args.skip_cold or args.quick
    return args


def header(title):
    print(f"\n=== {title} " + "=" * max(0, 90 - len(title)), flush=True)


# ------------------------------------------------------------------------------------------- setup
def hawc_paths():
    folder = common.gammapy_data() / "hawc" / "DL4"
    paths = [folder / f"{name}.fits.gz" for name in NAMES]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        sys.exit(f"missing HAWC files {missing}: is $GAMMAPY_DATA complete?")
    return paths


def read_ours():
    from bayesdl4.datasets import Datasets
    from bayesdl4.datasets.map import MapDataset

    return Datasets([MapDataset.read(path, name=name) for path, name in zip(hawc_paths(), NAMES, strict=True)])


def models_ours(placement="gammapy"):
    """bayesdl4's models; ``placement="gammapy"`` (gammapy's numbers) unless told otherwise."""
    from bayesdl4 import models as m

    spectral = m.LogParabolaSpectralModel(amplitude=f"{START['amplitude']} {AMPLITUDE_UNIT}",
                                          reference=f"{REFERENCE_TEV} TeV", alpha=START["alpha"], beta=START["beta"])
    spatial = m.PointSpatialModel(lon_0=f"{START['lon_0']} deg", lat_0=f"{START['lat_0']} deg", frame="icrs",
                                  placement=placement)
    return m.Models([m.SkyModel(spectral, spatial, name="crab")] + [m.FoVBackgroundModel(name) for name in NAMES])


def read_gammapy():
    from gammapy.datasets import Datasets, MapDataset

    return Datasets([MapDataset.read(path, name=name) for path, name in zip(hawc_paths(), NAMES, strict=True)])


def models_gammapy():
    from gammapy.modeling import models as m

    spectral = m.LogParabolaSpectralModel(amplitude=f"{START['amplitude']} {AMPLITUDE_UNIT}",
                                          reference=f"{REFERENCE_TEV} TeV", alpha=START["alpha"], beta=START["beta"])
    spatial = m.PointSpatialModel(lon_0=f"{START['lon_0']} deg", lat_0=f"{START['lat_0']} deg", frame="icrs")
    return m.Models([m.SkyModel(spectral_model=spectral, spatial_model=spatial, name="crab")]
                    + [m.FoVBackgroundModel(dataset_name=name) for name in NAMES])


def set_gammapy_values(datasets, theta):
    """Set gammapy's free parameters from a vector in `PARAMETER_NAMES` order."""
    models = datasets.models
    for name, value in zip(PARAMETER_NAMES, theta, strict=True):
        model, par = name.rsplit(".", 1)
        models[model].parameters[par].value = float(value)


def parameter_points(n=32, seed=0):
    """``n`` vectors scattered around gammapy's best fit (+-1 sigma; the position moves by ~0.01 deg,
    a fraction of a pixel and far below the 0.1 deg after which gammapy re-extracts its IRFs)."""
    rng = np.random.default_rng(seed)
    best = np.array([GAMMAPY_BEST_FIT[k][0] for k in PARAMETER_NAMES])
    sigma = np.array([GAMMAPY_BEST_FIT[k][1] for k in PARAMETER_NAMES])
    return [best + sigma * rng.standard_normal(best.size) for _ in range(n)]


def clear_compiled():
    """Forget bayesdl4's in-memory compiled functions (on-disk caches stay warm)."""
    from bayesdl4.compiled import clear_cache
    from bayesdl4.inference import density

    clear_cache()
    density._BY_STRUCTURE.clear()


# ------------------------------------------------------------------------------ statistic check
def pin_gammapy_irfs(gp):
    """Fresh gammapy models, evaluated once at the start (IRFs extracted there, as ours), then kept there.

    gammapy re-extracts PSF, edisp and exposure cutout only after the source moves more than 0.1 deg,
    but its first extraction does not record the position (``MapEvaluator._cached_position`` stays
    (0, 0)), so the first position change re-extracts at the new position anyway. Recording it makes
    both sides use IRFs taken at the start for every point below (they are ~0.02 deg from it).
    """
    gp.models = models_gammapy()
    gp.stat_sum()
    for dataset in gp:
        evaluator = dataset.evaluators["crab"]
        evaluator._cached_position = evaluator.model.position_lonlat


def check_statistic(lp, gp, report):
    header("0. statistic check: total Cash statistic at the same parameters, IRFs taken at the start")
    points = {"start": lp.x0, "gammapy's best fit": np.array([GAMMAPY_BEST_FIT[k][0] for k in PARAMETER_NAMES]),
              "a scattered point": parameter_points(1, seed=5)[0]}
    if gp is not None:
        pin_gammapy_irfs(gp)
    rows, out = [], {}
    for label, theta in points.items():
        mine = -2.0 * lp.log_likelihood(theta)
        theirs = None
        if gp is not None:
            set_gammapy_values(gp, theta)
            theirs = float(gp.stat_sum())
        diff = None if theirs is None else mine - theirs
        rows.append([label, "-" if theirs is None else f"{theirs:.4f}", f"{mine:.4f}",
                     "-" if diff is None else f"{diff:+.4f}"])
        out[label] = {"ours": mine, "gammapy": theirs}
    print_table(rows, ["parameters", "gammapy", "bayesdl4", "ours - gammapy"])
    print("Expected agreement ~1e-3 absolute on ~63,000 (gammapy convolves the PSF in float32). With IRFs\n"
          "extracted ~0.02 deg apart the two sides differ by up to ~0.3 (gammapy against itself as well).")
    report["stat_check"] = out


# ------------------------------------------------------------------------------------ log density
def bench_logp(ours, gp, args, report, mode):
    from bayesdl4.inference import logp_function

    header(f"1. log density + gradient per call, {mode} (parameters change between calls)")
    clear_compiled()
    t0 = time.perf_counter()
    lp = logp_function(ours, mode=mode)
    lp(lp.x0)  # Numba compiles the function at its first call
    compile_s = time.perf_counter() - t0
    assert list(lp.names) == list(PARAMETER_NAMES), lp.names
    points = parameter_points()
    repeat, min_time = (3, 0.3) if args.quick else (7, 1.0)
    t_ours = common.time_per_call(lp, points, repeat=repeat, min_time=min_time)
    print(f"bayesdl4 logp_function(theta) -> (logp, grad), {mode}: {t_ours} "
          f"(compile + first call {compile_s:.1f} s)")
    t_gp = None
    if gp is not None and mode == args.modes[0]:
        def gp_stat(theta):
            set_gammapy_values(gp, theta)
            return gp.stat_sum()

        t_gp = common.time_per_call(gp_stat, points, repeat=2 if args.quick else 3, min_time=2 * min_time)
        print(f"gammapy set values + Datasets.stat_sum() (no gradient): {t_gp}")
    report.setdefault("logp", {})[mode] = {"ours_s": t_ours.median, "ours_best_s": t_ours.best,
                                           "compile_s": compile_s}
    if t_gp is not None:
        report["logp"]["gammapy_s"] = t_gp.median
    one = {}
    if mode == args.modes[0] and _blas_limits(None) is not None:
        with _blas_limits(1):
            one["ours"] = common.time_per_call(lp, points, repeat=repeat, min_time=min_time)
            print(f"with 1 BLAS thread: bayesdl4 {one['ours']}", flush=True)
            if t_gp is not None:
                one["gammapy"] = common.time_per_call(gp_stat, points, repeat=2 if args.quick else 3,
                                                      min_time=2 * min_time)
                print(f"with 1 BLAS thread: gammapy {one['gammapy']}")
        report["logp"]["one_blas_thread"] = {k: v.median for k, v in one.items()}
    return lp, t_ours, t_gp, one


def _blas_limits(n):
    """threadpoolctl context limiting BLAS (numpy's and scipy's OpenBLAS, which Numba calls) to n threads,
    applied at once (``None``: no change, only checks that threadpoolctl is there)."""
    try:
        import scipy.linalg  # noqa: F401  (load scipy's BLAS, which Numba's dot/matmul call, first)
        from threadpoolctl import threadpool_limits
    except ImportError:
        return None
    return threadpool_limits(limits=n, user_api="blas")


# -------------------------------------------------------------------------------------------- fit
FIT_CODE = """
import json, time
import bench_hawc
from bayesdl4.inference import fit
datasets = bench_hawc.read_ours()
datasets.models = bench_hawc.models_ours({placement!r})
t0 = time.perf_counter()
result = fit(datasets)
fit_s = time.perf_counter() - t0
print(json.dumps({{"fit_s": fit_s, "compile_s": result.time["compile"], "nfev": result.nfev,
                  "success": result.success, "total_stat": result.total_stat,
                  "parameters": {{n: [p.value, p.error] for n, p in result.parameters.items()}}}}))
"""


def fit_new_processes(placement, repeat):
    """``fit`` end to end in new processes with warm on-disk caches (one untimed run fills them):
    a Timing of ``fit()`` alone (reading the files excluded, as for gammapy) and the last run's figures."""
    common.run_json_subprocess(FIT_CODE.format(placement=placement))
    runs = [common.run_json_subprocess(FIT_CODE.format(placement=placement))[0] for _ in range(repeat)]
    return common.Timing([r["fit_s"] for r in runs]), runs[-1]


def bench_fit(ours, gp, args, report):
    from bayesdl4.inference import fit

    header("2. MAP fit end to end, compilation included")
    repeat = 1 if args.quick else 3
    t_ours, last = fit_new_processes("gammapy", repeat)
    best = {name: value for name, (value, _) in last["parameters"].items()}
    errors = {name: error for name, (_, error) in last["parameters"].items()}
    print(f"bayesdl4 fit(datasets), new process, warm on-disk caches: {t_ours}; last: compile (load) "
          f"{last['compile_s']:.2f} s, nfev {last['nfev']}, success {last['success']}, "
          f"total_stat {last['total_stat']:.4f}")
    with common.no_disk_cache():  # a cache miss: build, rewrite and link in this process
        clear_compiled()
        ours.models = models_ours()
        t_miss, miss = common.time_runs(lambda: fit(ours), repeat=1)
    def fit_fresh_models():  # in-memory cache warm; a moved source would be another graph
        ours.models = models_ours()
        return fit(ours)

    t_memory, _ = common.time_runs(fit_fresh_models, repeat=repeat)
    print(f"same process, no compiled cache (rewrite + link, Numba cache warm): {t_miss} "
          f"(compile {miss.time['compile']:.2f} s); fresh models, in-memory cache: {t_memory}")
    t_gp, reference, gp_stat = None, GAMMAPY_BEST_FIT, GAMMAPY_TOTAL_STAT
    if gp is not None:
        from gammapy.modeling import Fit

        def run_gp():
            gp.models = models_gammapy()
            return Fit().run(gp)

        t_gp, gp_result = common.time_runs(run_gp, repeat=1)
        print(f"gammapy Fit().run(datasets): {t_gp}; nfev {gp_result.optimize_result.nfev}, "
              f"success {gp_result.success}, total_stat {gp_result.total_stat:.4f}")
        reference = {f"{model.name}.{par.name}": (par.value, par.error)
                     for model in gp.models for par in model.parameters.free_parameters}
        gp_stat = float(gp_result.total_stat)
    else:
        print("gammapy not used: comparing with its recorded best fit")
    rows, worst = [], 0.0
    for name in PARAMETER_NAMES:
        (value, error) = reference[name]
        worst = max(worst, abs(best[name] - value) / error)
        rows.append([name, f"{best[name]:.6g} +- {errors[name]:.3g}", f"{value:.6g} +- {error:.3g}",
                     f"{abs(best[name] - value) / error:.3f}", f"{errors[name] / error:.3f}"])
    print_table(rows, ["parameter", "bayesdl4", "gammapy", "|diff| / sigma", "error ratio"])
    print(f"total stat: bayesdl4 {last['total_stat']:.4f}, gammapy {gp_stat:.4f}, "
          f"diff {last['total_stat'] - gp_stat:+.4f}; worst |diff| / sigma {worst:.3f}")
    report["fit"] = {"ours_s": t_ours.median, "ours_best_s": t_ours.best, "ours_compile_s": last["compile_s"],
                     "ours_nfev": last["nfev"], "ours_total_stat": last["total_stat"],
                     "no_cache_same_process_s": t_miss.median, "in_memory_cache_s": t_memory.median,
                     "gammapy_s": None if t_gp is None else t_gp.median, "gammapy_total_stat": gp_stat,
                     "worst_sigma": worst}
    return t_ours, t_gp, worst, last["total_stat"] - gp_stat, reference


# ------------------------------------------------------------------------------------ compile time
COMPILE_CODE = """
import json, time
t0 = time.perf_counter()
import bench_hawc
from bayesdl4.inference import logp_function
datasets = bench_hawc.read_ours()
datasets.models = bench_hawc.models_ours()
t1 = time.perf_counter()
lp = logp_function(datasets, mode={mode!r})
t2 = time.perf_counter()
lp(lp.x0)
t3 = time.perf_counter()
print(json.dumps({{"import_read_s": t1 - t0, "compile_s": t2 - t1, "first_call_s": t3 - t2}}))
"""


def bench_compile(ours, args, report):
    from bayesdl4.inference import logp_function

    header("3. compile time of the joint model (graph build + rewrite + code generation, or their caches)")
    rows = []
    for mode in args.modes:
        with common.no_disk_cache():
            clear_compiled()
            t0 = time.perf_counter()
            lp = logp_function(ours, mode=mode)
            t1 = time.perf_counter()
            lp(lp.x0)
        rewrite_inproc, first = t1 - t0, time.perf_counter() - t1
        cold = warm_proc = rewrite_proc = None
        if not args.skip_cold:
            with tempfile.TemporaryDirectory(prefix="bayesdl4-cold-") as folder:
                cold, _ = common.run_json_subprocess(COMPILE_CODE.format(mode=mode),
                                                     env=common.fresh_cache_env(folder))
        common.run_json_subprocess(COMPILE_CODE.format(mode=mode))  # fills the on-disk caches
        warm_proc, _ = common.run_json_subprocess(COMPILE_CODE.format(mode=mode))
        env = dict(os.environ, BAYESDL4_CACHE_DIR="off")
        rewrite_proc, _ = common.run_json_subprocess(COMPILE_CODE.format(mode=mode), env=env)

        def cell(figures):
            if figures is None:
                return "-"
            build, call = figures["compile_s"], figures["first_call_s"]
            return f"{build + call:.1f} s = {build:.1f} + {call:.1f}"

        rows.append([mode, cell(cold), cell(warm_proc), cell(rewrite_proc),
                     cell({"compile_s": rewrite_inproc, "first_call_s": first})])
        report.setdefault("compile", {})[mode] = {"cold": cold, "warm_process": warm_proc,
                                                  "rewrite_process": rewrite_proc,
                                                  "rewrite_in_process_s": rewrite_inproc, "first_call_s": first}
        print(f"{mode}: cold process {cold}, warm process {warm_proc}, without the compiled-function cache "
              f"{rewrite_proc}", flush=True)
    print_table(rows, ["backend", "cold (fresh caches, new process)", "warm (new process)",
                       "no compiled-function cache (new process)", "same (this process)"])
    print("logp_function (build + rewrite + link, or load) + first call (where Numba compiles or loads its\n"
          "cache). Cold = fresh PyTensor base_compiledir (its Numba cache), NUMBA_CACHE_DIR and BAYESDL4_CACHE_DIR;\n"
          "warm = a new "
          "process with the caches this run left (bayesdl4 loads the rewritten, linked function from\n"
          "BAYESDL4_CACHE_DIR, Numba its machine code); without the compiled-function cache\n"
          "(BAYESDL4_CACHE_DIR=off) PyTensor rewrites the graph again.")


# ------------------------------------------------------------------------------- where time goes
def bench_breakdown(ours, args, report):
    from bayesdl4.datasets import Datasets
    from bayesdl4.graph.map import prepare_map
    from bayesdl4.inference import logp_function

    header("4. where the time goes: each dataset alone (Numba), its box and PSF kernel")
    rows = []
    points = parameter_points()
    for dataset in ours:
        clear_compiled()
        single = Datasets([dataset])
        t0 = time.perf_counter()
        lp = logp_function(single)
        lp(lp.x0)
        compile_s = time.perf_counter() - t0
        keep = [PARAMETER_NAMES.index(n) for n in lp.names]
        t = common.time_per_call(lp, [p[keep] for p in points], repeat=3, min_time=0.3)
        data = prepare_map(dataset)
        planes, ys, xs = data.box
        plan = data.sources[0]
        rows.append([dataset.name, f"{planes.size} x {ys.stop - ys.start} x {xs.stop - xs.start}",
                     f"{plan.kernel.shape[-1]} px", format_seconds(t.median), f"{compile_s:.1f} s"])
        report.setdefault("breakdown", {})[dataset.name] = {"per_call_s": t.median, "compile_s": compile_s,
                                                            "kernel_px": int(plan.kernel.shape[-1])}
    print_table(rows, ["dataset", "box (planes x ny x nx)", "PSF kernel", "per call", "compile + first call"])


# --------------------------------------------------------------------------- default placement
def bench_exact(ours, reference, args, report):
    """The default placement ("exact"): per call, fit end to end, best fit against gammapy's."""
    from bayesdl4.inference import logp_function

    header('5. the default placement, "exact" (PSF at the sub-pixel offset): per call, fit, best fit vs gammapy')
    ours.models = models_ours(placement="exact")
    clear_compiled()
    t0 = time.perf_counter()
    lp = logp_function(ours)
    t1 = time.perf_counter()
    lp(lp.x0)
    compile_s, first_s = t1 - t0, time.perf_counter() - t1
    repeat, min_time = (3, 0.3) if args.quick else (7, 1.0)
    t = common.time_per_call(lp, parameter_points(), repeat=repeat, min_time=min_time)

    t_fit, last = fit_new_processes("exact", repeat=1 if args.quick else 2)
    rows, shifts = [], {}
    for name in PARAMETER_NAMES:
        (value, error), (mine, mine_error) = reference[name], last["parameters"][name]
        shifts[name] = (mine - value) / error
        rows.append([name, f"{mine:.6g} +- {mine_error:.3g}", f"{value:.6g} +- {error:.3g}",
                     f"{shifts[name]:+.3f}", f"{mine_error / error:.3f}"])
    print(f"per call {t} (build + rewrite {compile_s:.1f} s, first call {first_s:.1f} s); fit in a new process "
          f"(warm caches) {t_fit}, nfev {last['nfev']}, success {last['success']}, "
          f"total_stat {last['total_stat']:.4f}")
    print_table(rows, ["parameter", "bayesdl4 exact", "gammapy", "(exact - gammapy) / sigma", "error ratio"])
    ours.models = models_ours()
    clear_compiled()
    report["exact"] = {"per_call_s": t.median, "compile_s": compile_s, "first_call_s": first_s,
                       "fit_s": t_fit.median, "total_stat": last["total_stat"], "shift_sigma": shifts}
    return t, t_fit


# ------------------------------------------------------------------------------------------- main
def main(argv=None):
    args = parse_args(argv)
    common.quiet_gammapy()
    use_gp = common.has_gammapy() and not args.ours_only
    if args.blas_threads:
        limits = _blas_limits(args.blas_threads)
        if limits is None:
            sys.exit("--blas-threads needs threadpoolctl (pip install threadpoolctl)")
        limits.__enter__()  # for the whole run
        print(f"BLAS limited to {args.blas_threads} thread(s)")
    report = {"args": vars(args)}
    t0 = time.perf_counter()
    ours = read_ours()
    ours.models = models_ours()
    gp = None
    if use_gp:
        gp = read_gammapy()
        gp.models = models_gammapy()
    print(f"read 5 datasets on {'both sides' if use_gp else 'our side'}: {time.perf_counter() - t0:.1f} s")

    lp, t_logp, t_logp_gp, one_thread = bench_logp(ours, gp, args, report, args.modes[0])
    check_statistic(lp, gp, report)
    per_mode = {args.modes[0]: t_logp}
    for mode in args.modes[1:]:
        per_mode[mode] = bench_logp(ours, None, args, report, mode)[1]
    t_fit, t_fit_gp, worst, dstat, reference = bench_fit(ours, gp, args, report)
    bench_compile(ours, args, report)
    if not args.quick:
        bench_breakdown(ours, args, report)
    exact = None
    if not args.no_exact:
        exact = bench_exact(ours, reference, args, report)

    header("summary (ratio = gammapy time / bayesdl4 time)")
    gp_logp = None if t_logp_gp is None else t_logp_gp.median
    gp_fit = None if t_fit_gp is None else t_fit_gp.median
    rows = []
    for mode, t in per_mode.items():
        rows.append([f"log density + gradient per call ({mode})", format_seconds(t.median), format_seconds(gp_logp),
                     format_ratio(gp_logp, t.median, TARGETS["logp"])])
    if one_thread:
        gp_one = one_thread["gammapy"].median if "gammapy" in one_thread else None
        rows.append([f"log density + gradient per call ({args.modes[0]}, 1 BLAS thread)",
                     format_seconds(one_thread["ours"].median), format_seconds(gp_one),
                     format_ratio(gp_one, one_thread["ours"].median, TARGETS["logp"])])
    rows.append(["fit end to end, compile included (new process, warm caches)", format_seconds(t_fit.median), format_seconds(gp_fit),
                 format_ratio(gp_fit, t_fit.median, TARGETS["fit"])])
    for mode, figures in report.get("compile", {}).items():
        total = lambda f: f["compile_s"] + f["first_call_s"]  # noqa: E731
        warm = total(figures["warm_process"])
        cold = total(figures["cold"]) if figures["cold"] else None
        verdict = "meets" if warm <= TARGETS["warm_compile_s"] else "above"
        rows.append([f"compile warm ({mode})", format_seconds(warm), "-",
                     f"{verdict} target <= {TARGETS['warm_compile_s']} s"])
        if cold is not None:
            rows.append([f"compile cold ({mode})", format_seconds(cold), "-", ""])
        if figures["rewrite_process"]:
            rows.append([f"compile without the compiled-function cache ({mode})",
                         format_seconds(total(figures["rewrite_process"])), "-", ""])
    if exact is not None:
        t_exact, t_exact_fit = exact
        rows.append(['per call, placement "exact" (default)', format_seconds(t_exact.median),
                     format_seconds(gp_logp), format_ratio(gp_logp, t_exact.median, TARGETS["logp"])])
        rows.append(['fit end to end, placement "exact"', format_seconds(t_exact_fit.median), format_seconds(gp_fit),
                     format_ratio(gp_fit, t_exact_fit.median, TARGETS["fit"])])
    print_table(rows, ["measure", "bayesdl4", "gammapy 2.1", "ratio"])
    print(f"best fit vs gammapy: worst |diff| / sigma {worst:.3f} (target <= 0.2), total stat diff {dstat:+.4f} "
          "(target |diff| <= 0.01)")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(report, handle, indent=1, default=float)
        print(f"figures written to {args.json}")


if __name__ == "__main__":
    main()
