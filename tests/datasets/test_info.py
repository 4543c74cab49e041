"""Summaries: ``info_dict``, ``Datasets.info_table``, ``gti``, ``meta_table``, ``energy_ranges``
against gammapy 2.1 on the same files, and their laws (cumulative rows = stacked totals)."""

import numpy as np
import pytest
from astropy import units as u

from bayesdl4.datasets import Datasets, MapDataset, MapDatasetOnOff, SpectrumDatasetOnOff
from bayesdl4.datasets.tables import gti_reference_time
from tests.conftest import gammapy_data
from tests.datasets.builders import random_map, random_spectrum

HESS = [f"joint-crab/spectra/hess/pha_obs{n}.fits" for n in (23523, 23526, 23559, 23592)]
NUMBERS = (
    "counts",
    "excess",
    "sqrt_ts",
    "background",
    "npred",
    "npred_background",
    "n_bins",
    "n_fit_bins",
    "stat_sum",
)
ONOFF_NUMBERS = ("counts_off", "acceptance", "acceptance_off", "alpha")


def _assert_info_equal(ours, theirs, keys, rtol=1e-6):
    for key in keys:
        a, b = ours[key], theirs[key]
        if isinstance(b, u.Quantity):
            b = b.to_value(a.unit) if isinstance(a, u.Quantity) else b.value
            a = a.value if isinstance(a, u.Quantity) else a
        if np.isnan(float(b)):
            assert np.isnan(float(a)), key
        else:
            assert float(a) == pytest.approx(float(b), rel=rtol, abs=1e-9), key


@pytest.mark.oracle
@pytest.mark.realdata
def test_info_table_of_hess_runs_matches_gammapy():
    gp = pytest.importorskip("gammapy.datasets")
    data = gammapy_data()
    ours = Datasets([SpectrumDatasetOnOff.read(data / f) for f in HESS])
    theirs = gp.Datasets([gp.SpectrumDatasetOnOff.read(data / f) for f in HESS])
    table, expected = ours.info_table(), theirs.info_table()
    assert table["name"].tolist() == expected["name"].tolist()
    for row, gp_row in zip(table, expected, strict=True):
        _assert_info_equal(
            row, gp_row, NUMBERS + ONOFF_NUMBERS + ("livetime", "exposure_min", "exposure_max")
        )
    cumulative, gp_cumulative = ours.info_table(cumulative=True), theirs.info_table(cumulative=True)
    for row, gp_row in zip(cumulative, gp_cumulative, strict=True):
        _assert_info_equal(
            row,
            gp_row,
            ("counts", "excess", "sqrt_ts", "background", "counts_off", "alpha", "livetime"),
        )
    # the law: the last cumulative row is the stack's summary, the counts the sum of safe counts
    assert cumulative["counts"][-1] == sum(
        int((d.counts.data * d.mask_safe.data).sum()) for d in ours
    )
    low, high = ours.energy_ranges
    np.testing.assert_allclose(
        low.to_value("TeV"), theirs.energy_ranges[0].to_value("TeV"), rtol=1e-12
    )
    np.testing.assert_allclose(
        high.to_value("TeV"), theirs.energy_ranges[1].to_value("TeV"), rtol=1e-12
    )


@pytest.fixture(scope="module")
def map_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("info")
    rng = np.random.default_rng(41)
    files = {"map": [], "onoff": []}
    for kind in files:
        for i in range(2):
            dataset = random_map(rng, f"{kind}{i}", onoff=kind == "onoff", npix=8)
            files[kind].append(folder / f"{kind}{i}.fits")
            dataset.write(files[kind][-1])
    return files


@pytest.mark.oracle
@pytest.mark.parametrize("kind", ["map", "onoff"])
def test_map_info_gti_and_meta_table_match_gammapy(map_files, kind):
    gp = pytest.importorskip("gammapy.datasets")
    cls, gp_cls = (
        (MapDatasetOnOff, gp.MapDatasetOnOff) if kind == "onoff" else (MapDataset, gp.MapDataset)
    )
    ours = Datasets([cls.read(f) for f in map_files[kind]])
    theirs = gp.Datasets([gp_cls.read(f) for f in map_files[kind]])
    keys = (
        "counts",
        "excess",
        "sqrt_ts",
        "background",
        "n_bins",
        "livetime",
        "ontime",
        "exposure_min",
        "exposure_max",
    )
    keys += ONOFF_NUMBERS + ("stat_sum",) if kind == "onoff" else ()
    for dataset, gp_dataset in zip(ours, theirs, strict=True):
        _assert_info_equal(dataset.info_dict(), gp_dataset.info_dict(), keys)
    # Datasets.gti: one interval per dataset (first start, last stop), in the same reference
    gti, gp_gti = ours.gti, theirs.gti
    reference = gti_reference_time(gti)
    np.testing.assert_allclose(
        np.asarray(gti["START"]), (gp_gti.time_start - reference).to_value("s"), atol=1e-5, rtol=0
    )
    np.testing.assert_allclose(
        np.asarray(gti["STOP"]), (gp_gti.time_stop - reference).to_value("s"), atol=1e-5, rtol=0
    )
    table, gp_table = ours.meta_table, theirs.meta_table
    assert table.colnames == gp_table.colnames == ["NAME", "TYPE", "OBS_ID"]
    for column in table.colnames:
        assert [str(v) for v in table[column]] == [str(v) for v in gp_table[column]]


def test_info_dict_laws_without_gammapy():
    rng = np.random.default_rng(42)
    dataset = random_spectrum(rng, "s", onoff=True, threshold_bin=2)
    info = dataset.info_dict()
    safe = dataset.mask_safe.data
    assert info["counts"] == int((dataset.counts.data * safe).sum())
    assert info["background"] == pytest.approx(
        float((dataset.background.data * safe).sum()), rel=1e-12
    )
    assert info["excess"] == pytest.approx(info["counts"] - info["background"], rel=1e-12)
    # alpha is the OFF-weighted mean alpha, so alpha x n_off is the background
    assert info["alpha"] * info["counts_off"] == pytest.approx(info["background"], rel=1e-12)
    assert info["livetime"] == dataset.livetime
    assert info["counts_rate"].to_value("s-1") == pytest.approx(
        info["counts"] / dataset.livetime.to_value("s")
    )
    everything = dataset.info_dict(in_safe_data_range=False)
    assert everything["counts"] == int(dataset.counts.data.sum())
    assert np.sign(info["sqrt_ts"]) == np.sign(info["excess"])
    assert np.isnan(info["npred_signal"])
