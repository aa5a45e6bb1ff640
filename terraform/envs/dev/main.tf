# The example application: what dist/manifest.json describes (layers,
# functions and the HTTP API in front of them), and the tables the functions
# use. Layers, routes and the authorizer appear nowhere below: they come from
# Cargo.toml through the manifest. What is here is known at deploy time.

module "manifest" {
  source = "../../modules/manifest"

  # dist/ is at the repository root. The module turns the ZIP paths into
  # paths relative to the working directory, so `filename` is identical on
  # every machine (run terraform with -chdir=terraform/envs/dev).
  manifest_path = "${path.root}/../../../dist/manifest.json"
}

locals {
  # The application's tables: rename or re-key them here.
  tables = {
    users         = { name = "${var.name_prefix}-users", partition_key = "user_id", ttl_attribute = null }
    conversations = { name = "${var.name_prefix}-conversations", partition_key = "phone_number", ttl_attribute = "expires_at" }
  }

  table_names = { for key, table in aws_dynamodb_table.this : key => table.name }
  table_arns  = { for key, table in aws_dynamodb_table.this : key => table.arn }

  # The path of each function's routes by method, from Cargo.toml through
  # the manifest: "auth GET" => ["/auth/callback"].
  route_paths = {
    for key, route in module.manifest.api.routes : "${route.function} ${split(" ", key)[0]}" => split(" ", key)[1]...
    if key != "$default"
  }

  # URLs the functions must know about themselves: the API's endpoint and
  # the path of a route of theirs (auth's one GET route is Cognito's
  # callback, sms's one POST route the webhook Twilio calls). The API's
  # endpoint does not depend on the functions, so this is no dependency
  # cycle.
  auth_callback_url = "${module.api.api_endpoint}${one(local.route_paths["auth GET"])}"
  sms_webhook_url   = "${module.api.api_endpoint}${one(local.route_paths["sms POST"])}"

  cognito = {
    COGNITO_USER_POOL_ID = var.cognito_user_pool_id
    COGNITO_CLIENT_ID    = var.cognito_client_id
  }

  # Deploy-time environment variables by function, as documented at the top
  # of each handler in lambdas/. Optional ones are left out when their
  # variable is null. Static ones (HTTP_TIMEOUT_SECONDS) live in Cargo.toml
  # and reach the functions through the manifest; naming one here too fails
  # the plan.
  environment = {
    users = {
      USERS_TABLE = local.table_names["users"]
    }
    auth = merge(
      local.cognito,
      {
        COGNITO_DOMAIN          = var.cognito_domain
        COGNITO_REDIRECT_URI    = coalesce(var.cognito_redirect_uri, local.auth_callback_url)
        POST_LOGIN_REDIRECT_URL = var.post_login_redirect_url
        USERS_TABLE             = local.table_names["users"]
      },
      var.cognito_client_secret_arn == null ? {} : { COGNITO_CLIENT_SECRET_ARN = var.cognito_client_secret_arn },
    )
    authorizer = local.cognito
    sms = merge(
      {
        CONVERSATIONS_TABLE          = local.table_names["conversations"]
        TWILIO_WEBHOOK_URL           = coalesce(var.twilio_webhook_url, local.sms_webhook_url)
        TWILIO_AUTH_TOKEN_SECRET_ARN = var.twilio_auth_token_secret_arn
        OPENAI_API_KEY_SECRET_ARN    = var.openai_api_key_secret_arn
      },
      var.openai_model == null ? {} : { OPENAI_MODEL = var.openai_model },
    )
  }

  # The secrets each function reads, and the key they are encrypted with
  # when it is not the default aws/secretsmanager one.
  auth_secrets = var.cognito_client_secret_arn == null ? [] : [var.cognito_client_secret_arn]
  sms_secrets  = [var.twilio_auth_token_secret_arn, var.openai_api_key_secret_arn]
  secrets_kms  = var.secrets_kms_key_arn == null ? [] : [var.secrets_kms_key_arn]

  # What each function's role may do besides writing its own log group:
  # exactly the calls its handler makes (lambdas/<name>/*_handler.py).
  # authorizer and cors call no AWS service.
  function_access = {
    users = {
      # list (scan), create (put), read (get), update, delete by user_id.
      dynamodb = [{
        table_arn = local.table_arns["users"]
        actions   = ["dynamodb:Scan", "dynamodb:PutItem", "dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"]
      }]
    }
    auth = {
      # Records the user at login (update_item upserts).
      dynamodb = [{
        table_arn = local.table_arns["users"]
        actions   = ["dynamodb:UpdateItem"]
      }]
      secrets  = local.auth_secrets
      kms_keys = length(local.auth_secrets) > 0 ? local.secrets_kms : []
    }
    sms = {
      # Reads and writes the conversation of one phone number.
      dynamodb = [{
        table_arn = local.table_arns["conversations"]
        actions   = ["dynamodb:GetItem", "dynamodb:PutItem"]
      }]
      secrets  = local.sms_secrets
      kms_keys = local.secrets_kms
    }
  }
}

resource "aws_dynamodb_table" "this" {
  for_each = local.tables

  name         = each.value.name
  billing_mode = "PAY_PER_REQUEST"
  hash_key     = each.value.partition_key

  attribute {
    name = each.value.partition_key
    type = "S"
  }

  dynamic "ttl" {
    for_each = each.value.ttl_attribute == null ? [] : [each.value.ttl_attribute]
    content {
      attribute_name = ttl.value
      enabled        = true
    }
  }

  point_in_time_recovery {
    enabled = true
  }
}

# One ECR repository per image function (package = "image" in Cargo.toml),
# named after its image_repository. Apply it first, push, then apply all:
#   terraform apply -target=module.ecr
#   cargo xtask push
#   terraform apply
module "ecr" {
  source = "../../modules/ecr"

  manifest    = module.manifest
  keep_images = var.keep_images
}

# Memory, timeout, /tmp, reserved concurrency, static environment and log
# retention of each function come from Cargo.toml through the manifest; an
# image function is deployed from the digest `cargo xtask push` recorded.
module "app" {
  source = "../../modules/lambda_app"

  manifest        = module.manifest
  name_prefix     = var.name_prefix
  artifact_bucket = var.artifact_bucket

  common_environment = {
    ALLOWED_ORIGINS = join(",", var.allowed_origins)
    LOG_LEVEL       = var.log_level
  }
  environment     = local.environment
  function_access = local.function_access

  permissions_boundary    = var.permissions_boundary
  iam_path                = var.iam_path
  layer_version_retention = var.layer_version_retention

  # An image function pulls from its repository.
  depends_on = [module.ecr]
}

# Routes, their payload format and the authorizer come from Cargo.toml
# through the manifest.
module "api" {
  source = "../../modules/http_api"

  name      = "${var.name_prefix}-api"
  functions = module.app.functions
  api       = module.manifest.api

  # Kept as long as the functions' logs by default: Cargo.toml's
  # log_retention_days, through the manifest.
  access_log_retention_days = module.manifest.log_retention_days
}
