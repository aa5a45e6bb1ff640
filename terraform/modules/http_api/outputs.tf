output "api_id" {
  description = "ID of the HTTP API."
  value       = aws_apigatewayv2_api.this.id
}

output "api_endpoint" {
  description = "Base URL of the API (its $default stage, auto-deployed), e.g. https://abc123.execute-api.eu-west-1.amazonaws.com."
  value       = aws_apigatewayv2_api.this.api_endpoint
}

output "execution_arn" {
  description = "Execution ARN of the API (for further lambda permissions)."
  value       = aws_apigatewayv2_api.this.execution_arn
}

output "route_keys" {
  description = "Route keys, sorted."
  value       = sort(keys(aws_apigatewayv2_route.this))
}

output "access_log_group" {
  description = "Name of the CloudWatch log group the $default stage writes its JSON access logs to."
  value       = aws_cloudwatch_log_group.access.name
}
