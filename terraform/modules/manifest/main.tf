# Reads dist/manifest.json (the contract in docs/design.md) and turns it into
# typed maps the AWS modules consume. The AWS modules never read the file
# themselves, so this is the one place that knows the manifest's shape, and it
# can be tested without AWS credentials or provider downloads.

locals {
  # AWS Lambda quotas (https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html):
  # a deployment package uploaded in the API call itself (Terraform `filename`)
  # is limited to 50 MB zipped = 52,428,800 bytes; larger ones go through S3.
  # The same limit applies to PublishLayerVersion with inline content.
  direct_upload_limit_bytes = 52428800
  # A function can use at most five layers.
  max_layers_per_function = 5

  built_kinds = ["requirements", "source"]
  known_kinds = concat(local.built_kinds, ["external"])
  uploads     = ["direct", "s3"]

  repo_root = trimsuffix(coalesce(var.repo_root, dirname(dirname(var.manifest_path))), "/")

  raw           = jsondecode(file(var.manifest_path))
  raw_layers    = try(local.raw.layers, {})
  raw_functions = try(local.raw.functions, {})

  built_layers = tomap({
    for name, layer in local.raw_layers : name => {
      kind           = layer.kind
      zip            = try("${local.repo_root}/${layer.zip}", null)
      sha256         = try(layer.sha256, null)
      base64sha256   = try(layer.base64sha256, null)
      zipped_bytes   = try(layer.zipped_bytes, 0)
      unzipped_bytes = try(layer.unzipped_bytes, 0)
      upload         = try(layer.upload, null) == "s3" || try(layer.zipped_bytes, 0) > local.direct_upload_limit_bytes ? "s3" : "direct"
      # The runtimes and architectures the layer serves: a dependency
      # profile is built once per platform its functions run on.
      runtimes      = tolist(try(layer.runtimes, [local.raw.runtime]))
      architectures = tolist(try(layer.architectures, [local.raw.architecture]))
    } if contains(local.built_kinds, try(layer.kind, ""))
  })

  external_layers = tomap({
    for name, layer in local.raw_layers : name => try(layer.arn, null)
    if try(layer.kind, "") == "external"
  })

  functions = tomap({
    for name, fn in local.raw_functions : name => {
      zip     = try("${local.repo_root}/${fn.zip}", null)
      handler = try(fn.handler, null)
      # A function's own runtime and architecture (the repository's when
      # the manifest predates them).
      runtime      = try(fn.runtime, local.raw.runtime)
      architecture = try(fn.architecture, local.raw.architecture)
      # The layers attached at deploy time, in Lambda's merge order. Layers of
      # a `bundle = true` function are merged into its ZIP and listed in
      # `bundled` instead.
      layers         = tolist(try(fn.layers, []))
      bundled        = tolist(try(fn.bundled, []))
      sha256         = try(fn.sha256, null)
      base64sha256   = try(fn.base64sha256, null)
      zipped_bytes   = try(fn.zipped_bytes, 0)
      unzipped_bytes = try(fn.unzipped_bytes, 0)
      upload         = try(fn.upload, null) == "s3" || try(fn.zipped_bytes, 0) > local.direct_upload_limit_bytes ? "s3" : "direct"
    }
  })

  # Everything below collects what is wrong, so that the preconditions in
  # outputs.tf can name every offender at once.

  unknown_kind_layers = [
    for name, layer in local.raw_layers : "${name} (kind ${jsonencode(try(layer.kind, null))})"
    if !contains(local.known_kinds, try(layer.kind, ""))
  ]

  incomplete_layers = [
    for name, layer in local.built_layers : name
    if layer.zip == null || layer.base64sha256 == null || layer.base64sha256 == ""
  ]

  external_layers_without_arn = [
    for name, arn in local.external_layers : name if arn == null || arn == ""
  ]

  missing_layer_references = flatten([
    for name, fn in local.raw_functions : [
      for layer in try(fn.layers, []) : "${name} -> ${layer}"
      if !contains(keys(local.raw_layers), layer)
    ]
  ])

  functions_over_layer_limit = [
    for name, fn in local.functions : "${name} (${length(fn.layers)} layers)"
    if length(fn.layers) > local.max_layers_per_function
  ]

  incomplete_functions = [
    for name, fn in local.functions : name
    if fn.zip == null || fn.handler == null || fn.base64sha256 == null || fn.base64sha256 == ""
  ]

  # Layers and functions may share a name (the sms function uses the sms
  # layer), so the two are labelled rather than merged.
  invalid_uploads = concat(
    [for name, layer in local.raw_layers : "layers.${name} (upload ${jsonencode(layer.upload)})" if !contains(local.uploads, try(layer.upload, "direct"))],
    [for name, fn in local.raw_functions : "functions.${name} (upload ${jsonencode(fn.upload)})" if !contains(local.uploads, try(fn.upload, "direct"))],
  )

  # A ZIP whose bytes no longer match the manifest means dist/ was half
  # rebuilt or copied from elsewhere; deploying it would record a hash that
  # does not describe what was uploaded.
  stale_files = !var.verify_files ? [] : [
    for label, entry in merge(
      { for name, layer in local.built_layers : "layers.${name}" => layer if !contains(local.incomplete_layers, name) },
      { for name, fn in local.functions : "functions.${name}" => fn if !contains(local.incomplete_functions, name) },
    ) : "${label}: ${entry.zip}"
    if !(fileexists(entry.zip) ? filebase64sha256(entry.zip) == entry.base64sha256 : false)
  ]
}
