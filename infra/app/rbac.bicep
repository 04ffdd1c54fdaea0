// Every permission the app's identity holds, each on the narrowest scope Azure accepts for it.
// Nothing is granted on the resource group or subscription. Built-in role ids are the same in
// every tenant; the two custom roles below are defined here with exactly the actions needed.
param principalId string
@description('Object id of the deploying user; empty skips their Key Vault assignment.')
param deployerPrincipalId string
param hostStorageName string
param vhdStorageName string
param vhdContainerName string
param galleryName string
param keyVaultName string
param appInsightsName string

resource hostStorage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: hostStorageName
}

resource vhdStorage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: vhdStorageName
}

resource vhdContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' existing = {
  name: '${vhdStorageName}/default/${vhdContainerName}'
}

resource gallery 'Microsoft.Compute/galleries@2024-03-03' existing = {
  name: galleryName
}

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: keyVaultName
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: appInsightsName
}

// Custom role: publish image definitions and versions into one gallery. Contributor on the gallery
// would also allow changing or deleting the gallery itself and its sharing; this lists only what
// the mirror does: read the gallery, create/read/delete definitions and versions (retention).
// Actions are spelled out, not wildcarded, so future gallery actions are not granted silently.
resource galleryPublisherRole 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  name: guid(resourceGroup().id, 'stemcell-mirror-gallery-image-publisher')
  properties: {
    roleName: 'Stemcell mirror gallery image publisher (${uniqueString(resourceGroup().id)})'
    description: 'Create, read and delete image definitions and image versions in one Azure Compute Gallery.'
    type: 'CustomRole'
    permissions: [
      {
        actions: [
          'Microsoft.Compute/galleries/read'
          'Microsoft.Compute/galleries/images/read'
          'Microsoft.Compute/galleries/images/write'
          'Microsoft.Compute/galleries/images/delete'
          'Microsoft.Compute/galleries/images/versions/read'
          'Microsoft.Compute/galleries/images/versions/write'
          'Microsoft.Compute/galleries/images/versions/delete'
        ]
        notActions: []
      }
    ]
    assignableScopes: [resourceGroup().id]
  }
}

// Custom role: what Azure requires of whoever creates an image version from a VHD in a storage
// account ("VHD as source": listKeys and write on the source account). Storage Account Contributor
// (17d1049b-9a84-46fb-8f53-869881c3d3ab) would also allow deleting the account, regenerating keys,
// and managing its network rules and private endpoints; this role holds only the three actions.
resource vhdSourceRole 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  name: guid(resourceGroup().id, 'stemcell-mirror-gallery-vhd-source')
  properties: {
    roleName: 'Stemcell mirror gallery VHD source (${uniqueString(resourceGroup().id)})'
    description: 'Lets a gallery image version be created from a VHD blob in this storage account.'
    type: 'CustomRole'
    permissions: [
      {
        actions: [
          'Microsoft.Storage/storageAccounts/read'
          'Microsoft.Storage/storageAccounts/listKeys/action'
          'Microsoft.Storage/storageAccounts/write'
        ]
        notActions: []
      }
    ]
    assignableScopes: [resourceGroup().id]
  }
}

// Storage Blob Data Owner (b7e6dc6d-f1e8-4753-8033-0f276bb0955b) on the host account: the role the
// Functions host documents for identity-based AzureWebJobsStorage (host locks, keys, timer
// schedule state) and that Flex Consumption needs to read the deployment package. Account scope
// because the host creates its own containers; the account serves this app only.
resource hostBlobOwner 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(hostStorage.id, principalId, 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b')
  scope: hostStorage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b')
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

// Storage Queue Data Contributor (974c5e8b-45b9-4653-ba55-5f855dd0fb88) on the host account: the
// queue trigger reads, updates and deletes messages, moves poison messages, and the app enqueues
// requests and continuations. Account scope: the host may (re)create the poison queue.
resource hostQueueContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(hostStorage.id, principalId, '974c5e8b-45b9-4653-ba55-5f855dd0fb88')
  scope: hostStorage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', '974c5e8b-45b9-4653-ba55-5f855dd0fb88')
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

// Storage Table Data Contributor (0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3) on the host account: the
// job entities (ETag-conditional updates, leases). Account scope: creating a table if it is missing
// is a request to the table service, not to the table.
resource hostTableContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(hostStorage.id, principalId, '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3')
  scope: hostStorage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3')
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

// Storage Blob Data Contributor (ba92f5b4-2d11-453d-a403-e96b0029c9fe) on the VHD container only:
// create, write (Put Page), read and delete staged page blobs.
resource vhdBlobContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vhdContainer.id, principalId, 'ba92f5b4-2d11-453d-a403-e96b0029c9fe')
  scope: vhdContainer
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', 'ba92f5b4-2d11-453d-a403-e96b0029c9fe')
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

// Custom role "Stemcell mirror gallery VHD source" (vhdSourceRole above) on the VHD account only:
// listKeys + write, which Azure checks when an image version names this account as its source.
// Account scope is the narrowest: these are account-level actions.
resource vhdSourceAssignment 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vhdStorage.id, principalId, vhdSourceRole.id)
  scope: vhdStorage
  properties: {
    roleDefinitionId: vhdSourceRole.id
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

// Custom role "Stemcell mirror gallery image publisher" (galleryPublisherRole above) on the gallery
// only: image definitions and versions can only be created under it.
resource galleryPublisherAssignment 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(gallery.id, principalId, galleryPublisherRole.id)
  scope: gallery
  properties: {
    roleDefinitionId: galleryPublisherRole.id
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

// Key Vault Secrets User (4633458b-17de-408a-b874-0445c86b69e6) on the vault: read github-token.
// A secret-scoped assignment would be narrower, but the secret does not exist at deployment (the
// operator sets it afterwards) and the vault holds nothing else.
resource vaultSecretsUser 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, principalId, '4633458b-17de-408a-b874-0445c86b69e6')
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', '4633458b-17de-408a-b874-0445c86b69e6')
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

// Key Vault Secrets Officer (b86a8fe4-44ce-4948-aee5-eccb2c155cd7) on the vault, for the person who
// ran azd: an RBAC-mode vault lets nobody set a secret by default, and github-token is set by hand.
resource deployerSecretsOfficer 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(deployerPrincipalId)) {
  name: guid(vault.id, deployerPrincipalId, 'b86a8fe4-44ce-4948-aee5-eccb2c155cd7')
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', 'b86a8fe4-44ce-4948-aee5-eccb2c155cd7')
    principalId: deployerPrincipalId
  }
}

// Monitoring Metrics Publisher (3913510d-42f4-4e42-8a64-420c390055eb) on the Application Insights
// component: Entra-authenticated telemetry ingestion (local auth is disabled there).
resource telemetryPublisher 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(appInsights.id, principalId, '3913510d-42f4-4e42-8a64-420c390055eb')
  scope: appInsights
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', '3913510d-42f4-4e42-8a64-420c390055eb')
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}
