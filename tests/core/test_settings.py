"""Settings: safe defaults, and a wrong value fails at start naming the variable, the value and
what is allowed."""

from __future__ import annotations

import pytest

from core.errors import SettingsError
from core.settings import DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_ROWS, Settings

URI = "file:///srv/models/model.joblib"


def test_defaults():
    settings = Settings.from_env({"MODEL_URI": URI})
    assert settings.model_uri.key == "/srv/models/model.joblib"
    assert settings.model_sha256 is None
    assert settings.max_rows == DEFAULT_MAX_ROWS == 10_000
    assert settings.max_body_bytes == DEFAULT_MAX_BODY_BYTES == 6 * 1024 * 1024
    assert settings.cors_allow_origins == ()
    assert settings.log_level == "INFO"
    assert settings.preload_model is False
    assert settings.storage_timeout_seconds == 10.0


def test_values_are_read():
    settings = Settings.from_env(
        {
            "MODEL_URI": URI,
            "MODEL_SHA256": "AB" * 32,
            "MODEL_VERSION": "v7",
            "MAX_ROWS": "1_000",
            "MAX_BODY_BYTES": "65536",
            "CORS_ALLOW_ORIGINS": "https://a.example.com, http://localhost:3000/",
            "LOG_LEVEL": "debug",
            "PRELOAD_MODEL": "Yes",
        }
    )
    assert settings.model_sha256 == "ab" * 32
    assert settings.model_version == "v7"
    assert settings.max_rows == 1000
    assert settings.max_body_bytes == 65536
    assert settings.cors_allow_origins == ("https://a.example.com", "http://localhost:3000")
    assert settings.log_level == "DEBUG"
    assert settings.preload_model is True


@pytest.mark.parametrize(
    "env, fragments",
    [
        ({}, ("MODEL_URI is not set", "file:///abs/path/model.joblib")),
        ({"MODEL_URI": "model.joblib"}, ("MODEL_URI='model.joblib'", "no scheme", "file://")),
        ({"MODEL_URI": "file://model.joblib"}, ("MODEL_URI=", "absolute path")),
        # (file:///srv/models/ names an MLflow model directory: tests/formats/test_mlflow.py)
        ({"MODEL_URI": "s3://bucket/models/titanic"}, ("MODEL_URI=", "an MLflow model directory, ending with '/'")),
        ({"MODEL_URI": "ftp://host/model.joblib"}, ("scheme 'ftp'", "expected one of file://, s3://, gs://, az://")),
        ({"MODEL_URI": URI, "STORAGE_TIMEOUT_SECONDS": "0"}, ("STORAGE_TIMEOUT_SECONDS='0'", "from 0.1 to 300.0")),
        ({"MODEL_URI": URI, "MODEL_SHA256": "abc"}, ("MODEL_SHA256='abc'", "64 hexadecimal characters")),
        ({"MODEL_URI": URI, "MAX_ROWS": "many"}, ("MAX_ROWS='many'", "an integer from 1 to 1000000")),
        ({"MODEL_URI": URI, "MAX_ROWS": "0"}, ("MAX_ROWS='0'", "from 1 to")),
        ({"MODEL_URI": URI, "MAX_BODY_BYTES": "-5"}, ("MAX_BODY_BYTES='-5'",)),
        ({"MODEL_URI": URI, "CORS_ALLOW_ORIGINS": "example.com"}, ("CORS_ALLOW_ORIGINS contains 'example.com'", "https://app.example.com")),
        ({"MODEL_URI": URI, "LOG_LEVEL": "LOUD"}, ("LOG_LEVEL='LOUD'", "DEBUG, INFO, WARNING, ERROR, CRITICAL")),
        ({"MODEL_URI": URI, "PRELOAD_MODEL": "sometimes"}, ("PRELOAD_MODEL='sometimes'", "true or false")),
        ({"MODEL_URI": URI, "BATCH_OUTPUT_URI": "predictions/"}, ("BATCH_OUTPUT_URI='predictions/'",)),
        ({"MODEL_URI": URI, "MODEL_VERSION": "x" * 200}, ("MODEL_VERSION=", "at most 128 printable characters")),
    ],
)
def test_wrong_values_fail_naming_the_variable(env, fragments):
    with pytest.raises(SettingsError) as raised:
        Settings.from_env(env)
    for fragment in fragments:
        assert fragment in raised.value.message


def test_wrong_setting_stops_serve_with_the_message(tmp_path):
    import subprocess

    from tests.support import serve_command

    result = subprocess.run(
        [*serve_command(), "serve", "--port", "0"],
        env={"PATH": "/usr/bin:/bin", "MODEL_URI": URI, "MAX_ROWS": "lots"},
        capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )
    assert result.returncode == 2
    assert "MAX_ROWS='lots' is not allowed; expected an integer from 1 to 1000000" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_scheme_whose_sdk_is_missing_fails_at_start(monkeypatch):
    import importlib.util

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name.startswith("google.cloud") else real_find_spec(name, *a)
    )
    monkeypatch.setattr("core.installed._on_sys_path", lambda module: False)  # as if no site-packages had it
    with pytest.raises(SettingsError) as raised:
        Settings.from_env({"MODEL_URI": "gs://models/iris.joblib"})
    assert raised.value.message == (
        "MODEL_URI='gs://models/iris.joblib' cannot be used here: gs:// locations need google.cloud.storage, "
        "which is not installed; install serverless-ml[gcp]"
    )


# --- batch settings ---------------------------------------------------------------------------


def test_batch_chunk_rows_has_a_safe_default_and_is_read():
    assert Settings.from_env({"MODEL_URI": URI}).batch_chunk_rows == 10_000
    assert Settings.from_env({"MODEL_URI": URI, "BATCH_CHUNK_ROWS": "50_000"}).batch_chunk_rows == 50_000


@pytest.mark.parametrize("value", ["0", "-5", "lots", "1000001"])
def test_a_wrong_batch_chunk_rows_names_the_variable(value):
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({"MODEL_URI": URI, "BATCH_CHUNK_ROWS": value})
    assert caught.value.message == f"BATCH_CHUNK_ROWS='{value}' is not allowed; expected an integer from 1 to 1000000"


def test_batch_part_bytes_has_a_safe_default_and_is_read():
    assert Settings.from_env({"MODEL_URI": URI}).batch_part_bytes == 16 * 1024 * 1024
    assert Settings.from_env({"MODEL_URI": URI, "BATCH_PART_BYTES": "5_242_880"}).batch_part_bytes == 5 * 1024 * 1024


@pytest.mark.parametrize("value", ["5242879", "4194304001", "16MiB", "-1"])
def test_a_wrong_batch_part_bytes_names_the_variable_and_the_limits(value):
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({"MODEL_URI": URI, "BATCH_PART_BYTES": value})
    assert caught.value.message == (
        f"BATCH_PART_BYTES='{value}' is not allowed; expected an integer from 5242880 (5 MiB, S3's smallest part) "
        "to 4194304000 (4000 MiB, Azure's largest block)"
    )


def test_fanout_part_sizes_have_defaults_and_are_read():
    settings = Settings.from_env({"MODEL_URI": URI})
    assert (settings.batch_fanout_part_bytes, settings.batch_fanout_part_rows) == (256 * 1024 * 1024, 0)
    settings = Settings.from_env({"MODEL_URI": URI, "BATCH_FANOUT_PART_BYTES": "1_000_000",
                                  "BATCH_FANOUT_PART_ROWS": "50000"})
    assert (settings.batch_fanout_part_bytes, settings.batch_fanout_part_rows) == (1_000_000, 50_000)


@pytest.mark.parametrize("name, value, bounds", [
    ("BATCH_FANOUT_PART_BYTES", "255", "256 (256 bytes: tiny parts are for tests) to 1099511627776 (1 TiB)"),
    ("BATCH_FANOUT_PART_ROWS", "-1", "0 (0: cut by bytes only) to 1000000000000 (a trillion rows)"),
])
def test_a_wrong_fanout_part_size_names_the_variable_and_the_limits(name, value, bounds):
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({"MODEL_URI": URI, name: value})
    assert caught.value.message == f"{name}='{value}' is not allowed; expected an integer from {bounds}"


@pytest.mark.parametrize(
    "value, expected",
    [("s3://bucket/out", "s3://bucket/out/"), ("s3://bucket", "s3://bucket/"), ("file:///srv/out/", "file:///srv/out/")],
)
def test_batch_output_uri_is_a_folder_or_prefix(value, expected):
    assert str(Settings.from_env({"MODEL_URI": URI, "BATCH_OUTPUT_URI": value}).batch_output_uri) == expected


def test_a_batch_output_uri_without_a_scheme_names_the_variable():
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({"MODEL_URI": URI, "BATCH_OUTPUT_URI": "/srv/out"})
    assert caught.value.message.startswith("BATCH_OUTPUT_URI='/srv/out' is not a usable location: expected a location")


def test_an_output_prefix_equal_to_the_watched_input_prefix_is_refused_at_start():
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({"MODEL_URI": URI, "BATCH_INPUT_URI": "s3://data/incoming/", "BATCH_OUTPUT_URI": "s3://data/incoming"})
    assert caught.value.message == (
        "BATCH_OUTPUT_URI=s3://data/incoming/ is the folder the inputs are in; outputs would be written among "
        "the inputs; expected another prefix, e.g. s3://data/predictions/"
    )


def test_watched_inputs_under_the_default_output_prefix_are_refused_at_start():
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({"MODEL_URI": URI, "BATCH_INPUT_URI": "s3://data/predictions/"})
    assert caught.value.message.startswith("the default output prefix s3://data/predictions/ is the folder the inputs are in")


@pytest.mark.parametrize("output", [None, "s3://data/predictions/", "s3://results"])
def test_inputs_and_outputs_apart_are_accepted(output):
    env = {"MODEL_URI": URI, "BATCH_INPUT_URI": "s3://data/incoming/", **({"BATCH_OUTPUT_URI": output} if output else {})}
    assert str(Settings.from_env(env).batch_input_uri) == "s3://data/incoming/"
