"""PyTriton behind the sidecar: NVCF-* headers reach the inference function as request parameters.

Needs `pip install nvidia-pytriton` and a Linux machine; the test suite checks this file's syntax only.

    python3 examples/04-pytriton/server.py
    nvcf-sidecar dev --inference-url http://127.0.0.1:8000/v2/models/echo/infer
"""
import numpy as np
from pytriton.decorators import batch
from pytriton.model_config import ModelConfig, Tensor
from pytriton.triton import Triton, TritonConfig


@batch
def infer(requests, **_):
    # Forwarded headers arrive as request parameters; NVIDIA's docs ask for upper-case names.
    return {"OUTPUT0": requests}


def main():
    config = TritonConfig(http_port=8000, http_header_forward_pattern="NVCF-.*")
    with Triton(config=config) as triton:
        triton.bind(
            model_name="echo",
            infer_func=infer,
            inputs=[Tensor(name="requests", dtype=np.bytes_, shape=(1,))],
            outputs=[Tensor(name="OUTPUT0", dtype=np.bytes_, shape=(1,))],
            config=ModelConfig(max_batch_size=8),
        )
        triton.serve()


if __name__ == "__main__":
    main()
