"""SnapStart hooks through the real snapshot-restore-py registry, run the way the Lambda runtime
runs them, in a fresh process; and the handler without the library.

The runtime (awslambdaric, lambda_runtime_hooks_runner.py) pops the before-snapshot hooks off
snapshot_restore_py's list, so they run in reverse order of registration, lets Lambda take the
snapshot, and on restore runs the after-restore hooks in order; RUNTIME_HOOKS below does the same.

What cannot be exercised here: Lambda itself. This machine has no Docker (so neither Lambda's
runtime emulator nor a SnapStart-capable environment runs), and a snapshot and restore of the
process memory is Lambda's Firecracker machinery. The hooks' effects are checked instead, in one
process that stands for both sides of the snapshot: the model is in memory before the "snapshot"
and moto's request log shows it read once, never after the "restore"; S3 connections are closed;
after the "restore" the random generators no longer produce what every copy of the snapshot would
have produced, the TLS context and the S3 client are new (with this instance's credentials), and
the first invocation counts as the instance's cold start.
"""

from __future__ import annotations

import textwrap

from tests.aws_lambda.child_support import run_child

# awslambdaric's run_before_snapshot / run_after_restore, as its bootstrap calls them around the snapshot
RUNTIME_HOOKS = """
def run_before_snapshot():
    hooks = snapshot_restore_py.get_before_snapshot()
    while hooks:
        func, args, kwargs = hooks.pop()
        func(*args, **kwargs)
def run_after_restore():
    for func, args, kwargs in snapshot_restore_py.get_after_restore():
        func(*args, **kwargs)
"""


def test_hooks_load_before_the_snapshot_and_reseed_after_restore(moto, s3_model_uri):
    # snapshot-restore-py is in the test extra: a missing one fails here rather than skipping
    steps, emf, logs = run_child(
        "import snapshot_restore_py\n" + RUNTIME_HOOKS + textwrap.dedent("""
        import random
        from aws_lambda import handler
        record("imported")
        steps["registered"] = [len(snapshot_restore_py.get_before_snapshot()), len(snapshot_restore_py.get_after_restore())]
        run_before_snapshot()
        record("snapshot")
        from core.storage import s3 as s3_module, s3_direct
        steps["clients_kept"] = sum(store._client is not None for store in s3_module._all_stores)
        # whatever the snapshotted process did: it took its cold start, made a TLS context and a
        # botocore client with the credentials of the moment the snapshot was taken
        from core.http.service import take_cold_start
        steps["cold_before_snapshot"] = take_cold_start()
        tls_in_snapshot = s3_direct._tls_context()
        (store,) = list(s3_module._all_stores)
        steps["key_in_snapshot"] = store.client()._request_signer._credentials.access_key

        import numpy
        random.seed(1234); numpy.random.seed(1234)
        shared_state = (random.random(), numpy.random.random())  # what every restored copy would draw
        random.seed(1234); numpy.random.seed(1234)
        # each restored instance gets credentials of its own
        os.environ["AWS_ACCESS_KEY_ID"] = "restored-instance-key"
        run_after_restore()
        steps["reseeded"] = [random.random() != shared_state[0], numpy.random.random() != shared_state[1]]
        steps["tls_contexts_kept"] = len(s3_direct._tls)
        steps["clients_after_restore"] = sum(s._client is not None for s in s3_module._all_stores)
        steps["tls_rebuilt"] = s3_direct._tls_context() is not tls_in_snapshot
        record("first", handler.predict(event, Context("after-restore")))
        record("second", handler.predict(event, Context("warm")))
        steps["key_after_restore"] = store.client()._request_signer._credentials.access_key
        """),
        moto, s3_model_uri,
    )
    assert steps["registered"] == [1, 1]
    assert (steps["imported"]["gets"], steps["imported"]["sklearn"]) == (0, False)
    assert (steps["snapshot"]["gets"], steps["snapshot"]["sklearn"]) == (1, True)  # loaded before the snapshot
    assert steps["clients_kept"] == 0  # no socket is carried into the snapshot
    assert steps["reseeded"] == [True, True]
    assert (steps["tls_contexts_kept"], steps["clients_after_restore"]) == (0, 0)
    assert steps["tls_rebuilt"] is True  # the next HTTPS request gets a context of its own
    assert steps["key_in_snapshot"] != "restored-instance-key"
    assert steps["key_after_restore"] == "restored-instance-key"  # a new client, with this instance's credentials
    # the model came from the snapshot: moto served it once, before the snapshot, never after the restore
    assert (steps["first"]["gets"], steps["first"]["status"]) == (1, 200)
    assert (steps["second"]["gets"], steps["second"]["status"]) == (1, 200)
    messages = [line["message"] for line in logs]
    assert messages.index("before snapshot") < messages.index("after restore") < messages.index("request")
    # the restore is the instance's cold start, though the snapshotted process had taken its own
    assert steps["cold_before_snapshot"] is True
    assert [line.get("ColdStart") for line in emf] == [1, None]  # counted once, on the first
    assert "ModelLoadTime" in emf[0]


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
