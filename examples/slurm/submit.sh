#!/usr/bin/env bash
# The Q-ARVD pipeline on a Slurm cluster: chunk-wise sensitivity as a job array, merged; calibration
# as a second array, merged, then quantization; each step waits for the one before (afterok).
#
#   MODEL=/shared/self_forcing.safetensors FEATURES=/shared/prompts.safetensors WORK=/shared/qarvd \
#   SHARDS=8 SETTING=W8A8 examples/slurm/submit.sh
#
# MODEL: a qarvd model file (qarvd convert self_forcing_dmd.pt ...); FEATURES (optional): text-encoder
# features of the prompts (see the README); WORK: a folder every node sees; SHARDS: array size.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
: "${MODEL:?set MODEL to the model file}" "${WORK:?set WORK to a shared folder}"
export MODEL WORK FEATURES="${FEATURES:-}" SETTING="${SETTING:-W8A8}"
SHARDS="${SHARDS:-4}"
mkdir -p "$WORK/logs"
common=(--parsable --export=ALL --chdir="$WORK" --output="$WORK/logs/%x-%A_%a.out")

sensitivity=$(sbatch "${common[@]}" --array="0-$((SHARDS - 1))" "$here/sensitivity.sbatch")
merged=$(sbatch "${common[@]}" --dependency="afterok:$sensitivity" "$here/merge-sensitivity.sbatch")
calibration=$(sbatch "${common[@]}" --dependency="afterok:$merged" --array="0-$((SHARDS - 1))" "$here/calibrate.sbatch")
quantize=$(sbatch "${common[@]}" --dependency="afterok:$calibration" "$here/quantize.sbatch")
echo "submitted: sensitivity $sensitivity, merge $merged, calibration $calibration, quantize $quantize"
