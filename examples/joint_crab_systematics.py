"""Joint Crab with instrument systematics: a shared log-parabola and one energy scale per instrument.

The systematics model of the joint-crab paper (Nigro et al. 2019, section 4.2): each instrument's
energy scale is a nuisance parameter ``z`` with a Gaussian prior (sigma 5 % for Fermi-LAT, 15 % for
MAGIC, VERITAS, FACT and H.E.S.S.); the source spectra seen by an instrument are
``dnde(E / (1 + z)) / (1 + z)``. Data: ``$GAMMAPY_DATA/joint-crab/spectra``.

    python examples/joint_crab_systematics.py --output crab-systematics
    python examples/joint_crab_systematics.py --draws 200 --tune 200 --chains 2   # quick look

Writes ``fit.nc``, ``posterior.nc``, ``models.yaml`` and ``energy_scales.png`` (the posterior of
each instrument's ``z`` against its prior) into ``--output``.
"""

import argparse
import os
import sys
import tempfile
from pathlib import Path

#: Gaussian prior width of each instrument's energy scale (joint-crab paper).
SIGMA_Z = {"fermi": 0.05, "magic": 0.15, "veritas": 0.15, "fact": 0.15, "hess": 0.15}


def systematics_models(datasets):
    """The shared log-parabola plus one `EnergyScaleModel` per instrument (its datasets by name prefix)."""
    from bayesdl4.models import EnergyScaleModel, GaussianPrior, Models

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from joint_crab import crab_models

    models = list(crab_models())
    for instrument, sigma in SIGMA_Z.items():
        names = [n for n in datasets.names if n.startswith(f"{instrument}_")]
        scale = EnergyScaleModel(names, z=0.0, name=f"{instrument}-energy-scale")
        scale.z.prior = GaussianPrior(0.0, sigma)
        models.append(scale)
    return Models(models)


def plot_energy_scales(posterior, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    from scipy import stats

    fig, axes = plt.subplots(1, len(SIGMA_Z), figsize=(3 * len(SIGMA_Z), 2.8), sharey=False)
    for ax, (instrument, sigma) in zip(axes, SIGMA_Z.items(), strict=True):
        draws = posterior["posterior"][f"{instrument}-energy-scale.z"].values.ravel()
        grid = np.linspace(-3 * sigma, 3 * sigma, 300)
        ax.hist(draws, bins=40, density=True, color="C0", alpha=0.7, label="posterior")
        ax.plot(grid, stats.norm(0, sigma).pdf(grid), color="k", ls="--", label="prior")
        ax.set_title(instrument)
        ax.set_xlabel("z")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=None, help="folder for the results (default: a temporary one)")
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--tune", type=int, default=1000)
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    gammapy_data = os.environ.get("GAMMAPY_DATA")
    if not gammapy_data or not Path(gammapy_data).is_dir():
        sys.exit("GAMMAPY_DATA is not set (or not a folder): point it at gammapy's data folder")
    import arviz as az

    from bayesdl4.inference import fit, sample, write

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from joint_crab import read_datasets

    output = args.output or Path(tempfile.mkdtemp(prefix="crab-systematics-"))
    output.mkdir(parents=True, exist_ok=True)
    datasets = read_datasets(gammapy_data)
    datasets.models = systematics_models(datasets)
    result = fit(datasets)
    print(result)
    write(result, output / "fit.nc", overwrite=True)
    datasets.models.write(output / "models.yaml", overwrite=True)
    posterior = sample(datasets, draws=args.draws, tune=args.tune, chains=args.chains, random_seed=args.seed)
    write(posterior, output / "posterior.nc", overwrite=True)
    names = ["crab.amplitude", "crab.alpha", "crab.beta"] + [f"{i}-energy-scale.z" for i in SIGMA_Z]
    print(az.summary(posterior, var_names=names))
    plot_energy_scales(posterior, output / "energy_scales.png")
    print(f"results in {output}")


if __name__ == "__main__":
    main()
