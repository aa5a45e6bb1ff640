terraform {
  required_version = ">= 1.6"

  # 5.x from 5.100 on, as the modules require; .terraform.lock.hcl pins the
  # exact version and its checksums.
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.100"
    }
  }

  # State is local by default. For a shared environment, configure a backend,
  # e.g. terraform init -backend-config=... with:
  # backend "s3" {}
}

provider "aws" {
  region = var.region

  default_tags {
    tags = {
      Application = var.name_prefix
      ManagedBy   = "terraform"
    }
  }
}
