"""The plan's pass over the bytes (core/batch/boundaries.py) against the reader itself
(core/batch/lines.py): the same quote rule, the same entries (rows and over-long lines, what a
chunk counts), found again at the same bytes; no storage."""

from __future__ import annotations

import io
import random

import pytest

from core.batch import boundaries, lines
from core.batch.boundaries import INSIDE, OUTSIDE, Scanner, ends_inside_quotes, header_end

LINES = [
    'a,b,c', '"a",b', 'a,"b', 'x"y,z', '"a""b",c', '"",x', 'a,"b""', '"', '""', '"""', 'a,"', '5.1,"3.5\r',
    '",1.4', 'é,"ü', 'ab"c"d', ',"', '","', '"a,b",",c"',
]


@pytest.mark.parametrize("line", LINES)
@pytest.mark.parametrize("inside", [False, True])
def test_the_byte_rule_is_the_readers_rule(line, inside):
    assert ends_inside_quotes(line.encode(), inside) == lines._ends_inside_quotes(line, inside)


def entries(data: bytes, quoted: bool) -> int:
    """Entries as one run counts them: what its chunks hold."""
    return sum(len(chunk) for chunk in lines.line_chunks(io.BytesIO(data), 10**6, quoted=quoted))


def scan(data: bytes, quoted: bool = True, block: int = 7, **options) -> Scanner:
    scanner = Scanner(quoted, at_file_start=True, **options)
    for at in range(0, len(data), block):  # lines cut across the blocks fed
        scanner.feed(data[at:at + block])
        if scanner.found is not None:
            return scanner
    scanner.finish()
    return scanner


def test_a_range_is_scanned_from_both_states():
    answer = scan(b'x",1\nplain\n\n1,"open\n').finish()
    assert answer == {"newlines": 4, "outside": {"state": INSIDE, "entries": 3},
                      "inside": {"state": INSIDE, "entries": 2}}  # inside: 'x",1' only closes a quote
    assert scan(b"1,2\n \r\n3,4\n").finish() == {"newlines": 3, "outside": {"state": OUTSIDE, "entries": 2},
                                                 "inside": {"state": INSIDE, "entries": 0}}


def random_file(rng: random.Random, long_lines: bool) -> bytes:
    pieces = []
    for _ in range(rng.randint(0, 14)):
        kind = rng.random()
        if kind < 0.1:
            pieces.append(rng.choice(["", " ", " \r", "\t\t"]))  # blank, however long
        elif kind < 0.2 and long_lines:
            pieces.append(rng.choice(["x", 'a,"y']) * rng.randint(5, 20))
        elif kind < 0.35:
            pieces.append(rng.choice(['a,"b', 'c",d', 'x"y,"z', '"', '5.1,"3.5\r', '"é,ü""']))
        else:
            pieces.append(",".join(str(rng.randint(0, 99)) for _ in range(3)))
    text = rng.choice(["", "\ufeff"]) + "\n".join(pieces) + rng.choice(["", "\n", "\r\n"])
    return text.encode()


@pytest.mark.parametrize("long_lines", [False, True])
def test_entries_are_counted_and_found_again_as_the_reader_reads_them(monkeypatch, long_lines):
    """Random files of every kind of line (blank, quoted over lines, unclosed quotes, a BOM, and
    with a tiny MAX_LINE_BYTES over-long lines), fed in blocks of every size: where the scan
    says it knows, its count is the reader's, and each entry it finds is where the reader has
    that many entries before it."""
    if long_lines:
        monkeypatch.setattr(lines, "MAX_LINE_BYTES", 20)
        monkeypatch.setattr(boundaries, "MAX_LINE_BYTES", 20)
        monkeypatch.setattr(lines, "BLOCK_BYTES", 16)
    rng = random.Random(19)
    known = 0
    for _ in range(150):
        data = random_file(rng, long_lines)
        for quoted in (True, False):
            outcome = scan(data, quoted, block=rng.choice([1, 5, 16, 64])).finish()["outside"]
            if outcome is None:
                assert long_lines, data  # only an over-long line can make a file unknown
                continue
            known += 1
            assert outcome["entries"] == entries(data, quoted), data
            for stop in range(outcome["entries"]):
                offset, newlines = scan(data, quoted, block=rng.choice([1, 3, 64]), starts=(OUTSIDE,),
                                        stop_at=stop).found
                assert data[:offset].count(b"\n") == newlines
                assert (entries(data[:offset], quoted) if offset else 0) == stop, (data, stop)
    assert known > 200


def test_an_over_long_line_with_a_quote_ends_what_can_be_known(monkeypatch):
    monkeypatch.setattr(boundaries, "MAX_LINE_BYTES", 20)
    assert scan(b"1,2\n" + b"x" * 30 + b"\n3,4\n", block=8).finish()["outside"] == {"state": OUTSIDE, "entries": 3}
    answer = scan(b"1,2\n" + b'x,"' + b"y" * 30 + b"\n3,4\n", block=8).finish()
    assert answer["outside"] is None and answer["inside"] is None


@pytest.mark.parametrize("data, expected", [
    (b"a,b\n1,2\n", 4),
    (b"\xef\xbb\xbfa,b\r\n1,2\r\n", 8),
    (b"\n \r\n\xef\xbb\xbfa,b\n1,2\n", 11),  # blank lines first; a BOM not at byte 0 is part of the line
    (b'"a\nb",c\n1,2\n', 8),  # a header record over two lines
    (b"a,b", None),  # no line end after it
    (b'"a,b\n1,2\n', None),  # a quote that never closes
])
def test_the_end_of_the_header_record(data, expected):
    assert header_end([data[:3], data[3:]]) == expected


def test_a_line_of_spaces_is_blank_in_every_block():
    """lines.py's fast path for a block of long lines took "  " for a row; now blank, as elsewhere."""
    assert entries(b"1,2\n  \n3,4\n", True) == 2 == entries(b"1,2\n\n  \n3,4\n", True)
