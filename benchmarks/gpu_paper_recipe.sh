#!/usr/bin/env bash
# The paper recipe on >= 77,000 synthetic 128 px images on one GPU, against the model-only ceiling.
#
#   bash benchmarks/gpu_paper_recipe.sh [MODEL_ONLY_SCRIPT] [-- extra args for gpu_paper_recipe.py]
#   bash benchmarks/gpu_paper_recipe.sh --smoke           # tiny, any device, seconds
#
# MODEL_ONLY_SCRIPT defaults to benchmarks/model_only_throughput.py (a copy of
# shared/bench/model_only_throughput.py). Needs torch + torchvision, numpy, pandas, pyyaml, tqdm;
# no astropy/galsim. Prints three JSON lines (galmet recipe, model-only, summary with ratios).
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
PY=${PYTHON:-python3}
MODEL_ONLY=benchmarks/model_only_throughput.py
SMOKE=""
EXTRA=()
while [ $# -gt 0 ]; do
  case "$1" in
    --smoke) SMOKE=1; shift ;;
    --) shift; EXTRA=("$@"); break ;;
    *) MODEL_ONLY="$1"; shift ;;
  esac
done

"$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'cpu')"
if [ -n "$SMOKE" ]; then
  GALMET=$("$PY" benchmarks/gpu_paper_recipe.py --smoke "${EXTRA[@]}" | tail -1)
  ONLY=$("$PY" "$MODEL_ONLY" --arch resnet18 --size 16 --batch 16 --steps 3 | tail -1)
else
  GALMET=$("$PY" benchmarks/gpu_paper_recipe.py "${EXTRA[@]}" | tail -1)
  ONLY=$("$PY" "$MODEL_ONLY" --arch resnet34 --size 128 --batch 256 --steps 60 | tail -1)
fi
echo "$GALMET"
echo "$ONLY"
"$PY" - "$GALMET" "$ONLY" <<'PYEOF'
import json, sys
g, m = json.loads(sys.argv[1]), json.loads(sys.argv[2])
print(json.dumps({
    "recipe_wall_s": g["recipe_wall_s"], "goal_wall_s": 60,
    "train_ratio_unfrozen_vs_model_only": round(g["train_img_s_unfrozen_median"] / m["train_img_s"], 3),
    "train_ratio_overall_vs_model_only": round(g["train_img_s_overall"] / m["train_img_s"], 3),
    "infer_img_s_no_tta": g["infer_img_s_no_tta"], "infer_img_s_tta": g["infer_img_s_tta"],
    "model_only_infer_img_s": m["infer_img_s"], "peak_mem_gib": g["peak_mem_gib"], "device": g["device"],
}))
PYEOF
