# One function per entry of the manifest, with its layers in the manifest's
# order (Lambda's merge order into /opt), its own log group and role. Memory,
# timeout, /tmp size, reserved concurrency, static environment and log
# retention come from the manifest (Cargo.toml); only deploy-time values
# (table names, URLs, secret ARNs) are added here.
#
# An image function (package_type "Image") is deployed from the image
# `cargo xtask push` pushed, by digest (image.uri): no ZIP, handler, runtime
# or layers, which the image holds (its CMD is the handler); settings, log
# group and role as for a ZIP function.

locals {
  function_names = { for name in keys(var.manifest.functions) : name => "${var.name_prefix}-${name}" }

  zip_functions = { for name, fn in var.manifest.functions : name => fn if fn.package_type == "Zip" }

  # An image function's ZIP, if the manifest names one, is never uploaded.
  s3_functions = { for name, fn in local.zip_functions : name => fn if fn.upload == "s3" }

  function_s3_keys = {
    for name, fn in local.s3_functions : name => "${var.artifact_key_prefix}${var.name_prefix}/functions/${name}-${fn.sha256}.zip"
  }

  # What Terraform sets on each function, before the manifest's variables.
  deploy_environment = {
    for name in keys(var.manifest.functions) : name => merge(var.common_environment, lookup(var.environment, name, {}))
  }

  # A name set in Cargo.toml and here would have one value silently win.
  environment_conflicts = {
    for name, fn in var.manifest.functions : name => sort(setintersection(keys(fn.environment), keys(local.deploy_environment[name])))
  }

  function_environment = {
    for name, fn in var.manifest.functions : name => merge(fn.environment, local.deploy_environment[name])
  }

  configured_but_not_built = sort(setsubtract(
    setunion(keys(var.environment), keys(var.function_access)),
    keys(var.manifest.functions),
  ))
}

resource "aws_cloudwatch_log_group" "function" {
  for_each = var.manifest.functions

  # Lambda's default log group name: the function needs no logging_config.
  name = "/aws/lambda/${local.function_names[each.key]}"
  # 0 (the manifest's "never expire") is also the provider's.
  retention_in_days = each.value.log_retention_days
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
      error_message = "Function ${each.key} (${each.value.zipped_bytes} bytes zipped) has upload = \"s3\" in dist/manifest.json: it must go through S3, so set artifact_bucket."
    }
  }
}

resource "aws_lambda_function" "this" {
  for_each = var.manifest.functions

  function_name = local.function_names[each.key]
  role          = aws_iam_role.function[each.key].arn
  package_type  = each.value.package_type
  architectures = [each.value.architecture]
  # An image function has none of these: the image's CMD is the handler,
  # its base the runtime, its layers are in it.
  runtime = each.value.package_type == "Zip" ? each.value.runtime : null
  handler = each.value.package_type == "Zip" ? each.value.handler : null
  layers  = each.value.package_type == "Zip" ? [for name in each.value.layers : local.layer_arns[name]] : []

  memory_size = each.value.memory_mb
  timeout     = each.value.timeout_s
  # -1: no reservation (the provider's default; it also removes an earlier one).
  reserved_concurrent_executions = each.value.reserved_concurrency == null ? -1 : each.value.reserved_concurrency

  ephemeral_storage {
    size = each.value.ephemeral_storage_mb
  }

  # The manifest's decision, never recomputed from zipped_bytes.
  filename         = each.value.package_type == "Zip" && each.value.upload == "direct" ? each.value.zip : null
  s3_bucket        = each.value.package_type == "Zip" && each.value.upload == "s3" ? var.artifact_bucket : null
  s3_key           = lookup(local.function_s3_keys, each.key, null)
  source_code_hash = each.value.package_type == "Zip" ? each.value.base64sha256 : null

  # `<repository>@sha256:…`: a new digest is a new deployment, the previous
  # digest a rollback.
  image_uri = each.value.package_type == "Image" ? try(each.value.image.uri, null) : null

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

  lifecycle {
    # `push` records the uri once it has pushed this very image; before
    # that there is nothing Lambda could pull.
    precondition {
      condition     = each.value.package_type != "Image" || try(each.value.image.uri, null) != null
      error_message = "Function ${each.key}'s image has not been pushed: run `cargo xtask push ${each.key}` (dist/manifest.json has no image.uri for it), then apply again."
    }

    precondition {
      condition     = length(local.environment_conflicts[each.key]) == 0
      error_message = "Function ${each.key}: environment variable(s) ${join(", ", local.environment_conflicts[each.key])} are set both in Cargo.toml (the manifest's `environment`) and by Terraform (common_environment or environment). Set each in one place."
    }
  }
}

check "configuration_names_built_functions" {
  assert {
    condition     = length(local.configured_but_not_built) == 0
    error_message = "environment/function_access name function(s) that dist/manifest.json does not define: ${join(", ", local.configured_but_not_built)}. Their settings are ignored."
  }
}
