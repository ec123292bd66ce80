#!/usr/bin/env bash
# After a training session: recalibrate the shipped model's uncertainty, re-run the benchmark
# and regenerate the README's results table from its metrics.json (never typed by hand).
#   bash scripts/refresh_results.sh [N_PER_AMPLITUDE]
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-40}
BIN=.venv/bin
OUT=experiments/benchmarks/evaluate
$BIN/python - <<'PY'
from insar_denoise.models import load_model
from insar_denoise.trust.uncertainty import calibrate, calibration_path, save_calibration

model = load_model("default")
# n = 12: every stratum of each amplitude gets a scene (12 cells), so fit and test sets are alike;
# bands of the model's single run (what `run` writes), hand features only
# (benchmarks/uncertainty_modes.py compares the variance head and test-time copies)
cal = calibrate(model, n=12, seed=0, fit_seeds=4, head=None, augment=False)
save_calibration(cal, calibration_path(model.path), overwrite=True)
PY
$BIN/insar-denoise evaluate --suite v1 --split both --n "$N" --seed 0 -o "$OUT" --overwrite -q
$BIN/python scripts/results_table.py "$OUT/metrics.json" --readme README.md
