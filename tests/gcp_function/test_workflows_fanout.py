"""Fan-out on Google Cloud: the steps the workflow (infra/gcp/workflow.yaml) calls, and the trigger
that starts it.

- ``fanout_plan``, ``fanout_part`` and ``fanout_merge`` are served by functions-framework's own
  server against the GCS emulator and called over HTTP in the workflow's order, with the bodies
  the workflow sends: plan -> every part -> merge writes the bytes one run over the file writes,
  and leaves nothing under ``_parts/``. Wrong requests are 4xx (the workflow does not retry them).
- ``batch`` with ``BATCH_FANOUT_WORKFLOW`` starts an execution for a file larger than one part and
  predicts a small one itself. There is no emulator of Cloud Workflows, so the Workflow Executions
  API is an ``http.server`` on 127.0.0.1 (:class:`WorkflowsApi`) that records each request and
  answers as the API documents (an Execution with its ``name``); it also answers as the metadata
  server a deployed function gets its service account's token from (``GCE_METADATA_HOST``,
  ``GCE_METADATA_IP``: google.auth.default() finds it as on Cloud Functions), so the request is
  the one google-auth's AuthorizedSession sends, bearer token included. What is tested is what the
  function sends, not Workflows.
"""

from __future__ import annotations

import json
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

import core.storage
from core.batch.engine import run_batch
from core.model import ModelHolder
from core.settings import Settings
from core.storage import StorageURI
from tests.core.batch.test_fanout import csv_file
from tests.gcp_function.test_batch import objects, post, structured_event
from tests.gcp_parts import FUNCTION_SOURCE, function_command, function_env, function_servers

BUCKET = "fanout-data"
WORKFLOW = "projects/test-project/locations/europe-west1/workflows/sml-fanout"
SMALL_PARTS = {"BATCH_FANOUT_PART_BYTES": "2048", "BATCH_CHUNK_ROWS": "10", "STORAGE_TIMEOUT_SECONDS": "5"}


class WorkflowsApi:
    """The Workflow Executions API and the metadata server's token on 127.0.0.1, recording requests."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def _answer(self, answer: object) -> None:
                data = answer.encode() if isinstance(answer, str) else json.dumps(answer).encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain" if isinstance(answer, str) else "application/json")
                self.send_header("Metadata-Flavor", "Google")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:  # the metadata server
                api.requests.append({"method": "GET", "path": self.path, "headers": dict(self.headers), "body": b""})
                path = self.path.split("?")[0]
                if path.endswith("/service-accounts/default/token"):
                    self._answer({"access_token": "token-from-the-test", "expires_in": 3600, "token_type": "Bearer"})
                elif path.endswith("/service-accounts/default/"):
                    self._answer({"email": "fn@test-project.iam.gserviceaccount.com", "aliases": ["default"],
                                  "scopes": ["https://www.googleapis.com/auth/cloud-platform"]})
                elif path.endswith("/project/project-id"):
                    self._answer("test-project")
                else:
                    self._answer("")

            def do_POST(self) -> None:  # the Workflow Executions API
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                api.requests.append({"method": "POST", "path": self.path,
                                     "headers": {k.lower(): v for k, v in self.headers.items()}, "body": raw})
                self._answer({"name": self.path.removeprefix("/v1/") + "/3f1e0c6a-d1a5-4c0e-9b1a-6f1d2f0e9c7d",
                              "state": "ACTIVE", "argument": json.loads(raw)["argument"]})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def executions(self) -> list[dict]:
        return [r for r in self.requests if r["method"] == "POST"]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def fanout_bucket(gcs_emulator, model_in_gcs) -> str:
    gcs_emulator.create_bucket(BUCKET)
    return BUCKET


@pytest.fixture(scope="module")
def steps(tmp_path_factory, gcs_emulator, model_in_gcs, fanout_bucket):
    """The three step functions, each on its own functions-framework server, as deployed."""
    with function_servers(tmp_path_factory.mktemp("fanout-steps")) as start:
        env = {"MODEL_URI": model_in_gcs, **gcs_emulator.env(), **SMALL_PARTS}
        yield {step: start(env, target=f"fanout_{step}") for step in ("plan", "part", "merge")}


def call(server, body) -> tuple[int, dict]:
    status, _, data = server.request("POST", "/", body=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    return status, json.loads(data)


def one_run(gcs_emulator, model_in_gcs, monkeypatch, uri: StorageURI):
    """The file predicted by one run in this process, on the same emulator and settings."""
    for name, value in gcs_emulator.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(core.storage, "_stores", {})
    settings = Settings.from_env({"MODEL_URI": model_in_gcs, **SMALL_PARTS})
    return run_batch(uri, ModelHolder(settings), settings)


def test_plan_every_part_and_merge_over_http_write_the_bytes_of_one_run(
        steps, gcs_emulator, model_in_gcs, fanout_bucket, monkeypatch):
    data, bad = csv_file(300)
    generation = gcs_emulator.upload(fanout_bucket, "incoming/big.csv", data)
    gcs_emulator.upload(fanout_bucket, "alone/big.csv", data)
    single = one_run(gcs_emulator, model_in_gcs, monkeypatch, StorageURI("gs", fanout_bucket, "alone/big.csv"))
    assert single.rows_failed == len(bad) > 0

    status, planned = call(steps["plan"], {"input": f"gs://{fanout_bucket}/incoming/big.csv",
                                           "version": {"generation": generation}})
    assert status == 200 and planned["skipped"] is None and planned["parts"] >= 3
    assert planned["plan"] == (f"gs://{fanout_bucket}/predictions/_parts/incoming/big.csv/{planned['run']}/plan.json")
    for index in reversed(range(planned["parts"])):  # any order, as the parallel loop finishes them
        status, result = call(steps["part"], {"plan": planned["plan"], "index": index})
        assert status == 200 and result["index"] == index
    status, merged = call(steps["merge"], {"plan": planned["plan"]})
    assert status == 200, merged
    assert (merged["rows_read"], merged["rows_failed"]) == (single.rows_read, single.rows_failed)

    stored = objects(gcs_emulator, fanout_bucket)
    for kind in ("predictions", "errors"):
        assert stored[f"predictions/incoming/big.csv.{kind}.jsonl"] == stored[f"predictions/alone/big.csv.{kind}.jsonl"]
    assert not [key for key in stored if "_parts/" in key]

    # the workflow retries a merge whose answer it lost: the plan is gone now, which no retry cures
    status, answer = call(steps["merge"], {"plan": planned["plan"]})
    assert (status, answer["error"]["code"]) == (404, "plan_not_found")


def test_a_request_the_workflow_would_not_send_is_a_4xx(steps, fanout_bucket):
    assert call(steps["plan"], {"input": "s3://elsewhere/a.csv", "version": None}) == (400, {"error": {
        "code": "bad_request", "message": "'input' is 's3://elsewhere/a.csv'; expected a gs:// URI"}})
    status, answer = call(steps["part"], {"plan": f"gs://{fanout_bucket}/incoming/plan.json", "index": 0})
    assert status == 400 and "expected the gs://.../_parts/.../plan.json that fanout_plan answered" in \
        answer["error"]["message"]
    status, answer = call(steps["part"], {"plan": f"gs://{fanout_bucket}/predictions/_parts/x/plan.json"})
    assert (status, answer["error"]["code"]) == (404, "plan_not_found")
    status, _, body = steps["merge"].request("POST", "/", body=b"not json", headers={"Content-Type": "text/plain"})
    assert status == 400 and b"the body is not a JSON object" in body
    # an input deleted before it is planned: nothing to do, said so, and the workflow returns
    status, planned = call(steps["plan"], {"input": f"gs://{fanout_bucket}/incoming/gone.csv", "version": None})
    assert status == 200 and planned["plan"] is None and "deleted after the event was sent?" in planned["skipped"]


def test_the_trigger_starts_an_execution_for_a_big_file_and_predicts_a_small_one(
        tmp_path, gcs_emulator, model_in_gcs, fanout_bucket):
    api = WorkflowsApi()
    metadata = api.url.removeprefix("http://")
    try:
        with function_servers(tmp_path / "servers") as start:
            batch = start({"MODEL_URI": model_in_gcs, **gcs_emulator.env(), **SMALL_PARTS,
                           "BATCH_FANOUT_WORKFLOW": WORKFLOW, "BATCH_FANOUT_WORKFLOWS_ENDPOINT": api.url,
                           "GCE_METADATA_HOST": metadata, "GCE_METADATA_IP": metadata},
                          target="batch", signature_type="cloudevent")
            data, _ = csv_file(300)
            small = gcs_emulator.upload(fanout_bucket, "incoming/small.csv", data[:1500])
            assert post(batch, structured_event(fanout_bucket, "incoming/small.csv", small)) == 200
            assert api.executions() == []
            assert "predictions/incoming/small.csv.predictions.jsonl" in objects(gcs_emulator, fanout_bucket)

            generation = gcs_emulator.upload(fanout_bucket, "incoming/handed.csv", data)
            assert post(batch, structured_event(fanout_bucket, "incoming/handed.csv", generation)) == 200
            logs = batch.log_lines()
    finally:
        api.close()

    (execution,) = api.executions()
    assert any(r["path"].startswith("/computeMetadata/v1/instance/service-accounts/default/token")
               for r in api.requests if r["method"] == "GET")
    assert execution["path"] == f"/v1/{WORKFLOW}/executions"
    assert execution["headers"]["authorization"] == "Bearer token-from-the-test"
    body = json.loads(execution["body"])
    assert json.loads(body["argument"]) == {"input": f"gs://{fanout_bucket}/incoming/handed.csv",
                                            "version": {"generation": generation}}
    assert body["callLogLevel"] == "LOG_ERRORS_ONLY" and len(body["labels"]["fanout-input"]) == 40
    (fanned,) = [line for line in logs if line["message"] == "batch input fanned out"]
    assert fanned["orchestrator"] == "Workflows"
    assert fanned["execution"] == f"{WORKFLOW}/executions/3f1e0c6a-d1a5-4c0e-9b1a-6f1d2f0e9c7d"
    assert "predictions/incoming/handed.csv.predictions.jsonl" not in objects(gcs_emulator, fanout_bucket)


def test_a_workflow_setting_that_names_no_workflow_stops_the_start_naming_it(tmp_path):
    result = subprocess.run(
        function_command(FUNCTION_SOURCE, target="batch", signature_type="cloudevent"), capture_output=True,
        text=True, timeout=60, cwd=tmp_path,
        env=function_env(tmp_path, {"MODEL_URI": "gs://models/iris/model.joblib", "BATCH_FANOUT_WORKFLOW": "sml-fanout"}),
    )
    assert result.returncode != 0
    assert ("BATCH_FANOUT_WORKFLOW='sml-fanout' is not a workflow's name; expected "
            "projects/<project>/locations/<region>/workflows/<workflow>") in result.stderr
