# Fixture tests of the manifest module: `terraform test` in terraform/modules/manifest.
# The module has no resources and no providers, so `apply` is free and needs
# no credentials; it makes every output available to the assertions.
#
# The fixtures under fixtures/*.json describe ZIPs that do not exist, so these
# runs set verify_files = false and a fixed repo_root; the runs against
# fixtures/repo/ exercise the file checks with real (tiny, not-really-ZIP) files.

variables {
  repo_root    = "/repo"
  verify_files = false
}

run "full_manifest" {
  command = apply

  variables {
    manifest_path = "tests/fixtures/full.json"
  }

  assert {
    condition     = output.runtime == "python3.11" && output.architecture == "x86_64"
    error_message = "runtime/architecture not passed through: ${output.runtime}/${output.architecture}"
  }

  assert {
    condition     = keys(output.built_layers) == tolist(["core", "jwt", "shared", "sms"])
    error_message = "built layers are ${jsonencode(keys(output.built_layers))}"
  }

  assert {
    condition     = output.built_layers["shared"].kind == "source" && output.built_layers["sms"].kind == "requirements"
    error_message = "layer kinds not passed through"
  }

  assert {
    condition     = output.built_layers["core"].zip == "/repo/dist/layers/core.zip"
    error_message = "layer zip should be joined to repo_root, got ${output.built_layers["core"].zip}"
  }

  assert {
    condition     = output.built_layers["core"].base64sha256 == "MpR3eh2zoVms754Wn2+cgIGiGnd6pVcslUr8g3XML+w=" && output.built_layers["core"].zipped_bytes == 689685 && output.built_layers["core"].unzipped_bytes == 2148099
    error_message = "layer hash/sizes not passed through: ${jsonencode(output.built_layers["core"])}"
  }

  assert {
    condition     = output.external_layers == tomap({ powertools = "arn:aws:lambda:us-east-1:017000801446:layer:AWSLambdaPowertoolsPythonV3-python311-x86_64:7" })
    error_message = "external layer ARN not passed through: ${jsonencode(output.external_layers)}"
  }

  assert {
    condition     = output.layer_names == tolist(["core", "jwt", "powertools", "shared", "sms"])
    error_message = "layer_names is ${jsonencode(output.layer_names)}"
  }

  assert {
    condition     = keys(output.functions) == tolist(["auth", "authorizer", "cors", "sms", "users"])
    error_message = "functions are ${jsonencode(keys(output.functions))}"
  }

  assert {
    condition     = output.functions["authorizer"].layers == tolist(["powertools", "core", "jwt", "shared"])
    error_message = "layer order must be the manifest's (Lambda's merge order), got ${jsonencode(output.functions["authorizer"].layers)}"
  }

  assert {
    condition     = output.functions["sms"].layers == tolist(["core", "sms", "shared"])
    error_message = "sms layers are ${jsonencode(output.functions["sms"].layers)}"
  }

  assert {
    condition     = length(output.functions["cors"].layers) == 0
    error_message = "cors has no layers, got ${jsonencode(output.functions["cors"].layers)}"
  }

  assert {
    condition     = output.functions["users"].zip == "/repo/dist/functions/users.zip" && output.functions["users"].handler == "users_handler.lambda_handler"
    error_message = "function zip/handler wrong: ${jsonencode(output.functions["users"])}"
  }

  # sms is 60 MB zipped: over the 52,428,800-byte direct-upload limit.
  assert {
    condition     = output.functions["sms"].upload == "s3"
    error_message = "a function over 50 MB zipped must go through S3"
  }

  # auth is small but its manifest entry says "upload": "s3".
  assert {
    condition     = output.functions["auth"].upload == "s3"
    error_message = "the manifest's upload = \"s3\" must be honoured"
  }

  assert {
    condition     = [for name in ["authorizer", "cors", "users"] : output.functions[name].upload] == ["direct", "direct", "direct"]
    error_message = "small functions upload directly"
  }

  assert {
    condition     = alltrue([for layer in output.built_layers : layer.upload == "direct"])
    error_message = "every fixture layer is under 50 MB and uploads directly"
  }

  assert {
    condition     = output.direct_upload_limit_bytes == 52428800
    error_message = "AWS's direct upload limit is 50 MB = 52,428,800 bytes"
  }
}

run "removing_a_layer_removes_it_everywhere" {
  command = apply

  variables {
    manifest_path = "tests/fixtures/one_layer_removed.json"
  }

  assert {
    condition     = keys(output.built_layers) == tolist(["core", "shared", "sms"])
    error_message = "jwt was removed from the manifest; built_layers is ${jsonencode(keys(output.built_layers))}"
  }

  assert {
    condition     = output.functions["auth"].layers == tolist(["core", "shared"]) && output.functions["authorizer"].layers == tolist(["powertools", "core", "shared"])
    error_message = "functions still reference jwt"
  }

  assert {
    condition     = length(output.external_layers) == 1
    error_message = "the external layer is unaffected"
  }
}

# The build tool writes a `bundle = true` function with the merged layers in
# `bundled` and only the layers left to attach in `layers`.
run "bundled_function_attaches_no_layers" {
  command = apply

  variables {
    manifest_path = "tests/fixtures/bundled.json"
  }

  assert {
    condition     = length(output.functions["users"].layers) == 0 && output.functions["users"].bundled == tolist(["core", "shared"])
    error_message = "a bundled function carries its layers inside its ZIP, got ${jsonencode(output.functions["users"])}"
  }

  assert {
    condition     = length(output.functions["sms"].bundled) == 0 && length(output.functions["sms"].layers) == 3
    error_message = "other functions are unaffected"
  }
}

run "missing_layer_is_rejected" {
  command = plan

  variables {
    manifest_path = "tests/fixtures/missing_layer.json"
  }

  expect_failures = [output.functions]
}

run "more_than_five_layers_is_rejected" {
  command = plan

  variables {
    manifest_path = "tests/fixtures/too_many_layers.json"
  }

  expect_failures = [output.functions]
}

run "missing_manifest_is_rejected" {
  command = plan

  variables {
    manifest_path = "tests/fixtures/does-not-exist/manifest.json"
  }

  expect_failures = [var.manifest_path]
}

run "repo_root_defaults_to_the_directory_holding_dist" {
  command = apply

  variables {
    manifest_path = "tests/fixtures/repo/dist/manifest.json"
    repo_root     = null
    verify_files  = true
  }

  assert {
    condition     = output.repo_root == "tests/fixtures/repo"
    error_message = "repo_root is ${output.repo_root}"
  }

  assert {
    condition     = output.built_layers["core"].zip == "tests/fixtures/repo/dist/layers/core.zip" && output.functions["users"].zip == "tests/fixtures/repo/dist/functions/users.zip"
    error_message = "zip paths must stay relative (stable across machines): ${output.built_layers["core"].zip}"
  }

  assert {
    condition     = output.runtime == "python3.12" && output.architecture == "arm64"
    error_message = "runtime/architecture not passed through"
  }
}

run "stale_zip_is_rejected" {
  command = plan

  variables {
    manifest_path = "tests/fixtures/repo/dist/stale_manifest.json"
    repo_root     = null
    verify_files  = true
  }

  expect_failures = [output.built_layers]
}
