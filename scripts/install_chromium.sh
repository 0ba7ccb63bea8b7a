#!/usr/bin/env bash
# Install Chromium (system package) for the UI tests (openvid_assets_tests/deploy/test_ui.py) and
# scripts/screenshot_ui.py, which drive it headless through Playwright. Nothing to do when a
# `chromium` (or `chromium-browser`) is already on PATH; Playwright's own browser download is not used.
set -euo pipefail

if command -v chromium >/dev/null || command -v chromium-browser >/dev/null; then
  exit 0
fi
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
echo "==> installing chromium (apt)"
$sudo apt-get update -qq
# Debian names the package chromium; older Ubuntu releases call it chromium-browser.
if ! DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >/dev/null; then
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium-browser >/dev/null
fi
command -v chromium >/dev/null || command -v chromium-browser >/dev/null || {
  echo "chromium was installed but is not on PATH" >&2
  exit 1
}
echo "==> ready: $( (chromium --version || chromium-browser --version) 2>/dev/null | head -1)"
