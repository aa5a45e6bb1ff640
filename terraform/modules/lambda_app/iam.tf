# One execution role per function, allowed only what that function uses:
# its own log group always, and exactly the DynamoDB actions, secrets and
# keys function_access lists for it.
#
# The policies are built with jsonencode rather than aws_iam_policy_document:
# the JSON is then known at plan time, shows in the plan as written, and the
# tests (tests/*.tftest.hcl, mock provider) can read the actions it grants.

locals {
  no_access = { dynamodb = [], secrets = [], kms_keys = [] }

  access = {
    for name in keys(var.manifest.functions) : name => try(var.function_access[name], local.no_access)
  }

  # The only actions that read a table's indexes (<table>/index/<name>).
  index_actions = ["dynamodb:Query", "dynamodb:Scan"]

  policy_statements = {
    for name in keys(var.manifest.functions) : name => concat(
      # The log group is created by this module, so no logs:CreateLogGroup.
      [{
        Sid      = "WriteOwnLogs"
        Effect   = "Allow"
        Action   = ["logs:CreateLogStream", "logs:PutLogEvents"]
        Resource = ["${aws_cloudwatch_log_group.function[name].arn}:*"]
      }],
      [for index, table in local.access[name].dynamodb : {
        Sid      = "Table${index}"
        Effect   = "Allow"
        Action   = sort(distinct(table.actions))
        Resource = [table.table_arn]
      }],
      [for index, table in local.access[name].dynamodb : {
        Sid      = "Table${index}Indexes"
        Effect   = "Allow"
        Action   = sort(setintersection(table.actions, local.index_actions))
        Resource = ["${table.table_arn}/index/*"]
      } if length(setintersection(table.actions, local.index_actions)) > 0],
      length(local.access[name].secrets) == 0 ? [] : [{
        Sid      = "ReadSecrets"
        Effect   = "Allow"
        Action   = ["secretsmanager:GetSecretValue"]
        Resource = sort(distinct(local.access[name].secrets))
      }],
      # Only as Secrets Manager's caller: the role cannot decrypt anything else
      # with these keys.
      length(local.access[name].kms_keys) == 0 ? [] : [{
        Sid      = "DecryptSecrets"
        Effect   = "Allow"
        Action   = ["kms:Decrypt"]
        Resource = sort(distinct(local.access[name].kms_keys))
        Condition = {
          StringLike = { "kms:ViaService" = "secretsmanager.*.amazonaws.com" }
        }
      }],
    )
  }
}

resource "aws_iam_role" "function" {
  for_each = var.manifest.functions

  name                 = local.function_names[each.key]
  path                 = var.iam_path
  permissions_boundary = var.permissions_boundary
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Action    = "sts:AssumeRole"
      Principal = { Service = "lambda.amazonaws.com" }
    }]
  })
  tags = var.tags
}

resource "aws_iam_role_policy" "function" {
  for_each = var.manifest.functions

  name = "access"
  role = aws_iam_role.function[each.key].id
  policy = jsonencode({
    Version   = "2012-10-17"
    Statement = local.policy_statements[each.key]
  })
}
