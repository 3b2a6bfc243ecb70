"""Settings, read from environment variables once and validated at start.

A wrong value raises :class:`~core.errors.SettingsError` naming the variable, the value received
and what is allowed, so a misconfigured deployment fails at init with a readable line instead of
failing every request later. Every setting has a safe default except ``MODEL_URI``.

Example::

    >>> Settings.from_env({"MODEL_URI": "file:///srv/model.joblib", "MAX_ROWS": "500"}).max_rows
    500
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import NamedTuple

from core.errors import SettingsError
from core.file_formats import format_for_name, supported_extensions
from core.storage import DEFAULT_PART_BYTES as DEFAULT_BATCH_PART_BYTES
from core.storage import DEFAULT_TIMEOUT_SECONDS as DEFAULT_STORAGE_TIMEOUT_SECONDS
from core.storage import missing_sdk
from core.storage.parts import MAX_PART_BYTES, MIN_PART_BYTES
from core.storage.uri import StorageURI, parse_uri

DEFAULT_MAX_ROWS = 10_000
# A fanned-out batch run's parts: 256 MiB is about 1.4 million rows of 20 numbers, a minute or
# two of a 200-tree forest on one vCPU: far inside Lambda's 15 minutes, and few enough parts that
# planning and merging stay a small share of the work.
DEFAULT_BATCH_FANOUT_PART_BYTES = 256 * 1024 * 1024
MIN_FANOUT_PART_BYTES = 256
MAX_FANOUT_PART_BYTES = 2**40
# Lambda's synchronous payload limit; a larger body could not reach a Lambda anyway.
DEFAULT_MAX_BODY_BYTES = 6 * 1024 * 1024
# Rows parsed and predicted at a time in batch: a few MB of memory for 20 features, and large
# enough that the per-call cost of predict() is noise.
DEFAULT_BATCH_CHUNK_ROWS = 10_000
# onnxruntime's threads per inference. One: a function has one or two vCPUs, building a thread pool
# costs about 100 ms of a cold start, and a 1-row request gains nothing from it. 0: one per core.
DEFAULT_ONNX_THREADS = 1
# Threads of a scikit-learn model's native pools (OpenMP, BLAS) while batch predicts. 0: one fewer
# than the CPUs this process may use, at least one: the batch writer process formats the outputs
# on the other, and OpenMP threads that outnumber the free cores spin (see core/batch/model_threads.py).
DEFAULT_BATCH_MODEL_THREADS = 0
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")

# Patterns as text, matched with re.fullmatch (which compiles and caches them): compiling them
# here would cost every cold start 0.3 ms for settings that are usually not set.
_SHA256 = r"[0-9a-f]{64}"
_TYPE_NAME = r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+"
_ORIGIN = r"https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?"
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


CANDIDATE_MODES = ("shadow", "canary")
DEFAULT_CANDIDATE_KEY_HEADER = "x-request-id"
DEFAULT_CANDIDATE_PROBABILITY_TOLERANCE = 0.05
_HEADER_NAME = r"[a-z0-9!#$%&'*+.^_`|~-]{1,64}"


class CandidateSettings(NamedTuple):
    """A second model beside MODEL_URI (core/rollout.py): in ``shadow`` mode it predicts every
    request's rows without answering; in ``canary`` mode it answers ``percent`` of requests,
    chosen by a stable hash of the ``key_header`` request header."""

    model_uri: StorageURI
    model_format: str
    model_sha256: str | None = None
    mode: str = "shadow"
    percent: float = 0.0
    key_header: str = DEFAULT_CANDIDATE_KEY_HEADER
    probability_tolerance: float = DEFAULT_CANDIDATE_PROBABILITY_TOLERANCE


class Settings(NamedTuple):
    model_uri: StorageURI
    model_sha256: str | None = None
    model_version: str | None = None
    batch_output_uri: StorageURI | None = None  # a prefix: its key ends with "/" (or is empty)
    batch_input_uri: StorageURI | None = None  # the prefix the deployment's trigger watches, if told
    batch_chunk_rows: int = DEFAULT_BATCH_CHUNK_ROWS
    batch_model_threads: int = DEFAULT_BATCH_MODEL_THREADS
    # outputs larger than this are uploaded in parts of this size (S3 multipart, Azure blocks, GCS
    # resumable pieces): from S3's smallest part (5 MiB) to Azure's largest block (4000 MiB)
    batch_part_bytes: int = DEFAULT_BATCH_PART_BYTES
    # a fanned-out run (core/batch/fanout.py) cuts its input into ranges of about this many bytes,
    # or of this many rows when that comes first (0: by bytes only)
    batch_fanout_part_bytes: int = DEFAULT_BATCH_FANOUT_PART_BYTES
    batch_fanout_part_rows: int = 0
    max_rows: int = DEFAULT_MAX_ROWS
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    cors_allow_origins: tuple[str, ...] = ()
    log_level: str = "INFO"
    preload_model: bool = False
    storage_timeout_seconds: float = DEFAULT_STORAGE_TIMEOUT_SECONDS
    model_format: str = "joblib"  # from MODEL_URI's extension: joblib, skops or onnx; or mlflow
    skops_trusted_types: tuple[str, ...] = ()
    strict_model_version: bool = False
    onnx_threads: int = DEFAULT_ONNX_THREADS
    model_scratch_dir: str | None = None  # where a large remote model is copied to load; None: the temp dir
    candidate: CandidateSettings | None = None
    model_name: str | None = None  # the Open Inference Protocol's model name; None: from the manifest or file

    def for_candidate(self) -> Settings:
        """These settings with the candidate as the model (the candidate's own holder reads them)."""
        candidate = self.candidate
        if candidate is None:
            raise ValueError("no candidate model is configured (CANDIDATE_MODEL_URI)")
        return self._replace(
            model_uri=candidate.model_uri, model_format=candidate.model_format, model_sha256=candidate.model_sha256,
            model_version=None, candidate=None,
        )

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, *, default_model_uri: str | None = None
    ) -> Settings:
        """Read and validate every setting; raise SettingsError on the first wrong one."""
        env = os.environ if environ is None else environ
        raw_model_uri = env.get("MODEL_URI", "").strip() or default_model_uri
        if not raw_model_uri:
            raise SettingsError(
                "MODEL_URI is not set; expected the model's location, e.g. "
                "file:///abs/path/model.joblib, s3://bucket/key, gs://bucket/key or az://container/blob"
            )
        mlmodel = _mlflow_mlmodel(raw_model_uri)  # an MLflow model directory: read through its MLmodel
        model_uri = _uri("MODEL_URI", mlmodel or raw_model_uri)
        batch_output_uri = _optional_prefix("BATCH_OUTPUT_URI", env.get("BATCH_OUTPUT_URI"))
        batch_input_uri = _optional_prefix("BATCH_INPUT_URI", env.get("BATCH_INPUT_URI"))
        if batch_input_uri is not None:
            _check_outputs_apart_from_inputs(batch_input_uri, batch_output_uri)
        return cls(
            model_uri=model_uri,
            model_format="mlflow" if mlmodel else _model_format(raw_model_uri, model_uri),
            skops_trusted_types=_type_names("SKOPS_TRUSTED_TYPES", env.get("SKOPS_TRUSTED_TYPES")),
            strict_model_version=_bool("STRICT_MODEL_VERSION", env.get("STRICT_MODEL_VERSION"), False),
            onnx_threads=_int("ONNX_THREADS", env.get("ONNX_THREADS"), DEFAULT_ONNX_THREADS, 0, 256),
            model_scratch_dir=_folder("MODEL_SCRATCH_DIR", env.get("MODEL_SCRATCH_DIR")),
            model_sha256=_sha256(env.get("MODEL_SHA256")),
            model_version=_model_version(env.get("MODEL_VERSION")),
            batch_output_uri=batch_output_uri,
            batch_input_uri=batch_input_uri,
            batch_chunk_rows=_int(
                "BATCH_CHUNK_ROWS", env.get("BATCH_CHUNK_ROWS"), DEFAULT_BATCH_CHUNK_ROWS, 1, 1_000_000
            ),
            batch_model_threads=_int(
                "BATCH_MODEL_THREADS", env.get("BATCH_MODEL_THREADS"), DEFAULT_BATCH_MODEL_THREADS, 0, 1024
            ),
            batch_part_bytes=_int(
                "BATCH_PART_BYTES", env.get("BATCH_PART_BYTES"), DEFAULT_BATCH_PART_BYTES, MIN_PART_BYTES, MAX_PART_BYTES,
                ("5 MiB, S3's smallest part", "4000 MiB, Azure's largest block"),
            ),
            batch_fanout_part_bytes=_int(
                "BATCH_FANOUT_PART_BYTES", env.get("BATCH_FANOUT_PART_BYTES"), DEFAULT_BATCH_FANOUT_PART_BYTES,
                MIN_FANOUT_PART_BYTES, MAX_FANOUT_PART_BYTES,
                ("256 bytes: tiny parts are for tests", "1 TiB"),
            ),
            batch_fanout_part_rows=_int(
                "BATCH_FANOUT_PART_ROWS", env.get("BATCH_FANOUT_PART_ROWS"), 0, 0, 10**12,
                ("0: cut by bytes only", "a trillion rows"),
            ),
            max_rows=_int("MAX_ROWS", env.get("MAX_ROWS"), DEFAULT_MAX_ROWS, 1, 1_000_000),
            max_body_bytes=_int(
                "MAX_BODY_BYTES", env.get("MAX_BODY_BYTES"), DEFAULT_MAX_BODY_BYTES, 2, 100 * 1024 * 1024
            ),
            cors_allow_origins=_origins(env.get("CORS_ALLOW_ORIGINS")),
            log_level=_choice("LOG_LEVEL", env.get("LOG_LEVEL"), "INFO", LOG_LEVELS),
            preload_model=_bool("PRELOAD_MODEL", env.get("PRELOAD_MODEL"), False),
            storage_timeout_seconds=_float(
                "STORAGE_TIMEOUT_SECONDS", env.get("STORAGE_TIMEOUT_SECONDS"), DEFAULT_STORAGE_TIMEOUT_SECONDS, 0.1, 300.0
            ),
            candidate=_candidate(env),
            model_name=_model_name(env.get("MODEL_NAME")),
        )


def _model_name(value: str | None) -> str | None:
    value = (value or "").strip()
    if not value:
        return None
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", value):
        raise SettingsError(
            f"MODEL_NAME={_show(value)} is not usable in a URL path; expected 1-64 letters, digits, '_', '.' or '-', "
            "starting with a letter or digit"
        )
    return value


def _candidate(env: Mapping[str, str]) -> CandidateSettings | None:
    """CANDIDATE_MODEL_URI and the settings that go with it; None when no candidate is set."""
    raw = env.get("CANDIDATE_MODEL_URI", "").strip()
    if not raw:
        given = [name for name in ("CANDIDATE_MODE", "CANDIDATE_PERCENT", "CANDIDATE_MODEL_SHA256") if env.get(name, "").strip()]
        if given:
            raise SettingsError(
                f"{given[0]} is set but CANDIDATE_MODEL_URI is not; expected the candidate model's location "
                "(s3://, gs://, az:// or file://) next to MODEL_URI, or no CANDIDATE_* settings"
            )
        return None
    mlmodel = _mlflow_mlmodel(raw)
    uri = _uri("CANDIDATE_MODEL_URI", mlmodel or raw)
    mode = (env.get("CANDIDATE_MODE") or "shadow").strip().lower()
    if mode not in CANDIDATE_MODES:
        raise SettingsError(f"CANDIDATE_MODE={_show(mode)} is not allowed; expected one of {', '.join(CANDIDATE_MODES)}")
    percent_text = env.get("CANDIDATE_PERCENT", "").strip()
    if mode == "canary" and not percent_text:
        raise SettingsError(
            "CANDIDATE_MODE=canary needs CANDIDATE_PERCENT; expected the share of requests the candidate "
            "answers, a number from 0 to 100 (e.g. 5)"
        )
    header = (env.get("CANDIDATE_KEY_HEADER") or DEFAULT_CANDIDATE_KEY_HEADER).strip().lower()
    if not re.fullmatch(_HEADER_NAME, header):
        raise SettingsError(f"CANDIDATE_KEY_HEADER={_show(header)} is not a header name; expected e.g. x-user-id")
    return CandidateSettings(
        model_uri=uri,
        model_format="mlflow" if mlmodel else _model_format(raw, uri, "CANDIDATE_MODEL_URI"),
        model_sha256=_sha256(env.get("CANDIDATE_MODEL_SHA256"), "CANDIDATE_MODEL_SHA256"),
        mode=mode,
        percent=_float("CANDIDATE_PERCENT", percent_text, 0.0, 0.0, 100.0),
        key_header=header,
        probability_tolerance=_float(
            "CANDIDATE_PROBABILITY_TOLERANCE", env.get("CANDIDATE_PROBABILITY_TOLERANCE"),
            DEFAULT_CANDIDATE_PROBABILITY_TOLERANCE, 0.0, 1.0,
        ),
    )


def _folder(name: str, value: str | None) -> str | None:
    value = (value or "").strip()
    if not value:
        return None
    if not os.path.isabs(value) or not os.path.isdir(value):
        raise SettingsError(f"{name}={_show(value)} is not usable; expected the absolute path of an existing folder")
    return value


def _show(value: str) -> str:
    return repr(value if len(value) <= 80 else value[:77] + "...")


def _uri(name: str, value: str) -> StorageURI:
    try:
        uri = parse_uri(value)
    except ValueError as exc:
        raise SettingsError(f"{name}={_show(value)} is not a usable location: {exc}") from None
    problem = missing_sdk(uri.scheme)
    if problem:
        raise SettingsError(f"{name}={_show(value)} cannot be used here: {problem}")
    return uri


def _optional_prefix(name: str, value: str | None) -> StorageURI | None:
    """A folder-like location (s3://bucket/prefix/, file:///abs/folder); see core.storage.locations."""
    value = (value or "").strip()
    if not value:
        return None
    from core.storage.locations import parse_output_prefix  # here: an HTTP-only function never loads it

    try:
        prefix = parse_output_prefix(value)
    except ValueError as exc:
        raise SettingsError(f"{name}={_show(value)} is not a usable location: {exc}") from None
    problem = missing_sdk(prefix.scheme)
    if problem:
        raise SettingsError(f"{name}={_show(value)} cannot be used here: {problem}")
    return prefix


def _check_outputs_apart_from_inputs(inputs: StorageURI, outputs: StorageURI | None) -> None:
    """Refuse, at start, an output prefix (set, or the default predictions/ of the inputs' bucket)
    that is the watched input prefix: every output would be written among the inputs."""
    from core.storage.locations import check_output_prefix, output_prefix_for

    name = "BATCH_OUTPUT_URI" if outputs is not None else "the default output prefix"
    check_output_prefix(output_prefix_for(inputs, outputs), inputs, name)


def _model_format(raw: str, uri: StorageURI, name: str = "MODEL_URI") -> str:
    fmt = format_for_name(uri.name)
    if fmt is None:
        raise SettingsError(
            f"{name}={_show(raw)} names a file whose extension this service cannot load; the format "
            f"follows the extension, expected one of {supported_extensions()}; or an MLflow model directory, "
            "ending with '/' (e.g. s3://bucket/models/titanic/ or file:///models/titanic/)"
        )
    return fmt.name


# --- MLflow model directories (core/model/mlflow_model.py) ---------------------------------------


def _mlflow_mlmodel(raw: str) -> str | None:
    """Where the MLmodel file is when MODEL_URI names an MLflow model directory, else None: a URI
    ending with '/', one whose last segment is MLmodel, or a local folder holding an MLmodel (a stat,
    local only). A model file (a known extension) returns at once.

    >>> _mlflow_mlmodel("s3://bucket/models/titanic/")
    's3://bucket/models/titanic/MLmodel'
    """
    last = raw.rsplit("/", 1)[-1]
    if format_for_name(last) is not None:
        return None
    if raw.endswith("/"):
        return raw + "MLmodel"
    if last == "MLmodel":
        return raw
    if raw[:5].lower() == "file:":
        from urllib.parse import unquote, urlsplit

        folder = unquote(urlsplit(raw).path)
        if folder.startswith("/") and os.path.isfile(os.path.join(folder, "MLmodel")):
            return raw + "/MLmodel"
    return None


def _type_names(name: str, value: str | None) -> tuple[str, ...]:
    """Fully-qualified type names, comma-separated. There is no value meaning "trust everything"."""
    names = tuple(dict.fromkeys(part.strip() for part in (value or "").split(",") if part.strip()))
    for type_name in names:
        if not re.fullmatch(_TYPE_NAME, type_name):
            raise SettingsError(
                f"{name} contains {_show(type_name)}; expected a comma-separated list of fully-qualified "
                "type names such as sklearn.tree._tree.Tree (the types a model's skops file is refused for); "
                "trusting every type is not possible"
            )
    return names


def _sha256(value: str | None, name: str = "MODEL_SHA256") -> str | None:
    value = (value or "").strip().lower()
    if not value:
        return None
    if not re.fullmatch(_SHA256, value):
        raise SettingsError(
            f"{name}={_show(value)} is not a SHA-256 digest; expected 64 hexadecimal characters "
            "(the output of `sha256sum model.joblib`)"
        )
    return value


def _model_version(value: str | None) -> str | None:
    value = (value or "").strip()
    if not value:
        return None
    if len(value) > 128 or not value.isprintable():
        raise SettingsError(
            f"MODEL_VERSION={_show(value)} is not allowed; expected at most 128 printable characters"
        )
    return value


def _int(name: str, value: str | None, default: int, low: int, high: int, why: tuple[str, str] | None = None) -> int:
    """An integer from ``low`` to ``high``; ``why`` says what each bound is, for the message."""
    value = (value or "").strip().replace("_", "")
    if not value:
        return default
    try:
        number = int(value)
    except ValueError:
        number = None
    if number is None or not low <= number <= high:
        bounds = f"{low} ({why[0]}) to {high} ({why[1]})" if why else f"{low} to {high}"
        raise SettingsError(f"{name}={_show(value)} is not allowed; expected an integer from {bounds}")
    return number


def _float(name: str, value: str | None, default: float, low: float, high: float) -> float:
    value = (value or "").strip()
    if not value:
        return default
    try:
        number = float(value)
    except ValueError:
        number = None
    if number is None or not low <= number <= high:
        raise SettingsError(f"{name}={_show(value)} is not allowed; expected a number of seconds from {low} to {high}")
    return number


def _bool(name: str, value: str | None, default: bool) -> bool:
    if value is None:
        return default
    folded = value.strip().lower()
    if folded in _TRUE:
        return True
    if folded in _FALSE:
        return False
    raise SettingsError(f"{name}={_show(value)} is not allowed; expected true or false")


def _choice(name: str, value: str | None, default: str, allowed: tuple[str, ...]) -> str:
    value = (value or "").strip().upper()
    if not value:
        return default
    if value not in allowed:
        raise SettingsError(f"{name}={_show(value)} is not allowed; expected one of {', '.join(allowed)}")
    return value


def _origins(value: str | None) -> tuple[str, ...]:
    origins = tuple(part.strip().rstrip("/") for part in (value or "").split(",") if part.strip())
    for origin in origins:
        if origin != "*" and not re.fullmatch(_ORIGIN, origin):
            raise SettingsError(
                f"CORS_ALLOW_ORIGINS contains {_show(origin)}; expected '*' or a comma-separated list "
                "of origins such as https://app.example.com"
            )
    return origins
