#!/usr/bin/env bash
# Re-resolve openvid-assets[dev] from pyproject.toml in a throwaway virtual environment and write the
# result to requirements.lock, which scripts/install.sh and CI install from. Run it after changing
# the dependencies in pyproject.toml, and commit both files together.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
venv=$(mktemp -d)/venv
trap 'rm -rf "$(dirname "$venv")"' EXIT
$python -m venv "$venv"
"$venv/bin/python" -m pip install -q --upgrade pip
"$venv/bin/python" -m pip install -q ".[dev]"
# scenedetect asks for the GUI build of OpenCV; the project uses the headless one (same cv2 module).
"$venv/bin/python" -m pip uninstall -q -y opencv-python
{
  echo "# Every Python package of openvid-assets[dev], pinned: scripts/install.sh installs exactly these (--no-deps)."
  echo "# Made by scripts/lock.sh with $("$venv/bin/python" --version) on $(uname -s) $(uname -m); regenerate with: bash scripts/lock.sh"
  "$venv/bin/python" -m pip freeze --exclude-editable | grep -v -e '^#' -e '^openvid-assets' -e '^-e '
} > requirements.lock
echo "wrote requirements.lock ($(grep -vc '^#' requirements.lock) packages)"
