"""Simulation-based calibration of a log-parabola fit: are bayesdl4's posteriors calibrated?

A template spectrum (built-in IRFs, 0.5 h, 0.3-30 TeV, a power-law background) and a log-parabola
with priors on its amplitude, alpha and beta. Each repetition draws the truth from the priors,
simulates counts, fits and samples with NUTS, and records the rank of the truth among the posterior
draws (Talts et al. 2018) and whether the 68 / 95 % intervals cover it. Uniform ranks and nominal
coverage mean calibrated posteriors; ``--misspecify 1.2`` scales the background in the fit only,
a negative control the same tests must flag.

    python examples/sbc_study.py --output sbc-results                   # 200 repetitions (~2-3 min)
    python examples/sbc_study.py --repetitions 20 --draws 50 --tune 100  # quick look
    python examples/sbc_study.py --workers 2                             # on a Dask LocalCluster
    python examples/sbc_study.py --scheduler tcp://host:8786             # on a running Dask cluster

Writes into ``--output`` (default: a new temporary folder): ``sbc.nc`` (`SBCResult.read`),
``rank_histogram.png`` and ``rank_ecdf.png``; prints the tests.
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path


def make_simulator():
    """The template spectrum and the log-parabola with its priors."""
    from bayesdl4 import models as m
    from bayesdl4.datasets.simulate import simple_irf_dataset
    from bayesdl4.studies import Simulator

    spectrum = m.LogParabolaSpectralModel(amplitude="3e-11 cm-2 s-1 TeV-1", reference="1 TeV", alpha=2.5,
                                          beta=0.2)
    spectrum.amplitude.prior = m.LogUniformPrior(1e-11, 1e-10)
    spectrum.alpha.prior = m.UniformPrior(2.0, 3.0)
    spectrum.beta.prior = m.UniformPrior(0.0, 0.5)
    template = simple_irf_dataset(livetime="0.5 h", energy_bounds=("0.3 TeV", "30 TeV"), nbin_per_decade=5,
                                  background_rate="3e-2 s-1 TeV-1")
    return Simulator([template], m.Models([m.SkyModel(spectrum, name="src")]))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", default=None, help="folder for the results (default: a new temporary one)")
    parser.add_argument("--repetitions", type=int, default=200)
    parser.add_argument("--draws", type=int, default=100)
    parser.add_argument("--tune", type=int, default=200)
    parser.add_argument("--chains", type=int, default=2)
    parser.add_argument("--ranks", type=int, default=99, help="thinned draws each rank is taken among")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--misspecify", type=float, default=1.0, help="background scale in the fit only")
    parser.add_argument("--workers", type=int, default=0, help="Dask LocalCluster workers (0: run here)")
    parser.add_argument("--scheduler", default=None, help="address of a running Dask scheduler")
    args = parser.parse_args(argv)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from bayesdl4.plotting.sbc import plot_rank_ecdf, plot_rank_histogram
    from bayesdl4.studies import simulation_based_calibration

    output = Path(args.output or tempfile.mkdtemp(prefix="bayesdl4-sbc-"))
    output.mkdir(parents=True, exist_ok=True)
    client, cluster = args.scheduler or False, None
    if args.workers and not args.scheduler:
        from distributed import Client, LocalCluster

        cluster = LocalCluster(n_workers=args.workers, threads_per_worker=1, dashboard_address=None)
        client = Client(cluster)
    n_ranks = min(args.ranks, args.draws * args.chains)
    t0 = time.perf_counter()
    try:
        result = simulation_based_calibration(
            make_simulator(), args.repetitions, draws=args.draws, tune=args.tune, chains=args.chains,
            n_ranks=n_ranks, background_scale_fit=args.misspecify, random_seed=args.seed, client=client)
    finally:
        if cluster is not None:
            client.close()
            cluster.close()
    wall = time.perf_counter() - t0
    n_bins = max(2, min(10, args.repetitions // 5, n_ranks + 1))
    print(result.summary(n_bins=n_bins))
    print(f"{args.repetitions} repetitions in {wall:.1f} s "
          f"(median {result.run['seconds'].median().item():.2f} s per repetition)")
    verdict = "calibrated" if result.passed(n_bins=n_bins) else "NOT calibrated (a test gives p <= 0.01)"
    print(f"verdict: {verdict}")

    result.write(output / "sbc.nc", overwrite=True)
    for name, plot in (("rank_histogram.png", plot_rank_histogram), ("rank_ecdf.png", plot_rank_ecdf)):
        kwargs = {"n_bins": n_bins} if plot is plot_rank_histogram else {}
        plot(result, **kwargs)
        plt.tight_layout()
        plt.savefig(output / name, dpi=100)
        plt.close("all")
    print(f"results in {output}")
    return result


if __name__ == "__main__":
    sys.exit(0 if main() is not None else 1)
