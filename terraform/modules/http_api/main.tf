# An API Gateway HTTP API whose routes proxy to Lambda functions, with an
# optional Lambda REQUEST authorizer and JSON access logs in a CloudWatch log
# group of its own. Routes, payload format and authorizer are Cargo.toml's,
# through dist/manifest.json (var.api): this module decides none of them.
# CORS preflight is left to a route (e.g. OPTIONS /{proxy+}): setting the
# API's cors_configuration would make API Gateway answer OPTIONS itself and
# never call that route.

locals {
  routes          = var.api.routes
  authorizer      = var.api.authorizer
  route_functions = toset([for route in values(local.routes) : route.function])

  unknown_route_targets = sort([
    for key, route in local.routes : "${key} -> ${route.function}" if !contains(keys(var.functions), route.function)
  ])

  authorized_routes = sort([for key, route in local.routes : key if route.authorize])

  # Lookups that yield null instead of failing, so that a route or authorizer
  # naming a function that is not deployed is reported once, by the stage's
  # preconditions, with a clear message.
  integration_targets = { for name, integration in aws_apigatewayv2_integration.function : name => "integrations/${integration.id}" }
  authorizer_function = local.authorizer == null ? null : lookup(var.functions, local.authorizer.function, null)

  # Lambda statement IDs allow [A-Za-z0-9_-]; naming them after the API lets
  # two APIs invoke the same function.
  statement_prefix = replace(var.name, "/[^0-9A-Za-z_-]/", "_")

  # One JSON object per request: who called (ip), what (httpMethod,
  # routeKey), the answer (status, responseLength), and why a request failed
  # before or in the integration (authorizerError, integrationErrorMessage).
  access_log_format = jsonencode({
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
  })
}

resource "aws_apigatewayv2_api" "this" {
  name          = var.name
  protocol_type = "HTTP"
  tags          = var.tags
}

# The checks sit on the stage, not on the API: the API's endpoint must not
# depend on the functions, whose environment may contain it (webhook and
# callback URLs).
resource "aws_cloudwatch_log_group" "access" {
  name              = "/aws/apigateway/${var.name}/access"
  retention_in_days = var.access_log_retention_days
  tags              = var.tags
}

resource "aws_apigatewayv2_stage" "default" {
  api_id      = aws_apigatewayv2_api.this.id
  name        = "$default"
  auto_deploy = true
  tags        = var.tags

  access_log_settings {
    destination_arn = aws_cloudwatch_log_group.access.arn
    format          = local.access_log_format
  }

  lifecycle {
    precondition {
      condition     = length(local.unknown_route_targets) == 0
      error_message = "Route(s) target function(s) that are not deployed (not in dist/manifest.json): ${join(", ", local.unknown_route_targets)}."
    }

    precondition {
      condition     = local.authorizer == null || contains(keys(var.functions), try(local.authorizer.function, ""))
      error_message = "The authorizer function ${try(local.authorizer.function, "")} is not deployed (not in dist/manifest.json)."
    }

    precondition {
      condition     = local.authorizer != null || length(local.authorized_routes) == 0
      error_message = "Route(s) ${join(", ", local.authorized_routes)} have authorize = true but no authorizer is configured."
    }
  }
}

resource "aws_apigatewayv2_integration" "function" {
  for_each = setintersection(local.route_functions, keys(var.functions))

  api_id                 = aws_apigatewayv2_api.this.id
  integration_type       = "AWS_PROXY"
  integration_method     = "POST"
  integration_uri        = var.functions[each.key].invoke_arn
  payload_format_version = var.api.payload_format_version
}

resource "aws_apigatewayv2_authorizer" "this" {
  count = local.authorizer_function == null ? 0 : 1

  api_id                            = aws_apigatewayv2_api.this.id
  name                              = "${var.name}-${local.authorizer.function}"
  authorizer_type                   = "REQUEST"
  authorizer_uri                    = local.authorizer_function.invoke_arn
  authorizer_payload_format_version = local.authorizer.payload_format_version
  # An IAM policy or {"isAuthorized": bool}, as the manifest says. API
  # Gateway takes the setting only with payload format 2.0.
  enable_simple_responses          = local.authorizer.payload_format_version == "2.0" ? local.authorizer.enable_simple_responses : null
  authorizer_result_ttl_in_seconds = local.authorizer.result_ttl_in_seconds
  # No identity source: the function is called for every request, also one
  # without the header (allowed only with caching off).
  identity_sources = length(local.authorizer.identity_sources) > 0 ? local.authorizer.identity_sources : null

  lifecycle {
    precondition {
      condition     = length(local.authorizer.identity_sources) > 0 || local.authorizer.result_ttl_in_seconds == 0
      error_message = "An authorizer without identity_sources must have result_ttl_in_seconds = 0 (API Gateway caches by identity source)."
    }

    precondition {
      condition     = !local.authorizer.enable_simple_responses || local.authorizer.payload_format_version == "2.0"
      error_message = "Simple responses (enable_simple_responses) exist only with payload format 2.0."
    }
  }
}

resource "aws_apigatewayv2_route" "this" {
  for_each = local.routes

  api_id             = aws_apigatewayv2_api.this.id
  route_key          = each.key
  target             = lookup(local.integration_targets, each.value.function, null)
  authorization_type = each.value.authorize ? "CUSTOM" : "NONE"
  authorizer_id      = each.value.authorize ? one(aws_apigatewayv2_authorizer.this[*].id) : null
}

# API Gateway invokes each target function through its resource policy.
resource "aws_lambda_permission" "route" {
  for_each = aws_apigatewayv2_integration.function

  statement_id  = "${local.statement_prefix}-invoke"
  action        = "lambda:InvokeFunction"
  function_name = var.functions[each.key].function_name
  principal     = "apigateway.amazonaws.com"
  # Any stage, method and path of this API.
  source_arn = "${aws_apigatewayv2_api.this.execution_arn}/*/*"
}

resource "aws_lambda_permission" "authorizer" {
  count = local.authorizer_function == null ? 0 : 1

  statement_id  = "${local.statement_prefix}-authorizer"
  action        = "lambda:InvokeFunction"
  function_name = local.authorizer_function.function_name
  principal     = "apigateway.amazonaws.com"
  source_arn    = "${aws_apigatewayv2_api.this.execution_arn}/authorizers/${aws_apigatewayv2_authorizer.this[0].id}"
}
