"""Typed, read-only views of the S3 object events the batch handler receives, however delivered.

Three deliveries, one result: a list of :class:`ObjectNotice` (bucket, decoded key, whether the
object was created) and :class:`Unrecognised` pieces, each carrying the SQS message it came in::

    direct        {"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
                                "s3": {"bucket": {"name": "b"}, "object": {"key": "my+data%2Bv2.csv"}}}]}
    SQS           {"Records": [{"eventSource": "aws:sqs", "messageId": "...", "body": "<one of the
                                 S3 shapes as JSON: a notification, an SNS envelope around one,
                                 an EventBridge event, or S3's s3:TestEvent>"}]}
    EventBridge   {"source": "aws.s3", "detail-type": "Object Created",
                   "detail": {"bucket": {"name": "b"}, "object": {"key": "my+data%2Bv2.csv"}}}

The pattern is the same in the three adapters (``BlobCreatedEvent`` in azure_function,
``StorageObjectEvent`` in gcp_function): a read-only view says whether the event announces a
created object (``created``), which one (``uri``), and if it is not to be predicted, why
(``skip_reason``); what is created goes to core's batch engine.

Keys arrive URL-encoded the way HTML forms are (a space is ``+`` or ``%20``, a ``+`` is ``%2B``)
and are decoded with ``unquote_plus``. Nothing here raises on a missing or oddly typed field: a
record without a bucket or key is an :class:`Unrecognised` piece saying so.

Each notice also names the version that was created (:attr:`ObjectNotice.version`), which the run
reads and no other: ``versionId`` (a versioned bucket), ``eTag`` and ``sequencer`` of
``s3.object`` in a notification; ``version-id``, ``etag`` and ``sequencer`` of ``detail.object``
in an EventBridge event.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

from core.request.json_body import json_type
from core.storage.uri import StorageURI
from core.storage.versions import ObjectVersion

__all__ = ["Delivery", "ObjectNotice", "Unrecognised", "is_storage_notification", "storage_delivery"]

VIA_S3, VIA_SQS, VIA_EVENTBRIDGE = "s3", "sqs", "eventbridge"


@dataclass(frozen=True)
class ObjectNotice:
    """One object event: the object, what happened to it, and the SQS message it came in."""

    bucket: str
    key: str  # decoded
    event_name: str  # "ObjectCreated:Put", "ObjectRemoved:Delete", "Object Created", ...
    created: bool
    message_id: str | None = None
    version: ObjectVersion | None = None  # the version created: read exactly this one

    @property
    def uri(self) -> StorageURI:
        # built, not parsed: a key may hold '?' or '#', which a URL parser would cut off
        return StorageURI("s3", self.bucket, self.key)

    @property
    def skip_reason(self) -> str | None:
        """Why the object is not to be predicted (a delete, a restore), or None when it was created."""
        return None if self.created else f"'{self.event_name[:60]}' is not an object-created event"


@dataclass(frozen=True)
class Unrecognised:
    """A piece of the event that is not an S3 object event; ``reason`` describes it, never its data."""

    reason: str
    message_id: str | None = None
    test_event: bool = False  # S3's s3:TestEvent, sent once when a notification is configured


Piece = ObjectNotice | Unrecognised


@dataclass(frozen=True)
class Delivery:
    """The pieces of one invocation's event and how they came (``s3``, ``sqs``, ``eventbridge``)."""

    via: str
    pieces: tuple[Piece, ...]


def storage_delivery(event: Any) -> Delivery | None:
    """The delivery in ``event``, or None when it is neither an S3 event nor an SQS batch."""
    if not isinstance(event, Mapping):
        return None
    records = event.get("Records")
    if isinstance(records, list) and records:
        first = _mapping(records[0])
        if first.get("eventSource") == "aws:sqs":
            return Delivery(VIA_SQS, tuple(p for r in records for p in _sqs_message(_mapping(r))))
        if first.get("eventSource") == "aws:s3":
            return Delivery(VIA_S3, tuple(_s3_records(records, None)))
        return None
    if _is_s3_eventbridge(event):
        return Delivery(VIA_EVENTBRIDGE, (_eventbridge(event, None),))
    if event.get("Event") == "s3:TestEvent":
        return Delivery(VIA_S3, (_test_event(None),))
    return None


def is_storage_notification(event: Any) -> bool:
    """Whether ``event`` is an S3 object event (direct, via SQS or EventBridge), for the predict
    handler's answer to one sent to it by mistake. Cheaper than :func:`storage_delivery`: an SQS
    body is looked at, not parsed."""
    if not isinstance(event, Mapping):
        return False
    records = event.get("Records")
    if isinstance(records, list) and records:
        source = _text(_mapping(records[0]).get("eventSource"))
        if source == "aws:s3":
            return True
        if source == "aws:sqs":
            return '"aws:s3"' in _text(_mapping(records[0]).get("body")).replace(" ", "")
        return False
    return event.get("source") == "aws.s3" and "detail" in event


# --- the three shapes ------------------------------------------------------------------------------


def _s3_records(records: list, message_id: str | None) -> list[Piece]:
    pieces: list[Piece] = []
    for raw in records:
        record = _mapping(raw)
        if record.get("eventSource") != "aws:s3":
            source = _text(record.get("eventSource")) or "no eventSource"
            pieces.append(Unrecognised(f"a record from '{source[:40]}', expected 'aws:s3'", message_id))
            continue
        s3 = _mapping(record.get("s3"))
        bucket = _text(_mapping(s3.get("bucket")).get("name"))
        obj = _mapping(s3.get("object"))
        key = _text(obj.get("key"))
        name = _text(record.get("eventName"))
        if not bucket or not key:
            pieces.append(Unrecognised("an S3 record without s3.bucket.name or s3.object.key", message_id))
            continue
        version = _version(obj.get("versionId"), obj.get("eTag"), obj.get("sequencer"))
        pieces.append(
            ObjectNotice(bucket, unquote_plus(key), name, name.startswith("ObjectCreated:"), message_id, version)
        )
    return pieces


def _version(version_id: Any, etag: Any, sequencer: Any) -> ObjectVersion | None:
    """The version an event names, or None when it names none (its fields missing or not text)."""
    version = ObjectVersion(version_id=_text(version_id) or None, etag=_text(etag) or None,
                            sequencer=_text(sequencer) or None)
    return version if version.pinned else None


def _is_s3_eventbridge(event: Mapping[str, Any]) -> bool:
    return event.get("source") == "aws.s3" and isinstance(event.get("detail"), Mapping)


def _eventbridge(event: Mapping[str, Any], message_id: str | None) -> Piece:
    detail = _mapping(event.get("detail"))
    bucket = _text(_mapping(detail.get("bucket")).get("name"))
    obj = _mapping(detail.get("object"))
    key = _text(obj.get("key"))
    kind = _text(event.get("detail-type"))
    if not bucket or not key:
        return Unrecognised(
            f"an EventBridge S3 event ('{kind[:60]}') without detail.bucket.name or detail.object.key", message_id
        )
    version = _version(obj.get("version-id"), obj.get("etag"), obj.get("sequencer"))
    return ObjectNotice(bucket, unquote_plus(key), kind, kind == "Object Created", message_id, version)


def _sqs_message(message: Mapping[str, Any]) -> list[Piece]:
    message_id = _text(message.get("messageId")) or None
    body = message.get("body")
    if not isinstance(body, str):
        return [Unrecognised("an SQS message without a text body; expected an S3 notification", message_id)]
    try:
        parsed = json.loads(body)
    except ValueError:
        return [Unrecognised("an SQS message whose body is not JSON; expected an S3 notification", message_id)]
    return _body(parsed, message_id, depth=0)


def _body(parsed: Any, message_id: str | None, depth: int) -> list[Piece]:
    if isinstance(parsed, Mapping):
        records = parsed.get("Records")
        if isinstance(records, list) and records:
            return _s3_records(records, message_id)
        if parsed.get("Event") == "s3:TestEvent":
            return [_test_event(message_id)]
        if _is_s3_eventbridge(parsed):
            return [_eventbridge(parsed, message_id)]
        message = parsed.get("Message")
        if depth == 0 and parsed.get("Type") == "Notification" and isinstance(message, str):
            try:  # S3 -> SNS -> SQS without raw message delivery: the notification is in Message
                return _body(json.loads(message), message_id, depth=1)
            except ValueError:
                pass
    return [Unrecognised(f"an SQS message whose body is {_body_kind(parsed)}, not an S3 notification", message_id)]


def _test_event(message_id: str | None) -> Unrecognised:
    return Unrecognised("S3's s3:TestEvent (sent once when a notification is configured)", message_id, True)


# --- helpers ---------------------------------------------------------------------------------------


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _body_kind(value: Any) -> str:
    """``a JSON object with keys 'a', 'b'``: the keys tell which service sent it."""
    if isinstance(value, Mapping):
        keys = sorted(str(k)[:40] for k in value)[:6]
        return "a JSON object with " + (f"keys {', '.join(repr(k) for k in keys)}" if keys else "no keys")
    return f"a JSON {json_type(value)}"
