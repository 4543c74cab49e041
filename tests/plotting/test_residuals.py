"""Residual plots of posterior-predictive checks, on a result with known replicas."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import xarray as xr  # noqa: E402

from bayesdl4.plotting import (  # noqa: E402
    plot_ppc_statistic,
    plot_residuals,
    plot_spectrum_residuals,
    ppc_residuals,
)
from tests.inference.spectral_cases import onoff  # noqa: E402

OUTLIER = 7  # the bin whose observed counts lie 3 sigma above the prediction


def known_result(dataset, n_chain=2, n_draw=2000, seed=0):
    """A result whose replicas are Poisson(mu) with mu the observed counts (+ 5), except one bin
    observed 3 sigma high."""
    bins = np.flatnonzero(dataset.mask_safe.data.ravel())
    mu = dataset.counts.data.ravel()[bins] + 5.0
    observed = mu.copy()
    observed[OUTLIER] = mu[OUTLIER] + 3 * np.sqrt(mu[OUTLIER])
    rng = np.random.default_rng(seed)
    dim = f"{dataset.name}_bin"
    replicas = rng.poisson(mu, size=(n_chain, n_draw, bins.size))
    coords = {"chain": np.arange(n_chain), "draw": np.arange(n_draw), dim: bins}
    tree = xr.DataTree()
    tree["posterior_predictive"] = xr.DataTree(xr.Dataset(
        {dataset.name: (("chain", "draw", dim), replicas),
         f"{dataset.name}.counts_off": (("chain", "draw", dim), 5 * replicas)}, coords=coords))
    tree["observed_data"] = xr.DataTree(xr.Dataset(
        {dataset.name: ((dim,), observed), f"{dataset.name}.counts_off": ((dim,), 5 * mu)}, coords={dim: bins}))
    return tree, mu


@pytest.fixture(scope="module")
def dataset():
    return onoff("log_parabola", n=1, seed=30)[0]


def test_standardised_residuals_are_the_outlier_in_sigma(dataset):
    tree, mu = known_result(dataset)
    res = ppc_residuals(tree, dataset.name)
    assert res["residual"][OUTLIER] == pytest.approx(3.0, abs=0.15)
    others = np.delete(res["residual"], OUTLIER)
    assert np.all(np.abs(others) < 0.15)  # observed = the replicas' mean elsewhere
    # the replicas' own 68 % band is about +-1 sigma where the counts are large
    large = mu > 50
    np.testing.assert_allclose(res["band"][1][large], -1.0, atol=0.15)
    np.testing.assert_allclose(res["band"][2][large], 1.0, atol=0.15)
    off = ppc_residuals(tree, f"{dataset.name}.counts_off")
    np.testing.assert_allclose(off["residual"], 0.0, atol=0.1)


def test_residual_plots_are_written_as_png(dataset, tmp_path):
    tree, _ = known_result(dataset)
    fig = plot_spectrum_residuals(tree, dataset)
    path = tmp_path / "residuals.png"
    fig.savefig(path, dpi=80)
    plt.close(fig)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    ax = plot_residuals(tree, dataset, counts_off=True, ax=plt.figure().gca())
    assert ax.get_ylabel() == "residual [sigma]"
    plt.close("all")

    rng = np.random.default_rng(1)
    observed = rng.normal(50, 5, size=(2, 100, 1))
    pvalues = xr.Dataset(
        {"stat_observed": (("chain", "draw", "dataset"), observed),
         "stat_replicated": (("chain", "draw", "dataset"), observed + rng.normal(2, 5, size=observed.shape)),
         "p_value": (("dataset",), [0.6]), "p_value_total": ((), 0.6)},
        coords={"dataset": [dataset.name]})
    fig, axes = plt.subplots(1, 2, figsize=(9, 4))
    plot_ppc_statistic(pvalues, dataset.name, ax=axes[0])
    plot_ppc_statistic(pvalues, ax=axes[1])
    assert "p = 0.600" in axes[0].get_title()
    fig.savefig(tmp_path / "statistic.png", dpi=80)
    plt.close(fig)
    assert (tmp_path / "statistic.png").stat().st_size > 10_000
