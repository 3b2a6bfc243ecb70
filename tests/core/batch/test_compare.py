"""`serverless-ml compare`: two models trained here over a batch file; its figures equal those
computed directly with scikit-learn; its exit status gates on --min-agreement."""

from __future__ import annotations

import json

import joblib
import numpy as np
import pytest
from sklearn.datasets import make_classification
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression

from serverless_ml.cli import main


@pytest.fixture(scope="module")
def two_models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("compare")
    X, y = make_classification(n_samples=600, n_features=6, random_state=0)
    forest = RandomForestClassifier(n_estimators=20, random_state=0).fit(X, y)
    logistic = LogisticRegression().fit(X, y)
    joblib.dump(forest, folder / "forest.joblib")
    joblib.dump(logistic, folder / "logistic.joblib")
    rows = X[:250]
    lines = ["f0,f1,f2,f3,f4,f5"] + [",".join(map(repr, row.tolist())) for row in rows]
    lines.insert(8, "1,2,three,4,5,6")  # line 9: refused by both, never compared
    (folder / "rows.csv").write_text("\n".join(lines) + "\n")
    return folder, forest, logistic, rows


def test_compare_reports_what_scikit_learn_computes(two_models, capsys):
    folder, forest, logistic, rows = two_models
    status = main(["compare", "--primary", str(folder / "forest.joblib"), "--candidate", str(folder / "logistic.joblib"),
                   str(folder / "rows.csv"), "--tolerance", "0.2", "--min-agreement", "0.5", "--json"])
    figures = json.loads(capsys.readouterr().out)

    ours, theirs = forest.predict(rows), logistic.predict(rows)
    gaps = np.abs(forest.predict_proba(rows) - logistic.predict_proba(rows)).max(axis=1)
    disagree = (ours != theirs) | (gaps > 0.2)
    line_of = [n + 2 if n < 7 else n + 3 for n in range(len(rows))]  # line 9 is the refused one
    assert (figures["rows_compared"], figures["lines_read"], figures["refused_by_primary"]) == (250, 251, 1)
    assert figures["disagreeing_rows"] == int(disagree.sum()) > 0
    assert figures["agreement"] == pytest.approx(1 - disagree.mean(), abs=1e-6)
    assert figures["labels_differ"] == int((ours != theirs).sum())
    assert figures["max_probability_gap"] == pytest.approx(gaps.max())
    confusion = {(c["primary"], c["candidate"]): c["rows"] for c in figures["label_confusion"]}
    assert confusion == {(a, b): int(((ours == a) & (theirs == b)).sum()) for a in (0, 1) for b in (0, 1)
                         if ((ours == a) & (theirs == b)).any()}
    top = np.argsort(gaps)[::-1][:10]
    assert [d["line"] for d in figures["largest_differences"]] == [line_of[i] for i in top]
    assert figures["first_disagreeing_lines"] == [line_of[i] for i in np.flatnonzero(disagree)[:20]]
    assert status == (0 if 1 - disagree.mean() >= 0.5 else 1)


def test_compare_fails_below_the_minimum_and_says_so(two_models, capsys):
    folder, *_ = two_models
    status = main(["compare", "--primary", str(folder / "forest.joblib"), "--candidate", str(folder / "logistic.joblib"),
                   str(folder / "rows.csv"), "--tolerance", "0", "--min-agreement", "1"])
    out = capsys.readouterr().out
    assert status == 1
    assert "FAILED" in out and "label confusion" in out
    same = main(["compare", "--primary", str(folder / "forest.joblib"), "--candidate", str(folder / "forest.joblib"),
                 str(folder / "rows.csv"), "--min-agreement", "1"])
    assert same == 0 and "agreement: 100.0000%" in capsys.readouterr().out


def test_compare_with_a_missing_model_exits_2_naming_it(two_models, capsys):
    folder, *_ = two_models
    status = main(["compare", "--primary", str(folder / "forest.joblib"), "--candidate", str(folder / "nope.joblib"),
                   str(folder / "rows.csv")])
    assert status == 2
    assert "nope.joblib" in capsys.readouterr().err
