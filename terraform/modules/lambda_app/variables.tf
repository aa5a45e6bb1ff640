variable "manifest" {
  description = "The outputs of the manifest module: pass `module.manifest` whole. Layers and functions are created from it; nothing here names a layer."
  type = object({
    runtime      = string
    architecture = string
    built_layers = map(object({
      kind           = string
      zip            = string
      sha256         = string
      base64sha256   = string
      zipped_bytes   = number
      unzipped_bytes = number
      upload         = string
      runtimes       = list(string)
      architectures  = list(string)
    }))
    external_layers = map(string)
    functions = map(object({
      zip            = string
      handler        = string
      runtime        = string
      architecture   = string
      layers         = list(string)
      sha256         = string
      base64sha256   = string
      zipped_bytes   = number
      unzipped_bytes = number
      upload         = string
    }))
  })
}

variable "name_prefix" {
  description = "Prefix of every name this module creates: functions, layers, roles, log groups, S3 keys."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9_-]{1,40}$", var.name_prefix))
    error_message = "name_prefix must be 1-40 letters, digits, '-' or '_' (it starts Lambda function, layer and IAM role names)."
  }
}

variable "artifact_bucket" {
  description = "S3 bucket (same region) for ZIPs the manifest routes through S3 (over 50 MB zipped, or `upload = \"s3\"`). Required only when such a ZIP exists."
  type        = string
  default     = null
}

variable "artifact_key_prefix" {
  description = "Key prefix inside artifact_bucket. Object keys end in the ZIP's sha256, so a changed ZIP is a new object."
  type        = string
  default     = "lambda/"
}

variable "common_environment" {
  description = "Environment variables set on every function."
  type        = map(string)
  default     = {}
}

variable "environment" {
  description = "Environment variables per function: function name => {NAME = value}. Merged over common_environment. Entries for functions the manifest does not define are reported by a check and ignored."
  type        = map(map(string))
  default     = {}
}

variable "function_access" {
  description = <<-EOT
    What each function's execution role may touch besides its own log group:
    function name => {
      dynamodb_read  = table ARNs it reads (GetItem, Query, Scan, ...),
      dynamodb_write = table ARNs it reads and writes,
      secrets        = Secrets Manager secret ARNs it reads (GetSecretValue),
    }
    A function that is not listed gets logs only.
  EOT
  type = map(object({
    dynamodb_read  = optional(list(string), [])
    dynamodb_write = optional(list(string), [])
    secrets        = optional(list(string), [])
  }))
  default = {}
}

variable "function_settings" {
  description = "Per-function memory (MB) and timeout (s): function name => {memory_size, timeout}. Unlisted functions get the defaults."
  type = map(object({
    memory_size = optional(number)
    timeout     = optional(number)
  }))
  default = {}
}

variable "default_memory_size" {
  description = "Memory (MB) of a function not listed in function_settings."
  type        = number
  default     = 256
}

variable "default_timeout" {
  description = "Timeout (s) of a function not listed in function_settings."
  type        = number
  default     = 10
}

variable "log_retention_days" {
  description = "Retention of each function's CloudWatch log group."
  type        = number
  default     = 30
}

variable "tags" {
  description = "Tags added to every resource that takes tags."
  type        = map(string)
  default     = {}
}
