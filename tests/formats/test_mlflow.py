"""MLflow model directories saved by mlflow.sklearn.save_model, served from MODEL_URI without
importing mlflow: the mixed pipeline with a signature inferred from its training frame, from a
local folder (through the service and `serverless-ml serve`) and from S3 on moto's server; skops;
the refusals (no sklearn flavour, no model file, a signature that is not the model's)."""

from __future__ import annotations

import json
import pickle
import shutil
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest

from core.errors import SettingsError
from core.http import HttpRequest
from core.settings import Settings
from tests.aws_lambda import moto_support
from tests.support import REPO, answer, isolated_env, make_service, post_json, start_endpoint, stop_endpoint
from tests.typed_models import PASSENGER

# Saved in a child process, so that this one never imports mlflow (the fresh-process test below
# checks the server does not either).
SAVE = """
import sys, warnings
warnings.simplefilter("ignore")
from pathlib import Path
import numpy as np
import pandas as pd
import mlflow.pyfunc, mlflow.sklearn
from mlflow.models import infer_signature
from sklearn.linear_model import LogisticRegression
from tests import typed_models

out = Path(sys.argv[1])
frame, y = typed_models.passengers()
mixed = typed_models.mixed()
signature = infer_signature(frame, mixed.predict(frame))
mlflow.sklearn.save_model(mixed, out / "mixed", signature=signature, serialization_format="cloudpickle")
# mlflow's own default outside Databricks; skops asks to trust numpy.dtype for this pipeline
mlflow.sklearn.save_model(mixed, out / "mixed-skops", signature=signature, skops_trusted_types=["numpy.dtype"])
mlflow.sklearn.save_model(mixed, out / "renamed", serialization_format="pickle",
                          signature=infer_signature(frame.rename(columns={"fare": "price"}), mixed.predict(frame)))
X = frame[["age", "fare", "pclass"]].fillna(30.0).to_numpy()
on_arrays = LogisticRegression(max_iter=500).fit(X, y)
mlflow.sklearn.save_model(on_arrays, out / "named-by-signature", serialization_format="pickle",
                          signature=infer_signature(frame[["age", "fare", "pclass"]].fillna(30.0), y))
mlflow.sklearn.save_model(on_arrays, out / "tensor", serialization_format="pickle", signature=infer_signature(X, y))
text = typed_models.text()
mlflow.sklearn.save_model(text, out / "text", serialization_format="pickle",
                          signature=infer_signature(typed_models.TEXTS, text.predict(typed_models.TEXTS)))

class Echo(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input):
        return model_input

mlflow.pyfunc.save_model(out / "pyfunc-only", python_model=Echo())
"""


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("mlflow")
    # run in the repository's root (first on a ``-c`` child's path), which imports tests.typed_models
    done = subprocess.run([sys.executable, "-c", SAVE, str(folder)], capture_output=True, text=True, timeout=300,
                          cwd=REPO, env=isolated_env(MLFLOW_TRACKING_URI=(folder / "runs").as_uri()))
    assert done.returncode == 0, done.stderr[-3000:]
    return folder


@pytest.fixture(scope="module")
def mixed_service(saved):
    return make_service((saved / "mixed").as_uri() + "/")


def expected(saved: Path, name: str, rows: list[dict]) -> list:
    import pandas as pd

    with open(saved / name / "model.pkl", "rb") as f:
        model = pickle.load(f)
    return model.predict(pd.DataFrame(rows)).tolist()


def ok(response) -> dict:
    body = answer(response)
    assert response.status == 200, body
    return body


def error(response, status: int, code: str, *fragments: str) -> str:
    body = answer(response)
    assert response.status == status, body
    assert body["error"]["code"] == code, body
    for fragment in fragments:
        assert fragment in body["error"]["message"], body["error"]["message"]
    return body["error"]["message"]


def model_info(service) -> dict:
    return answer(service.handle(HttpRequest("GET", "/model")))


ROWS = [PASSENGER, {**PASSENGER, "sex": "female", "pclass": 1, "embarked": "C"}, {**PASSENGER, "age": None}]


def test_the_mixed_pipeline_answers_as_the_model_it_holds(saved, mixed_service):
    body = ok(post_json(mixed_service, {"instances": ROWS}))
    assert body["predictions"] == expected(saved, "mixed", [{**r, "age": r["age"] if r["age"] is not None else float("nan")} for r in ROWS])
    assert body["classes"] == [False, True] and len(body["probabilities"]) == 3
    names = list(PASSENGER)
    split = {"dataframe_split": {"columns": names, "data": [[PASSENGER[n] for n in names]]}}
    assert ok(post_json(mixed_service, split))["probabilities"] == body["probabilities"][:1]


def test_model_route_shows_the_mlflow_model_and_its_signature(saved, mixed_service):
    info = model_info(mixed_service)
    mlmodel = (saved / "mixed" / "MLmodel").read_text()
    assert info["format"] == "mlflow"
    assert info["mlflow"]["serialization_format"] == "cloudpickle" and info["mlflow"]["model_file"] == "model.pkl"
    assert info["mlflow"]["model_uuid"] and f"model_uuid: {info['mlflow']['model_uuid']}" in mlmodel
    assert info["mlflow"]["signature"] is True and "sklearn" in info["mlflow"]["flavors"]
    assert info["sha256"] == _sha256(saved / "mixed" / "model.pkl")
    schema = info["input_schema"]
    assert schema["source"] == "mlflow" and schema["layout"] == "frame"
    by_name = {c["name"]: c for c in schema["columns"]}
    assert [c["name"] for c in schema["columns"]] == list(PASSENGER)
    # the signature's types, the fitted encoder's categories, nullable where either allows it
    assert by_name["pclass"] == {"name": "pclass", "type": "integer", "nullable": True}
    assert by_name["age"] == {"name": "age", "type": "number", "nullable": True}
    assert by_name["sex"]["type"] == "categorical" and by_name["sex"]["categories"] == ["female", "male"]
    assert info["feature_names"] == list(PASSENGER) and info["feature_names_source"] == "model"
    _matches_the_documented_model_info(info)


def _matches_the_documented_model_info(info: dict) -> None:
    from jsonschema import Draft202012Validator
    from referencing import Registry
    from referencing.jsonschema import DRAFT202012

    doc = json.loads((REPO / "core" / "http" / "openapi.json").read_text())
    registry = Registry().with_resource("urn:openapi", DRAFT202012.create_resource(doc))
    Draft202012Validator({"$ref": "urn:openapi#/components/schemas/ModelInfo"}, registry=registry).validate(info)


def test_the_signature_types_the_columns(mixed_service):
    error(post_json(mixed_service, {"instances": [{**PASSENGER, "pclass": 2.5}]}),
          400, "invalid_value", "instances[0].pclass", "expected an integer")
    error(post_json(mixed_service, {"instances": [{**PASSENGER, "sex": 1}]}),
          400, "invalid_value", "instances[0].sex is the number 1")


@pytest.mark.parametrize("form", ["{folder}/", "{folder}", "{folder}/MLmodel"])
def test_a_local_folder_is_named_with_or_without_its_slash_or_by_its_mlmodel(saved, form):
    uri = form.format(folder=(saved / "mixed").as_uri())
    settings = Settings.from_env({"MODEL_URI": uri})
    assert settings.model_format == "mlflow" and settings.model_uri.name == "MLmodel"
    assert ok(post_json(make_service(uri), {"data": PASSENGER}))["predictions"] == [False]


def test_a_remote_location_without_an_extension_or_slash_is_refused_at_start():
    with pytest.raises(SettingsError) as refused:
        Settings.from_env({"MODEL_URI": "s3://bucket/models/titanic"})
    assert "MODEL_URI" in refused.value.message and "ending with '/'" in refused.value.message
    assert Settings.from_env({"MODEL_URI": "s3://bucket/models/titanic/"}).model_format == "mlflow"


def test_model_sha256_pins_the_model_file(saved, tmp_path):
    folder = (saved / "mixed").as_uri() + "/"
    digest = _sha256(saved / "mixed" / "model.pkl")
    assert ok(post_json(make_service(folder, MODEL_SHA256=digest), {"data": PASSENGER}))["predictions"] == [False]
    error(post_json(make_service(folder, MODEL_SHA256="0" * 64), {"data": PASSENGER}),
          503, "model_digest_mismatch", "MODEL_SHA256", "model.pkl", "not loaded")


def test_a_skops_model_is_loaded_with_the_trusted_types_of_the_setting_only(saved):
    folder = (saved / "mixed-skops").as_uri() + "/"
    # MLmodel lists numpy.dtype as trusted; only SKOPS_TRUSTED_TYPES counts
    assert "numpy.dtype" in (saved / "mixed-skops" / "MLmodel").read_text()
    error(post_json(make_service(folder), {"data": PASSENGER}), 503, "model_invalid",
          "not trusted: numpy.dtype", "SKOPS_TRUSTED_TYPES=numpy.dtype")
    service = make_service(folder, SKOPS_TRUSTED_TYPES="numpy.dtype")
    assert ok(post_json(service, {"instances": ROWS}))["predictions"] == ok(
        post_json(make_service((saved / "mixed").as_uri() + "/"), {"instances": ROWS}))["predictions"]
    info = model_info(service)
    assert info["format"] == "mlflow" and info["mlflow"]["serialization_format"] == "skops"
    assert info["input_schema"]["source"] == "mlflow"


def test_a_model_without_an_sklearn_flavour_is_refused_naming_the_flavours(saved):
    message = error(post_json(make_service((saved / "pyfunc-only").as_uri() + "/"), {"data": PASSENGER}),
                    503, "model_invalid", "no sklearn flavor", "python_function", "mlflow.sklearn.save_model")
    assert str(saved) not in message


def test_a_missing_model_file_or_mlmodel_is_503(saved, tmp_path):
    folder = tmp_path / "no-model-file"
    shutil.copytree(saved / "mixed", folder)
    (folder / "model.pkl").unlink()
    error(post_json(make_service(folder.as_uri() + "/"), {"data": PASSENGER}), 503, "model_unavailable", "model.pkl")
    (folder / "MLmodel").unlink()
    message = error(post_json(make_service(folder.as_uri() + "/"), {"data": PASSENGER}),
                    503, "model_unavailable", "no MLmodel file", "file://.../no-model-file/")
    assert str(tmp_path) not in message


def test_a_signature_that_is_not_the_model_s_columns_is_refused_naming_both(saved):
    error(post_json(make_service((saved / "renamed").as_uri() + "/"), {"data": PASSENGER}), 503, "model_invalid",
          'the columns ["age", "price", "pclass", "sex", "embarked"]',
          'fitted on the columns ["age", "fare", "pclass", "sex", "embarked"]')


def test_a_model_fitted_on_arrays_takes_the_signature_s_names(saved):
    service = make_service((saved / "named-by-signature").as_uri() + "/")
    row = {"age": 22.0, "fare": 7.25, "pclass": 3}
    assert ok(post_json(service, {"data": row}))["predictions"] == ok(post_json(service, {"features": [22.0, 7.25, 3]}))["predictions"]
    info = model_info(service)
    assert info["feature_names"] == ["age", "fare", "pclass"] and info["feature_names_source"] == "mlflow"
    schema = info["input_schema"]
    assert schema["layout"] == "array" and [c["type"] for c in schema["columns"]] == ["number", "number", "integer"]
    _matches_the_documented_model_info(info)


def test_a_tensor_signature_gives_the_width(saved):
    service = make_service((saved / "tensor").as_uri() + "/")
    ok(post_json(service, {"features": [22.0, 7.25, 3]}))
    error(post_json(service, {"features": [22.0, 7.25]}), 400, "invalid_features")
    info = model_info(service)
    assert info["input_schema"]["source"] == "mlflow" and info["feature_names_source"] == "generated"
    _matches_the_documented_model_info(info)


def test_a_text_model_keeps_one_text_per_row(saved):
    service = make_service((saved / "text").as_uri() + "/")
    assert ok(post_json(service, {"instances": ["free money now", "see you at lunch"]}))["predictions"] == ["spam", "ham"]
    schema = model_info(service)["input_schema"]
    assert schema == {"layout": "text", "source": "mlflow", "columns": [{"name": "text", "type": "string", "nullable": False}]}


def test_served_by_serverless_ml_serve(saved, tmp_path):
    endpoint = start_endpoint(tmp_path, {"MODEL_URI": (saved / "mixed").as_uri() + "/"})
    try:
        status, _, body = endpoint.post_json({"instances": ROWS})
        assert status == 200, body
        assert json.loads(body)["predictions"] == expected(saved, "mixed", [{**r, "age": r["age"] if r["age"] is not None else float("nan")} for r in ROWS])
        status, _, body = endpoint.request("GET", "/model")
        info = json.loads(body)
        assert status == 200 and info["format"] == "mlflow" and info["input_schema"]["source"] == "mlflow"
    finally:
        stop_endpoint(endpoint)


def test_served_from_s3_on_moto(saved, tmp_path_factory, monkeypatch):
    server = moto_support.start_moto(tmp_path_factory.mktemp("moto-mlflow"), name="moto-mlflow")
    try:
        with moto_support.pointed_at(server, monkeypatch):
            import boto3

            s3 = boto3.session.Session().client("s3")
            bucket = f"mlflow-{uuid.uuid4().hex[:12]}"
            s3.create_bucket(Bucket=bucket)
            for path in (saved / "mixed").iterdir():
                s3.put_object(Bucket=bucket, Key=f"models/titanic/{path.name}", Body=path.read_bytes())
            service = make_service(f"s3://{bucket}/models/titanic/")
            assert ok(post_json(service, {"instances": ROWS}))["predictions"] == ok(
                post_json(make_service((saved / "mixed").as_uri() + "/"), {"instances": ROWS}))["predictions"]
            info = model_info(service)
            assert info["format"] == "mlflow" and info["mlflow"]["serialization_format"] == "cloudpickle"
            assert server.count("GET", f"/{bucket}/models/titanic/MLmodel") >= 1
            missing = make_service(f"s3://{bucket}/models/absent/")
            error(post_json(missing, {"data": PASSENGER}), 503, "model_unavailable",
                  f"no MLmodel file in s3://{bucket}/models/absent/")
    finally:
        moto_support.stop_moto(server)


def run_fresh(code: str, **env: str) -> dict:
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=120, env=isolated_env(**env))
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


SERVE_ONE_ROW = """
import json, sys
from core.http import HttpRequest
from core.runtime import service
body = json.dumps({"data": %s}).encode()
response = service().handle(HttpRequest("POST", "/predict", {"content-type": "application/json"}, body))
print(json.dumps({"status": response.status, "body": json.loads(response.body),
                  "mlflow": sorted(m for m in sys.modules if m.split(".")[0] == "mlflow")}))
""" % json.dumps(PASSENGER)  # noqa: UP031 -- a Python template full of braces


def test_serving_an_mlflow_model_never_imports_mlflow(saved):
    outcome = run_fresh(SERVE_ONE_ROW, MODEL_URI=(saved / "mixed").as_uri() + "/", LOG_LEVEL="ERROR")
    assert outcome["status"] == 200, outcome
    assert outcome["mlflow"] == []


BLOCK = """
import importlib.abc, sys

class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == %r:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)

sys.meta_path.insert(0, Block())
"""


@pytest.mark.parametrize("module, install", [("yaml", "pip install 'serverless-ml[mlflow]'"),
                                             ("cloudpickle", "pip install cloudpickle")])
def test_a_missing_library_is_a_503_naming_what_to_install(saved, module, install):
    outcome = run_fresh(BLOCK % module + SERVE_ONE_ROW, MODEL_URI=(saved / "mixed").as_uri() + "/", LOG_LEVEL="CRITICAL")
    assert outcome["status"] == 503, outcome
    assert outcome["body"]["error"]["code"] == "model_unavailable"
    assert install in outcome["body"]["error"]["message"]


def _sha256(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()
