"""PyTriton behind the sidecar: an inference function that reads the NVCF-* request headers.

PyTriton hands forwarded HTTP headers (those matching `http_header_forward_pattern`) to the
inference function as request parameters, but only to an undecorated one: functions wrapped in
`@batch` and the other decorators get the inputs alone. So `infer` takes the list of requests
as it comes and answers each in turn.

    pip install nvidia-pytriton        # Linux, Python 3.8+
    python3 examples/04-pytriton/server.py
    npm start -- dev --inference-url http://127.0.0.1:8000/v2/models/echo/infer --health-path /v2/health/ready
    curl -s -X POST http://127.0.0.1:8090/v2/nvcf/pexec/functions/de7e1000-0000-4000-8000-000000000001 \\
         -H 'Content-Type: application/json' -d @examples/04-pytriton/request.json

The reply's NVCF_HEADERS output is a JSON object of the NVCF-* headers the function saw.
"""
import json

import numpy as np


def nvcf_headers(parameters):
    """The NVCF-* entries of a request's parameters, names upper-cased (HTTP names have no case)."""
    return {str(name).upper(): value for name, value in parameters.items() if str(name).upper().startswith("NVCF-")}


def infer(requests):
    """One answer per request, in order: the text back, and the NVCF-* headers that came with it."""
    responses = []
    for request in requests:
        text = request["INPUT0"]
        headers = json.dumps(nvcf_headers(request.parameters or {}), sort_keys=True).encode("utf-8")
        # One row per row of the input: the batch axis comes first.
        responses.append({"OUTPUT0": text, "NVCF_HEADERS": np.array([[headers]] * text.shape[0])})
    return responses


def main():
    # Imported here, so that `infer` can be tried (and tested) where PyTriton is not installed.
    from pytriton.model_config import ModelConfig, Tensor
    from pytriton.triton import Triton, TritonConfig

    config = TritonConfig(http_port=8000, http_header_forward_pattern="NVCF-.*")
    with Triton(config=config) as triton:
        triton.bind(
            model_name="echo",
            infer_func=infer,
            inputs=[Tensor(name="INPUT0", dtype=np.bytes_, shape=(1,))],
            outputs=[
                Tensor(name="OUTPUT0", dtype=np.bytes_, shape=(1,)),
                Tensor(name="NVCF_HEADERS", dtype=np.bytes_, shape=(1,)),
            ],
            config=ModelConfig(max_batch_size=8),
        )
        triton.serve()


if __name__ == "__main__":
    main()
