# Tests of the ecr module with a mocked AWS provider (no credentials, no
# network, nothing created), like lambda_app's: terraform/test.sh runs them
# with the provider from a filesystem mirror. Needs Terraform >= 1.7.

mock_provider "aws" {
  mock_data "aws_caller_identity" {
    defaults = {
      account_id = "123456789012"
    }
  }

  mock_data "aws_region" {
    defaults = {
      name = "us-east-1"
    }
  }
}

variables {
  manifest = {
    functions = {
      # Pushed, and not yet pushed: both need their repository.
      cors = {
        package_type = "Image"
        image        = { repository = "123456789012.dkr.ecr.us-east-1.amazonaws.com/lambda-app-dev/cors" }
      }
      sms = {
        package_type = "Image"
        image        = { repository = "123456789012.dkr.ecr.us-east-1.amazonaws.com/lambda-app-dev/sms" }
      }
      users = { package_type = "Zip", image = null }
      # A manifest entry from before images.
      auth = {}
    }
  }
}

run "one_repository_per_image_function" {
  command = plan

  assert {
    condition     = toset(keys(aws_ecr_repository.function)) == toset(["cors", "sms"]) && toset(keys(aws_ecr_lifecycle_policy.function)) == toset(["cors", "sms"])
    error_message = "repositories for ${jsonencode(keys(aws_ecr_repository.function))}: only the image functions have one"
  }

  # The path after the registry host.
  assert {
    condition     = aws_ecr_repository.function["cors"].name == "lambda-app-dev/cors" && aws_ecr_repository.function["sms"].name == "lambda-app-dev/sms"
    error_message = "names: ${aws_ecr_repository.function["cors"].name}, ${aws_ecr_repository.function["sms"].name}"
  }

  assert {
    condition = alltrue([
      for repository in aws_ecr_repository.function :
      repository.image_tag_mutability == "IMMUTABLE" && repository.image_scanning_configuration[0].scan_on_push && !repository.force_delete
    ])
    error_message = "repositories are immutable, scanned on push, not force-deleted by default"
  }

  assert {
    condition = jsondecode(aws_ecr_lifecycle_policy.function["cors"].policy) == {
      rules = [{
        rulePriority = 1
        description  = "Keep the last 10 images pushed"
        selection    = { tagStatus = "any", countType = "imageCountMoreThan", countNumber = 10 }
        action       = { type = "expire" }
      }]
    }
    error_message = "lifecycle policy: ${aws_ecr_lifecycle_policy.function["cors"].policy}"
  }
}

run "keep_images_sets_the_lifecycle_policy" {
  command = plan

  variables {
    keep_images  = 3
    force_delete = true
  }

  assert {
    condition     = jsondecode(aws_ecr_lifecycle_policy.function["sms"].policy).rules[0].selection.countNumber == 3 && aws_ecr_repository.function["sms"].force_delete
    error_message = "keep_images/force_delete: ${aws_ecr_lifecycle_policy.function["sms"].policy}"
  }
}

run "no_image_function_no_repository" {
  command = plan

  variables {
    manifest = { functions = { users = { package_type = "Zip" } } }
  }

  assert {
    condition     = length(aws_ecr_repository.function) == 0 && length(output.repositories) == 0
    error_message = "a manifest of ZIP functions needs no repository"
  }
}

run "image_without_repository_is_rejected" {
  command = plan

  variables {
    manifest = { functions = { cors = { package_type = "Image", image = { repository = null } } } }
  }

  expect_failures = [aws_ecr_repository.function["cors"]]
}

run "repository_outside_ecr_is_rejected" {
  command = plan

  variables {
    manifest = { functions = { cors = { package_type = "Image", image = { repository = "registry.example.com/lambda-app-dev/cors" } } } }
  }

  expect_failures = [aws_ecr_repository.function["cors"]]
}

run "repository_of_another_account_or_region_is_rejected" {
  command = plan

  variables {
    manifest = {
      functions = {
        cors = { package_type = "Image", image = { repository = "999999999999.dkr.ecr.us-east-1.amazonaws.com/lambda-app-dev/cors" } }
        sms  = { package_type = "Image", image = { repository = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/lambda-app-dev/sms" } }
      }
    }
  }

  expect_failures = [aws_ecr_repository.function["cors"], aws_ecr_repository.function["sms"]]
}
