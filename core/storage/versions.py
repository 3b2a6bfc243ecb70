"""Which version of an object: the one an event names, the one a look at the object finds, the one
a conditional write or delete expects to find.

Each provider names versions its own way, and a version carries whichever of these it has::

    S3     version_id  (a versioned bucket)      else etag    sequencer: the event's ordering key
    GCS    generation  (grows with every write of the object)
    Azure  etag        (opaque: not ordered)                  sequencer: Event Grid's ordering key

A batch run *pins* its input to one version (:attr:`ObjectVersion.pinned`): it reads exactly that
version (S3 ``?versionId=`` or ``If-Match``, GCS ``?generation=``, Azure ``If-Match``) and
publishes its outputs only while that version is still the object's current one
(:meth:`ObjectVersion.same_as`); see core/batch/publish.py. The sequencers are recorded with the
outputs, never compared: which version is newer is what the provider itself answers when asked for
the current one.
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["ObjectVersion", "Precondition", "plain_etag"]


def plain_etag(value: str | None) -> str | None:
    """An eTag without its quotes or weak marker: events send ``0x8D4E44A24ABE7F1``, answers
    ``"0x8D4E44A24ABE7F1"``; both are the same version."""
    if not value:
        return None
    text = value.strip()
    if text.startswith("W/"):
        text = text[2:]
    return text.strip('"') or None


class ObjectVersion(NamedTuple):
    """One version of one object. Empty (no field set) means "whatever is there": not pinned.

    A NamedTuple, not a dataclass: the S3 store imports this module when it reads a model at a
    cold start, and dataclasses would bring inspect with it. An eTag may be given quoted or not.
    """

    version_id: str | None = None  # S3 versionId, in a bucket with versioning on
    etag: str | None = None  # S3 or Azure eTag, as sent (quoted or not: see plain_etag)
    generation: int | None = None  # GCS generation
    sequencer: str | None = None  # the event's ordering key (S3, Event Grid): recorded, not compared
    # the object's length in bytes where a look at it (stat) told it; not part of which version it
    # is (same_as and metadata ignore it): a batch plan cuts ranges by it
    size: int | None = None

    @property
    def plain_etag(self) -> str | None:
        return plain_etag(self.etag)

    @property
    def pinned(self) -> bool:
        """Whether this names one version (a read can be held to it), not just "the object"."""
        return self.generation is not None or bool(self.version_id) or bool(self.plain_etag)

    @property
    def quoted_etag(self) -> str | None:
        """The eTag as an ``If-Match`` header carries it."""
        etag = self.plain_etag
        return f'"{etag}"' if etag else None

    def same_as(self, current: ObjectVersion) -> bool:
        """Whether ``current`` (what the provider answers now) is this version, judged by the
        strongest name this version has: generation, then versionId, then eTag. An eTag names
        content: two uploads of the same bytes share it, and their predictions are the same."""
        if self.generation is not None:
            return current.generation == self.generation
        if self.version_id:
            return current.version_id == self.version_id
        if self.plain_etag:
            return current.plain_etag == self.plain_etag
        return True

    def describe(self) -> str:
        """For messages and log lines: ``generation 1587627537231057``, ``versionId 3HL4k...``,
        ``eTag "0x8D4E44A24ABE7F1"``."""
        if self.generation is not None:
            return f"generation {self.generation}"
        if self.version_id:
            return f"versionId {self.version_id}"
        if self.plain_etag:
            return f"eTag {self.quoted_etag}"
        return "the current version"

    def metadata(self) -> dict[str, str]:
        """What an output records about the input it was made from, as object metadata
        (``x-amz-meta-input-version-id``, GCS custom metadata; Azure takes ``input_version_id``)."""
        fields = {
            "input-generation": None if self.generation is None else str(self.generation),
            "input-version-id": self.version_id,
            "input-etag": self.plain_etag,
            "input-sequencer": self.sequencer,
        }
        return {name: value for name, value in fields.items() if value}


class Precondition(NamedTuple):
    """What a conditional write or delete expects to find at the location: nothing (``found`` is
    None: S3 ``If-None-Match: *``, GCS ``ifGenerationMatch=0``, Azure ``If-None-Match: *``) or
    the version ``found`` (S3 and Azure ``If-Match`` its eTag, GCS ``ifGenerationMatch``). When the
    object is otherwise, the store raises :class:`core.errors.PreconditionFailed` and changes nothing."""

    found: ObjectVersion | None

    @property
    def absent(self) -> bool:
        return self.found is None
