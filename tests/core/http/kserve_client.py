"""KServe's own REST client (kserve.InferenceRESTClient, Open Inference Protocol v2) against a
running endpoint; run with the interpreter of the KServe venv (the Makefile's .venv-kserve), which
the test venv does not share (kserve pins pandas<3).

    .venv-kserve/bin/python tests/core/http/kserve_client.py URL MODEL_NAME < rows.json

Reads the rows (a JSON array of arrays of numbers) on stdin; prints one JSON object of what the
client saw: liveness and readiness, the outputs of a binary infer and of a JSON infer (each as
lists), the id it sent and got back, and the error of an infer on another model's name.
"""

from __future__ import annotations

import asyncio
import json
import sys

import numpy as np
from kserve import InferenceRESTClient, InferInput, InferRequest, RESTConfig
from kserve.protocol.infer_type import RequestedOutput


def request(name: str, rows: np.ndarray, binary: bool, request_id: str) -> InferRequest:
    tensor = InferInput("input-0", list(rows.shape), "FP64")
    tensor.set_data_from_numpy(rows, binary_data=binary)
    outputs = [RequestedOutput("predict", {"binary_data": binary}), RequestedOutput("predict_proba", {"binary_data": binary})]
    return InferRequest(model_name=name, infer_inputs=[tensor], request_id=request_id, request_outputs=outputs)


def as_lists(response) -> dict:
    return {output.name: output.as_numpy().tolist() for output in response.outputs}


async def main(url: str, name: str, rows: np.ndarray) -> dict:
    client = InferenceRESTClient(RESTConfig(protocol="v2", timeout=30, retries=0))
    try:
        seen: dict = {
            "live": await client.is_server_live(url),
            "ready": await client.is_server_ready(url),
            "model_ready": await client.is_model_ready(url, name),
            "other_model_ready": await client.is_model_ready(url, "other"),
        }
        binary = await client.infer(url, request(name, rows, True, "kserve-binary"), model_name=name)
        plain = await client.infer(url, request(name, rows, False, "kserve-json"), model_name=name)
        seen.update(binary=as_lists(binary), binary_id=binary.id, json=as_lists(plain), json_id=plain.id)
        try:
            await client.infer(url, request("other", rows, False, "kserve-other"), model_name="other")
        except Exception as exc:  # httpx.HTTPStatusError, its message from the body's "error"
            seen["other_error"] = f"{type(exc).__name__}: {exc}"
        return seen
    finally:
        await client.close()


if __name__ == "__main__":
    matrix = np.asarray(json.load(sys.stdin), dtype=np.float64)
    print(json.dumps(asyncio.run(main(sys.argv[1], sys.argv[2], matrix))))
