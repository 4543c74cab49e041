"""Datasets YAML: gammapy 2.1's ``Datasets.read`` / ``Datasets.write`` files, both ways."""

import os
import warnings

import numpy as np
import pytest
import yaml

from bayesdl4.datasets import Datasets, MapDataset, MapDatasetOnOff, SpectrumDatasetOnOff
from bayesdl4.errors import DataFileNotFoundError, DataFormatError
from bayesdl4.maps import RegionNDMap
from tests.conftest import gammapy_data
from tests.io.test_map_dataset_io import assert_matches_gammapy, make_map_dataset

FERMI = "fermi-3fhl-crab/Fermi-LAT-3FHL_"
HAWC_YAML = "hawc/DL4/HAWC_pass4_public_Crab.yaml"
HESS_PHA = "joint-crab/spectra/hess/pha_obs23523.fits"


@pytest.fixture(scope="module")
def gp():
    pytest.importorskip("gammapy")
    import gammapy.datasets

    return gammapy.datasets


def _spectrum_with_mask_fit():
    """A real ON/OFF spectrum with a fit mask that differs from its safe mask."""
    dataset = SpectrumDatasetOnOff.read(gammapy_data() / HESS_PHA)
    mask = np.zeros(dataset.counts.data.shape, bool)
    mask[10:40] = True
    dataset.mask_fit = RegionNDMap(dataset.counts.geom, mask)
    return dataset


def _map_with_mask_fit(name="m"):
    dataset = make_map_dataset(name=name)
    assert 0 < dataset.mask_fit.data.sum() < dataset.mask_fit.data.size
    return dataset


def _listing(folder):
    return sorted(os.listdir(folder))


# ------------------------------------------------------------------------------------ reading
@pytest.mark.realdata
@pytest.mark.oracle
@pytest.mark.filterwarnings("ignore:Checksum verification failed")  # gammapy-data's YAML has none
def test_read_fermi_datasets_and_models_like_gammapy(gp):
    base = gammapy_data() / FERMI
    ours = Datasets.read(f"{base}datasets.yaml", filename_models=f"{base}models.yaml")
    theirs = gp.Datasets.read(f"{base}datasets.yaml", filename_models=f"{base}models.yaml")
    assert ours.names == theirs.names == ["Fermi-LAT"]
    assert_matches_gammapy(ours[0], theirs[0])
    assert ours[0].models.names == list(theirs[0].models.names) == ["Crab Nebula", "Fermi-LAT-bkg"]
    for model in ours[0].models:
        for par in model.parameters:
            assert par.value == pytest.approx(
                theirs[0].models[model.name].parameters[par.name].value, rel=1e-12
            )


@pytest.mark.realdata
def test_read_hawc_datasets_file():
    # HAWC_pass4_public_Crab.yaml is a datasets file (five MapDatasets, one per nHit bin)
    datasets = Datasets.read(gammapy_data() / HAWC_YAML)
    assert datasets.names == [f"nHit-{n}" for n in range(5, 10)]
    assert all(type(d) is MapDataset for d in datasets)
    # counts totals of the files (gammapy reads the same arrays: test_map_dataset_io)
    assert [int(d.counts.data.sum()) for d in datasets] == [8275, 2243, 668, 251, 183]


def test_env_vars_and_relative_names(tmp_path, monkeypatch):
    _map_with_mask_fit("rel").write(tmp_path / "rel.fits")
    (tmp_path / "d.yaml").write_text(
        "datasets:\n- {name: rel, type: MapDataset, filename: rel.fits}\n"
    )
    monkeypatch.setenv("BAYESDL4_TEST_DIR", str(tmp_path))
    datasets = Datasets.read("$BAYESDL4_TEST_DIR/d.yaml")
    assert datasets.names == ["rel"]


# ------------------------------------------------------------------------------------ writing
@pytest.mark.realdata
@pytest.mark.oracle
def test_written_files_read_by_gammapy(tmp_path, gp):
    from bayesdl4.io.models_yaml import FoVBackgroundModel
    from bayesdl4.models import PowerLawSpectralModel, SkyModel

    spectrum = _spectrum_with_mask_fit()
    mapds = _map_with_mask_fit("map one")  # a space: gammapy names the file map_one.fits
    datasets = Datasets([mapds, spectrum])
    datasets.models = [
        SkyModel(PowerLawSpectralModel(index=2.7), name="src", datasets_names=["23523"]),
        FoVBackgroundModel("map one"),
    ]
    out = datasets.write(tmp_path / "ds.yaml", filename_models=tmp_path / "models.yaml")
    assert _listing(tmp_path) == ["ds.yaml", "map_one.fits", "models.yaml", "pha_obs23523.fits"]
    assert out["data"] == [tmp_path / "map_one.fits", tmp_path / "pha_obs23523.fits"]

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # our checksums match: gammapy reads without a warning
        theirs = gp.Datasets.read(tmp_path / "ds.yaml", filename_models=tmp_path / "models.yaml")
    assert theirs.names == ["map one", "23523"]
    assert theirs[0].meta_table is None  # gammapy's lazy Datasets.read skips META_TABLE...
    eager = gp.Datasets.read(tmp_path / "ds.yaml", lazy=False)
    assert_matches_gammapy(mapds, eager[0])  # ...its eager read has every part
    assert int(theirs[0].mask_fit.data.sum()) == int(mapds.mask_fit.data.sum())
    np.testing.assert_array_equal(theirs[1].counts.data, spectrum.counts.data)
    np.testing.assert_array_equal(theirs[1].counts_off.data, spectrum.counts_off.data)
    np.testing.assert_array_equal(theirs[1].mask_safe.data, spectrum.mask_safe.data)
    assert theirs[1].mask_fit is None  # gammapy's SpectrumDatasetOnOff.from_dict drops it...
    their_spectrum = gp.SpectrumDatasetOnOff.read(tmp_path / "pha_obs23523.fits")
    np.testing.assert_array_equal(
        their_spectrum.mask_fit.data, spectrum.mask_fit.data
    )  # ...the file has it
    assert theirs.models.names == ["map one-bkg", "src"]  # order of first use by the datasets
    assert theirs.models["src"].spectral_model.index.value == 2.7


@pytest.mark.realdata
def test_round_trip_keeps_mask_fit_everywhere(tmp_path):
    spectrum = _spectrum_with_mask_fit()
    mapds = _map_with_mask_fit()
    for spectrum_format, folder in (("gadf", tmp_path / "gadf"), ("ogip", tmp_path / "ogip")):
        Datasets([mapds, spectrum]).write(folder / "ds.yaml", spectrum_format=spectrum_format)
        back = Datasets.read(folder / "ds.yaml")
        assert back.names == ["m", "23523"]
        assert type(back[1]) is SpectrumDatasetOnOff
        np.testing.assert_array_equal(back[0].mask_fit.data, mapds.mask_fit.data)
        np.testing.assert_array_equal(back[0].mask_safe.data, mapds.mask_safe.data)
        np.testing.assert_array_equal(back[1].mask_fit.data, spectrum.mask_fit.data)
        np.testing.assert_array_equal(back[1].mask_safe.data, spectrum.mask_safe.data)
        np.testing.assert_array_equal(back[1].counts_off.data, spectrum.counts_off.data)
    assert "pha_obs23523_arf.fits" in _listing(tmp_path / "ogip")


@pytest.mark.realdata
@pytest.mark.oracle
def test_gammapy_written_datasets_read_here(tmp_path, gp):
    from gammapy.maps import Map
    from gammapy.maps import RegionNDMap as GRegionNDMap

    mapds = gp.MapDataset.read(gammapy_data() / f"{FERMI}data_Fermi-LAT.fits", name="fermi")
    mapds.mask_fit = Map.from_geom(mapds.counts.geom, dtype=bool)
    mapds.mask_fit.data[:, 5:20, 10:30] = True
    spectrum = gp.SpectrumDatasetOnOff.read(gammapy_data() / HESS_PHA)
    mask = np.zeros(spectrum.counts.data.shape, bool)
    mask[10:40] = True
    spectrum.mask_fit = GRegionNDMap.from_geom(spectrum.counts.geom, data=mask)
    gp.Datasets([mapds, spectrum]).write(tmp_path / "gp.yaml")

    ours = Datasets.read(tmp_path / "gp.yaml")
    assert ours.names == ["fermi", "23523"]
    assert_matches_gammapy(ours[0], gp.MapDataset.read(tmp_path / "fermi.fits", name="fermi"))
    assert int(ours[0].mask_fit.data.sum()) == 5 * 15 * 20
    # gammapy wrote the spectrum in its GADF region layout with MASK_FIT; we keep it
    np.testing.assert_array_equal(ours[1].mask_fit.data, mask)
    np.testing.assert_array_equal(ours[1].counts.data, spectrum.counts.data)
    np.testing.assert_array_equal(ours[1].acceptance_off.data, spectrum.acceptance_off.data)


@pytest.mark.realdata
def test_prefix_layout_like_fermi_3fhl_crab(tmp_path):
    base = gammapy_data() / FERMI
    datasets = Datasets.read(f"{base}datasets.yaml", filename_models=f"{base}models.yaml")
    out = datasets.write(tmp_path, prefix="Fermi-LAT-3FHL")
    # the file names of $GAMMAPY_DATA/fermi-3fhl-crab
    assert _listing(tmp_path) == [
        "Fermi-LAT-3FHL_data_Fermi-LAT.fits",
        "Fermi-LAT-3FHL_datasets.yaml",
        "Fermi-LAT-3FHL_models.yaml",
    ]
    assert out["models"] == tmp_path / "Fermi-LAT-3FHL_models.yaml"
    entry = yaml.safe_load((tmp_path / "Fermi-LAT-3FHL_datasets.yaml").read_text())["datasets"]
    assert entry == [
        {
            "name": "Fermi-LAT",
            "type": "MapDataset",
            "filename": "Fermi-LAT-3FHL_data_Fermi-LAT.fits",
        }
    ]
    back = Datasets.read(out["datasets"], filename_models=out["models"])
    np.testing.assert_array_equal(back[0].counts.data, datasets[0].counts.data)
    assert back.models.names == ["Crab Nebula", "Fermi-LAT-bkg"]
    assert back[0].models["Fermi-LAT-bkg"].parameters["norm"].value == pytest.approx(
        1.3004625872247901
    )


# ------------------------------------------------------------------------------------ overwrite
def test_overwrite_protection_is_all_or_nothing(tmp_path):
    a, b = _map_with_mask_fit("a"), _map_with_mask_fit("b")
    (tmp_path / "b.fits").write_text("precious")
    with pytest.raises(FileExistsError, match="b.fits"):
        Datasets([a, b]).write(tmp_path / "ds.yaml")
    # nothing was written, nothing was replaced, no temporary files remain
    assert _listing(tmp_path) == ["b.fits"]
    assert (tmp_path / "b.fits").read_text() == "precious"
    Datasets([a, b]).write(tmp_path / "ds.yaml", overwrite=True)
    assert _listing(tmp_path) == ["a.fits", "b.fits", "ds.yaml"]
    assert Datasets.read(tmp_path / "ds.yaml").names == ["a", "b"]
    with pytest.raises(FileExistsError, match="exists; pass overwrite=True"):
        Datasets([a]).write(tmp_path / "ds.yaml")
    assert _listing(tmp_path) == ["a.fits", "b.fits", "ds.yaml"]


def test_failed_dataset_write_leaves_nothing(tmp_path):
    good = _map_with_mask_fit("good")
    bad = _map_with_mask_fit("bad")
    bad.meta_table = bad.meta_table.copy()
    bad.meta_table["OBJ"] = [object(), object()]  # astropy cannot write this column
    with pytest.raises(Exception):  # noqa: B017 - astropy's own error
        Datasets([good, bad]).write(tmp_path / "ds.yaml")
    assert _listing(tmp_path) == []


def test_name_collisions_are_refused(tmp_path):
    with pytest.raises(DataFormatError, match=r"share the files \['a_b.fits'\]"):
        Datasets([_map_with_mask_fit("a b"), _map_with_mask_fit("a_b")]).write(tmp_path / "ds.yaml")
    assert _listing(tmp_path) == []


# ------------------------------------------------------------------------------------ bad inputs
def test_bad_datasets_files(tmp_path):
    path = tmp_path / "d.yaml"
    with pytest.raises(DataFileNotFoundError, match="d.yaml: datasets file not found"):
        Datasets.read(path)
    path.write_text("components:\n- {name: x, type: SkyModel}\n")
    with pytest.raises(
        DataFormatError, match="needs a top-level 'datasets' list.*looks like a models file"
    ):
        Datasets.read(path)
    path.write_text("datasets:\n- {name: x, type: HpxMapDataset, filename: x.fits}\n")
    with pytest.raises(
        DataFormatError, match=r"'x' has type 'HpxMapDataset'; supported types: \['MapDataset'"
    ):
        Datasets.read(path)
    path.write_text("datasets:\n- {name: x, type: MapDataset}\n")
    with pytest.raises(DataFormatError, match="entry 0 needs 'name', 'type' and 'filename'"):
        Datasets.read(path)
    path.write_text("datasets:\n- {name: x, type: MapDataset, filename: missing.fits}\n")
    with pytest.raises(
        DataFileNotFoundError, match=r"d.yaml: dataset 'x': file 'missing.fits' not found"
    ):
        Datasets.read(path)
    path.write_text("datasets: [unclosed\n")
    with pytest.raises(DataFormatError, match="not valid YAML"):
        Datasets.read(path)


def test_type_mismatch_in_listed_file(tmp_path):
    make_map_dataset(name="p").write(tmp_path / "p.fits")
    (tmp_path / "d.yaml").write_text(
        "datasets:\n- {name: p, type: MapDatasetOnOff, filename: p.fits}\n"
    )
    with pytest.raises(
        DataFormatError, match=r"p\.fits: a MapDatasetOnOff file needs a COUNTS_OFF HDU"
    ):
        Datasets.read(tmp_path / "d.yaml")


def test_checksum_mismatch_is_logged(tmp_path, caplog):
    make_map_dataset(name="p").write(tmp_path / "p.fits")
    text = "datasets:\n-   name: p\n    type: MapDataset\n    filename: p.fits\nchecksum: 0123\n"
    (tmp_path / "d.yaml").write_text(text)
    with caplog.at_level("WARNING"):
        assert Datasets.read(tmp_path / "d.yaml").names == ["p"]
    assert "checksum does not match" in caplog.text


@pytest.mark.oracle
def test_onoff_map_masks_survive_datasets_files_both_ways(tmp_path, gp):
    onoff = make_map_dataset(name="oo", onoff=True, seed=4)
    assert 0 < onoff.mask_fit.data.sum() < onoff.mask_safe.data.sum() < onoff.mask_safe.data.size
    Datasets([onoff]).write(tmp_path / "ours.yaml")
    back = Datasets.read(tmp_path / "ours.yaml")
    assert type(back[0]) is MapDatasetOnOff
    for attr in ("mask_safe", "mask_fit", "counts_off", "acceptance_off"):
        np.testing.assert_array_equal(getattr(back[0], attr).data, getattr(onoff, attr).data)
    # gammapy 2.1 reads our file (ON/OFF maps only eagerly) with both masks...
    theirs = gp.Datasets.read(tmp_path / "ours.yaml", lazy=False)
    assert_matches_gammapy(onoff, theirs[0])
    # ...and what it writes comes back here with both masks
    (tmp_path / "gp").mkdir()
    theirs.write(tmp_path / "gp" / "gp.yaml")
    again = Datasets.read(tmp_path / "gp" / "gp.yaml")
    assert type(again[0]) is MapDatasetOnOff
    np.testing.assert_array_equal(again[0].mask_fit.data, onoff.mask_fit.data)
    np.testing.assert_array_equal(again[0].mask_safe.data, onoff.mask_safe.data)
    assert again[0].mask_fit.data.dtype == bool
