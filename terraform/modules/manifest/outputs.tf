# The preconditions live on the outputs the AWS modules consume, so a bad
# manifest stops `terraform plan` before any resource is planned.

output "runtime" {
  description = "Lambda runtime of every function and layer, e.g. python3.11."
  value       = local.raw.runtime
}

output "architecture" {
  description = "Instruction set of every function and layer: x86_64 or arm64."
  value       = local.raw.architecture
}

output "built_layers" {
  description = "Layers built by this repository (kinds requirements and source): name => {kind, zip, sha256, base64sha256, zipped_bytes, unzipped_bytes, upload, runtimes, architectures}. `zip` is relative to the directory Terraform runs in, ready for `filename`; `upload` (\"direct\" or \"s3\") is the manifest's."
  value       = local.built_layers

  precondition {
    condition     = length(local.unknown_kind_layers) == 0
    error_message = "dist/manifest.json (${var.manifest_path}): unknown layer kind in ${join(", ", local.unknown_kind_layers)}; expected one of ${join(", ", local.known_kinds)}. Update terraform/modules/manifest together with the build tool."
  }

  precondition {
    condition     = length(local.incomplete_layers) == 0
    error_message = "dist/manifest.json (${var.manifest_path}): layer(s) ${join(", ", local.incomplete_layers)} have no zip or base64sha256: run `cargo xtask build`."
  }

  precondition {
    condition     = length(local.layers_without_upload) == 0
    error_message = "dist/manifest.json (${var.manifest_path}): layer(s) ${join(", ", local.layers_without_upload)} have no valid `upload` (\"direct\" or \"s3\", decided by the build tool): run `cargo xtask build`."
  }

  precondition {
    condition     = length(local.stale_files) == 0
    error_message = "dist/ does not match dist/manifest.json (${var.manifest_path}): ${join("; ", local.stale_files)} missing or with a different base64sha256. Run `cargo xtask build` again."
  }
}

output "external_layers" {
  description = "Layers published elsewhere (kind external): name => layer version ARN."
  value       = local.external_layers

  precondition {
    condition     = length(local.external_layers_without_arn) == 0
    error_message = "dist/manifest.json (${var.manifest_path}): external layer(s) ${join(", ", local.external_layers_without_arn)} have no arn."
  }
}

output "functions" {
  description = "Functions: name => {zip, handler, runtime, architecture, layers, bundled, sha256, base64sha256, zipped_bytes, unzipped_bytes, upload, memory_mb, timeout_s, ephemeral_storage_mb, environment, reserved_concurrency, log_retention_days, package_type, image}. `layers` are the layer names to attach, in Lambda's merge order (`bundled`: layers already merged into the ZIP); `upload` and the settings are the manifest's (reserved_concurrency null: none). `package_type` is \"Zip\" or \"Image\"; `image` is null for a ZIP function, else {base, digest, layout, repository, uri, unpacked_bytes, compressed_bytes, layers = [{name, digest, compressed_bytes, unpacked_bytes}]} as the manifest has it (`uri` null until `cargo xtask push`; `layout` relative to the working directory, like `zip`)."
  value       = local.functions

  precondition {
    condition     = length(local.unknown_package_types) == 0
    error_message = "dist/manifest.json (${var.manifest_path}): function(s) ${join(", ", local.unknown_package_types)} have an unknown package_type; expected \"Zip\" or \"Image\". Update terraform/modules/manifest together with the build tool."
  }

  precondition {
    condition     = length(local.incomplete_images) == 0
    error_message = "dist/manifest.json (${var.manifest_path}): image function(s) ${join(", ", local.incomplete_images)} have no image (digest and layout): run `cargo xtask build`."
  }

  precondition {
    condition     = length(local.images_with_layers) == 0
    error_message = "dist/manifest.json (${var.manifest_path}): image function(s) ${join(", ", local.images_with_layers)} list layers to attach, but an image holds its layers and Lambda attaches none: run `cargo xtask build`."
  }

  precondition {
    condition     = length(local.images_with_foreign_uri) == 0
    error_message = "dist/manifest.json (${var.manifest_path}): the image uri of function(s) ${join(", ", local.images_with_foreign_uri)} is not the image's repository@digest: the image built is not the one pushed. Run `cargo xtask build` and `cargo xtask push`."
  }

  precondition {
    condition     = length(local.missing_layer_references) == 0
    error_message = "dist/manifest.json (${var.manifest_path}): function(s) use layer(s) the manifest does not define: ${join(", ", local.missing_layer_references)}. Check `layers` under [workspace.metadata.lambda.functions] in Cargo.toml and run `cargo xtask build`."
  }

  precondition {
    condition     = length(local.incomplete_functions) == 0
    error_message = "dist/manifest.json (${var.manifest_path}): function(s) ${join(", ", local.incomplete_functions)} have no zip, handler or base64sha256: run `cargo xtask build`."
  }

  precondition {
    condition     = length(local.functions_without_upload) == 0
    error_message = "dist/manifest.json (${var.manifest_path}): function(s) ${join(", ", local.functions_without_upload)} have no valid `upload` (\"direct\" or \"s3\", decided by the build tool): run `cargo xtask build`."
  }

  precondition {
    condition     = length(local.functions_without_settings) == 0
    error_message = "dist/manifest.json (${var.manifest_path}): function(s) ${join("; ", local.functions_without_settings)} lack settings from Cargo.toml (the keys in parentheses are missing or invalid): the manifest predates them. Run `cargo xtask build` to rebuild it."
  }
}

output "log_retention_days" {
  description = "The repository's log_retention_days from Cargo.toml (0: never expires): the retention of the log groups that belong to no function, such as the HTTP API's access log."
  value       = local.log_retention_days

  precondition {
    condition     = local.log_retention_days != null && try(local.log_retention_days >= 0 && floor(local.log_retention_days) == local.log_retention_days, false)
    error_message = "dist/manifest.json (${var.manifest_path}): no valid top-level log_retention_days (a whole number of days from Cargo.toml): the manifest predates it. Run `cargo xtask build` to rebuild it."
  }
}

output "api" {
  description = "The HTTP API from Cargo.toml, for the http_api module: {payload_format_version, routes, authorizer}. `routes`: route key (\"GET /users/{user_id}\", \"$default\") => {function, authorize}; `authorizer`: {function, payload_format_version, enable_simple_responses, identity_sources, result_ttl_in_seconds}, or null for none."
  value       = local.api

  precondition {
    condition     = length(local.api_problems) == 0
    error_message = "dist/manifest.json (${var.manifest_path}): its `api` is incomplete or invalid: ${join("; ", local.api_problems)}. Routes and the authorizer are set in Cargo.toml: run `cargo xtask build` to rebuild the manifest."
  }
}

output "layer_names" {
  description = "Every layer the manifest defines, built or external, sorted."
  value       = sort(keys(local.raw_layers))
}

output "repo_root" {
  description = "The directory the paths in `zip` start from, relative to the directory Terraform runs in (\".\" when they are the same), however manifest_path and repo_root are spelled."
  value       = local.repo_root
}
