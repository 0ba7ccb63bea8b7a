"""One formatter and one set of lint rules for every Python file (pyproject.toml's [tool.ruff])."""

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CODE = ["openvid_assets", "openvid_assets_tests", "openvid_assets_testing", "bench", "scripts"]


def ruff(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ruff", *args, *CODE], cwd=REPO, capture_output=True, text=True)


def test_the_code_is_as_ruff_formats_it():
    done = ruff("format", "--check")
    assert done.returncode == 0, f"run `ruff format` (the files below):\n{done.stdout}{done.stderr}"


def test_the_code_passes_the_lint_rules():
    done = ruff("check")
    assert done.returncode == 0, done.stdout + done.stderr
