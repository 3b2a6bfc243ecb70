"""The local filesystem as object storage (``file://``).

Not versioned: a file has no version to pin a read to, and a folder no conditional write; a
local file is read as it is, and outputs replace what is there (atomically, by rename). File
systems keep no object metadata, so the metadata a batch run records with cloud outputs is
not written here.
"""

from __future__ import annotations

import io
import os
import stat as stat_module
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, BinaryIO

from core.errors import ObjectNotFound, StorageAccessDenied, StorageError
from core.storage import DEFAULT_PART_BYTES
from core.storage.parts import FileSlice
from core.storage.sdk_errors import mapped_errors
from core.storage.uri import StorageURI

if TYPE_CHECKING:
    from core.storage.versions import ObjectVersion, Precondition


class LocalObjectStore:
    scheme = "file"
    versioned = False

    def __init__(self, timeout_seconds: float = 0.0) -> None:
        # local reads do not time out; the argument keeps every backend built the same way
        self.timeout_seconds = timeout_seconds

    def read_bytes(self, uri: StorageURI) -> bytes:
        with self.open_read(uri) as stream:
            return stream.read()

    def open_read(
        self, uri: StorageURI, version: ObjectVersion | None = None, *, start: int = 0, end: int | None = None
    ) -> BinaryIO:
        if version is not None and version.pinned:
            raise ValueError(f"{uri.display}: local files have no versions to read; got {version!r}")
        with mapped_errors(_storage_error, uri, "read"):
            try:
                stream = open(uri.key, "rb")
            except FileNotFoundError:
                raise ObjectNotFound(f"{uri.display} does not exist", uri.display) from None
            except IsADirectoryError:
                raise ObjectNotFound(f"{uri.display} is a folder, not a file", uri.display) from None
            if start == 0 and end is None:
                return stream
            with stream:
                length = (os.fstat(stream.fileno()).st_size if end is None else end) - start
            # like the whole file above, a slice is read unmapped: a local read that fails halfway
            # is an OSError of the machine, not a storage answer
            return io.BufferedReader(FileSlice(uri.key, start, max(0, length)), buffer_size=1 << 20)

    def stat(self, uri: StorageURI) -> ObjectVersion | None:
        """An unpinned version (files have no versions) with the file's size, or None when there
        is no such file."""
        from core.storage.versions import ObjectVersion

        try:
            found = os.stat(uri.key)
        except OSError:
            return None
        return ObjectVersion(size=found.st_size) if stat_module.S_ISREG(found.st_mode) else None

    def write_bytes(self, uri: StorageURI, data: bytes) -> None:
        """Write atomically: a reader sees the old file or the whole new one, never a part."""
        self._write_atomically(uri, lambda out: out.write(data))

    def write_file(
        self, uri: StorageURI, path: str, *, metadata: Mapping[str, str] | None = None,
        precondition: Precondition | None = None, part_bytes: int = DEFAULT_PART_BYTES,
    ) -> None:
        """Copy the file at ``path`` to ``uri`` in blocks, atomically like write_bytes. A file
        has no metadata (``metadata`` is not kept) and no parts; a precondition is refused."""
        if precondition is not None:
            raise ValueError(f"{uri.display}: local files take no preconditions")

        import shutil  # writes only: a function that just reads its model never pays for it

        def copy(out) -> None:
            with open(path, "rb") as source:
                shutil.copyfileobj(source, out, 1 << 20)

        self._write_atomically(uri, copy)

    def compose(
        self, uri: StorageURI, sources: Sequence[StorageURI], *, metadata: Mapping[str, str] | None = None,
        precondition: Precondition | None = None, part_bytes: int = DEFAULT_PART_BYTES,
    ) -> None:
        """The files ``sources`` one after the other, copied into ``uri`` atomically like
        write_bytes (a filesystem has no server to concatenate on)."""
        if precondition is not None:
            raise ValueError(f"{uri.display}: local files take no preconditions")
        import shutil

        for source in sources:
            if not os.path.isfile(source.key):
                raise ObjectNotFound(f"{source.display} does not exist", source.display)

        def copy(out) -> None:
            for source in sources:
                with open(source.key, "rb") as part:
                    shutil.copyfileobj(part, out, 1 << 20)

        self._write_atomically(uri, copy)

    def delete(self, uri: StorageURI, *, precondition: Precondition | None = None) -> None:
        """Remove the file; a file already gone is not an error, a missing folder is."""
        if precondition is not None:
            raise ValueError(f"{uri.display}: local files take no preconditions")
        with mapped_errors(_storage_error, uri, "deleted"):
            try:
                os.remove(uri.key)
            except FileNotFoundError:
                if not os.path.isdir(os.path.dirname(uri.key)):
                    raise ObjectNotFound(
                        f"{uri.display} cannot be deleted: its folder does not exist", uri.display
                    ) from None
            except IsADirectoryError:
                raise StorageError(
                    f"{uri.display} cannot be deleted: it is a folder, not a file", uri.display
                ) from None

    def _write_atomically(self, uri: StorageURI, write) -> None:
        # imported here, not at the top: tempfile brings random, shutil bz2 and lzma (about 3 ms of
        # a cold start that only reads its model)
        import tempfile

        # the temporary file sits in the target folder: os.replace is atomic only within one filesystem
        folder = os.path.dirname(uri.key)
        with mapped_errors(_storage_error, uri, "written"):
            os.makedirs(folder, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix="-" + uri.name)
            try:
                with os.fdopen(fd, "wb") as out:
                    write(out)
                os.replace(tmp, uri.key)
            except BaseException:
                os.unlink(tmp)
                raise


def _storage_error(exc: Exception, uri: StorageURI, done: str) -> StorageError | None:
    """This store's mapping function: the filesystem's failure in words, never the file's path."""
    if isinstance(exc, PermissionError):
        return StorageAccessDenied(f"{uri.display} cannot be {done}: permission denied", uri.display)
    if isinstance(exc, OSError):
        return StorageError(f"{uri.display} cannot be {done}: {exc.strerror}", uri.display)
    return None


if TYPE_CHECKING:
    from core.storage import StoreFactory

    _checked: StoreFactory = LocalObjectStore  # mypy: this class is an ObjectStore, built from a timeout
