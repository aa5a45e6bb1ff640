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
      zip                  = string
      handler              = string
      runtime              = string
      architecture         = string
      layers               = list(string)
      sha256               = string
      base64sha256         = string
      zipped_bytes         = number
      unzipped_bytes       = number
      upload               = string
      memory_mb            = number
      timeout_s            = number
      ephemeral_storage_mb = number
      environment          = map(string)
      reserved_concurrency = number # null: no reserved concurrency
      log_retention_days   = number # 0: never expire
      # "Image": deployed from image.uri, with no handler, runtime or layers
      # of its own (the image holds them); the ZIP keys above are unused.
      package_type = optional(string, "Zip")
      image = optional(object({
        base             = string
        digest           = string
        layout           = string
        repository       = string
        uri              = string # null until `cargo xtask push`
        unpacked_bytes   = number
        compressed_bytes = number
        layers = list(object({
          name             = string
          digest           = string
          compressed_bytes = number
          unpacked_bytes   = number
        }))
      }))
    }))
  })

  validation {
    condition     = alltrue([for fn in values(var.manifest.functions) : contains(["Zip", "Image"], fn.package_type)])
    error_message = "manifest: every function's package_type is \"Zip\" or \"Image\"."
  }
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
  description = "S3 bucket (same region) for the ZIPs whose manifest entry says `upload = \"s3\"` (the build tool decides). Required only when such a ZIP exists."
  type        = string
  default     = null
}

variable "artifact_key_prefix" {
  description = "Key prefix inside artifact_bucket. Object keys end in the ZIP's sha256, so a changed ZIP is a new object."
  type        = string
  default     = "lambda/"
}

variable "common_environment" {
  description = "Deploy-time environment variables set on every function, added to the manifest's `environment` (from Cargo.toml). A name the manifest also sets for a function fails the plan."
  type        = map(string)
  default     = {}
}

variable "environment" {
  description = "Deploy-time environment variables per function (table names, URLs, secret ARNs): function name => {NAME = value}. Merged over common_environment and added to the manifest's `environment`; a name the manifest also sets fails the plan. Entries for functions the manifest does not define are reported by a check and ignored."
  type        = map(map(string))
  default     = {}
}

variable "function_access" {
  description = <<-EOT
    What each function's execution role may do besides writing its own log
    group: function name => {
      dynamodb = [{ table_arn, actions }]: the DynamoDB actions (full names,
                 e.g. "dynamodb:GetItem") allowed on that table; Query and
                 Scan are also allowed on the table's indexes (<table>/index/*),
      secrets  = Secrets Manager secret ARNs it reads (secretsmanager:GetSecretValue),
      kms_keys = KMS key ARNs it may decrypt with (kms:Decrypt, through Secrets
                 Manager only): for secrets encrypted with a customer-managed
                 key; secrets under the default aws/secretsmanager key need none,
    }
    A function that is not listed may write its logs and nothing else.
  EOT
  type = map(object({
    dynamodb = optional(list(object({
      table_arn = string
      actions   = list(string)
    })), [])
    secrets  = optional(list(string), [])
    kms_keys = optional(list(string), [])
  }))
  default = {}

  validation {
    condition = alltrue(flatten([
      for access in values(var.function_access) : [
        for table in access.dynamodb : [for action in table.actions : can(regex("^dynamodb:[A-Za-z]+$", action))]
      ]
    ]))
    error_message = "function_access: every dynamodb action is a full IAM action name starting with \"dynamodb:\" (e.g. \"dynamodb:GetItem\"; no wildcards)."
  }

  validation {
    condition     = alltrue(flatten([for access in values(var.function_access) : [for table in access.dynamodb : length(table.actions) > 0]]))
    error_message = "function_access: a dynamodb entry needs at least one action."
  }
}

variable "layer_version_retention" {
  description = <<-EOT
    What happens to a layer version Terraform replaces (the ZIP changed) or
    destroys (the layer left the manifest):
      "retain": it stays in AWS (Terraform forgets it), so a function can be
                pointed back at it: the rollback;
      "delete": it is deleted once the functions use the new version.
  EOT
  type        = string
  default     = "retain"

  validation {
    condition     = contains(["retain", "delete"], var.layer_version_retention)
    error_message = "layer_version_retention must be \"retain\" or \"delete\"."
  }
}

variable "permissions_boundary" {
  description = "ARN of the IAM policy set as permissions boundary of every execution role, or null for none."
  type        = string
  default     = null

  validation {
    condition     = var.permissions_boundary == null || can(regex("^arn:aws[a-z-]*:iam::([0-9]{12}|aws):policy/.+$", var.permissions_boundary))
    error_message = "permissions_boundary must be an IAM policy ARN (arn:aws:iam::<account>:policy/<name>) or null."
  }
}

variable "iam_path" {
  description = "Path of every execution role, e.g. \"/lambda/\"."
  type        = string
  default     = "/"

  validation {
    condition     = can(regex("^/([!-~]+/)?$", var.iam_path))
    error_message = "iam_path must start and end with \"/\" (e.g. \"/\" or \"/lambda/\")."
  }
}

variable "tags" {
  description = "Tags added to every resource that takes tags."
  type        = map(string)
  default     = {}
}
