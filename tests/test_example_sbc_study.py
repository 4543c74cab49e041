"""examples/sbc_study.py runs end to end on small settings and writes what it promises."""

import subprocess
import sys
from pathlib import Path

import numpy as np

from bayesdl4.studies import SBCResult

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "sbc_study.py"


def test_sbc_example_writes_result_and_plots(tmp_path):
    cmd = [sys.executable, str(EXAMPLE), "--output", str(tmp_path), "--repetitions", "6", "--draws", "50",
           "--tune", "100", "--ranks", "49", "--seed", "3"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for name in ("rank_histogram.png", "rank_ecdf.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    result = SBCResult.read(tmp_path / "sbc.nc")
    assert result.data.sizes["repetition"] == 6 and result.n_ranks == 49
    ranks = result.data["rank"].values
    assert ranks.min() >= 0 and ranks.max() <= 49 and not result.data["failed"].any()
    assert np.all(result.run["compilations"].values[1:] == 0)  # one compile for the whole study
    assert "verdict:" in proc.stdout and "src.amplitude: rank chi2" in proc.stdout
