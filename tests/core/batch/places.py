"""Buckets and containers on the local servers (moto, Azurite, the GCS emulator), used as a user
uses them: upload, and read back what a run wrote."""

from __future__ import annotations

import uuid

import core.storage
from core.storage import StorageURI
from core.storage.versions import ObjectVersion
from tests.gcp_parts import GcsEmulator


class Place:
    """A bucket or container on one local server: upload as a user would, read back as a test does."""

    scheme: str
    bucket: str

    def uri(self, key: str) -> StorageURI:
        return StorageURI(self.scheme, self.bucket, key)

    def put(self, key: str, data: str | bytes) -> ObjectVersion:
        """Upload; the version as the object's event names it."""
        raise NotImplementedError

    def get(self, key: str) -> bytes | None:
        raise NotImplementedError

    def metadata(self, key: str) -> dict[str, str]:
        raise NotImplementedError

    def keys(self) -> set[str]:
        raise NotImplementedError


class S3Place(Place):
    scheme = "s3"

    def __init__(self, versioning: bool) -> None:
        import boto3

        self.client = boto3.session.Session().client("s3")
        self.bucket = f"pinned-{uuid.uuid4().hex[:12]}"
        self.client.create_bucket(Bucket=self.bucket)
        if versioning:
            self.client.put_bucket_versioning(Bucket=self.bucket, VersioningConfiguration={"Status": "Enabled"})

    def put(self, key, data):
        answer = self.client.put_object(Bucket=self.bucket, Key=key, Body=data.encode() if isinstance(data, str) else data)
        # S3's event: eTag unquoted, versionId in a versioned bucket, a sequencer
        return ObjectVersion(version_id=answer.get("VersionId"), etag=answer["ETag"].strip('"'),
                             sequencer=uuid.uuid4().hex[:18].upper())

    def get(self, key):
        try:
            return self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except self.client.exceptions.NoSuchKey:
            return None

    def metadata(self, key):
        return self.client.head_object(Bucket=self.bucket, Key=key)["Metadata"]

    def keys(self):
        return {item["Key"] for item in self.client.list_objects_v2(Bucket=self.bucket).get("Contents", [])}


class AzurePlace(Place):
    scheme = "az"

    def __init__(self, azurite) -> None:
        self.azurite = azurite
        self.bucket = f"pinned-{uuid.uuid4().hex[:12]}"
        self.container = azurite.client().create_container(self.bucket)

    def put(self, key, data):
        blob = self.container.get_blob_client(key)
        etag = blob.upload_blob(data.encode() if isinstance(data, str) else data, overwrite=True)["etag"]
        return ObjectVersion(etag=etag.strip('"'), sequencer=uuid.uuid4().hex.upper())  # as Event Grid sends them

    def get(self, key):
        blob = self.container.get_blob_client(key)
        return blob.download_blob().readall() if blob.exists() else None

    def metadata(self, key):
        return self.container.get_blob_client(key).get_blob_properties().metadata

    def keys(self):
        return {blob.name for blob in self.container.list_blobs()}


class GcsPlace(Place):
    scheme = "gs"

    def __init__(self, emulator: GcsEmulator) -> None:
        self.client = emulator.client()
        self.bucket = f"pinned-{uuid.uuid4().hex[:12]}"
        emulator.create_bucket(self.bucket)

    def put(self, key, data):
        blob = self.client.bucket(self.bucket).blob(key)
        blob.upload_from_string(data)
        return ObjectVersion(generation=blob.generation)

    def get(self, key):
        blob = self.client.bucket(self.bucket).get_blob(key)
        return None if blob is None else blob.download_as_bytes()

    def metadata(self, key):
        return self.client.bucket(self.bucket).get_blob(key).metadata or {}

    def keys(self):
        return {blob.name for blob in self.client.list_blobs(self.bucket)}


def open_place(name: str, request, monkeypatch) -> Place:
    """A new bucket or container of place ``name`` ("s3-versioned", "s3-etag", "azure", "gcs").
    Core's stores are built from the environment, as in production: the test gets a registry of
    its own, pointed at the server of its place (the environment also reaches worker processes)."""
    monkeypatch.setattr(core.storage, "_stores", {})
    if name.startswith("s3"):
        request.getfixturevalue("aws_env")
        return S3Place(versioning=name == "s3-versioned")
    if name == "azure":
        azurite = request.getfixturevalue("azurite")
        monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", azurite.connection_string)
        return AzurePlace(azurite)
    emulator = request.getfixturevalue("gcs")
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", emulator.url)
    monkeypatch.delenv("GOOGLE_CLOUD_PROJECT", raising=False)
    return GcsPlace(emulator)
