"""Joint Crab analysis: ten ON/OFF spectra from five instruments, one log-parabola, MAP fit and NUTS.

The data are the joint-crab OGIP spectra in ``$GAMMAPY_DATA/joint-crab/spectra`` (Nigro et al. 2019):
Fermi-LAT, MAGIC (2), VERITAS (2), FACT (stacked) and H.E.S.S. (4), each with its fit range.

    python examples/joint_crab.py --output joint-crab-results
    python examples/joint_crab.py --draws 200 --tune 200 --chains 2      # quick look

Writes into ``--output`` (default: a new temporary folder):

* ``fit.nc``        MAP fit (values, errors, covariance; ``FitResult.from_datatree(read(path))``)
* ``posterior.nc``  posterior, pointwise log-likelihood, posterior predictive (``bayesdl4.inference.read``)
* ``models.yaml``   the model with the MAP values
* ``counts_ppc.png`` observed counts with the posterior-predictive band, one panel per spectrum
"""

import argparse
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


def read_datasets(gammapy_data):
    """The ten spectra as `Datasets`, named ``<instrument>_<file stem>``, with their fit ranges."""
    from astropy import units as u

    from bayesdl4.datasets import Datasets, SpectrumDatasetOnOff

    folder = Path(gammapy_data) / "joint-crab" / "spectra"
    datasets = []
    for instrument, (emin, emax) in FIT_RANGES.items():
        paths = sorted((folder / instrument).glob("pha_*.fits"))
        if not paths:
            sys.exit(
                f"no spectra in {folder / instrument}: is $GAMMAPY_DATA complete (joint-crab/spectra)?"
            )
        for path in paths:
            # the FACT file's OBS_ID is a list of 120 runs: give every spectrum a short name instead
            name = f"{instrument}_{path.stem.removeprefix('pha_')}"
            dataset = SpectrumDatasetOnOff.read(path, name=name)
            geom = dataset.counts.geom
            dataset.mask_fit = geom.energy_mask(emin * u.TeV, emax * u.TeV)
            datasets.append(dataset)
    return Datasets(datasets)


def crab_models():
    """Log-parabola (natural log, reference 1 TeV) with proper priors on its three free parameters."""
    from bayesdl4.models import (
        LogParabolaSpectralModel,
        LogUniformPrior,
        Models,
        SkyModel,
        UniformPrior,
    )

    spectral = LogParabolaSpectralModel(
        amplitude="3e-11 cm-2 s-1 TeV-1", reference="1 TeV", alpha=2.3, beta=0.0
    )
    spectral.amplitude.prior = LogUniformPrior(1e-13, 1e-9)
    spectral.alpha.prior = UniformPrior(1, 5)
    spectral.beta.prior = UniformPrior(-1, 1)
    return Models([SkyModel(spectral, name="crab")])


def loo_table(posterior, datasets):
    """PSIS-LOO per spectrum (over its fitted bins) and summed per instrument."""
    import arviz as az
    import numpy as np

    rows, per_instrument = [], {}
    for dataset in datasets:
        loo = az.loo(posterior, var_name=dataset.name)
        k_max = float(np.max(loo.pareto_k.values))
        rows.append((dataset.name, float(loo.elpd), float(loo.se), float(loo.p), k_max))
        instrument = dataset.name.split("_", 1)[0]
        elpd, p = per_instrument.get(instrument, (0.0, 0.0))
        per_instrument[instrument] = (elpd + float(loo.elpd), p + float(loo.p))
    return rows, per_instrument


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description="Joint Crab analysis on $GAMMAPY_DATA/joint-crab")
    parser.add_argument(
        "--output", default=None, help="output folder (default: a new temporary folder)"
    )
    parser.add_argument("--draws", type=int, default=1000, help="NUTS draws per chain")
    parser.add_argument("--tune", type=int, default=1000, help="NUTS tuning steps per chain")
    parser.add_argument("--chains", type=int, default=4, help="NUTS chains")
    parser.add_argument("--seed", type=int, default=0, help="random seed")
    parser.add_argument("--overwrite", action="store_true", help="replace existing output files")
    return parser.parse_args(argv)


def main(argv=None):
    """Run the analysis; returns a dict with the fit result, the posterior, LOO rows and file paths."""
    args = parse_args(argv)
    gammapy_data = os.environ.get("GAMMAPY_DATA")
    if not gammapy_data or not Path(gammapy_data).is_dir():
        sys.exit(
            "GAMMAPY_DATA is not set (or not a folder): download gammapy's data "
            "(`gammapy download datasets`) and export GAMMAPY_DATA=/path/to/gammapy-data"
        )

    import arviz as az
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from bayesdl4.inference import fit, sample, write
    from bayesdl4.plotting import plot_counts_ppc

    output = (
        Path(args.output) if args.output else Path(tempfile.mkdtemp(prefix="bayesdl4-joint-crab-"))
    )
    output.mkdir(parents=True, exist_ok=True)

    datasets = read_datasets(gammapy_data)
    datasets.models = crab_models()
    n_bins = sum(int(d.mask_bins.sum()) for d in datasets)
    print(f"{len(datasets)} spectra, {n_bins} fitted bins: {', '.join(d.name for d in datasets)}")

    t0 = time.perf_counter()
    result = fit(datasets)
    print(f"\nMAP fit ({time.perf_counter() - t0:.1f} s, compile included):\n{result}")
    if not result.success:
        print(
            "WARNING: the fit did not converge; the sampler still starts from the priors' support"
        )

    t0 = time.perf_counter()
    posterior = sample(
        datasets, draws=args.draws, tune=args.tune, chains=args.chains, random_seed=args.seed
    )
    print(
        f"\nNUTS: {args.chains} chains x {args.draws} draws (tune {args.tune}) in "
        f"{time.perf_counter() - t0:.1f} s, compile included"
    )
    summary = az.summary(posterior, var_names=list(result.names), round_to="none")
    print(summary.to_string(float_format=lambda value: f"{value:.4g}"))

    rows, per_instrument = loo_table(posterior, datasets)
    print(
        "\nPSIS-LOO per spectrum (elpd over its fitted bins; Pareto k > 0.7 flags influential bins):"
    )
    print(f"  {'spectrum':<18} {'elpd_loo':>10} {'se':>7} {'p_loo':>7} {'max k':>7}")
    for name, elpd, se, p, k_max in rows:
        print(f"  {name:<18} {elpd:10.2f} {se:7.2f} {p:7.2f} {k_max:7.2f}")
    print(
        "per instrument: "
        + ", ".join(
            f"{inst} {elpd:.1f} (p_loo {p:.2f})" for inst, (elpd, p) in per_instrument.items()
        )
    )

    files = {
        "fit": write(result, output / "fit.nc", overwrite=args.overwrite),
        "posterior": write(posterior, output / "posterior.nc", overwrite=args.overwrite),
        "models": output / "models.yaml",
        "plot": output / "counts_ppc.png",
    }
    datasets.models.write(files["models"], overwrite=args.overwrite)
    ncols = 5
    nrows = -(-len(datasets) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 3.6 * nrows), squeeze=False)
    for ax, dataset in zip(axes.flat, datasets, strict=False):
        plot_counts_ppc(posterior, dataset, ax=ax)
    for ax in list(axes.flat)[len(datasets) :]:
        ax.set_visible(False)
    fig.tight_layout()
    fig.savefig(files["plot"], dpi=100)
    plt.close(fig)
    print("\nwrote:\n" + "\n".join(f"  {path}" for path in files.values()))
    return {
        "fit": result,
        "posterior": posterior,
        "loo": rows,
        "files": files,
        "datasets": datasets,
    }


if __name__ == "__main__":
    main()
