"""examples/model_comparison.py runs end to end on the joint-crab spectra (small settings)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bayesdl4.inference import EvidenceResult, read
from tests.conftest import gammapy_data

SCRIPT = Path(__file__).resolve().parents[1] / "examples" / "model_comparison.py"
#: gammapy 2.1's Sampler (UltraNest, defaults) on the joint-crab log-parabola with the example's
#: priors, measured in this project: ln Z = -243.23 +- 0.54 (benchmarks/README.md).
GAMMAPY_LOG_Z_LOG_PARABOLA = -243.23


def test_model_comparison_without_gammapy_data_exits_with_a_clear_message(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "GAMMAPY_DATA"}
    proc = subprocess.run([sys.executable, str(SCRIPT), "--quick", "--output", str(tmp_path)], env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert "GAMMAPY_DATA is not set" in proc.stderr
    assert not any(tmp_path.iterdir())


@pytest.mark.slow
@pytest.mark.realdata
def test_model_comparison_quick_mode_prefers_the_log_parabola(tmp_path):
    env = {**os.environ, "GAMMAPY_DATA": str(gammapy_data())}
    proc = subprocess.run([sys.executable, str(SCRIPT), "--quick", "--seed", "1", "--output", str(tmp_path)],
                          env=env, capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stderr[-3000:]
    table = json.loads((tmp_path / "comparison.json").read_text())
    assert set(table) == {"power_law", "log_parabola", "exp_cutoff"}
    best = max(table, key=lambda kind: table[kind]["elpd_loo"])
    assert best == "log_parabola"
    lp = table["log_parabola"]
    assert lp["total_stat"] == pytest.approx(460.30, abs=0.05)  # gammapy's 460.2945 at its ML fit, priors here
    assert lp["log_z_smc"] == pytest.approx(GAMMAPY_LOG_Z_LOG_PARABOLA, abs=0.5)
    assert lp["log_bf_vs_power_law_smc"] > 40 > 5 * lp["log_bf_vs_power_law_smc_error"]
    assert lp["lrt_sigma_vs_power_law"] > 10
    assert table["exp_cutoff"]["log_z_smc"] < lp["log_z_smc"]
    tree = read(tmp_path / "posterior_log_parabola.nc")
    stored = EvidenceResult.from_datatree(tree)
    assert stored.log_z == pytest.approx(lp["log_z_smc"])
    assert (tmp_path / "ppc_statistic.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "posterior-predictive p of each spectrum" in proc.stdout
