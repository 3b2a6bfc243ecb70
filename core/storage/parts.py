"""A local file uploaded in parts: how it is cut, and each part as a stream of its own.

S3 (multipart upload), Azure (block blob) and GCS (resumable upload) all take a large object as
parts that become the object only when the last request commits them, so a reader sees the old
object or the whole new one. This module holds what they share: the part size the caller asks for
(``BATCH_PART_BYTES``), grown where the provider's part count would run out, and a seekable view of
one part of the file, so an SDK can read, checksum and rewind a part without it being in memory.
"""

from __future__ import annotations

import io
from typing import NamedTuple

MIB = 1024 * 1024
# The smallest part S3 takes (every part but the last): the floor of BATCH_PART_BYTES.
MIN_PART_BYTES = 5 * MIB
# The largest block Azure takes (S3 parts may be 5 GiB): the ceiling of BATCH_PART_BYTES.
MAX_PART_BYTES = 4000 * MIB


class Part(NamedTuple):
    number: int  # from 1, as S3 counts them
    offset: int
    length: int


def part_size(size: int, part_bytes: int, max_parts: int, multiple: int = MIB) -> int:
    """``part_bytes``, or the least multiple of ``multiple`` that cuts ``size`` bytes into at most
    ``max_parts`` parts (an S3 upload has at most 10,000: a 1 TiB output at 16 MiB would need 65,536)."""
    needed = -(-size // max_parts)
    return max(part_bytes, -(-needed // multiple) * multiple)


def cut(size: int, part: int) -> list[Part]:
    """The parts of a file of ``size`` bytes, ``part`` bytes each but the last."""
    return [Part(n, offset, min(part, size - offset)) for n, offset in enumerate(range(0, size, part), 1)]


class FileSlice(io.RawIOBase):
    """Bytes ``offset`` to ``offset + length`` of the file at ``path``, as a seekable stream that
    starts at 0. Opened by each part on its own, so parts could be sent from several threads."""

    def __init__(self, path: str, offset: int, length: int) -> None:
        super().__init__()
        self._file = open(path, "rb")
        self._offset = offset
        self._length = length
        self._position = 0

    def __len__(self) -> int:
        return self._length

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        wanted = min(len(buffer), self._length - self._position)
        if wanted <= 0:
            return 0
        self._file.seek(self._offset + self._position)  # the file is this slice's own
        count = self._file.readinto(memoryview(buffer).cast("B")[:wanted])
        self._position += count
        return count

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._length}[whence]
        self._position = max(0, base + offset)
        return self._position

    def tell(self) -> int:
        return self._position

    def close(self) -> None:
        if not self.closed:
            self._file.close()
        super().close()


__all__ = ["MAX_PART_BYTES", "MIN_PART_BYTES", "FileSlice", "Part", "cut", "part_size"]
