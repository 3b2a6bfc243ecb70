variable "project_id" {
  description = "Google Cloud project."
  type        = string
}

variable "region" {
  description = "Region of the functions (and, by default, of the buckets)."
  type        = string
  default     = "europe-west1"
}

variable "bucket_location" {
  description = "Location of the input and output buckets; null: the functions' region. The storage trigger runs in this location."
  type        = string
  default     = null
}

variable "name" {
  description = "Prefix of every resource name."
  type        = string
  default     = "serverless-ml"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,20}$", var.name))
    error_message = "name must be 2-21 lowercase letters, digits or hyphens, starting with a letter, e.g. serverless-ml."
  }
}

variable "labels" {
  description = "Labels put on the functions and buckets."
  type        = map(string)
  default     = { project = "serverless-ml" }
}

variable "bundle_path" {
  description = "The functions' source zip; null means build/gcp/serverless-ml-gcp.zip at the repository root (written by `serverless-ml package --provider gcp`)."
  type        = string
  default     = null
}

variable "runtime" {
  description = "Cloud Run functions Python runtime: python312 or python313 (Ubuntu 22.04), python314 (Ubuntu 24.04)."
  type        = string
  default     = "python314"

  validation {
    condition     = contains(["python312", "python313", "python314"], var.runtime)
    error_message = "runtime must be python312, python313 or python314."
  }
}

variable "allow_unauthenticated" {
  description = "true: anyone with the URL may call predict (roles/run.invoker for allUsers); false: callers need an identity token of a principal with roles/run.invoker."
  type        = bool
  default     = false
}

# --- the model --------------------------------------------------------------------------------

variable "model_uri" {
  description = "MODEL_URI: the model object, gs://bucket/key. The functions may read this one object (an IAM condition on its bucket, which needs uniform bucket-level access)."
  type        = string

  validation {
    condition     = can(regex("^gs://[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]/.+[^/]$", var.model_uri))
    error_message = "model_uri must be a Cloud Storage object such as gs://my-models/iris/model.joblib."
  }

  validation {
    # the format follows the file's extension (core/file_formats.py): any other is refused at the functions' start
    condition     = can(regex("(?i)[^/]\\.(joblib|pkl|pickle)(\\.(gz|bz2|xz|lzma|z))?$|[^/]\\.(skops|onnx)$", var.model_uri))
    error_message = "model_uri must end in a model file extension: .joblib, .pkl or .pickle (also compressed: .gz, .bz2, .xz, .lzma, .z), .skops or .onnx."
  }
}

variable "model_sha256" {
  description = "MODEL_SHA256: the model file's SHA-256 (64 hex, `sha256sum model.joblib`); a mismatch is refused before deserialising. Empty: not checked."
  type        = string
  default     = ""

  validation {
    condition     = can(regex("^([0-9a-f]{64})?$", var.model_sha256))
    error_message = "model_sha256 must be 64 lowercase hexadecimal characters (the output of `sha256sum model.joblib`) or empty."
  }
}

variable "model_version" {
  description = "MODEL_VERSION reported in every answer; empty: sha256:<first 12 hex of the file>."
  type        = string
  default     = ""
}

variable "skops_trusted_types" {
  description = "SKOPS_TRUSTED_TYPES: fully-qualified type names a .skops model may hold beyond skops' defaults, e.g. [\"sklearn.tree._tree.Tree\"] for trees and forests (`serverless-ml export model.joblib --to skops` prints the ones a file needs); a file holding any other type is refused. Empty: skops' defaults only. No value trusts every type."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for type_name in var.skops_trusted_types : can(regex("^[A-Za-z_][A-Za-z0-9_]*(\\.[A-Za-z_][A-Za-z0-9_]*)+$", type_name))])
    error_message = "skops_trusted_types must hold fully-qualified type names such as sklearn.tree._tree.Tree (a module path, a dot, a class name; letters, digits and underscores); trusting every type (\"*\", \"true\", \"all\") is not possible."
  }
}

variable "model_needs_pandas" {
  description = "true for a model that takes its rows as a DataFrame (fitted on a pandas DataFrame with steps that select columns by name or read strings; GET /model shows input_schema.layout \"frame\"): the plan refuses a bundle built without pandas (`serverless-ml package --provider gcp --extra pandas`, or --model MODEL_FILE), which would answer 503 to every request."
  type        = bool
  default     = false
}

variable "strict_model_version" {
  description = "STRICT_MODEL_VERSION: true refuses (503, naming both versions) a .joblib or .skops model saved with another scikit-learn version; false serves it and reports version_drift in GET /model and the logs."
  type        = bool
  default     = false
}

variable "onnx_threads" {
  description = "ONNX_THREADS: onnxruntime threads per inference of an .onnx model (0 to 256); 0: one per core. 1 keeps building a thread pool (about 100 ms) out of the cold start."
  type        = number
  default     = 1

  validation {
    condition     = var.onnx_threads >= 0 && var.onnx_threads <= 256 && floor(var.onnx_threads) == var.onnx_threads
    error_message = "onnx_threads must be an integer from 0 to 256 (0: one thread per core)."
  }
}

# --- limits and behaviour (core/settings.py checks them again at start) ------------------------

variable "max_rows" {
  description = "MAX_ROWS: rows per request (1 to 1,000,000); more is 413."
  type        = number
  default     = 10000

  validation {
    condition     = var.max_rows >= 1 && var.max_rows <= 1000000 && floor(var.max_rows) == var.max_rows
    error_message = "max_rows must be an integer from 1 to 1000000."
  }
}

variable "max_body_bytes" {
  description = "MAX_BODY_BYTES: request body size (2 to 104857600); more is 413. Cloud Functions refuses bodies over 32 MiB."
  type        = number
  default     = 6291456

  validation {
    condition     = var.max_body_bytes >= 2 && var.max_body_bytes <= 104857600 && floor(var.max_body_bytes) == var.max_body_bytes
    error_message = "max_body_bytes must be an integer from 2 to 104857600."
  }
}

variable "cors_allow_origins" {
  description = "CORS_ALLOW_ORIGINS: [\"*\"] or origins such as https://app.example.com; empty: no CORS headers."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for origin in var.cors_allow_origins : can(regex("^(\\*|https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?)$", origin))])
    error_message = "cors_allow_origins must hold \"*\" or origins such as https://app.example.com (scheme and host, no path)."
  }
}

variable "log_level" {
  description = "LOG_LEVEL of the functions."
  type        = string
  default     = "INFO"

  validation {
    condition     = contains(["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"], var.log_level)
    error_message = "log_level must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL."
  }
}

variable "preload_model" {
  description = "PRELOAD_MODEL: load the model while the instance starts, before it takes traffic."
  type        = bool
  default     = true
}

variable "storage_timeout_seconds" {
  description = "STORAGE_TIMEOUT_SECONDS: how long one Cloud Storage call may take, retries included (0.1 to 300)."
  type        = number
  default     = 10

  validation {
    condition     = var.storage_timeout_seconds >= 0.1 && var.storage_timeout_seconds <= 300
    error_message = "storage_timeout_seconds must be from 0.1 to 300."
  }
}

variable "batch_chunk_rows" {
  description = "BATCH_CHUNK_ROWS: rows the batch function reads and predicts at a time (1 to 1,000,000); its memory grows with this, not with the file."
  type        = number
  default     = 10000

  validation {
    condition     = var.batch_chunk_rows >= 1 && var.batch_chunk_rows <= 1000000 && floor(var.batch_chunk_rows) == var.batch_chunk_rows
    error_message = "batch_chunk_rows must be an integer from 1 to 1000000."
  }
}

variable "batch_part_bytes" {
  description = "BATCH_PART_BYTES: batch outputs larger than this are uploaded in parts of this size, committed at once (5 MiB to 4000 MiB)."
  type        = number
  default     = 16777216

  validation {
    condition     = var.batch_part_bytes >= 5242880 && var.batch_part_bytes <= 4194304000 && floor(var.batch_part_bytes) == var.batch_part_bytes
    error_message = "batch_part_bytes must be an integer from 5242880 (5 MiB) to 4194304000 (4000 MiB)."
  }
}

# --- sizing -----------------------------------------------------------------------------------

variable "predict_all_traffic_on_latest_revision" {
  description = "true (default): each apply that changes predict sends all its traffic to the new revision. false: the new revision takes no traffic by itself; split it on the Cloud Run service behind the function (`gcloud run services update-traffic <predict_run_service> --to-revisions <new revision>=10`), and send it all with --to-latest once it holds (infra/README.md, \"Rollouts\")."
  type        = bool
  default     = true
}

variable "predict_memory" {
  description = "Memory of the predict function."
  type        = string
  default     = "1Gi"
}

variable "predict_timeout_seconds" {
  description = "Timeout of the predict function."
  type        = number
  default     = 60
}

variable "predict_min_instances" {
  description = "Instances kept warm (no cold start for them; billed while idle)."
  type        = number
  default     = 0
}

variable "predict_max_instances" {
  description = "Upper bound of predict instances (a cap on cost)."
  type        = number
  default     = 20
}

variable "batch_memory" {
  description = "Memory of the batch function."
  type        = string
  default     = "2Gi"
}

variable "batch_timeout_seconds" {
  description = "Timeout of the batch function (at most 540 for an event-driven function)."
  type        = number
  default     = 540

  validation {
    condition     = var.batch_timeout_seconds >= 10 && var.batch_timeout_seconds <= 540
    error_message = "batch_timeout_seconds must be from 10 to 540 (the limit of event-driven functions)."
  }
}

variable "batch_max_instances" {
  description = "Upper bound of batch instances."
  type        = number
  default     = 10
}

variable "batch_fanout" {
  description = "A file larger than batch_fanout_part_bytes is split into parts predicted in parallel by a Cloud Workflows workflow (workflow.yaml) calling three more HTTP functions, then merged into the outputs one run writes (BATCH_FANOUT_WORKFLOW). false: every file runs in the batch function."
  type        = bool
  default     = false
}

variable "batch_fanout_part_bytes" {
  description = "BATCH_FANOUT_PART_BYTES (with batch_fanout): input bytes per part, rounded to whole chunks of rows; a file no larger runs in the batch function itself. A part must be predicted within 30 minutes (the longest a workflow waits for one call)."
  type        = number
  default     = 268435456

  validation {
    condition     = var.batch_fanout_part_bytes >= 256 && var.batch_fanout_part_bytes <= 1099511627776 && floor(var.batch_fanout_part_bytes) == var.batch_fanout_part_bytes
    error_message = "batch_fanout_part_bytes must be an integer from 256 to 1099511627776 (1 TiB)."
  }
}

variable "batch_fanout_concurrency" {
  description = "How many parts one workflow execution predicts at once (the parallel loop's concurrency_limit; Workflows runs at most 20 iterations of one loop at a time)."
  type        = number
  default     = 10

  validation {
    condition     = var.batch_fanout_concurrency >= 1 && var.batch_fanout_concurrency <= 20 && floor(var.batch_fanout_concurrency) == var.batch_fanout_concurrency
    error_message = "batch_fanout_concurrency must be an integer from 1 to 20."
  }
}

# --- batch storage ----------------------------------------------------------------------------

variable "output_prefix" {
  description = "Prefix of the outputs in the output bucket (BATCH_OUTPUT_URI=gs://<output bucket>/<output_prefix>)."
  type        = string
  default     = "predictions/"

  validation {
    condition     = can(regex("^([A-Za-z0-9._-][A-Za-z0-9._/-]*/)?$", var.output_prefix))
    error_message = "output_prefix must be empty or a prefix ending with /, e.g. predictions/."
  }
}

variable "noncurrent_version_days" {
  description = "The input bucket is versioned (an overwritten input is not lost); older versions are deleted after this many days."
  type        = number
  default     = 30
}
