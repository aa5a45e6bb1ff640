# Tests of the http_api module with a mocked AWS provider: no credentials,
# no network, nothing created. `terraform init` must still find the
# hashicorp/aws provider (its schema): offline, from a filesystem mirror, as
# terraform/test.sh does with TF_PROVIDER_MIRROR. Needs Terraform >= 1.7.

mock_provider "aws" {
  # Fixed IDs and ARNs instead of random strings, so that the assertions can
  # name them.
  mock_resource "aws_apigatewayv2_api" {
    defaults = {
      id            = "api123"
      api_endpoint  = "https://api123.execute-api.us-east-1.amazonaws.com"
      execution_arn = "arn:aws:execute-api:us-east-1:123456789012:api123"
    }
  }

  mock_resource "aws_apigatewayv2_integration" {
    defaults = {
      id = "integ1"
    }
  }

  mock_resource "aws_apigatewayv2_authorizer" {
    defaults = {
      id = "auth1"
    }
  }

  mock_resource "aws_cloudwatch_log_group" {
    defaults = {
      arn = "arn:aws:logs:us-east-1:123456789012:log-group:/aws/apigateway/test-api/access"
    }
  }
}

variables {
  name = "test-api"

  functions = {
    users = {
      function_name = "test-users"
      invoke_arn    = "arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/arn:aws:lambda:us-east-1:123456789012:function:test-users/invocations"
    }
    cors = {
      function_name = "test-cors"
      invoke_arn    = "arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/arn:aws:lambda:us-east-1:123456789012:function:test-cors/invocations"
    }
    authorizer = {
      function_name = "test-authorizer"
      invoke_arn    = "arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/arn:aws:lambda:us-east-1:123456789012:function:test-authorizer/invocations"
    }
  }

  # As the manifest module's `api` output passes it on.
  api = {
    payload_format_version = "1.0"
    routes = {
      "GET /users"          = { function = "users", authorize = true }
      "DELETE /users/{id}"  = { function = "users", authorize = true }
      "OPTIONS /{proxy+}"   = { function = "cors", authorize = false }
      "GET /users/{id}/raw" = { function = "users", authorize = false }
    }
    authorizer = {
      function                = "authorizer"
      payload_format_version  = "1.0"
      enable_simple_responses = false
      identity_sources        = []
      result_ttl_in_seconds   = 0
    }
  }

  access_log_retention_days = 14
}

run "routes_integrations_and_authorizer" {
  command = apply

  assert {
    condition     = output.route_keys == sort(["DELETE /users/{id}", "GET /users", "GET /users/{id}/raw", "OPTIONS /{proxy+}"])
    error_message = "route_keys: ${jsonencode(output.route_keys)}"
  }

  # One integration per target function; the authorizer is no route target.
  assert {
    condition     = toset(keys(aws_apigatewayv2_integration.function)) == toset(["cors", "users"])
    error_message = "integrations: ${jsonencode(keys(aws_apigatewayv2_integration.function))}"
  }

  assert {
    condition = (
      aws_apigatewayv2_integration.function["users"].integration_uri == var.functions["users"].invoke_arn &&
      aws_apigatewayv2_integration.function["users"].integration_type == "AWS_PROXY" &&
      aws_apigatewayv2_integration.function["users"].payload_format_version == "1.0"
    )
    error_message = "the users integration proxies to its invoke ARN with payload format 1.0"
  }

  assert {
    condition     = alltrue([for route in aws_apigatewayv2_route.this : route.target == "integrations/integ1" && route.api_id == "api123"])
    error_message = "every route targets its function's integration"
  }

  assert {
    condition = (
      aws_apigatewayv2_route.this["GET /users"].authorization_type == "CUSTOM" && aws_apigatewayv2_route.this["GET /users"].authorizer_id == "auth1" &&
      aws_apigatewayv2_route.this["DELETE /users/{id}"].authorization_type == "CUSTOM"
    )
    error_message = "authorize = true puts a route behind the authorizer"
  }

  assert {
    condition = (
      aws_apigatewayv2_route.this["OPTIONS /{proxy+}"].authorization_type == "NONE" && aws_apigatewayv2_route.this["OPTIONS /{proxy+}"].authorizer_id == null &&
      aws_apigatewayv2_route.this["GET /users/{id}/raw"].authorization_type == "NONE"
    )
    error_message = "routes without authorize are open"
  }

  assert {
    condition = (
      length(aws_apigatewayv2_authorizer.this) == 1 &&
      aws_apigatewayv2_authorizer.this[0].authorizer_type == "REQUEST" &&
      aws_apigatewayv2_authorizer.this[0].authorizer_uri == var.functions["authorizer"].invoke_arn &&
      aws_apigatewayv2_authorizer.this[0].authorizer_payload_format_version == "1.0" &&
      aws_apigatewayv2_authorizer.this[0].authorizer_result_ttl_in_seconds == 0 &&
      aws_apigatewayv2_authorizer.this[0].enable_simple_responses == null &&
      aws_apigatewayv2_authorizer.this[0].identity_sources == null
    )
    error_message = "the authorizer: a REQUEST authorizer of the authorizer function, format 1.0, no cache, no identity source"
  }

  assert {
    condition     = aws_apigatewayv2_stage.default.name == "$default" && aws_apigatewayv2_stage.default.auto_deploy
    error_message = "one auto-deployed $default stage"
  }

  assert {
    condition     = output.api_id == "api123" && output.execution_arn == "arn:aws:execute-api:us-east-1:123456789012:api123" && output.api_endpoint == "https://api123.execute-api.us-east-1.amazonaws.com"
    error_message = "outputs: ${output.api_id} ${output.execution_arn} ${output.api_endpoint}"
  }
}

run "invoke_permissions" {
  command = apply

  # Each target function once, for any route of this API only.
  assert {
    condition     = toset(keys(aws_lambda_permission.route)) == toset(["cors", "users"])
    error_message = "route permissions: ${jsonencode(keys(aws_lambda_permission.route))}"
  }

  assert {
    condition = alltrue([
      for name, permission in aws_lambda_permission.route :
      permission.function_name == "test-${name}" && permission.action == "lambda:InvokeFunction" &&
      permission.principal == "apigateway.amazonaws.com" &&
      permission.source_arn == "arn:aws:execute-api:us-east-1:123456789012:api123/*/*" &&
      permission.statement_id == "test-api-invoke"
    ])
    error_message = "route permissions: ${jsonencode(aws_lambda_permission.route)}"
  }

  # The authorizer function may be invoked by this authorizer only.
  assert {
    condition = (
      length(aws_lambda_permission.authorizer) == 1 &&
      aws_lambda_permission.authorizer[0].function_name == "test-authorizer" &&
      aws_lambda_permission.authorizer[0].source_arn == "arn:aws:execute-api:us-east-1:123456789012:api123/authorizers/auth1" &&
      aws_lambda_permission.authorizer[0].statement_id == "test-api-authorizer"
    )
    error_message = "authorizer permission: ${jsonencode(aws_lambda_permission.authorizer)}"
  }
}

run "without_authorizer" {
  command = apply

  variables {
    api = {
      payload_format_version = "2.0"
      routes = {
        "GET /users"        = { function = "users", authorize = false }
        "OPTIONS /{proxy+}" = { function = "cors", authorize = false }
      }
      authorizer = null
    }
  }

  assert {
    condition     = length(aws_apigatewayv2_authorizer.this) == 0 && length(aws_lambda_permission.authorizer) == 0
    error_message = "no authorizer, no authorizer permission"
  }

  assert {
    condition     = alltrue([for route in aws_apigatewayv2_route.this : route.authorization_type == "NONE" && route.authorizer_id == null])
    error_message = "every route is open"
  }

  assert {
    condition     = aws_apigatewayv2_integration.function["users"].payload_format_version == "2.0"
    error_message = "the integrations send the manifest's payload format"
  }
}

# A header identity source allows caching; payload format 2.0 takes the
# manifest's choice between IAM policies and simple responses.
run "authorizer_with_identity_source" {
  command = apply

  variables {
    api = {
      payload_format_version = "2.0"
      routes                 = { "GET /users" = { function = "users", authorize = true } }
      authorizer = {
        function                = "authorizer"
        payload_format_version  = "2.0"
        enable_simple_responses = false
        identity_sources        = ["$request.header.Authorization"]
        result_ttl_in_seconds   = 300
      }
    }
  }

  assert {
    condition = (
      aws_apigatewayv2_authorizer.this[0].identity_sources == toset(["$request.header.Authorization"]) &&
      aws_apigatewayv2_authorizer.this[0].authorizer_payload_format_version == "2.0" &&
      aws_apigatewayv2_authorizer.this[0].enable_simple_responses == false &&
      aws_apigatewayv2_authorizer.this[0].authorizer_result_ttl_in_seconds == 300
    )
    error_message = "authorizer: ${jsonencode(aws_apigatewayv2_authorizer.this[0])}"
  }
}

run "authorizer_with_simple_responses" {
  command = apply

  variables {
    api = {
      payload_format_version = "2.0"
      routes                 = { "GET /users" = { function = "users", authorize = true } }
      authorizer = {
        function                = "authorizer"
        payload_format_version  = "2.0"
        enable_simple_responses = true
        identity_sources        = ["$request.header.Authorization"]
        result_ttl_in_seconds   = 0
      }
    }
  }

  assert {
    condition     = aws_apigatewayv2_authorizer.this[0].enable_simple_responses == true
    error_message = "enable_simple_responses comes from the manifest: ${jsonencode(aws_apigatewayv2_authorizer.this[0])}"
  }
}

run "route_to_a_function_not_deployed_is_rejected" {
  command = plan

  variables {
    api = {
      payload_format_version = "1.0"
      routes = {
        "GET /users"   = { function = "users", authorize = true }
        "POST /orders" = { function = "orders", authorize = false }
      }
      authorizer = {
        function                = "authorizer"
        payload_format_version  = "1.0"
        enable_simple_responses = false
        identity_sources        = []
        result_ttl_in_seconds   = 0
      }
    }
  }

  expect_failures = [aws_apigatewayv2_stage.default]
}

run "authorizer_not_deployed_is_rejected" {
  command = plan

  variables {
    api = {
      payload_format_version = "1.0"
      routes                 = { "GET /users" = { function = "users", authorize = true } }
      authorizer = {
        function                = "missing"
        payload_format_version  = "1.0"
        enable_simple_responses = false
        identity_sources        = []
        result_ttl_in_seconds   = 0
      }
    }
  }

  expect_failures = [aws_apigatewayv2_stage.default]
}

run "authorize_without_authorizer_is_rejected" {
  command = plan

  variables {
    api = {
      payload_format_version = "1.0"
      routes                 = { "GET /users" = { function = "users", authorize = true } }
      authorizer             = null
    }
  }

  expect_failures = [aws_apigatewayv2_stage.default]
}

# API Gateway caches by identity source: none and a cache cannot go together.
run "caching_without_identity_source_is_rejected" {
  command = plan

  variables {
    api = {
      payload_format_version = "1.0"
      routes                 = { "GET /users" = { function = "users", authorize = true } }
      authorizer = {
        function                = "authorizer"
        payload_format_version  = "1.0"
        enable_simple_responses = false
        identity_sources        = []
        result_ttl_in_seconds   = 300
      }
    }
  }

  expect_failures = [aws_apigatewayv2_authorizer.this]
}

# Simple responses exist only with payload format 2.0.
run "simple_responses_with_1_0_are_rejected" {
  command = plan

  variables {
    api = {
      payload_format_version = "1.0"
      routes                 = { "GET /users" = { function = "users", authorize = true } }
      authorizer = {
        function                = "authorizer"
        payload_format_version  = "1.0"
        enable_simple_responses = true
        identity_sources        = []
        result_ttl_in_seconds   = 0
      }
    }
  }

  expect_failures = [aws_apigatewayv2_authorizer.this]
}

run "unknown_payload_format_is_rejected" {
  command = plan

  variables {
    api = {
      payload_format_version = "3.0"
      routes                 = { "GET /users" = { function = "users", authorize = false } }
      authorizer             = null
    }
  }

  expect_failures = [var.api]
}

# The $default stage writes one JSON object per request to a log group of
# the API's own, kept as long as the manifest says (Cargo.toml's
# log_retention_days).
run "access_log" {
  command = apply

  assert {
    condition = (
      aws_cloudwatch_log_group.access.name == "/aws/apigateway/test-api/access" &&
      aws_cloudwatch_log_group.access.retention_in_days == 14 &&
      output.access_log_group == "/aws/apigateway/test-api/access"
    )
    error_message = "access log group: ${jsonencode(aws_cloudwatch_log_group.access)}"
  }

  assert {
    condition = (
      length(aws_apigatewayv2_stage.default.access_log_settings) == 1 &&
      one(aws_apigatewayv2_stage.default.access_log_settings).destination_arn == "arn:aws:logs:us-east-1:123456789012:log-group:/aws/apigateway/test-api/access"
    )
    error_message = "the stage logs to the access log group: ${jsonencode(aws_apigatewayv2_stage.default.access_log_settings)}"
  }

  assert {
    condition = jsondecode(one(aws_apigatewayv2_stage.default.access_log_settings).format) == {
      requestId               = "$context.requestId"
      ip                      = "$context.identity.sourceIp"
      requestTime             = "$context.requestTime"
      httpMethod              = "$context.httpMethod"
      routeKey                = "$context.routeKey"
      status                  = "$context.status"
      protocol                = "$context.protocol"
      responseLength          = "$context.responseLength"
      integrationErrorMessage = "$context.integrationErrorMessage"
      authorizerError         = "$context.authorizer.error"
    }
    error_message = "access log format: ${one(aws_apigatewayv2_stage.default.access_log_settings).format}"
  }
}

run "access_log_never_expiring" {
  command = apply

  variables {
    access_log_retention_days = 0
  }

  assert {
    condition     = aws_cloudwatch_log_group.access.retention_in_days == 0
    error_message = "retention 0 (never expires) is passed through: ${aws_cloudwatch_log_group.access.retention_in_days}"
  }
}

run "negative_access_log_retention_is_rejected" {
  command = plan

  variables {
    access_log_retention_days = -1
  }

  expect_failures = [var.access_log_retention_days]
}

run "fractional_access_log_retention_is_rejected" {
  command = plan

  variables {
    access_log_retention_days = 1.5
  }

  expect_failures = [var.access_log_retention_days]
}
