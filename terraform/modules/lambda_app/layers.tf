# One layer version per built layer in the manifest (kinds requirements and
# source). Adding or removing a layer in Cargo.toml adds or removes it here
# with no .tf edit: the for_each is the manifest.

locals {
  s3_layers = { for name, layer in var.manifest.built_layers : name => layer if layer.upload == "s3" }

  layer_s3_keys = {
    for name, layer in local.s3_layers : name => "${var.artifact_key_prefix}${var.name_prefix}/layers/${name}-${layer.sha256}.zip"
  }

  # What a function's `layers` list resolves to: our published versions and
  # the external layers' ARNs, by the names the manifest uses.
  layer_arns = merge(
    var.manifest.external_layers,
    { for name, layer in aws_lambda_layer_version.this : name => layer.arn },
  )
}

resource "aws_s3_object" "layer" {
  for_each = local.s3_layers

  bucket      = var.artifact_bucket
  key         = local.layer_s3_keys[each.key]
  source      = each.value.zip
  source_hash = each.value.base64sha256
  tags        = var.tags

  lifecycle {
    precondition {
      condition     = var.artifact_bucket != null
      error_message = "Layer ${each.key} (${each.value.zipped_bytes} bytes zipped) has upload = \"s3\" in dist/manifest.json: it must go through S3, so set artifact_bucket."
    }
  }
}

resource "aws_lambda_layer_version" "this" {
  for_each = var.manifest.built_layers

  # `core@python3.12-arm64` (a profile built for another platform) becomes
  # `<prefix>-core-python312-arm64`: layer names allow letters, digits, - and _.
  layer_name  = "${var.name_prefix}-${replace(replace(each.key, "@", "-"), ".", "")}"
  description = "${each.key} (${each.value.kind}), built by cargo xtask"

  # The manifest's decision, never recomputed from zipped_bytes.
  filename  = each.value.upload == "direct" ? each.value.zip : null
  s3_bucket = each.value.upload == "s3" ? var.artifact_bucket : null
  s3_key    = lookup(local.layer_s3_keys, each.key, null)

  # The manifest's hash, not filebase64sha256(): the ZIPs are byte-reproducible,
  # so an unchanged layer keeps its version and nothing is republished.
  source_code_hash = each.value.base64sha256

  compatible_runtimes      = each.value.runtimes
  compatible_architectures = each.value.architectures

  # A new version is published whenever the ZIP changes. "retain" keeps the
  # old one in AWS (Terraform only forgets it), so a function can be pointed
  # back at it; "delete" deletes it.
  skip_destroy = var.layer_version_retention == "retain"

  depends_on = [aws_s3_object.layer]

  lifecycle {
    # The new version exists and the functions use it before the old one is
    # deleted (or forgotten): no function ever points at a deleted version.
    create_before_destroy = true
  }
}
