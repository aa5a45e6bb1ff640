variable "name" {
  description = "Name of the HTTP API; also prefixes the authorizer's name."
  type        = string
}

variable "functions" {
  description = "Functions the routes may target, by name: pass the lambda_app module's `functions` output."
  type = map(object({
    function_name = string
    invoke_arn    = string
  }))
}

variable "routes" {
  description = "Route key (\"METHOD /path\") => {function, authorize}. `authorize = true` puts the route behind the Lambda authorizer."
  type = map(object({
    function  = string
    authorize = optional(bool, false)
  }))
}

variable "authorizer" {
  description = <<-EOT
    The Lambda REQUEST authorizer, or null for none. The function returns an
    IAM policy document (simple responses are off). With payload format 1.0 the
    event has `methodArn`, as a REST API authorizer's does; with 2.0 it has
    `routeArn`. Caching (result_ttl_in_seconds) is off by default: a cached
    policy is reused for every route the same token calls, so a policy that
    allows only the route it was asked about would deny the next one.
    identity_sources = [] calls the authorizer for every request, also those
    without the header (e.g. a token in a cookie); it requires caching off.
  EOT
  type = object({
    function               = string
    payload_format_version = optional(string, "2.0")
    result_ttl_in_seconds  = optional(number, 0)
    identity_sources       = optional(list(string), ["$request.header.Authorization"])
  })
  default = null

  validation {
    condition     = var.authorizer == null || contains(["1.0", "2.0"], try(var.authorizer.payload_format_version, ""))
    error_message = "authorizer.payload_format_version must be \"1.0\" or \"2.0\"."
  }
}

variable "payload_format_version" {
  description = "Event format the integrations send to the functions: \"2.0\" (requestContext.http.method, rawPath) or \"1.0\" (httpMethod, path, as REST APIs)."
  type        = string
  default     = "2.0"

  validation {
    condition     = contains(["1.0", "2.0"], var.payload_format_version)
    error_message = "payload_format_version must be \"1.0\" or \"2.0\"."
  }
}

variable "access_log_retention_days" {
  description = "Retention of the access log group, days (0: never expires): pass the manifest module's `log_retention_days` (Cargo.toml's). CloudWatch's allowed values are checked by the build tool, not here."
  type        = number

  validation {
    condition     = var.access_log_retention_days != null && try(var.access_log_retention_days >= 0 && floor(var.access_log_retention_days) == var.access_log_retention_days, false)
    error_message = "access_log_retention_days must be a whole number of days, 0 for never expiring."
  }
}

variable "tags" {
  description = "Tags added to the API and its stage."
  type        = map(string)
  default     = {}
}
