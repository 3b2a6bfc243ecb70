terraform {
  required_version = ">= 1.5"

  required_providers {
    # 4.31+: azurerm_function_app_flex_consumption with always_ready and https_only, and
    # azurerm_storage_container.storage_account_id. Not 5.x: it drops arguments used here
    # (azurerm_storage_blob.storage_account_name, azurerm_eventgrid_system_topic.source_arm_resource_id).
    azurerm = {
      source  = "hashicorp/azurerm"
      version = "~> 4.31"
    }
  }
}

provider "azurerm" {
  features {
    # the host's account accepts no shared key on Flex; the provider's data-plane reads of a storage
    # account (queue_properties, static_website, neither used here) would need one
    storage {
      data_plane_available = false
    }
  }
  subscription_id = var.subscription_id
}
