output "api_endpoint" {
  description = "Base URL of the HTTP API."
  value       = module.api.api_endpoint
}

output "api_id" {
  description = "ID of the HTTP API."
  value       = module.api.api_id
}

output "execution_arn" {
  description = "Execution ARN of the HTTP API (for further Lambda permissions or IAM policies)."
  value       = module.api.execution_arn
}

output "api_access_log_group" {
  description = "CloudWatch log group of the HTTP API's JSON access logs (one object per request)."
  value       = module.api.access_log_group
}

output "auth_callback_url" {
  description = "The callback URL to register on the Cognito app client (the auth function's COGNITO_REDIRECT_URI unless cognito_redirect_uri is set)."
  value       = local.auth_callback_url
}

output "sms_webhook_url" {
  description = "The webhook URL to configure in Twilio (the sms function's TWILIO_WEBHOOK_URL unless twilio_webhook_url is set)."
  value       = local.sms_webhook_url
}

output "function_names" {
  description = "Deployed Lambda function name by manifest function name."
  value       = { for name, fn in module.app.functions : name => fn.function_name }
}

output "function_arns" {
  description = "Lambda function ARN by manifest function name."
  value       = { for name, fn in module.app.functions : name => fn.arn }
}

output "function_invoke_arns" {
  description = "Invoke ARN (for API Gateway integrations) by manifest function name."
  value       = { for name, fn in module.app.functions : name => fn.invoke_arn }
}

output "role_arns" {
  description = "Execution role ARN by manifest function name."
  value       = { for name, fn in module.app.functions : name => fn.role_arn }
}

output "log_groups" {
  description = "CloudWatch log group name by manifest function name."
  value       = { for name, fn in module.app.functions : name => fn.log_group }
}

output "image_uris" {
  description = "The image each image function runs, by manifest function name: <repository>@sha256:…. Note it before an apply that changes an image: it is what a rollback points the function back at."
  value       = { for name, fn in module.app.functions : name => fn.image_uri if fn.package_type == "Image" }
}

output "image_repositories" {
  description = "ECR repository URL by image function (manifest name): where `cargo xtask push` pushes it."
  value       = { for name, repository in module.ecr.repositories : name => repository.repository_url }
}

output "layer_arns" {
  description = "Layer version ARN the functions use, by manifest layer name. Note it before an apply that changes a layer: it is what a rollback points the functions back at."
  value       = module.app.layer_arns
}

output "table_names" {
  description = "DynamoDB table name by key (users, conversations)."
  value       = local.table_names
}

output "table_arns" {
  description = "DynamoDB table ARN by key (users, conversations)."
  value       = local.table_arns
}
