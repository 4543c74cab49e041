"""The ``bayesdl4 demo`` command: runs end to end and writes readable files."""

import numpy as np
import pytest

from bayesdl4.cli import main
from bayesdl4.datasets import SpectrumDatasetOnOff
from bayesdl4.inference import read
from bayesdl4.models import Models


def test_demo_writes_fits_netcdf_and_png(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--output", str(out), "--draws", "100", "--tune", "150", "--chains", "2"]) == 0
    printed = capsys.readouterr().out
    assert "MAP fit" in printed and "source.alpha" in printed
    for name in ("run1", "run2", "run3"):
        dataset = SpectrumDatasetOnOff.read(out / f"{name}.fits")
        assert dataset.counts.data.sum() > 100
    models = Models.read(out / "models.yaml")
    assert models[0].spectral_model.tag[0] == "LogParabolaSpectralModel"
    posterior = read(out / "posterior.nc")
    alpha = posterior["posterior"]["source.alpha"].values
    assert alpha.shape == (2, 100)
    assert abs(np.mean(alpha) - 2.4) < 0.3  # simulation truth
    png = (out / "counts_ppc.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    # a second run refuses to write into the non-empty folder
    assert main(["demo", "--output", str(out), "--draws", "10", "--tune", "10"]) == 1
    assert "exists" in capsys.readouterr().err


def test_cli_requires_a_command():
    with pytest.raises(SystemExit):
        main([])
