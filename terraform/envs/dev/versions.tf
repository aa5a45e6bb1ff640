terraform {
  required_version = ">= 1.6"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.0, < 7.0"
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
