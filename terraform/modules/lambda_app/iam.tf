# One execution role per function, allowed only what that function uses:
# its own log group always, DynamoDB tables and secrets as function_access says.

locals {
  no_access = { dynamodb_read = [], dynamodb_write = [], secrets = [] }

  access = {
    for name in keys(var.manifest.functions) : name => try(var.function_access[name], local.no_access)
  }

  dynamodb_read_actions = [
    "dynamodb:BatchGetItem",
    "dynamodb:ConditionCheckItem",
    "dynamodb:DescribeTable",
    "dynamodb:GetItem",
    "dynamodb:Query",
    "dynamodb:Scan",
  ]

  dynamodb_write_actions = [
    "dynamodb:BatchWriteItem",
    "dynamodb:DeleteItem",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
  ]
}

data "aws_iam_policy_document" "assume_lambda" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "function" {
  for_each = var.manifest.functions

  name               = local.function_names[each.key]
  assume_role_policy = data.aws_iam_policy_document.assume_lambda.json
  tags               = var.tags
}

data "aws_iam_policy_document" "function" {
  for_each = var.manifest.functions

  # The log group is created by this module, so no logs:CreateLogGroup.
  statement {
    sid       = "WriteOwnLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.function[each.key].arn}:*"]
  }

  dynamic "statement" {
    for_each = length(local.access[each.key].dynamodb_read) > 0 ? [local.access[each.key].dynamodb_read] : []
    content {
      sid       = "ReadTables"
      actions   = local.dynamodb_read_actions
      resources = flatten([for arn in statement.value : [arn, "${arn}/index/*"]])
    }
  }

  dynamic "statement" {
    for_each = length(local.access[each.key].dynamodb_write) > 0 ? [local.access[each.key].dynamodb_write] : []
    content {
      sid       = "ReadWriteTables"
      actions   = concat(local.dynamodb_read_actions, local.dynamodb_write_actions)
      resources = flatten([for arn in statement.value : [arn, "${arn}/index/*"]])
    }
  }

  dynamic "statement" {
    for_each = length(local.access[each.key].secrets) > 0 ? [local.access[each.key].secrets] : []
    content {
      sid       = "ReadSecrets"
      actions   = ["secretsmanager:GetSecretValue"]
      resources = statement.value
    }
  }
}

resource "aws_iam_role_policy" "function" {
  for_each = var.manifest.functions

  name   = "access"
  role   = aws_iam_role.function[each.key].id
  policy = data.aws_iam_policy_document.function[each.key].json
}
