"""Run one call with a large, fresh stretch of CPython's frame stack under it.

Why: CPython 3.11 and 3.12 keep Python frames on a "data stack" made of 16 KiB chunks. When a call
lands just past the end of a chunk, a new chunk is mmap'ed for it and munmap'ed when it returns, so
a loop calling a function at exactly that depth maps, touches and unmaps memory on every call
(CPython gh-142183; fixed in 3.13.x and 3.14 by caching one chunk). Importing scikit-learn and
unpickling a model make hundreds of thousands of calls, so whether the stack depth at which the
model is loaded happens to sit on such a boundary moves a cold start by 5-15 % (7,000-12,000 page
faults), and any change of depth (another wrapper, another adapter, a warm-up instead of a
request) can move it back.

How: a frame reserves ``co_stacksize`` slots for its value stack. This function's code object
declares 65,536 slots (512 KiB, never touched: only the slots a frame uses are written), so calling
it needs more than any 16 KiB chunk has left and CPython maps a chunk of 1 MiB for it (chunk sizes
double until the frame fits); the call under it then has ~500 KiB of that chunk to itself, far
deeper than imports and unpickling go, and crosses no chunk boundary at all. The chunk is released
when the call returns. On Pythons without the problem the only cost is one 1 MiB mapping.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

_HEADROOM_SLOTS = 65_536  # 8 bytes each: a 512 KiB frame, so CPython maps a 1 MiB chunk


def with_stack_headroom(function: Callable[..., T], *args) -> T:
    """``function(*args)``, on a fresh 1 MiB stretch of the frame stack."""
    return function(*args)


with_stack_headroom.__code__ = with_stack_headroom.__code__.replace(co_stacksize=_HEADROOM_SLOTS)
