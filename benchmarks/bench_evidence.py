"""Evidence benchmark: bayesdl4's log evidence against gammapy 2.1's `Sampler`, joint-crab spectra.

For the log-parabola and the power law on the ten joint-crab ON/OFF spectra (priors of issue 11:
amplitude LogUniform(1e-12, 1e-9) cm-2 s-1 TeV-1, alpha / index Uniform(1, 5), beta Uniform(0, 1))
prints ln Z, its reported error and the wall time of

* gammapy 2.1 `Sampler()` with its defaults (UltraNest, 400 live points, frac_remain 0.5),
* bayesdl4 `evidence(method="smc")` (defaults: 4 chains x 1000 particles), the first call of the
  process (compilation included) and again on fresh model objects (in-process caches warm),
* bayesdl4 `evidence(method="nested")` (UltraNest on bayesdl4's log-likelihood, 400 live points,
  frac_remain 0.01),

and the log Bayes factor log-parabola / power law of each. Target (issue 11): each evidence >= 10x
faster than gammapy's Sampler with a smaller reported error.

    python benchmarks/bench_evidence.py                # full run (~15 min on 2 cores, most of it gammapy)
    python benchmarks/bench_evidence.py --ours-only    # bayesdl4 only (~2 min)
"""

import argparse
import json
import time

import common
import numpy as np
from common import format_ratio, format_seconds, print_table

KINDS = ("log_parabola", "power_law")
TARGET = 10


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ours-only", action="store_true", help="skip gammapy even where it is installed")
    parser.add_argument("--no-nested", action="store_true", help="skip bayesdl4's nested sampling")
    parser.add_argument("--seed", type=int, default=1, help="random seed of every run")
    parser.add_argument("--json", default=None, help="also write all figures to this JSON file")
    return parser.parse_args(argv)


def spectral_model(module, kind):
    """The crab model of ``kind`` in gammapy's or bayesdl4's model module, with the issue's priors."""
    amplitude = f"3.8e-11 {common.AMPLITUDE_UNIT}"
    if kind == "log_parabola":
        model = module.LogParabolaSpectralModel(amplitude=amplitude, reference="1 TeV", alpha=2.5, beta=0.1)
        shape = {"alpha": (1, 5), "beta": (0, 1)}
    else:
        model = module.PowerLawSpectralModel(amplitude=amplitude, reference="1 TeV", index=2.6)
        shape = {"index": (1, 5)}
    model.amplitude.prior = module.LogUniformPrior(min=1e-12, max=1e-9)
    for name, (lo, hi) in shape.items():
        getattr(model, name).prior = module.UniformPrior(min=lo, max=hi)
    return module.Models([module.SkyModel(model, name="crab")])


def run_gammapy(datasets, kind, seed):
    from gammapy.modeling import Sampler
    from gammapy.modeling import models as gp_models

    datasets.models = spectral_model(gp_models, kind)
    state = np.random.get_state()
    np.random.seed(seed)  # UltraNest draws from NumPy's global generator
    try:
        t0 = time.perf_counter()
        result = Sampler(run_opts={"show_status": False, "viz_callback": False}).run(datasets)
        wall = time.perf_counter() - t0
    finally:
        np.random.set_state(state)
    r = result.sampler_results
    return {"log_z": float(r["logz"]), "error": float(r["logzerr"]), "wall_s": wall, "ncall": int(r["ncall"])}


def run_ours(datasets, kind, method, seed):
    from bayesdl4 import models as our_models
    from bayesdl4.inference import evidence

    datasets.models = spectral_model(our_models, kind)
    t0 = time.perf_counter()
    result = evidence(datasets, method=method, random_seed=seed, progressbar=False)
    return {"log_z": result.log_z, "error": result.log_z_error, "wall_s": time.perf_counter() - t0,
            "ncall": result.n_likelihood_calls}


def main(argv=None):
    args = parse_args(argv)
    common.quiet_gammapy() if common.has_gammapy() else None
    paths = common.joint_crab_paths()
    ours = common.read_ours(paths)
    use_gammapy = common.has_gammapy() and not args.ours_only
    report = {"seed": args.seed, "kinds": {}}
    for kind in KINDS:
        print(f"\n=== {kind} " + "=" * 80, flush=True)
        entry = {"smc_first": run_ours(ours, kind, "smc", args.seed)}
        print(f"bayesdl4 SMC, first call (compile included): {entry['smc_first']}", flush=True)
        entry["smc"] = run_ours(ours, kind, "smc", args.seed + 1)
        print(f"bayesdl4 SMC, fresh models, warm caches:    {entry['smc']}", flush=True)
        if not args.no_nested:
            entry["nested"] = run_ours(ours, kind, "nested", args.seed)
            print(f"bayesdl4 nested (UltraNest):               {entry['nested']}", flush=True)
        if use_gammapy:
            entry["gammapy"] = run_gammapy(common.read_gammapy(paths), kind, args.seed)
            print(f"gammapy Sampler (UltraNest, defaults):     {entry['gammapy']}", flush=True)
        report["kinds"][kind] = entry

    rows = []
    for kind, entry in report["kinds"].items():
        theirs = entry.get("gammapy")
        for label in ("gammapy", "smc_first", "smc", "nested"):
            if label not in entry:
                continue
            e = entry[label]
            ratio = "" if label == "gammapy" or theirs is None else format_ratio(theirs["wall_s"], e["wall_s"], TARGET)
            smaller = "" if label == "gammapy" or theirs is None else ("yes" if e["error"] < theirs["error"] else "NO")
            rows.append([kind, label, f"{e['log_z']:.3f}", f"{e['error']:.3f}", format_seconds(e["wall_s"]),
                         str(e["ncall"]), ratio, smaller])
    print("\n")
    print_table(rows, ["model", "run", "ln Z", "error", "wall", "likelihood calls", "gammapy / ours",
                       "smaller error"])
    print()
    bf_rows = []
    for label in ("gammapy", "smc_first", "smc", "nested"):
        if all(label in report["kinds"][k] for k in KINDS):
            a, b = (report["kinds"][k][label] for k in KINDS)
            bf_rows.append([label, f"{a['log_z'] - b['log_z']:.3f}", f"{np.hypot(a['error'], b['error']):.3f}"])
    print_table(bf_rows, ["run", "ln B (log-parabola / power law)", "error"])
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(report, handle, indent=2)
    return report


if __name__ == "__main__":
    main()
