"""Triton Python-backend model behind the sidecar: echoes INPUT0 and reports the NVCF-* headers.

Triton started with `--http-header-forward-pattern 'NVCF-.*'` hands the matching HTTP headers to
the model as request parameters; this model returns them as a JSON object in NVCF_HEADERS, so the
headers the sidecar adds (NVCF-REQID, NVCF-ASSET-DIR, NVCF-LARGE-OUTPUT-DIR, ...) can be checked
end to end.
"""
import json

import numpy as np
import triton_python_backend_utils as pb_utils


def nvcf_headers(parameters_json):
    """The NVCF-* entries of a request's parameters, names upper-cased (HTTP names have no case)."""
    parameters = json.loads(parameters_json or "{}")
    return {name.upper(): value for name, value in parameters.items() if name.upper().startswith("NVCF-")}


class TritonPythonModel:
    def execute(self, requests):
        responses = []
        for request in requests:
            text = pb_utils.get_input_tensor_by_name(request, "INPUT0").as_numpy()
            headers = json.dumps(nvcf_headers(request.parameters()), sort_keys=True).encode("utf-8")
            responses.append(
                pb_utils.InferenceResponse(
                    output_tensors=[
                        pb_utils.Tensor("OUTPUT0", text),
                        pb_utils.Tensor("NVCF_HEADERS", np.array([headers], dtype=np.object_)),
                    ]
                )
            )
        return responses
