#!/bin/sh
# Triton with the NVCF-* request headers forwarded to the model as request parameters.
# Needs Docker and (for real models) a GPU; the test suite checks this file's syntax only.
set -eu
MODELS="$(cd "$(dirname "$0")" && pwd)/models"
mkdir -p "$MODELS/identity/1"
cp "$(dirname "$0")/config.pbtxt" "$MODELS/identity/config.pbtxt"

docker run --rm --gpus all -p 8000:8000 -v "$MODELS:/models" \
  nvcr.io/nvidia/tritonserver:24.08-py3 \
  tritonserver --model-repository=/models --http-port=8000 \
  --http-header-forward-pattern 'NVCF-.*'

# Then, in another shell, point the harness at it:
#   nvcf-sidecar dev --inference-url http://127.0.0.1:8000/v2/models/identity/infer --health-path /v2/health/ready
