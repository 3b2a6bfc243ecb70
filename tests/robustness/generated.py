"""Generated malformed HTTP requests: the corpus every provider's entry point is fuzzed with.

The requests come from hypothesis strategies (bodies of every JSON shape, wrong types, huge
numbers, deep nesting, invalid UTF-8, wrong content types, oversized bodies, header and query
junk), drawn by one derandomised hypothesis run (:func:`corpus`), so the corpus is the same on
every machine and every run, and one corpus is replayed through AWS, Azure and GCP.

Bodies are built as JSON *text*, not only through ``json.dumps``, so that what a client can write
but Python would not (``NaN``, ``1e999``, integers of 5,000 digits, duplicate keys, 100,000
brackets) is in the corpus too.

A quarter of the requests speak the other protocols of the same service: Open Inference Protocol
v2 under ``/v2`` (near-valid tensors with one thing wrong, as JSON and with the binary-data
extension: a JSON header of ``Inference-Header-Content-Length`` bytes, then raw tensors whose
sizes, datatypes and values may be wrong) and MLflow's ``/invocations`` (the JSON bodies above and
near-valid CSV) and ``/ping``.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from urllib.parse import quote

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

NAMES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3], [5.9, 3.0, 4.2, 1.5]]
BODY_KEYS = ["instances", "inputs", "dataframe_split", "dataframe_records", "features", "data"]
# the limits the fuzzed functions run with: small enough that oversized bodies are cheap to send
MAX_BODY_BYTES = 16384
MAX_ROWS = 50
# the Open Inference Protocol's {name} and {version} of the fuzzed functions (MODEL_NAME, MODEL_VERSION)
MODEL_NAME, MODEL_VERSION = "iris", "fuzz-1"
FUZZ_SETTINGS = {"MAX_BODY_BYTES": str(MAX_BODY_BYTES), "MAX_ROWS": str(MAX_ROWS),
                 "CORS_ALLOW_ORIGINS": "https://app.example.com", "MODEL_NAME": MODEL_NAME,
                 "MODEL_VERSION": MODEL_VERSION}
BATCH = 25  # requests drawn per hypothesis example: generation costs per example, not per request


@dataclass(frozen=True)
class FuzzRequest:
    method: str
    path: str
    query: tuple[tuple[str, str], ...]
    headers: tuple[tuple[str, str], ...]
    body: bytes

    @property
    def query_string(self) -> str:
        return "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in self.query)

    @property
    def target(self) -> str:
        """The request target of the HTTP request line: path and query, percent-encoded."""
        path = quote(self.path, safe="/%;=")
        return path + ("?" + self.query_string if self.query else "")

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key.lower() == name:
                return value
        return None

    def as_json(self) -> dict:
        return {"method": self.method, "path": self.path, "query": [list(p) for p in self.query],
                "headers": [list(p) for p in self.headers], "body": base64.b64encode(self.body).decode()}

    @classmethod
    def from_json(cls, data: dict) -> FuzzRequest:
        return cls(data["method"], data["path"], tuple(map(tuple, data["query"])),
                   tuple(map(tuple, data["headers"])), base64.b64decode(data["body"]))

    def __repr__(self) -> str:  # what a failure prints: short enough to read, enough to replay
        body = self.body if len(self.body) <= 300 else self.body[:300] + b"...(%d bytes)" % len(self.body)
        return (f"FuzzRequest({self.method} {self.target!r}, headers={list(self.headers)!r}, body={body!r})")


# --- JSON text ------------------------------------------------------------------------------------

# numbers as a client may write them, beyond what json.dumps writes
RAW_NUMBERS = [
    "1e999", "-1e999", "1E+400", "1e-99999", "-0", "0.0", "1.7976931348623157e308", "1.7976931348623159e308",
    "123456789012345678901234567890", "1" * 4300, "1" * 4301, "-" + "9" * 5000, "0." + "1" * 5000,
    "NaN", "Infinity", "-Infinity", "nan", "1.", ".5", "01", "+1", "0x10", "1e", "--1",
]
names = st.sampled_from(NAMES + ["f0", "", "sepal_length ", "Sepal_Length", "petal_widht", "\ud800", "x" * 300])
texts = st.one_of(st.text(max_size=12), names)
scalars = st.one_of(
    st.just("null"), st.sampled_from(["true", "false"]),
    st.integers().map(str), st.floats().map(json.dumps),  # floats include NaN and infinities
    st.sampled_from(RAW_NUMBERS), texts.map(json.dumps),
)


def _array(items: list[str]) -> str:
    return "[" + ",".join(items) + "]"


def _object(pairs: list[tuple[str, str]]) -> str:
    return "{" + ",".join(f"{json.dumps(k)}:{v}" for k, v in pairs) + "}"


json_text = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4).map(_array),
        st.lists(st.tuples(st.one_of(names, st.sampled_from(BODY_KEYS)), inner), max_size=4).map(_object),
    ),
    max_leaves=8,
)


@st.composite
def near_valid(draw) -> str:
    """A body of one of the accepted forms with one thing wrong (or nothing: 200 is fine too)."""
    form = draw(st.sampled_from(BODY_KEYS + ["instances-objects"]))
    count = draw(st.integers(1, 3))
    rows = [list(ROWS[i % 3]) for i in range(count)]
    hole = draw(st.one_of(st.none(), scalars, scalars, json_text))  # the value put in one place, raw
    if hole is not None:
        place = draw(st.integers(0, 5 * count - 1))  # a row and a column; column 4 is one too many
        row, column = divmod(place, 5)
        if column < 4:
            rows[row][column] = "\x00HOLE"
        else:
            rows[row].append("\x00HOLE")
    named = [dict(zip(NAMES, r, strict=False)) for r in rows]  # near-valid rows may be too short or long
    if hole is None and draw(st.booleans()):  # a wrong feature name instead of a wrong value
        del named[0][NAMES[count % 4]]
        named[0][draw(names)] = 1.0
    body: object
    if form in ("instances", "inputs"):
        body = {form: rows}
    elif form == "instances-objects":
        body = {"instances": named}
    elif form == "dataframe_records":
        body = {"dataframe_records": named}
    elif form == "dataframe_split":
        columns = draw(st.sampled_from([NAMES, NAMES[::-1], NAMES[:3], NAMES + ["x"], NAMES + [NAMES[0]]]))
        body = {"dataframe_split": {"columns": columns, "data": rows}}
    elif form == "features":
        body = {"features": rows[0]}
    else:
        body = {"data": named[0]}
    text = json.dumps(body)
    return text.replace('"\\u0000HOLE"', hole) if hole is not None else text


@st.composite
def deeply_nested(draw) -> str:
    depth = draw(st.sampled_from([10, 500, 990, 1000, 1100, 5000, 100_000]))
    closed = draw(st.booleans())
    shape = draw(st.sampled_from(["array", "object", "instances", "row"]))
    if shape == "array":
        return "[" * depth + ("]" * depth if closed else "")
    if shape == "object":
        return '{"a":' * depth + "1" + ("}" * depth if closed else "")
    if shape == "instances":
        return '{"instances":' + "[" * depth + "1" + ("]" * depth + "}" if closed else "")
    return '{"features":[5.1,3.5,1.4,' + "[" * depth + "0.2" + ("]" * depth + "]}" if closed else "")


@st.composite
def large(draw) -> bytes:
    """Bodies just under and over MAX_BODY_BYTES, and many rows, columns or a long key inside it
    (the same at 6 MiB: test_large_inputs.py)."""
    kind = draw(st.sampled_from(["over", "at", "rows", "columns", "duplicated-columns", "key"]))
    if kind in ("over", "at"):
        size = MAX_BODY_BYTES + draw(st.integers(1, 2000) if kind == "over" else st.integers(-2000, 0))
        head = b'{"features": [5.1, 3.5, 1.4, 0.2], "pad": "'
        return head + b"x" * max(0, size - len(head) - 2) + b'"}'
    if kind == "rows":
        count = draw(st.sampled_from([MAX_ROWS, MAX_ROWS + 1, 300]))
        return json.dumps({"instances": [ROWS[0]] * count}).encode()
    if kind == "columns":
        count = draw(st.sampled_from([5, 1000, 1800]))
        return json.dumps({"dataframe_split": {"columns": [f"c{i}" for i in range(count)], "data": [[1] * count]}}).encode()
    if kind == "duplicated-columns":
        count = draw(st.sampled_from([1000, 1800]))
        columns = [f"c{i}" for i in range(count)] + ["c0"]
        return json.dumps({"dataframe_split": {"columns": columns, "data": [[1]]}}).encode()
    return json.dumps({"k" * draw(st.sampled_from([100, 10_000])): 1}).encode()


VALID_BODIES = [
    json.dumps({"instances": ROWS}), json.dumps({"data": dict(zip(NAMES, ROWS[0], strict=True))}),
    json.dumps({"dataframe_split": {"columns": NAMES, "data": ROWS}}), json.dumps({"features": ROWS[1]}),
]
INVALID_UTF8 = [b"\xff", b"\xfe\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xc0\xaf", b"\xf5\x80\x80\x80", b"\x80", b"\xe2\x82"]


@st.composite
def not_utf8(draw) -> bytes:
    kind = draw(st.sampled_from(["inserted", "utf16", "utf32", "latin1", "binary"]))
    if kind == "binary":
        return draw(st.binary(max_size=64))
    text = draw(st.sampled_from(VALID_BODIES))
    if kind == "utf16":
        return text.encode("utf-16")
    if kind == "utf32":
        return text.encode("utf-32")
    if kind == "latin1":
        return text.replace("sepal", "s\xe9pal").encode("latin-1", "replace")
    data = text.encode("utf-8", "surrogatepass")
    at = draw(st.integers(0, len(data)))
    return data[:at] + draw(st.sampled_from(INVALID_UTF8)) + data[at:]


def _utf8(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")  # a lone surrogate stays: invalid UTF-8 on the wire


bodies = st.one_of(
    json_text.map(_utf8),
    st.lists(st.tuples(st.sampled_from(BODY_KEYS + ["rows", "Instances"]), json_text), min_size=1, max_size=3)
    .map(_object).map(_utf8),
    near_valid().map(_utf8),
    near_valid().map(_utf8),
    deeply_nested().map(_utf8),
    large(),
    not_utf8(),
    st.sampled_from([b"", b" ", b"\n\t ", b"\xef\xbb\xbf", b"\x00", b"{}", b"[]", b"null", b'""', b"{", b"}"]),
    near_valid().map(lambda t: ("\ufeff" + t).encode()),  # a UTF-8 byte-order mark
)

CONTENT_TYPES = [
    None, "application/json", "application/json; charset=utf-8", "APPLICATION/JSON", "application/vnd.api+json",
    "text/json", "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
    "application/json; charset=latin-1", "", ";", "application/", "json", "*/*", "application/octet-stream",
    "text/html; charset=\"utf-8\"", "application/json;;;", "application/xml",
]
# printable ASCII and Latin-1 letters: what every HTTP stack carries in a header value
header_values = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"), max_size=40)
TOKEN = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
header_names = st.one_of(
    st.sampled_from(["X-Request-Id", "Origin", "Accept", "Content-Encoding", "Authorization", "Cookie",
                     "traceparent", "X-Cloud-Trace-Context", "Function-Execution-Id", "X-Forwarded-For",
                     "Access-Control-Request-Method", "Accept-Encoding", "X-Api-Key", "Referer"]),
    st.text(st.sampled_from(TOKEN), min_size=1, max_size=12).map(lambda n: "X-" + n),
)
request_ids = st.one_of(st.text(st.sampled_from("abcXYZ019._:-"), min_size=1, max_size=130), header_values)
query = st.lists(st.tuples(st.text(max_size=6), st.text(max_size=10)), max_size=2)
methods = st.sampled_from(["POST"] * 30 + ["GET", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"])
paths = st.sampled_from(
    ["/predict"] * 60
    + ["/predict/", "/PREDICT", "/predict/x", "/", "/health", "/model", "/openapi.json", "/pr%65dict",
       "/%ff", "/predict;x", "/nope", "/model/", "/predict//", "/ predict", "/predict\u00e9"]
)


# --- Open Inference Protocol v2 -------------------------------------------------------------------

INFER = f"/v2/models/{MODEL_NAME}/infer"
DATATYPES = ["BOOL", "INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32", "UINT64", "FP16", "FP32", "FP64",
             "BYTES"]
_NUMPY = {"BOOL": "?", "INT8": "<i1", "INT16": "<i2", "INT32": "<i4", "INT64": "<i8", "UINT8": "<u1", "UINT16": "<u2",
          "UINT32": "<u4", "UINT64": "<u8", "FP16": "<f2", "FP32": "<f4", "FP64": "<f8"}
oip_paths = st.sampled_from(
    [INFER] * 30 + [f"/v2/models/{MODEL_NAME}/versions/{MODEL_VERSION}/infer"] * 4
    + ["/v2", "/v2/health/live", "/v2/health/ready", f"/v2/models/{MODEL_NAME}", f"/v2/models/{MODEL_NAME}/ready",
       f"/v2/models/{MODEL_NAME}/versions/{MODEL_VERSION}", f"/v2/models/{MODEL_NAME}/versions/{MODEL_VERSION}/ready",
       "/v2/models/other/infer", f"/v2/models/{MODEL_NAME}/versions/0/infer", "/v2/nowhere", "/v2/models",
       f"/v2/models/{MODEL_NAME}%2Fx/infer", "/v2/models/ir%69s/infer", "/v2/models//infer", INFER + "/",
       "/V2/models/iris/infer", f"/v2/models/{MODEL_NAME}/versions/fuzz%2D1/ready", "/v2/models/\u00e9/infer",
       INFER + "/x"]
)
oip_methods = st.sampled_from(["POST"] * 12 + ["GET"] * 3 + ["HEAD", "PUT", "DELETE", "OPTIONS", "PATCH"])
SHAPE_HOLES = ["[0, 4]", "[-1, 4]", "[1e400]", "[1, 4, 1]", "[]", "[true, 4]", "[99999999999999999999, 4]", "[2, 2]",
               "[4]", "[1]", "[1, 1]", '"1,4"', "null", "[1.0, 4.0]"]
DATA_HOLES = ["[]", "[[[[5.1]]]]", "[null, 1, 2, 3]", '["5.1", 3.5, 1.4, 0.2]', "[true, false, true, false]",
              "[NaN, 1, 2, 3]", "[1e999, 1, 2, 3]", "[" + "1" * 400 + ", 1, 2, 3]", "{}", '"data"', "null",
              "[[5.1, 3.5], [1.4, 0.2]]", "[[5.1, [3.5]], 1.4, 0.2]"]


def _spoil(draw, body: dict, tensors: list) -> str | None:
    """Put one thing wrong in an infer request (or nothing); the raw JSON text of a hole, if one."""
    field = draw(st.sampled_from([None, None, "name", "shape", "datatype", "data", "data-item", "parameters", "drop",
                                  "tensor", "inputs", "duplicate"]))
    tensor = tensors[draw(st.integers(0, len(tensors) - 1))]
    hole = None
    if field == "name":
        tensor["name"], hole = "\x00HOLE", draw(st.one_of(names.map(json.dumps), scalars))
    elif field == "shape":
        tensor["shape"], hole = "\x00HOLE", draw(st.one_of(st.sampled_from(SHAPE_HOLES), json_text))
    elif field == "datatype":
        tensor["datatype"] = draw(st.sampled_from(DATATYPES + ["fp64", "", "STRING", "FP128"]))
    elif field == "data":
        tensor["data"], hole = "\x00HOLE", draw(st.one_of(st.sampled_from(DATA_HOLES), json_text, deeply_nested()))
    elif field == "data-item":
        data = tensor["data"]
        if data and isinstance(data[0], list):
            data = data[0]
        data[draw(st.integers(0, len(data) - 1))], hole = "\x00HOLE", draw(scalars)
    elif field == "parameters":
        tensor["parameters"], hole = "\x00HOLE", draw(st.one_of(st.sampled_from(
            ['{"binary_data_size": 32}', '{"binary_data_size": -1}', '{"binary_data_size": 1e3}', "[]"]), json_text))
    elif field == "drop":
        del tensor[draw(st.sampled_from(["name", "shape", "datatype", "data"]))]
    elif field == "tensor":
        tensors[tensors.index(tensor)], hole = "\x00HOLE", draw(json_text)
    elif field == "inputs":
        body["inputs"], hole = "\x00HOLE", draw(st.one_of(st.sampled_from(["[]", "{}", "null", '"x"']), json_text))
    elif field == "duplicate":
        tensors.append(dict(tensor))
    return hole


@st.composite
def oip_json(draw) -> str:
    """An infer request of the demo rows, as one 2-D tensor or one tensor per column, with one
    thing wrong (or nothing: 200 is fine too), as JSON text."""
    count = draw(st.integers(1, 3))
    rows = [list(ROWS[i % 3]) for i in range(count)]
    if draw(st.booleans()):
        flat = [v for row in rows for v in row]
        tensors = [{"name": "input-0", "shape": [count, 4], "datatype": draw(st.sampled_from(["FP64", "FP64", "FP32"])),
                    "data": rows if draw(st.booleans()) else flat}]
    else:
        tensors = [{"name": n, "shape": [count], "datatype": "FP64", "data": [r[j] for r in rows]}
                   for j, n in enumerate(NAMES)]
    body: dict = {"inputs": tensors}
    body["outputs"] = draw(st.sampled_from([
        None, [{"name": "predict"}], [{"name": "predict_proba", "parameters": {"binary_data": True}}],
        [{"name": "predict", "parameters": {"binary_data": True}}, {"name": "predict_proba"}],
        [{"name": "transform"}], "predict", [5], [{"name": "predict", "parameters": "x"}],
    ]))
    if body["outputs"] is None:
        del body["outputs"]
    parameters = draw(st.sampled_from([None, None, {"binary_data_output": True}, "x", {"binary_data_output": "yes"}]))
    if parameters is not None:
        body["parameters"] = parameters
    identifier = draw(st.sampled_from([None, None, "42", 42, [1], "x" * 300]))
    if identifier is not None:
        body["id"] = identifier
    hole = _spoil(draw, body, tensors)
    text = json.dumps(body)
    return text.replace('"\\u0000HOLE"', hole) if hole is not None else text


@st.composite
def oip_binary(draw) -> tuple[bytes, tuple[tuple[str, str], ...]]:
    """The binary-data extension: a JSON header, then the rows as raw tensor bytes; the datatype,
    the values (NaN, infinities), the sizes or Inference-Header-Content-Length may be wrong."""
    import numpy as np

    count = draw(st.integers(1, 3))
    values = np.asarray([ROWS[i % 3] for i in range(count)], dtype=np.float64)
    if draw(st.integers(0, 3)) == 0:
        values[divmod(draw(st.integers(0, values.size - 1)), 4)] = draw(
            st.sampled_from([np.nan, np.inf, -np.inf, 1e308, -0.0, 70000.0]))
    datatype = draw(st.sampled_from(["FP64"] * 6 + ["FP32", "FP16", "INT64", "INT8", "UINT64", "BOOL", "BYTES"]))
    if datatype == "BYTES":
        raw = b"".join(len(t).to_bytes(4, "little") + t for t in (str(v).encode() for v in values.ravel()))
    else:
        with np.errstate(all="ignore"):
            raw = values.astype(_NUMPY[datatype]).tobytes()
    size = draw(st.sampled_from([len(raw)] * 6 + [len(raw) - 1, len(raw) + 8, 0, -1]))
    shape = draw(st.sampled_from([[count, 4]] * 6 + [[count * 4], [count, 3], [0, 4], [count, 4, 1]]))
    header: dict = {"inputs": [{"name": "input-0", "shape": shape, "datatype": datatype,
                                "parameters": {"binary_data_size": size}}]}
    if draw(st.booleans()):
        header["outputs"] = [{"name": "predict", "parameters": {"binary_data": draw(st.booleans())}},
                             {"name": "predict_proba", "parameters": {"binary_data": draw(st.booleans())}}]
    head = json.dumps(header).encode()
    if draw(st.integers(0, 7)) == 0:
        head = head[:draw(st.integers(0, len(head)))]
    tail = raw + draw(st.sampled_from([b""] * 6 + [b"\x00", b"\xff" * 9]))
    if draw(st.integers(0, 7)) == 0:
        tail = tail[:draw(st.integers(0, len(tail)))]
    length = draw(st.sampled_from([str(len(head))] * 8 + [str(len(head) - 1), str(len(head) + 1), "0",
                                                          str(len(head) + len(tail) + 5), "abc", "-1", "", " 12", "1e3"]))
    return head + tail, (("Inference-Header-Content-Length", length),)


# --- MLflow's /invocations and /ping ---------------------------------------------------------------

mlflow_paths = st.sampled_from(["/invocations"] * 16 + ["/ping"] * 3 + ["/invocations/", "/Invocations", "/ping/x"])
mlflow_methods = st.sampled_from(["POST"] * 12 + ["GET"] * 3 + ["HEAD", "PUT", "OPTIONS"])
CSV_CELLS = ["", "x", "1e999", "NaN", "nan", "inf", '"5.1"', '"unterminated', '"1,2"', " 5.1 ", "\ufeff5.1", "1" * 400,
             "true", "5,1", '""']
CSV_TYPES = ["text/csv"] * 8 + ["text/csv; charset=utf-8", "TEXT/CSV", "text/csv;header=present", "application/csv",
                                "text/plain", "text/csv; charset=latin-1"]


@st.composite
def csv_body(draw) -> bytes:
    """A CSV with a header of feature names and the demo rows, with one thing wrong (or nothing)."""
    header = draw(st.sampled_from([NAMES] * 6 + [NAMES[::-1], NAMES[:3], NAMES + ["x"], [NAMES[0]] * 4, ["a,b"], []]))
    count = draw(st.sampled_from([1, 2, 3, 3, MAX_ROWS, MAX_ROWS + 1]))
    rows = [[str(ROWS[i % 3][j]) for j in range(len(NAMES))] for i in range(count)]
    if draw(st.booleans()):
        row = rows[draw(st.integers(0, count - 1))]
        place = draw(st.integers(0, 4))
        cell = draw(st.one_of(st.sampled_from(CSV_CELLS), st.text(max_size=6)))
        if place < 4:
            row[place] = cell
        else:
            row.append(cell)
    newline = draw(st.sampled_from(["\n", "\n", "\r\n", "\r"]))
    text = newline.join([",".join(header)] + [",".join(row) for row in rows]) + draw(st.sampled_from(
        [newline, newline, "", newline * 3]))
    if draw(st.integers(0, 9)) == 0:
        text = "\ufeff" + text
    encoding = draw(st.sampled_from(["utf-8"] * 8 + ["latin-1", "utf-16"]))
    return text.encode(encoding, "replace")


@st.composite
def protocol_request(draw, headers: list) -> tuple[str, str, bytes]:
    """(method, path, body) of a request to the other protocols; headers appended to ``headers``."""
    if draw(st.integers(0, 3)) < 3:  # Open Inference Protocol v2
        path = draw(oip_paths)
        if draw(st.integers(0, 2)) == 0:
            body, extra = draw(oip_binary())
            headers += list(extra)
            headers.append(("Content-Type", "application/octet-stream"))
        else:
            body = draw(st.one_of(oip_json().map(_utf8), oip_json().map(_utf8), oip_json().map(_utf8), bodies))
            if draw(st.booleans()):
                headers.append(("Content-Type", "application/json"))
        return draw(oip_methods), path, body
    path = draw(mlflow_paths)
    if draw(st.booleans()):
        body = draw(csv_body())
        headers.append(("Content-Type", draw(st.sampled_from(CSV_TYPES))))
    else:
        body = draw(bodies)
        content_type = draw(st.sampled_from([None, "application/json", "application/json; charset=utf-8", "text/csv"]))
        if content_type is not None:
            headers.append(("Content-Type", content_type))
    return draw(mlflow_methods), path, body


@st.composite
def requests(draw) -> FuzzRequest:
    if draw(st.integers(0, 5)) == 0:  # about a quarter (hypothesis draws 0 more often): the other protocols
        headers: list = []
        method, path, body = draw(protocol_request(headers))
        if draw(st.integers(0, 3)) == 0:
            headers.append(("X-Request-Id", draw(request_ids)))
        headers += draw(st.lists(st.tuples(header_names, header_values), max_size=1))
        return FuzzRequest(method, path, tuple(draw(query)), tuple(headers), body)
    headers = []
    # mostly what JSON clients send, so that most bodies reach the parser; now and then junk
    if draw(st.integers(0, 9)) == 0:
        content_type = draw(st.one_of(st.sampled_from(CONTENT_TYPES), header_values))
    else:
        content_type = draw(st.sampled_from([None, "application/json", "application/json; charset=utf-8"]))
    if content_type is not None:
        headers.append(("Content-Type", content_type))
    if draw(st.integers(0, 3)) == 0:
        headers.append(("X-Request-Id", draw(request_ids)))
    headers += draw(st.lists(st.tuples(header_names, header_values), max_size=2))
    return FuzzRequest(draw(methods), draw(paths), tuple(draw(query)), tuple(headers), draw(bodies))


def corpus(count: int) -> list[FuzzRequest]:
    """``count`` (or a few more) generated requests, the same ones on every run."""
    drawn: list[FuzzRequest] = []

    @settings(
        max_examples=-(-count // BATCH), derandomize=True, database=None, deadline=None,
        phases=[Phase.generate], suppress_health_check=list(HealthCheck),
    )
    @given(st.lists(requests(), min_size=BATCH, max_size=BATCH))
    def draw_batch(batch):
        drawn.extend(batch)

    draw_batch()
    return drawn
