#!/usr/bin/env bash
# The shipped CPU study (assets/results_cpu.json), made with one command on a 2-core machine:
#   bash scripts/cpu_study.sh [RESULTS_FILE]        (default runs/results_cpu.json; ~1 h idle)
# All 45,000 CIFAR-10 training images (5,000 more for validation), the `cpu` recipe at 5 epochs:
#   1. the seven architectures at width 0.125;
#   2. size within one design: VGG-11 at widths 0.25 and 0.5 (0.125 is in step 1);
#   3. a 3-trial Optuna search of ResNet-18 at width 0.125 (same data, 3 epochs a trial, median pruning).
# Each record keeps wall and CPU seconds; OMP_WAIT_POLICY=PASSIVE lets idle worker threads sleep,
# so CPU seconds count the network's work rather than threads spinning on a busy machine.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-runs/results_cpu.json}
DATA=${DLTL_CIFAR_DIR:-../shared/cifar10}
DB=${DLTL_STUDY_DB:-runs/cpu_study.db}
mkdir -p "$(dirname "$OUT")" "$(dirname "$DB")"
export OMP_WAIT_POLICY=PASSIVE
PY=${PYTHON:-.venv/bin/python}
common=(--data-dir "$DATA" --results "$OUT" --seed 0 --progress)
"$PY" -m dltl_core search --fixed recipe=cpu,epochs=5 --arch all --widths 0.125 "${common[@]}"
"$PY" -m dltl_core search --fixed recipe=cpu,epochs=5 --arch vgg11_bn --widths 0.25,0.5 "${common[@]}"
"$PY" -m dltl_core search --recipe cpu --arch resnet18 --widths 0.125 --epochs 3 --trials 3 --sampler-seed 0 \
    --storage "sqlite:///$DB" --study resnet18-cpu-study "${common[@]}"
