"""Model comparison on the joint-crab spectra: power law, log-parabola, exponential cutoff.

Ten ON/OFF spectra from five instruments (``$GAMMAPY_DATA/joint-crab/spectra``), three spectral
models with the same proper priors where they share a parameter, each compared by

* PSIS-LOO (expected log predictive density over all fitted bins, `arviz.compare`),
* the evidence ln Z (SMC, optionally also nested sampling) and Bayes factors against the power law,
* the posterior-predictive p-value of the total WStat statistic.

    python examples/model_comparison.py --output comparison-results
    python examples/model_comparison.py --quick          # small settings (CI): a minute or two

Writes into ``--output`` (default: a new temporary folder):

* ``posterior_<model>.nc``  NUTS posterior with its ``evidence`` group (`bayesdl4.inference.read`)
* ``comparison.json``       the table below, machine readable
* ``ppc_statistic.png``     statistic of replicas vs data for each model
"""

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

#: Fit ranges in TeV per instrument (joint-crab paper).
FIT_RANGES = {
    "fermi": (0.03, 2.0),
    "magic": (0.08, 30.0),
    "veritas": (0.15, 30.0),
    "fact": (0.4, 30.0),
    "hess": (0.66, 30.0),
}
MODELS = ("power_law", "log_parabola", "exp_cutoff")


def read_datasets(gammapy_data):
    """The ten spectra as `Datasets`, named ``<instrument>_<file stem>``, with their fit ranges."""
    from astropy import units as u

    from bayesdl4.datasets import Datasets, SpectrumDatasetOnOff

    folder = Path(gammapy_data) / "joint-crab" / "spectra"
    datasets = []
    for instrument, (emin, emax) in FIT_RANGES.items():
        paths = sorted((folder / instrument).glob("pha_*.fits"))
        if not paths:
            sys.exit(f"no spectra in {folder / instrument}: is $GAMMAPY_DATA complete (joint-crab/spectra)?")
        for path in paths:
            dataset = SpectrumDatasetOnOff.read(path, name=f"{instrument}_{path.stem.removeprefix('pha_')}")
            dataset.mask_fit = dataset.counts.geom.energy_mask(emin * u.TeV, emax * u.TeV)
            datasets.append(dataset)
    return Datasets(datasets)


def crab_model(kind):
    """One of `MODELS` with proper priors: amplitude LogUniform(1e-12, 1e-9) cm-2 s-1 TeV-1,
    index / alpha Uniform(1, 5), beta Uniform(0, 1), lambda_ Uniform(0, 1) TeV-1."""
    from bayesdl4 import models as m

    amplitude = "3.8e-11 cm-2 s-1 TeV-1"
    if kind == "power_law":
        spectral = m.PowerLawSpectralModel(amplitude=amplitude, reference="1 TeV", index=2.6)
        shape = {"index": (1, 5)}
    elif kind == "log_parabola":
        spectral = m.LogParabolaSpectralModel(amplitude=amplitude, reference="1 TeV", alpha=2.5, beta=0.1)
        shape = {"alpha": (1, 5), "beta": (0, 1)}
    else:
        spectral = m.ExpCutoffPowerLawSpectralModel(amplitude=amplitude, reference="1 TeV", index=2.4,
                                                    lambda_="0.1 TeV-1")
        shape = {"index": (1, 5), "lambda_": (0, 1)}
    spectral.amplitude.prior = m.LogUniformPrior(1e-12, 1e-9)
    for name, (lo, hi) in shape.items():
        getattr(spectral, name).prior = m.UniformPrior(lo, hi)
    return m.Models([m.SkyModel(spectral, name="crab")])


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description="Power law vs log-parabola vs cutoff on the joint-crab spectra")
    parser.add_argument("--output", default=None, help="output folder (default: a new temporary folder)")
    parser.add_argument("--draws", type=int, default=1000, help="NUTS draws per chain")
    parser.add_argument("--tune", type=int, default=1000, help="NUTS tuning steps per chain")
    parser.add_argument("--chains", type=int, default=4, help="NUTS chains")
    parser.add_argument("--smc-draws", type=int, default=1000, help="SMC particles per chain")
    parser.add_argument("--smc-chains", type=int, default=4, help="SMC chains")
    parser.add_argument("--nested", action="store_true", help="also nested sampling (needs UltraNest)")
    parser.add_argument("--quick", action="store_true",
                        help="small settings for a fast check: 200 draws, 200 tune, 2 chains, SMC 2 x 400")
    parser.add_argument("--seed", type=int, default=0, help="random seed")
    parser.add_argument("--overwrite", action="store_true", help="replace existing output files")
    args = parser.parse_args(argv)
    if args.quick:
        args.draws, args.tune, args.chains, args.smc_draws, args.smc_chains = 200, 200, 2, 400, 2
    return args


def analyse(datasets, kind, args):
    """MAP fit, NUTS, evidence and posterior-predictive p-value of one model."""
    from bayesdl4.inference import build_model, evidence, fit, ppc_pvalues, sample

    datasets.models = crab_model(kind)
    model = build_model(datasets)
    t0 = time.perf_counter()
    map_fit = fit(model)
    tree = sample(model, draws=args.draws, tune=args.tune, chains=args.chains, random_seed=args.seed,
                  progressbar=False)
    t_nuts = time.perf_counter() - t0
    results = {"smc": evidence(model, method="smc", random_seed=args.seed, posterior=tree, progressbar=False,
                               draws=args.smc_draws, chains=args.smc_chains)}
    if args.nested:
        results["nested"] = evidence(model, method="nested", random_seed=args.seed, posterior=tree,
                                     progressbar=False)
    pvalues = ppc_pvalues(tree, model)
    return {"fit": map_fit, "posterior": tree, "evidence": results, "ppc": pvalues, "nuts_time_s": t_nuts}


def main(argv=None):
    """Run the comparison; returns a dict with the per-model results, the LOO table and file paths."""
    args = parse_args(argv)
    gammapy_data = os.environ.get("GAMMAPY_DATA")
    if not gammapy_data or not Path(gammapy_data).is_dir():
        sys.exit("GAMMAPY_DATA is not set (or not a folder): download gammapy's data "
                 "(`gammapy download datasets`) and export GAMMAPY_DATA=/path/to/gammapy-data")

    import arviz as az
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from bayesdl4.inference import bayes_factor, joint_log_likelihood, likelihood_ratio_test, write
    from bayesdl4.plotting import plot_ppc_statistic

    output = Path(args.output) if args.output else Path(tempfile.mkdtemp(prefix="bayesdl4-model-comparison-"))
    output.mkdir(parents=True, exist_ok=True)
    datasets = read_datasets(gammapy_data)
    print(f"{len(datasets)} spectra, {sum(int(d.mask_bins.sum()) for d in datasets)} fitted bins")

    results = {}
    for kind in MODELS:
        t0 = time.perf_counter()
        results[kind] = analyse(datasets, kind, args)
        smc = results[kind]["evidence"]["smc"]
        print(f"{kind:>13}: total_stat {results[kind]['fit'].total_stat:8.2f}, ln Z (SMC) {smc.log_z:8.2f} "
              f"+- {smc.log_z_error:.2f}  ({time.perf_counter() - t0:.1f} s)")

    loo = az.compare({kind: joint_log_likelihood(r["posterior"]) for kind, r in results.items()}, round_to="none")
    reference = results["power_law"]
    table = {}
    for kind, r in results.items():
        row = {"total_stat": r["fit"].total_stat, "elpd_loo": float(loo.loc[kind, "elpd"]),
               "elpd_loo_se": float(loo.loc[kind, "se"]), "elpd_diff": float(loo.loc[kind, "elpd_diff"]),
               "ppc_p_value": float(r["ppc"]["p_value_total"])}
        for method, ev in r["evidence"].items():
            row[f"log_z_{method}"], row[f"log_z_{method}_error"] = ev.log_z, ev.log_z_error
            if kind != "power_law":
                bf = bayes_factor(ev, reference["evidence"][method])
                row[f"log_bf_vs_power_law_{method}"], row[f"log_bf_vs_power_law_{method}_error"] = \
                    bf.log_bf, bf.log_bf_error
        if kind != "power_law":
            lrt = likelihood_ratio_test(reference["fit"], r["fit"])
            row["lrt_ts_vs_power_law"], row["lrt_sigma_vs_power_law"] = lrt.ts, lrt.significance
        table[kind] = row

    print("\nmodel          elpd_loo (se)     elpd_diff   ln Z (SMC)        ln B vs PL        LRT sigma   PPC p")
    for kind, row in table.items():
        bf = (f"{row['log_bf_vs_power_law_smc']:7.2f} +- {row['log_bf_vs_power_law_smc_error']:.2f}"
              if "log_bf_vs_power_law_smc" in row else f"{'-':>16}")
        sigma = f"{row['lrt_sigma_vs_power_law']:9.1f}" if "lrt_sigma_vs_power_law" in row else f"{'-':>9}"
        print(f"{kind:<13} {row['elpd_loo']:9.2f} ({row['elpd_loo_se']:.2f})  {row['elpd_diff']:9.2f}   "
              f"{row['log_z_smc']:8.2f} +- {row['log_z_smc_error']:.2f}   {bf}   {sigma}   {row['ppc_p_value']:.3f}")
    best = str(loo.index[0])
    per_spectrum = results[best]["ppc"]["p_value"]
    print(f"\nposterior-predictive p of each spectrum's WStat ({best}): " + ", ".join(
        f"{name} {float(p):.3f}" for name, p in zip(per_spectrum["dataset"].values, per_spectrum.values, strict=True)))
    if args.nested:
        for kind, row in table.items():
            print(f"{kind:<13} ln Z (nested) {row['log_z_nested']:8.2f} +- {row['log_z_nested_error']:.2f}")

    files = {kind: output / f"posterior_{kind}.nc" for kind in MODELS}
    for kind, path in files.items():
        write(results[kind]["posterior"], path, overwrite=args.overwrite)
    files["table"] = output / "comparison.json"
    if files["table"].exists() and not args.overwrite:
        sys.exit(f"{files['table']} exists: pass --overwrite")
    files["table"].write_text(json.dumps(table, indent=2))
    fig, axes = plt.subplots(1, len(MODELS), figsize=(4.5 * len(MODELS), 4))
    for ax, kind in zip(axes, MODELS, strict=True):
        plot_ppc_statistic(results[kind]["ppc"], ax=ax)
        ax.set_title(f"{kind}: p = {table[kind]['ppc_p_value']:.3f}")
    fig.tight_layout()
    files["plot"] = output / "ppc_statistic.png"
    fig.savefig(files["plot"], dpi=90)
    plt.close(fig)
    print("\nwrote:\n" + "\n".join(f"  {path}" for path in files.values()))
    return {"results": results, "table": table, "loo": loo, "files": files}


if __name__ == "__main__":
    main()
