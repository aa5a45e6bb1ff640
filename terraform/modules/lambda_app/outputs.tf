output "functions" {
  description = "Deployed functions: manifest name => {function_name, arn, invoke_arn, role_arn, role_name, log_group}."
  value = {
    for name, fn in aws_lambda_function.this : name => {
      function_name = fn.function_name
      arn           = fn.arn
      invoke_arn    = fn.invoke_arn
      role_arn      = aws_iam_role.function[name].arn
      role_name     = aws_iam_role.function[name].name
      log_group     = aws_cloudwatch_log_group.function[name].name
    }
  }
}

output "layer_arns" {
  description = "Layer version ARN by manifest layer name, built and external."
  value       = local.layer_arns
}
