"""What a version is (core/storage/versions.py) and how a file is cut into parts (core/storage/parts.py):
plain values, no server."""

from __future__ import annotations

import io

import pytest

from core.storage.parts import MAX_PART_BYTES, MIB, MIN_PART_BYTES, FileSlice, Part, cut, part_size
from core.storage.versions import ObjectVersion, plain_etag


def test_an_etag_is_the_same_version_quoted_or_not():
    # Event Grid sends 0x8D4E44A24ABE7F1, the service answers "0x8D4E44A24ABE7F1"
    assert plain_etag('"0x8D4E44A24ABE7F1"') == plain_etag("0x8D4E44A24ABE7F1") == "0x8D4E44A24ABE7F1"
    assert plain_etag('W/"abc"') == "abc"
    assert plain_etag("") is None and plain_etag(None) is None
    event = ObjectVersion(etag="0x8D4E44A24ABE7F1", sequencer="00000000000000EB000000000000C65A")
    assert event.same_as(ObjectVersion(etag='"0x8D4E44A24ABE7F1"'))
    assert event.quoted_etag == '"0x8D4E44A24ABE7F1"'


def test_a_version_is_judged_by_its_strongest_name():
    v1 = ObjectVersion(version_id="v1", etag="same-bytes")
    assert v1.same_as(ObjectVersion(version_id="v1", etag="other"))
    # a new versionId is a new version even when the bytes (and so the eTag) are the same
    assert not v1.same_as(ObjectVersion(version_id="v2", etag="same-bytes"))
    assert ObjectVersion(generation=7).same_as(ObjectVersion(generation=7))
    assert not ObjectVersion(generation=7).same_as(ObjectVersion(generation=8))
    # without versioning, an eTag names bytes: the same upload twice is the same predictions
    assert ObjectVersion(etag="abc").same_as(ObjectVersion(etag='"abc"', version_id=None))


def test_only_a_named_version_pins_a_read():
    assert not ObjectVersion().pinned
    assert not ObjectVersion(sequencer="0055AED6DCD90281E5").pinned  # an ordering key names no version
    assert ObjectVersion(etag="x").pinned and ObjectVersion(version_id="v").pinned
    assert ObjectVersion(generation=0).pinned


def test_what_an_output_records_and_how_a_version_is_shown():
    version = ObjectVersion(version_id="3HL4kqtJ", etag='"d41d8cd9"', sequencer="0055AED6DCD90281E5")
    assert version.metadata() == {"input-version-id": "3HL4kqtJ", "input-etag": "d41d8cd9",
                                  "input-sequencer": "0055AED6DCD90281E5"}
    assert version.describe() == "versionId 3HL4kqtJ"
    assert ObjectVersion(generation=1587627537231057).metadata() == {"input-generation": "1587627537231057"}
    assert ObjectVersion(generation=1587627537231057).describe() == "generation 1587627537231057"
    assert ObjectVersion(etag="0x8D4E").describe() == 'eTag "0x8D4E"'


def test_parts_are_the_setting_unless_the_count_would_run_out():
    assert part_size(100 * MIB, 16 * MIB, 10_000) == 16 * MIB
    # 1 TiB at 16 MiB would be 65,536 parts; S3 takes 10,000
    assert part_size(2**40, 16 * MIB, 10_000) == 105 * MIB
    assert part_size(5 * 2**40, MIN_PART_BYTES, 10_000) == 525 * MIB <= MAX_PART_BYTES
    assert -(-5 * 2**40 // (525 * MIB)) <= 10_000
    assert cut(11, 5) == [Part(1, 0, 5), Part(2, 5, 5), Part(3, 10, 1)]
    assert cut(10, 5) == [Part(1, 0, 5), Part(2, 5, 5)]


def test_a_file_slice_reads_seeks_and_rewinds_within_its_part(tmp_path):
    path = tmp_path / "data"
    path.write_bytes(b"0123456789abcdef")
    with FileSlice(str(path), 4, 6) as part:
        assert len(part) == 6
        assert part.read() == b"456789"
        assert part.read() == b""
        part.seek(0)
        assert part.read(2) == b"45"
        assert part.tell() == 2
        part.seek(-1, io.SEEK_END)
        assert part.read() == b"9"
    assert part.closed


@pytest.mark.parametrize("size", [0, 1, 4])
def test_a_file_slice_at_the_end_of_the_file(tmp_path, size):
    path = tmp_path / "data"
    path.write_bytes(b"abcd")
    with FileSlice(str(path), 4 - size, size) as part:
        assert part.read() == b"abcd"[4 - size:]
