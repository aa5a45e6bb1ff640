# Invariants that hold for ANY manifest `cargo xtask build` writes. Run it
# against the real build output (it is in its own test directory so that a
# plain `terraform test` runs only the fixture tests and needs no build):
#
#   cd terraform/modules/manifest
#   terraform init -backend=false
#   terraform test -test-directory=tests/real -var manifest_path=$PWD/../../../dist/manifest.json
#
# (terraform/test.sh [path/to/dist/manifest.json] does the same.)
# manifest_path is deliberately not set in this file: values set in a test
# file override -var on the command line.
#
# verify_files keeps its default (true), so the run also fails when a ZIP in
# dist/ is missing or no longer matches the manifest's base64sha256.

run "real_manifest" {
  command = apply

  assert {
    condition     = can(regex("^python3\\.[0-9]+$", output.runtime))
    error_message = "runtime ${output.runtime} is not a Python 3 Lambda runtime (python3.N)"
  }

  assert {
    condition     = contains(["x86_64", "arm64"], output.architecture)
    error_message = "architecture ${output.architecture} is neither x86_64 nor arm64"
  }

  assert {
    condition     = length(output.functions) > 0
    error_message = "the manifest lists no functions"
  }

  assert {
    condition = alltrue([
      for fn in output.functions : alltrue([
        for layer in fn.layers : contains(concat(keys(output.built_layers), keys(output.external_layers)), layer)
      ])
    ])
    error_message = "a function attaches a layer that is neither built nor external"
  }

  assert {
    condition     = length(setintersection(keys(output.built_layers), keys(output.external_layers))) == 0
    error_message = "a layer is both built and external"
  }

  # What filebase64sha256() returns: base64 of 32 bytes, 44 characters.
  # (An image function is deployed from its image: its ZIP facts are not used.)
  assert {
    condition = alltrue([
      for entry in concat(values(output.built_layers), [for fn in values(output.functions) : fn if fn.package_type == "Zip"]) :
      can(regex("^[A-Za-z0-9+/]{43}=$", entry.base64sha256)) && can(regex("^[0-9a-f]{64}$", entry.sha256))
    ])
    error_message = "a base64sha256 or sha256 is empty or malformed"
  }

  assert {
    condition = alltrue([
      for entry in concat(values(output.built_layers), [for fn in values(output.functions) : fn if fn.package_type == "Zip"]) :
      entry.zipped_bytes > 0 && entry.unzipped_bytes > 0 && endswith(entry.zip, ".zip")
    ])
    error_message = "a ZIP path or size is implausible"
  }

  # The build tool decides the upload (and enforces AWS's limits); what it
  # wrote is one Terraform can carry out.
  assert {
    condition = alltrue([
      for entry in concat(values(output.built_layers), [for fn in values(output.functions) : fn if fn.package_type == "Zip"]) : contains(["direct", "s3"], entry.upload)
    ])
    error_message = "an upload is neither \"direct\" nor \"s3\""
  }

  assert {
    condition = alltrue([
      for fn in output.functions :
      fn.memory_mb > 0 && fn.timeout_s > 0 && fn.ephemeral_storage_mb > 0 && fn.log_retention_days >= 0 &&
      (fn.reserved_concurrency == null ? true : fn.reserved_concurrency >= 0)
    ])
    error_message = "a function's memory_mb, timeout_s, ephemeral_storage_mb, log_retention_days or reserved_concurrency is implausible"
  }

  assert {
    condition     = alltrue([for fn in output.functions : can(regex("^[A-Za-z0-9_.]+\\.[A-Za-z0-9_]+$", fn.handler))])
    error_message = "a handler is not of the form module.function"
  }

  # An image function: identified by its digest, on a base recorded by
  # digest, nothing attached, its layers bottom to top from the base's to
  # its own code; once pushed, its uri is its repository at that digest.
  assert {
    condition = alltrue([
      for fn in values(output.functions) : fn.package_type == "Zip" ? fn.image == null : (
        can(regex("^sha256:[0-9a-f]{64}$", fn.image.digest)) &&
        can(regex("@sha256:[0-9a-f]{64}$", fn.image.base)) &&
        length(fn.layers) == 0 &&
        length(fn.image.layers) >= 2 && fn.image.layers[0].name == "base" && fn.image.layers[length(fn.image.layers) - 1].name == "function" &&
        fn.image.compressed_bytes > 0 && fn.image.unpacked_bytes > 0 &&
        (fn.image.uri == null || fn.image.uri == "${fn.image.repository}@${fn.image.digest}")
      )
    ])
    error_message = "an image function's image is implausible: ${jsonencode({ for name, fn in output.functions : name => fn.image if fn.package_type != "Zip" })}"
  }

  # The API the build tool checked against API Gateway's rules: its routes
  # and its authorizer name functions of the manifest.
  assert {
    condition = (
      contains(["1.0", "2.0"], output.api.payload_format_version) &&
      alltrue([for route in values(output.api.routes) : contains(keys(output.functions), route.function)]) &&
      (output.api.authorizer == null ? alltrue([for route in values(output.api.routes) : !route.authorize]) : contains(keys(output.functions), output.api.authorizer.function))
    )
    error_message = "the api names a function the manifest lacks, or authorizes a route without an authorizer: ${jsonencode(output.api)}"
  }

  assert {
    condition     = alltrue([for arn in values(output.external_layers) : can(regex("^arn:aws[a-z-]*:lambda:[a-z0-9-]+:[0-9]{12}:layer:[A-Za-z0-9_-]+:[0-9]+$", arn))])
    error_message = "an external layer ARN is not a layer version ARN"
  }
}
