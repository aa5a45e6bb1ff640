output "api_endpoint" {
  description = "Base URL of the HTTP API."
  value       = module.api.api_endpoint
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

output "layer_arns" {
  description = "Layer version ARN by manifest layer name."
  value       = module.app.layer_arns
}

output "table_names" {
  description = "DynamoDB table name by key (users, conversations)."
  value       = { for key, table in aws_dynamodb_table.this : key => table.name }
}
