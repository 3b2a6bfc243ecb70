variable "name" {
  description = "Prefix of every resource name (functions, roles, API, log groups)."
  type        = string
  default     = "serverless-ml"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,38}$", var.name))
    error_message = "name must be 2-39 lowercase letters, digits or hyphens, starting with a letter, e.g. serverless-ml."
  }
}

variable "region" {
  description = "AWS region; null takes the region of the environment (AWS_REGION, the profile)."
  type        = string
  default     = null
}

variable "tags" {
  description = "Tags put on every resource."
  type        = map(string)
  default     = { project = "serverless-ml" }
}

variable "bundle_path" {
  description = "The Lambda zip; null means build/aws/serverless-ml-aws.zip at the repository root (written by `serverless-ml package --provider aws`)."
  type        = string
  default     = null
}

variable "runtime" {
  description = "Lambda Python runtime, on Amazon Linux 2023; must be the Python the bundle is built for (`serverless-ml package --provider aws`: 3.13 unless --python-version). python3.11 (Amazon Linux 2, glibc 2.26) has no wheels of current NumPy; python3.14 needs the AWS provider 6.x, which versions.tf does not allow yet (deploy it with serverless.yml)."
  type        = string
  default     = "python3.13"

  validation {
    condition     = contains(["python3.12", "python3.13"], var.runtime)
    error_message = "runtime must be python3.12 or python3.13 (the Lambda runtimes the bundle is built for, on Amazon Linux 2023, that the AWS provider 5.x of versions.tf knows; python3.14 needs its 6.x releases)."
  }
}

variable "architecture" {
  description = "x86_64 or arm64 (Graviton, cheaper per GB-second; its speed for this package is not measured, so x86_64 stays the default); must match the wheels inside the bundle (`serverless-ml package --provider aws --arch arm64`)."
  type        = string
  default     = "x86_64"

  validation {
    condition     = contains(["x86_64", "arm64"], var.architecture)
    error_message = "architecture must be x86_64 or arm64."
  }
}

# --- the model --------------------------------------------------------------------------------

variable "model_uri" {
  description = "MODEL_URI: the model object, s3://bucket/key. The functions may read this one object and nothing else of its bucket."
  type        = string

  validation {
    condition     = can(regex("^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/.+[^/]$", var.model_uri))
    error_message = "model_uri must be an S3 object such as s3://my-models/iris/model.joblib."
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

variable "candidate_model_uri" {
  description = "CANDIDATE_MODEL_URI of predict: a second model, s3://bucket/key, that predict shadows (candidate_mode = \"shadow\": the primary answers, disagreements are counted, and with deployment_config an alarm on their share rolls a deployment back) or lets answer candidate_percent of requests (\"canary\"); predict may read it. Empty (default): none. Batch serves the primary only."
  type        = string
  default     = ""

  validation {
    condition     = var.candidate_model_uri == "" || (can(regex("^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/.+[^/]$", var.candidate_model_uri)) && can(regex("(?i)[^/]\\.(joblib|pkl|pickle)(\\.(gz|bz2|xz|lzma|z))?$|[^/]\\.(skops|onnx)$", var.candidate_model_uri)))
    error_message = "candidate_model_uri must be empty or an S3 object with a model file extension, such as s3://my-models/iris/model-v2.joblib."
  }
}

variable "candidate_model_sha256" {
  description = "CANDIDATE_MODEL_SHA256: the candidate model file's SHA-256; a mismatch leaves the primary answering and the candidate reported as refused."
  type        = string
  default     = ""

  validation {
    condition     = can(regex("^([0-9a-f]{64})?$", var.candidate_model_sha256))
    error_message = "candidate_model_sha256 must be 64 lowercase hexadecimal characters (the output of `sha256sum model.joblib`) or empty."
  }
}

variable "candidate_mode" {
  description = "CANDIDATE_MODE with candidate_model_uri: shadow (default) or canary."
  type        = string
  default     = "shadow"

  validation {
    condition     = contains(["shadow", "canary"], var.candidate_mode)
    error_message = "candidate_mode must be shadow or canary."
  }
}

variable "candidate_percent" {
  description = "CANDIDATE_PERCENT with candidate_mode = \"canary\": the share of requests (0 to 100) the candidate answers, chosen by a stable hash of the request id."
  type        = number
  default     = 0

  validation {
    condition     = var.candidate_percent >= 0 && var.candidate_percent <= 100
    error_message = "candidate_percent must be from 0 to 100."
  }
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
  description = "true for a model that takes its rows as a DataFrame (fitted on a pandas DataFrame with steps that select columns by name or read strings; GET /model shows input_schema.layout \"frame\"): the plan refuses a bundle built without pandas (`serverless-ml package --provider aws --extra pandas`, or --model MODEL_FILE), which would answer 503 to every request."
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
  description = "MAX_BODY_BYTES: request body size (2 to 104857600); more is 413. Lambda itself refuses bodies over 6 MiB."
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

variable "snap_start" {
  description = "SnapStart for the predict function: Lambda runs its init once per published version, with the model loaded (PRELOAD_MODEL is forced to true for predict), snapshots it and starts new instances from the snapshot; the HTTP API invokes the alias `snapstart` of the version this config publishes. Needs predict_ephemeral_storage_mb = 512 (at most; refused above) and neither provisioned concurrency nor EFS on predict (this config sets neither)."
  type        = bool
  default     = false
}

# --- traffic shifting (rollout.tf) -------------------------------------------------------------

variable "deployment_config" {
  description = "Traffic shifting of predict by CodeDeploy: empty (default) sends a new version all traffic at the apply; one of CodeDeploy's Lambda configurations (Canary10Percent5Minutes, Canary10Percent10Minutes, Canary10Percent15Minutes, Canary10Percent30Minutes, Linear10PercentEvery1Minute, Linear10PercentEvery2Minutes, Linear10PercentEvery3Minutes, Linear10PercentEvery10Minutes, AllAtOnce) has the HTTP API invoke the alias `live`, which a CodeDeploy deployment moves to each new version by those steps and moves back if an alarm (rollback_error_percent, rollback_disagreement_percent) goes off."
  type        = string
  default     = ""

  validation {
    condition     = contains(["", "Canary10Percent5Minutes", "Canary10Percent10Minutes", "Canary10Percent15Minutes", "Canary10Percent30Minutes", "Linear10PercentEvery1Minute", "Linear10PercentEvery2Minutes", "Linear10PercentEvery3Minutes", "Linear10PercentEvery10Minutes", "AllAtOnce"], var.deployment_config)
    error_message = "deployment_config must be empty (no traffic shifting) or one of CodeDeploy's Lambda configurations: Canary10Percent5Minutes, Canary10Percent10Minutes, Canary10Percent15Minutes, Canary10Percent30Minutes, Linear10PercentEvery1Minute, Linear10PercentEvery2Minutes, Linear10PercentEvery3Minutes, Linear10PercentEvery10Minutes, AllAtOnce."
  }
}

variable "start_deployment" {
  description = "With deployment_config: true (default) starts the CodeDeploy deployment of a new version at the apply and waits for it (AWS CLI needed); false leaves the alias where it is and the command to you (output traffic_shifting)."
  type        = bool
  default     = true
}

variable "rollback_error_percent" {
  description = "With deployment_config: the share of predict's invocations that fail (Lambda Errors) or of the HTTP API's answers that are 5xx, over one minute, above which CodeDeploy rolls a deployment back."
  type        = number
  default     = 5

  validation {
    condition     = var.rollback_error_percent > 0 && var.rollback_error_percent <= 100
    error_message = "rollback_error_percent must be a percentage above 0 and at most 100, e.g. 5."
  }
}

variable "rollback_disagreement_percent" {
  description = "With deployment_config: the share of rows on which a shadowed candidate model (CANDIDATE_MODE=shadow) disagrees with the primary, over one minute, above which CodeDeploy rolls a deployment back."
  type        = number
  default     = 10

  validation {
    condition     = var.rollback_disagreement_percent > 0 && var.rollback_disagreement_percent <= 100
    error_message = "rollback_disagreement_percent must be a percentage above 0 and at most 100, e.g. 10."
  }
}

variable "stable_version" {
  description = "Traffic shifting by hand: a published version of predict (a number, as `aws lambda list-versions-by-function` shows) that the alias `live` keeps serving, while new_version_weight of requests go to the version this apply publishes. Empty (default): off. Not with deployment_config."
  type        = string
  default     = ""

  validation {
    condition     = can(regex("^([1-9][0-9]*)?$", var.stable_version))
    error_message = "stable_version must be a published version number of predict, such as 7, or empty."
  }
}

variable "new_version_weight" {
  description = "With stable_version: the share of requests (0 to 1, e.g. 0.1) the version published last gets; 0 sends all to stable_version."
  type        = number
  default     = 0

  validation {
    condition     = var.new_version_weight >= 0 && var.new_version_weight < 1
    error_message = "new_version_weight must be from 0 to below 1 (1 would be all traffic: set stable_version to that version instead)."
  }
}

variable "metrics_namespace" {
  description = "METRICS_NAMESPACE: the CloudWatch namespace of the functions' own metrics (and of the disagreement alarm); empty: serverless-ml."
  type        = string
  default     = ""

  validation {
    condition     = can(regex("^([0-9A-Za-z.\\-_/#: ]{1,255})?$", var.metrics_namespace)) && !startswith(var.metrics_namespace, "AWS/")
    error_message = "metrics_namespace must be 1-255 characters of letters, digits, '.', '-', '_', '/', '#', ':' or space, not starting with 'AWS/' (or empty)."
  }
}

variable "preload_model" {
  description = "PRELOAD_MODEL: load the model during init (Lambda's init phase is not billed the same way) instead of on the first request."
  type        = bool
  default     = true
}

variable "storage_timeout_seconds" {
  description = "STORAGE_TIMEOUT_SECONDS: how long one S3 call may take, retries included (0.1 to 300)."
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

variable "predict_memory_mb" {
  description = "Memory of the predict function (CPU grows with it; scikit-learn's import needs about 512 MB)."
  type        = number
  default     = 1024
}

variable "predict_timeout_seconds" {
  description = "Timeout of the predict function: a cold start plus STORAGE_TIMEOUT_SECONDS at least. The HTTP API gives up after 30 s."
  type        = number
  default     = 30

  validation {
    condition     = var.predict_timeout_seconds >= 3 && var.predict_timeout_seconds <= 30
    error_message = "predict_timeout_seconds must be from 3 to 30 (the HTTP API's own limit)."
  }
}

variable "batch_memory_mb" {
  description = "Memory of the batch function."
  type        = number
  default     = 2048
}

variable "batch_timeout_seconds" {
  description = "Timeout of the batch function: long enough for the largest input file (bench/batch_throughput.py gives rows/s)."
  type        = number
  default     = 900

  validation {
    condition     = var.batch_timeout_seconds >= 10 && var.batch_timeout_seconds <= 900
    error_message = "batch_timeout_seconds must be from 10 to 900 (Lambda's limit)."
  }
}

variable "predict_ephemeral_storage_mb" {
  description = "/tmp of the predict function: a model of 4 MiB or more is copied there to be loaded from a file (SnapStart needs 512)."
  type        = number
  default     = 512

  validation {
    condition     = var.predict_ephemeral_storage_mb >= 512 && var.predict_ephemeral_storage_mb <= 10240
    error_message = "predict_ephemeral_storage_mb must be from 512 to 10240."
  }
}

variable "batch_ephemeral_storage_mb" {
  description = "/tmp of the batch function: it holds both outputs while they are written (about 100 bytes per row)."
  type        = number
  default     = 2048

  validation {
    condition     = var.batch_ephemeral_storage_mb >= 512 && var.batch_ephemeral_storage_mb <= 10240
    error_message = "batch_ephemeral_storage_mb must be from 512 to 10240."
  }
}

# --- batch storage ----------------------------------------------------------------------------

variable "data_bucket_name" {
  description = "Name of the bucket created for batch inputs and outputs; null: a unique name starting with <name>-data-."
  type        = string
  default     = null
}

variable "input_prefix" {
  description = "Objects created under this prefix (ending .csv, .jsonl, .json, .csv.gz, .jsonl.gz or .json.gz) are predicted."
  type        = string
  default     = "incoming/"

  validation {
    condition     = can(regex("^[A-Za-z0-9!_.*'()-][A-Za-z0-9!_.*'()/-]*/$", var.input_prefix))
    error_message = "input_prefix must be a non-empty key prefix ending with /, e.g. incoming/."
  }
}

variable "output_prefix" {
  description = "Batch outputs go under this prefix of the same bucket (BATCH_OUTPUT_URI); the trigger never covers it."
  type        = string
  default     = "predictions/"

  validation {
    condition     = can(regex("^[A-Za-z0-9!_.*'()-][A-Za-z0-9!_.*'()/-]*/$", var.output_prefix))
    error_message = "output_prefix must be a non-empty key prefix ending with /, e.g. predictions/."
  }
}

variable "noncurrent_version_days" {
  description = "The data bucket is versioned (an overwritten input is not lost); older versions are deleted after this many days."
  type        = number
  default     = 30
}

# --- logs and HTTP ----------------------------------------------------------------------------

variable "log_retention_days" {
  description = "Retention of the functions' and the API's CloudWatch log groups."
  type        = number
  default     = 365

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a value CloudWatch accepts: 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288 or 3653."
  }
}

variable "http_authorization_type" {
  description = "Authorization of the HTTP API's route: NONE (anyone with the URL) or AWS_IAM (SigV4-signed requests from principals allowed execute-api:Invoke)."
  type        = string
  default     = "NONE"

  validation {
    condition     = contains(["NONE", "AWS_IAM"], var.http_authorization_type)
    error_message = "http_authorization_type must be NONE or AWS_IAM."
  }
}

variable "throttling_rate_limit" {
  description = "Steady requests per second the HTTP API lets through (a cap on cost and on runaway clients)."
  type        = number
  default     = 100
}

variable "throttling_burst_limit" {
  description = "Burst of requests the HTTP API lets through."
  type        = number
  default     = 200
}

# --- batch fan-out (fanout.tf) ----------------------------------------------------------------

variable "fan_out" {
  description = "true: a batch input larger than fan_out_part_bytes is handed by the batch function to a Step Functions state machine (plan, a Distributed Map over the parts, merge: the outputs one run would write) instead of being predicted in one invocation. false (default): every file runs in the batch function, and none of it is deployed."
  type        = bool
  default     = false
}

variable "fan_out_max_concurrency" {
  description = "With fan_out: the parts the Distributed Map runs at once (each a Lambda invocation counted against the account's concurrency)."
  type        = number
  default     = 10

  validation {
    condition     = var.fan_out_max_concurrency >= 1 && var.fan_out_max_concurrency <= 10000 && floor(var.fan_out_max_concurrency) == var.fan_out_max_concurrency
    error_message = "fan_out_max_concurrency must be a whole number from 1 to 10000 (Step Functions' Distributed Map limit)."
  }
}

variable "fan_out_part_bytes" {
  description = "With fan_out: BATCH_FANOUT_PART_BYTES, input bytes per part (rounded to whole chunks of rows); a file no larger runs in the batch function. A part must be predicted within fan_out_part_timeout_seconds."
  type        = number
  default     = 268435456

  validation {
    condition     = var.fan_out_part_bytes >= 256 && var.fan_out_part_bytes <= 1099511627776 && floor(var.fan_out_part_bytes) == var.fan_out_part_bytes
    error_message = "fan_out_part_bytes must be a whole number from 256 to 1099511627776 (1 TiB), as core's BATCH_FANOUT_PART_BYTES."
  }
}

variable "fan_out_part_memory_mb" {
  description = "With fan_out: memory of the step that predicts one part (CPU grows with it: two vCPUs from 1,769 MB)."
  type        = number
  default     = 2048

  validation {
    condition     = var.fan_out_part_memory_mb >= 128 && var.fan_out_part_memory_mb <= 10240
    error_message = "fan_out_part_memory_mb must be from 128 to 10240."
  }
}

variable "fan_out_part_timeout_seconds" {
  description = "With fan_out: timeout of the step that predicts one part; a part that times out is not retried (it would again)."
  type        = number
  default     = 900

  validation {
    condition     = var.fan_out_part_timeout_seconds >= 10 && var.fan_out_part_timeout_seconds <= 900
    error_message = "fan_out_part_timeout_seconds must be from 10 to 900 (Lambda's limit)."
  }
}
