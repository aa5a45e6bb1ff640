# One function per entry of the manifest, with its layers in the manifest's
# order (Lambda's merge order into /opt), its own log group and role.

locals {
  function_names = { for name in keys(var.manifest.functions) : name => "${var.name_prefix}-${name}" }

  s3_functions = { for name, fn in var.manifest.functions : name => fn if fn.upload == "s3" }

  function_s3_keys = {
    for name, fn in local.s3_functions : name => "${var.artifact_key_prefix}${var.name_prefix}/functions/${name}-${fn.sha256}.zip"
  }

  function_environment = {
    for name in keys(var.manifest.functions) : name => merge(var.common_environment, lookup(var.environment, name, {}))
  }

  configured_but_not_built = sort(setsubtract(
    setunion(keys(var.environment), keys(var.function_access), keys(var.function_settings)),
    keys(var.manifest.functions),
  ))
}

resource "aws_cloudwatch_log_group" "function" {
  for_each = var.manifest.functions

  # Lambda's default log group name: the function needs no logging_config.
  name              = "/aws/lambda/${local.function_names[each.key]}"
  retention_in_days = var.log_retention_days
  tags              = var.tags
}

resource "aws_s3_object" "function" {
  for_each = local.s3_functions

  bucket      = var.artifact_bucket
  key         = local.function_s3_keys[each.key]
  source      = each.value.zip
  source_hash = each.value.base64sha256
  tags        = var.tags

  lifecycle {
    precondition {
      condition     = var.artifact_bucket != null
      error_message = "Function ${each.key} is ${each.value.zipped_bytes} bytes zipped or marked upload = \"s3\": it must go through S3, so set artifact_bucket."
    }
  }
}

resource "aws_lambda_function" "this" {
  for_each = var.manifest.functions

  function_name = local.function_names[each.key]
  role          = aws_iam_role.function[each.key].arn
  runtime       = each.value.runtime
  architectures = [each.value.architecture]
  handler       = each.value.handler
  layers        = [for name in each.value.layers : local.layer_arns[name]]

  memory_size = coalesce(try(var.function_settings[each.key].memory_size, null), var.default_memory_size)
  timeout     = coalesce(try(var.function_settings[each.key].timeout, null), var.default_timeout)

  filename         = each.value.upload == "direct" ? each.value.zip : null
  s3_bucket        = each.value.upload == "s3" ? var.artifact_bucket : null
  s3_key           = lookup(local.function_s3_keys, each.key, null)
  source_code_hash = each.value.base64sha256

  dynamic "environment" {
    for_each = length(local.function_environment[each.key]) > 0 ? [local.function_environment[each.key]] : []
    content {
      variables = environment.value
    }
  }

  tags = var.tags

  depends_on = [
    aws_cloudwatch_log_group.function,
    aws_iam_role_policy.function,
    aws_s3_object.function,
  ]
}

check "configuration_names_built_functions" {
  assert {
    condition     = length(local.configured_but_not_built) == 0
    error_message = "environment/function_access/function_settings name function(s) that dist/manifest.json does not define: ${join(", ", local.configured_but_not_built)}. Their settings are ignored."
  }
}
