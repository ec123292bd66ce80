#!/usr/bin/env bash
# Install insar-denoise and everything it needs into ./.venv (or $VENV).
#   scripts/install.sh          runtime only
#   scripts/install.sh test     runtime + test tools (gfortran for the Okada reference)
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
EXTRA=${1:-}
TORCH_VERSION=${TORCH_VERSION:-2.13.0}   # CPU build; an unpinned torch pulls a multi-GB CUDA build

if [ "$EXTRA" = "test" ] && ! command -v gfortran >/dev/null 2>&1; then
  # okada-wrapper (Okada's own DC3D Fortran, our independent reference) compiles with gfortran
  if [ "$(id -u)" = "0" ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq gfortran >/dev/null
fi
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip
"$VENV/bin/python" -m pip install -q "torch==${TORCH_VERSION}"
if [ "$EXTRA" = "test" ]; then
  "$VENV/bin/python" -m pip install -q -e ".[test]"
else
  "$VENV/bin/python" -m pip install -q -e .
fi
