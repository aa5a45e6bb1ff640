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
  description = "Layers built by this repository (kinds requirements and source): name => {kind, zip, sha256, base64sha256, zipped_bytes, unzipped_bytes, upload}. `zip` is repo_root-relative, ready for `filename`; `upload` is \"direct\" or \"s3\"."
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
  description = "Functions: name => {zip, handler, layers, bundled, sha256, base64sha256, zipped_bytes, unzipped_bytes, upload}. `layers` are the layer names to attach, in Lambda's merge order (`bundled`: layers already merged into the ZIP); `upload` is \"s3\" when the ZIP is over the direct-upload limit or the manifest asks for it."
  value       = local.functions

  precondition {
    condition     = length(local.missing_layer_references) == 0
    error_message = "dist/manifest.json (${var.manifest_path}): function(s) use layer(s) the manifest does not define: ${join(", ", local.missing_layer_references)}. Check `layers` under [workspace.metadata.lambda.functions] in Cargo.toml and run `cargo xtask build`."
  }

  precondition {
    condition     = length(local.functions_over_layer_limit) == 0
    error_message = "dist/manifest.json (${var.manifest_path}): AWS allows at most ${local.max_layers_per_function} layers per function: ${join(", ", local.functions_over_layer_limit)}."
  }

  precondition {
    condition     = length(local.incomplete_functions) == 0
    error_message = "dist/manifest.json (${var.manifest_path}): function(s) ${join(", ", local.incomplete_functions)} have no zip, handler or base64sha256: run `cargo xtask build`."
  }

  precondition {
    condition     = length(local.invalid_uploads) == 0
    error_message = "dist/manifest.json (${var.manifest_path}): `upload` must be \"direct\" or \"s3\": ${join(", ", local.invalid_uploads)}."
  }
}

output "layer_names" {
  description = "Every layer the manifest defines, built or external, sorted."
  value       = sort(keys(local.raw_layers))
}

output "direct_upload_limit_bytes" {
  description = "AWS's limit for a ZIP uploaded without S3 (50 MB); above it `upload` is \"s3\"."
  value       = local.direct_upload_limit_bytes
}

output "repo_root" {
  description = "The directory the paths in `zip` start from."
  value       = local.repo_root
}
