"""The prepared GPU suite runs end to end in its dry-run mode (tiny configs on the CPU), so it cannot rot between
the sessions that are lent a GPU."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow  # every case of the GPU suite on the CPU: ~50 s alone, ~100 s beside another test
def test_gpu_suite_dry_run_writes_every_case(tmp_path):
    done = subprocess.run(
        [sys.executable, str(REPO / "bench" / "gpu_suite.py"), "--dry-run", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads((tmp_path / "gpu_suite.json").read_text())
    cases = [r["case"] for r in report["results"]]
    for name in ("CLIP", "CLIP pass", "UniMatch", "DOVER-Technical", "cut scan", "half precision", "MVDiT"):
        assert any(c.startswith(name) for c in cases), cases
    assert all(r["median_s"] > 0 for r in report["results"])
    assert (tmp_path / "gpu_suite.md").read_text().count("\n|") >= len(cases) + 1
