"""Systematics nuisance models (`bayesdl4.models.nuisance`): names, parameters, YAML form."""

import pytest

from bayesdl4.errors import ModelError
from bayesdl4.models import EffectiveAreaScaleModel, EnergyScaleModel, GaussianPrior


def test_default_names_and_parameters():
    energy = EnergyScaleModel("run1")
    area = EffectiveAreaScaleModel(["run1"], norm=1.1)
    assert (energy.name, area.name) == ("run1-energy-scale", "run1-area-scale")
    assert energy.z.value == 0.0 and energy.z.min == -0.99
    assert area.norm.value == 1.1 and area.norm.min == 0.0
    assert energy.datasets_names == ["run1"]


def test_several_datasets_need_a_name():
    with pytest.raises(
        ModelError, match="EnergyScaleModel acting on several datasets needs a name"
    ):
        EnergyScaleModel(["a", "b"])
    with pytest.raises(ModelError, match="datasets_names must name at least one dataset"):
        EffectiveAreaScaleModel([], name="x")
    assert EnergyScaleModel(["a", "b"], name="hess-scale").datasets_names == ["a", "b"]


@pytest.mark.parametrize("cls", [EnergyScaleModel, EffectiveAreaScaleModel])
def test_yaml_form_round_trips(cls):
    model = cls(["a", "b"], name="hess-scale")
    par = model.parameters[0]
    par.value = 0.07
    par.prior = GaussianPrior(0.0, 0.15, weight=2.0)
    data = model.to_dict()
    assert list(data) == ["name", "type", "datasets_names", "parameters"]
    assert data["type"] == cls.__name__ and data["datasets_names"] == ["a", "b"]
    back = cls.from_dict(data)
    assert (back.name, back.datasets_names) == ("hess-scale", ["a", "b"])
    assert back.parameters[0].value == 0.07 and back.parameters[0].prior == par.prior


def test_from_dict_errors_name_the_model():
    data = EnergyScaleModel("a").to_dict()
    data["parameters"].append({"name": "norm", "value": 1.0})
    with pytest.raises(
        ModelError, match=r"EnergyScaleModel 'a-energy-scale': unknown parameter\(s\) \['norm'\]"
    ):
        EnergyScaleModel.from_dict(data)
    data = EnergyScaleModel("a").to_dict()
    data["parameters"][0]["prior"] = {
        "type": "GaussianPrior",
        "parameters": [{"name": "sigma", "value": 0}],
    }
    with pytest.raises(
        ModelError, match="EnergyScaleModel 'a-energy-scale': parameter 'z': prior: Gaussian"
    ):
        EnergyScaleModel.from_dict(data)


def test_copy_has_new_parameters():
    model = EnergyScaleModel("a", z=0.1)
    model.z.prior = GaussianPrior(0, 0.1)
    copy = model.copy(name="b-energy-scale")
    assert copy.name == "b-energy-scale" and copy.z is not model.z
    assert copy.z.value == 0.1 and copy.z.prior == model.z.prior
