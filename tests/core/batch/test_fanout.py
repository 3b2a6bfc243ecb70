"""Fan-out (core/batch/fanout.py, core/batch/workers.py): a file split into row-aligned ranges,
predicted by two worker processes and merged, writes the very bytes of one run over the whole file,
on moto's S3, Azurite and the GCS emulator; and the plan never cuts inside a quoted field.

The files are small and the parts tiny (BATCH_FANOUT_PART_BYTES=512, a few hundred bytes of rows
each, chunks of 7 rows), so that every kind of line meets a range's edge and a chunk's edge: CSV
with a BOM, CRLF line ends, quoted fields over several lines, blank lines and bad rows; JSONL with
bad lines and no line end after the last one.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator

import pytest

from core.batch import fanout
from core.batch.deadline import BatchTimeLimit, Deadline
from core.batch.engine import run_batch
from core.batch.readers import JsonlReader
from core.batch.workers import LocalWorkers
from core.model import ModelHolder
from core.request.rows import RowSchema
from core.schema import InputSchema
from core.settings import Settings
from core.storage import StorageURI, parse_uri
from core.storage.locations import parse_output_prefix
from tests.aws_lambda import moto_support
from tests.core.batch.places import Place, open_place

HEADER = "sepal_length,sepal_width,petal_length,petal_width"
# parts of about 20 rows, cut where one run's chunks of 10 entries begin
SMALL_PARTS = {"BATCH_FANOUT_PART_BYTES": "512", "BATCH_CHUNK_ROWS": "10", "STORAGE_TIMEOUT_SECONDS": "5"}


def csv_file(rows: int = 300, seed: int = 7) -> tuple[bytes, set[int]]:
    """A CSV as spreadsheets and hands write them, and the lines of its rows that must fail."""
    data, bad, _ = csv_file_and_continued_lines(rows, seed)
    return data, bad


def csv_file_and_continued_lines(rows: int = 300, seed: int = 7) -> tuple[bytes, set[int], set[int]]:
    """csv_file, and the lines that go on a row begun on a line before (inside its quoted field)."""
    rng = random.Random(seed)
    lines, bad, continued = ["\ufeff" + HEADER], set(), set()
    line = 2
    for i in range(rows):
        cells = [f"{rng.uniform(4, 8):.1f}", f"{rng.uniform(2, 4.4):.1f}", f"{rng.uniform(1, 7):.1f}",
                 f"{rng.uniform(0.1, 2.5):.1f}"]
        kind = i % 9
        if kind == 1:  # a quoted number over three lines: its row keeps the number of its first line
            cells[1] = f'"{cells[1]}\r\n\r\n"'
            continued.update((line + 1, line + 2))
        elif kind == 5:  # over two lines, the line end in the middle of the number's quotes
            cells[3] = f'"{cells[3][:2]}\r\n{cells[3][2:]}"'
            continued.add(line + 1)
            bad.add(line)  # "0.\r\n5" is no number
        elif kind == 3:
            cells[2] = '"abc"'
            bad.add(line)
        elif kind == 4:
            cells = cells[:3]
            bad.add(line)
        elif kind == 6:
            cells[0] = f'"{cells[0]}"'
        elif kind == 7:
            lines.append("")  # a blank line: no row, but a line number
            line += 1
        text = ",".join(cells)
        lines.append(text)
        line += 1 + text.count("\n")
    return ("\r\n".join(lines) + "\r\n").encode(), bad, continued


def jsonl_file(rows: int = 300, seed: int = 8) -> tuple[bytes, set[int]]:
    rng = random.Random(seed)
    lines, bad = [], set()
    for i in range(rows):
        values = [round(rng.uniform(0.1, 7), 1) for _ in range(4)]
        kind = i % 8
        if kind == 2:
            lines.append(json.dumps(dict(zip(HEADER.split(","), values, strict=True))))
        elif kind == 3:
            lines.append('{"sepal_length": 5.1,')
            bad.add(i + 1)
        elif kind == 5:
            lines.append(json.dumps(values[:3]))
            bad.add(i + 1)
        else:
            lines.append(json.dumps(values))
    return "\n".join(lines).encode(), bad  # no line end after the last line


FILES = {"csv": csv_file, "jsonl": jsonl_file}


@pytest.fixture
def settings(demo_model_uri) -> Settings:
    return Settings.from_env({"MODEL_URI": demo_model_uri, **SMALL_PARTS})


def error_lines(data: bytes | None) -> list[int]:
    assert data is not None, "no errors file"
    return [json.loads(line)["line"] for line in data.decode().splitlines()]


# --- on the three clouds' storage, two worker processes -----------------------------------------------


@pytest.fixture
def place(request, monkeypatch) -> Place:
    return open_place(request.param, request, monkeypatch)


@pytest.fixture(scope="module")
def two_workers(moto, azurite, gcs, demo_model_uri) -> Iterator[LocalWorkers]:
    """Two worker processes for the module, started with every server's settings in their
    environment (they outlive each test's own)."""
    with pytest.MonkeyPatch.context() as patch, moto_support.pointed_at(moto, patch):
        patch.setenv("AZURE_STORAGE_CONNECTION_STRING", azurite.connection_string)
        patch.setenv("STORAGE_EMULATOR_HOST", gcs.url)
        patch.delenv("GOOGLE_CLOUD_PROJECT", raising=False)
        workers = LocalWorkers(Settings.from_env({"MODEL_URI": demo_model_uri, **SMALL_PARTS}), 2)
        workers._started().submit(int).result()  # the processes start now, in this environment
        yield workers
        workers.close()


@pytest.mark.parametrize("place", ["s3-versioned", "azure", "gcs"], indirect=True)
@pytest.mark.parametrize("kind", ["csv", "jsonl"])
def test_two_workers_write_the_bytes_of_one_run_and_remove_their_parts(place, kind, settings, two_workers):
    data, bad = FILES[kind]()
    key = f"incoming/day.{kind}"
    version = place.put(key, data)
    single = run_batch(place.uri(key), ModelHolder(settings), settings,
                       output_prefix=StorageURI(place.scheme, place.bucket, "single/"))

    result, how = two_workers.run(place.uri(key))

    assert how["workers"] == 2 and how["parts"] >= 10
    outputs = [f"predictions/{key}.predictions.jsonl", f"predictions/{key}.errors.jsonl"]
    for name in outputs:
        assert place.get(name) == place.get(name.replace("predictions/", "single/", 1)), name
    assert error_lines(place.get(outputs[1])) == sorted(bad)  # each bad row once, by its line in the file
    assert (result.rows_read, result.rows_failed, result.rows_predicted) == (
        single.rows_read, len(bad), single.rows_read - len(bad))
    assert result.version == single.version == version.describe()
    recorded = {name.replace("_", "-"): value for name, value in place.metadata(outputs[0]).items()}
    assert recorded == version._replace(sequencer=None).metadata()
    assert not [k for k in place.keys() if k.startswith(f"predictions/{fanout.PARTS_FOLDER}")]


@pytest.mark.parametrize("place", ["s3-versioned", "azure"], indirect=True)
def test_a_part_run_again_writes_the_same_bytes_and_a_replaced_input_publishes_nothing(place, settings):
    data, _ = csv_file(120)
    key = "incoming/again.csv"
    place.put(key, data)
    plan = fanout.plan(place.uri(key), settings)
    holder = ModelHolder(settings)
    second = plan["parts"][1]
    where = fanout.part_locations(plan, 1)
    first_result = fanout.run_part(second, holder, settings)
    first_bytes = place.get(where.predictions.key), place.get(where.errors.key)

    again = fanout.run_part(second, holder, settings)  # a retry of the same part

    assert (place.get(where.predictions.key), place.get(where.errors.key)) == first_bytes
    assert {k: v for k, v in again.items() if k != "seconds"} == {k: v for k, v in first_result.items() if k != "seconds"}

    place.put(key, data + b"5.0,3.0,1.5,0.2\r\n")  # v2, before the other parts ran
    results = [again] + [fanout.run_part(part, holder, settings) for part in plan["parts"] if part["index"] != 1]
    merged = fanout.merge(plan, results, settings)

    assert merged["skipped"].startswith("superseded: ") and merged["predictions_uri"] is None
    assert not [k for k in place.keys() if k.startswith("predictions/")]  # nothing published, parts removed


# --- the plan, on local files ---------------------------------------------------------------------------


def entries(data: bytes) -> int:
    """The entries (rows, and lines too long to hold) one run's chunks count in ``data``."""
    import io

    from core.batch.lines import line_chunks

    return sum(len(chunk) for chunk in line_chunks(io.BytesIO(data), 10**6, quoted=True)) if data else 0


def test_the_plan_cuts_between_rows_only_though_many_ranges_begin_inside_a_quoted_field(tmp_path, settings):
    data, _, continued = csv_file_and_continued_lines()
    path = tmp_path / "day.csv"
    path.write_bytes(data)
    surveyed = fanout.survey(path.as_uri(), settings)
    scans = [fanout.scan_grain(grain) for grain in surveyed["grains"]]
    plan = fanout.cut(surveyed, scans)

    first_lines = [data[:part["start"]].count(b"\n") + 1 for part in plan["parts"]]
    assert [part["first_line"] for part in plan["parts"]] == first_lines
    assert not continued & set(first_lines)
    # each part begins where one run's chunk begins: after a multiple of BATCH_CHUNK_ROWS entries
    assert [part["first_entry"] for part in plan["parts"]] == [entries(data[:part["start"]]) for part in plan["parts"]]
    assert all(part["first_entry"] % 10 == 0 for part in plan["parts"])
    assert [part["start"] for part in plan["parts"][1:]] == [part["end"] for part in plan["parts"][:-1]]
    assert plan["parts"][-1]["end"] == len(data) and plan["parts"][0]["start"] == 0
    assert plan["parts"][1]["start"] >= surveyed["header_end"] == len(("\ufeff" + HEADER + "\r\n").encode())
    # the test means something: many grains begin on a line inside a quoted field, and were not cut at
    inside = [scan for scan in scans if data[:scan["start"]].count(b"\n") + 1 in continued]
    assert len(inside) >= 5
    assert len(plan["parts"]) >= 10


def test_a_model_whose_numbers_depend_on_the_batch_gets_the_batches_of_one_run(tmp_path):
    """A logistic regression over 20 features: BLAS sums a row's products in another order in
    another batch shape, and the last digits of a probability move (here, 1 row in 400 for the
    last row predicted alone). Parts are whole chunks of the single run, so they are predicted in
    the same batches: the same digits."""
    import joblib
    import numpy as np
    from sklearn.datasets import make_classification
    from sklearn.linear_model import LogisticRegression

    X, y = make_classification(n_samples=2000, n_features=20, random_state=0)
    joblib.dump(LogisticRegression(max_iter=1000).fit(X, y), tmp_path / "lr.joblib")
    rows = np.random.default_rng(3).normal(size=(401, 20)) * 2
    header = ",".join(f"f{i}" for i in range(20))
    (tmp_path / "wide.csv").write_text(header + "\n" + "\n".join(",".join(f"{v:.6g}" for v in row) for row in rows) + "\n")
    settings = Settings.from_env({"MODEL_URI": (tmp_path / "lr.joblib").as_uri(), "BATCH_CHUNK_ROWS": "7",
                                  "BATCH_FANOUT_PART_BYTES": "2000"})
    holder = ModelHolder(settings)
    run_batch((tmp_path / "wide.csv").as_uri(), holder, settings,
              output_prefix=parse_output_prefix((tmp_path / "single").as_uri()))

    made = fanout.plan((tmp_path / "wide.csv").as_uri(), settings)
    fanout.merge(made, [fanout.run_part(part, holder, settings) for part in made["parts"]], settings)

    assert len(made["parts"]) >= 10
    name = "wide.csv.predictions.jsonl"
    assert (tmp_path / "predictions" / name).read_bytes() == (tmp_path / "single" / name).read_bytes()


def test_files_that_run_whole_say_why(tmp_path, settings):
    import gzip

    data, _ = csv_file(60)
    cases = {"day.csv.gz": gzip.compress(data), "day.json": b"[[5.1, 3.5, 1.4, 0.2]]" * 100, "small.csv": data[:400]}
    whys = {}
    for name, content in cases.items():
        (tmp_path / name).write_bytes(content)
        made = fanout.plan((tmp_path / name).as_uri(), settings)
        assert len(made["parts"]) == 1 and made["parts"][0]["start"] == 0
        whys[name] = made["whole"]
    assert whys == {
        "day.csv.gz": "a gzip stream cannot be entered in the middle: the file runs whole",
        "day.json": "a .json file is one JSON document: it runs whole",
        "small.csv": "the file is no larger than one part",
    }


def test_a_plan_by_rows_cuts_near_the_row_count(tmp_path, demo_model_uri):
    data, _ = jsonl_file(400)
    path = tmp_path / "day.jsonl"
    path.write_bytes(data)
    settings = Settings.from_env({"MODEL_URI": demo_model_uri, "BATCH_FANOUT_PART_ROWS": "100",
                                  "BATCH_CHUNK_ROWS": "30"})
    made = fanout.plan(path.as_uri(), settings)
    # 100 rows, up to the next chunk of 30; the last 40 rows are under half a part: they join the one before
    assert [part["first_entry"] for part in made["parts"]] == [0, 120, 240]


def test_a_refused_header_is_reported_once_by_the_first_part(tmp_path, settings):
    data = ("colour,size\r\n" + "red,1\r\n" * 200).encode()
    path = tmp_path / "odd.csv"
    path.write_bytes(data)
    holder = ModelHolder(settings)
    single = run_batch(path.as_uri(), holder, settings, output_prefix=parse_output_prefix((tmp_path / "single").as_uri()))
    made = fanout.plan(path.as_uri(), settings)
    results = [fanout.run_part(part, holder, settings) for part in made["parts"]]
    merged = fanout.merge(made, results, settings)

    assert len(made["parts"]) > 2 and merged["input_error"] == single.input_error and merged["rows_read"] == 0
    for name in ("odd.csv.predictions.jsonl", "odd.csv.errors.jsonl"):
        assert (tmp_path / "predictions" / name).read_bytes() == (tmp_path / "single" / name).read_bytes()
    assert sorted(p.name for p in (tmp_path / "predictions").iterdir()) == ["odd.csv.errors.jsonl",
                                                                            "odd.csv.predictions.jsonl"]


def test_an_input_deleted_after_the_plan_ends_skipped_with_nothing_left_behind(tmp_path, settings):
    data, _ = csv_file(120)
    path = tmp_path / "gone.csv"
    path.write_bytes(data)
    holder = ModelHolder(settings)
    made = fanout.plan(path.as_uri(), settings)
    first = fanout.run_part(made["parts"][0], holder, settings)
    path.unlink()

    results = [first] + [fanout.run_part(part, holder, settings) for part in made["parts"][1:]]
    merged = fanout.merge(made, results, settings)

    assert [r["skipped"] for r in results[1:]] == ["file://.../gone.csv does not exist (deleted after the plan was made?)"
                                                   ] * (len(results) - 1)
    assert merged["skipped"] == results[1]["skipped"] and merged["predictions_uri"] is None
    assert not (tmp_path / "predictions").exists() or not any((tmp_path / "predictions").iterdir())


def test_a_part_of_a_jsonl_file_learns_the_row_width_from_the_files_first_rows(tmp_path):
    """A model that says nothing of its width takes the width of the file's first array row; a
    part starting further on learns it there, so its rows are refused with the same words."""
    data = b"[1.0, 2.0]\n" * 30 + b"[1.0, 2.0, 3.0]\n" * 30
    path = tmp_path / "rows.jsonl"
    path.write_bytes(data)
    from core.storage import parse_uri, store_for

    source = parse_uri(path.as_uri())
    start = data.index(b"[1.0, 2.0, 3.0]")
    part = {"format": "jsonl", "start": start, "end": len(data), "first_line": 31, "header_end": None}
    reader = JsonlReader(RowSchema(InputSchema.numeric(None)))
    assert fanout._reader_at_part_start(reader, part, store_for(source), source, None, 10)
    with open(path, "rb") as stream:
        stream.seek(start)
        failures = [f for chunk in reader.chunks(stream, 10, first_line=31, offset=start) for f in chunk.failures]
    assert [f.line for f in failures] == list(range(31, 61))
    assert failures[0].message == "line 31 has 3 values; expected 2 values like the rows before it"


# --- a run that would outlast its invocation --------------------------------------------------------------


def test_a_run_stops_between_chunks_before_its_deadline_and_publishes_nothing(tmp_path, settings):
    data, _ = csv_file(100)
    path = tmp_path / "late.csv"
    path.write_bytes(data)
    left = iter([600.0, 0.5])  # plenty after the first chunk (the header and 9 rows), not enough after the second

    with pytest.raises(BatchTimeLimit) as raised:
        run_batch(path.as_uri(), ModelHolder(settings), settings,
                  deadline=Deadline(lambda: next(left), "BATCH_FANOUT_STATE_MACHINE_ARN"))

    message = raised.value.message
    assert message.startswith("file://.../late.csv cannot be finished in this invocation: 19 rows were done in ")
    assert message.endswith("nothing was published. A file this large is split across invocations when "
                            "BATCH_FANOUT_STATE_MACHINE_ARN is set")
    assert not (tmp_path / "predictions").exists()


class InProcessOrchestrator:
    """The Orchestrator protocol carried out in this process: plan, every part, merge."""

    name = "in-process"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.started: list[dict] = []

    def start(self, request: dict) -> str:
        self.started.append(request)
        holder = ModelHolder(self.settings)
        made = fanout.plan(request["input"], self.settings, version=fanout.version_from(request["version"]))
        results = [fanout.run_part(part, holder, self.settings) for part in made["parts"]]
        fanout.merge(made, results, self.settings)
        return f"run-{made['run']}"


def test_a_trigger_hands_a_file_of_several_parts_to_its_orchestrator_and_runs_a_small_one_itself(
        tmp_path, settings):
    from core.batch.triggered import settle_created_object

    data, bad = csv_file(300)
    (tmp_path / "in").mkdir()
    big, small = tmp_path / "in" / "big.csv", tmp_path / "in" / "small.csv"
    big.write_bytes(data)
    small.write_bytes(data[:400])
    alone = tmp_path / "alone" / "big.csv"
    alone.parent.mkdir()
    alone.write_bytes(data)
    one_run = run_batch(parse_uri(alone.as_uri()), ModelHolder(settings), settings)
    orchestrator = InProcessOrchestrator(settings)

    settled = settle_created_object(parse_uri(big.as_uri()), ModelHolder(settings), settings,
                                    orchestrator=orchestrator)
    assert settled.status == "fanned_out" and settled.execution.startswith("run-")
    assert [r["input"] for r in orchestrator.started] == [big.as_uri()]
    outputs = tmp_path / "in" / "predictions"
    assert (outputs / "big.csv.predictions.jsonl").read_bytes() == \
        (tmp_path / "alone" / "predictions" / "big.csv.predictions.jsonl").read_bytes()
    assert error_lines((outputs / "big.csv.errors.jsonl").read_bytes()) == sorted(bad)
    assert one_run.rows_failed == len(bad)

    settled = settle_created_object(parse_uri(small.as_uri()), ModelHolder(settings), settings,
                                    orchestrator=orchestrator)
    assert settled.status == "predicted" and len(orchestrator.started) == 1
    assert (outputs / "small.csv.predictions.jsonl").exists()
