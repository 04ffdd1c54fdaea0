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

  // Created here, so neither the app nor the host needs rights to create them: the app's roles are
  // scoped to these queues and this table (rbac.bicep).
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
output queueNames array = [for (q, i) in queueNames: hostStorage::queueService::queues[i].name]
output tableName string = hostStorage::tableService::jobsTable.name
