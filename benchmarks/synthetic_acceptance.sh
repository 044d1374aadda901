#!/bin/bash
# The synthetic acceptance run of issue 10 (BENCHMARKS.md section 7, docs/results/synthetic_issue10):
# a 3,000-galaxy synthetic set at 32 px, baselines (random forest, constant, observable oracle,
# noise floor), the resolution study with native s x s inputs (sizes 32..1) and, for comparison,
# with pixel replication to 16 px (sizes 8..1), a stellar-mass CNN, the MZR with its null tests,
# the figures, TTA modes, and paired comparisons. One thread, CPU; about 25 min of wall time on
# the shared 2-core sandbox.
#
#   bash benchmarks/synthetic_acceptance.sh OUT_DIR
set -euo pipefail
OUT=${1:?usage: synthetic_acceptance.sh OUT_DIR}
HERE=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$OUT" && cd "$OUT"
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
step() { echo "=== $(date -u +%FT%TZ) START $*"; /usr/bin/time -f "=== wall %e s, cpu %U+%S s, maxrss %M KB" "$@"; }
TRAIN="--recipe onecycle --epochs 4 --arch resnet18 --weights none --batch-size 32 --device cpu --no-progress"
[ -f synth32/catalog.parquet ] || step galmet synth --n 3000 --size 32 --seed 1 --out synth32 --workers 1 --no-progress
step galmet baseline synth32 --out baseline --jobs 1
step galmet resolution-study synth32 --sizes 32,16,8,4,2,1 --out study $TRAIN
[ -f mass32/model.pt ] || step galmet train synth32 --out mass32 --target lgm_tot_p50 $TRAIN
step galmet predict mass32 synth32 --split test --out mass_pred.parquet --device cpu
step galmet predict study/runs/size_032/model.pt synth32 --split test --tta-mode fastai --out z32_tta_fastai.parquet --device cpu
step galmet predict study/runs/size_032/model.pt synth32 --split test --no-tta --out z32_no_tta.parquet --device cpu
step galmet resolution-study synth32 --sizes 8,4,2,1 --min-input 16 --out study_rep16 $TRAIN
step galmet mzr --metallicity study/runs/size_032/predictions.parquet --mass mass_pred.parquet --dataset synth32 --out mzr
step galmet figures study/runs/size_032/predictions.parquet --dataset synth32 --resolution study --mass mass_pred.parquet --out figs
RF=baseline/rf_gri_predictions.parquet
for s in 32 16 8 4 2 1; do
  python "$HERE/paired_rmse.py" "study/runs/size_0$(printf %02d $s)/predictions.parquet" $RF --label "CNN native ${s}px vs RF gri"
done
for s in 8 4 2 1; do
  python "$HERE/paired_rmse.py" "study_rep16/runs/size_00$s/predictions.parquet" "study/runs/size_00$s/predictions.parquet" \
    --label "CNN replicated-16 ${s}px vs native"
done
python "$HERE/paired_rmse.py" z32_tta_fastai.parquet study/runs/size_032/predictions.parquet --label "32px fastai TTA vs dihedral TTA"
python "$HERE/paired_rmse.py" z32_no_tta.parquet study/runs/size_032/predictions.parquet --label "32px no TTA vs dihedral TTA"
python "$HERE/paired_rmse.py" baseline/oracle_predictions.parquet $RF --label "observable oracle vs RF gri"
echo "=== ALL DONE $(date -u +%FT%TZ)"
