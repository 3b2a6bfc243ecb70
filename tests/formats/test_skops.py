"""skops files: only the types skops trusts and SKOPS_TRUSTED_TYPES lists are loaded."""

from __future__ import annotations

import sys

import pytest

from core.errors import SettingsError
from core.settings import Settings
from tests.support import answer, make_service, post_json

ROW = {"features": [5.1, 3.5, 1.4, 0.2]}


def test_a_file_with_an_untrusted_type_is_refused_listing_it(formats_dir):
    response = post_json(make_service((formats_dir / "iris.skops").as_uri()), ROW)
    assert response.status == 503
    error = answer(response)["error"]
    assert error["code"] == "model_invalid"
    assert "holds types that are not trusted: sklearn.tree._tree.Tree" in error["message"]
    assert "SKOPS_TRUSTED_TYPES" in error["message"]


def test_trusted_types_from_the_setting_load_it_with_the_same_answers(formats_dir):
    rows = {"instances": [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3], [5.9, 3.0, 4.2, 1.5]]}
    skops = make_service((formats_dir / "iris.skops").as_uri(), SKOPS_TRUSTED_TYPES="sklearn.tree._tree.Tree")
    expected = answer(post_json(make_service((formats_dir / "iris.joblib").as_uri()), rows))
    got = answer(post_json(skops, rows))
    assert {k: got[k] for k in ("predictions", "probabilities", "classes")} == {
        k: expected[k] for k in ("predictions", "probabilities", "classes")}
    from core.http import HttpRequest

    info = answer(skops.handle(HttpRequest("GET", "/model")))
    assert info["format"] == "skops" and info["manifest"]["format"] == "skops"
    assert info["manifest"]["skops_untrusted_types"] == ["sklearn.tree._tree.Tree"]


def test_a_user_defined_type_is_refused_even_when_importable(tmp_path, monkeypatch):
    """The file's own class is never trusted by default; its module is never imported for it."""
    import skops.io as sio
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    (tmp_path / "shady_steps.py").write_text(
        "import numpy as np\nfrom sklearn.base import BaseEstimator, TransformerMixin\n"
        "class Doubler(TransformerMixin, BaseEstimator):\n"
        "    def fit(self, X, y=None): return self\n"
        "    def transform(self, X): return np.asarray(X) * 2\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    from shady_steps import Doubler

    X = [[0.0, 1.0], [1.0, 0.0], [0.2, 0.9], [0.8, 0.1]]
    path = tmp_path / "pipeline.skops"
    sio.dump(make_pipeline(Doubler(), LogisticRegression()).fit(X, [0, 1, 0, 1]), path)
    monkeypatch.delitem(sys.modules, "shady_steps")

    error = answer(post_json(make_service(path.as_uri()), {"features": [0.5, 0.5]}))["error"]
    assert "not trusted: shady_steps.Doubler" in error["message"]
    assert "shady_steps" not in sys.modules
    trusted = make_service(path.as_uri(), SKOPS_TRUSTED_TYPES="shady_steps.Doubler")
    assert post_json(trusted, {"features": [0.5, 0.5]}).status == 200


@pytest.mark.parametrize("value", ["*", "true", "all", "sklearn.tree._tree.Tree, *", "Tree"])
def test_trusting_everything_is_not_a_setting(value):
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({"MODEL_URI": "file:///srv/model.skops", "SKOPS_TRUSTED_TYPES": value})
    assert caught.value.message.startswith("SKOPS_TRUSTED_TYPES contains")
    assert "fully-qualified type names" in caught.value.message


def test_a_file_that_is_not_a_skops_file_is_503(tmp_path):
    path = tmp_path / "model.skops"
    path.write_bytes(b"not a zip")
    error = answer(post_json(make_service(path.as_uri()), ROW))["error"]
    assert error["code"] == "model_invalid"
    assert "could not be read as a skops file" in error["message"]
