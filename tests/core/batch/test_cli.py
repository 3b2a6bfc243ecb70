"""`serverless-ml batch INPUT [OUTPUT]` as a user runs it: a real process on real files."""

from __future__ import annotations

import json
import subprocess

from tests.support import isolated_env, serve_command

HEADER = "sepal_length,sepal_width,petal_length,petal_width\n"


def batch_command(cwd, *args: str, **settings: str) -> subprocess.CompletedProcess:
    env = isolated_env()
    env.pop("BATCH_CHUNK_ROWS", None)
    env.update(settings)
    return subprocess.run(
        [*serve_command(), "batch", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def test_a_local_path_is_predicted_into_the_output_folder(tmp_path, demo_model_path):
    (tmp_path / "day.csv").write_text(HEADER + "5.1,3.5,1.4,0.2\n6.7,3.0,5.2,2.3\n")
    done = batch_command(tmp_path, "day.csv", "out", "--model", str(demo_model_path))
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["rows_predicted"] == 2 and summary["rows_failed"] == 0
    assert summary["predictions_uri"] == (tmp_path / "out" / "day.csv.predictions.jsonl").as_uri()
    lines = (tmp_path / "out" / "day.csv.predictions.jsonl").read_text().splitlines()
    assert [json.loads(line)["prediction"] for line in lines] == ["setosa", "virginica"]


def test_failed_lines_exit_1_and_name_the_errors_file(tmp_path, demo_model_uri):
    (tmp_path / "bad.jsonl").write_text('[5.1, 3.5, 1.4, 0.2]\n{"oops": 1}\n')
    done = batch_command(tmp_path, str(tmp_path / "bad.jsonl"), "--model", demo_model_uri)
    assert done.returncode == 1, done.stderr
    errors = tmp_path / "predictions" / "bad.jsonl.errors.jsonl"
    assert f"1 line(s) failed; see {errors.as_uri()}" in done.stderr
    assert json.loads(errors.read_text())["line"] == 2


def test_an_input_that_is_not_a_batch_file_exits_2_with_the_reason(tmp_path, demo_model_uri):
    (tmp_path / "model.pkl").write_bytes(b"x")
    done = batch_command(tmp_path, "model.pkl", "--model", demo_model_uri)
    assert done.returncode == 2
    assert "skipped: 'model.pkl' is not a batch input; expected a name ending in .csv, .jsonl" in done.stderr


def test_an_output_folder_equal_to_the_input_folder_is_refused(tmp_path, demo_model_uri):
    (tmp_path / "day.csv").write_text(HEADER + "5.1,3.5,1.4,0.2\n")
    done = batch_command(tmp_path, "day.csv", ".", "--model", demo_model_uri)
    assert done.returncode == 2
    assert "is the folder the inputs are in" in done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["day.csv"]


def test_a_missing_input_exits_2_saying_so(tmp_path, demo_model_uri):
    done = batch_command(tmp_path, "absent.csv", "--model", demo_model_uri)
    assert done.returncode == 2
    assert "serverless-ml: file://.../absent.csv does not exist" in done.stderr


def test_a_refused_header_says_the_file_was_refused_and_why(tmp_path, demo_model_uri):
    (tmp_path / "typo.csv").write_text("sepal_length,sepal_width,petal_length,petal_widht\n5.1,3.5,1.4,0.2\n")
    done = batch_command(tmp_path, "typo.csv", "--model", demo_model_uri)
    assert done.returncode == 1
    errors = (tmp_path / "predictions" / "typo.csv.errors.jsonl").as_uri()
    assert (
        "serverless-ml: the file was refused: the header (line 1): missing feature 'petal_width'; unknown feature "
        "'petal_widht' (did you mean 'petal_width'?); expected 4 features: sepal_length, sepal_width, petal_length, "
        f"petal_width; see {errors}"
    ) in done.stderr
    assert "line(s) failed" not in done.stderr


def test_two_workers_write_what_one_process_writes(tmp_path, demo_model_uri):
    rows = [f"{4 + n % 40 / 10:.1f},{2 + n % 23 / 10:.1f},{1 + n % 60 / 10:.1f},{n % 25 / 10:.1f}" for n in range(400)]
    rows[123] = "5.1,abc,1.4,0.2"
    rows[301] = '5.1,"3.5\n",1.4'
    (tmp_path / "day.csv").write_text(HEADER + "\n".join(rows) + "\n")
    one = batch_command(tmp_path, "day.csv", "one", "--model", demo_model_uri, BATCH_CHUNK_ROWS="20")
    two = batch_command(tmp_path, "day.csv", "two", "--model", demo_model_uri, "--workers", "2",
                        BATCH_FANOUT_PART_BYTES="1024", BATCH_CHUNK_ROWS="20", LOG_LEVEL="WARNING")

    assert (one.returncode, two.returncode) == (1, 1), two.stderr
    summary = json.loads(two.stdout)
    assert summary["fanout"]["workers"] == 2 and summary["fanout"]["parts"] >= 4
    assert summary["rows_failed"] == 2 and summary["rows_read"] == 400
    for name in ("day.csv.predictions.jsonl", "day.csv.errors.jsonl"):
        assert (tmp_path / "two" / name).read_bytes() == (tmp_path / "one" / name).read_bytes()
    assert sorted(p.name for p in (tmp_path / "two").iterdir()) == ["day.csv.errors.jsonl", "day.csv.predictions.jsonl"]


def test_a_number_of_workers_out_of_range_is_refused(tmp_path, demo_model_uri):
    done = batch_command(tmp_path, "day.csv", "--model", demo_model_uri, "--workers", "0")
    assert done.returncode == 2
    assert "argument --workers: expected a number of processes from 1 to 256; got '0'" in done.stderr
