"""A batch run with a candidate in shadow mode (core/batch/shadow.py) on moto's S3, Azurite and
the GCS emulator: the candidate's predictions are its own model's, the summary's figures are
those scikit-learn gives, a repeated run writes the same bytes, the new outputs' own events are
skipped, and a candidate that cannot load costs the primary nothing.

The primary (HistGradientBoosting, which takes a missing value) and the candidate (a logistic
regression fitted on the columns in reverse order, which takes none) have different input
schemas, so the candidate reads the file a second time, by its own schema; line 9 is refused by
both, line 12 (an empty cell) by the candidate alone.
"""

from __future__ import annotations

import json

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import make_classification
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression

from core.batch.engine import run_batch
from core.batch.triggered import settle_created_object
from core.model import ModelHolder
from core.settings import Settings
from serverless_ml.cli import main
from tests.core.batch.places import Place, open_place
from tests.core.test_imports import run_fresh

KEY = "incoming/day.csv"
OUT = "predictions/incoming/day.csv"
COLUMNS = [f"f{i}" for i in range(6)]
TOLERANCE = 0.1
BOTH_REFUSE, CANDIDATE_REFUSES = 9, 12  # line numbers


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("shadow")
    X, y = make_classification(n_samples=400, n_features=6, random_state=1)
    frame = pd.DataFrame(X, columns=COLUMNS)
    primary = HistGradientBoostingClassifier(max_iter=20, random_state=0).fit(frame, y)
    candidate = LogisticRegression().fit(frame[COLUMNS[::-1]], y)
    joblib.dump(primary, folder / "primary.joblib")
    joblib.dump(candidate, folder / "candidate.joblib")
    rows = frame.iloc[:150].reset_index(drop=True)
    lines = [",".join(COLUMNS)] + [",".join(map(repr, row)) for row in rows.to_numpy().tolist()]
    lines.insert(BOTH_REFUSE - 1, "1,2,three,4,5,6")
    cells = lines[CANDIDATE_REFUSES - 1].split(",")
    lines[CANDIDATE_REFUSES - 1] = ",".join(cells[:2] + [""] + cells[3:])  # f2 missing
    csv = "\n".join(lines) + "\n"
    # the rows the candidate predicts: all but the one the primary refuses; its own predict of them
    line_of = [n + 2 if n < BOTH_REFUSE - 2 else n + 3 for n in range(len(rows))]
    compared = [i for i, line in enumerate(line_of) if line != CANDIDATE_REFUSES]
    return {"folder": folder, "primary": primary, "candidate": candidate, "rows": rows, "csv": csv,
            "line_of": line_of, "compared": compared}


def settings_for(models, candidate_uri: str | None = None, **env: str) -> Settings:
    return Settings.from_env({
        "MODEL_URI": (models["folder"] / "primary.joblib").as_uri(),
        "CANDIDATE_MODEL_URI": candidate_uri or (models["folder"] / "candidate.joblib").as_uri(),
        "CANDIDATE_PROBABILITY_TOLERANCE": str(TOLERANCE), "BATCH_CHUNK_ROWS": "40",
        "STORAGE_TIMEOUT_SECONDS": "5", **env,
    })


def expected_summary(models) -> dict:
    """The comparison computed directly with scikit-learn, over the rows both models take."""
    rows = models["rows"].iloc[models["compared"]]
    lines = [models["line_of"][i] for i in models["compared"]]
    ours, theirs = models["primary"].predict(rows), models["candidate"].predict(rows[COLUMNS[::-1]])
    gaps = np.abs(models["primary"].predict_proba(rows) - models["candidate"].predict_proba(rows[COLUMNS[::-1]])).max(axis=1)
    disagree = (ours != theirs) | (gaps > TOLERANCE)
    return {
        "rows_compared": len(rows), "disagreeing_rows": int(disagree.sum()), "labels_differ": int((ours != theirs).sum()),
        "agreement": pytest.approx(1 - disagree.mean(), abs=1e-6), "max_probability_gap": pytest.approx(gaps.max()),
        "confusion": {(int(a), int(b)): int(((ours == a) & (theirs == b)).sum())
                      for a in (0, 1) for b in (0, 1) if ((ours == a) & (theirs == b)).any()},
        "largest": [lines[i] for i in np.argsort(gaps)[::-1][:10]],
        "first_disagreeing": [lines[i] for i in np.flatnonzero(disagree)[:20]],
    }


def jsonl(data: bytes | None) -> list[dict]:
    assert data is not None, "no such output"
    return [json.loads(line) for line in data.decode().splitlines()]


def _recorded(metadata: dict[str, str]) -> dict[str, str]:
    return {name.replace("_", "-"): value for name, value in metadata.items()}  # Azure's names use "_"


@pytest.fixture(params=["s3-versioned", "azure", "gcs"])
def place(request, monkeypatch) -> Place:
    return open_place(request.param, request, monkeypatch)


def test_shadow_writes_the_candidates_predictions_and_a_summary_beside_the_predictions(place, models):
    version = place.put(KEY, models["csv"])
    settings = settings_for(models)
    result = run_batch(place.uri(KEY), ModelHolder(settings), settings, version=version)

    # the primary's run is what it is without a candidate: line 12 predicted, line 9 refused
    assert (result.rows_read, result.rows_predicted, result.rows_failed) == (151, 150, 1)
    assert result.candidate_uri == str(place.uri(OUT + ".candidate.jsonl"))
    assert result.summary_uri == str(place.uri(OUT + ".candidate-summary.json"))
    assert CANDIDATE_REFUSES in [row["line"] for row in jsonl(place.get(OUT + ".predictions.jsonl"))]

    # the candidate's lines are its own model's answers for the rows it takes, in the same format
    candidate_lines = jsonl(place.get(OUT + ".candidate.jsonl"))
    taken = models["rows"].iloc[models["compared"]][COLUMNS[::-1]]
    assert [row["line"] for row in candidate_lines] == [models["line_of"][i] for i in models["compared"]]
    assert [row["prediction"] for row in candidate_lines] == models["candidate"].predict(taken).tolist()
    probabilities = np.array([[row["probabilities"]["0"], row["probabilities"]["1"]] for row in candidate_lines])
    np.testing.assert_allclose(probabilities, models["candidate"].predict_proba(taken), rtol=0, atol=1e-12)

    summary = json.loads(place.get(OUT + ".candidate-summary.json"))
    want = expected_summary(models)
    assert (summary["mode"], summary["candidate"], summary["error"]) == ("shadow", "compared", None)
    assert summary["candidate_version"] == result.shadow["candidate_version"] != summary["primary_version"]
    assert (summary["lines_read"], summary["refused_by_primary"], summary["refused_by_candidate"]) == (151, 1, 1)
    for name in ("rows_compared", "disagreeing_rows", "labels_differ", "agreement", "max_probability_gap"):
        assert summary[name] == want[name], name
    assert summary["probability_tolerance"] == TOLERANCE
    assert {(c["primary"], c["candidate"]): c["rows"] for c in summary["label_confusion"]} == want["confusion"]
    assert [d["line"] for d in summary["largest_differences"]] == want["largest"]
    assert summary["first_disagreeing_lines"] == want["first_disagreeing"]
    assert summary["input_version"] == version.describe()

    # published as the predictions are: the input's version in the metadata
    for suffix in (".candidate.jsonl", ".candidate-summary.json"):
        assert _recorded(place.metadata(OUT + suffix)) == _recorded(version.metadata())

    # a repeated event: the same bytes in all four outputs
    outputs = {key: place.get(key) for key in place.keys() if key.startswith("predictions/")}
    assert len(outputs) == 4
    again = run_batch(place.uri(KEY), ModelHolder(settings), settings, version=version)
    assert again.shadow == result.shadow
    assert {key: place.get(key) for key in place.keys() if key.startswith("predictions/")} == outputs

    # the new outputs' own storage events stop at the loop guard
    for suffix in (".candidate.jsonl", ".candidate-summary.json"):
        settled = settle_created_object(place.uri(OUT + suffix), ModelHolder(settings), settings)
        assert settled.status == "skipped"
        assert settled.reason.endswith("is named like a batch shadow output (.candidate.jsonl or "
                                       ".candidate-summary.json); outputs are never inputs")
    assert {key: place.get(key) for key in place.keys() if key.startswith("predictions/")} == outputs


def test_a_candidate_that_cannot_load_leaves_the_primarys_outputs_and_says_why(request, monkeypatch, models):
    place = open_place("s3-versioned", request, monkeypatch)
    version = place.put(KEY, models["csv"])
    good = settings_for(models)
    run_batch(place.uri(KEY), ModelHolder(good), good, version=version)
    predictions = place.get(OUT + ".predictions.jsonl")

    missing = settings_for(models, (models["folder"] / "gone.joblib").as_uri())
    result = run_batch(place.uri(KEY), ModelHolder(missing), missing, version=version)

    assert (result.rows_predicted, result.candidate_uri) == (150, None)
    assert place.get(OUT + ".predictions.jsonl") == predictions
    assert place.get(OUT + ".candidate.jsonl") is None  # the earlier candidate's lines are not left beside them
    summary = json.loads(place.get(OUT + ".candidate-summary.json"))
    assert (summary["candidate"], summary["error"]["code"], summary["rows_compared"], summary["agreement"]) == (
        "load_failed", "model_unavailable", 0, None)
    assert "gone.joblib" in summary["error"]["message"]
    assert _recorded(place.metadata(OUT + ".candidate-summary.json")) == _recorded(version.metadata())


def test_the_command_shows_the_shadow_and_canary_runs_the_primary_alone(tmp_path, monkeypatch, models, capsys):
    for name in ("CANDIDATE_MODEL_URI", "CANDIDATE_MODE", "CANDIDATE_PERCENT", "BATCH_OUTPUT_URI"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("BATCH_CHUNK_ROWS", "40")
    (tmp_path / "day.csv").write_text(models["csv"])
    primary, candidate = str(models["folder"] / "primary.joblib"), str(models["folder"] / "candidate.joblib")

    status = main(["batch", str(tmp_path / "day.csv"), str(tmp_path / "out"), "--model", primary, "--candidate", candidate])
    printed = capsys.readouterr()
    shown = json.loads(printed.out)
    assert status == 1  # the primary's line 9: the exit status is the primary's
    assert shown["shadow"]["candidate"] == "compared" and shown["shadow"]["rows_compared"] == 149
    assert f"% of 149 rows compared; see {(tmp_path / 'out' / 'day.csv.candidate-summary.json').as_uri()}" in printed.err
    assert (tmp_path / "out" / "day.csv.candidate.jsonl").is_file()

    status = main(["batch", str(tmp_path / "day.csv"), str(tmp_path / "gone"), "--model", primary,
                   "--candidate", str(models["folder"] / "nope.joblib")])
    printed = capsys.readouterr()
    assert status == 1 and "shadow: the candidate could not be loaded: " in printed.err and "nope.joblib" in printed.err
    assert sorted(p.name for p in (tmp_path / "gone").iterdir()) == [
        "day.csv.candidate-summary.json", "day.csv.errors.jsonl", "day.csv.predictions.jsonl"]

    monkeypatch.setenv("CANDIDATE_MODEL_URI", models["folder"].joinpath("candidate.joblib").as_uri())
    monkeypatch.setenv("CANDIDATE_MODE", "canary")
    monkeypatch.setenv("CANDIDATE_PERCENT", "50")
    status = main(["batch", str(tmp_path / "day.csv"), str(tmp_path / "canary"), "--model", primary])
    assert status == 1 and json.loads(capsys.readouterr().out)["shadow"] is None
    assert sorted(p.name for p in (tmp_path / "canary").iterdir()) == ["day.csv.errors.jsonl", "day.csv.predictions.jsonl"]


def test_fanning_out_a_shadow_run_is_refused_naming_the_way_out(tmp_path, monkeypatch, models, capsys):
    monkeypatch.setenv("BATCH_FANOUT_PART_BYTES", "4096")
    (tmp_path / "day.csv").write_text(models["csv"])
    status = main(["batch", str(tmp_path / "day.csv"), str(tmp_path / "out"), "--workers", "2",
                   "--model", str(models["folder"] / "primary.joblib"),
                   "--candidate", str(models["folder"] / "candidate.joblib")])
    assert status == 2
    assert "CANDIDATE_MODE=shadow: file://.../day.csv" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_a_run_without_a_candidate_imports_none_of_it(tmp_path, demo_model_uri):
    (tmp_path / "day.csv").write_text("sepal_length,sepal_width,petal_length,petal_width\n5.1,3.5,1.4,0.2\n")
    loaded = run_fresh(
        f"""
        import json, sys
        from core.batch.engine import run_batch
        from core.model import ModelHolder
        from core.settings import Settings
        settings = Settings.from_env({{"MODEL_URI": {demo_model_uri!r}, "LOG_LEVEL": "ERROR"}})
        result = run_batch({(tmp_path / "day.csv").as_uri()!r}, ModelHolder(settings), settings)
        print(json.dumps([result.rows_predicted, result.shadow, sorted(
            m for m in ("core.rollout", "core.batch.shadow", "core.batch.compare") if m in sys.modules)]))
        """
    )
    assert loaded == [1, None, []]


def test_a_candidate_with_the_primarys_schema_takes_its_parsed_rows(batch, demo_model_uri):
    """The same model as its own candidate: the rows are parsed once and shared, every row agrees,
    and the candidate's file is the predictions file, byte for byte."""
    path = batch.write("day.csv", "sepal_length,sepal_width,petal_length,petal_width\n5.1,3.5,1.4,0.2\n"
                       "6.7,3.0,5.2,2.3\n5.9,x,4.2,1.5\n6.3,2.9,5.6,1.8\n")
    result = batch.run(path, CANDIDATE_MODEL_URI=demo_model_uri, BATCH_CHUNK_ROWS="2")
    out = path.parent / "predictions"
    assert result.shadow == {"candidate": "compared", "candidate_version": result.shadow["candidate_version"],
                             "rows_compared": 3, "agreement": 1.0, "error": None}
    assert (out / "day.csv.candidate.jsonl").read_bytes() == (out / "day.csv.predictions.jsonl").read_bytes()
    summary = json.loads((out / "day.csv.candidate-summary.json").read_text())
    assert (summary["refused_by_primary"], summary["max_probability_gap"], summary["input_version"]) == (1, 0.0, None)


def test_a_newer_version_published_while_a_shadow_run_was_writing_keeps_its_shadow_outputs(
        request, monkeypatch, demo_model_uri):
    """v2's run publishes between v1's look and v1's writes: v1's conditional write of the
    candidate's lines fails, it looks again, is superseded, and takes back what it wrote."""
    from core.storage import store_for
    from tests.core.batch.test_versions import V1, V2, Interleaved

    place = open_place("s3-versioned", request, monkeypatch)
    settings = Settings.from_env({"MODEL_URI": demo_model_uri, "CANDIDATE_MODEL_URI": demo_model_uri,
                                  "STORAGE_TIMEOUT_SECONDS": "5"})
    v1 = place.put(KEY, V1)
    newer = {}

    def another_run() -> None:
        newer["v2"] = place.put(KEY, V2)
        assert run_batch(place.uri(KEY), ModelHolder(settings), settings, version=newer["v2"]).skipped is None

    def racing(uri, timeout):
        store = store_for(uri, timeout)
        return Interleaved(store, place.uri(KEY), another_run) if uri == place.uri(KEY) else store

    result = run_batch(place.uri(KEY), ModelHolder(settings), settings, version=v1, store_for=racing)

    assert result.skipped.startswith("superseded: ")
    assert place.get(OUT + ".errors.jsonl") is None  # v1's errors file, taken back
    assert [row["line"] for row in jsonl(place.get(OUT + ".candidate.jsonl"))] == [2, 3, 4]  # v2's three rows
    assert json.loads(place.get(OUT + ".candidate-summary.json"))["input_version"] == newer["v2"].describe()
    for suffix in (".predictions.jsonl", ".candidate.jsonl", ".candidate-summary.json"):
        assert _recorded(place.metadata(OUT + suffix)) == _recorded(newer["v2"].metadata())
