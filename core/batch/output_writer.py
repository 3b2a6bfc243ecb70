"""A second process that formats and writes the predictions file while this one reads and predicts.

Why a process: on a large file, turning probabilities into text (``repr`` of every float) costs
about as much as parsing the CSV, and both hold the GIL, so a thread would gain nothing. Lambda
(from 1,769 MB), Cloud Functions and Azure give the function two or more vCPUs; with a second
process the two halves run side by side. The writer is a plain ``python -c`` child with stdin as
its only input: no ``multiprocessing`` (Lambda has no ``/dev/shm`` for its queues), no fork of a
process that may hold gRPC or SDK threads, and it imports only the standard library and
:mod:`core.batch.line_format`, so it starts in tens of milliseconds.

The stream on the child's stdin: a header (8-byte length + JSON: the file's path and the line
format), then messages of ``kind (1 byte), n (8 bytes), width (8 bytes)`` and their payload::

    P  n rows, width classes: line numbers (int64 * n), class indexes (int64 * n),
       probabilities by class (float64 * n * width, one class after the other)
    F  n rows: line numbers (int64 * n), predictions (float64 * n)
    T  n bytes of lines already formatted (UTF-8)

The pipe's own back-pressure bounds memory: the reader waits while the writer is a chunk behind.
The child appends to the file and exits 0 when stdin closes; anything else is a failure of the
run (nothing is published, see engine.py).
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from array import array
from typing import Any, BinaryIO

from core.batch.line_format import LineFormat
from core.errors import ServerlessMLError

_HEADER = struct.Struct("=cQQ")
_LENGTH = struct.Struct("=Q")
_START = "from core.batch.output_writer import serve; serve()"


class WriterProcessFailed(ServerlessMLError):
    """The writer process died or refused its input: the predictions file is incomplete, so
    nothing is published and the run fails as a whole (a trigger's retry starts clean)."""

    code = "batch_output_failed"


class OutputWriterProcess:
    """This side of the pipe: starts the child and sends it chunks to append to ``path``."""

    def __init__(self, path: str, line_format: LineFormat) -> None:
        env = dict(os.environ)
        # the child must import core exactly as this process did (a Lambda task root, a zip on
        # sys.path, an editable install)
        env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
        self._process = subprocess.Popen(
            [sys.executable, "-c", _START], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, env=env,
        )
        header = json.dumps({"path": path, "format": line_format.wire()}).encode()
        self._send(_LENGTH.pack(len(header)), header)

    def probabilities(self, numbers: Any, class_indexes: Any, probabilities: Any) -> None:
        """Rows of a classifier: ``probabilities`` a finite float64 array (rows, classes)."""
        import numpy as np

        rows, width = probabilities.shape
        self._send(
            _HEADER.pack(b"P", rows, width),
            np.asarray(numbers, dtype=np.int64).tobytes(),
            np.asarray(class_indexes, dtype=np.int64).tobytes(),
            np.asarray(probabilities, dtype=np.float64).tobytes(order="F"),
        )

    def floats(self, numbers: Any, predictions: Any) -> None:
        """Rows of a regressor: ``predictions`` a finite float64 array."""
        import numpy as np

        self._send(
            _HEADER.pack(b"F", len(predictions), 1),
            np.asarray(numbers, dtype=np.int64).tobytes(),
            np.asarray(predictions, dtype=np.float64).tobytes(),
        )

    def text(self, lines: str) -> None:
        data = lines.encode("utf-8")
        self._send(_HEADER.pack(b"T", len(data), 0), data)

    def close(self) -> None:
        """Wait until every line is on disk; raise WriterProcessFailed if the child did not finish."""
        try:
            _, stderr = self._process.communicate()  # closes stdin: the end of the stream
        except (BrokenPipeError, OSError):  # the child died with bytes still unflushed
            _, stderr = self._process.communicate()
        if self._process.returncode != 0:
            raise WriterProcessFailed(_failure(self._process.returncode, stderr))

    def abort(self) -> None:
        if self._process.poll() is None:
            self._process.kill()
        self._process.communicate()

    def _send(self, *parts: bytes) -> None:
        try:
            for part in parts:
                self._process.stdin.write(part)  # type: ignore[union-attr]
        except (BrokenPipeError, OSError):
            self.abort()
            raise WriterProcessFailed(_failure(self._process.returncode, b"")) from None


def _failure(returncode: Any, stderr: bytes) -> str:
    last = stderr.decode("utf-8", "replace").strip().splitlines()[-1:] if stderr else []
    why = f": {last[0][:300]}" if last else ""
    return f"the predictions writer process stopped with exit status {returncode}{why}"


def serve(stream: BinaryIO | None = None) -> None:
    """The child: read the header and messages from stdin, append lines to the file."""
    source = stream or sys.stdin.buffer
    (length,) = _LENGTH.unpack(_exactly(source, _LENGTH.size))
    header = json.loads(_exactly(source, length))
    line_format = LineFormat.from_wire(header["format"])
    with open(header["path"], "a", encoding="utf-8", newline="\n") as out:
        while True:
            head = source.read(_HEADER.size)
            if not head:
                break
            if len(head) < _HEADER.size:
                raise EOFError("the stream ended inside a message header")
            kind, rows, width = _HEADER.unpack(head)
            if kind == b"T":
                out.write(_exactly(source, rows).decode("utf-8"))
                continue
            numbers = _int64s(_exactly(source, rows * 8))
            if kind == b"P":
                classes = _int64s(_exactly(source, rows * 8))
                data = memoryview(_exactly(source, rows * width * 8)).cast("d")
                columns = [data[j * rows:(j + 1) * rows].tolist() for j in range(width)]
                out.writelines(line_format.probability_lines(numbers, classes, columns))
            elif kind == b"F":
                predictions = memoryview(_exactly(source, rows * 8)).cast("d").tolist()
                out.writelines(line_format.float_lines(numbers, predictions))
            else:
                raise ValueError(f"unknown message kind {kind!r}")


def _int64s(data: bytes) -> list[int]:
    values = array("q")
    values.frombytes(data)
    return values.tolist()


def _exactly(source: BinaryIO, size: int) -> bytes:
    data = source.read(size)
    if len(data) != size:
        raise EOFError(f"the stream ended after {len(data)} of {size} bytes")
    return data
