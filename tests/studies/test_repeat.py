"""Compile once, run many: 100 fits of fresh simulated data compile once, memory stays flat, pulls are
standard normal."""

import gc
import tracemalloc

import numpy as np
import pytest

from bayesdl4 import compiled
from bayesdl4.errors import ModelError
from bayesdl4.studies import FitRepetitions, fit_repetitions
from tests.studies.conftest import TRUTH


def _live(kind):
    gc.collect()
    count = 0
    for obj in gc.get_objects():
        try:
            count += isinstance(obj, kind)
        except ReferenceError:  # a weak proxy whose object is gone (other tests of the session)
            continue
    return count


@pytest.mark.slow
def test_hundred_fits_compile_once_and_keep_memory_flat(onoff_sim, tmp_path):
    import pymc as pm

    from bayesdl4.datasets import SpectrumDatasetOnOff

    fit_repetitions(onoff_sim, 20, truth=TRUTH, random_seed=99, progressbar=False)  # warm-up
    datasets_alive, models_alive = _live(SpectrumDatasetOnOff), _live(pm.Model)
    before = compiled.stats()
    tracemalloc.start()
    try:
        gc.collect()
        traced_start = tracemalloc.get_traced_memory()[0]
        study = fit_repetitions(onoff_sim, 100, truth=TRUTH, random_seed=1, progressbar=False)
        gc.collect()
        traced_growth = tracemalloc.get_traced_memory()[0] - traced_start
    finally:
        tracemalloc.stop()
    after = compiled.stats()

    # compiles once: nothing is compiled or loaded after the first repetition, in all 100
    compilations = study.run["compilations"].values
    assert compilations.size == 100 and compilations[1:].sum() == 0
    assert (after["compiled"] + after["disk_hits"]) - (before["compiled"] + before["disk_hits"]) == compilations[0]

    # memory: Python's heap grows by < 2 kB per fit (a PyMC model or a dataset kept alive by a
    # cache would be > 100 kB each; PyMC's per-model CustomDist classes were 78 kB per fit), no
    # repetition's model or datasets stay alive, and the resident size stays flat
    assert traced_growth < 100 * 2048, f"{traced_growth / 100:.0f} B per fit"
    assert _live(pm.Model) == models_alive
    assert _live(SpectrumDatasetOnOff) == datasets_alive
    rss = study.run["rss_mib"].values  # resident size: second half against first, within 16 MiB
    assert np.median(rss[50:]) - np.median(rss[:50]) < 16

    # and the fits are right: pulls (value - truth) / error are standard normal
    assert study.data["success"].all()
    pulls = study.pulls
    for name in TRUTH:
        p = pulls.sel(parameter=name).values
        assert abs(p.mean()) < 0.35, (name, p.mean())  # 3.5 standard errors of 100 pulls
        assert 0.75 < p.std() < 1.25, (name, p.std())

    path = study.write(tmp_path / "fits.nc")
    back = FitRepetitions.read(path)
    np.testing.assert_array_equal(back.data["value"].values, study.data["value"].values)
    assert list(back.data["parameter"].values) == list(TRUTH)


def test_same_seed_same_fits_and_truth_drawn_from_the_priors(onoff_sim):
    a = fit_repetitions(onoff_sim, 3, random_seed=4, progressbar=False)
    b = fit_repetitions(onoff_sim, 3, random_seed=4, progressbar=False)
    np.testing.assert_array_equal(a.data["value"].values, b.data["value"].values)
    truths = a.data["truth"].sel(parameter="crab.alpha").values
    assert len(set(truths)) == 3 and np.all((truths > 1) & (truths < 5))  # UniformPrior(1, 5)


def test_truth_must_name_every_free_parameter(onoff_sim):
    with pytest.raises(ModelError, match=r"crab.beta"):
        fit_repetitions(onoff_sim, 2, truth={"crab.amplitude": 3e-11, "crab.alpha": 2.5}, progressbar=False)
