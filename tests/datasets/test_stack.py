"""Stacking by the specification's table: the laws it keeps, gammapy 2.1's numbers, bad input.

Oracle tests run gammapy 2.1's ``stack_reduce`` on the same inputs (real H.E.S.S. and HAWC files,
and synthetic map datasets written to files both read) and compare every stacked quantity.
"""

import numpy as np
import pytest
from astropy import units as u
from astropy.table import Table

from bayesdl4.datasets import Datasets, MapDataset, SpectrumDataset, SpectrumDatasetOnOff
from bayesdl4.datasets.reduce import mask_safe_on_irf_grid
from bayesdl4.datasets.stack import stack, stack_into, to_masked
from bayesdl4.datasets.tables import gti_reference_time, gti_time_sum, gti_union, stack_gti
from bayesdl4.errors import DataFormatError, GeometryMismatchError
from bayesdl4.maps import MapAxis, RegionGeom, RegionNDMap, WcsNDMap
from tests.conftest import gammapy_data
from tests.datasets.builders import CENTER, gti, random_map, random_spectrum

HESS = [f"joint-crab/spectra/hess/pha_obs{n}.fits" for n in (23523, 23526, 23559, 23592)]
HAWC = [f"hawc/DL4/nHit-{n}.fits.gz" for n in range(5, 10)]


def _state(dataset):
    """Every array and table of a dataset, for "unchanged" checks."""
    out = {}
    for attribute in dataset.map_attributes():
        m = getattr(dataset, attribute)
        out[attribute] = None if m is None else (m.data.copy(), str(m.unit))
    for attribute in dataset.irf_attributes:
        irf = getattr(dataset, attribute)
        if irf is not None:
            out[attribute] = (
                irf.pdf_matrix.copy() if hasattr(irf, "pdf_matrix") else irf._irf_map.data.copy()
            )
    out["gti"] = None if dataset.gti is None else np.asarray(dataset.gti["START"]).copy()
    out["livetime"] = dataset.livetime
    return out


def _assert_same_state(a, b):
    assert a.keys() == b.keys()
    for key in a:
        x, y = a[key], b[key]
        if isinstance(x, tuple):
            np.testing.assert_array_equal(x[0], y[0], err_msg=key)
            assert x[1] == y[1], key
        elif isinstance(x, np.ndarray):
            np.testing.assert_array_equal(x, y, err_msg=key)
        else:
            assert x == y or (x is None and y is None), key


# ------------------------------------------------------------------------------------ the table
@pytest.mark.parametrize("onoff", [False, True])
def test_spectrum_stack_follows_the_table(onoff):
    """Each row of the table, written out by hand on two spectra with different thresholds."""
    rng = np.random.default_rng(7)
    a = random_spectrum(rng, "a", onoff=onoff, threshold_bin=1)
    b = random_spectrum(rng, "b", onoff=onoff, threshold_bin=3)
    stacked = stack([a, b], name="ab")
    eps_a, eps_b = a.mask_safe.data.ravel(), b.mask_safe.data.ravel()
    np.testing.assert_array_equal(stacked.mask_safe.data.ravel(), eps_a | eps_b)
    np.testing.assert_allclose(
        stacked.counts.data.ravel(), (a.counts.data.ravel() * eps_a + b.counts.data.ravel() * eps_b)
    )
    exp_a, exp_b = a.exposure.data.ravel(), b.exposure.data.ravel()
    # the stack's exposure is in m2 s (gammapy's empty dataset), the inputs' in cm2 s
    assert stacked.exposure.unit == u.Unit("m2 s")
    np.testing.assert_allclose(
        stacked.exposure.quantity.to_value("cm2 s").ravel(), exp_a + exp_b, rtol=1e-14
    )
    expected_pdf = (
        a.edisp.pdf_matrix * exp_a[:, None] * eps_a + b.edisp.pdf_matrix * exp_b[:, None] * eps_b
    ) / (exp_a + exp_b)[:, None]
    np.testing.assert_allclose(stacked.edisp.pdf_matrix, expected_pdf, rtol=1e-13, atol=1e-300)
    assert stacked.livetime.to_value("s") == pytest.approx(
        (a.livetime + b.livetime).to_value("s"), rel=1e-14
    )
    # GTI: union of both intervals (they overlap here: one merged interval)
    assert len(stacked.gti) == 1
    assert gti_time_sum(stacked.gti).to_value("s") == pytest.approx(
        max(b.gti["STOP"][0], a.gti["STOP"][0]) - min(a.gti["START"][0], b.gti["START"][0])
    )
    # meta tables side by side in one row (gammapy's hstack_columns)
    assert stacked.meta_table["OBS_ID"][0].tolist() == [
        a.meta_table["OBS_ID"][0],
        b.meta_table["OBS_ID"][0],
    ]
    if not onoff:
        np.testing.assert_allclose(
            stacked.background.data.ravel(),
            a.background.data.ravel() * eps_a + b.background.data.ravel() * eps_b,
        )
        return
    # ON/OFF: OFF counts summed in the safe mask; alpha is the n_off-weighted mean alpha, so that
    # the alpha-weighted background alpha x n_off is conserved bin by bin
    n_off = a.counts_off.data.ravel() * eps_a + b.counts_off.data.ravel() * eps_b
    alpha_n_off = (a.alpha.data * a.counts_off.data).ravel() * eps_a + (
        b.alpha.data * b.counts_off.data
    ).ravel() * eps_b
    np.testing.assert_allclose(stacked.counts_off.data.ravel(), n_off)
    np.testing.assert_allclose(stacked.background.data.ravel(), alpha_n_off, rtol=1e-12)
    # safe bins without OFF counts take the average alpha (unsafe ones keep acceptance 0)
    empty = (n_off == 0) & (eps_a | eps_b)
    assert empty.any()
    np.testing.assert_allclose(
        stacked.alpha.data.ravel()[empty], alpha_n_off.sum() / n_off.sum(), rtol=1e-12
    )


def test_background_from_fov_model_is_stacked():
    """Cash maps stack the background *prediction*: a FoV background norm of 2 doubles it."""
    from bayesdl4.models import FoVBackgroundModel

    rng = np.random.default_rng(2)
    a, b = random_map(rng, "a", threshold_bin=0), random_map(rng, "b", threshold_bin=0)
    model = FoVBackgroundModel(dataset_name="a")
    model.spectral_model.norm.value = 2.0
    a.models = [model]
    stacked = stack([a, b])
    np.testing.assert_allclose(
        stacked.background.data, 2 * a.background.data + b.background.data, rtol=1e-6
    )


def test_stack_of_cutouts_into_the_parent_geometry():
    """A cutout stacks into the map it was cut from: its pixels land at their place."""
    rng = np.random.default_rng(4)
    big = random_map(rng, "big", npix=11, threshold_bin=0)
    small = random_map(rng, "small", npix=11, threshold_bin=1).cutout(CENTER, 0.5 * u.deg)
    assert small.counts.data.shape[-1] == 5
    stacked = stack([big, small])
    x, y = big._geom.to_image().coord_to_pix(small._geom.center_skydir)
    ix0, iy0 = int(round(float(x))) - 2, int(round(float(y))) - 2
    expected = big.counts.data.copy()
    expected[:, iy0 : iy0 + 5, ix0 : ix0 + 5] += small.counts.data * small.mask_safe.data
    np.testing.assert_array_equal(stacked.counts.data, expected)
    assert (
        stacked.counts.data.sum()
        == big.counts.data.sum() + (small.counts.data * small.mask_safe.data).sum()
    )


def test_gti_union_merges_overlaps_and_references():
    a = gti([0.0, 100.0, 500.0], [50.0, 200.0, 600.0])
    b = gti([40.0, 300.0], [120.0, 350.0])
    union = stack_gti(a, b)
    np.testing.assert_array_equal(np.asarray(union["START"]), [0.0, 300.0, 500.0])
    np.testing.assert_array_equal(np.asarray(union["STOP"]), [200.0, 350.0, 600.0])
    # a table one day later in its reference: shifted by 86400 s into the first's reference
    later = gti([10.0], [20.0], mjdref=51911.0)
    shifted = stack_gti(a, later)
    assert np.asarray(shifted["START"])[-1] == pytest.approx(86410.0, abs=1e-6)
    # touching intervals merge (gammapy's merge_equal)
    touching = gti_union(gti([0.0, 10.0], [10.0, 20.0]))
    assert len(touching) == 1 and float(touching["STOP"][0]) == 20.0
    assert gti_reference_time(a).mjd == pytest.approx(51910.0)


def test_stack_by_groups_runs_by_meta_value():
    rng = np.random.default_rng(8)
    runs = [random_spectrum(rng, f"r{i}", onoff=True) for i in range(6)]
    for i, run in enumerate(runs):
        run.meta_table["TELESCOP"] = ["A" if i % 2 else "B"]
    stacks = Datasets(runs).stack_by("TELESCOP")
    assert stacks.names == ["TELESCOP=B", "TELESCOP=A"]
    for label, members in (("TELESCOP=B", runs[0::2]), ("TELESCOP=A", runs[1::2])):
        expected = sum((r.counts.data * r.mask_safe.data).sum() for r in members)
        assert stacks[label].counts.data.sum() == expected
        assert stacks[label].livetime.to_value("s") == pytest.approx(
            sum(r.livetime.to_value("s") for r in members)
        )
    # a function of the dataset: zenith bands of 30 deg
    bands = Datasets(runs).stack_by(lambda d: int(d.meta_table["ZEN_PNT"][0] // 30))
    assert sum(len(s.meta_table["OBS_ID"][0]) for s in bands) == 6
    with pytest.raises(Exception, match="has no 'NOPE'"):
        Datasets(runs).stack_by("NOPE")


def test_stack_accepts_a_generator_reading_one_dataset_at_a_time(tmp_path):
    """Streaming: the pure `stack` takes an iterator (here: files read one at a time)."""
    rng = np.random.default_rng(9)
    files = []
    for i in range(3):
        dataset = random_map(rng, f"m{i}", npix=7)
        dataset.write(tmp_path / f"m{i}.fits")
        files.append(tmp_path / f"m{i}.fits")
    streamed = stack(MapDataset.read(f) for f in files)
    eager = Datasets([MapDataset.read(f) for f in files]).stack_reduce()
    np.testing.assert_array_equal(streamed.counts.data, eager.counts.data)
    np.testing.assert_allclose(streamed.psf.psf_map.data, eager.psf.psf_map.data, rtol=1e-15)


# ------------------------------------------------------------------------------------ bad input
def test_bad_input_raises_and_leaves_the_target_unchanged():
    rng = np.random.default_rng(5)
    target = random_spectrum(rng, "t", onoff=True)
    before = _state(target)

    # different dataset types
    with pytest.raises(
        GeometryMismatchError,
        match="'c' is a SpectrumDataset, the stack 't' a SpectrumDatasetOnOff",
    ):
        target.stack(random_spectrum(rng, "c"))
    # mismatched energy axes
    other = random_spectrum(rng, "o", onoff=True)
    energy = MapAxis.from_energy_bounds(0.3 * u.TeV, 30 * u.TeV, 6, name="energy")
    geom = RegionGeom(None, [energy])
    wrong_axis = SpectrumDatasetOnOff(
        counts=RegionNDMap(geom, np.ones(6)),
        counts_off=RegionNDMap(geom, np.ones(6)),
        exposure=other.exposure,
        name="axis",
    )
    with pytest.raises(
        GeometryMismatchError, match="counts geometry of dataset 'axis' does not match"
    ):
        target.stack(wrong_axis)
    # units that do not convert
    bad_unit = other.copy(name="unit")
    bad_unit.exposure = bad_unit.exposure.copy(unit="s")
    with pytest.raises(
        GeometryMismatchError, match="exposure of dataset 'unit' is in s, which does not convert"
    ):
        target.stack(bad_unit)
    # an IRF in one dataset only
    no_edisp = other.copy(name="noedisp")
    no_edisp.edisp = None
    with pytest.raises(GeometryMismatchError, match="'t' has a edisp, 'noedisp' has none"):
        target.stack(no_edisp)
    _assert_same_state(before, _state(target))
    # a failure in the last step (building the result) also leaves the target as it was
    broken = other.copy(name="broken")
    broken.counts_off = None
    with pytest.raises(DataFormatError, match="'broken' lacks counts_off"):
        target.stack(broken)
    _assert_same_state(before, _state(target))


def test_non_equivalent_map_geometries_are_refused():
    rng = np.random.default_rng(6)
    a = random_map(rng, "a", npix=9)
    shifted = random_map(rng, "b", npix=9, binsz=0.11)
    before = _state(a)
    with pytest.raises(
        GeometryMismatchError, match="neither equal to nor a cutout of the stack 'a'"
    ):
        a.stack(shifted)
    _assert_same_state(before, _state(a))
    # the parent does not fit into its cutout
    small = a.cutout(CENTER, 0.5 * u.deg, name="small")
    with pytest.raises(GeometryMismatchError, match="cut the datasets to a common geometry"):
        stack([small, a])
    # a PSF in reconstructed energy cannot be exposure-weighted (gammapy refuses too)
    reco = MapDataset.create(a._geom, binsz_irf=0.3, reco_psf=True, name="reco")
    with pytest.raises(GeometryMismatchError, match="reconstructed energy"):
        stack([reco, reco.copy(name="reco2")])


def test_in_place_stack_keeps_name_and_models():
    from bayesdl4.models import PowerLawSpectralModel, SkyModel

    rng = np.random.default_rng(10)
    a, b = random_spectrum(rng, "a"), random_spectrum(rng, "b")
    a.models = [SkyModel(PowerLawSpectralModel(), name="src")]
    counts = (a.counts.data + b.counts.data * b.mask_safe.data).copy()
    a.stack(b)
    assert a.name == "a" and a.models.names == ["src"]
    np.testing.assert_array_equal(a.counts.data, counts)


# ------------------------------------------------------------------------------------ vs gammapy
def _compare_maps(ours, theirs, what, rtol):
    a = np.asarray(ours.data, dtype=float)
    b = np.asarray(theirs.data, dtype=float)
    assert a.shape == b.shape, what
    np.testing.assert_allclose(a, b, rtol=rtol, atol=0, err_msg=what)
    assert u.Unit(ours.unit).is_equivalent(theirs.unit), what


def _gti_seconds(gammapy_gti, reference):
    start = (gammapy_gti.time_start - reference).to_value("s")
    stop = (gammapy_gti.time_stop - reference).to_value("s")
    return start, stop


def _assert_gti_equal(ours, theirs):
    reference = gti_reference_time(ours.gti)
    start, stop = _gti_seconds(theirs.gti, reference)
    np.testing.assert_allclose(np.asarray(ours.gti["START"]), start, rtol=0, atol=1e-5)
    np.testing.assert_allclose(np.asarray(ours.gti["STOP"]), stop, rtol=0, atol=1e-5)


@pytest.mark.oracle
@pytest.mark.realdata
def test_hess_joint_crab_stack_matches_gammapy():
    gp = pytest.importorskip("gammapy.datasets")
    data = gammapy_data()
    ours = Datasets([SpectrumDatasetOnOff.read(data / f) for f in HESS]).stack_reduce(name="hess")
    theirs = gp.Datasets([gp.SpectrumDatasetOnOff.read(data / f) for f in HESS]).stack_reduce(
        name="hess"
    )
    # gammapy holds these maps in float32: agreement to its rounding
    for attribute in (
        "counts",
        "counts_off",
        "acceptance",
        "acceptance_off",
        "exposure",
        "alpha",
        "background",
    ):
        _compare_maps(getattr(ours, attribute), getattr(theirs, attribute), attribute, rtol=3e-7)
    np.testing.assert_array_equal(ours.mask_safe.data, theirs.mask_safe.data)
    np.testing.assert_allclose(
        ours.edisp.pdf_matrix, theirs.edisp.get_edisp_kernel().pdf_matrix, rtol=0, atol=1e-7
    )
    assert ours.livetime.to_value("s") == pytest.approx(
        theirs.exposure.meta["livetime"].to_value("s"), rel=1e-12
    )
    # the summary gammapy prints for the stack
    info, expected = ours.info_dict(), theirs.info_dict()
    for key in (
        "counts",
        "counts_off",
        "excess",
        "sqrt_ts",
        "background",
        "alpha",
        "acceptance",
        "stat_sum",
    ):
        assert info[key] == pytest.approx(float(expected[key]), rel=1e-6), key


@pytest.mark.oracle
@pytest.mark.realdata
@pytest.mark.slow
def test_hawc_nhit_maps_cut_to_a_common_geometry_stack_as_in_gammapy():
    """Five HAWC nHit datasets, cut to the same 3 deg around the Crab. Their PSF is in
    reconstructed energy and their IRF maps carry no exposure, which gammapy 2.1 cannot stack
    (neither do we): both stack the datasets without IRFs."""
    gp = pytest.importorskip("gammapy.datasets")
    from astropy.coordinates import SkyCoord

    data = gammapy_data()
    crab = SkyCoord(83.63, 22.01, unit="deg")
    ours, theirs = [], []
    for f in HAWC:
        dataset = MapDataset.read(data / f)
        with pytest.raises(GeometryMismatchError, match="reconstructed energy"):
            stack([dataset, dataset.copy(name="again")])
        dataset = dataset.cutout(crab, 3 * u.deg)
        dataset.psf = dataset.edisp = None
        ours.append(dataset)
        other = gp.MapDataset.read(data / f).cutout(crab, 3 * u.deg)
        other.psf = other.edisp = None
        theirs.append(other)
    stacked = Datasets(ours).stack_reduce(name="hawc")
    expected = gp.Datasets(theirs).stack_reduce(name="hawc")
    for attribute in ("counts", "background", "exposure"):
        _compare_maps(
            getattr(stacked, attribute), getattr(expected, attribute), attribute, rtol=3e-7
        )
    np.testing.assert_array_equal(stacked.mask_safe.data, expected.mask_safe.data)
    assert stacked.livetime.to_value("s") == pytest.approx(
        expected.exposure.meta["livetime"].to_value("s")
    )
    _assert_gti_equal(stacked, expected)
    for column in expected.meta_table.colnames:
        assert (
            np.asarray(stacked.meta_table[column]).astype(str).tolist()
            == np.asarray(expected.meta_table[column]).astype(str).tolist()
        ), column


@pytest.fixture(scope="module")
def synthetic_files(tmp_path_factory):
    """Three map datasets (and three ON/OFF ones) with different thresholds, exposures, PSFs and
    energy dispersions, written to files that gammapy reads too."""
    folder = tmp_path_factory.mktemp("stack")
    rng = np.random.default_rng(11)
    files = {"map": [], "onoff": []}
    for kind in files:
        for i in range(3):
            dataset = random_map(
                rng, f"{kind}{i}", onoff=kind == "onoff", psf_sigma=0.1 + 0.05 * i, threshold_bin=i
            )
            path = folder / f"{kind}{i}.fits"
            dataset.write(path)
            files[kind].append(path)
    return files


@pytest.mark.oracle
@pytest.mark.parametrize("kind", ["map", "onoff"])
def test_synthetic_map_stack_matches_gammapy_including_irfs(synthetic_files, kind):
    gp = pytest.importorskip("gammapy.datasets")
    files = synthetic_files[kind]
    cls = gp.MapDatasetOnOff if kind == "onoff" else gp.MapDataset
    inputs = [MapDataset.read(f) for f in files]
    gp_inputs = [cls.read(f) for f in files]
    ours = Datasets(inputs).stack_reduce(name="s")
    theirs = gp.Datasets(gp_inputs).stack_reduce(name="s")
    attributes = ["counts", "exposure"]
    attributes += (
        ["counts_off", "acceptance", "acceptance_off"] if kind == "onoff" else ["background"]
    )
    for attribute in attributes:
        _compare_maps(getattr(ours, attribute), getattr(theirs, attribute), attribute, rtol=3e-7)
    np.testing.assert_array_equal(ours.mask_safe.data, theirs.mask_safe.data)
    _compare_maps(ours.psf.psf_map, theirs.psf.psf_map, "psf", rtol=3e-7)
    _compare_maps(ours.psf.exposure_map, theirs.psf.exposure_map, "psf exposure", rtol=3e-7)
    # gammapy interpolates the safe mask linearly to the IRF grid and casts to bool, so float
    # rounding makes the reco bin just below a threshold count as "safe" for the edisp weights
    # (mask_safe_edisp); we weight by the exact mask (what conserves npred). Compared are the
    # reco bins where every dataset's gammapy weights equal the exact mask.
    exact = [mask_safe_on_irf_grid(d, d.edisp.edisp_map.geom) for d in inputs]
    agree = np.all(
        [
            np.all(g.mask_safe_edisp.data == e, axis=(0, 2, 3))
            for g, e in zip(gp_inputs, exact, strict=True)
        ],
        axis=0,
    )
    assert agree[np.any(ours.mask_safe.data, axis=(1, 2))].sum() >= 2
    np.testing.assert_allclose(
        ours.edisp.edisp_map.data[:, agree],
        theirs.edisp.edisp_map.data[:, agree],
        rtol=3e-7,
        atol=1e-12,
    )
    _compare_maps(ours.edisp.exposure_map, theirs.edisp.exposure_map, "edisp exposure", rtol=3e-7)
    assert ours.livetime.to_value("s") == pytest.approx(
        theirs.exposure.meta["livetime"].to_value("s"), rel=1e-12
    )
    _assert_gti_equal(ours, theirs)


@pytest.mark.oracle
def test_to_masked_matches_gammapy(synthetic_files):
    gp = pytest.importorskip("gammapy.datasets")
    ours = to_masked(MapDataset.read(synthetic_files["map"][0]), name="m")
    theirs = gp.MapDataset.read(synthetic_files["map"][0]).to_masked(name="m")
    for attribute in ("counts", "background", "exposure"):
        _compare_maps(getattr(ours, attribute), getattr(theirs, attribute), attribute, rtol=3e-7)
    np.testing.assert_array_equal(ours.mask_safe.data, theirs.mask_safe.data)


def test_stack_into_an_in_memory_empty_table_meta():
    """Meta tables: a stack without one takes the other's; GTI tables as astropy Tables."""
    rng = np.random.default_rng(12)
    a, b = random_spectrum(rng, "a"), random_spectrum(rng, "b")
    a.meta_table = None
    stack_into(a, b)
    assert (
        isinstance(a.meta_table, Table) and a.meta_table["OBS_ID"][0] == b.meta_table["OBS_ID"][0]
    )
    assert isinstance(a.gti, Table)


def test_exposure_unit_conversion_when_stacking():
    """An exposure in m2 s stacks onto one in cm2 s: values convert (1 m2 = 1e4 cm2)."""
    rng = np.random.default_rng(13)
    a = random_spectrum(rng, "a", threshold_bin=0)
    b = random_spectrum(rng, "b", threshold_bin=0)
    b_m2 = b.copy(name="b")
    b_m2.exposure = b.exposure.copy(data=b.exposure.data * 1e-4, unit="m2 s")
    one = stack([a, b])
    two = stack([a, b_m2])
    np.testing.assert_allclose(one.exposure.data, two.exposure.data, rtol=1e-13)
    np.testing.assert_allclose(one.edisp.pdf_matrix, two.edisp.pdf_matrix, rtol=1e-12, atol=1e-300)


def test_spectrum_dataset_create_then_stack_gives_the_masked_dataset():
    """Stacking onto `create`'s empty dataset equals `to_masked` (zero exposure contributes 0)."""
    rng = np.random.default_rng(14)
    dataset = random_spectrum(rng, "d", threshold_bin=2)
    empty = SpectrumDataset.create(
        dataset.counts.geom, energy_axis_true=dataset.energy_axis_true, name="e"
    )
    empty.exposure = empty.exposure.copy(unit="cm2 s")
    stack_into(empty, dataset)
    masked = to_masked(dataset)
    np.testing.assert_array_equal(empty.counts.data, masked.counts.data)
    np.testing.assert_allclose(empty.edisp.pdf_matrix, masked.edisp.pdf_matrix, rtol=1e-14)


def test_map_onoff_alpha_background_conserved():
    rng = np.random.default_rng(15)
    runs = [random_map(rng, f"r{i}", onoff=True) for i in range(3)]
    stacked = stack(runs)
    expected = sum(r.background.data * r.mask_safe.data for r in runs)
    np.testing.assert_allclose(stacked.background.data, expected, rtol=1e-12, atol=1e-12)
    assert isinstance(stacked.counts_off, WcsNDMap)


@pytest.mark.realdata
def test_stacked_and_joint_hess_fits_agree():
    """The four H.E.S.S. runs are alike: fitting their stack and fitting them jointly give the same
    log-parabola within 0.1 sigma (the joint fit's errors), with the same errors within 5 %."""
    from bayesdl4.inference import fit
    from bayesdl4.models import LogParabolaSpectralModel, SkyModel

    data = gammapy_data()
    runs = [SpectrumDatasetOnOff.read(data / f) for f in HESS]
    for run in runs:
        run.mask_fit = run.counts.geom.energy_mask(0.66 * u.TeV, 30 * u.TeV)

    def models():
        spectral = LogParabolaSpectralModel(
            amplitude="3.5e-11 cm-2 s-1 TeV-1", reference="1 TeV", alpha=2.5, beta=0.1
        )
        return [SkyModel(spectral, name="crab")]

    joint = Datasets(runs)
    joint.models = models()
    stacked = Datasets([Datasets(runs).stack_reduce(name="stacked")])
    stacked.models = models()
    result_joint, result_stacked = fit(joint), fit(stacked)
    assert result_joint.success and result_stacked.success
    for name, par in result_joint.parameters.items():
        other = result_stacked.parameters[name]
        assert abs(other.value - par.value) < 0.1 * par.error, (name, par, other)
        assert other.error == pytest.approx(par.error, rel=0.05), name
