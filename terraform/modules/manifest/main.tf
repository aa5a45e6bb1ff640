# Reads dist/manifest.json (the contract in docs/design.md) and turns it into
# typed maps the AWS modules consume. The AWS modules never read the file
# themselves, so this is the one place that knows the manifest's shape, and it
# can be tested without AWS credentials or provider downloads.
#
# No AWS limit lives here: the build tool knows them, enforces them and
# records its decisions (`upload`, the settings) in the manifest. This module
# passes them on and only checks that they are there.

locals {
  built_kinds   = ["requirements", "source"]
  known_kinds   = concat(local.built_kinds, ["external"])
  uploads       = ["direct", "s3"]
  package_types = ["Zip", "Image"]

  # Per-function settings from Cargo.toml (reserved_concurrency is absent when
  # the function has none). A manifest without them predates them.
  number_settings = ["memory_mb", "timeout_s", "ephemeral_storage_mb", "log_retention_days"]

  # The paths handed to `filename` must not depend on how manifest_path or
  # repo_root is spelled: another string for the same file replaces every
  # layer and updates every function. So repo_root is made relative to the
  # directory Terraform works in: both made absolute, their common leading
  # components dropped, one ".." per remaining cwd component.
  # That directory is abspath("."), not path.cwd: with -chdir, path.cwd is
  # where terraform was started, while relative paths (file(), `filename` in
  # the provider) are resolved in the -chdir directory.
  root_parts = compact(split("/", abspath(coalesce(var.repo_root, dirname(dirname(var.manifest_path))))))
  cwd_parts  = compact(split("/", abspath(".")))
  common_parts = length([
    for i in range(min(length(local.root_parts), length(local.cwd_parts))) : i
    if alltrue([for j in range(i + 1) : local.root_parts[j] == local.cwd_parts[j]])
  ])
  relative_parts = concat(
    [for _ in range(length(local.cwd_parts) - local.common_parts) : ".."],
    slice(local.root_parts, local.common_parts, length(local.root_parts)),
  )
  repo_root = length(local.relative_parts) == 0 ? "." : join("/", local.relative_parts)
  # `dist/x.zip`, not `./dist/x.zip`, when Terraform runs at the root.
  zip_prefix = local.repo_root == "." ? "" : "${local.repo_root}/"

  raw = jsondecode(file(var.manifest_path))
  # The repository's retention, for the log groups of no function (the
  # HTTP API's access log); null when the manifest predates it.
  log_retention_days = try(tonumber(local.raw.log_retention_days), null)
  raw_layers         = try(local.raw.layers, {})
  raw_functions      = try(local.raw.functions, {})
  # The HTTP API from Cargo.toml; null when the manifest predates it.
  raw_api        = try(local.raw.api, null)
  raw_authorizer = try(local.raw_api.authorizer, null)

  built_layers = tomap({
    for name, layer in local.raw_layers : name => {
      kind           = layer.kind
      zip            = try("${local.zip_prefix}${layer.zip}", null)
      sha256         = try(layer.sha256, null)
      base64sha256   = try(layer.base64sha256, null)
      zipped_bytes   = try(layer.zipped_bytes, 0)
      unzipped_bytes = try(layer.unzipped_bytes, 0)
      # The build tool's decision, never recomputed here.
      upload = try(tostring(layer.upload), null)
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
      zip     = try("${local.zip_prefix}${fn.zip}", null)
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
      upload         = try(tostring(fn.upload), null)
      # Settings from Cargo.toml, checked by the build tool. Missing ones are
      # null (environment {}) here and stop the plan in outputs.tf.
      memory_mb            = tonumber(try(tonumber(fn.memory_mb), null))
      timeout_s            = tonumber(try(tonumber(fn.timeout_s), null))
      ephemeral_storage_mb = tonumber(try(tonumber(fn.ephemeral_storage_mb), null))
      log_retention_days   = tonumber(try(tonumber(fn.log_retention_days), null))
      reserved_concurrency = tonumber(try(tonumber(fn.reserved_concurrency), null))
      environment          = try(tomap({ for key, value in fn.environment : key => tostring(value) }), {})
      # "Zip" or "Image" (`package = "image"`), the build tool's; a manifest
      # from before images is all ZIPs.
      package_type = try(tostring(fn.package_type), "Zip")
      # An image function's image, as `build` and `push` wrote it; null for
      # a ZIP function. `uri` stays null until `cargo xtask push` has pushed
      # this very digest: lambda_app then refuses to plan the function.
      # `layout` is made relative to the working directory like `zip`.
      image = try(fn.image, null) == null ? null : {
        base             = try(tostring(fn.image.base), null)
        digest           = try(tostring(fn.image.digest), null)
        layout           = try("${local.zip_prefix}${fn.image.layout}", null)
        repository       = try(tostring(fn.image.repository), null)
        uri              = try(tostring(fn.image.uri), null)
        unpacked_bytes   = try(tonumber(fn.image.unpacked_bytes), 0)
        compressed_bytes = try(tonumber(fn.image.compressed_bytes), 0)
        # A tuple, not tolist(): an empty tolist() is a list of no known
        # type, which tomap() below cannot unify with the others.
        layers = [
          for layer in try(fn.image.layers, []) : {
            name             = try(tostring(layer.name), null)
            digest           = try(tostring(layer.digest), null)
            compressed_bytes = try(tonumber(layer.compressed_bytes), 0)
            unpacked_bytes   = try(tonumber(layer.unpacked_bytes), 0)
          }
        ]
      }
    }
  })

  zip_functions   = { for name, fn in local.functions : name => fn if fn.package_type == "Zip" }
  image_functions = { for name, fn in local.functions : name => fn if fn.package_type == "Image" }

  # The API in API Gateway's terms, as the build tool wrote it (it checked
  # the route keys and the authorizer against API Gateway's rules). Missing
  # or mistyped values are null here and stop the plan in outputs.tf.
  api = {
    payload_format_version = try(tostring(local.raw_api.payload_format_version), null)
    routes = tomap({
      for key, route in try(local.raw_api.routes, {}) : key => {
        function  = try(tostring(route.function), null)
        authorize = try(tobool(route.authorize), null)
      }
    })
    authorizer = local.raw_authorizer == null ? null : {
      function                = try(tostring(local.raw_authorizer.function), null)
      payload_format_version  = try(tostring(local.raw_authorizer.payload_format_version), null)
      enable_simple_responses = try(tobool(local.raw_authorizer.enable_simple_responses), null)
      identity_sources        = try(tolist([for source in local.raw_authorizer.identity_sources : tostring(source)]), null)
      result_ttl_in_seconds   = try(tonumber(local.raw_authorizer.result_ttl_in_seconds), null)
    }
  }

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

  # An image function is deployed from its image, not from a ZIP: what it
  # must have is checked below.
  incomplete_functions = [
    for name, fn in local.zip_functions : name
    if fn.zip == null || fn.handler == null || fn.base64sha256 == null || fn.base64sha256 == ""
  ]

  unknown_package_types = [
    for name, fn in local.functions : "${name} (package_type ${jsonencode(try(local.raw_functions[name].package_type, null))})"
    if !contains(local.package_types, fn.package_type)
  ]

  # The image is identified by its digest; a pushed one names it.
  incomplete_images = [
    for name, fn in local.image_functions : name
    if fn.image == null ? true : (fn.image.digest == null || fn.image.layout == null)
  ]

  # The image holds its layers: Lambda attaches none to an image function.
  images_with_layers = [
    for name, fn in local.image_functions : "${name} (${join(", ", fn.layers)})" if length(fn.layers) > 0
  ]

  # `push` records `<repository>@<digest>` of this very image, nothing else.
  images_with_foreign_uri = [
    for name, fn in local.image_functions : "${name} (${fn.image.uri})"
    if !contains(local.incomplete_images, name) && try(fn.image.uri != null && fn.image.uri != "${fn.image.repository}@${fn.image.digest}", false)
  ]

  # External layers are published elsewhere and have no upload.
  layers_without_upload = [
    for name, layer in local.built_layers : "${name} (upload ${jsonencode(try(local.raw_layers[name].upload, null))})"
    if !contains(local.uploads, coalesce(layer.upload, "-"))
  ]

  functions_without_upload = [
    for name, fn in local.zip_functions : "${name} (upload ${jsonencode(try(local.raw_functions[name].upload, null))})"
    if !contains(local.uploads, coalesce(fn.upload, "-"))
  ]

  missing_settings = {
    for name, fn in local.raw_functions : name => concat(
      [for key in local.number_settings : key if try(tonumber(fn[key]), null) == null],
      can({ for key, value in fn.environment : key => tostring(value) }) ? [] : ["environment"],
      # Absent is fine (no reserved concurrency); present must be a number.
      try(fn.reserved_concurrency, null) != null && !can(tonumber(fn.reserved_concurrency)) ? ["reserved_concurrency"] : [],
    )
  }

  functions_without_settings = [
    for name, missing in local.missing_settings : "${name} (${join(", ", missing)})" if length(missing) > 0
  ]

  api_problems = concat(
    local.raw_api == null ? ["no `api` (the manifest predates it)"] : [],
    local.raw_api != null && !contains(["1.0", "2.0"], coalesce(local.api.payload_format_version, "-")) ? ["payload_format_version ${jsonencode(try(local.raw_api.payload_format_version, null))}"] : [],
    [for key, route in local.api.routes : "route ${key} without a function or authorize" if route.function == null || route.authorize == null],
    [for key, route in local.api.routes : "route ${key} to ${route.function}, which is not a function of the manifest" if route.function != null && !contains(keys(local.raw_functions), coalesce(route.function, "-"))],
    local.api.authorizer == null ? [] : concat(
      local.api.authorizer.function == null || local.api.authorizer.enable_simple_responses == null || local.api.authorizer.identity_sources == null || local.api.authorizer.result_ttl_in_seconds == null ? ["authorizer without one of function, enable_simple_responses, identity_sources, result_ttl_in_seconds"] : [],
      !contains(["1.0", "2.0"], coalesce(local.api.authorizer.payload_format_version, "-")) ? ["authorizer.payload_format_version ${jsonencode(try(local.raw_authorizer.payload_format_version, null))}"] : [],
    ),
  )

  # A ZIP whose bytes no longer match the manifest means dist/ was half
  # rebuilt or copied from elsewhere; deploying it would record a hash that
  # does not describe what was uploaded.
  stale_files = !var.verify_files ? [] : [
    for label, entry in merge(
      { for name, layer in local.built_layers : "layers.${name}" => layer if !contains(local.incomplete_layers, name) },
      { for name, fn in local.zip_functions : "functions.${name}" => fn if !contains(local.incomplete_functions, name) },
    ) : "${label}: ${entry.zip}"
    if !(fileexists(entry.zip) ? filebase64sha256(entry.zip) == entry.base64sha256 : false)
  ]
}
