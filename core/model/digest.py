"""The SHA-256 of a model's bytes, checked against MODEL_SHA256 and the manifest, shown by GET /model.

Importing ``hashlib`` loads OpenSSL (about 2 ms of a cold start); CPython's own SHA-256 module
loads in 0.2 ms but hashes about 3 times slower (2 ms more per MB). Below the size where the two
costs meet, a small model (a linear model, most ONNX graphs of one) takes the built-in one.
"""

from __future__ import annotations

from collections.abc import Callable

BUILTIN_BELOW_BYTES = 512 * 1024


def sha256_hex(data: bytes) -> str:
    """The lower-case hexadecimal SHA-256 of ``data``."""
    if len(data) < BUILTIN_BELOW_BYTES:
        builtin = _builtin_sha256()
        if builtin is not None:
            return builtin(data).hexdigest()
    import hashlib

    return hashlib.sha256(data).hexdigest()


def _builtin_sha256() -> Callable | None:
    # _sha2 from Python 3.12, _sha256 before; an interpreter built without them has only OpenSSL's
    try:
        from _sha2 import sha256
    except ImportError:
        try:
            from _sha256 import sha256
        except ImportError:
            return None
    return sha256
