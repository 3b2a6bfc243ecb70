terraform {
  required_version = ">= 1.5"

  required_providers {
    # 4.x: azurerm_linux_function_app (the removed azurerm_function_app is not used) and
    # azurerm_storage_container.storage_account_id
    azurerm = {
      source  = "hashicorp/azurerm"
      version = "~> 4.20"
    }
  }
}

provider "azurerm" {
  features {}
  subscription_id = var.subscription_id
}
