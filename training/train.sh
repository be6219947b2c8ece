#!/bin/sh
# npm run train:embedded: trains the embedded default (about 50 minutes on 2 cores) and writes
# models/embedded-default.safetensors and models/embedded-default.json. Debian's python3-torch runs its
# GEMMs on the system BLAS; with libopenblas0-pthread installed they run on OpenBLAS (about 25x
# faster than the reference BLAS), which this script picks without changing the system's choice.
set -e
cd "$(dirname "$0")/.."
OB=/usr/lib/x86_64-linux-gnu/openblas-pthread
if [ -e "$OB/libblas.so.3" ]; then export LD_LIBRARY_PATH="$OB${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"; fi
export OPENBLAS_NUM_THREADS="${OPENBLAS_NUM_THREADS:-2}"
exec /usr/bin/python3 training/train.py "$@"
