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
# (openvid_assets_testing/pgserver.py starts a throwaway server; nothing is left running).
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
echo "==> installing the locked dependencies into .venv (torch is large the first time)"
.venv/bin/python -m pip install -q --upgrade pip
# Exactly the pinned set in requirements.lock (scripts/lock.sh makes it), nothing resolved today.
# --no-deps: the lock already lists every package; it keeps only opencv's headless build, which
# scenedetect's dependency on the GUI build (same cv2 module, needs libGL) would otherwise pull in.
.venv/bin/python -m pip install -q --no-deps -r requirements.lock
.venv/bin/python -m pip install -q --no-deps -e .
.venv/bin/python -c "import cv2, decord, torch, dagster; print('==> ready: torch', torch.__version__, '| dagster', dagster.__version__, '| opencv', cv2.__version__)"
