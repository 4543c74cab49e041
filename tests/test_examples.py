"""The example scripts run end to end on real data and write what they promise."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bayesdl4.inference import FitResult, read
from tests.conftest import gammapy_data

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_joint_crab_without_gammapy_data_exits_with_a_clear_message(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "GAMMAPY_DATA"}
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / "joint_crab.py"), "--output", str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1
    assert "GAMMAPY_DATA is not set" in proc.stderr
    assert not any(tmp_path.iterdir())


@pytest.mark.slow
@pytest.mark.realdata
def test_joint_crab_example_writes_fit_posterior_and_plot(tmp_path):
    data = gammapy_data()
    env = {**os.environ, "GAMMAPY_DATA": str(data)}
    cmd = [
        sys.executable,
        str(EXAMPLES / "joint_crab.py"),
        "--output",
        str(tmp_path),
        "--draws",
        "100",
        "--tune",
        "100",
        "--chains",
        "2",
        "--seed",
        "1",
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]

    for name in ("fit.nc", "posterior.nc", "models.yaml", "counts_ppc.png"):
        assert (tmp_path / name).stat().st_size > 0, name
    assert (tmp_path / "counts_ppc.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # MAP fit: the joint-crab log-parabola (gammapy 2.1: alpha 2.505 +- 0.026, beta 0.103 +- 0.011)
    result = FitResult.from_datatree(read(tmp_path / "fit.nc"))
    assert result.success
    assert 2.2 < result["crab.alpha"].value < 2.7
    assert result["crab.alpha"].error == pytest.approx(0.0255, rel=0.05)
    assert result.total_stat == pytest.approx(460.2954, abs=0.01)

    posterior = read(tmp_path / "posterior.nc")
    alpha = posterior["posterior"]["crab.alpha"].values
    assert alpha.shape == (2, 100)
    assert abs(alpha.mean() - result["crab.alpha"].value) < 3 * result["crab.alpha"].error
    assert len(posterior["log_likelihood"].data_vars) == 10  # one per spectrum, for LOO
    assert np.all(np.isfinite(posterior["log_likelihood"]["hess_obs23523"].values))
    assert "PSIS-LOO per spectrum" in proc.stdout
