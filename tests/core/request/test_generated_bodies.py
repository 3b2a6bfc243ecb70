"""Generated bodies of every JSON shape: the answer is a 200 or a documented 4xx, never a 500,
and an error body always has the documented form."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.http import HttpRequest
from tests.support import make_service

NAMES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=8), st.sampled_from(NAMES),
)
json_values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=6),
        st.dictionaries(st.one_of(st.sampled_from(NAMES), st.text(max_size=6)), children, max_size=6),
    ),
    max_leaves=40,
)
keys = st.sampled_from(["instances", "inputs", "dataframe_split", "dataframe_records", "features", "data", "other"])
bodies = st.one_of(
    json_values.map(lambda v: json.dumps(v).encode()),
    st.dictionaries(keys, json_values, max_size=3).map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=64),
)


def check(service, raw: bytes, content_type: str = "application/json") -> None:
    response = service.handle(HttpRequest("POST", "/predict", {"content-type": content_type}, raw))
    assert response.status in (200, 400, 413, 415), (raw, response.body)
    body = json.loads(response.body)
    if response.status == 200:
        assert len(body["predictions"]) == len(body["probabilities"])
    else:
        assert set(body) == {"error", "request_id"}
        assert set(body["error"]) == {"code", "message"}
        assert body["error"]["message"] and "Traceback" not in body["error"]["message"]


def test_generated_bodies_never_cause_a_server_error(demo_model_uri):
    service = make_service(demo_model_uri, MAX_ROWS="20")

    @settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
    @given(bodies)
    def run(raw):
        check(service, raw)

    run()
