"""Where a file may be cut into ranges that a reader can take one by one: the pass over the bytes
that a fan-out plan makes (core/batch/fanout.py), one range of the file at a time.

A range is cut only at the start of a line (after a ``\\n``). In JSONL any line start will do. In
CSV a line start may sit inside a quoted field that holds a line end, so a cut is taken only
where the quote state of core/batch/lines.py (the csv module's rule: a ``"`` opens a quoted field
at the start of a field only) is *outside* for certain. That state depends on everything before,
so a range is scanned from both states at once: :class:`RangeScan` tells, for a range started
outside and for one started inside a quoted field, which states are possible at its end, and
the plan combines the ranges in order, from "outside" at byte 0::

    range:            0        1        2
    from outside ->   {out}    {out}    {in}      the state at each cut, combined from the start:
    from inside  ->   {in}     {out}    {in}      out, out, in: cut after ranges 0 and 1 only

The two simulations converge at the first line with a quote in almost every file, and lines
without a ``"`` are counted with ``bytes.count``, never split: the pass reads at the speed of
the storage, far faster than rows are predicted. A line over :data:`MAX_LINE_BYTES` makes the
state unknown (both): the reader reports such a line and may drop its quotes, depending on where
its blocks fall, so no cut is taken until a later quote settles the state again.

The same pass counts the line ends, so each range knows the number of its first line in the
whole file. :func:`header_end` finds the end of a CSV's header record, which every part reads
before its own range.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

from core.batch.lines import MAX_LINE_BYTES

_BOM = b"\xef\xbb\xbf"
OUTSIDE, INSIDE = False, True
BOTH = (OUTSIDE, INSIDE)


class RangeScan(NamedTuple):
    """What one line-aligned range holds: its line ends, and the quote states possible at its end
    when it starts outside (``after_outside``) or inside (``after_inside``) a quoted field."""

    newlines: int
    after_outside: tuple[bool, ...]
    after_inside: tuple[bool, ...]

    def after(self, states: Iterable[bool]) -> tuple[bool, ...]:
        """The states possible at the end, from any of ``states`` at the start."""
        found: set[bool] = set()
        for state in states:
            found.update(self.after_inside if state else self.after_outside)
        return tuple(sorted(found))


class Scanner:
    """Fed the bytes of one range (starting at a line start) block by block; :meth:`finish`
    gives its :class:`RangeScan`. ``quoted``: CSV; ``at_file_start``: the range starts at byte 0
    (a BOM there is not part of the first line)."""

    def __init__(self, quoted: bool, at_file_start: bool) -> None:
        self.quoted = quoted
        self.newlines = 0
        self._carry = b""
        self._long = False  # inside a line already over MAX_LINE_BYTES: its bytes are not kept
        self._bom = at_file_start
        # the states possible now, from a start outside and from a start inside a quoted field
        self._from_outside: tuple[bool, ...] = (OUTSIDE,)
        self._from_inside: tuple[bool, ...] = (INSIDE,)

    def feed(self, block: bytes) -> None:
        if len(block) > MAX_LINE_BYTES:  # so that only a line carried over blocks can be over-long
            for at in range(0, len(block), MAX_LINE_BYTES):
                self.feed(block[at:at + MAX_LINE_BYTES])
            return
        if not block:
            return
        count = block.count(b"\n")
        self.newlines += count
        if not self.quoted:
            return
        if count == 0:
            self._hold(block)
            return
        end = block.rfind(b"\n")
        head, rest = block[:end], block[end + 1:]
        first_end = head.find(b"\n")
        first = head if first_end < 0 else head[:first_end]
        # the line the carry began: all of it is here now (unless it was over-long)
        if self._long or len(self._carry) + len(first) > MAX_LINE_BYTES:
            self._unknown()
        else:
            self._line(self._carry + first)
        self._carry, self._long = b"", False
        if first_end >= 0:
            self._lines(head, first_end + 1)
        self._hold(rest)

    def finish(self) -> RangeScan:
        """The scan, with a last line without a line end taken as a line (the end of the file)."""
        if self.quoted and (self._carry or self._long):
            if self._long:
                self._unknown()
            else:
                self._line(self._carry)
            self._carry, self._long = b"", False
        return RangeScan(self.newlines, self._from_outside, self._from_inside)

    # --- internals -----------------------------------------------------------------------------

    def _hold(self, data: bytes) -> None:
        """Keep the start of a line that goes on in the next block; a line already over the
        limit is not kept, only known to be long."""
        if self._long:
            return
        if len(self._carry) + len(data) > MAX_LINE_BYTES:
            self._carry, self._long = b"", True
        else:
            self._carry += data

    def _lines(self, data: bytes, pos: int) -> None:
        """The complete lines of ``data`` from ``pos`` on: only those with a quote change the state
        (each is shorter than a block, so none is over-long)."""
        while True:
            quote = data.find(b'"', pos)
            if quote < 0:
                return
            start = data.rfind(b"\n", 0, quote) + 1
            end = data.find(b"\n", quote)
            if end < 0:
                end = len(data)
            self._line(data[start:end])
            pos = end + 1

    def _line(self, line: bytes) -> None:
        if self._bom:
            line = line.removeprefix(_BOM)
            self._bom = False
        if b'"' not in line:
            return
        converged = self._from_inside == self._from_outside
        self._from_outside = _after_line(line, self._from_outside)
        self._from_inside = self._from_outside if converged else _after_line(line, self._from_inside)

    def _unknown(self) -> None:
        self._bom = False
        self._from_outside = self._from_inside = BOTH


def _after_line(line: bytes, states: tuple[bool, ...]) -> tuple[bool, ...]:
    return tuple(sorted({ends_inside_quotes(line, state) for state in states}))


def ends_inside_quotes(line: bytes, inside: bool) -> bool:
    """Whether a quoted field is still open at the end of ``line`` (``inside``: open at its
    start): core.batch.lines._ends_inside_quotes over bytes (a ``"`` or ``,`` byte is never part
    of a multi-byte UTF-8 character, so bytes and decoded text agree)."""
    i = line.find(b'"')
    while i >= 0:
        if inside:
            if line.startswith(b'"', i + 1):  # "" inside quotes: a quote character
                i = line.find(b'"', i + 2)
                continue
            inside = False
        elif i == 0 or line[i - 1] == 0x2C:  # ","
            inside = True
        i = line.find(b'"', i + 1)
    return inside


def header_end(blocks: Iterable[bytes]) -> int | None:
    """The byte just after a CSV's header record (after a BOM and any blank lines before it), read
    from the start of the file in ``blocks``; None when there is none to cut after: the record
    does not end with a line end, or is over MAX_LINE_BYTES (the engine then reports it)."""
    data = b""
    position = 0  # of data[0] in the file
    inside, started = False, False
    for block in blocks:
        data += block
        while True:
            end = data.find(b"\n")
            if end < 0:
                break
            line, data = data[:end], data[end + 1:]
            if position == 0:
                line = line.removeprefix(_BOM)
            position += end + 1
            if not started:
                text = line.decode("utf-8", "replace")
                if not text or text.isspace():
                    continue
                started = True
                inside = ends_inside_quotes(line, False)
            else:
                inside = ends_inside_quotes(line, True)
            if not inside:
                return position
            if position > MAX_LINE_BYTES:
                return None
        if len(data) > MAX_LINE_BYTES:
            return None
    return None


__all__ = ["BOTH", "INSIDE", "OUTSIDE", "RangeScan", "Scanner", "ends_inside_quotes", "header_end"]
