"""Hierarchical multi-run models: the 100-run background population and the joint-crab systematics.

(1) 100 simulated runs with a background template (`SpectrumDataset` + `FoVBackgroundModel`), per-run
norm from a log-normal `PopulationPrior`, one shared log-parabola (>= 103 parameters): NUTS (nutpie,
4 chains x 1000 draws after 1000 tuning steps) until ESS_bulk >= 400 for every parameter; compile
time, sampling time, min ESS_bulk and ESS per second. Target: under 10 minutes on 2 cores.

(2) The joint-crab systematics posterior (shared log-parabola, an energy scale per instrument with
Gaussian priors: 8 parameters, `examples/joint_crab_systematics.py`): NUTS wall time and ESS against
gammapy 2.1's `Sampler` (UltraNest) on the same model and priors (with ``--gammapy-sampler``; needs
ultranest; tens of minutes).

    .venv/bin/python benchmarks/bench_hierarchical.py
    .venv/bin/python benchmarks/bench_hierarchical.py --skip-population --gammapy-sampler
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT))
import common  # noqa: E402


def _min_ess(tree, names=None):
    import arviz as az

    posterior = tree["posterior"].to_dataset()
    if names is not None:
        posterior = posterior[names]
    ess = az.ess(posterior, method="bulk")
    rhat = az.rhat(posterior)
    return (min(float(ess[v].min()) for v in ess.data_vars), max(float(rhat[v].max()) for v in rhat.data_vars))


def population(args):
    from bayesdl4.inference import build_model, sample
    from bayesdl4.inference.density import model_functions
    from tests.inference.test_hierarchical import _hierarchical_models, background_runs

    t0 = time.perf_counter()
    runs, _ = background_runs(100, seed=3)
    runs.models = _hierarchical_models(runs)
    t_sim = time.perf_counter() - t0
    t0 = time.perf_counter()
    functions = model_functions(build_model(runs))
    functions.density(jacobian=True)(functions.x0)
    t_compile = time.perf_counter() - t0
    t0 = time.perf_counter()
    tree = sample(runs, draws=args.draws, tune=args.tune, chains=args.chains, random_seed=4, progressbar=False)
    wall = time.perf_counter() - t0
    sampling = tree.attrs["wall_time_s"] - tree.attrs["compile_time_s"]
    ess, rhat = _min_ess(tree)
    n_par = len(tree["posterior"].data_vars)
    divergences = int(tree["sample_stats"]["diverging"].values.sum())
    out = {"parameters": n_par, "simulate_s": t_sim, "compile_s": t_compile, "sample_wall_s": wall,
           "sampling_s": sampling, "postprocess_s": tree.attrs["postprocess_time_s"], "min_ess_bulk": ess,
           "max_rhat": rhat, "ess_per_s": ess / sampling, "divergences": divergences}
    print(f"100-run population model: {n_par} parameters; compile {t_compile:.1f} s (model build + first "
          f"call); sample() {wall:.1f} s (NUTS {sampling:.1f} s, pointwise groups "
          f"{tree.attrs['postprocess_time_s']:.1f} s); min ESS_bulk {ess:.0f}, max r_hat {rhat:.4f}, "
          f"{divergences} divergences; min-ESS per second of sampling {ess / sampling:.1f} "
          f"({'meets' if wall < 600 and ess >= 400 else 'misses'} the 10-minute / ESS 400 target)")
    return out


def systematics(args):
    from bayesdl4.inference import sample
    from tests.inference.test_systematics import _gammapy, _ours

    datasets = _ours()
    names = ["crab.amplitude", "crab.alpha", "crab.beta"] + [f"{i}-energy-scale.z" for i in
                                                              ("fermi", "magic", "veritas", "fact", "hess")]
    sample(datasets, draws=100, tune=100, chains=2, random_seed=0, progressbar=False)  # warm-up (compiles)
    t0 = time.perf_counter()
    tree = sample(datasets, draws=args.draws, tune=args.tune, chains=args.chains, random_seed=1,
                  progressbar=False)
    ours = time.perf_counter() - t0
    ess, rhat = _min_ess(tree, names)
    out = {"ours_s": ours, "ours_min_ess": ess, "ours_max_rhat": rhat}
    print(f"joint-crab systematics (8 parameters): NUTS {args.chains} x {args.draws} in {ours:.1f} s, "
          f"min ESS_bulk {ess:.0f} ({ess / ours:.1f} per s), max r_hat {rhat:.4f}")
    if args.gammapy_sampler:
        common.quiet_gammapy()
        import contextlib
        import io

        from gammapy.modeling import Sampler

        theirs, _ = _gammapy(datasets.names)
        sampler = Sampler(backend="ultranest",
                          sampler_opts={"live_points": 400, "frac_remain": 0.5, "log_dir": None})
        t0 = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            result = sampler.run(theirs)
        gp_time = time.perf_counter() - t0
        gp_ess = float(result.sampler_results.get("ess", np.nan))
        out.update({"gammapy_s": gp_time, "gammapy_ess": gp_ess})
        print(f"gammapy Sampler (UltraNest): {gp_time:.1f} s, ESS {gp_ess:.0f} ({gp_ess / gp_time:.2f} per s); "
              f"wall-time ratio {gp_time / ours:.1f}x, ESS-per-second ratio "
              f"{(ess / ours) / (gp_ess / gp_time):.0f}x")
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--tune", type=int, default=1000)
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--skip-population", action="store_true")
    parser.add_argument("--skip-systematics", action="store_true")
    parser.add_argument("--gammapy-sampler", action="store_true")
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    results = {}
    if not args.skip_population:
        results["population"] = population(args)
    if not args.skip_systematics:
        common.gammapy_data()
        results["systematics"] = systematics(args)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
