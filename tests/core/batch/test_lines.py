"""Lines and their numbers, whatever the blocks, chunks, line ends and encoding mishaps."""

from __future__ import annotations

import io

import pytest

from core.batch import lines as lines_module
from core.batch.lines import line_chunks


def numbered(data: bytes, chunk_lines: int = 100) -> list[tuple[int, str]]:
    found = []
    for chunk in line_chunks(io.BytesIO(data), chunk_lines):
        found.extend(zip(chunk.numbers, chunk.lines))
    return found


def test_blank_lines_keep_their_numbers_but_are_not_rows():
    assert numbered(b"a\n\nb\n   \nc") == [(1, "a"), (3, "b"), (5, "c")]


def test_windows_line_ends_and_a_byte_order_mark_are_not_data():
    assert numbered(b"\xef\xbb\xbfh1,h2\r\n1,2\r\n") == [(1, "h1,h2\r"), (2, "1,2\r")]


def test_chunks_hold_at_most_the_asked_number_of_lines():
    chunks = list(line_chunks(io.BytesIO(b"".join(b"%d\n" % i for i in range(10))), 4))
    assert [len(c) for c in chunks] == [4, 4, 2]
    assert chunks[2].numbers == [9, 10]


def test_a_character_split_across_blocks_is_read_whole(monkeypatch):
    monkeypatch.setattr(lines_module, "BLOCK_BYTES", 3)
    assert numbered("é1\nxé\n".encode()) == [(1, "é1"), (2, "xé")]


def test_invalid_utf8_spoils_only_its_line():
    assert numbered(b"1\n\xff\xfe\n3\n") == [(1, "1"), (2, "\ufffd\ufffd"), (3, "3")]


@pytest.mark.parametrize("block", [4, 7, 1 << 20])
def test_an_over_long_line_is_reported_not_held(monkeypatch, block):
    monkeypatch.setattr(lines_module, "BLOCK_BYTES", block)
    monkeypatch.setattr(lines_module, "MAX_LINE_BYTES", 10)
    chunks = list(line_chunks(io.BytesIO(b"ok\n" + b"x" * 50 + b"\nfine\n"), 100))
    assert [n for c in chunks for n in c.too_long] == [2]
    assert [(n, s) for c in chunks for n, s in zip(c.numbers, c.lines)] == [(1, "ok"), (3, "fine")]
