"""The plan's pass over the bytes (core/batch/boundaries.py): quote states from both starting
states, line ends, and the end of a CSV header; checked against the reader's own rule
(core/batch/lines.py), no storage."""

from __future__ import annotations

import pytest

from core.batch import lines
from core.batch.boundaries import BOTH, INSIDE, OUTSIDE, RangeScan, Scanner, ends_inside_quotes, header_end
from core.batch.lines import MAX_LINE_BYTES

LINES = [
    'a,b,c', '"a",b', 'a,"b', 'x"y,z', '"a""b",c', '"",x', 'a,"b""', '"', '""', '"""', 'a,"', '5.1,"3.5\r',
    '",1.4', 'é,"ü', 'ab"c"d', ',"', '","', '"a,b",",c"',
]


@pytest.mark.parametrize("line", LINES)
@pytest.mark.parametrize("inside", [False, True])
def test_the_byte_rule_is_the_readers_rule(line, inside):
    assert ends_inside_quotes(line.encode(), inside) == lines._ends_inside_quotes(line, inside)


def scan(data: bytes, *, quoted: bool = True, at_file_start: bool = False, block: int = 7) -> RangeScan:
    scanner = Scanner(quoted, at_file_start)
    for at in range(0, len(data), block):  # lines cut across the blocks fed
        scanner.feed(data[at:at + block])
    return scanner.finish()


def test_a_range_is_scanned_from_both_states_until_they_agree():
    # the first line closes a quote when inside, opens none when outside; from then on they agree
    data = b'x",1\nplain\n1,"open\n'
    assert scan(data) == RangeScan(3, (INSIDE,), (INSIDE,))
    assert scan(b"1,2\n3,4\n") == RangeScan(2, (OUTSIDE,), (INSIDE,))  # no quote: the state goes through
    # a record over two lines ends outside whichever the start: from inside, the first '"' closes
    assert scan(b'1,"two\nlines",3\n') == RangeScan(2, (OUTSIDE,), (OUTSIDE,))
    assert RangeScan(0, (OUTSIDE,), (INSIDE,)).after((OUTSIDE, INSIDE)) == BOTH


def test_line_ends_are_counted_and_jsonl_has_no_quote_state():
    data = b'{"a": "x\\"y"}\n\n[1,2]'
    assert scan(data, quoted=False) == RangeScan(2, (OUTSIDE,), (INSIDE,))
    assert scan(data, quoted=False, block=1).newlines == 2


def test_a_bom_at_the_start_of_the_file_is_not_part_of_the_first_line():
    data = '\ufeff"name",note\n'.encode()
    assert scan(data, at_file_start=True).after_outside == (OUTSIDE,)
    assert scan(data, at_file_start=False).after_outside == (OUTSIDE,)  # BOM then '"': ordinary quote...
    assert scan('\ufeff"na\n'.encode(), at_file_start=True).after_outside == (INSIDE,)
    assert scan('\ufeff"na\n'.encode(), at_file_start=False).after_outside == (OUTSIDE,)  # ...in the middle of a field


def test_an_over_long_line_makes_the_state_unknown_until_a_quote_settles_it():
    long_line = b"1," + b"x" * (MAX_LINE_BYTES + 10) + b"\n"
    assert scan(long_line + b"2,3\n", block=64 * 1024) == RangeScan(2, BOTH, BOTH)
    # a line that closes a quote from either state: '"' at the start opens from outside, closes from inside...
    settled = scan(long_line + b'a,"b"\n', block=64 * 1024)
    assert settled == RangeScan(2, (OUTSIDE,), (OUTSIDE,))
    # a line just under the limit is read whole
    assert scan(b"1," + b"x" * (MAX_LINE_BYTES - 10) + b"\n", block=64 * 1024) == RangeScan(1, (OUTSIDE,), (INSIDE,))


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
