"""While batch predicts, a scikit-learn model's native pools use the cores the writer process
leaves (BATCH_MODEL_THREADS), and go back to their own count afterwards."""

from __future__ import annotations

import os

import pytest
from threadpoolctl import threadpool_info

from core.batch.model_threads import automatic_threads, model_thread_limit
from core.errors import SettingsError
from core.settings import Settings

URI = "file:///m.joblib"


def openmp_threads() -> list[int]:
    import sklearn.ensemble  # noqa: F401  # loads scikit-learn's OpenMP runtime

    return [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "openmp"]


def test_the_limit_holds_inside_and_is_lifted_after():
    before = openmp_threads()
    assert before, "scikit-learn's OpenMP runtime is not loaded"
    with model_thread_limit(1):
        assert openmp_threads() == [1] * len(before)
    assert openmp_threads() == before


def test_automatic_leaves_one_core_to_the_writer_and_never_goes_below_one():
    assert automatic_threads() == max(1, len(os.sched_getaffinity(0)) - 1)
    with model_thread_limit(0):
        assert set(openmp_threads()) == {automatic_threads()}


def test_the_setting_is_read_and_checked():
    assert Settings.from_env({"MODEL_URI": URI}).batch_model_threads == 0
    assert Settings.from_env({"MODEL_URI": URI, "BATCH_MODEL_THREADS": "3"}).batch_model_threads == 3
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({"MODEL_URI": URI, "BATCH_MODEL_THREADS": "-1"})
    assert caught.value.message == "BATCH_MODEL_THREADS='-1' is not allowed; expected an integer from 0 to 1024"
