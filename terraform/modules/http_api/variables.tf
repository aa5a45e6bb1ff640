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

variable "api" {
  description = <<-EOT
    The API as Cargo.toml declares it: pass the manifest module's `api`
    output. `routes`: route key ("METHOD /path" or "$default") => {function,
    authorize}; `authorize = true` puts the route behind the Lambda
    authorizer. `payload_format_version`: the event the integrations send,
    "2.0" (requestContext.http.method, rawPath) or "1.0" (httpMethod, path,
    as REST APIs). `authorizer`: the Lambda REQUEST authorizer, or null for
    none. It returns an IAM policy, or {"isAuthorized": bool} with
    enable_simple_responses (payload format 2.0 only). With payload format
    1.0 its event has `methodArn`, as a REST API authorizer's does; with 2.0
    `routeArn`. A cached answer (result_ttl_in_seconds) is reused for every
    route the same identity calls, so a policy that allows only the route
    it was asked about would deny the next one. identity_sources = [] calls
    the authorizer for every request, also those without the header (e.g. a
    token in a cookie); it requires caching off.
  EOT
  type = object({
    payload_format_version = string
    routes = map(object({
      function  = string
      authorize = bool
    }))
    authorizer = object({
      function                = string
      payload_format_version  = string
      enable_simple_responses = bool
      identity_sources        = list(string)
      result_ttl_in_seconds   = number
    })
  })

  validation {
    condition     = contains(["1.0", "2.0"], var.api.payload_format_version)
    error_message = "api.payload_format_version must be \"1.0\" or \"2.0\"."
  }

  validation {
    condition     = var.api.authorizer == null || contains(["1.0", "2.0"], try(var.api.authorizer.payload_format_version, ""))
    error_message = "api.authorizer.payload_format_version must be \"1.0\" or \"2.0\"."
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
