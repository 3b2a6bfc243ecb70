"""The OpenAPI document fuzzed with schemathesis against the real local endpoint
(``serverless-ml serve`` on a free port, MAX_ROWS=50): bodies, headers and methods generated from
the document the endpoint itself serves at ``/openapi.json`` (typed for its model), valid and
invalid, and every answer checked against it (never a server error, a documented status, content
type, headers and a body of its schema, never a stack trace or a server path).

Two models: the demo forest (all numbers, null taken) and the mixed pipeline of
tests/typed_models.py (numbers, categories, nulls; a DataFrame pipeline), so that the fuzzer
sends strings, categories and nulls where that model takes them.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.config import GenerationConfig, SchemathesisConfig
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    allow_header_conformance,
    negative_data_rejection,
    positive_data_acceptance,
)

from tests.robustness.oracle import OPENAPI, SERVER_PATH, TRACEBACK
from tests.support import start_endpoint, stop_endpoint

config = SchemathesisConfig()
config.projects.default.generation = GenerationConfig(modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
EXAMPLES_PER_OPERATION = 40
# Three checks judge what the document says about requests, not the answers, and conflict with
# how it describes this API; every check of the answers runs (not_a_server_error, status code,
# content type, headers, body schema, unsupported methods):
# - positive_data_acceptance: a schema-valid row can still be refused by the model itself (a
#   float finite in float64 and infinite in the forest's float32 is 400 prediction_rejected, as is
#   a lone row whose only category is null for the mixed model), and the document describes each
#   wrong method as an operation whose only answer is 405;
# - negative_data_rejection: an X-Request-Id outside its documented pattern is ignored (a new id
#   is made), as the README says, not refused; invalid bodies are covered by the generated-request
#   tests of this folder and by tests/core/http/test_openapi.py;
# - allow_header_conformance: wants Allow to list every documented method of a path, including the
#   ones documented only as 405; the service lists the methods it serves, which 405 answers carry.
EXCLUDED = [positive_data_acceptance, negative_data_rejection, allow_header_conformance]


@schemathesis.check
def no_stack_trace_or_server_path(ctx, response, case) -> None:
    text = response.text
    if TRACEBACK.search(text):
        raise AssertionError("a stack trace in the answer")
    found = SERVER_PATH.search(text)
    if found and case.path != "/openapi.json":
        raise AssertionError(f"a server path in the answer: {found.group(0)!r}")


@pytest.fixture(scope="module")
def mixed_endpoint(tmp_path_factory, typed_models):
    """The real local endpoint serving the mixed pipeline (a DataFrame model with categories)."""
    endpoint = start_endpoint(
        tmp_path_factory.mktemp("mixed-endpoint"), {"MODEL_URI": typed_models["mixed"].as_uri(), "MAX_ROWS": "50"}
    )
    yield endpoint
    stop_endpoint(endpoint)


@pytest.fixture(scope="module")
def demo_document(endpoint):
    return schemathesis.openapi.from_url(endpoint.url + "/openapi.json", config=config)


@pytest.fixture(scope="module")
def mixed_document(mixed_endpoint):
    return schemathesis.openapi.from_url(mixed_endpoint.url + "/openapi.json", config=config)


def test_the_fuzzed_documents_are_the_typed_ones(demo_document, mixed_document):
    demo = demo_document.raw_schema["components"]["schemas"]["RowObject"]
    mixed = mixed_document.raw_schema["components"]["schemas"]["RowObject"]
    assert demo["required"] == ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    assert mixed["required"] == ["age", "fare", "pclass", "sex", "embarked"]
    assert mixed["properties"]["sex"]["anyOf"][0]["enum"] == ["female", "male"]


# every operation of the document (the typed documents have the same paths and methods as the file)
OPERATIONS = [(method.upper(), path) for path, item in OPENAPI["paths"].items() for method in item]
DOCUMENTS = {"demo": ("demo_document", "endpoint"), "mixed": ("mixed_document", "mixed_endpoint")}


# schemathesis's own pytest integration of a schema from a fixture (schemathesis.pytest.from_fixture)
# reads a node attribute pytest 9 no longer has, so the cases are drawn here with its strategies
@pytest.mark.parametrize("method, path", OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
@pytest.mark.parametrize("model", list(DOCUMENTS))
def test_every_answer_conforms_to_the_document(request, model, method, path):
    document_fixture, endpoint_fixture = DOCUMENTS[model]
    document = request.getfixturevalue(document_fixture)
    endpoint = request.getfixturevalue(endpoint_fixture)
    operation = document[path][method]
    cases = st.one_of(operation.as_strategy(GenerationMode.POSITIVE), operation.as_strategy(GenerationMode.NEGATIVE))

    @given(case=cases)
    @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    def answer_conforms(case):
        case.call_and_validate(
            base_url=endpoint.url, excluded_checks=EXCLUDED, additional_checks=[no_stack_trace_or_server_path]
        )

    answer_conforms()
