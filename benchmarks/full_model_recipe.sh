#!/usr/bin/env bash
# The paper's full model, from its catalogue to a registry-ready weights package, on one GPU.
#
#   bash benchmarks/full_model_recipe.sh DATASET OUT [--name NAME] [--version V] [--base-url ROOT]
#   bash benchmarks/full_model_recipe.sh --smoke OUT      # the same steps on 300 synthetic galaxies, CPU, minutes
#
# DATASET is a galmet dataset directory holding the paper's catalogue (`galmet catalog --out DATASET`:
# ~142,000 MPA-JHU star-forming galaxies with the paper's cuts and a seeded train/valid/test split).
# The steps, each resumable or skipped when its output exists:
#   1. galmet download DATASET            the 128 x 128 gri JPEG cutouts (SkyServer: ~142,000 at 5 req/s, ~8 h)
#   2. galmet train --recipe paper        ResNet-34 from ImageNet weights, the paper's schedule (GPU)
#   3. galmet predict --split valid       the held-out validation galaxies (never trained on)
#   4. galmet calibrate                   Mondrian split-conformal error bars on those valid rows
#   5. galmet predict/evaluate --split test   scored ONCE, bootstrap intervals (test-access log: OUT/test_access.log)
#   6. the model card (OUT/card.json) from the test metrics
#   7. galmet models pack --half          OUT/package: model.pt (float16 weights), card.json, entry.json
# Publish OUT/package/model.pt at a URL, put that URL into entry.json and add the entry to a registry
# file (GALMET_MODEL_REGISTRY, or galmet's own models/registry.json): docs/models.md.
set -euo pipefail
HERE="$PWD"  # DATASET and OUT are read relative to where the script is called from
abs() { case "$1" in /*) echo "$1" ;; *) echo "$HERE/$1" ;; esac; }
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
PY=${PYTHON:-python3}
galmet() { "$PY" -m galmet "$@"; }

SMOKE="" NAME="sdss-paper" VERSION="1.0.0" BASE_URL=""
POS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --smoke) SMOKE=1; shift ;;
    --name) NAME="$2"; shift 2 ;;
    --version) VERSION="$2"; shift 2 ;;
    --base-url) BASE_URL="$2"; shift 2 ;;
    -*) echo "full_model_recipe.sh: unknown option $1" >&2; exit 2 ;;
    *) POS+=("$1"); shift ;;
  esac
done
if [ -n "$SMOKE" ]; then
  [ ${#POS[@]} -eq 1 ] || { echo "usage: full_model_recipe.sh --smoke OUT" >&2; exit 2; }
  OUT=$(abs "${POS[0]}"); DATA="$OUT/data"; NAME="smoke-recipe"
  mkdir -p "$OUT"
  [ -f "$DATA/catalog.parquet" ] || [ -f "$DATA/catalog.csv" ] || galmet synth --out "$DATA" --n 300 --size 32 --seed 0 --test 60 --no-progress
  TRAIN=(--recipe onecycle --weights none --arch resnet18 --epochs 2 --batch-size 32)
else
  [ ${#POS[@]} -eq 2 ] || { echo "usage: full_model_recipe.sh DATASET OUT [--name NAME] [--version V] [--base-url ROOT]" >&2; exit 2; }
  DATA=$(abs "${POS[0]}"); OUT=$(abs "${POS[1]}")
  [ -d "$DATA" ] || { echo "full_model_recipe.sh: ${POS[0]}: no such dataset directory (run galmet catalog --out ${POS[0]})" >&2; exit 2; }
  mkdir -p "$OUT"
  galmet download "$DATA" ${BASE_URL:+--base-url "$BASE_URL"} --workers 8
  TRAIN=(--recipe paper --weights imagenet --arch resnet34 --device cuda --workers 8)
fi
RUN="$OUT/run"
[ -f "$RUN/model.pt" ] || galmet train "$DATA" --out "$RUN" "${TRAIN[@]}" $( [ -d "$RUN" ] && echo --resume )
[ -f "$OUT/valid_pred.parquet" ] || galmet predict "$RUN/model.pt" "$DATA" --split valid --out "$OUT/valid_pred.parquet" --no-progress
[ -f "$OUT/model_cal.pt" ] || galmet calibrate "$RUN/model.pt" "$OUT/valid_pred.parquet" --split valid --reference "$DATA" --out "$OUT/model_cal.pt" --no-progress
if [ ! -f "$OUT/test_metrics.json" ]; then
  echo "$(date -u '+%Y-%m-%d %H:%M:%S UTC') predict+evaluate --split test: $OUT/model_cal.pt on $DATA" >> "$OUT/test_access.log"
  galmet predict "$OUT/model_cal.pt" "$DATA" --split test --out "$OUT/test_pred.parquet" --no-progress
  galmet evaluate "$OUT/test_pred.parquet" --split test --json "$OUT/test_metrics.json"
fi
"$PY" benchmarks/write_model_card.py --bundle "$OUT/model_cal.pt" --metrics "$OUT/test_metrics.json" \
  --dataset "$DATA" --name "$NAME" --version "$VERSION" --out "$OUT/card.json"
galmet models pack "$OUT/model_cal.pt" --card "$OUT/card.json" --out "$OUT/package" --half
galmet models show "$OUT/package" 2>/dev/null || true
ls -l "$OUT/package"
