"""``Datasets``: unique names, indexing, model assignment restricted by ``datasets_names``."""

import pytest

from bayesdl4.datasets import Datasets
from bayesdl4.datasets.simulate import simple_irf_dataset
from bayesdl4.errors import ModelError
from bayesdl4.models import Models, PowerLawSpectralModel, SkyModel


def _datasets():
    return Datasets([simple_irf_dataset(name=n) for n in ("a", "b", "c")])


def test_names_unique_and_indexing():
    datasets = _datasets()
    assert datasets.names == ["a", "b", "c"]
    assert datasets["b"] is datasets[1]
    assert datasets[1:].names == ["b", "c"]
    with pytest.raises(ModelError, match="'a' is used twice"):
        datasets.append(simple_irf_dataset(name="a"))
    with pytest.raises(KeyError, match="no dataset named 'z'"):
        datasets["z"]


def test_models_restricted_by_datasets_names():
    datasets = _datasets()
    everywhere = SkyModel(PowerLawSpectralModel(), name="everywhere")
    only_b = SkyModel(PowerLawSpectralModel(index=3), name="only_b", datasets_names=["b"])
    datasets.models = [everywhere, only_b]
    assert datasets["a"].models.names == ["everywhere"]
    assert datasets["b"].models.names == ["everywhere", "only_b"]
    assert datasets.models.names == ["everywhere", "only_b"]
    # the restricted source adds counts only where it applies
    assert datasets["b"].npred_signal().data.sum() > datasets["a"].npred_signal().data.sum()
    with pytest.raises(ModelError, match="not in these datasets"):
        datasets.models = [SkyModel(PowerLawSpectralModel(), name="x", datasets_names=["nope"])]
    with pytest.raises(ModelError, match="used more than once"):
        Models([everywhere, everywhere])


def test_stat_sum_is_sum_over_datasets():
    datasets = _datasets()
    datasets.models = [SkyModel(PowerLawSpectralModel(), name="src")]
    assert datasets.stat_sum() == pytest.approx(sum(d.stat_sum() for d in datasets), rel=1e-12)
