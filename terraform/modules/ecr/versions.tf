terraform {
  required_version = ">= 1.6"

  # One major version: a new major renames and removes arguments, so it is
  # adopted deliberately (the root module's lock file pins the exact version).
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.100, < 6.0"
    }
  }
}
