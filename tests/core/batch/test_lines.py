"""Lines and their numbers, whatever the blocks, chunks, line ends and encoding mishaps."""

from __future__ import annotations

import io

import pytest

from core.batch import lines as lines_module
from core.batch.lines import line_chunks


def numbered(data: bytes, chunk_lines: int = 100) -> list[tuple[int, str]]:
    found = []
    for chunk in line_chunks(io.BytesIO(data), chunk_lines):
        found.extend(zip(chunk.numbers, chunk.lines, strict=True))
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
    assert [(n, s) for c in chunks for n, s in zip(c.numbers, c.lines, strict=True)] == [(1, "ok"), (3, "fine")]


def records(data: bytes, chunk_lines: int = 100) -> list[tuple[int, str]]:
    found = []
    for chunk in line_chunks(io.BytesIO(data), chunk_lines, quoted=True):
        found.extend(zip(chunk.numbers, chunk.lines, strict=True))
    return found


def test_a_quoted_line_end_does_not_end_a_csv_row_and_numbers_stay_the_files():
    data = b'h1,h2\n1,"a\nb"\n2,"x, y"\n\n3,"c\r\n\r\nd"\r\n4,z\n'
    assert records(data) == [(1, "h1,h2"), (2, '1,"a\nb"'), (4, '2,"x, y"'), (6, '3,"c\r\n\r\nd"\r'), (9, "4,z")]


@pytest.mark.parametrize("line, open_at_end", [
    ('a,"b', True), ('a,"b""', True), ('a,"b"""', False), ('a,b"c,d', False), ('"",x', False), ('a, "b', False),
])
def test_a_quote_opens_a_field_only_at_its_start_as_the_csv_module_reads_it(line, open_at_end):
    import csv

    data = (line + "\nnext,row\n").encode()
    rows = records(data)
    assert len(rows) == (1 if open_at_end else 2)
    assert len(list(csv.reader([r for _, r in rows]))) == len(rows)


@pytest.mark.parametrize("block", [3, 5, 1 << 18])
def test_a_quoted_row_across_blocks_and_chunks_is_read_whole(monkeypatch, block):
    monkeypatch.setattr(lines_module, "BLOCK_BYTES", block)
    data = b"".join(b'%d,"line\nbreak"\n' % i for i in range(6))
    assert records(data, chunk_lines=4) == [(1 + 2 * i, f'{i},"line\nbreak"') for i in range(6)]


def test_an_unclosed_quote_is_one_over_long_row_not_the_whole_file_in_memory(monkeypatch):
    monkeypatch.setattr(lines_module, "BLOCK_BYTES", 8)
    monkeypatch.setattr(lines_module, "MAX_LINE_BYTES", 20)
    data = b'ok,1\nbad,"never closed\n' + b"more text\n" * 10 + b'end"\nfine,2\n'
    chunks = list(line_chunks(io.BytesIO(data), 100, quoted=True))
    assert [n for c in chunks for n in c.too_long] == [2]
    assert [(n, s) for c in chunks for n, s in zip(c.numbers, c.lines, strict=True)] == [(1, "ok,1"), (14, "fine,2")]
