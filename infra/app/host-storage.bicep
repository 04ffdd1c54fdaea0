// Storage of the Functions host: AzureWebJobsStorage (blob leases and keys, the request queue and
// its poison queue, the job table) and the Flex Consumption deployment package. Identity only:
// shared keys are disabled, so no connection string with a key can work against it.
param name string
param location string
param tags object
param deploymentContainerName string
param queueNames array
param tableName string

resource hostStorage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: { name: 'Standard_LRS' }
  properties: {
    allowSharedKeyAccess: false
    defaultToOAuthAuthentication: true
    allowBlobPublicAccess: false
    allowCrossTenantReplication: false
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    publicNetworkAccess: 'Enabled'
    networkAcls: { defaultAction: 'Allow', bypass: 'AzureServices' }
  }

  resource blobService 'blobServices' = {
    name: 'default'
    resource deploymentContainer 'containers' = {
      name: deploymentContainerName
      properties: { publicAccess: 'None' }
    }
  }

  // Created here so the app never needs rights to create them; the host creates the poison queue
  // on its own otherwise.
  resource queueService 'queueServices' = {
    name: 'default'
    resource queues 'queues' = [
      for q in queueNames: {
        name: q
      }
    ]
  }

  resource tableService 'tableServices' = {
    name: 'default'
    resource jobsTable 'tables' = {
      name: tableName
    }
  }
}

output name string = hostStorage.name
output id string = hostStorage.id
output blobEndpoint string = hostStorage.properties.primaryEndpoints.blob
output queueEndpoint string = hostStorage.properties.primaryEndpoints.queue
output tableEndpoint string = hostStorage.properties.primaryEndpoints.table
output deploymentContainerName string = hostStorage::blobService::deploymentContainer.name
