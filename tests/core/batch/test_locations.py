"""Which objects are inputs, where their outputs go, and the guards against trigger loops."""

from __future__ import annotations

import pytest

from core.batch.formats import InputFormat, input_format
from core.errors import SettingsError
from core.storage import parse_uri
from core.storage.locations import (
    check_output_prefix,
    folder_of,
    loop_guard,
    output_locations,
    output_prefix_for,
    outputs_for,
    parse_output_prefix,
)


@pytest.mark.parametrize(
    "name, expected",
    [
        ("data.csv", InputFormat("csv", False)),
        ("DATA.CSV", InputFormat("csv", False)),
        ("rows.jsonl", InputFormat("jsonl", False)),
        ("rows.jsonl.gz", InputFormat("jsonl", True)),
        ("day 1+2.csv.gz", InputFormat("csv", True)),
        ("rows.json", InputFormat("json", False)),
        ("ROWS.JSON.GZ", InputFormat("json", True)),
    ],
)
def test_inputs_are_known_by_their_name(name, expected):
    assert input_format(name) == expected


@pytest.mark.parametrize("name", ["data.parquet", "data.ndjson", "data.gz", "csv", "data.csv.zip"])
def test_other_names_are_not_inputs_and_say_what_is(name):
    reason = input_format(name)
    assert reason == f"'{name}' is not a batch input; expected a name ending in .csv, .jsonl, .json, .csv.gz, .jsonl.gz or .json.gz"


def test_a_models_manifest_is_not_a_json_input():
    assert input_format("models/iris.joblib.manifest.json") == "'models/iris.joblib.manifest.json' is a model's manifest, not a batch input"


def test_bucket_outputs_keep_the_whole_input_key_under_the_default_prefix():
    source = parse_uri("s3://bucket/incoming/2026/data.csv")
    targets = output_locations(source, output_prefix_for(source, None))
    assert str(targets.predictions) == "s3://bucket/predictions/incoming/2026/data.csv.predictions.jsonl"
    assert str(targets.errors) == "s3://bucket/predictions/incoming/2026/data.csv.errors.jsonl"


def test_configured_output_prefix_may_be_another_bucket():
    source = parse_uri("gs://in/a/b.jsonl.gz")
    targets = output_locations(source, output_prefix_for(source, parse_output_prefix("gs://out/results")))
    assert str(targets.predictions) == "gs://out/results/a/b.jsonl.gz.predictions.jsonl"


def test_a_local_file_gets_a_predictions_folder_beside_it():
    source = parse_uri("file:///data/day.csv")
    targets = output_locations(source, output_prefix_for(source, None))
    assert str(targets.predictions) == "file:///data/predictions/day.csv.predictions.jsonl"


@pytest.mark.parametrize(
    "text, expected",
    [
        ("s3://bucket/out", "s3://bucket/out/"),
        ("s3://bucket/out/", "s3://bucket/out/"),
        ("az://container", "az://container/"),
        ("file:///srv/out", "file:///srv/out/"),
        ("file:///srv/out/", "file:///srv/out/"),
    ],
)
def test_output_prefixes_are_folders(text, expected):
    assert str(parse_output_prefix(text)) == expected


@pytest.mark.parametrize("text", ["predictions/", "ftp://host/x", "file://relative/folder"])
def test_an_output_prefix_that_is_not_a_location_is_refused(text):
    with pytest.raises(ValueError, match="expected"):
        parse_output_prefix(text)


def test_outputs_are_never_inputs():
    prefix = parse_output_prefix("s3://bucket/predictions/")
    under = parse_uri("s3://bucket/predictions/incoming/data.csv")
    assert loop_guard(under, prefix) == (
        "s3://bucket/predictions/incoming/data.csv is under the output prefix s3://bucket/predictions/; "
        "outputs are never inputs"
    )
    # named like an output, even when BATCH_OUTPUT_URI points elsewhere and its events arrive here
    named = parse_uri("s3://other/x/data.csv.predictions.jsonl")
    assert "is named like a batch output" in loop_guard(named, prefix)
    assert loop_guard(parse_uri("s3://bucket/incoming/data.csv"), prefix) is None
    assert loop_guard(parse_uri("s3://other/predictions/data.csv"), prefix) is None


@pytest.mark.parametrize("prefix", ["s3://bucket/incoming/", "s3://bucket"])
def test_an_output_prefix_among_the_inputs_is_refused(prefix):
    source = parse_uri("s3://bucket/incoming/data.csv")
    with pytest.raises(SettingsError) as caught:
        check_output_prefix(parse_output_prefix(prefix), folder_of(source))
    assert caught.value.message.startswith(f"BATCH_OUTPUT_URI={prefix.rstrip('/')}/ is the folder the inputs are in")
    assert "expected another prefix, e.g. s3://bucket/predictions/" in caught.value.message


def test_an_output_prefix_elsewhere_is_accepted():
    source = parse_uri("s3://bucket/incoming/data.csv")
    check_output_prefix(parse_output_prefix("s3://bucket/predictions/"), folder_of(source))
    check_output_prefix(parse_output_prefix("s3://other/incoming/"), folder_of(source))


def test_a_run_asks_once_for_its_outputs_or_why_it_is_skipped():
    source = parse_uri("s3://bucket/incoming/data.csv")
    assert outputs_for(source, None) == output_locations(source, output_prefix_for(source, None))
    assert outputs_for(parse_uri("s3://bucket/predictions/incoming/data.csv"), None) == (
        "s3://bucket/predictions/incoming/data.csv is under the output prefix s3://bucket/predictions/; "
        "outputs are never inputs"
    )
    # the outputs of an input at the bucket's root sit right under the prefix: skipped, not refused
    output = parse_uri("s3://bucket/predictions/data.csv.predictions.jsonl")
    assert "is named like a batch output" in outputs_for(output, None)


def test_a_run_whose_prefix_is_its_input_folder_is_refused_naming_the_prefix():
    with pytest.raises(SettingsError) as caught:
        outputs_for(parse_uri("s3://bucket/incoming/data.csv"), parse_output_prefix("s3://bucket/incoming/"), "the output prefix")
    assert caught.value.message.startswith("the output prefix s3://bucket/incoming/ is the folder the inputs are in")
