"""Parameters from YAML: ``frozen`` must be a YAML boolean, a parameter is listed once (issue 12, item 4)."""

import logging

import numpy as np
import pytest

from bayesdl4.errors import ModelError
from bayesdl4.models import PowerLawSpectralModel
from bayesdl4.models.parameter import Parameter, parameter_from_dict, parameters_from_dict
from bayesdl4.models.spectral import spectral_model_from_dict

DEFAULT = Parameter("index", 2.0)


@pytest.mark.parametrize("value", ["false", "False", "true", "no", 0, 1, None, [False]])
def test_frozen_that_is_not_a_yaml_boolean_raises(value):
    """``bool("false")`` is True: before, the string froze the parameter."""
    with pytest.raises(ModelError, match=r"parameter 'index': frozen must be true or false"):
        parameter_from_dict({"name": "index", "value": 2.3, "frozen": value}, DEFAULT)


def test_quoted_boolean_gets_the_fix_in_the_message():
    with pytest.raises(ModelError, match="write frozen: false without quotes"):
        parameter_from_dict({"name": "index", "frozen": "false"}, DEFAULT)


@pytest.mark.parametrize("value", [True, False, np.bool_(True)])
def test_yaml_booleans_are_kept(value):
    par = parameter_from_dict({"name": "index", "value": 2.3, "frozen": value}, DEFAULT)
    assert par.frozen is bool(value)
    assert par.value == 2.3


def test_frozen_left_out_takes_the_class_default():
    frozen_default = Parameter("reference", 1.0, "TeV", frozen=True)
    assert parameter_from_dict({"name": "reference", "value": 2.0}, frozen_default).frozen is True
    assert parameter_from_dict({"name": "index"}, DEFAULT).frozen is False


def test_parameter_listed_twice_raises_naming_model_and_parameter():
    """Before, the last entry won silently (index 3.0 here)."""
    data = {
        "type": "PowerLawSpectralModel",
        "parameters": [{"name": "index", "value": 2.3}, {"name": "index", "value": 3.0}],
    }
    with pytest.raises(ModelError, match=r"PowerLawSpectralModel: parameter 'index' is listed twice"):
        spectral_model_from_dict(data)


@pytest.mark.parametrize(
    ("parameters", "match"),
    [
        ({"index": 2.0}, "'parameters' must be a list"),
        (["index"], "parameters entry 0 must be a mapping with a 'name'"),
        ([{"value": 2.0}], "parameters entry 0 must be a mapping with a 'name'"),
    ],
)
def test_parameters_of_the_wrong_structure(parameters, match):
    with pytest.raises(ModelError, match=match):
        parameters_from_dict({"parameters": parameters}, PowerLawSpectralModel.default_parameters, "PL")


def test_spectral_entry_not_a_mapping():
    with pytest.raises(ModelError, match="a spectral model must be a mapping"):
        spectral_model_from_dict([1, 2])


def test_good_entries_read_with_defaults_for_the_rest(caplog):
    data = {"parameters": [{"name": "index", "value": 2.7, "frozen": True}]}
    with caplog.at_level(logging.WARNING):
        kwargs = parameters_from_dict(data, PowerLawSpectralModel.default_parameters, "PL")
    assert list(kwargs) == ["index", "amplitude", "reference"]
    assert kwargs["index"].value == 2.7 and kwargs["index"].frozen is True
    assert kwargs["amplitude"].value == PowerLawSpectralModel.default_parameters[1].value
    assert "parameter 'amplitude' not given" in caplog.text
