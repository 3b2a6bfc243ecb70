"""A byte stream -> chunks of numbered rows of text, holding at most one block and one chunk.

Lines are cut on ``\\n`` in bytes, before decoding: ``\\n`` never occurs inside a UTF-8
multi-byte character, so a block boundary never splits a character, and no line longer than
:data:`MAX_LINE_BYTES` is ever held whole (a file without newlines cannot exhaust memory).
Invalid UTF-8 becomes U+FFFD: that one row then fails with a message, the rest are read.

For CSV (``quoted=True``) a row is a record, not a line: a ``\\n`` inside a quoted field does not
end it. The record keeps the number of the line it starts on, and the lines it spans keep theirs
(the next row is numbered as the file's own lines are)::

    name,note          line 1
    ann,"two           line 2: the row ann,"two\\nlines" (line 2)
    lines"
    bob,one            line 4

A record is bounded by :data:`MAX_LINE_BYTES` too: a longer one (an unclosed quote, most often)
is reported at its first line and skipped until its quote closes, never held. Blocks without a
``"`` (every all-numeric file) are cut as plain lines, with no per-line scan.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

BLOCK_BYTES = 1 << 18  # 256 KiB: a few thousand lines; reads stay large enough to be cheap
MAX_LINE_BYTES = 1 << 20
_BOM = "\ufeff"


@dataclass
class LineChunk:
    """Non-blank rows with the 1-based number of the line each starts on, and the over-long rows."""

    numbers: list[int] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)
    too_long: list[int] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.lines) + len(self.too_long)


def line_chunks(
    stream: BinaryIO, chunk_lines: int, *, quoted: bool = False, first_line: int = 1, offset: int = 0
) -> Iterator[LineChunk]:
    """Yield chunks of up to ``chunk_lines`` rows (non-blank or over-long) read from ``stream``.

    Blank lines are neither rows nor errors; their numbers are skipped. ``quoted``: CSV records,
    whose quoted fields may hold line ends.

    ``first_line``, ``offset``: the stream is a range of a larger file that starts at byte
    ``offset``, at the start of line ``first_line``, outside any quoted field (a part of a fanned-out
    run, core/batch/fanout.py). Its blocks are then read on the whole file's grid of BLOCK_BYTES, so
    every line is read exactly as a run over the whole file reads it, over-long ones included.
    """
    pending = LineChunk()
    records = _Records(pending) if quoted else None
    number = first_line - 1
    carry = b""
    skipping_long_line = False
    first = offset == 0  # a BOM is stripped at the start of the file only
    size = BLOCK_BYTES - offset % BLOCK_BYTES
    while True:
        block = stream.read(size)
        size = BLOCK_BYTES
        if not block:
            break
        end = block.rfind(b"\n")
        if end < 0:  # no line ends in this block: the line goes on
            if not skipping_long_line:
                carry += block
                if len(carry) > MAX_LINE_BYTES:
                    number += 1
                    _too_long(pending, records, number)
                    carry, skipping_long_line = b"", True
            continue
        head, rest = block[: end + 1], block[end + 1 :]
        if skipping_long_line:  # the rest of an over-long line: drop it, its number is taken
            head = head[head.index(b"\n") + 1 :]
            skipping_long_line = False
        text = (carry + head).decode("utf-8", "replace")
        carry = rest
        if first:
            text = text.removeprefix(_BOM)  # spreadsheets write one; it is not part of the header
            first = False
        pieces = text.split("\n")
        pieces.pop()  # the empty string after the last "\n"
        _add_lines(pending, records, number + 1, pieces, text)
        number += len(pieces)
        if len(carry) > MAX_LINE_BYTES:
            number += 1
            _too_long(pending, records, number)
            carry, skipping_long_line = b"", True
        while len(pending) >= chunk_lines:
            chunk, pending = _split(pending, chunk_lines)
            if records is not None:
                records.chunk = pending
            yield chunk
    if carry and not skipping_long_line:  # a last line without a final newline
        last = carry.decode("utf-8", "replace")
        last = last.removeprefix(_BOM) if first else last
        _add_lines(pending, records, number + 1, [last], last)
    if records is not None:
        records.finish()  # a quote still open at the end of the file: the row as it stands
    while len(pending):
        chunk, pending = _split(pending, chunk_lines)
        yield chunk


def _add_lines(pending: LineChunk, records: _Records | None, number: int, pieces: list[str], text: str) -> None:
    """Add ``pieces`` (``text`` split at its line ends), numbered from ``number``: through the CSV
    record joiner where a quote may carry a field over a line end, else straight to the chunk."""
    if records is not None and (records.open or '"' in text):
        records.add(number, pieces)
    else:
        _add(pending, number, pieces)


def _too_long(chunk: LineChunk, records: _Records | None, number: int) -> None:
    if records is not None and records.open:
        records.abandon()  # the row it belongs to is the one that is too long
    else:
        chunk.too_long.append(number)


class _Records:
    """Joins the lines of a CSV record whose quoted field holds line ends.

    The quote state follows Python's csv module (and RFC 4180): a ``"`` opens a quoted field only
    at the start of a field; inside one, ``""`` is a quote and a lone ``"`` closes it; elsewhere
    a ``"`` is an ordinary character.
    """

    def __init__(self, chunk: LineChunk) -> None:
        self.chunk = chunk
        self.open = False  # a record's quoted field runs past the lines seen so far
        self.start = 0  # the line its record starts on
        self.parts: list[str] = []
        self.size = 0
        self.dropping = False  # the open record is already reported as too long

    def add(self, first_number: int, pieces: list[str]) -> None:
        chunk = self.chunk
        for number, line in enumerate(pieces, first_number):
            if not self.open:
                if '"' not in line or not _ends_inside_quotes(line, False):
                    if len(line) > MAX_LINE_BYTES:
                        chunk.too_long.append(number)
                    elif line and not line.isspace():
                        chunk.numbers.append(number)
                        chunk.lines.append(line)
                    continue
                self.open, self.start, self.parts, self.size, self.dropping = True, number, [line], len(line), False
                continue
            still_open = _ends_inside_quotes(line, True)
            if not self.dropping:
                self.parts.append(line)
                self.size += len(line) + 1
                if self.size > MAX_LINE_BYTES:
                    self.abandon(keep_open=True)
            if not still_open:
                self._close()

    def abandon(self, keep_open: bool = False) -> None:
        """Report the open record as too long; with ``keep_open``, skip its lines until it ends."""
        self.chunk.too_long.append(self.start)
        self.parts, self.size, self.dropping = [], 0, True
        if not keep_open:
            self.open = False

    def finish(self) -> None:
        if self.open:
            self._close()

    def _close(self) -> None:
        if not self.dropping:
            self.chunk.numbers.append(self.start)
            self.chunk.lines.append("\n".join(self.parts))
        self.open, self.parts, self.size, self.dropping = False, [], 0, False


def _ends_inside_quotes(line: str, inside: bool) -> bool:
    """Whether a quoted field is still open at the end of ``line`` (``inside``: open at its start)."""
    i = line.find('"')
    while i >= 0:
        if inside:
            if line.startswith('"', i + 1):  # "" inside quotes: a quote character
                i = line.find('"', i + 2)
                continue
            inside = False
        elif i == 0 or line[i - 1] == ",":
            inside = True
        i = line.find('"', i + 1)
    return inside


def _add(chunk: LineChunk, first_number: int, pieces: list[str]) -> None:
    lengths = list(map(len, pieces))
    # the usual block: all plain rows. A line of spaces (" \r") is blank however long: without the
    # isspace test it would be a row here and blank in the loop below, as other lines decide
    if pieces and min(lengths) > 1 and max(lengths) <= MAX_LINE_BYTES and not any(map(str.isspace, pieces)):
        chunk.numbers.extend(range(first_number, first_number + len(pieces)))
        chunk.lines.extend(pieces)
        return
    for number, line in enumerate(pieces, first_number):  # blank or over-long lines among them
        if len(line) > MAX_LINE_BYTES:
            chunk.too_long.append(number)
        elif line and not line.isspace():
            chunk.numbers.append(number)
            chunk.lines.append(line)


def _split(chunk: LineChunk, size: int) -> tuple[LineChunk, LineChunk]:
    """The first ``size`` rows of ``chunk`` (rows and over-long rows, by number) and the rest."""
    if not chunk.too_long:
        return (
            LineChunk(chunk.numbers[:size], chunk.lines[:size]),
            LineChunk(chunk.numbers[size:], chunk.lines[size:]),
        )
    merged = sorted([(n, i) for i, n in enumerate(chunk.numbers)] + [(n, -1) for n in chunk.too_long])
    cut = merged[size - 1][0] if len(merged) > size else merged[-1][0]
    head_rows = sum(1 for n in chunk.numbers if n <= cut)
    return (
        LineChunk(chunk.numbers[:head_rows], chunk.lines[:head_rows], [n for n in chunk.too_long if n <= cut]),
        LineChunk(chunk.numbers[head_rows:], chunk.lines[head_rows:], [n for n in chunk.too_long if n > cut]),
    )
