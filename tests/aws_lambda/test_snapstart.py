"""SnapStart hooks through the real snapshot-restore-py registry, run the way the Lambda runtime
runs them (before-snapshot hooks in reverse order of registration, after-restore hooks in order),
in a fresh process; and the handler without the library.

What cannot be exercised here: an actual snapshot and restore of the process memory (that is
Lambda's Firecracker machinery). The hooks' effects are checked instead: the model is in memory
before the "snapshot", S3 connections are closed, and after the "restore" the random generators
no longer produce what every copy of the snapshot would have produced.
"""

from __future__ import annotations

import pytest

from tests.aws_lambda.child_support import run_child


def test_hooks_load_before_the_snapshot_and_reseed_after_restore(moto, s3_model_uri):
    pytest.importorskip("snapshot_restore_py")
    steps, emf, logs = run_child(
        """
        import random
        import snapshot_restore_py
        from aws_lambda import handler
        record("imported")
        before, after = snapshot_restore_py.get_before_snapshot(), snapshot_restore_py.get_after_restore()
        steps["registered"] = [len(before), len(after)]
        for func, args, kwargs in reversed(before):
            func(*args, **kwargs)
        record("snapshot")
        from core.storage import s3 as s3_module
        steps["clients_kept"] = sum(store._client is not None for store in s3_module._all_stores)

        import numpy
        random.seed(1234); numpy.random.seed(1234)
        shared_state = (random.random(), numpy.random.random())  # what every restored copy would draw
        random.seed(1234); numpy.random.seed(1234)
        for func, args, kwargs in after:
            func(*args, **kwargs)
        steps["reseeded"] = [random.random() != shared_state[0], numpy.random.random() != shared_state[1]]
        record("first", handler.predict(event, Context("after-restore")))
        """,
        moto, s3_model_uri,
    )
    assert steps["registered"] == [1, 1]
    assert (steps["imported"]["gets"], steps["imported"]["sklearn"]) == (0, False)
    assert (steps["snapshot"]["gets"], steps["snapshot"]["sklearn"]) == (1, True)  # loaded before the snapshot
    assert steps["clients_kept"] == 0  # no socket is carried into the snapshot
    assert steps["reseeded"] == [True, True]
    assert (steps["first"]["gets"], steps["first"]["status"]) == (1, 200)  # the model came from the snapshot
    messages = [line["message"] for line in logs]
    assert messages.index("before snapshot") < messages.index("after restore") < messages.index("request")
    assert emf[0]["ColdStart"] == 1 and "ModelLoadTime" in emf[0]


def test_without_the_library_the_handler_works_and_registers_nothing(moto, s3_model_uri):
    steps, emf, logs = run_child(
        """
        import importlib.abc
        class NoSnapshotRestore(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name == "snapshot_restore_py":
                    raise ModuleNotFoundError("No module named 'snapshot_restore_py'", name=name)
        sys.meta_path.insert(0, NoSnapshotRestore())
        from aws_lambda import handler, snapstart
        steps["registered"] = snapstart.register(handler.app.preload)
        record("first", handler.predict(event, Context("no-snapstart")))
        """,
        moto, s3_model_uri,
    )
    assert steps["registered"] is False
    assert (steps["first"]["gets"], steps["first"]["status"]) == (1, 200)
