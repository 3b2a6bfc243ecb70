variable "subscription_id" {
  description = "Azure subscription; null takes ARM_SUBSCRIPTION_ID from the environment."
  type        = string
  default     = null
}

variable "name" {
  description = "Prefix of every resource name; a short hash of the subscription makes the global names (function app, storage accounts) unique."
  type        = string
  default     = "serverless-ml"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,20}$", var.name))
    error_message = "name must be 2-21 lowercase letters, digits or hyphens, starting with a letter, e.g. serverless-ml."
  }
}

variable "location" {
  description = "Azure region of every resource."
  type        = string
  default     = "westeurope"
}

variable "tags" {
  description = "Tags put on every resource."
  type        = map(string)
  default     = { project = "serverless-ml" }
}

variable "bundle_path" {
  description = "The app's zip; null means build/azure/serverless-ml-azure.zip at the repository root (written by `serverless-ml package --provider azure`)."
  type        = string
  default     = null
}

variable "python_version" {
  description = "Python of the Functions host: 3.12 or 3.13 (Flex Consumption and Elastic Premium run both; the bundle's wheels must be for the same one)."
  type        = string
  default     = "3.13"

  validation {
    condition     = contains(["3.12", "3.13"], var.python_version)
    error_message = "python_version must be 3.12 or 3.13."
  }
}

variable "remote_build" {
  description = "true: the zip holds the sources and the platform installs requirements.txt (remote build); false: the zip already holds .python_packages (`serverless-ml package --provider azure --vendor-deps`) and runs as it is."
  type        = bool
  default     = true
}

variable "sku_name" {
  description = "The plan: FC1 (Flex Consumption: scales from zero, per-second billing, always_ready_http instances on request) or Elastic Premium EP1-EP3 (at least one instance always running, billed monthly). Linux Consumption (Y1) is not offered: it retires on 30 September 2028 and runs no Python newer than 3.12."
  type        = string
  default     = "FC1"

  validation {
    condition     = contains(["FC1", "EP1", "EP2", "EP3"], var.sku_name)
    error_message = "sku_name must be FC1 (Flex Consumption), EP1, EP2 or EP3 (Elastic Premium); Y1 (Linux Consumption, retiring on 30 September 2028) is not offered."
  }
}

variable "staging_slot" {
  description = "Elastic Premium only: a deployment slot `staging` beside production (same identity and settings, plus staging_app_settings; its package deployed by `az functionapp deployment source config-zip --slot staging`), to try a new package or model and swap it in (`az functionapp deployment slot swap --slot staging`). Flex Consumption has no slots: true with sku_name FC1 is refused (infra/README.md says what to do there)."
  type        = bool
  default     = false
}

variable "staging_app_settings" {
  description = "With staging_slot: settings of the staging slot over production's, e.g. { MAX_ROWS = \"20000\" }. A swap takes them into production: then set the matching variables, or the next apply puts the old values back into the production slot. The identity reads the model blob (model_file) only: another MODEL_URI or a CANDIDATE_MODEL_URI here would not be readable."
  type        = map(string)
  default     = {}
}

variable "instance_memory_in_mb" {
  description = "Flex Consumption: memory of each instance, 512, 2048 or 4096 MB (CPU grows with it); the model, NumPy and scikit-learn need more than 512 MB for most models."
  type        = number
  default     = 2048

  validation {
    condition     = contains([512, 2048, 4096], var.instance_memory_in_mb)
    error_message = "instance_memory_in_mb must be 512, 2048 or 4096."
  }
}

variable "maximum_instance_count" {
  description = "Flex Consumption: the most instances the app scales out to (1 to 1000); caps what a burst of requests or batch events can cost."
  type        = number
  default     = 100

  validation {
    condition     = var.maximum_instance_count >= 1 && var.maximum_instance_count <= 1000 && floor(var.maximum_instance_count) == var.maximum_instance_count
    error_message = "maximum_instance_count must be an integer from 1 to 1000."
  }
}

variable "always_ready_http" {
  description = "Flex Consumption: instances of the HTTP functions kept started (0 to 1000, at most maximum_instance_count), billed while idle; 0 scales to zero and the first request after a quiet spell pays the cold start."
  type        = number
  default     = 0

  validation {
    condition     = var.always_ready_http >= 0 && var.always_ready_http <= 1000 && floor(var.always_ready_http) == var.always_ready_http
    error_message = "always_ready_http must be an integer from 0 to 1000."
  }
}

# --- the model --------------------------------------------------------------------------------

variable "model_file" {
  description = "Local path of the model file, uploaded to the models container of the data account (core reads every az:// location from that one account, AZURE_STORAGE_ACCOUNT_URL)."
  type        = string

  validation {
    # the format follows the file's extension (core/file_formats.py): any other is refused at the functions' start
    condition     = can(regex("(?i)[^/]\\.(joblib|pkl|pickle)(\\.(gz|bz2|xz|lzma|z))?$|[^/]\\.(skops|onnx)$", var.model_file))
    error_message = "model_file must end in a model file extension: .joblib, .pkl or .pickle (also compressed: .gz, .bz2, .xz, .lzma, .z), .skops or .onnx."
  }
}

variable "model_sha256" {
  description = "MODEL_SHA256; empty: the SHA-256 of model_file, computed here, so a swapped blob is refused before it is deserialised."
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
  description = "true for a model that takes its rows as a DataFrame (fitted on a pandas DataFrame with steps that select columns by name or read strings; GET /model shows input_schema.layout \"frame\"): the plan refuses a bundle built without pandas (`serverless-ml package --provider azure --extra pandas`, or --model MODEL_FILE), which would answer 503 to every request."
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
  description = "MAX_BODY_BYTES: request body size (2 to 104857600); more is 413."
  type        = number
  default     = 6291456

  validation {
    condition     = var.max_body_bytes >= 2 && var.max_body_bytes <= 104857600 && floor(var.max_body_bytes) == var.max_body_bytes
    error_message = "max_body_bytes must be an integer from 2 to 104857600."
  }
}

variable "cors_allow_origins" {
  description = "CORS_ALLOW_ORIGINS: [\"*\"] or origins such as https://app.example.com; empty: no CORS headers. core answers CORS itself, so the platform's CORS stays off."
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
  description = "PRELOAD_MODEL: load the model while the worker starts instead of on the first request."
  type        = bool
  default     = true
}

variable "storage_timeout_seconds" {
  description = "STORAGE_TIMEOUT_SECONDS: how long one Blob Storage call may take, retries included (0.1 to 300)."
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

variable "batch_fanout_durable" {
  description = "BATCH_FANOUT_DURABLE: a file larger than batch_fanout_part_bytes is split into parts predicted in parallel by Durable Functions in the same app (task hub in the host's storage account), then merged into the outputs one run writes. false: every file runs in one invocation."
  type        = bool
  default     = false
}

variable "batch_fanout_part_bytes" {
  description = "BATCH_FANOUT_PART_BYTES (with batch_fanout_durable): input bytes per part, rounded to whole chunks of rows; a file no larger runs in the trigger itself (256 bytes to 1 TiB)."
  type        = number
  default     = 268435456

  validation {
    condition     = var.batch_fanout_part_bytes >= 256 && var.batch_fanout_part_bytes <= 1099511627776 && floor(var.batch_fanout_part_bytes) == var.batch_fanout_part_bytes
    error_message = "batch_fanout_part_bytes must be an integer from 256 to 1099511627776 (1 TiB)."
  }
}

variable "auth_level" {
  description = "FUNCTION_AUTH_LEVEL of the HTTP functions: FUNCTION (a function key in ?code= or x-functions-key), ANONYMOUS or ADMIN."
  type        = string
  default     = "FUNCTION"

  validation {
    condition     = contains(["FUNCTION", "ANONYMOUS", "ADMIN"], var.auth_level)
    error_message = "auth_level must be FUNCTION, ANONYMOUS or ADMIN."
  }
}

# --- batch ------------------------------------------------------------------------------------

variable "batch_function" {
  description = "Which function the Event Grid subscription delivers to: batch_event_grid (the Event Grid trigger; no key needed) or batch_blob (the blob trigger with source EventGrid, through the host's blobs webhook and its system key)."
  type        = string
  default     = "batch_event_grid"

  validation {
    condition     = contains(["batch_event_grid", "batch_blob"], var.batch_function)
    error_message = "batch_function must be batch_event_grid or batch_blob."
  }
}

variable "input_container" {
  description = "Container watched for new .csv/.jsonl(.gz) blobs (BATCH_INPUT_CONTAINER)."
  type        = string
  default     = "batch-input"
}

variable "output_container" {
  description = "Container the outputs are written to; a container of its own, so its blobs never match the subscription's subject filter."
  type        = string
  default     = "batch-output"
}

variable "output_prefix" {
  description = "Prefix of the outputs inside output_container (BATCH_OUTPUT_URI=az://<output_container>/<output_prefix>)."
  type        = string
  default     = "predictions/"

  validation {
    condition     = can(regex("^([A-Za-z0-9._-][A-Za-z0-9._/-]*/)?$", var.output_prefix))
    error_message = "output_prefix must be empty or a prefix ending with /, e.g. predictions/."
  }
}

variable "data_replication_type" {
  description = "Replication of the data account (model, inputs, outputs): GRS keeps a copy in the paired region."
  type        = string
  default     = "GRS"

  validation {
    condition     = contains(["LRS", "ZRS", "GRS", "RAGRS", "GZRS", "RAGZRS"], var.data_replication_type)
    error_message = "data_replication_type must be one of LRS, ZRS, GRS, RAGRS, GZRS, RAGZRS."
  }
}

variable "log_retention_days" {
  description = "Retention of the Log Analytics workspace behind Application Insights (30 to 730)."
  type        = number
  default     = 90

  validation {
    condition     = var.log_retention_days >= 30 && var.log_retention_days <= 730
    error_message = "log_retention_days must be from 30 to 730."
  }
}
