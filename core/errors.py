"""Every failure a caller can act on has its own exception type, and its HTTP answer.

The status and the machine-readable ``code`` of each failure are class attributes here, so the
mapping from exception to answer lives in this one module. Messages are written for the user who
sent the request: they say what was wrong and what was expected, and never carry a stack trace, a
server path or a secret.
"""

from __future__ import annotations


class ServerlessMLError(Exception):
    """Base of every error this package raises on purpose."""

    status: int = 500
    code: str = "internal_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


# --- start-up --------------------------------------------------------------------------------


class SettingsError(ServerlessMLError):
    """A setting (environment variable) has a value that is not allowed; raised at start."""

    code = "invalid_setting"


# --- the request (4xx) -----------------------------------------------------------------------


class RequestError(ServerlessMLError):
    """The request cannot be answered as sent; the client should change it."""

    status = 400
    code = "bad_request"


class MalformedJSON(RequestError):
    """The body is not valid JSON (or not UTF-8, or nested too deeply)."""

    code = "malformed_json"


class InvalidShape(RequestError):
    """The JSON is valid but not one of the accepted body forms."""

    code = "invalid_shape"


class InvalidFeatures(RequestError):
    """A row has missing, extra or misspelt feature names, or the wrong number of values."""

    code = "invalid_features"


class InvalidValue(RequestError):
    """A feature value is not a finite number."""

    code = "invalid_value"


class PayloadTooLarge(RequestError):
    """Too many rows, or a body larger than the configured limit."""

    status = 413
    code = "payload_too_large"


class UnsupportedMediaType(RequestError):
    """The body was declared with a content type other than JSON."""

    status = 415
    code = "unsupported_media_type"


class RouteNotFound(RequestError):
    status = 404
    code = "not_found"


class MethodNotAllowed(RequestError):
    status = 405
    code = "method_not_allowed"

    def __init__(self, message: str, allowed: tuple[str, ...]) -> None:
        super().__init__(message)
        self.allowed = allowed


# --- object storage --------------------------------------------------------------------------


class StorageError(ServerlessMLError):
    """Object storage could not give or take an object. ``uri`` is safe to show."""

    status = 503
    code = "storage_unavailable"

    def __init__(self, message: str, uri: str) -> None:
        super().__init__(message)
        self.uri = uri

    def __reduce__(self) -> tuple[type, tuple[str, str]]:
        # rebuilt with both arguments when it crosses a process boundary (batch --workers)
        return type(self), (self.message, self.uri)


class ObjectNotFound(StorageError):
    code = "object_not_found"


class StorageAccessDenied(StorageError):
    code = "access_denied"


class StorageTimeout(StorageError):
    code = "storage_timeout"


class ObjectSuperseded(StorageError):
    """The version of an object a run was told to read is gone or no longer the current one: the
    object was replaced (or deleted) after its event was sent. A batch run ends "skipped:
    superseded" and publishes nothing; the newer version has an event of its own."""

    code = "object_superseded"


class PreconditionFailed(StorageError):
    """A conditional write or delete found the object other than the caller saw it: another
    writer came first. The caller looks again and decides anew."""

    status = 409
    code = "precondition_failed"


# --- the model (503) -------------------------------------------------------------------------


class ModelUnavailable(ServerlessMLError):
    """The model cannot be used right now; the next request tries to load it again."""

    status = 503
    code = "model_unavailable"


class ModelDigestMismatch(ModelUnavailable):
    """The model file's SHA-256 differs from ``MODEL_SHA256``; it was never deserialised."""

    code = "model_digest_mismatch"


class ModelScratchFull(ModelUnavailable):
    """A model too large to load from memory did not fit the local scratch space it is copied to;
    the message names its size, the space there and the setting that gives more."""

    code = "model_scratch_full"


class ModelInvalid(ModelUnavailable):
    """The file was read but is not a usable model (cannot be deserialised, has no predict)."""

    code = "model_invalid"


class PredictionRejected(RequestError):
    """The model refused rows that passed validation (it raised ValueError on them)."""

    code = "prediction_rejected"


class PredictionFailed(ServerlessMLError):
    """The model failed for a reason that is not the input's; the details go to the log only."""

    status = 500
    code = "prediction_failed"


class ModelRuntimeMissing(ModelUnavailable):
    """The library that loads the model's format (onnxruntime, skops) is not installed here; the
    message names the pip extra. Answered as ``model_unavailable``: installing it is the fix."""


class ModelUntrustedTypes(ModelInvalid):
    """A skops file holds types that ``SKOPS_TRUSTED_TYPES`` does not list; the message lists them.
    Answered as ``model_invalid``. ``types`` are the untrusted type names."""

    def __init__(self, message: str, types: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.types = types


class ModelVersionMismatch(ModelInvalid):
    """``STRICT_MODEL_VERSION`` is on and the model was saved with another scikit-learn version;
    the message names both. Answered as ``model_invalid``."""
