output "functions" {
  description = "Deployed functions: manifest name => {function_name, arn, qualified_arn, invoke_arn, qualified_invoke_arn, version, role_arn, role_name, log_group, log_group_arn, package_type, image_uri}. `image_uri` (`<repository>@sha256:…`, null for a ZIP function) is the digest deployed: note it before an apply, it is what a rollback points back at."
  value = {
    for name, fn in aws_lambda_function.this : name => {
      function_name        = fn.function_name
      arn                  = fn.arn
      qualified_arn        = fn.qualified_arn
      invoke_arn           = fn.invoke_arn
      qualified_invoke_arn = fn.qualified_invoke_arn
      version              = fn.version
      role_arn             = aws_iam_role.function[name].arn
      role_name            = aws_iam_role.function[name].name
      log_group            = aws_cloudwatch_log_group.function[name].name
      log_group_arn        = aws_cloudwatch_log_group.function[name].arn
      package_type         = fn.package_type
      image_uri            = fn.package_type == "Image" ? fn.image_uri : null
    }
  }
}

output "layer_arns" {
  description = "Layer version ARN by manifest layer name, built and external: the versions the functions use now."
  value       = local.layer_arns
}
