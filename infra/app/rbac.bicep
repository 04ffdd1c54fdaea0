// Every permission the app's identity holds, each on the narrowest scope Azure accepts for it, and
// each justified by the Microsoft page that says it is needed (in its @description, which the
// compiled template keeps and the suite checks). Nothing is granted on the resource group or
// subscription. Built-in role ids are the same in every tenant; the two custom roles below list
// exactly the actions the app uses.
param principalId string
@description('Object id of the deploying user; empty skips their Key Vault assignment.')
param deployerPrincipalId string
param hostStorageName string
@description('The request queue and its poison queue, created by host-storage.bicep.')
param requestQueueNames array
@description('The job table, created by host-storage.bicep.')
param jobsTableName string
param vhdStorageName string
param vhdContainerName string
param galleryName string
param keyVaultName string
param appInsightsName string

resource hostStorage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: hostStorageName
}

resource hostQueues 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' existing = [
  for q in requestQueueNames: {
    name: '${hostStorageName}/default/${q}'
  }
]

resource jobsTable 'Microsoft.Storage/storageAccounts/tableServices/tables@2023-05-01' existing = {
  name: '${hostStorageName}/default/${jobsTableName}'
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
// would also allow changing or deleting the gallery itself and its sharing. Spelled out, never
// wildcarded. Not granted: galleries/read (the app never reads the gallery resource itself) and
// galleries/images/delete (the app never deletes an image definition; retention deletes versions).
@description('Actions of the Microsoft.Compute provider (https://learn.microsoft.com/azure/role-based-access-control/permissions/compute) the mirror calls: Gallery Images Get and Create Or Update, Gallery Image Versions Get, List By Gallery Image, Create Or Update and Delete (retention) (https://learn.microsoft.com/rest/api/compute/gallery-image-versions).')
resource galleryPublisherRole 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  name: guid(resourceGroup().id, 'stemcell-mirror-gallery-image-publisher')
  properties: {
    roleName: 'Stemcell mirror gallery image publisher (${uniqueString(resourceGroup().id)})'
    description: 'Create and read image definitions; create, read and delete image versions, in one Azure Compute Gallery.'
    type: 'CustomRole'
    permissions: [
      {
        actions: [
          'Microsoft.Compute/galleries/images/read'
          'Microsoft.Compute/galleries/images/write'
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
// account. Microsoft's page on image versions and the BOSH Azure CPI's docs name one action,
// listKeys: the gallery service reads the blob with the account key. Storage Account Contributor
// (17d1049b-9a84-46fb-8f53-869881c3d3ab) would also allow writing the account's configuration,
// deleting it and regenerating its keys. Not granted: storageAccounts/write and /read, which no
// Microsoft source asks for here. Should Azure ever refuse with AuthorizationFailed naming another
// action, add that action with the page that documents it.
@description('Microsoft.Storage/storageAccounts/listKeys/action on the source account is required to create a gallery image version from a VHD (https://learn.microsoft.com/azure/virtual-machines/image-version).')
resource vhdSourceRole 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  name: guid(resourceGroup().id, 'stemcell-mirror-gallery-vhd-source')
  properties: {
    roleName: 'Stemcell mirror gallery VHD source (${uniqueString(resourceGroup().id)})'
    description: 'Lets a gallery image version be created from a VHD blob in this storage account.'
    type: 'CustomRole'
    permissions: [
      {
        actions: [
          'Microsoft.Storage/storageAccounts/listKeys/action'
        ]
        notActions: []
      }
    ]
    assignableScopes: [resourceGroup().id]
  }
}

// Account scope because the host creates its own containers (locks, keys, timer state); the
// account serves this app only.
@description('Storage Blob Data Owner (b7e6dc6d-f1e8-4753-8033-0f276bb0955b) on the host account: the role the Functions host requires for an identity-based AzureWebJobsStorage (https://learn.microsoft.com/azure/azure-functions/functions-reference#connecting-to-host-storage-with-an-identity), and Flex Consumption reads the deployment package with it (https://learn.microsoft.com/azure/azure-functions/flex-consumption-how-to#configure-deployment-settings).')
resource hostBlobOwner 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(hostStorage.id, principalId, 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b')
  scope: hostStorage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b')
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

// One assignment per queue, not the account: the queues exist (host-storage.bicep), so nothing
// needs to create one. Contributor rather than Reader + Message Processor: the host also updates
// messages (it renews their invisibility while an invocation runs) and moves failed ones to the
// poison queue, and the app sends requests and continuations.
@description('Storage Queue Data Contributor (974c5e8b-45b9-4653-ba55-5f855dd0fb88) on one queue: the queue trigger reads, updates and deletes its messages and moves poison messages, the app enqueues (https://learn.microsoft.com/azure/azure-functions/functions-bindings-storage-queue-trigger#identity-based-connections).')
resource hostQueueContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for (q, i) in requestQueueNames: {
    name: guid(hostQueues[i].id, principalId, '974c5e8b-45b9-4653-ba55-5f855dd0fb88')
    scope: hostQueues[i]
    properties: {
      roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', '974c5e8b-45b9-4653-ba55-5f855dd0fb88')
      principalId: principalId
      principalType: 'ServicePrincipal'
    }
  }
]

@description('Storage Table Data Contributor (0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3) on the job table only: read, insert and ETag-conditionally update job entities (https://learn.microsoft.com/azure/storage/tables/authorize-access-azure-active-directory#azure-built-in-roles-for-tables).')
resource hostTableContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(jobsTable.id, principalId, '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3')
  scope: jobsTable
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3')
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

@description('Storage Blob Data Contributor (ba92f5b4-2d11-453d-a403-e96b0029c9fe) on the VHD container only: create, write (Put Page), read and delete staged page blobs (https://learn.microsoft.com/azure/storage/blobs/assign-azure-role-data-access).')
resource vhdBlobContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vhdContainer.id, principalId, 'ba92f5b4-2d11-453d-a403-e96b0029c9fe')
  scope: vhdContainer
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', 'ba92f5b4-2d11-453d-a403-e96b0029c9fe')
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

// Account scope is the narrowest: listKeys is an account-level action.
@description('Custom role Stemcell mirror gallery VHD source on the VHD account only: listKeys, which Azure checks when an image version names this account as its source (https://learn.microsoft.com/azure/virtual-machines/image-version).')
resource vhdSourceAssignment 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vhdStorage.id, principalId, vhdSourceRole.id)
  scope: vhdStorage
  properties: {
    roleDefinitionId: vhdSourceRole.id
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

@description('Custom role Stemcell mirror gallery image publisher on the gallery only: image definitions and versions are created under it (https://learn.microsoft.com/azure/role-based-access-control/permissions/compute).')
resource galleryPublisherAssignment 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(gallery.id, principalId, galleryPublisherRole.id)
  scope: gallery
  properties: {
    roleDefinitionId: galleryPublisherRole.id
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

// A secret-scoped assignment would be narrower, but the secret does not exist at deployment (the
// operator sets it afterwards) and the vault holds nothing else.
@description('Key Vault Secrets User (4633458b-17de-408a-b874-0445c86b69e6) on the vault: read the secret github-token (https://learn.microsoft.com/azure/key-vault/general/rbac-guide#azure-built-in-roles-for-key-vault-data-plane-operations).')
resource vaultSecretsUser 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, principalId, '4633458b-17de-408a-b874-0445c86b69e6')
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', '4633458b-17de-408a-b874-0445c86b69e6')
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

// For the person who ran azd: an RBAC-mode vault lets nobody set a secret by default, and
// github-token is set by hand.
@description('Key Vault Secrets Officer (b86a8fe4-44ce-4948-aee5-eccb2c155cd7) on the vault, for the deploying user: set github-token (https://learn.microsoft.com/azure/key-vault/general/rbac-guide#azure-built-in-roles-for-key-vault-data-plane-operations).')
resource deployerSecretsOfficer 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(deployerPrincipalId)) {
  name: guid(vault.id, deployerPrincipalId, 'b86a8fe4-44ce-4948-aee5-eccb2c155cd7')
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', 'b86a8fe4-44ce-4948-aee5-eccb2c155cd7')
    principalId: deployerPrincipalId
  }
}

@description('Monitoring Metrics Publisher (3913510d-42f4-4e42-8a64-420c390055eb) on the Application Insights component: telemetry ingestion with Entra authentication, local auth being disabled (https://learn.microsoft.com/azure/azure-monitor/app/azure-ad-authentication).')
resource telemetryPublisher 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(appInsights.id, principalId, '3913510d-42f4-4e42-8a64-420c390055eb')
  scope: appInsights
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', '3913510d-42f4-4e42-8a64-420c390055eb')
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}
