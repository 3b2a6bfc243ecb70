terraform {
  required_version = ">= 1.5"

  required_providers {
    # 5.100 is the version the test suite validates against (the machine's filesystem mirror);
    # any later 5.x is expected to work.
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.100"
    }
  }
}

provider "aws" {
  region = var.region

  default_tags {
    tags = var.tags
  }
}
