#!/usr/bin/env bash
# Runs the four Jobs in order, each after the one before has completed. Needs the claim qarvd-work
# (ReadWriteMany) holding model.safetensors and prompts.safetensors, and the image qarvd:0.1.0.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
for job in sensitivity merge-sensitivity calibrate quantize; do
  kubectl apply -f "$here/$job-job.yaml"
  kubectl wait --for=condition=complete --timeout=24h "job/qarvd-$job"
done
