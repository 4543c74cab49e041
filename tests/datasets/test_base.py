"""The `Dataset` base: declared attributes, shared delegations, the format registry and the
package import graph (no cycles, no ``io`` imports below ``io``)."""

import ast
import pathlib

import numpy as np
import pytest

import bayesdl4
from bayesdl4.datasets import MapDataset, MapDatasetOnOff, SpectrumDataset, SpectrumDatasetOnOff
from bayesdl4.datasets.base import Dataset
from bayesdl4.errors import DataFormatError
from bayesdl4.io import registry
from bayesdl4.maps import WcsNDMap
from tests.datasets.builders import random_map, random_spectrum

TYPES = [SpectrumDataset, SpectrumDatasetOnOff, MapDataset, MapDatasetOnOff]


def _example(cls, rng):
    if issubclass(cls, MapDataset):
        return random_map(rng, cls.tag, onoff=cls is MapDatasetOnOff, npix=5)
    return random_spectrum(rng, cls.tag, onoff=cls is SpectrumDatasetOnOff)


@pytest.mark.parametrize("cls", TYPES)
def test_declared_attributes_are_what_the_dataset_holds(cls):
    dataset = _example(cls, np.random.default_rng(1))
    assert isinstance(dataset, Dataset)
    for attribute in cls.map_attributes():
        if attribute != "mask_fit":  # the examples have none
            assert getattr(dataset, attribute) is not None, attribute
    for attribute in cls.irf_attributes:
        assert getattr(dataset, attribute) is not None, attribute
    onoff = cls.stat_type == "wstat"
    assert dataset.is_onoff is onoff
    # the ON/OFF background is derived (alpha x counts_off), not stored
    assert ("background" in cls.counts_maps) is not onoff
    assert ("background" in cls.derived_attributes) is onoff
    if onoff:
        np.testing.assert_allclose(
            dataset.background.data, dataset.alpha.data * dataset.counts_off.data
        )
        with pytest.raises(AttributeError):
            dataset.background = dataset.counts
        with pytest.raises(DataFormatError, match="takes its background from counts_off"):
            cls(counts=dataset.counts, background=dataset.counts, name="x")
    # one mask API for both families
    assert dataset.mask.shape == dataset.data_shape
    assert dataset.mask_safe_image.shape == dataset.data_shape[-2:]


@pytest.mark.parametrize("cls", TYPES)
def test_copy_is_deep_and_renames(cls):
    dataset = _example(cls, np.random.default_rng(2))
    copy = dataset.copy(name="other")
    assert copy.name == "other" and dataset.name == cls.tag
    copy.counts.data[...] += 1
    assert not np.array_equal(copy.counts.data, dataset.counts.data)


def test_stat_array_has_the_counts_shape_for_every_type():
    from bayesdl4.models import PowerLawSpectralModel, SkyModel

    dataset = random_spectrum(np.random.default_rng(3), "s", onoff=True)
    dataset.models = [SkyModel(PowerLawSpectralModel(), name="src")]
    stat = dataset.stat_array()
    assert stat.shape == dataset.data_shape == (8, 1, 1)
    assert dataset.stat_sum() == pytest.approx(float(stat[dataset.mask].sum()), rel=1e-12)
    residuals = dataset.residuals("diff")
    np.testing.assert_allclose(residuals.data, dataset.counts.data - dataset.npred().data)
    with pytest.raises(ValueError, match="unknown residual method"):
        dataset.residuals("ratio")


# ------------------------------------------------------------------------------------ registry
def test_registry_dispatches_by_class_and_format():
    from bayesdl4.io import gadf_irf, map_dataset, spectrum

    assert registry.lookup(MapDatasetOnOff, "gadf", "read") is map_dataset.read_map_dataset
    assert registry.lookup(SpectrumDatasetOnOff, None, "read") is spectrum.read_spectrum_dataset
    from bayesdl4.irf import PSFMap

    assert registry.lookup(PSFMap, "gtpsf", "read") is gadf_irf.read_irf_map
    assert registry.formats(SpectrumDataset, "write") == [None, "gadf", "ogip"]
    with pytest.raises(
        DataFormatError,
        match=r"unknown spectrum format 'xspec': .* supports the formats \[None, 'gadf', 'ogip'\]",
    ):
        registry.lookup(SpectrumDataset, "xspec", "write", what="spectrum")


def test_registry_takes_new_formats_and_subclasses_inherit_them(tmp_path):
    class MyMap(WcsNDMap):
        pass

    written = []
    registry.register(
        WcsNDMap, "npy-test", write=lambda m, filename, **kw: written.append(filename)
    )
    dataset = random_map(np.random.default_rng(4), "m", npix=4)
    my = MyMap(dataset.counts.geom, dataset.counts.data)
    registry.lookup(type(my), "npy-test", "write")(my, tmp_path / "x.npy")
    assert written == [tmp_path / "x.npy"]
    # a class's own registration wins over its base's
    registry.register(MyMap, "npy-test", write=lambda m, filename, **kw: written.append("own"))
    registry.lookup(MyMap, "npy-test", "write")(my, "y")
    assert written[-1] == "own"
    with pytest.raises(TypeError, match="must be callable"):
        registry.register(MyMap, "npy-test", read="not a function")


def test_methods_use_the_registry(tmp_path):
    """File methods of maps, IRFs, models and datasets round-trip through the registry."""
    dataset = random_map(np.random.default_rng(5), "m", npix=4)
    dataset.counts.write(tmp_path / "counts.fits")
    back = WcsNDMap.read(tmp_path / "counts.fits")
    np.testing.assert_array_equal(back.data, dataset.counts.data)
    dataset.psf.write(tmp_path / "psf.fits")
    assert (
        type(dataset.psf).read(tmp_path / "psf.fits").psf_map.data.shape
        == dataset.psf.psf_map.data.shape
    )
    hdulist = dataset.to_hdulist()
    again = MapDataset.from_hdulist(hdulist, name="again")
    np.testing.assert_array_equal(again.counts.data, dataset.counts.data)


# ------------------------------------------------------------------------------------ import graph
ROOT = pathlib.Path(bayesdl4.__file__).parent
# a lower package never imports a higher one; "io.registry" is a leaf any layer may use
RANK = {
    "errors": 0,
    "utils": 0.5,
    "compiled": 0.5,  # the compile cache: a leaf that imports nothing of bayesdl4
    "maps": 1,
    "irf": 2,
    "models": 2,
    "stats": 2,
    "datasets": 3,
    "io": 4,
}
# late imports the architecture names as delegations: the numpy conveniences of datasets
# evaluate through graph/, their plot methods draw with plotting/
DELEGATIONS = {("datasets", "graph"), ("datasets", "plotting")}
# flux points (issue 10) are being written in parallel and still import io in methods
PENDING = {"datasets/flux_points.py", "datasets/flux_points_dataset.py"}


def _imports(path):
    """(target module path, inside a function) of the package-relative imports of a module."""
    rel = path.relative_to(ROOT)
    tree = ast.parse(path.read_text())
    functions = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
    inner = {id(n) for f in functions for n in ast.walk(f) if n is not f}
    for node in ast.walk(tree):
        if not (isinstance(node, ast.ImportFrom) and node.level):
            continue
        base = list(rel.parts[:-1])[: len(rel.parts) - node.level]
        module = base + (node.module.split(".") if node.module else [])
        for alias in node.names:
            yield ".".join(module + [alias.name]), id(node) in inner


def test_lower_layers_import_no_io_and_the_graph_has_no_cycles():
    violations = []
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        package = rel.split("/")[0].removesuffix(".py")
        if package not in RANK or rel in PENDING:
            continue
        for target, late in _imports(path):
            target_package = target.split(".")[0]
            if target_package in (package, "__version__") or target.startswith("io.registry"):
                continue
            if target_package in RANK and RANK[target_package] < RANK[package]:
                continue
            if (package, target_package) in DELEGATIONS and late:
                continue
            violations.append(f"{rel} imports {target}{' (in a function)' if late else ''}")
    assert violations == []
    # the registry itself is a leaf: it imports nothing of bayesdl4 but errors, and importing it
    # runs no other io module (io/__init__ imports nothing)
    targets = [t for t, _ in _imports(ROOT / "io" / "registry.py")]
    assert targets == ["errors.DataFormatError"]
    assert list(_imports(ROOT / "io" / "__init__.py")) == []


def test_importing_datasets_loads_no_reader_graph_or_inference():
    """In a fresh interpreter: the dataset classes import without io readers, graph or PyMC."""
    import subprocess
    import sys

    code = (
        "import sys, bayesdl4.datasets, bayesdl4.maps, bayesdl4.irf; "
        "print(sorted(m for m in sys.modules if m.startswith(('bayesdl4.io', 'bayesdl4.graph', "
        "'bayesdl4.inference', 'pymc'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "['bayesdl4.io', 'bayesdl4.io.registry']"
