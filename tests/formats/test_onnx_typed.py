"""DataFrame and text pipelines exported to ONNX (`serverless-ml export --to onnx` and
`serverless_ml.save_model`): one typed input per column, checked against scikit-learn before they
are written, served through the service with scikit-learn's answers, in a process that cannot
import scikit-learn, SciPy or pandas."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from tests.formats.format_support import export
from tests.formats.test_onnx import BLOCK, run_fresh
from tests.support import answer, make_service, post_json
from tests.typed_models import PASSENGER, TEXTS

ROWS = [
    PASSENGER,
    {**PASSENGER, "sex": "female", "pclass": 1, "embarked": "C"},
    {**PASSENGER, "age": None, "fare": 80.0, "pclass": 2},  # imputed
    {**PASSENGER, "embarked": "X"},  # a port the encoder never saw: ignored, as scikit-learn does
    {**PASSENGER, "sex": None, "embarked": None, "age": 4.0},  # missing categories: unknown, ignored
]
QUESTIONS = ["free money now", "Win CASH prizes, today!", "see you at lunch", "meeting moved to friday", "nothing known"]
BODIES = {"mixed": {"instances": ROWS}, "text": {"instances": QUESTIONS}}
BLOCKED = ("sklearn", "scipy", "pandas")


@pytest.fixture(scope="module")
def exported(typed_models, tmp_path_factory):
    """mixed, text (and the rest) as .joblib with their .onnx exports beside them."""
    folder = tmp_path_factory.mktemp("typed-onnx")
    reports = {}
    for name in ("mixed", "text"):
        shutil.copy(typed_models[name], folder / f"{name}.joblib")
        done = export(folder / f"{name}.joblib", "onnx")
        assert done.returncode == 0, done.stderr
        reports[name] = json.loads(done.stdout)
    return folder, reports


def scikit_learn_answer(path, body) -> dict:
    import joblib
    import pandas as pd

    model = joblib.load(path)
    rows = body["instances"]
    X = rows if isinstance(rows[0], str) else pd.DataFrame(rows).astype({"sex": object, "embarked": object})
    return {"predictions": model.predict(X).tolist(), "probabilities": model.predict_proba(X),
            "classes": model.classes_.tolist()}


def assert_same(got: dict, expected: dict) -> None:
    assert got["predictions"] == expected["predictions"]
    assert got["classes"] == expected["classes"]
    np.testing.assert_allclose(got["probabilities"], expected["probabilities"], rtol=0, atol=1e-5)


def test_export_writes_one_typed_input_per_column_and_the_schema(exported):
    import onnxruntime as ort

    folder, reports = exported
    for name in ("mixed", "text"):
        check = reports[name]["check"]
        assert check["generated_rows"] == check["same_labels"] == 64 and check["max_probability_difference"] <= 1e-5
    session = ort.InferenceSession(str(folder / "mixed.onnx"), providers=["CPUExecutionProvider"])
    assert [(i.name, i.type, i.shape) for i in session.get_inputs()] == [
        ("age", "tensor(float)", [None, 1]), ("fare", "tensor(float)", [None, 1]), ("pclass", "tensor(float)", [None, 1]),
        ("sex", "tensor(string)", [None, 1]), ("embarked", "tensor(string)", [None, 1])]
    manifest = json.loads((folder / "mixed.onnx.manifest.json").read_text())
    joblib_schema = answer(make_service((folder / "mixed.joblib").as_uri()).handle(_get("/model")))["input_schema"]
    assert manifest["input_schema"] == {k: v for k, v in joblib_schema.items() if k != "source"}
    assert manifest["classes"] == [False, True]
    text_manifest = json.loads((folder / "text.onnx.manifest.json").read_text())
    assert text_manifest["input_schema"] == {"layout": "text", "columns": [{"name": "text", "type": "string", "nullable": False}]}


def test_the_text_graph_asks_for_a_locale_every_machine_has(exported):
    import onnx

    graph = onnx.load(str(exported[0] / "text.onnx")).graph
    (normalizer,) = [node for node in graph.node if node.op_type == "StringNormalizer"]
    assert {a.name: a.s for a in normalizer.attribute if a.name == "locale"} == {"locale": b"C"}


@pytest.mark.parametrize("name", ["mixed", "text"])
def test_served_onnx_answers_what_scikit_learn_answers(exported, name):
    folder, _ = exported
    got = answer(post_json(make_service((folder / f"{name}.onnx").as_uri()), BODIES[name]))
    assert_same(got, scikit_learn_answer(folder / f"{name}.joblib", BODIES[name]))
    # and what the same service answers from the .joblib
    from_joblib = answer(post_json(make_service((folder / f"{name}.joblib").as_uri()), BODIES[name]))
    assert_same(got, from_joblib)


def test_boolean_classes_come_back_as_booleans(exported):
    folder, _ = exported
    service = make_service((folder / "mixed.onnx").as_uri())
    got = answer(post_json(service, {"data": PASSENGER}))
    assert got["predictions"] == [False] and got["classes"] == [False, True]
    info = answer(service.handle(_get("/model")))
    assert info["classes"] == [False, True] and info["format"] == "onnx"
    assert info["input_schema"]["source"] == "manifest" and info["input_schema"]["layout"] == "frame"


def test_values_are_checked_by_the_manifest_schema(exported):
    folder, _ = exported
    service = make_service((folder / "mixed.onnx").as_uri())
    response = post_json(service, {"instances": [PASSENGER, {**PASSENGER, "sex": 1}]})
    assert response.status == 400
    assert answer(response)["error"]["message"].startswith("instances[1].sex is the number 1; expected a string")


def test_without_a_manifest_the_schema_comes_from_the_graph(exported, tmp_path):
    folder, _ = exported
    shutil.copy(folder / "mixed.onnx", tmp_path / "bare.onnx")
    service = make_service((tmp_path / "bare.onnx").as_uri())
    schema = answer(service.handle(_get("/model")))["input_schema"]
    assert schema["layout"] == "frame" and schema["source"] == "model"
    assert [(c["name"], c["type"], c["nullable"]) for c in schema["columns"]] == [
        ("age", "number", False), ("fare", "number", False), ("pclass", "number", False),
        ("sex", "string", False), ("embarked", "string", False)]
    complete = {"instances": ROWS[:2]}
    got = answer(post_json(service, complete))
    assert got["predictions"] == [0, 1]  # int64 labels: no manifest says they were booleans
    np.testing.assert_allclose(got["probabilities"], scikit_learn_answer(folder / "mixed.joblib", complete)["probabilities"], atol=1e-5)
    refused = post_json(service, {"instances": [ROWS[2]]})
    assert refused.status == 400 and "instances[0].age is null" in answer(refused)["error"]["message"]


def test_served_in_a_process_that_cannot_import_scikit_learn_scipy_or_pandas(exported):
    folder, _ = exported
    expected = {name: scikit_learn_answer(folder / f"{name}.joblib", BODIES[name]) for name in ("mixed", "text")}
    block = "".join(BLOCK.format(module=module) for module in BLOCKED)
    for name in ("mixed", "text"):
        outcome = run_fresh(
            block + """
import json, sys
from core.http import HttpRequest
from core.runtime import service
body = json.dumps(%r).encode()
response = service().handle(HttpRequest("POST", "/predict", {"content-type": "application/json"}, body))
print(json.dumps({"status": response.status, "body": json.loads(response.body),
                  "loaded": sorted(m for m in ("sklearn", "scipy", "pandas", "joblib") if m in sys.modules)}))
""" % (BODIES[name],),  # noqa: UP031 -- a Python template full of braces
            MODEL_URI=(folder / f"{name}.onnx").as_uri(), LOG_LEVEL="ERROR",
        )
        assert outcome["status"] == 200, outcome
        assert outcome["loaded"] == []
        assert_same(outcome["body"], expected[name])


def test_the_text_model_starts_in_a_bare_environment(exported):
    """No LANG, no LC_*: what a function runtime may give; the graph must not need a locale."""
    import os

    done = run_fresh(
        """
import json
from core.http import HttpRequest
from core.runtime import service
body = json.dumps({"instances": ["free money now"]}).encode()
response = service().handle(HttpRequest("POST", "/predict", {"content-type": "application/json"}, body))
print(json.dumps({"status": response.status, "body": json.loads(response.body)}))
""",
        MODEL_URI=(exported[0] / "text.onnx").as_uri(), LOG_LEVEL="ERROR",
        **{k: "" for k in os.environ if k == "LANG" or k.startswith("LC_")},
    )
    assert done["status"] == 200 and done["body"]["predictions"] == ["spam"]


def test_hgb_with_categorical_features_is_refused_naming_the_step(typed_models, tmp_path):
    shutil.copy(typed_models["hgb"], tmp_path / "hgb.joblib")
    done = export(tmp_path / "hgb.joblib", "onnx")
    assert done.returncode == 2
    assert "skl2onnx cannot convert the model (HistGradientBoostingClassifier)" in done.stderr
    assert "categorical features" in done.stderr and "serve the .joblib or .skops file" in done.stderr
    assert "Traceback" not in done.stderr and not (tmp_path / "hgb.onnx").exists()


def test_inside_a_pipeline_the_refusal_names_the_step():
    from sklearn.pipeline import Pipeline

    import serverless_ml
    from tests.typed_models import hgb

    with pytest.raises(serverless_ml.ExportRefused, match=r"step 'classify' \(HistGradientBoostingClassifier\)"):
        serverless_ml.save_model(Pipeline([("classify", hgb())]), "unused.onnx")


def test_a_model_the_graph_answers_differently_is_not_written(tmp_path):
    """skl2onnx's tokenizer reads ASCII words only: 'café' is not the word scikit-learn learnt."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    import serverless_ml

    texts = ["un café au lait", "café crème", "le thé vert", "thé noir fort"] * 5
    model = make_pipeline(TfidfVectorizer(), LogisticRegression()).fit(texts, ["café", "café", "thé", "thé"] * 5)
    with pytest.raises(serverless_ml.ExportRefused) as refused:
        serverless_ml.save_model(model, tmp_path / "drinks.onnx", sample=texts[:4])
    message = refused.value.message
    assert "answers differently from scikit-learn on 4 row(s) of the sample (rows 0, 1, 2, 3;" in message
    assert "at most 1e-05 allowed" in message and "not written" in message
    assert list(tmp_path.iterdir()) == []


def test_the_checker_names_the_rows_that_differ():
    from serverless_ml.onnx_export import disagreeing

    labels = np.array([True, False, True, False])
    probabilities = np.array([[0.2, 0.8], [0.9, 0.1], [0.5, 0.5], [0.7, 0.3]])
    onnx_labels = np.array([1, 0, 0, 1])  # row 2 is a tie: either label; row 3 differs
    onnx_probabilities = probabilities + np.array([[0, 0], [2e-5, -2e-5], [0, 0], [0, 0]])  # row 1 too far
    assert disagreeing(labels, probabilities, onnx_labels.astype(bool), onnx_probabilities, True) == [1, 3]
    assert disagreeing(np.array([1.0, 2.0]), None, np.array([[1.000001], [2.1]]), None, False) == [1]


def test_save_model_refines_the_schema_from_the_sample_and_serves_it(tmp_path):
    import pandas as pd

    import serverless_ml
    from tests.typed_models import mixed, passengers

    frame, _ = passengers()
    frame["embarked"] = frame["embarked"].astype("category")
    model = mixed()
    saved = {ext: serverless_ml.save_model(model, tmp_path / f"titanic.{ext}", sample=frame, model_version="2026-12")
             for ext in ("onnx", "joblib")}
    onnx = saved["onnx"]
    assert onnx.report["check"]["sample_rows"] == onnx.report["check"]["same_labels"] == 300
    columns = {c["name"]: c for c in onnx.manifest["input_schema"]["columns"]}
    assert columns["pclass"] == {"name": "pclass", "type": "integer", "nullable": True}  # int64 in the frame, imputed
    assert columns["age"]["nullable"] and columns["sex"]["categories"] == ["female", "male"]
    assert onnx.manifest["model_version"] == "2026-12" and onnx.manifest_path.is_file()
    assert saved["joblib"].manifest["input_schema"] == onnx.manifest["input_schema"]

    body = {"instances": ROWS}
    answers = {ext: answer(post_json(make_service((tmp_path / f"titanic.{ext}").as_uri()), body)) for ext in saved}
    assert_same(answers["onnx"], answers["joblib"])
    expected = model.predict_proba(pd.DataFrame(ROWS).astype({"sex": object, "embarked": object}))
    np.testing.assert_allclose(answers["onnx"]["probabilities"], expected, atol=1e-5)
    refused = post_json(make_service((tmp_path / "titanic.onnx").as_uri()), {"data": {**PASSENGER, "pclass": 2.5}})
    assert refused.status == 400 and "data.pclass is the number 2.5; expected an integer" in answer(refused)["error"]["message"]


def test_save_model_of_a_text_model_takes_its_texts_as_the_sample(tmp_path):
    import serverless_ml
    from tests.typed_models import text

    saved = serverless_ml.save_model(text(), tmp_path / "spam.onnx", sample=TEXTS + [None])
    # the sample has a missing text, but scikit-learn's vectoriser cannot take one: neither does the ONNX model
    assert saved.report["check"] == {"sample_rows": 4, "same_labels": 4, "max_probability_difference": pytest.approx(0, abs=1e-5),
                                     "missing_values_refused": ["text"], "left_out_rows": 1}
    assert saved.manifest["input_schema"] == {"layout": "text", "columns": [{"name": "text", "type": "string", "nullable": False}]}
    got = answer(post_json(make_service((tmp_path / "spam.onnx").as_uri()), {"instances": QUESTIONS}))
    assert got["predictions"][:4] == ["spam", "spam", "ham", "ham"]


def _get(path):
    from core.http import HttpRequest

    return HttpRequest("GET", path)
