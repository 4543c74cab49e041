"""Bad models files raise the project's errors naming the file, model and parameter (issue 12, items 4, 9)."""

import os

import pytest

from bayesdl4.errors import BayesDL4Error, DataFileNotFoundError, DataFormatError, ModelError
from bayesdl4.io.models_yaml import read_models

MODEL = """components:
-   name: crab
    type: SkyModel
    spectral:
        type: PowerLawSpectralModel
        parameters:
        -   {{name: index, value: 2.3, frozen: {frozen}}}
        -   {{name: amplitude, value: 3.0e-12, unit: cm-2 s-1 TeV-1}}
"""


def _write(tmp_path, text, name="m.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_frozen_string_raises_naming_file_model_and_parameter(tmp_path):
    """Issue reproduction: ``frozen: "false"`` used to freeze the index (``bool("false")``)."""
    path = _write(tmp_path, MODEL.format(frozen='"false"'))
    with pytest.raises(ModelError) as info:
        read_models(path)
    message = str(info.value)
    for part in (str(path), "'crab'", "PowerLawSpectralModel", "parameter 'index'", "without quotes"):
        assert part in message


def test_frozen_yaml_boolean_reads(tmp_path):
    models = read_models(_write(tmp_path, MODEL.format(frozen="false")))
    index = models["crab"].spectral_model.parameters["index"]
    assert index.frozen is False and index.value == 2.3


@pytest.mark.oracle
def test_gammapy_refuses_the_frozen_string_too(tmp_path):
    gammapy_models = pytest.importorskip("gammapy.modeling.models")
    path = _write(tmp_path, MODEL.format(frozen='"no"'))
    with pytest.raises((TypeError, ValueError)):
        gammapy_models.Models.read(path)
    with pytest.raises(ModelError):
        read_models(path)


def test_parameter_listed_twice_in_a_file(tmp_path):
    text = MODEL.format(frozen="false") + "        -   {name: index, value: 3.0}\n"
    with pytest.raises(ModelError, match=r"m\.yaml: component 0 \('crab'\).*'index' is listed twice"):
        read_models(_write(tmp_path, text))


def test_missing_file(tmp_path):
    with pytest.raises(DataFileNotFoundError, match=r"nope\.yaml: models file not found"):
        read_models(tmp_path / "nope.yaml")


def test_directory(tmp_path):
    (tmp_path / "d.yaml").mkdir()
    with pytest.raises(DataFormatError, match=r"d\.yaml: models file is a directory"):
        read_models(tmp_path / "d.yaml")


def test_binary_file(tmp_path):
    path = tmp_path / "b.yaml"
    path.write_bytes(b"SIMPLE  =                    T" + bytes(range(128, 256)) + os.urandom(64))
    with pytest.raises(DataFormatError, match=r"b\.yaml: models file is not a text \(UTF-8\) file"):
        read_models(path)


@pytest.mark.parametrize(
    ("text", "error", "match"),
    [
        ("- a\n- b\n", DataFormatError, "must be a YAML mapping, got list"),
        ("components: abc\n", DataFormatError, "needs a top-level 'components' list"),
        ("components:\n- name: a\n  spectral: [1, 2]\n", ModelError, "spectral model must be a mapping"),
        (
            "components:\n- name: a\n  spectral: {type: PowerLawSpectralModel, parameters: {index: 2}}\n",
            ModelError,
            "'parameters' must be a list",
        ),
        (
            "components:\n- name: a\n  spectral: {type: PowerLawSpectralModel, parameters: [index]}\n",
            ModelError,
            "parameters entry 0 must be a mapping",
        ),
        (
            "components:\n- name: a\n  spectral: {type: PowerLawSpectralModel}\n  spatial: abc\n",
            ModelError,
            "'spatial' must be a mapping",
        ),
        (
            "components:\n- type: FoVBackgroundModel\n  datasets_names: [x]\n  spectral: abc\n",
            ModelError,
            "spectral model must be a mapping",
        ),
    ],
)
def test_wrong_structure(tmp_path, text, error, match):
    """Before: AttributeError ('list' object has no attribute 'get') and the like."""
    path = _write(tmp_path, text)
    with pytest.raises(error, match=match) as info:
        read_models(path)
    assert str(path) in str(info.value)
    assert isinstance(info.value, BayesDL4Error)


def test_datasets_names_given_as_one_string(tmp_path):
    """gammapy reads a string as one dataset name; before, it became a list of its characters."""
    text = "components:\n- name: a\n  datasets_names: run1\n  spectral: {type: PowerLawSpectralModel}\n"
    models = read_models(_write(tmp_path, text))
    assert models["a"].datasets_names == ["run1"]
