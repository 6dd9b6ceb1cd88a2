#!/bin/sh
# Triton on CPU serving models/identity, with the NVCF-* request headers forwarded to the model as
# request parameters. Needs Docker; no GPU (the model runs on the Python backend, KIND_CPU).
#
#   sh examples/03-triton/run.sh
#   # in another shell, from the repository:
#   npm start -- dev --inference-url http://127.0.0.1:8000/v2/models/identity/infer --health-path /v2/health/ready
#   curl -s -X POST http://127.0.0.1:8090/v2/nvcf/pexec/functions/de7e1000-0000-4000-8000-000000000001 \
#        -H 'Content-Type: application/json' -d @examples/03-triton/request.json
#
# TRITON_IMAGE picks another release of NVIDIA's image (any with the Python backend: *-py3).
set -eu
MODELS="$(cd "$(dirname "$0")" && pwd)/models"
exec docker run --rm -p 127.0.0.1:8000:8000 -v "$MODELS:/models:ro" \
  "${TRITON_IMAGE:-nvcr.io/nvidia/tritonserver:24.08-py3}" \
  tritonserver --model-repository=/models --http-port=8000 \
  --http-header-forward-pattern 'NVCF-.*'
