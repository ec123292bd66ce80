#!/usr/bin/env bash
# Time-boxed training on a lent GPU machine (torch + numpy only), run by the device tool:
#   bash scripts/device_train.sh SECONDS            # two fresh runs
#   bash scripts/device_train.sh SECONDS RESUME.pt  # continue the small run alone
# Fresh: two runs share the GPU, the shipped size (0.35 M parameters) and a 4x wider one (the
# capacity experiment). Selected results are copied to $OUT every 30 s (8 files at most come
# back): small/{resume.pt,best.pt,logs.tgz} and medium/{best.pt,logs.tgz}.
set -u
S=${1:-420}
RESUME=${2:-}
W=${WORK_DIR:-/tmp/insar_train}
OUT=${OUT:?set OUT}
mkdir -p "$W" "$OUT/small" "$OUT/medium"
PY=$(command -v python3 || command -v python)
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>/dev/null || true
"$PY" scripts/train_device.py --out "$W/small" --seconds "$S" --channels 16,32,64,96 \
  --batch "${BATCH:-256}" --lr 3e-3 --threads 6 ${RESUME:+--resume-from "$RESUME" --lr 1.5e-3} \
  >"$W/small.out" 2>&1 &
A=$!
[ -n "$RESUME" ] && : >"$W/medium.out" || "$PY" scripts/train_device.py --out "$W/medium" --seconds "$S" --channels 32,64,128,192 \
  --batch "${BATCH:-256}" --lr 2e-3 --threads 6 >"$W/medium.out" 2>&1 &
B=$!
put() { # copy atomically into $OUT
  [ -f "$1" ] && cp "$1" "$2.part" && mv "$2.part" "$2"
}
sync_out() {
  for r in small medium; do
    put "$W/$r/best.pt" "$OUT/$r/best.pt"
    (cd "$W" && tar czf "$W/$r.tgz" "$r.out" $(cd "$W" && ls "$r"/*.json "$r"/*.log "$r"/run/*.csv \
      "$r"/run/*.json "$r"/run/*.jsonl "$r"/run/*.png 2>/dev/null)) 2>/dev/null
    put "$W/$r.tgz" "$OUT/$r/logs.tgz"
  done
  put "$W/small/run/resume.pt" "$OUT/small/resume.pt"
}
while kill -0 $A 2>/dev/null || kill -0 $B 2>/dev/null; do
  sleep 30
  sync_out
done
wait $A; RA=$?
wait $B; RB=$?
sync_out
tail -n 12 "$W/small.out" "$W/medium.out"
echo "exit small=$RA medium=$RB"
