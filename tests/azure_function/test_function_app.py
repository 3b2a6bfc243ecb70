"""The Azure Functions app, driven through the azure-functions library's own types, with the model
loaded from Azurite over az://."""

from __future__ import annotations

import json
import logging
import shutil
from concurrent.futures import ThreadPoolExecutor

import pytest

MODEL_URI = "az://models/iris.joblib"
ORIGIN = "https://app.example.com"
ROWS = {"instances": [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]}
JSON = {"Content-Type": "application/json"}


def body(response) -> dict:
    return json.loads(response.get_body())


def predict(app, payload=ROWS, **headers):
    return app.host.invoke("POST", "/predict", headers={**JSON, **headers}, body=json.dumps(payload).encode())


# --- registration ----------------------------------------------------------------------------


def test_every_function_is_registered_with_its_route_methods_and_auth_level(load_app, demo_model_uri):
    app = load_app({"MODEL_URI": demo_model_uri})
    registered = {
        f.name: (f.route, sorted(f.methods) if f.methods else "any", f.auth_level) for f in app.host.functions
    }
    assert registered == {
        "predict": ("predict", ["OPTIONS", "POST"], "FUNCTION"),
        "health": ("health", ["GET", "HEAD", "OPTIONS"], "FUNCTION"),
        "model": ("model", ["GET", "HEAD", "OPTIONS"], "FUNCTION"),
        "openapi": ("openapi.json", ["GET", "HEAD", "OPTIONS"], "FUNCTION"),
        "unmatched": ("{*path}", "any", "FUNCTION"),
    }
    # the catch-all comes last, so that a host matching in registration order reaches the others
    assert app.host.functions[-1].name == "unmatched"


@pytest.mark.parametrize("setting, level", [("anonymous", "ANONYMOUS"), ("Admin", "ADMIN"), ("FUNCTION", "FUNCTION")])
def test_the_auth_level_of_every_function_comes_from_the_setting(load_app, demo_model_uri, setting, level):
    app = load_app({"MODEL_URI": demo_model_uri}, auth_level=setting)
    assert {f.auth_level for f in app.host.functions} == {level}


def test_a_wrong_auth_level_fails_the_start_naming_the_variable(load_app, demo_model_uri):
    from core.errors import SettingsError

    with pytest.raises(SettingsError) as failure:
        load_app({"MODEL_URI": demo_model_uri}, auth_level="public")
    assert failure.value.message == (
        "FUNCTION_AUTH_LEVEL='public' is not allowed; expected one of FUNCTION, ANONYMOUS, ADMIN "
        "(FUNCTION: a function key is needed)"
    )


# --- predictions from Azurite ----------------------------------------------------------------


def test_predict_loads_the_model_from_azurite_once_and_reuses_it(app_on_azurite):
    app = app_on_azurite
    assert body(app.request("GET", "/health"))["model"] == "not_loaded"
    assert app.store.downloads == 0  # neither the import nor /health loads the model

    first = predict(app)
    assert first.response.status_code == 200
    answer = body(first.response)
    assert answer["predictions"] == ["setosa", "virginica"]
    assert answer["classes"] == ["setosa", "versicolor", "virginica"]
    assert answer["model_version"].startswith("sha256:")
    # the invocation id is the request id, in the body and the header
    assert answer["request_id"] == first.context.invocation_id == first.response.headers["x-request-id"]
    assert first.response.headers["content-type"] == "application/json"
    assert first.function.name == "predict"

    for _ in range(3):
        assert predict(app).response.status_code == 200
    assert app.store.downloads == 1
    assert app.service.model.load_attempts == 1
    assert body(app.request("GET", "/health"))["model"] == "loaded"


def test_32_concurrent_first_calls_download_the_model_once(app_on_azurite):
    app = app_on_azurite
    with ThreadPoolExecutor(max_workers=32) as pool:
        invocations = list(pool.map(lambda _: predict(app), range(32)))
    assert [i.response.status_code for i in invocations] == [200] * 32
    assert {tuple(body(i.response)["predictions"]) for i in invocations} == {("setosa", "virginica")}
    assert len({body(i.response)["request_id"] for i in invocations}) == 32
    assert app.store.downloads == 1


def test_model_description_openapi_and_head(app_on_azurite, model_bytes):
    app = app_on_azurite
    described = body(app.request("GET", "/model"))
    assert described["feature_names"] == ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    assert described["size_bytes"] == len(model_bytes)
    openapi = body(app.request("GET", "/openapi.json"))
    assert openapi["openapi"].startswith("3.1")
    head = app.request("HEAD", "/health")
    assert head.status_code == 200 and head.get_body() == b""


def test_cors_preflight_and_allowed_origin(app_on_azurite):
    app = app_on_azurite
    preflight = app.host.invoke(
        "OPTIONS", "/predict", headers={"Origin": ORIGIN, "Access-Control-Request-Method": "POST"}
    )
    assert preflight.function.name == "predict"
    assert preflight.response.status_code == 204
    assert preflight.response.headers["access-control-allow-origin"] == ORIGIN
    assert preflight.response.headers["access-control-allow-methods"] == "POST, OPTIONS"
    answered = predict(app, Origin=ORIGIN).response
    assert answered.headers["access-control-allow-origin"] == ORIGIN
    stranger = app.request("OPTIONS", "/predict", headers={"Origin": "https://evil.example.com"})
    assert stranger.status_code == 204 and "access-control-allow-origin" not in stranger.headers


def test_unknown_routes_and_wrong_methods_get_the_same_answers_as_every_provider(app_on_azurite):
    app = app_on_azurite
    unknown = app.host.invoke("GET", "/nope")
    assert unknown.function.name == "unmatched"
    assert unknown.response.status_code == 404
    assert body(unknown.response)["error"] == {
        "code": "not_found",
        "message": "no route '/nope'; expected one of: POST /predict, GET /health, GET /model, GET /openapi.json, "
                   "POST /invocations, GET /ping, /v2/... (Open Inference Protocol)",
    }
    wrong = app.host.invoke("GET", "/predict")
    assert wrong.function.name == "unmatched"  # the predict function takes POST and OPTIONS only
    assert wrong.response.status_code == 405
    assert wrong.response.headers["allow"] == "POST, OPTIONS"
    assert body(wrong.response)["error"]["message"] == "'GET' is not allowed on /predict; expected POST"
    # the host matches routes in any case; core still sees the path the client sent
    assert app.request("GET", "/HEALTH").status_code == 404
    assert app.request("POST", "/predict/", headers=JSON, body=json.dumps(ROWS).encode()).status_code == 200


def test_bad_input_is_a_clear_400(app_on_azurite):
    response = app_on_azurite.request("POST", "/predict", headers=JSON, body=b'{"instances": [[5.1, "x", 1.4, 0.2]]}')
    assert response.status_code == 400
    assert body(response)["error"]["code"] == "invalid_value"


def test_an_api_route_prefix_is_seen_through(load_app, app_folder, azurite_with_model, tmp_path):
    """With host.json's default prefix the URLs move under /api; the answers stay the same."""
    folder = tmp_path / "app"
    folder.mkdir()
    shutil.copy(app_folder / "function_app.py", folder)
    (folder / "host.json").write_text(json.dumps({"version": "2.0", "extensions": {"http": {"routePrefix": "api"}}}))
    app = load_app(
        {"MODEL_URI": MODEL_URI, "AZURE_STORAGE_CONNECTION_STRING": azurite_with_model.connection_string},
        folder=folder,
    )
    assert app.host.url("/predict").endswith("/api/predict")
    answered = predict(app).response
    assert answered.status_code == 200 and body(answered)["predictions"] == ["setosa", "virginica"]
    missing = app.request("GET", "/nope")
    assert missing.status_code == 404 and "no route '/nope'" in body(missing)["error"]["message"]
    assert app.request("GET", "/api").status_code == 404  # the prefix alone is route "/"


# --- faults against Azurite: 503 with a clear message, then the next call recovers ------------


def assert_unavailable(response, *fragments: str) -> str:
    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"
    error = body(response)["error"]
    assert error["code"] == "model_unavailable"
    for fragment in fragments:
        assert fragment in error["message"], error["message"]
    return error["message"]


def test_a_missing_blob_is_503_then_served_once_uploaded(load_app, azurite, model_bytes):
    app = load_app({"MODEL_URI": "az://models/later.joblib", "AZURE_STORAGE_CONNECTION_STRING": azurite.connection_string})
    azurite.put("models", "placeholder", b"")  # the container exists, the blob does not
    assert_unavailable(predict(app).response, "az://models/later.joblib does not exist")
    assert body(app.request("GET", "/health"))["model"] == "load_failed"
    azurite.put("models", "later.joblib", model_bytes)
    assert predict(app).response.status_code == 200


def test_a_missing_container_is_503_naming_it_then_served_once_created(load_app, azurite, model_bytes):
    app = load_app({"MODEL_URI": "az://nowhere/iris.joblib", "AZURE_STORAGE_CONNECTION_STRING": azurite.connection_string})
    assert_unavailable(predict(app).response, "az://nowhere/iris.joblib", "there is no container 'nowhere'")
    azurite.put("nowhere", "iris.joblib", model_bytes)
    assert predict(app).response.status_code == 200


OLD_KEY = "b2xkLWtleS1vbGQta2V5LW9sZC1rZXktb2xkLWtleS1vbGQta2V5"  # base64, as Azurite requires
NEW_KEY = "bmV3LWtleS1uZXcta2V5LW5ldy1rZXktbmV3LWtleS1uZXcta2V5"


@pytest.mark.timeout(60)
def test_an_account_key_the_service_refuses_is_503_until_the_key_is_accepted(load_app, own_azurite, model_bytes):
    server = own_azurite(accounts=f"mlmodels:{OLD_KEY}")
    server.put("models", "iris.joblib", model_bytes)
    connection_string = server.connection_string.replace(OLD_KEY, NEW_KEY)
    app = load_app({"MODEL_URI": MODEL_URI, "AZURE_STORAGE_CONNECTION_STRING": connection_string})

    message = assert_unavailable(predict(app).response, MODEL_URI, "access denied", "403")
    assert NEW_KEY not in message and "AccountKey" not in message

    # the key is rotated in on the service side: the same process recovers, no restart
    server.restart(accounts=f"mlmodels:{OLD_KEY}:{NEW_KEY}")
    server.put("models", "iris.joblib", model_bytes)
    assert predict(app).response.status_code == 200


@pytest.mark.timeout(30)  # the SDK's default retries would hang here for about 84 s
def test_a_stopped_storage_service_fails_fast_then_recovers(load_app, own_azurite, model_bytes):
    server = own_azurite()
    server.put("models", "iris.joblib", model_bytes)
    app = load_app({
        "MODEL_URI": MODEL_URI, "AZURE_STORAGE_CONNECTION_STRING": server.connection_string,
        "STORAGE_TIMEOUT_SECONDS": "2",
    })
    server.stop()
    assert_unavailable(predict(app).response, MODEL_URI, "the storage service cannot be reached")
    server.start()
    server.put("models", "iris.joblib", model_bytes)
    assert predict(app).response.status_code == 200


@pytest.mark.timeout(30)
def test_a_storage_service_that_stops_answering_times_out_then_recovers(load_app, own_azurite, model_bytes):
    server = own_azurite()
    server.put("models", "iris.joblib", model_bytes)
    app = load_app({
        "MODEL_URI": MODEL_URI, "AZURE_STORAGE_CONNECTION_STRING": server.connection_string,
        "STORAGE_TIMEOUT_SECONDS": "1",
    })
    server.freeze()
    assert_unavailable(predict(app).response, "did not answer within the 1 s allowed (STORAGE_TIMEOUT_SECONDS)")
    server.thaw()
    assert predict(app).response.status_code == 200


# --- logs ------------------------------------------------------------------------------------


class RootHandler(logging.Handler):
    """Stands where the Functions worker's handler is: on the root logger."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def root_records():
    handler = RootHandler()
    root = logging.getLogger()
    root.addHandler(handler)
    yield handler.records
    root.removeHandler(handler)


def test_logs_reach_the_functions_logging_with_the_invocation_id_and_cold_start(app_on_azurite, root_records):
    """Every serverless_ml line reaches the root logger once, as core's JSON, with the invocation."""
    first = predict(app_on_azurite)
    second = predict(app_on_azurite)
    ours = [r for r in root_records if r.name.startswith("serverless_ml")]
    lines = [json.loads(r.getMessage()) for r in ours]
    assert [r.levelname for r in ours] == [line["level"] for line in lines]
    requests = [line for line in lines if line["message"] == "request"]
    assert [line["invocation_id"] for line in requests] == [first.context.invocation_id, second.context.invocation_id]
    assert [line["request_id"] for line in requests] == [first.context.invocation_id, second.context.invocation_id]
    assert all(line["function_name"] == "predict" and isinstance(line["cold_start"], bool) for line in requests)
    assert requests[1]["cold_start"] is False
    (loaded,) = [line for line in lines if line["message"] == "model loaded"]
    assert loaded["invocation_id"] == first.context.invocation_id
    assert loaded["model_uri"] == MODEL_URI
