# Tests of the lambda_app module with a mocked AWS provider: no credentials,
# no network, nothing created. `terraform init` must still find the
# hashicorp/aws provider (its schema): offline, from a filesystem mirror, as
# terraform/test.sh does with TF_PROVIDER_MIRROR. Needs Terraform >= 1.7.
#
# The manifest below is what modules/manifest outputs. Its upload decisions
# deliberately contradict the sizes (a small ZIP marked "s3", a 60 MB one
# marked "direct"): the module must follow the manifest, not recompute.

mock_provider "aws" {
  # Known ARNs instead of random strings, so the policies can be checked.
  mock_resource "aws_cloudwatch_log_group" {
    defaults = {
      arn = "arn:aws:logs:us-east-1:123456789012:log-group:mock"
    }
  }

  mock_resource "aws_iam_role" {
    defaults = {
      arn = "arn:aws:iam::123456789012:role/mock"
    }
  }

  mock_resource "aws_lambda_layer_version" {
    defaults = {
      arn = "arn:aws:lambda:us-east-1:123456789012:layer:mock:1"
    }
  }
}

variables {
  name_prefix     = "test"
  artifact_bucket = "artifacts"

  manifest = {
    runtime      = "python3.11"
    architecture = "x86_64"
    built_layers = {
      small_layer = {
        kind           = "requirements"
        zip            = "../../../dist/layers/small_layer.zip"
        sha256         = "1111111111111111111111111111111111111111111111111111111111111111"
        base64sha256   = "ERERERERERERERERERERERERERERERERERERERERERE="
        zipped_bytes   = 1000
        unzipped_bytes = 3000
        upload         = "s3"
        runtimes       = ["python3.11"]
        architectures  = ["x86_64"]
      }
      large_layer = {
        kind           = "source"
        zip            = "../../../dist/layers/large_layer.zip"
        sha256         = "2222222222222222222222222222222222222222222222222222222222222222"
        base64sha256   = "IiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiI="
        zipped_bytes   = 60000000
        unzipped_bytes = 150000000
        upload         = "direct"
        runtimes       = ["python3.11"]
        architectures  = ["x86_64"]
      }
    }
    external_layers = {
      powertools = "arn:aws:lambda:us-east-1:017000801446:layer:AWSLambdaPowertoolsPythonV3-python311-x86_64:7"
    }
    functions = {
      small = {
        zip                  = "../../../dist/functions/small.zip"
        handler              = "small_handler.lambda_handler"
        runtime              = "python3.11"
        architecture         = "x86_64"
        layers               = ["powertools", "small_layer"]
        sha256               = "3333333333333333333333333333333333333333333333333333333333333333"
        base64sha256         = "MzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzM="
        zipped_bytes         = 2000
        unzipped_bytes       = 5000
        upload               = "s3"
        memory_mb            = 512
        timeout_s            = 15
        ephemeral_storage_mb = 1024
        environment          = { HTTP_TIMEOUT_SECONDS = "10" }
        reserved_concurrency = 5
        log_retention_days   = 30
      }
      large = {
        zip                  = "../../../dist/functions/large.zip"
        handler              = "large_handler.lambda_handler"
        runtime              = "python3.11"
        architecture         = "x86_64"
        layers               = ["large_layer"]
        sha256               = "4444444444444444444444444444444444444444444444444444444444444444"
        base64sha256         = "RERERERERERERERERERERERERERERERERERERERERERE="
        zipped_bytes         = 60000000
        unzipped_bytes       = 150000000
        upload               = "direct"
        memory_mb            = 128
        timeout_s            = 3
        ephemeral_storage_mb = 512
        environment          = {}
        reserved_concurrency = null
        log_retention_days   = 0
      }
      # An image function: its ZIP keys are the build's (and say "s3", to
      # show they are not acted on); it is deployed from image.uri.
      img = {
        zip                  = "../../../dist/functions/img.zip"
        handler              = "img_handler.lambda_handler"
        runtime              = "python3.11"
        architecture         = "arm64"
        layers               = []
        sha256               = "5555555555555555555555555555555555555555555555555555555555555555"
        base64sha256         = "VVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVU="
        zipped_bytes         = 300000000
        unzipped_bytes       = 900000000
        upload               = "s3"
        memory_mb            = 2048
        timeout_s            = 60
        ephemeral_storage_mb = 4096
        environment          = { MODEL = "small" }
        reserved_concurrency = 2
        log_retention_days   = 7
        package_type         = "Image"
        image = {
          base             = "public.ecr.aws/lambda/python@sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
          digest           = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
          layout           = "../../../dist/images/img"
          repository       = "123456789012.dkr.ecr.us-east-1.amazonaws.com/app/img"
          uri              = "123456789012.dkr.ecr.us-east-1.amazonaws.com/app/img@sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
          unpacked_bytes   = 1100000000
          compressed_bytes = 400000000
          layers = [
            { name = "base", digest = "sha256:1111111111111111111111111111111111111111111111111111111111111111", compressed_bytes = 100000000, unpacked_bytes = 200000000 },
            { name = "large_layer", digest = "sha256:2222222222222222222222222222222222222222222222222222222222222222", compressed_bytes = 60000000, unpacked_bytes = 150000000 },
            { name = "function", digest = "sha256:3333333333333333333333333333333333333333333333333333333333333333", compressed_bytes = 240000000, unpacked_bytes = 750000000 },
          ]
        }
      }
    }
  }

  common_environment = { LOG_LEVEL = "INFO" }
  environment = {
    small = { USERS_TABLE = "users" }
  }

  function_access = {
    small = {
      dynamodb = [
        { table_arn = "arn:aws:dynamodb:us-east-1:123456789012:table/users", actions = ["dynamodb:GetItem", "dynamodb:Query"] },
      ]
      secrets  = ["arn:aws:secretsmanager:us-east-1:123456789012:secret:token-AbCdEf"]
      kms_keys = ["arn:aws:kms:us-east-1:123456789012:key/11111111-2222-3333-4444-555555555555"]
    }
    large = {
      dynamodb = [
        { table_arn = "arn:aws:dynamodb:us-east-1:123456789012:table/conversations", actions = ["dynamodb:PutItem", "dynamodb:GetItem"] },
      ]
    }
  }
}

run "upload_follows_the_manifest" {
  command = plan

  # A 2 KB function marked "s3" goes through S3 ...
  assert {
    condition = (
      aws_lambda_function.this["small"].filename == null &&
      aws_lambda_function.this["small"].s3_bucket == "artifacts" &&
      aws_lambda_function.this["small"].s3_key == "lambda/test/functions/small-3333333333333333333333333333333333333333333333333333333333333333.zip"
    )
    error_message = "small (upload = \"s3\") must deploy from S3: filename ${jsonencode(aws_lambda_function.this["small"].filename)}, s3_key ${jsonencode(aws_lambda_function.this["small"].s3_key)}"
  }

  # ... and a 60 MB one marked "direct" is uploaded directly.
  assert {
    condition     = aws_lambda_function.this["large"].filename == "../../../dist/functions/large.zip" && aws_lambda_function.this["large"].s3_bucket == null && aws_lambda_function.this["large"].s3_key == null
    error_message = "large (upload = \"direct\", 60 MB) must use filename: ${jsonencode(aws_lambda_function.this["large"].filename)}"
  }

  assert {
    condition     = toset(keys(aws_s3_object.function)) == toset(["small"]) && aws_s3_object.function["small"].source == "../../../dist/functions/small.zip" && aws_s3_object.function["small"].source_hash == "MzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzM="
    error_message = "only small's ZIP is uploaded to S3: ${jsonencode(keys(aws_s3_object.function))}"
  }

  # The same for layers.
  assert {
    condition     = aws_lambda_layer_version.this["small_layer"].filename == null && aws_lambda_layer_version.this["small_layer"].s3_bucket == "artifacts" && toset(keys(aws_s3_object.layer)) == toset(["small_layer"])
    error_message = "small_layer (upload = \"s3\") must be published from S3"
  }

  assert {
    condition     = aws_lambda_layer_version.this["large_layer"].filename == "../../../dist/layers/large_layer.zip" && aws_lambda_layer_version.this["large_layer"].s3_bucket == null
    error_message = "large_layer (upload = \"direct\", 60 MB) must use filename"
  }

  assert {
    condition     = aws_lambda_function.this["small"].source_code_hash == "MzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzM=" && aws_lambda_layer_version.this["large_layer"].source_code_hash == "IiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiI="
    error_message = "source_code_hash must be the manifest's base64sha256"
  }
}

run "settings_come_from_the_manifest" {
  command = plan

  assert {
    condition = (
      aws_lambda_function.this["small"].memory_size == 512 && aws_lambda_function.this["small"].timeout == 15 &&
      aws_lambda_function.this["small"].ephemeral_storage[0].size == 1024 &&
      aws_lambda_function.this["large"].memory_size == 128 && aws_lambda_function.this["large"].timeout == 3 &&
      aws_lambda_function.this["large"].ephemeral_storage[0].size == 512
    )
    error_message = "memory/timeout/ephemeral storage are not the manifest's"
  }

  # null in the manifest = no reservation = -1 for the provider.
  assert {
    condition     = aws_lambda_function.this["small"].reserved_concurrent_executions == 5 && aws_lambda_function.this["large"].reserved_concurrent_executions == -1
    error_message = "reserved concurrency: ${aws_lambda_function.this["small"].reserved_concurrent_executions}, ${aws_lambda_function.this["large"].reserved_concurrent_executions}"
  }

  assert {
    condition     = aws_cloudwatch_log_group.function["small"].retention_in_days == 30 && aws_cloudwatch_log_group.function["large"].retention_in_days == 0
    error_message = "log retention is not the manifest's"
  }

  assert {
    condition     = aws_cloudwatch_log_group.function["small"].name == "/aws/lambda/test-small" && aws_lambda_function.this["small"].function_name == "test-small"
    error_message = "names are <name_prefix>-<manifest name>"
  }

  # Cargo.toml's variables, common_environment and the function's own.
  assert {
    condition     = aws_lambda_function.this["small"].environment[0].variables == tomap({ HTTP_TIMEOUT_SECONDS = "10", LOG_LEVEL = "INFO", USERS_TABLE = "users" })
    error_message = "small's environment: ${jsonencode(aws_lambda_function.this["small"].environment[0].variables)}"
  }

  assert {
    condition     = aws_lambda_function.this["large"].environment[0].variables == tomap({ LOG_LEVEL = "INFO" })
    error_message = "large's environment: ${jsonencode(aws_lambda_function.this["large"].environment[0].variables)}"
  }

  # Layers in the manifest's order: the external one by its ARN.
  assert {
    condition     = aws_lambda_function.this["small"].layers[0] == "arn:aws:lambda:us-east-1:017000801446:layer:AWSLambdaPowertoolsPythonV3-python311-x86_64:7" && length(aws_lambda_function.this["small"].layers) == 2
    error_message = "small's layers: ${jsonencode(aws_lambda_function.this["small"].layers)}"
  }
}

run "policies_grant_only_what_is_configured" {
  command = apply

  variables {
    iam_path             = "/lambda/"
    permissions_boundary = "arn:aws:iam::123456789012:policy/boundary"
  }

  assert {
    condition = sort(flatten([for statement in jsondecode(aws_iam_role_policy.function["small"].policy).Statement : statement.Action])) == sort([
      "logs:CreateLogStream", "logs:PutLogEvents",
      "dynamodb:GetItem", "dynamodb:Query", # the table
      "dynamodb:Query",                     # its indexes
      "secretsmanager:GetSecretValue",
      "kms:Decrypt",
    ])
    error_message = "small's policy: ${aws_iam_role_policy.function["small"].policy}"
  }

  # Indexes only for Query/Scan: large does neither.
  assert {
    condition = sort(flatten([for statement in jsondecode(aws_iam_role_policy.function["large"].policy).Statement : statement.Action])) == sort([
      "logs:CreateLogStream", "logs:PutLogEvents", "dynamodb:GetItem", "dynamodb:PutItem",
    ])
    error_message = "large's policy: ${aws_iam_role_policy.function["large"].policy}"
  }

  assert {
    condition = {
      for statement in jsondecode(aws_iam_role_policy.function["small"].policy).Statement : statement.Sid => statement.Resource
      } == {
      WriteOwnLogs   = ["arn:aws:logs:us-east-1:123456789012:log-group:mock:*"]
      Table0         = ["arn:aws:dynamodb:us-east-1:123456789012:table/users"]
      Table0Indexes  = ["arn:aws:dynamodb:us-east-1:123456789012:table/users/index/*"]
      ReadSecrets    = ["arn:aws:secretsmanager:us-east-1:123456789012:secret:token-AbCdEf"]
      DecryptSecrets = ["arn:aws:kms:us-east-1:123456789012:key/11111111-2222-3333-4444-555555555555"]
    }
    error_message = "small's policy resources: ${aws_iam_role_policy.function["small"].policy}"
  }

  assert {
    condition     = alltrue([for statement in jsondecode(aws_iam_role_policy.function["small"].policy).Statement : statement.Effect == "Allow" && !strcontains(jsonencode(statement.Action), "*")])
    error_message = "no wildcard actions"
  }

  assert {
    condition     = alltrue([for role in aws_iam_role.function : role.path == "/lambda/" && role.permissions_boundary == "arn:aws:iam::123456789012:policy/boundary"])
    error_message = "iam_path and permissions_boundary apply to every role"
  }

  assert {
    condition     = output.functions["small"].log_group == "/aws/lambda/test-small" && output.functions["small"].log_group_arn == "arn:aws:logs:us-east-1:123456789012:log-group:mock" && output.functions["small"].role_arn == "arn:aws:iam::123456789012:role/mock"
    error_message = "output.functions: ${jsonencode(output.functions["small"])}"
  }
}

# A function without function_access may write its logs, nothing else.
run "no_access_means_logs_only" {
  command = apply

  variables {
    function_access = {}
  }

  assert {
    condition     = sort(flatten([for statement in jsondecode(aws_iam_role_policy.function["large"].policy).Statement : statement.Action])) == tolist(["logs:CreateLogStream", "logs:PutLogEvents"])
    error_message = "large's policy: ${aws_iam_role_policy.function["large"].policy}"
  }

  assert {
    condition     = alltrue([for role in aws_iam_role.function : role.path == "/" && role.permissions_boundary == null])
    error_message = "default iam_path is / and no permissions boundary"
  }
}

run "retain_keeps_replaced_layer_versions" {
  command = plan

  assert {
    condition     = alltrue([for layer in aws_lambda_layer_version.this : layer.skip_destroy])
    error_message = "layer_version_retention = \"retain\" (the default) sets skip_destroy"
  }
}

run "delete_removes_replaced_layer_versions" {
  command = plan

  variables {
    layer_version_retention = "delete"
  }

  assert {
    condition     = alltrue([for layer in aws_lambda_layer_version.this : !layer.skip_destroy])
    error_message = "layer_version_retention = \"delete\" clears skip_destroy"
  }
}

run "unknown_retention_is_rejected" {
  command = plan

  variables {
    layer_version_retention = "keep"
  }

  expect_failures = [var.layer_version_retention]
}

# HTTP_TIMEOUT_SECONDS comes from Cargo.toml for small; setting it here too
# would make one of them silently win.
run "environment_conflict_with_the_manifest_is_rejected" {
  command = plan

  variables {
    environment = {
      small = { USERS_TABLE = "users", HTTP_TIMEOUT_SECONDS = "20" }
    }
  }

  expect_failures = [aws_lambda_function.this["small"]]
}

run "common_environment_conflict_is_rejected" {
  command = plan

  variables {
    common_environment = { LOG_LEVEL = "INFO", HTTP_TIMEOUT_SECONDS = "20" }
  }

  expect_failures = [aws_lambda_function.this["small"]]
}

run "action_without_service_prefix_is_rejected" {
  command = plan

  variables {
    function_access = {
      small = { dynamodb = [{ table_arn = "arn:aws:dynamodb:us-east-1:123456789012:table/users", actions = ["GetItem"] }] }
    }
  }

  expect_failures = [var.function_access]
}

run "wildcard_action_is_rejected" {
  command = plan

  variables {
    function_access = {
      small = { dynamodb = [{ table_arn = "arn:aws:dynamodb:us-east-1:123456789012:table/users", actions = ["dynamodb:*"] }] }
    }
  }

  expect_failures = [var.function_access]
}

run "s3_upload_without_bucket_is_rejected" {
  command = plan

  variables {
    artifact_bucket = null
  }

  expect_failures = [aws_s3_object.function["small"], aws_s3_object.layer["small_layer"]]
}

run "malformed_iam_inputs_are_rejected" {
  command = plan

  variables {
    iam_path             = "lambda"
    permissions_boundary = "boundary"
  }

  expect_failures = [var.iam_path, var.permissions_boundary]
}

# An image function: package_type Image, the manifest's uri, nothing of a
# ZIP function's code (no ZIP, no S3 object, no hash, no handler, runtime or
# layers); the settings, log group and role as for a ZIP function.
run "image_function_is_deployed_from_its_image" {
  command = plan

  assert {
    condition = (
      aws_lambda_function.this["img"].package_type == "Image" &&
      aws_lambda_function.this["img"].image_uri == "123456789012.dkr.ecr.us-east-1.amazonaws.com/app/img@sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
    )
    error_message = "img: package_type ${aws_lambda_function.this["img"].package_type}, image_uri ${jsonencode(aws_lambda_function.this["img"].image_uri)}"
  }

  assert {
    condition = (
      aws_lambda_function.this["img"].handler == null && aws_lambda_function.this["img"].runtime == null &&
      length(aws_lambda_function.this["img"].layers) == 0
    )
    error_message = "img has no handler, runtime or layers: ${jsonencode([aws_lambda_function.this["img"].handler, aws_lambda_function.this["img"].runtime, aws_lambda_function.this["img"].layers])}"
  }

  # Marked "s3" in the ZIP keys, yet nothing is uploaded: the image is the
  # code. (source_code_hash is not set either; the provider computes it, so
  # the mock fills it in.)
  assert {
    condition = (
      aws_lambda_function.this["img"].filename == null && aws_lambda_function.this["img"].s3_bucket == null &&
      aws_lambda_function.this["img"].s3_key == null &&
      aws_lambda_function.this["img"].source_code_hash != "VVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVU=" &&
      !contains(keys(aws_s3_object.function), "img")
    )
    error_message = "img must not deploy a ZIP: filename ${jsonencode(aws_lambda_function.this["img"].filename)}, s3_key ${jsonencode(aws_lambda_function.this["img"].s3_key)}, S3 objects ${jsonencode(keys(aws_s3_object.function))}"
  }

  assert {
    condition = (
      aws_lambda_function.this["img"].architectures == tolist(["arm64"]) &&
      aws_lambda_function.this["img"].memory_size == 2048 && aws_lambda_function.this["img"].timeout == 60 &&
      aws_lambda_function.this["img"].ephemeral_storage[0].size == 4096 &&
      aws_lambda_function.this["img"].reserved_concurrent_executions == 2 &&
      aws_lambda_function.this["img"].environment[0].variables == tomap({ MODEL = "small", LOG_LEVEL = "INFO" })
    )
    error_message = "img's settings are not the manifest's"
  }

  assert {
    condition     = aws_cloudwatch_log_group.function["img"].name == "/aws/lambda/test-img" && aws_cloudwatch_log_group.function["img"].retention_in_days == 7 && aws_iam_role.function["img"].name == "test-img"
    error_message = "img's log group and role are a ZIP function's"
  }

  # The ZIP functions are unchanged.
  assert {
    condition = alltrue([
      for name in ["small", "large"] :
      aws_lambda_function.this[name].package_type == "Zip" && aws_lambda_function.this[name].image_uri == null &&
      aws_lambda_function.this[name].handler == "${name}_handler.lambda_handler" && aws_lambda_function.this[name].runtime == "python3.11"
    ])
    error_message = "ZIP functions: package_type ${aws_lambda_function.this["small"].package_type}, image_uri ${jsonencode(aws_lambda_function.this["small"].image_uri)}"
  }
}

# Built but not pushed: image.uri is null, and the plan stops with the
# command that pushes it.
run "image_not_pushed_is_rejected" {
  command = plan

  variables {
    manifest = merge(var.manifest, {
      functions = merge(var.manifest.functions, {
        img = merge(var.manifest.functions["img"], {
          image = merge(var.manifest.functions["img"].image, { uri = null })
        })
      })
    })
  }

  expect_failures = [aws_lambda_function.this["img"]]
}

# A manifest from before images (no package_type, no image): ZIP functions.
run "functions_without_package_type_are_zip" {
  command = plan

  variables {
    manifest = merge(var.manifest, {
      functions = { for name, fn in var.manifest.functions : name => { for key, value in fn : key => value if !contains(["package_type", "image"], key) } if name != "img" }
    })
  }

  assert {
    condition     = alltrue([for name, fn in aws_lambda_function.this : fn.package_type == "Zip" && fn.image_uri == null && fn.source_code_hash == var.manifest.functions[name].base64sha256])
    error_message = "functions without package_type must deploy as ZIPs"
  }
}
