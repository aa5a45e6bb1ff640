# One ECR repository per image function of the manifest (package_type
# "Image"), where `cargo xtask push` puts its image and Lambda pulls it from.
# Nothing here names a function: the for_each is the manifest, the name the
# path of the function's image.repository (`image_repository` in Cargo.toml,
# then `/<function>`) after the registry host.
#
# Order on a first deploy, or when a function becomes an image function:
#   terraform apply -target=module.ecr   # the repositories
#   cargo xtask push                     # the images, recorded as image.uri
#   terraform apply                      # the functions, by digest

locals {
  image_functions = { for name, fn in var.manifest.functions : name => fn if fn.package_type == "Image" }

  # <account>.dkr.ecr.<region>.amazonaws.com[.cn]: the only registry Lambda
  # deploys images from.
  ecr_host = "^([0-9]{12})\\.dkr\\.ecr\\.([a-z0-9-]+)\\.amazonaws\\.com(\\.cn)?$"

  repositories = {
    for name, fn in local.image_functions : name => {
      repository = try(fn.image.repository, null)
      host       = try(split("/", fn.image.repository)[0], null)
      # Everything after the host: lambda-app/cors.
      name    = try(join("/", slice(split("/", fn.image.repository), 1, length(split("/", fn.image.repository)))), null)
      account = try(regex(local.ecr_host, split("/", fn.image.repository)[0])[0], null)
      region  = try(regex(local.ecr_host, split("/", fn.image.repository)[0])[1], null)
    }
  }
}

# The repositories are created in the provider's account and region: a
# repository named for another would not be the one `push` pushes to.
data "aws_caller_identity" "current" {}

data "aws_region" "current" {}

resource "aws_ecr_repository" "function" {
  for_each = local.repositories

  name = each.value.name
  # Images are pushed and deployed by digest: a tag, once set, never moves.
  image_tag_mutability = "IMMUTABLE"
  force_delete         = var.force_delete

  image_scanning_configuration {
    scan_on_push = true
  }

  tags = var.tags

  lifecycle {
    precondition {
      condition     = each.value.repository != null && each.value.name != null && each.value.name != ""
      error_message = "Function ${each.key} has package = \"image\" but no image repository (dist/manifest.json's image.repository is null): set image_repository in Cargo.toml ([workspace.metadata.lambda] or the function's own, e.g. \"<account>.dkr.ecr.<region>.amazonaws.com/<prefix>\") and run `cargo xtask build`."
    }

    precondition {
      condition     = each.value.repository == null || each.value.account != null
      error_message = "Function ${each.key}'s image repository ${coalesce(each.value.repository, "-")} is not in ECR (<account>.dkr.ecr.<region>.amazonaws.com/<path>): Lambda deploys images from ECR only. Set image_repository in Cargo.toml to an ECR repository."
    }

    precondition {
      condition     = each.value.account == null || (each.value.account == data.aws_caller_identity.current.account_id && each.value.region == data.aws_region.current.name)
      error_message = "Function ${each.key}'s image repository ${coalesce(each.value.repository, "-")} is in account ${coalesce(each.value.account, "-")}, region ${coalesce(each.value.region, "-")}, but Terraform deploys to account ${data.aws_caller_identity.current.account_id}, region ${data.aws_region.current.name}: set image_repository in Cargo.toml to this account's registry (${data.aws_caller_identity.current.account_id}.dkr.ecr.${data.aws_region.current.name}.amazonaws.com/…)."
    }
  }
}

# The last keep_images images pushed stay, older ones expire. Pushes are
# untagged (by digest), so the rule counts every image.
resource "aws_ecr_lifecycle_policy" "function" {
  for_each = aws_ecr_repository.function

  repository = each.value.name
  policy = jsonencode({
    rules = [{
      rulePriority = 1
      description  = "Keep the last ${var.keep_images} images pushed"
      selection = {
        tagStatus   = "any"
        countType   = "imageCountMoreThan"
        countNumber = var.keep_images
      }
      action = { type = "expire" }
    }]
  })
}
