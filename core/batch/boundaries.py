"""Where a file may be cut so that its parts are read exactly as one run over the whole file reads
it: the pass over the bytes that a fan-out plan makes (core/batch/fanout.py), one range at a time.

One run reads a file in chunks of BATCH_CHUNK_ROWS *entries* (core/batch/lines.py: a CSV record
or JSONL line that is not blank, or a line too long to hold), and the model predicts each chunk as
one batch. A model's numbers can depend on the batch a row is in (a BLAS kernel sums in another
order for another shape: a logistic regression's probabilities differ in the last digit), so a
part must be a run of whole chunks of that single run: it starts where entry ``k * chunk_rows``
starts. Finding that byte takes two passes:

1. every range of the file (a *grain*, cut at line starts), in any order or in parallel: its line
   ends, and for a start outside and a start inside a quoted CSV field, the entries that start in
   it and the quote state at its end (:class:`Scanner`; ``feed`` the bytes, ``finish``);
2. combined in order from byte 0 (outside, entry 0), these give each grain's first entry; the
   grain that holds entry ``k * chunk_rows`` is read again up to it (:class:`Scanner` with
   ``stop_at``), which gives its byte and its line number.

The quote state follows the reader's rule (a ``"`` opens a quoted field at the start of a field
only; inside one, ``""`` is a quote), over bytes: a ``"``, a ``,`` or a line end is never part of
a multi-byte UTF-8 character. The two simulations of pass 1 agree after the first line with a
quote in almost every file, and a block of lines without a ``"`` and without a blank line is
counted with ``bytes.count``, never split: the pass goes at the speed of the storage, far faster
than rows are predicted.

A line longer than :data:`MAX_LINE_BYTES` that holds a ``"``, or that starts inside a quoted
field, ends what can be known: the reader may drop its quotes or keep them, depending on where its
blocks fall. A range that holds one is *unknown* (None), and the plan cuts nowhere after it. Other
over-long lines are one entry each, as the reader reports each once.

:func:`header_end` finds the end of a CSV's header record, which every part reads first.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from core.batch.lines import MAX_LINE_BYTES

_BOM = b"\xef\xbb\xbf"
OUTSIDE, INSIDE = False, True
# First bytes of a line that may be blank to str.isspace after decoding: ASCII whitespace, the
# information separators \x1c-\x1f, and the lead bytes of U+0085, U+00A0, U+1680, U+2000-U+205F,
# U+3000. Any other first byte makes the line an entry.
_MAYBE_BLANK_FIRST = frozenset(b"\n\t\x0b\x0c\r\x1c\x1d\x1e\x1f \xc2\xe1\xe2\xe3")
_MAYBE_BLANK = re.compile(rb"\n(?:[\n\t\x0b\x0c\r\x1c-\x1f \xc2\xe1\xe2\xe3]|\Z)")


class Branch:
    """One simulation: the quote state now and the entries seen, from one start state."""

    __slots__ = ("state", "entries", "known")

    def __init__(self, state: bool) -> None:
        self.state = state
        self.entries = 0
        self.known = True

    def outcome(self) -> dict | None:
        return {"state": self.state, "entries": self.entries} if self.known else None


class Scanner:
    """Fed the bytes of one range, from a line start, block by block.

    ``quoted``: CSV (else JSONL: no quote state); ``at_file_start``: the range starts at byte 0
    (a BOM there is not part of the first line); ``starts``: the quote states to simulate from;
    ``offset``: the range's first byte in the file. ``stop_at``: pass 2, with one start state:
    stop at the start of the entry that has ``stop_at`` entries of the range before it, and set
    ``found`` to (its byte in the file, the line ends before it in the range).
    """

    def __init__(self, quoted: bool, at_file_start: bool, starts: Iterable[bool] = (OUTSIDE, INSIDE),
                 offset: int = 0, stop_at: int | None = None) -> None:
        self.quoted = quoted
        self.branches = {state: Branch(state) for state in starts}
        self.newlines = 0  # line ends fed so far
        self.position = offset  # of the next byte to be fed
        self.stop_at = stop_at
        self.found: tuple[int, int] | None = None
        self._carry = b""
        self._carry_start = offset
        self._long = False  # the carried line is over MAX_LINE_BYTES: its bytes are not kept
        self._long_quote = False
        self._bom = at_file_start

    @property
    def done(self) -> bool:
        return self.found is not None

    def feed(self, block: bytes) -> None:
        if len(block) > MAX_LINE_BYTES:  # so that only a line carried over blocks can be over-long
            for at in range(0, len(block), MAX_LINE_BYTES):
                if self.done:
                    return
                self.feed(block[at:at + MAX_LINE_BYTES])
            return
        if not block or self.done:
            return
        start = self.position
        self.position += len(block)
        end = block.rfind(b"\n")
        if end < 0:
            self._hold(block)
            return
        first_end = block.find(b"\n")
        if self._long or len(self._carry) + first_end > MAX_LINE_BYTES:
            quote = self._long_quote or b'"' in self._carry or b'"' in block[:first_end]
            self._line(b"", self._carry_start, long=True, long_quote=quote)
        else:
            self._line(self._carry + block[:first_end], self._carry_start)
        self.newlines += 1
        if first_end < end and not self.done:
            self._region(block[first_end + 1:end], start + first_end + 1)
        if not self.done:
            self._carry, self._carry_start, self._long, self._long_quote = b"", start + end + 1, False, False
            self._hold(block[end + 1:])

    def finish(self) -> dict:
        """Pass 1's answer: the range's line ends, and per start state ("outside", "inside") the
        entries that start in it and the state at its end, or None when not known. A last line
        without a line end (the end of the file) is taken as a line."""
        if not self.done and (self._carry or self._long):
            self._line(self._carry, self._carry_start, long=self._long, long_quote=self._long_quote)
            self._carry, self._long = b"", False
        names = {OUTSIDE: "outside", INSIDE: "inside"}
        return {"newlines": self.newlines,
                **{names[state]: branch.outcome() for state, branch in self.branches.items()}}

    # --- internals -----------------------------------------------------------------------------

    def _hold(self, data: bytes) -> None:
        """Keep the start of a line that goes on in the next block; a line already over the limit
        is not kept, only known to be long (and whether it holds a quote)."""
        if self._long:
            self._long_quote = self._long_quote or b'"' in data
        elif len(self._carry) + len(data) > MAX_LINE_BYTES:
            self._long, self._long_quote = True, b'"' in self._carry or b'"' in data
            self._carry = b""
        else:
            self._carry += data

    def _region(self, region: bytes, start: int) -> None:
        """Complete lines (each under a block, so never over-long), from byte ``start``."""
        count = region.count(b"\n") + 1
        plain = (not (self.quoted and b'"' in region) and region[:1] and region[0] not in _MAYBE_BLANK_FIRST
                 and not _MAYBE_BLANK.search(region))
        if plain:  # no quote, no blank line: each line is an entry outside a quoted field, nothing inside
            for branch in self.branches.values():
                if not branch.known or branch.state != OUTSIDE:
                    continue
                if self.stop_at is not None and branch.entries + count > self.stop_at:
                    skip = self.stop_at - branch.entries
                    at = 0
                    for _ in range(skip):
                        at = region.index(b"\n", at) + 1
                    self.found = (start + at, self.newlines + skip)
                    return
                branch.entries += count
            self.newlines += count
            return
        at = 0
        for line in region.split(b"\n"):
            self._line(line, start + at)
            if self.done:
                return
            self.newlines += 1
            at += len(line) + 1

    def _line(self, line: bytes, start: int, long: bool = False, long_quote: bool = False) -> None:
        """One complete line starting at byte ``start`` (``long``: over MAX_LINE_BYTES, its bytes
        not kept; ``long_quote``: it holds a quote)."""
        if self._bom:
            line = line.removeprefix(_BOM)
            self._bom = False
        quote = self.quoted and (long_quote if long else b'"' in line)
        blank: bool | None = None
        for branch in self.branches.values():
            if not branch.known:
                continue
            if long and (quote or branch.state == INSIDE):
                branch.known = False
                continue
            if branch.state == OUTSIDE:
                if blank is None:
                    blank = not long and (not line or (line[0] in _MAYBE_BLANK_FIRST
                                                       and line.decode("utf-8", "replace").isspace()))
                if blank:
                    continue
                if self.stop_at is not None and branch.entries == self.stop_at:
                    self.found = (start, self.newlines)
                    return
                branch.entries += 1
            if quote and not long:
                branch.state = ends_inside_quotes(line, branch.state)


def ends_inside_quotes(line: bytes, inside: bool) -> bool:
    """Whether a quoted field is still open at the end of ``line`` (``inside``: open at its
    start): core.batch.lines._ends_inside_quotes over bytes."""
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


__all__ = ["INSIDE", "OUTSIDE", "Scanner", "ends_inside_quotes", "header_end"]
