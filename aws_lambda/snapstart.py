"""SnapStart runtime hooks, registered only where snapshot-restore-py can be imported.

With SnapStart, Lambda runs the init phase once, snapshots the memory, and starts later instances
from that snapshot. AWS's Python managed runtimes ship the ``snapshot_restore_py`` module that
registers the hooks; elsewhere (tests, other runtimes) it is usually absent and nothing happens.

* before the snapshot: load the model, so every restored instance starts with it in memory, then
  close S3 connections, which would be dead sockets after a restore;
* after a restore: re-seed the ``random`` module and NumPy's global generator (every instance
  restored from one snapshot would otherwise draw the same numbers); drop the S3 clients, with the
  credentials botocore cached in them (SnapStart hands each restored instance its own, through the
  container credentials endpoint), and the TLS context of the direct S3 path, so that the next
  request builds them afresh; and make the next invocation the instance's cold start again, as it
  is one (the restore), whatever the snapshotted process did. Core's request ids come from
  ``os.urandom``, which the kernel keeps unique across restores, so they need nothing. The model
  is kept: that is what the snapshot is for; nothing is read from S3 again.

Lambda runs before-snapshot hooks in reverse order of registration and after-restore hooks in
order of registration.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from typing import Any

logger = logging.getLogger("serverless_ml.aws_lambda")

__all__ = ["after_restore", "before_snapshot", "register"]


def register(preload: Callable[[], Any]) -> bool:
    """Register the hooks with snapshot-restore-py; False when the library is not installed."""
    try:
        from snapshot_restore_py import register_after_restore, register_before_snapshot
    except ImportError:
        return False
    register_before_snapshot(before_snapshot, preload)
    register_after_restore(after_restore)
    return True


def before_snapshot(preload: Callable[[], Any]) -> None:
    loaded = preload()
    _drop_storage_clients()
    logger.info("before snapshot", extra={"fields": {"model_loaded": bool(loaded)}})


def after_restore() -> None:
    # Only generators in the snapshot share their state: one imported after the restore seeds
    # itself from os.urandom. Looking them up instead of importing them keeps random (1 ms) and
    # NumPy out of a start that never needed them.
    reseeded = []
    random = sys.modules.get("random")
    if random is not None:
        random.seed(os.urandom(32))
        reseeded.append("random")
    numpy = sys.modules.get("numpy")
    if numpy is not None:  # only when the model (or PRELOAD_MODEL) brought it in
        numpy.random.seed(int.from_bytes(os.urandom(4), "little"))
        reseeded.append("numpy")
    _drop_storage_clients()
    direct = sys.modules.get("core.storage.s3_direct")
    if direct is not None:
        direct.forget_tls_context()
    from core.http.service import restart_cold_start

    restart_cold_start()
    logger.info("after restore", extra={"fields": {"reseeded": reseeded}})


def _drop_storage_clients() -> None:
    s3 = sys.modules.get("core.storage.s3")
    if s3 is not None:
        s3.drop_all_clients()
