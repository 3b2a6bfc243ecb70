"""core.stack_headroom: the call under it behaves as a plain call, on a frame stack it does not
share with its caller's chunk (CPython gh-142183; the cold-start effect is measured in bench/)."""

from __future__ import annotations

import sys

import pytest

from core.stack_headroom import with_stack_headroom


def test_it_returns_what_the_call_returns_and_passes_arguments():
    assert with_stack_headroom(divmod, 17, 5) == (3, 2)


def test_an_exception_reaches_the_caller_unchanged():
    with pytest.raises(ZeroDivisionError):
        with_stack_headroom(divmod, 1, 0)


def test_deep_recursion_under_it_still_works():
    def depth(n: int) -> int:
        return depth(n - 1) + 1 if n else 0

    assert with_stack_headroom(depth, sys.getrecursionlimit() // 2) == sys.getrecursionlimit() // 2


def test_its_frame_reserves_half_a_mebibyte():
    # 65,536 slots of 8 bytes: larger than a 16 KiB data-stack chunk, so CPython maps a 1 MiB one
    assert with_stack_headroom.__code__.co_stacksize == 65_536
