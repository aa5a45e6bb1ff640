variable "region" {
  description = "AWS region of every resource."
  type        = string
  default     = "us-east-1"
}

variable "name_prefix" {
  description = "Prefix of every name (functions, layers, roles, tables, API)."
  type        = string
  default     = "lambda-app-dev"
}

variable "cognito_user_pool_id" {
  description = "Cognito user pool whose tokens the authorizer accepts, e.g. us-east-1_AbCdEfGhI."
  type        = string

  validation {
    condition     = can(regex("^[a-z]{2}(-[a-z]+)+-[0-9]_[A-Za-z0-9]+$", var.cognito_user_pool_id))
    error_message = "cognito_user_pool_id looks like <region>_<id>, e.g. us-east-1_AbCdEfGhI."
  }
}

variable "cognito_client_id" {
  description = "Cognito app client ID used by the hosted UI and checked in tokens."
  type        = string
}

variable "cognito_domain" {
  description = "Cognito hosted UI domain, e.g. myapp.auth.us-east-1.amazoncognito.com."
  type        = string
}

variable "cognito_redirect_uri" {
  description = "COGNITO_REDIRECT_URI, exactly as registered on the app client. Default: the API's endpoint and the path of auth's GET route in Cargo.toml, <api_endpoint>/auth/callback (output auth_callback_url)."
  type        = string
  default     = null
}

variable "cognito_client_secret_arn" {
  description = "Secrets Manager ARN of the app client's secret, for a client that has one (COGNITO_CLIENT_SECRET_ARN)."
  type        = string
  default     = null
}

variable "post_login_redirect_url" {
  description = "Where the browser goes after a successful login (POST_LOGIN_REDIRECT_URL), e.g. the web app's URL."
  type        = string
}

variable "twilio_auth_token_secret_arn" {
  description = "Secrets Manager ARN of the Twilio auth token (validates webhook signatures)."
  type        = string
}

variable "twilio_webhook_url" {
  description = "TWILIO_WEBHOOK_URL: the webhook URL exactly as configured in Twilio (it signs it). Default: the API's endpoint and the path of sms's POST route in Cargo.toml, <api_endpoint>/sms/webhook (output sms_webhook_url)."
  type        = string
  default     = null
}

variable "openai_api_key_secret_arn" {
  description = "Secrets Manager ARN of the OpenAI API key."
  type        = string
}

variable "openai_model" {
  description = "OPENAI_MODEL of the sms function; null keeps the function's default."
  type        = string
  default     = null
}

variable "allowed_origins" {
  description = "Origins allowed by CORS (ALLOWED_ORIGINS, comma-joined)."
  type        = list(string)
  default     = ["http://localhost:3000"]
}

variable "artifact_bucket" {
  description = "S3 bucket for the ZIPs dist/manifest.json marks upload = \"s3\" (cargo xtask build decides: over 50 MB zipped). Needed only when such a ZIP exists."
  type        = string
  default     = null
}

variable "log_level" {
  description = "LOG_LEVEL of every function."
  type        = string
  default     = "INFO"
}

variable "secrets_kms_key_arn" {
  description = "ARN of the customer-managed KMS key the secrets above are encrypted with; null when they use the default aws/secretsmanager key. The functions that read secrets may decrypt with it (through Secrets Manager only)."
  type        = string
  default     = null
}

variable "permissions_boundary" {
  description = "ARN of an IAM policy set as permissions boundary of every function role, or null (e.g. when the account requires one for roles created by deployments)."
  type        = string
  default     = null
}

variable "iam_path" {
  description = "Path of every function role."
  type        = string
  default     = "/"
}

variable "layer_version_retention" {
  description = "\"retain\": layer versions a deploy replaces stay in AWS, so a function can be pointed back at one (rollback); \"delete\": they are deleted once the functions use the new version."
  type        = string
  default     = "retain"
}

variable "keep_images" {
  description = "Images each image function's ECR repository keeps (the most recently pushed); older ones expire. A rollback can go back to any digest still kept."
  type        = number
  default     = 10
}
