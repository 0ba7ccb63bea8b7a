#!/usr/bin/env bash
# Install everything openvid-assets needs on a Debian/Ubuntu machine:
# ffmpeg, PostgreSQL and Chromium (system packages), a virtual environment in .venv, and the project with its test extras.
# Safe to run again: each step is skipped or cheap when already done.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v ffmpeg >/dev/null || ! command -v ffprobe >/dev/null; then
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  echo "==> installing ffmpeg (apt)"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq ffmpeg >/dev/null
fi

# PostgreSQL server binaries for the tests that run Dagster on a real Postgres
# (openvid_assets_tests/pgserver.py starts a throwaway server; nothing is left running).
# Debian keeps initdb/pg_ctl under /usr/lib/postgresql/<version>/bin, off PATH.
if ! command -v initdb >/dev/null && ! compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; then
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  echo "==> installing postgresql (apt)"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends postgresql >/dev/null
fi

# System Chromium for the UI test (Playwright drives it headless; no browser download).
bash scripts/install_chromium.sh

python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "==> creating .venv with $($python --version)"
  $python -m venv .venv
fi
echo "==> installing the project into .venv (torch is large the first time)"
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".[dev]"

# scenedetect depends on the GUI build of OpenCV, which shares the cv2 module with the
# headless build and needs libGL; keep only the headless build.
if .venv/bin/python -m pip show -q opencv-python >/dev/null 2>&1; then
  headless=$(.venv/bin/python -m pip show opencv-python-headless | sed -n 's/^Version: //p')
  .venv/bin/python -m pip uninstall -q -y opencv-python
  .venv/bin/python -m pip install -q --force-reinstall --no-deps "opencv-python-headless==${headless}"
fi
.venv/bin/python -c "import cv2, decord, torch, dagster; print('==> ready: torch', torch.__version__, '| dagster', dagster.__version__, '| opencv', cv2.__version__)"
