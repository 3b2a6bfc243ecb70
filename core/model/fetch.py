"""A model file's bytes, brought where it can be loaded from with the least memory.

Deserialising from bytes in memory holds the file and the model side by side at the peak: a
313 MB forest peaked at 1,027 MB against a bare ``joblib.load(path)``'s 728 MB. So a model of
:data:`MEMORY_BELOW_BYTES` or more is loaded from a file, as the bare load does:

* ``file://``: from its own path, hashed in blocks first;
* remote storage: streamed in blocks to local scratch space (MODEL_SCRATCH_DIR, default the
  platform's temp dir: Lambda's ``/tmp``, the Functions' and Cloud Run's local disk), hashed on
  the way, and loaded from there. The copy is created readable by this user only (``mkstemp``:
  mode 0600) and removed as soon as the model is loaded or refused: the loaded model holds
  everything it needs, and Lambda's ``/tmp`` is the batch engine's space too.

A smaller model is read into memory as before: one request, no file (and below 512 KB hashing
with the built-in SHA-256, core.model.digest, is cheaper than opening OpenSSL for it).

An expected digest (MODEL_SHA256, or a manifest's ``sha256``) is always checked before a byte is
deserialised (by the caller, core.model.loading). A large local file with neither is hashed on a
thread while it loads: its digest is only shown then (GET /model, the log line), and a bare load
does not hash at all. A 305 MB forest (bench/large_model.py's) took 0.45 s to joblib.load from a
warm page cache, 0.64 s hashed first, 0.44-0.49 s hashed beside the load on two cores.
"""

from __future__ import annotations

import errno
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO

from core.errors import ModelScratchFull, ModelUnavailable, StorageError
from core.model.digest import sha256_hex
from core.storage import ObjectStore, StorageURI

# Below this a model is read into memory. bench/model_threshold.py, joblib forests, the load's CPU
# time from a file over from memory (median of 9 cold starts each; file:// / moto S3): 1 MB 1.01x /
# 1.02x, 4 MB 0.94x / 0.92x, 8 MB 0.89x / 0.94x, 16 MB 0.86x / 0.91x, 64 MB 0.80x / 0.88x; peak RSS
# 0.5, 3, 7, 16 and 66 MB lower from a file. So from 4 MB a file is no slower and lighter (the
# bytes are not copied into a buffer and again out of it); below, the memory way is one request
# and no file, and the two cost the same within the noise.
MEMORY_BELOW_BYTES = 4 * 1024 * 1024
BLOCK_BYTES = 1024 * 1024
_NO_ROOM = {errno.ENOSPC, errno.EFBIG, errno.EDQUOT}  # a full disk, a file-size limit, a quota

_SIZE_READ_SECONDS = 2.0  # how long a refused copy reads on to name the model's size

MEMORY, LOCAL_FILE, SCRATCH = "memory", "file", "scratch"


@dataclass
class FetchedModel:
    """Where a model's bytes are: ``data`` in memory, or a file at ``path``; and their digest."""

    size_bytes: int
    sha256: str  # "" while ``pending_sha256`` computes it
    loaded_from: str  # MEMORY, LOCAL_FILE or SCRATCH
    read_seconds: float
    data: bytes | None = None
    path: str | None = None
    pending_sha256: Callable[[], str] | None = None  # waits for the digest being computed beside the load

    def digest(self) -> str:
        """The SHA-256, waiting for it if it is still being computed."""
        if not self.sha256 and self.pending_sha256 is not None:
            self.sha256 = self.pending_sha256()
        return self.sha256

    def discard(self) -> None:
        """Remove the scratch copy (never the user's own local file)."""
        if self.loaded_from == SCRATCH and self.path is not None:
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass
            self.path = None


def fetch_model(
    uri: StorageURI, store: ObjectStore, scratch_dir: str | None = None, *, hash_first: bool = True
) -> FetchedModel:
    """Read ``uri`` into memory, or hash it where it lies, or stream it to scratch space.

    ``hash_first=False``: a large local file is hashed on a thread instead, and the result's
    ``sha256`` is empty until ``digest()`` waits for it."""
    started = time.perf_counter()
    try:
        if uri.scheme == "file":
            return _local(uri, store, started, hash_first)
        return _remote(uri, store, scratch_dir, started)
    except StorageError as exc:
        raise ModelUnavailable(f"the model could not be read: {exc.message}") from None


def _local(uri: StorageURI, store: ObjectStore, started: float, hash_first: bool) -> FetchedModel:
    try:
        size = os.path.getsize(uri.key)
    except OSError:
        size = 0  # missing: the store's read below says so in its own words
    if size < MEMORY_BELOW_BYTES:
        data = store.read_bytes(uri)
        return FetchedModel(len(data), sha256_hex(data), MEMORY, time.perf_counter() - started, data=data)
    if not hash_first:
        pending = _DigestOnThread(uri, store)
        return FetchedModel(size, "", LOCAL_FILE, time.perf_counter() - started, path=uri.key, pending_sha256=pending)
    digest, size = _hash_file(uri, store)
    return FetchedModel(size, digest, LOCAL_FILE, time.perf_counter() - started, path=uri.key)


def _hash_file(uri: StorageURI, store: ObjectStore) -> tuple[str, int]:
    import hashlib

    digest = hashlib.sha256()
    size = 0
    with store.open_read(uri) as stream:
        while block := stream.read(BLOCK_BYTES):
            digest.update(block)  # releases the GIL for a block this size: a load beside it runs on
            size += len(block)
    return digest.hexdigest(), size


class _DigestOnThread:
    """A local file's SHA-256, computed on a thread while the model is deserialised from it."""

    def __init__(self, uri: StorageURI, store: ObjectStore) -> None:
        self._uri, self._store = uri, store
        self._digest = ""
        self._error: ModelUnavailable | None = None
        # a daemon: a load that fails leaves it to finish (or be dropped at exit) unjoined
        self._thread = threading.Thread(target=self._run, name="model-digest", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._digest = _hash_file(self._uri, self._store)[0]
        except StorageError as exc:
            self._error = ModelUnavailable(f"the model could not be read: {exc.message}")
        except OSError as exc:
            self._error = ModelUnavailable(f"the model at {self._uri.display} could not be read: {exc.strerror}")

    def __call__(self) -> str:
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._digest


def _remote(uri: StorageURI, store: ObjectStore, scratch_dir: str | None, started: float) -> FetchedModel:
    stream = store.open_read(uri)
    try:
        blocks: list[bytes] = []
        size = 0
        while size < MEMORY_BELOW_BYTES:  # the common case: a small model, all in memory
            block = stream.read(BLOCK_BYTES)
            if not block:
                data = b"".join(blocks)
                return FetchedModel(size, sha256_hex(data), MEMORY, time.perf_counter() - started, data=data)
            blocks.append(block)
            size += len(block)
        return _to_scratch(uri, stream, blocks, scratch_dir, started)
    finally:
        stream.close()


def _to_scratch(uri: StorageURI, stream: BinaryIO, blocks: list[bytes], scratch_dir: str | None, started: float) -> FetchedModel:
    import hashlib
    import tempfile

    folder = scratch_dir or tempfile.gettempdir()
    digest = hashlib.sha256()
    written = 0
    consumed = sum(map(len, blocks))  # read from storage so far: written, or about to be
    fd, path = tempfile.mkstemp(prefix="serverless-ml-model-", suffix="-" + uri.name, dir=folder)
    try:
        with os.fdopen(fd, "wb") as out:
            block: bytes | None = None
            for block in blocks:
                digest.update(block)
                out.write(block)
                written += len(block)
            blocks.clear()  # the first blocks go: memory holds one block from here on
            while block := stream.read(BLOCK_BYTES):
                consumed += len(block)
                digest.update(block)
                out.write(block)
                written += len(block)
    except OSError as exc:
        os.unlink(path)
        if exc.errno not in _NO_ROOM:
            raise ModelUnavailable(
                f"the model at {uri.display} could not be copied to scratch space in {folder}: {exc.strerror}"
            ) from None
        raise ModelScratchFull(_no_room_message(uri, folder, written, consumed, stream, exc)) from None
    except BaseException:
        os.unlink(path)
        raise
    return FetchedModel(written, digest.hexdigest(), SCRATCH, time.perf_counter() - started, path=path)


def _no_room_message(uri: StorageURI, folder: str, written: int, consumed: int, stream: BinaryIO, exc: OSError) -> str:
    import shutil

    rest, deadline, complete = 0, time.monotonic() + _SIZE_READ_SECONDS, False
    while time.monotonic() < deadline:  # its size, for the message: read on briefly, keep nothing
        block = stream.read(BLOCK_BYTES)
        if not block:
            complete = True
            break
        rest += len(block)
    size = _mb(consumed + rest) if complete else f"more than {_mb(consumed + rest)}"
    free = shutil.disk_usage(folder).free
    return (
        f"the model at {uri.display} is {size} and is loaded from a copy in local scratch space, "
        f"but {folder} took only {_mb(written)} of it ({exc.strerror}; {_mb(free)} free there); give the "
        "function more ephemeral storage (Lambda: the predictEphemeralStorage or batchEphemeralStorage param of "
        "serverless.yml, predict_ephemeral_storage_mb or batch_ephemeral_storage_mb in infra/aws) or set "
        "MODEL_SCRATCH_DIR to a folder on a larger disk"
    )


def _mb(size: int) -> str:
    return f"{size / 1e6:,.1f} MB"
