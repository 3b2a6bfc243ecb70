"""Fan-out on Azure: Durable Functions in the same app (``BATCH_FANOUT_DURABLE=true``).

- The Functions library indexes the orchestrator, the activities and the durable client bindings
  of the two batch triggers; without the setting the app is the one it was.
- The orchestrator is driven the way azure-functions-durable's own tests drive one
  (tests/orchestrator in Azure/azure-functions-durable-python): a history JSON of the events the
  extension records (ExecutionStarted, TaskScheduled, TaskCompleted, TaskFailed, TimerFired...),
  replayed by the library's ``Orchestrator``, which answers the actions it schedules next. The
  results in that history are those of the real activities run against Azurite, so the chain
  trigger -> plan -> parts -> merge is the one a deployment runs, and the outputs are
  byte-identical to one run over the whole file, with the parts removed.
- The trigger starts an orchestration through the library's own ``DurableOrchestrationClient``.
  The Durable extension that answers that client is .NET code inside the Functions host, which is
  not on this machine and has no emulator; so the client's base URL points at an
  ``http.server`` on 127.0.0.1 (:class:`DurableHttpApi`) that records each request and answers
  as the extension's HTTP API documents it (404 for an unknown instance, 202 with the id for a
  start). What is tested there is what the app sends, not the extension.
"""

from __future__ import annotations

import asyncio
import json
import threading
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from azure.durable_functions.constants import DATETIME_STRING_FORMAT
from azure.durable_functions.models.history.HistoryEventType import HistoryEventType
from azure.durable_functions.models.utils import http_utils

from azure_function.local_host import InvocationContext
from core.batch.engine import run_batch
from core.storage import StorageURI
from tests.azure_function.test_batch import CONTAINER, blob_created_sample, blob_event, event_grid_event, stored
from tests.core.batch.test_fanout import csv_file

FANOUT = {"BATCH_FANOUT_DURABLE": "true", "BATCH_FANOUT_PART_BYTES": "2048", "BATCH_CHUNK_ROWS": "10"}
ACTIVITIES = ("batch_fanout_plan", "batch_fanout_part", "batch_fanout_merge", "batch_fanout_cleanup")


class DurableHttpApi:
    """The Durable extension's HTTP API as its client reaches it (``rpcBaseUrl``): records every
    request; answers a start with 202 and the instance id, a status query with 404 (no body) for
    an instance it has not been told about, else with ``statuses[id]``."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, object]] = []
        self.statuses: dict[str, str] = {}
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def _answer(self, status: int, body: object | None) -> None:
                data = b"" if body is None else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                api.requests.append(("GET", self.path, None))
                instance = self.path.split("?")[0].rsplit("/", 1)[-1]
                status = api.statuses.get(instance)
                if status is None:
                    self._answer(404, None)
                else:
                    self._answer(200 if status == "Completed" else 202,
                                 {"name": "batch_fanout", "instanceId": instance, "runtimeStatus": status})

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])) or b"null")
                # the client sends the input serialized once more (a JSON string of the JSON)
                api.requests.append(("POST", self.path, json.loads(body) if isinstance(body, str) else body))
                instance = self.path.split("?")[0].rsplit("/", 1)[-1]
                api.statuses[instance] = "Pending"
                self._answer(202, {"id": instance})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def client_binding(self) -> str:
        """The durable client binding's data, as the host passes it to the function."""
        base = f"http://127.0.0.1:{self.server.server_address[1]}/runtime/webhooks/durabletask/"
        return json.dumps({"taskHubName": "TestHub", "creationUrls": {}, "managementUrls": {},
                           "baseUrl": base, "requiredQueryStringParameters": "", "rpcBaseUrl": base})

    def starts(self) -> list[tuple[str, object]]:
        return [(path, body) for method, path, body in self.requests if method == "POST"]


@pytest.fixture
def durable_api():
    api = DurableHttpApi()
    api.thread.start()
    yield api
    api.server.shutdown()
    api.server.server_close()


@pytest.fixture
def loop():
    """One event loop for the test, as the worker has one: the SDK keeps one aiohttp session."""
    running = asyncio.new_event_loop()
    yield running
    running.run_until_complete(http_utils._close_session())
    running.close()


@pytest.fixture
def fanout_app(batch_app):
    return batch_app(**FANOUT)


def functions_of(app) -> dict:
    return {f.get_function_name(): f for f in app.host.registered}


def bindings(function) -> list[dict]:
    return json.loads(function.get_function_json())["bindings"]


def trigger(app, loop, durable_api, name: str, argument, key: str) -> None:
    """Call a batch function the way the worker calls it: the trigger's argument, the context, and
    the durable client binding's JSON, which the library turns into a DurableOrchestrationClient."""
    call = functions_of(app)[name].get_user_function()
    loop.run_until_complete(call(**{key: argument}, context=InvocationContext(name, "."),
                                 client=durable_api.client_binding))


# --- history, as azure-functions-durable's tests build it (tests/test_utils/ContextBuilder.py) ----


class History:
    def __init__(self, request: dict) -> None:
        self.time = datetime(2026, 12, 5, 12, 0, 0)
        self.input = json.dumps(request)
        self.events: list[dict] = []
        self.started()
        self.add(HistoryEventType.EXECUTION_STARTED, Name="batch_fanout", Version="", Input=self.input, IsPlayed=True,
                 OrchestrationInstance={"InstanceId": "batch_fanout-test", "ExecutionId": "e1"})

    def add(self, kind: HistoryEventType, event_id: int = -1, **fields) -> None:
        self.time += timedelta(seconds=1)
        self.events.append({"EventId": event_id, "EventType": int(kind), "IsPlayed": fields.pop("IsPlayed", False),
                            "Timestamp": self.time.strftime(DATETIME_STRING_FORMAT), **fields})

    def started(self) -> None:
        self.add(HistoryEventType.ORCHESTRATOR_STARTED)

    def completed(self) -> None:
        self.add(HistoryEventType.ORCHESTRATOR_COMPLETED)

    def activities(self, first_id: int, name: str, results: list) -> None:
        """Activities scheduled in one episode, then all completed in the next."""
        for offset in range(len(results)):
            self.add(HistoryEventType.TASK_SCHEDULED, first_id + offset, Name=name)
        self.completed()
        self.started()
        for offset, result in enumerate(results):
            self.add(HistoryEventType.TASK_COMPLETED, TaskScheduledId=first_id + offset, Result=json.dumps(result))

    def json(self) -> str:
        return json.dumps({"history": self.events, "input": self.input, "instanceId": "batch_fanout-test",
                           "isReplaying": False, "parentInstanceId": None, "upperSchemaVersion": 0})


def replay(app, history: History) -> dict:
    """The orchestrator function as the worker calls it: the history in, its state out."""
    return json.loads(functions_of(app)["batch_fanout"].get_user_function()(history.json()))


def scheduled(state: dict) -> list[list[tuple[str, object]]]:
    """Each episode's scheduled activities: (name, input)."""
    return [[(action["functionName"], json.loads(action["input"])) for action in episode]
            for episode in state["actions"]]


# --- tests -----------------------------------------------------------------------------------------


def test_the_functions_library_indexes_the_orchestrator_activities_and_client_bindings(batch_app):
    plain = functions_of(batch_app())
    assert not any(name.startswith("batch_fanout") for name in plain)
    assert [b["type"] for b in bindings(plain["batch_blob"])] == ["blobTrigger"]

    functions = functions_of(batch_app(**FANOUT))
    assert set(functions) == set(plain) | {"batch_fanout", *ACTIVITIES}
    (orchestration,) = bindings(functions["batch_fanout"])
    assert (orchestration["type"], orchestration["orchestration"]) == ("orchestrationTrigger", "batch_fanout")
    for name in ACTIVITIES:
        (activity,) = bindings(functions[name])
        assert activity["type"] == "activityTrigger"
    for name, trigger_type in (("batch_blob", "blobTrigger"), ("batch_event_grid", "eventGridTrigger")):
        found = {b["type"]: b for b in bindings(functions[name])}
        assert set(found) == {trigger_type, "durableClient"}
        assert found["durableClient"]["name"] == "client" and found["durableClient"]["direction"] == "IN"
        if trigger_type == "blobTrigger":
            assert found[trigger_type]["source"] == "EventGrid"


def test_a_wrong_fanout_setting_fails_the_indexing_naming_it(batch_app):
    from core.errors import SettingsError

    with pytest.raises(SettingsError, match=r"^BATCH_FANOUT_DURABLE='maybe' is not allowed; expected true or false"):
        batch_app(BATCH_FANOUT_DURABLE="maybe")


def test_a_big_file_goes_trigger_plan_parts_merge_to_the_outputs_of_one_run(
        fanout_app, azurite_with_model, durable_api, loop):
    data, bad = csv_file(300)
    name = "incoming/big.csv"
    etag = azurite_with_model.put(CONTAINER, name, data)
    azurite_with_model.put(CONTAINER, "alone/big.csv", data)
    one_run = run_batch(StorageURI("az", CONTAINER, "alone/big.csv"), fanout_app.service.model,
                        fanout_app.service.settings)
    assert one_run.rows_failed == len(bad) > 0

    trigger(fanout_app, loop, durable_api, "batch_blob", blob_event(azurite_with_model, CONTAINER, name, data, etag),
            "blob")
    ((path, request),) = durable_api.starts()
    assert request == {"input": f"az://{CONTAINER}/{name}", "version": {"etag": etag}}
    instance = path.rsplit("/", 1)[-1]
    assert path == f"/runtime/webhooks/durabletask/orchestrators/batch_fanout/{instance}"
    assert instance.startswith("batch_fanout-") and len(instance) <= 100
    assert not any(key.endswith(".predictions.jsonl") for key in stored(azurite_with_model) if "big" in key
                   and "alone" not in key), "the trigger only starts the orchestration"

    activity = {name: functions_of(fanout_app)[name].get_user_function() for name in ACTIVITIES}
    history = History(request)
    state = replay(fanout_app, history)
    assert not state["isDone"] and scheduled(state) == [[("batch_fanout_plan", request)]]
    (plan_action,) = state["actions"][0]
    assert plan_action["retryOptions"] == {"firstRetryIntervalInMilliseconds": 30000, "maxNumberOfAttempts": 3,
                                           "backoffCoefficient": 2.0, "maxRetryIntervalInMilliseconds": 300000}

    plan = activity["batch_fanout_plan"](request=request)
    assert len(plan["parts"]) >= 3
    history.activities(0, "batch_fanout_plan", [plan])
    state = replay(fanout_app, history)
    assert scheduled(state)[1] == [("batch_fanout_part", part) for part in plan["parts"]]
    assert {json.dumps(a["retryOptions"], sort_keys=True) for a in state["actions"][1]} == {json.dumps(
        {"firstRetryIntervalInMilliseconds": 60000, "maxNumberOfAttempts": 5, "backoffCoefficient": 2.0,
         "maxRetryIntervalInMilliseconds": 600000}, sort_keys=True)}

    results = [activity["batch_fanout_part"](part=part) for part in reversed(plan["parts"])][::-1]
    history.activities(1, "batch_fanout_part", results)
    state = replay(fanout_app, history)
    assert scheduled(state)[2] == [("batch_fanout_merge", {"plan": plan, "results": results})]

    merged = activity["batch_fanout_merge"](step={"plan": plan, "results": results})
    history.activities(1 + len(results), "batch_fanout_merge", [merged])
    state = replay(fanout_app, history)
    assert state["isDone"] and state["output"] == merged

    outputs = stored(azurite_with_model)
    for kind in ("predictions", "errors"):
        assert outputs[f"predictions/incoming/big.csv.{kind}.jsonl"] == outputs[f"predictions/alone/big.csv.{kind}.jsonl"]
    assert (merged["rows_read"], merged["rows_failed"]) == (one_run.rows_read, one_run.rows_failed)
    assert not [key for key in outputs if "_parts/" in key]


def test_an_input_deleted_before_it_is_planned_ends_skipped_not_retried(fanout_app, azurite_with_model):
    functions = functions_of(fanout_app)
    request = {"input": f"az://{CONTAINER}/incoming/deleted.csv", "version": None}
    plan = functions["batch_fanout_plan"].get_user_function()(request=request)
    assert plan["parts"] == [] and plan["skipped"].endswith("(deleted after the event was sent?)")
    history = History(request)
    history.activities(0, "batch_fanout_plan", [plan])
    assert scheduled(replay(fanout_app, history))[1] == [("batch_fanout_merge", {"plan": plan, "results": []})]
    merged = functions["batch_fanout_merge"].get_user_function()(step={"plan": plan, "results": []})
    assert merged["skipped"] == plan["skipped"] and merged["rows_read"] == 0


def test_a_part_that_fails_for_good_removes_the_parts_and_fails_the_orchestration(fanout_app):
    request = {"input": f"az://{CONTAINER}/incoming/big.csv", "version": None}
    parts = [{"index": index} for index in range(2)]
    plan = {"input": request["input"], "parts": parts, "skipped": None}
    history = History(request)
    history.activities(0, "batch_fanout_plan", [plan])
    history.add(HistoryEventType.TASK_SCHEDULED, 1, Name="batch_fanout_part")
    history.add(HistoryEventType.TASK_SCHEDULED, 2, Name="batch_fanout_part")
    history.completed()
    history.started()
    history.add(HistoryEventType.TASK_COMPLETED, TaskScheduledId=1, Result=json.dumps({"index": 0}))
    # part 1 fails on each of its 5 attempts; the extension waits on a timer before each retry
    # (the library asks for one more timer after the last failure: DTFx's replay semantics)
    event_id = 3
    for attempt in range(5):
        history.add(HistoryEventType.TASK_FAILED, TaskScheduledId=2 if attempt == 0 else event_id - 1,
                    Reason="StorageError", Details="az://batch-input/... could not be read")
        fire_at = history.time.strftime(DATETIME_STRING_FORMAT)
        history.add(HistoryEventType.TIMER_CREATED, event_id, FireAt=fire_at)
        history.completed()
        history.started()
        history.add(HistoryEventType.TIMER_FIRED, TimerId=event_id, FireAt=fire_at, IsPlayed=True)
        event_id += 1
        if attempt < 4:
            history.add(HistoryEventType.TASK_SCHEDULED, event_id, Name="batch_fanout_part")
            history.completed()
            history.started()
            event_id += 1

    state = replay(fanout_app, history)
    assert scheduled(state)[-1] == [("batch_fanout_cleanup", plan)] and not state["isDone"]

    history.activities(event_id, "batch_fanout_cleanup", [None])
    with pytest.raises(Exception, match="StorageError"):
        replay(fanout_app, history)


def test_a_small_file_runs_in_the_trigger_and_a_repeated_event_starts_nothing_new(
        fanout_app, azurite_with_model, durable_api, loop):
    data, _ = csv_file(300)
    small = data[:1500]
    small_etag = azurite_with_model.put(CONTAINER, "incoming/small.csv", small)
    trigger(fanout_app, loop, durable_api, "batch_blob",
            blob_event(azurite_with_model, CONTAINER, "incoming/small.csv", small, small_etag), "blob")
    assert durable_api.requests == []
    assert "predictions/incoming/small.csv.predictions.jsonl" in stored(azurite_with_model)

    etag = azurite_with_model.put(CONTAINER, "incoming/again.csv", data)
    event = event_grid_event(blob_created_sample(), azurite_with_model, CONTAINER, "incoming/again.csv", etag)
    trigger(fanout_app, loop, durable_api, "batch_event_grid", event, "event")
    ((path, _),) = durable_api.starts()
    instance = path.rsplit("/", 1)[-1]
    durable_api.statuses[instance] = "Running"
    trigger(fanout_app, loop, durable_api, "batch_event_grid", event, "event")
    assert len(durable_api.starts()) == 1
    assert [method for method, _, _ in durable_api.requests] == ["GET", "POST", "GET"]


def test_an_extension_that_refuses_the_start_fails_the_invocation_so_the_event_is_retried(
        fanout_app, azurite_with_model, loop):
    from core.errors import StorageError

    data, _ = csv_file(300)
    etag = azurite_with_model.put(CONTAINER, "incoming/refused.csv", data)
    closed = DurableHttpApi()  # never served: its port refuses connections
    closed.server.server_close()
    with pytest.raises(StorageError, match="the Durable Functions extension refused to start orchestration "
                                           "batch_fanout-"):
        trigger(fanout_app, loop, closed, "batch_blob",
                blob_event(azurite_with_model, CONTAINER, "incoming/refused.csv", data, etag), "blob")
