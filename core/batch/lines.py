"""A byte stream -> chunks of numbered text lines, holding at most one block and one chunk.

Lines are cut on ``\\n`` in bytes, before decoding: ``\\n`` never occurs inside a UTF-8
multi-byte character, so a block boundary never splits a character, and no line longer than
:data:`MAX_LINE_BYTES` is ever held whole (a file without newlines cannot exhaust memory).
Invalid UTF-8 becomes U+FFFD: that one row then fails with a message, the rest are read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import BinaryIO, Iterator

BLOCK_BYTES = 1 << 18  # 256 KiB: a few thousand lines; reads stay large enough to be cheap
MAX_LINE_BYTES = 1 << 20
_BOM = "\ufeff"


@dataclass
class LineChunk:
    """Non-blank lines with their 1-based line numbers in the file, and the over-long lines."""

    numbers: list[int] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)
    too_long: list[int] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.lines) + len(self.too_long)


def line_chunks(stream: BinaryIO, chunk_lines: int) -> Iterator[LineChunk]:
    """Yield chunks of up to ``chunk_lines`` lines (non-blank or over-long) read from ``stream``.

    Blank lines are neither rows nor errors; their numbers are skipped.
    """
    pending = LineChunk()
    number = 0
    carry = b""
    skipping_long_line = False
    first = True
    while True:
        block = stream.read(BLOCK_BYTES)
        if not block:
            break
        end = block.rfind(b"\n")
        if end < 0:  # no line ends in this block: the line goes on
            if not skipping_long_line:
                carry += block
                if len(carry) > MAX_LINE_BYTES:
                    number += 1
                    pending.too_long.append(number)
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
        _add(pending, number + 1, pieces)
        number += len(pieces)
        if len(carry) > MAX_LINE_BYTES:
            number += 1
            pending.too_long.append(number)
            carry, skipping_long_line = b"", True
        while len(pending) >= chunk_lines:
            chunk, pending = _split(pending, chunk_lines)
            yield chunk
    if carry and not skipping_long_line:  # a last line without a final newline
        last = carry.decode("utf-8", "replace")
        _add(pending, number + 1, [last.removeprefix(_BOM) if first else last])
    while len(pending):
        chunk, pending = _split(pending, chunk_lines)
        yield chunk


def _add(chunk: LineChunk, first_number: int, pieces: list[str]) -> None:
    lengths = list(map(len, pieces))
    if pieces and min(lengths) > 1 and max(lengths) <= MAX_LINE_BYTES:  # the usual block: all plain rows
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
    """The first ``size`` lines of ``chunk`` (rows and over-long lines, by number) and the rest."""
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
