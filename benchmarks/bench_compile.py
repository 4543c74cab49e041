"""Compile and call times of the joint-crab log density per PyTensor backend (why NUMBA / CVM where).

For each mode, a subprocess with empty PyTensor and Numba caches compiles the joint log density +
gradient of the ten joint-crab spectra (``ModelFunctions.density``, what ``fit`` and
``logp_function`` use): that is the cold compile. A second subprocess on the now-filled caches
gives the warm compile of a new session; inside it a second compile on fresh model objects (the
in-memory cache misses) gives the warm in-process compile, split into graph building, rewriting
and linking. Per-call times are measured with parameters changing between calls. The same is
done for the one-dataset convenience graph behind ``dataset.stat_sum()`` / ``npred()``.

    python benchmarks/bench_compile.py                   # modes NUMBA, CVM, FAST_RUN (~15 min on 2 cores)
    python benchmarks/bench_compile.py --modes NUMBA --quick

See benchmarks/README.md for the figures and what they decide
(`bayesdl4.inference.model.DEFAULT_MODE`, `bayesdl4.graph.evaluate.CONVENIENCE_MODE`).
"""

import argparse
import json
import tempfile

import common
from common import format_seconds, print_table

PRELUDE = """
import json, time, warnings
warnings.filterwarnings("ignore")
t0 = time.perf_counter()
import numpy as np
import pytensor
import common
from bayesdl4.inference import build_model
from bayesdl4.inference.density import model_functions

MODE, QUICK = {mode!r}, {quick!r}
datasets = common.read_ours(common.joint_crab_paths())
datasets.models = common.models_ours()
out = {{"import_read_s": time.perf_counter() - t0}}
"""

JOINT_WORKER = (
    PRELUDE
    + """
t1 = time.perf_counter()
functions = model_functions(build_model(datasets))
fn = functions.density(jacobian=False, mode=MODE)
fn(functions.x0)
out["compile_s"] = time.perf_counter() - t1
out["nodes"] = len(fn.function.maker.fgraph.apply_nodes)
to_x = functions._x_of_theta()
xs = [to_x(p) for p in common.parameter_points()]
timing = common.time_per_call(fn, xs, repeat=2 if QUICK else 5, min_time=0.2 if QUICK else 1.0)
out["call_s"], out["call_best_s"] = timing.median, timing.best

# second compile in this process on fresh model objects: the compiled function is found by the
# model's structure (no graph is built); then without any cache (the graph built, rewritten, linked)
datasets.models = common.models_ours()
t1 = time.perf_counter()
functions = model_functions(build_model(datasets))
functions.density(jacobian=False, mode=MODE)(functions.x0)
out["warm_structure_s"] = time.perf_counter() - t1
from bayesdl4.compiled import clear_cache
from bayesdl4.inference import density
import os
clear_cache()
density._BY_STRUCTURE.clear()
os.environ["BAYESDL4_CACHE_DIR"] = "off"
datasets.models = common.models_ours()
t1 = time.perf_counter()
functions = model_functions(build_model(datasets))
functions.density(jacobian=False, mode=MODE)(functions.x0)
out["warm_in_process_s"] = time.perf_counter() - t1
print(json.dumps(out))
"""
)

# one-dataset convenience graph (dataset.stat_sum(), npred()), in its own process: first call compiles
CONVENIENCE_WORKER = (
    PRELUDE
    + """
import bayesdl4.graph.evaluate as evaluate
evaluate.CONVENIENCE_MODE = MODE
dataset = datasets[6]  # H.E.S.S. obs 23523
dataset.models = common.models_ours()
t1 = time.perf_counter()
dataset.stat_sum()
out["compile_s"] = time.perf_counter() - t1
spectral = dataset.models["crab"].spectral_model
def stat_at(theta):
    for name, value in zip(common.START, theta):
        getattr(spectral, name).value = value
    return dataset.stat_sum()
timing = common.time_per_call(stat_at, common.parameter_points(), repeat=2 if QUICK else 5,
                              min_time=0.2 if QUICK else 1.0)
out["call_s"] = timing.median
print(json.dumps(out))
"""
)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--modes", default="NUMBA,CVM,FAST_RUN", help="comma-separated PyTensor modes"
    )
    parser.add_argument(
        "--quick", action="store_true", help="shorter per-call timing, one repetition"
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=2,
        help="cold + warm process pairs per mode and graph; the fastest is reported (default 2)",
    )
    parser.add_argument("--json", default=None, help="also write the figures to this JSON file")
    return parser.parse_args(argv)


def fastest(runs):
    """Per quantity, the smallest time over repeated runs (noise on a shared machine only adds time)."""
    out = dict(runs[0])
    for key in list(out):
        if key.endswith("_s") and all(key in r for r in runs):
            out[key] = min(r[key] for r in runs)
    return out


def describe_mode(name):
    from pytensor.compile.mode import get_mode

    mode = get_mode(name)
    return f"{type(mode.linker).__name__}"


def main(argv=None):
    args = parse_args(argv)
    common.gammapy_data()
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    results = {}
    for mode in modes:
        print(f"--- {mode} ({describe_mode(mode)})", flush=True)
        results[mode] = {}
        for kind, worker in (("joint", JOINT_WORKER), ("convenience", CONVENIENCE_WORKER)):
            code = worker.format(mode=mode, quick=args.quick)
            runs = []
            for _ in range(1 if args.quick else max(1, args.repeat)):
                with tempfile.TemporaryDirectory(prefix=f"bayesdl4-compile-{mode}-") as folder:
                    env = common.fresh_cache_env(folder)
                    cold, _ = common.run_json_subprocess(code, env=env)
                    warm, _ = common.run_json_subprocess(code, env=env)
                runs.append((cold, warm))
            results[mode][kind] = {
                "cold": fastest([c for c, _ in runs]),
                "warm": fastest([w for _, w in runs]),
                "runs": runs,
            }
        joint, conv = results[mode]["joint"], results[mode]["convenience"]
        print(
            f"    joint: cold compile {joint['cold']['compile_s']:.2f} s, warm (new process) "
            f"{joint['warm']['compile_s']:.2f} s, no cache (same process) {joint['warm']['warm_in_process_s']:.2f} s, "
            f"call {format_seconds(joint['warm']['call_s'])}, {joint['warm']['nodes']} nodes; convenience: "
            f"cold {conv['cold']['compile_s']:.2f} s, warm {conv['warm']['compile_s']:.2f} s, "
            f"call {format_seconds(conv['warm']['call_s'])}",
            flush=True,
        )

    print(
        "\nJoint log density + gradient of the 10 joint-crab spectra (ModelFunctions.density):"
    )
    rows = []
    for mode, r in results.items():
        cold, warm = r["joint"]["cold"], r["joint"]["warm"]
        split = f"by structure {warm['warm_structure_s']:.3f} s"
        rows.append(
            [
                mode,
                describe_mode(mode),
                f"{cold['compile_s']:.2f} s",
                f"{warm['compile_s']:.2f} s",
                f"{warm['warm_in_process_s']:.2f} s",
                split,
                format_seconds(warm["call_s"]),
                str(warm["nodes"]),
            ]
        )
    print_table(
        rows,
        [
            "mode",
            "linker",
            "cold compile",
            "warm, new process",
            "no bayesdl4 cache, same process",
            "fresh models, same structure",
            "per call",
            "nodes",
        ],
    )
    print(
        "\nOne-dataset convenience graph (dataset.stat_sum() on H.E.S.S. obs 23523, own process; "
        "the first call compiles):"
    )
    rows = [
        [
            mode,
            f"{r['convenience']['cold']['compile_s']:.2f} s",
            f"{r['convenience']['warm']['compile_s']:.2f} s",
            format_seconds(r["convenience"]["warm"]["call_s"]),
        ]
        for mode, r in results.items()
    ]
    print_table(rows, ["mode", "cold first call", "warm first call (new process)", "per call"])
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(results, handle, indent=2)
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
