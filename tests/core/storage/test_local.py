from __future__ import annotations

import os

import pytest

from core.errors import ObjectNotFound, StorageAccessDenied
from core.storage import parse_uri, store_for


def test_round_trip_and_atomic_replace(tmp_path):
    uri = parse_uri((tmp_path / "out" / "a.bin").as_uri())
    store = store_for(uri)
    store.write_bytes(uri, b"first")
    store.write_bytes(uri, b"second")
    assert store.read_bytes(uri) == b"second"
    assert os.listdir(tmp_path / "out") == ["a.bin"]  # no temporary file left behind
    with store.open_read(uri) as stream:
        assert stream.read(3) == b"sec"


def test_missing_file_names_only_the_file(tmp_path):
    uri = parse_uri((tmp_path / "nope.joblib").as_uri())
    with pytest.raises(ObjectNotFound) as raised:
        store_for(uri).read_bytes(uri)
    assert raised.value.message == "file://.../nope.joblib does not exist"


def test_folder_is_not_a_file(tmp_path):
    (tmp_path / "dir.joblib").mkdir()
    uri = parse_uri((tmp_path / "dir.joblib").as_uri())
    with pytest.raises(ObjectNotFound, match="is a folder"):
        store_for(uri).read_bytes(uri)


def test_unreadable_file_is_access_denied(tmp_path, monkeypatch):
    # Permission bits do not stop root (CI runs as root), so the OS's answer is injected here.
    import builtins

    real_open = builtins.open
    path = tmp_path / "m.joblib"
    path.write_bytes(b"x")

    def open_denied(file, *args, **kwargs):
        if str(file) == str(path):
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", open_denied)
    uri = parse_uri(path.as_uri())
    with pytest.raises(StorageAccessDenied) as raised:
        store_for(uri).read_bytes(uri)
    assert raised.value.message == "file://.../m.joblib cannot be read: permission denied"


def test_delete_removes_the_file_and_a_second_delete_succeeds(tmp_path):
    uri = parse_uri((tmp_path / "out" / "partial.jsonl").as_uri())
    store = store_for(uri)
    store.write_bytes(uri, b"{}\n")
    store.delete(uri)
    assert os.listdir(tmp_path / "out") == []
    store.delete(uri)  # already gone: a repeated cleanup succeeds
    with pytest.raises(ObjectNotFound, match=r"^file://\.\.\./x\.jsonl cannot be deleted: its folder does not exist$"):
        store.delete(parse_uri((tmp_path / "nowhere" / "x.jsonl").as_uri()))


def test_a_range_is_read_and_files_are_composed_in_order(tmp_path):
    folder = tmp_path / "parts"
    folder.mkdir()
    (folder / "0").write_bytes(b"alpha\n")
    (folder / "1").write_bytes(b"")
    (folder / "2").write_bytes(b"beta\n")
    source = parse_uri((folder / "0").as_uri())
    store = store_for(source)
    with store.open_read(source, start=2, end=5) as stream:
        assert stream.read() == b"pha"
    assert store.open_read(source, start=3).read() == b"ha\n"
    assert store.stat(source).size == 6

    target = parse_uri((tmp_path / "out" / "all.jsonl").as_uri())
    store.compose(target, [parse_uri((folder / name).as_uri()) for name in "012"])
    assert (tmp_path / "out" / "all.jsonl").read_bytes() == b"alpha\nbeta\n"
    with pytest.raises(ObjectNotFound, match=r"\.\.\./9 does not exist"):
        store.compose(target, [parse_uri((folder / "9").as_uri())])
    assert (tmp_path / "out" / "all.jsonl").read_bytes() == b"alpha\nbeta\n"  # unchanged
